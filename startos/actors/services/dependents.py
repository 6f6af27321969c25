"""Dependencies between installed services, as the ServicesActor sees them.

* at install: refuse a dependency cycle, and report required dependencies that are missing or of
  a version out of range (the install goes on: the service waits for them);
* at uninstall: name the services that need the one going away;
* while running: :func:`watch` follows the state tree and tells a dependent's ServiceActor when a
  package it needs changed (installed, started, stopped, a check changed), so it can start as soon
  as its dependency is healthy (readiness-gated) or show itself degraded when it fails later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import gevent

from startos.actors.services import offers
from startos.protocol.actions import DependencyChanged
from startos.protocol.store import DbSubscribe, DbUnsubscribe

__all__ = ["cycle_with", "dependents_of", "install_problems", "watch"]

logger = logging.getLogger(__name__)

# Parts of a package's entry whose change can change whether it satisfies a dependent.
_RELEVANT = ("stateInfo", "statusInfo/started", "statusInfo/health", "statusInfo/error", "statusInfo/desired")


def _required(entry: Mapping[str, Any]) -> dict[str, Any]:
    deps = entry.get("currentDependencies") or {}
    return {dep: req for dep, req in deps.items() if not req.get("optional")}


def cycle_with(package_id: str, manifest: Mapping[str, Any], installed: Mapping[str, Any]) -> list[str] | None:
    """The dependency cycle installing ``manifest`` would create, or None."""
    graph = {pid: set(_required(entry)) for pid, entry in installed.items() if pid != package_id}
    graph[package_id] = {dep for dep, req in offers.current_dependencies(manifest).items() if not req["optional"]}
    return offers.dependency_cycle(graph)


def install_problems(manifest: Mapping[str, Any], installed: Mapping[str, Any]) -> list[str]:
    """Required dependencies that are not installed, or installed at a version out of range."""
    problems = []
    for dep_id, req in offers.current_dependencies(manifest).items():
        if req["optional"]:
            continue
        why = offers.dependency_state(dep_id, {**req, "kind": "exists"}, installed.get(dep_id))
        if why is not None:
            problems.append(why)
    return problems


def dependents_of(package_id: str, installed: Mapping[str, Any]) -> list[str]:
    """Installed services that require ``package_id``."""
    return sorted(pid for pid, entry in installed.items() if pid != package_id and package_id in _required(entry))


def watch(directory: Any) -> None:
    """Forever: tell dependents when a package they need changed (runs on its own greenlet)."""
    from startos.actors.services.service import service_name

    while True:
        sub = directory.ask("store", DbSubscribe(pointer="/public/packageData", max_queue=100_000))
        try:
            data = dict((sub.dump.value if sub.dump is not None else None) or {})
            needs = {pid: set(entry.get("currentDependencies") or {}) for pid, entry in data.items()}
            while True:
                revision = sub.get()
                if revision is None:
                    break  # overflow or closed: subscribe again
                changed: set[str] = set()
                reload = False
                for op in revision.patch:
                    parts = str(op.get("path", "")).split("/", 2)
                    if len(parts) < 2 or not parts[1]:
                        changed.update(needs)  # the whole map was replaced
                        reload = True
                        continue
                    pid = parts[1]
                    rest = parts[2] if len(parts) > 2 else ""
                    reload = reload or rest == "" or rest.startswith("currentDependencies")
                    if rest == "" or rest.startswith(_RELEVANT):
                        changed.add(pid)
                if reload:  # once per revision, however many of its operations touched the map
                    needs = _reload_needs(directory)
                for dependent, deps in needs.items():
                    if deps & changed:
                        ref = directory.get(service_name(dependent))
                        if ref is not None:
                            try:
                                ref.tell(DependencyChanged(package_id=next(iter(deps & changed))))
                            except Exception:  # noqa: BLE001 (restarting: it re-checks at start)
                                pass
        except gevent.GreenletExit:
            raise
        except Exception:
            logger.exception("the dependency watcher failed; starting over")
        finally:
            try:
                directory.tell("store", DbUnsubscribe(subscription_id=sub.id))
            except Exception:  # noqa: BLE001 (the store is stopping)
                pass


def _reload_needs(directory: Any) -> dict[str, set[str]]:
    from startos.protocol.store import DbDump

    data = directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
    return {pid: set(entry.get("currentDependencies") or {}) for pid, entry in data.items()}

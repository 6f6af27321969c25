"""Dependencies between installed services, as the ServicesActor sees them.

* at install: refuse a dependency cycle, and report required dependencies that are missing or of
  a version out of range (the install goes on: the service waits for them);
* at uninstall: name the services that need the one going away;
* while running: the DependencyWatcherActor (``watcher.py``) tells a dependent's ServiceActor
  when a package it needs changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from startos.actors.services import offers

__all__ = ["cycle_with", "dependents_of", "install_problems"]


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

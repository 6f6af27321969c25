"""Plain functions behind a service's actions, tasks, dependencies and interfaces.

The ServiceActor owns the order of things; these functions only compute: the state-tree entries
(shapes of REFERENCE.md §5), whether a dependency is satisfied and why not, which addresses an
interface answers on. Keeping them here keeps them testable without actors.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from startos.protocol import service_items as items

__all__ = [
    "action_entry",
    "binding_addresses",
    "critical_task",
    "current_dependencies",
    "daemon_entry",
    "dependency_cycle",
    "dependency_state",
    "dependency_states",
    "dismiss_refusal",
    "interface_entry",
    "listen_addresses",
    "retarget_tasks",
    "status_refusal",
    "task_entry",
    "task_targets",
    "tasks_on",
]

SEVERITY_WORDS = {"critical": "Required", "important": "Important", "optional": "Recommended"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- daemons ------------------------------------------------------------------------------------


def daemon_entry(state: str, reason: str | None, failures: int, retry_in: float | None) -> dict[str, Any]:
    """``statusInfo.daemons[id]``: a daemon's supervision state, the reason without ``error: ``."""
    if reason and reason.startswith("error: "):
        reason = reason[len("error: ") :]
    retry_at = None
    if retry_in is not None:
        retry_at = datetime.fromtimestamp(time.time() + retry_in, UTC).isoformat(timespec="seconds")
    return {"state": state, "reason": reason, "failures": failures, "retryIn": retry_in, "retryAt": retry_at}


# -- actions and tasks --------------------------------------------------------------------------


def action_entry(decl: items.ActionDecl) -> dict[str, Any]:
    """``packageData[id].actions[actionId]``."""
    visibility: Any = decl.visibility
    if isinstance(visibility, items.Disabled):
        visibility = {"disabled": visibility.disabled}
    return {
        "name": decl.name,
        "description": decl.description,
        "warning": decl.warning,
        "visibility": visibility,
        "allowedStatuses": decl.allowed_statuses,
        "hasInput": decl.input_spec is not None,
        "group": decl.group,
    }


def status_refusal(action_id: str, entry: Mapping[str, Any], running: bool) -> str | None:
    """Why the action may not run now (visibility or status), or None."""
    visibility = entry.get("visibility")
    if isinstance(visibility, dict) and "disabled" in visibility:
        return f"the action {entry.get('name', action_id)!r} is disabled: {visibility['disabled']}"
    allowed = entry.get("allowedStatuses", "any")
    if allowed == "only-running" and not running:
        return f"the action {entry.get('name', action_id)!r} can only run while the service is running"
    if allowed == "only-stopped" and running:
        return f"the action {entry.get('name', action_id)!r} can only run while the service is stopped"
    return None


def task_entry(task: items.CreateTask, requester: str, active: bool) -> dict[str, Any]:
    """``packageData[requester].tasks[replayId]``: the task, whether it is active, and when it came."""
    when = None if task.when is None else {"condition": task.when.condition, "once": task.when.once}
    return {
        "task": {
            "packageId": task.package_id or requester,
            "actionId": task.action_id,
            "severity": task.severity,
            "reason": task.reason,
            "input": None if task.input is None else {"kind": "partial", "value": task.input},
            "when": when,
        },
        "active": active,
        "createdAt": _now(),
    }


def task_targets(entry: Mapping[str, Any], package_id: str) -> list[str]:
    """The other packages this entry's tasks point at."""
    found = {str((t.get("task") or {}).get("packageId")) for t in (entry.get("tasks") or {}).values()}
    return sorted(found - {package_id})


def dismiss_refusal(package_id: str, tasks: Mapping[str, Any], replay_id: str, force: bool) -> tuple[int, str] | None:
    """Why the user may not dismiss task ``replay_id`` (error kind, message), or None."""
    from startos.protocol.errors import ErrorKind

    task = tasks.get(replay_id)
    if task is None:
        return ErrorKind.NOT_FOUND, f"{package_id} has no task {replay_id!r}"
    if (task.get("task") or {}).get("severity") == "critical" and not force:
        return ErrorKind.ACTION, f"the task {replay_id!r} is required: run its action, or dismiss it with force"
    return None


def critical_task(entry: dict[str, Any]) -> str | None:
    """The reason of an active critical task of this package entry (it blocks starting), or None."""
    for task_entry in (entry.get("tasks") or {}).values():
        task = task_entry.get("task") or {}
        if task_entry.get("active") and task.get("severity") == "critical":
            return str(task.get("reason") or f"run the action {task.get('actionId')}")
    return None


# -- dependencies -------------------------------------------------------------------------------


def current_dependencies(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``currentDependencies`` from the manifest's ``dependencies`` (with our extensions)."""
    found: dict[str, Any] = {}
    for dep_id, info in (manifest.get("dependencies") or {}).items():
        metadata = info.get("metadata") or {}
        title = metadata.get("title") if isinstance(metadata.get("title"), str) else dep_id
        description = info.get("description")
        found[dep_id] = {
            "kind": info.get("kind", "running"),
            "versionRange": info.get("versionRange", "*"),
            "healthChecks": list(info.get("healthChecks") or []),
            "optional": bool(info.get("optional", False)),
            "title": title,
            "description": description if isinstance(description, str) else None,
        }
    return found


def dependency_state(dep_id: str, requirement: Mapping[str, Any], entry: Mapping[str, Any] | None) -> str | None:
    """Why dependency ``dep_id`` does not meet ``requirement`` now (one line), or None when it does."""
    from startos.s9pk.exver import ExtendedVersion, VersionRange

    title = requirement.get("title") or dep_id
    state = ((entry or {}).get("stateInfo") or {}).get("state")
    if entry is None or state not in ("installed", "updating"):
        return f"{title} is not installed" if entry is None or state != "installing" else f"{title} is installing"
    version = ((entry.get("stateInfo") or {}).get("manifest") or {}).get("version")
    wanted = str(requirement.get("versionRange") or "*")
    try:
        fits = version is not None and VersionRange.parse(wanted).satisfied_by(ExtendedVersion.parse(str(version)))
    except ValueError:
        fits = False
    if not fits:
        return f"{title} {version} is installed, but a version in {wanted} is needed"
    if requirement.get("kind", "running") == "exists":
        return None
    status = entry.get("statusInfo") or {}
    if status.get("error"):
        return f"{title} has an error: {(status['error'] or {}).get('message', 'see its logs')}"
    if not status.get("started"):
        return f"{title} is not running" if status.get("desired") != "running" else f"{title} is starting"
    health = status.get("health") or {}
    wanted_checks = list(requirement.get("healthChecks") or []) or list(health)
    for check_id in wanted_checks:
        check = health.get(check_id)
        if check is None:
            return f"{title}: health check {check_id} has not reported yet"
        if check.get("result") != "success":
            name = check.get("name") or check_id
            message = check.get("message")
            return f"{title}: {name} is {check.get('result')}" + (f" ({message})" if message else "")
    return None


def dependency_states(
    requirements: Mapping[str, Any], data: Mapping[str, Any]
) -> tuple[dict[str, str | None], str | None]:
    """Each dependency's state (why it is not met, or None) and why starting must wait (the first
    required one not met, or None); ``data`` is all of packageData."""
    states: dict[str, str | None] = {}
    blocker = None
    for dep_id, requirement in requirements.items():
        why = dependency_state(dep_id, requirement, data.get(dep_id))
        states[dep_id] = why
        if why is not None and not requirement.get("optional") and blocker is None:
            blocker = why
    return states, blocker


def dependency_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in ``package -> required packages`` as a path (``a -> b -> a``), or None."""
    from startos.protocol.runtime import find_cycle

    return find_cycle({node: tuple(sorted(edges)) for node, edges in sorted(graph.items())})


# -- interfaces ---------------------------------------------------------------------------------


def interface_entry(decl: items.InterfaceDecl) -> dict[str, Any]:
    """``packageData[id].serviceInterfaces[ifaceId]``; each interface has its own host (its id)."""
    ssl_scheme = None
    if decl.ssl:
        ssl_scheme = "https" if decl.scheme in ("http", None) else f"{decl.scheme}s"
    return {
        "id": decl.id,
        "name": decl.name,
        "description": decl.description,
        "type": decl.type,
        "masked": decl.masked,
        "addressInfo": {
            "hostId": decl.id,
            "internalPort": decl.port,
            "scheme": None if decl.ssl else decl.scheme,
            "sslScheme": ssl_scheme,
            "path": decl.path,
        },
    }


def listen_addresses(listen_host: str, machine: Iterable[Any]) -> list[str]:
    """The IP addresses the proxy answers on: every LAN address for a wildcard bind, else the one."""
    if listen_host in ("0.0.0.0", "::", ""):
        found = []
        for ip in machine:
            address = ipaddress.ip_address(str(ip))
            if address.is_loopback or address.is_link_local:
                continue
            if listen_host == "0.0.0.0" and address.version == 6:
                continue
            found.append(str(address))
        return found
    return [listen_host]


def binding_addresses(
    decl: items.InterfaceDecl, port: int, ips: Iterable[str], hostname: str | None, disabled: Iterable[str]
) -> list[dict[str, Any]]:
    """Every address of one binding, with its URL (``addresses.available``)."""
    off = set(disabled)
    scheme = ("https" if decl.scheme in ("http", None) else f"{decl.scheme}s") if decl.ssl else decl.scheme
    rows: list[tuple[str, str]] = []
    if hostname:
        rows.append(("mdns", f"{hostname}.local"))
    for ip in ips:
        rows.append(("ipv6" if ":" in ip else "ipv4", ip))
    found = []
    for kind, host in rows:
        shown = f"[{host}]" if kind == "ipv6" else host
        url = (
            f"{scheme}://{shown}:{port}{decl.path if scheme in ('http', 'https') else ''}"
            if scheme
            else f"{shown}:{port}"
        )
        found.append(
            {
                "kind": kind,
                "hostname": host,
                "port": port,
                "ssl": decl.ssl,
                "public": False,
                "enabled": host not in off,
                "url": url,
            }
        )
    return found


# -- tasks on another package's actions ---------------------------------------------------------


def tasks_on(data: Mapping[str, Any], target: str, ran: str | None = None) -> dict[str, set[str]]:
    """Who holds tasks on ``target``'s actions (``ran``: only on that one): package id -> the
    actions whose current input those tasks compare against (empty: none needs an input)."""
    found: dict[str, set[str]] = {}
    for holder, entry in data.items():
        for task_entry in ((entry or {}).get("tasks") or {}).values():
            task = task_entry.get("task") or {}
            if task.get("packageId") != target or (ran is not None and task.get("actionId") != ran):
                continue
            needs = found.setdefault(holder, set())
            if task.get("when") is not None and (task.get("input") or {}).get("value") is not None:
                needs.add(str(task.get("actionId")))
    return found


def retarget_tasks(
    pointer: str,
    tasks: Mapping[str, Any],
    target: str,
    ran: str | None,
    inputs: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The patch to this package's ``tasks`` after ``target``'s action ``ran`` (None: the target
    started) or its inputs changed: done tasks go, ``when`` tasks follow the current input."""
    from jsonpointer import escape

    from startos.protocol.inputspec import matches_partial

    ops: list[dict[str, Any]] = []
    for replay_id, task_entry in tasks.items():
        task = task_entry.get("task") or {}
        if task.get("packageId") != target or (ran is not None and task.get("actionId") != ran):
            continue
        path = f"{pointer}/tasks/{escape(replay_id)}"
        when, prefill = task.get("when"), (task.get("input") or {}).get("value")
        if when is None or prefill is None:
            if ran is not None:  # it ran: done
                ops.append({"op": "remove", "path": path})
            continue
        current = inputs.get(str(task.get("actionId")))
        if current is None:
            continue  # unknown now: it stays as it is
        active = not matches_partial(dict(current), prefill)
        if not active and when.get("once"):
            ops.append({"op": "remove", "path": path})
        elif active != bool(task_entry.get("active")):
            ops.append({"op": "replace", "path": f"{path}/active", "value": active})
    return ops

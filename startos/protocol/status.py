"""``statusInfo.summary``: the one status word of a package, computed on the server.

:func:`summarize` is a pure function of one ``packageData[id]`` entry. The package's ServiceActor
writes its result to ``statusInfo.summary`` in the same patch as every change to what it reads
(``statusInfo``, ``tasks``, ``currentDependencies``), and again when the services manager tells it
the lifecycle state changed; ``start-cli package list`` and the dashboard show it as is.

The rules, first match wins:

1. ``stateInfo.state`` installing / updating / restoring / removing / backing-up: that word;
2. a daemon crash-looping: ``crash-looping``; any other error: ``error``;
3. desired ``restarting``: ``restarting``;
4. an active critical task and not running: ``task-required``;
5. desired ``running``:

   * not started yet: ``waiting`` (``statusInfo.blocked``: a required dependency or a task) or
     ``starting``;
   * started, but a daemon is starting or backing off, or a health check is starting or waiting:
     ``starting`` (a backing-off daemon is down: the service is not fully running);
   * started, a required dependency not satisfied: ``degraded``;
   * else ``running``;

6. desired ``stopped``: ``stopping`` while it still runs (started, or a daemon not yet stopped),
   else ``stopped``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, cast, get_args

__all__ = ["LIFECYCLE", "SUMMARIES", "Summary", "has_critical_task", "summarize", "unmet_dependencies"]

Summary = Literal[
    "installing",
    "updating",
    "restoring",
    "removing",
    "backing-up",
    "stopped",
    "starting",
    "running",
    "stopping",
    "restarting",
    "degraded",
    "waiting",
    "task-required",
    "crash-looping",
    "error",
]
SUMMARIES: Final[tuple[str, ...]] = get_args(Summary)

LIFECYCLE: Final[tuple[str, ...]] = ("installing", "updating", "restoring", "removing", "backing-up")
"""``stateInfo.state`` values that are the summary as they are (the services manager is at work)."""

_SETTLING_DAEMON = frozenset({"starting", "backing-off"})
_ACTIVE_DAEMON = frozenset({"starting", "running", "backing-off", "crash-looping", "stopping"})
_SETTLING_CHECK = frozenset({"starting", "waiting"})


def _values(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        return []
    return [v for v in value.values() if isinstance(v, Mapping)]


def has_critical_task(entry: Mapping[str, Any]) -> bool:
    """Whether an active critical task is open in this entry (the service may not start)."""
    return any(
        t.get("active") and (t.get("task") or {}).get("severity") == "critical" for t in _values(entry.get("tasks"))
    )


def unmet_dependencies(entry: Mapping[str, Any]) -> list[str]:
    """Required dependencies whose last evaluation (``statusInfo.dependencies``) is not satisfied."""
    required = {
        dep
        for dep, req in (entry.get("currentDependencies") or {}).items()
        if isinstance(req, Mapping) and not req.get("optional")
    }
    live = (entry.get("statusInfo") or {}).get("dependencies") or {}
    return sorted(
        dep
        for dep, state in live.items()
        if dep in required and isinstance(state, Mapping) and not state.get("satisfied")
    )


def summarize(entry: Mapping[str, Any]) -> Summary:
    """The one status word of a ``packageData[id]`` entry (see the module's rules)."""
    state = (entry.get("stateInfo") or {}).get("state")
    if state in LIFECYCLE:
        return cast(Summary, state)
    status: Mapping[str, Any] = entry.get("statusInfo") or {}
    daemons = [str(d.get("state")) for d in _values(status.get("daemons"))]
    if "crash-looping" in daemons:
        return "crash-looping"
    if status.get("error"):
        return "error"
    desired = status.get("desired", "stopped")
    if desired == "restarting":
        return "restarting"
    started = status.get("started") is not None
    if not started and has_critical_task(entry):
        return "task-required"
    if desired == "running":
        if not started:
            return "waiting" if status.get("blocked") else "starting"
        checks = [str(c.get("result")) for c in _values(status.get("health"))]
        if any(d in _SETTLING_DAEMON for d in daemons) or any(c in _SETTLING_CHECK for c in checks):
            return "starting"
        return "degraded" if unmet_dependencies(entry) else "running"
    if started or any(d in _ACTIVE_DAEMON for d in daemons):
        return "stopping"
    return "stopped"

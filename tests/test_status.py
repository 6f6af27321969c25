"""``summarize``: the one status word, every branch (startos.protocol.status)."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from startos.protocol.public_tree import StatusSummary
from startos.protocol.status import LIFECYCLE, SUMMARIES, has_critical_task, summarize, unmet_dependencies

STARTED = "2026-01-01T00:00:00.000Z"


def entry(
    *,
    state: str = "installed",
    desired: str = "stopped",
    started: str | None = None,
    error: dict[str, Any] | None = None,
    daemons: dict[str, str] | None = None,
    health: dict[str, str] | None = None,
    blocked: dict[str, Any] | None = None,
    tasks: dict[str, Any] | None = None,
    requires: dict[str, bool] | None = None,
    satisfied: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """A packageData entry with only what summarize reads."""
    return {
        "stateInfo": {"state": state},
        "statusInfo": {
            "desired": desired,
            "started": started,
            "error": error,
            "daemons": {
                d: {"state": s, "reason": None, "failures": 0, "retryIn": None, "retryAt": None}
                for d, s in (daemons or {}).items()
            },
            "health": {c: {"name": c, "result": r, "message": None} for c, r in (health or {}).items()},
            "progress": {},
            "blocked": blocked,
            "dependencies": {
                d: {"satisfied": ok, "message": None if ok else "no"} for d, ok in (satisfied or {}).items()
            },
        },
        "tasks": tasks or {},
        "currentDependencies": {d: {"optional": optional} for d, optional in (requires or {}).items()},
    }


def task(severity: str, active: bool = True) -> dict[str, Any]:
    return {"task": {"severity": severity, "actionId": "fix", "packageId": "x"}, "active": active}


def test_the_values_are_the_schemas() -> None:
    assert get_args(StatusSummary) == SUMMARIES


@pytest.mark.parametrize("state", LIFECYCLE)
def test_a_lifecycle_state_is_the_summary_whatever_the_status(state: str) -> None:
    assert summarize(entry(state=state, desired="running", started=STARTED, error={"message": "x"})) == state


def test_an_entry_without_status_is_stopped() -> None:
    assert summarize({"stateInfo": {"state": "installed"}}) == "stopped"
    assert summarize({}) == "stopped"


def test_stopped() -> None:
    assert summarize(entry()) == "stopped"
    assert summarize(entry(daemons={"main": "stopped"})) == "stopped"


@pytest.mark.parametrize("daemon", ["running", "starting", "backing-off", "stopping"])
def test_stopping_while_anything_still_runs(daemon: str) -> None:
    assert summarize(entry(started=STARTED)) == "stopping"
    assert summarize(entry(daemons={"main": daemon})) == "stopping"


def test_a_crash_looping_daemon_wins_over_an_error_and_the_desired_state() -> None:
    looping = {"main": "crash-looping", "side": "running"}
    assert summarize(entry(desired="running", daemons=looping, error={"message": "keeps failing"})) == "crash-looping"
    assert summarize(entry(desired="stopped", daemons=looping)) == "crash-looping"


def test_an_error() -> None:
    assert summarize(entry(desired="running", error={"message": "oneshot failed"})) == "error"
    assert summarize(entry(desired="stopped", error={"message": "oneshot failed"})) == "error"


def test_restarting() -> None:
    assert summarize(entry(desired="restarting", started=STARTED, daemons={"main": "running"})) == "restarting"


def test_a_critical_task_while_not_running() -> None:
    tasks = {"t": task("critical")}
    assert summarize(entry(tasks=tasks)) == "task-required"
    assert summarize(entry(desired="running", tasks=tasks, blocked={"reason": "Task required: x"})) == "task-required"
    # Running, it runs (the ServiceActor stops it, and then the task is what shows).
    running = entry(desired="running", started=STARTED, daemons={"main": "running"}, tasks=tasks)
    assert summarize(running) == "running"


def test_inactive_or_lesser_tasks_do_not_count() -> None:
    assert summarize(entry(tasks={"t": task("critical", active=False)})) == "stopped"
    assert summarize(entry(tasks={"t": task("important"), "u": task("optional")})) == "stopped"
    assert not has_critical_task(entry(tasks={"t": task("important")}))


def test_desired_running_not_started() -> None:
    assert summarize(entry(desired="running")) == "starting"
    assert summarize(entry(desired="running", daemons={"main": "starting"})) == "starting"


def test_waiting_on_a_dependency() -> None:
    blocked = {"reason": "Bitcoin is not running"}
    assert summarize(entry(desired="running", blocked=blocked, requires={"bitcoin": False})) == "waiting"


@pytest.mark.parametrize("daemon", ["starting", "backing-off"])
def test_started_with_a_daemon_down_is_starting_not_running(daemon: str) -> None:
    """The CLI said "running" and the dashboard "starting": a daemon backing off is not running."""
    assert summarize(entry(desired="running", started=STARTED, daemons={"main": "running", "side": daemon})) == (
        "starting"
    )


@pytest.mark.parametrize("result", ["starting", "waiting"])
def test_started_with_a_health_check_settling_is_starting(result: str) -> None:
    assert summarize(entry(desired="running", started=STARTED, health={"web": result})) == "starting"


@pytest.mark.parametrize("result", ["success", "failure", "loading", "disabled"])
def test_started_with_settled_checks_is_running(result: str) -> None:
    assert summarize(entry(desired="running", started=STARTED, health={"web": result})) == "running"


def test_running() -> None:
    assert summarize(entry(desired="running", started=STARTED, daemons={"main": "running"})) == "running"


def test_degraded_when_a_required_dependency_fails_while_running() -> None:
    degraded = entry(desired="running", started=STARTED, requires={"db": False}, satisfied={"db": False})
    assert summarize(degraded) == "degraded"
    assert unmet_dependencies(degraded) == ["db"]


def test_an_optional_or_satisfied_dependency_does_not_degrade() -> None:
    optional = entry(desired="running", started=STARTED, requires={"db": True}, satisfied={"db": False})
    assert summarize(optional) == "running"
    met = entry(desired="running", started=STARTED, requires={"db": False}, satisfied={"db": True})
    assert summarize(met) == "running"
    # A dependency evaluated but no longer required (an update dropped it) is ignored.
    dropped = entry(desired="running", started=STARTED, satisfied={"db": False})
    assert summarize(dropped) == "running"


def test_settling_wins_over_degraded() -> None:
    both = entry(
        desired="running",
        started=STARTED,
        daemons={"main": "backing-off"},
        requires={"db": False},
        satisfied={"db": False},
    )
    assert summarize(both) == "starting"


def test_every_value_is_reachable() -> None:
    reached = {
        summarize(e)
        for e in [
            *(entry(state=s) for s in LIFECYCLE),
            entry(),
            entry(started=STARTED),
            entry(desired="running"),
            entry(desired="running", started=STARTED),
            entry(desired="restarting"),
            entry(desired="running", started=STARTED, requires={"db": False}, satisfied={"db": False}),
            entry(desired="running", blocked={"reason": "x"}),
            entry(tasks={"t": task("critical")}),
            entry(daemons={"main": "crash-looping"}),
            entry(error={"message": "x"}),
        ]
    }
    assert reached == set(SUMMARIES)

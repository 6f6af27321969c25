"""Tasks on another package's actions: who holds them, and how a holder updates its own (no actors)."""

from __future__ import annotations

from typing import Any

from startos.actors.services.offers import dismiss_refusal, retarget_tasks, task_targets, tasks_on
from startos.protocol.errors import ErrorKind

POINTER = "/public/packageData/wallet"


def task(target: str, action: str, *, when: bool = False, once: bool = False, prefill: Any = None) -> dict[str, Any]:
    return {
        "task": {
            "packageId": target,
            "actionId": action,
            "severity": "important",
            "reason": None,
            "input": None if prefill is None else {"kind": "partial", "value": prefill},
            "when": {"condition": "input-not-matches", "once": once} if when else None,
        },
        "active": True,
        "createdAt": "2026-01-01T00:00:00.000Z",
    }


def test_tasks_on_finds_every_holder_and_the_inputs_they_compare() -> None:
    data = {
        "wallet": {"tasks": {"a": task("sync", "access", when=True, prefill={"x": 1}), "b": task("sync", "other")}},
        "shop": {"tasks": {"c": task("sync", "access")}},
        "sync": {"tasks": {"d": task("sync", "setup")}},
        "lone": {"tasks": {"e": task("elsewhere", "access")}},
    }
    assert tasks_on(data, "sync") == {"wallet": {"access"}, "shop": set(), "sync": set()}
    assert tasks_on(data, "sync", ran="access") == {"wallet": {"access"}, "shop": set()}
    assert tasks_on(data, "nobody") == {}
    assert task_targets(data["wallet"], "wallet") == ["sync"]
    assert task_targets(data["sync"], "sync") == []


def test_a_task_without_a_condition_is_done_when_its_action_ran() -> None:
    tasks = {"a": task("sync", "access"), "b": task("sync", "other"), "c": task("else", "access")}
    assert retarget_tasks(POINTER, tasks, "sync", "access", {}) == [{"op": "remove", "path": f"{POINTER}/tasks/a"}]
    # The target started (nothing ran): it stays.
    assert retarget_tasks(POINTER, tasks, "sync", None, {}) == []


def test_a_conditional_task_follows_the_current_input() -> None:
    tasks = {"a": task("sync", "access", when=True, prefill={"walletAccess": True})}
    matching = {"access": {"walletAccess": True, "other": 3}}
    assert retarget_tasks(POINTER, tasks, "sync", "access", matching) == [
        {"op": "replace", "path": f"{POINTER}/tasks/a/active", "value": False}
    ]
    # Still not matching, already active: nothing to write; unknown input: it stays as it is.
    assert retarget_tasks(POINTER, tasks, "sync", None, {"access": {"walletAccess": False}}) == []
    assert retarget_tasks(POINTER, tasks, "sync", None, {}) == []
    inactive = {"a": {**tasks["a"], "active": False}}
    assert retarget_tasks(POINTER, inactive, "sync", None, {"access": {"walletAccess": False}}) == [
        {"op": "replace", "path": f"{POINTER}/tasks/a/active", "value": True}
    ]


def test_a_once_task_goes_when_it_matches() -> None:
    tasks = {"a": task("sync", "access", when=True, once=True, prefill={"walletAccess": True})}
    assert retarget_tasks(POINTER, tasks, "sync", None, {"access": {"walletAccess": True}}) == [
        {"op": "remove", "path": f"{POINTER}/tasks/a"}
    ]


def test_dismissing_needs_the_task_and_force_for_a_critical_one() -> None:
    critical = {**task("x", "fix"), "task": {**task("x", "fix")["task"], "severity": "critical"}}
    tasks = {"fix": critical, "note": task("x", "note")}
    assert dismiss_refusal("x", tasks, "note", force=False) is None
    assert dismiss_refusal("x", tasks, "fix", force=True) is None
    kind, message = dismiss_refusal("x", tasks, "fix", force=False) or (0, "")
    assert kind == ErrorKind.ACTION and "is required" in message
    kind, message = dismiss_refusal("x", tasks, "gone", force=True) or (0, "")
    assert kind == ErrorKind.NOT_FOUND and message == "x has no task 'gone'"

"""Tasks across packages: what a ServiceActor's jobs and effect handler do off its loop.

A task lives in the entry of the package that asked for it (``packageData[requester].tasks``),
written only by the requester's ServiceActor. When the action it points at runs, or the target
package starts, the *target's* ServiceActor works out the current inputs (off its loop: it asks
its runtime) and tells each holder :class:`~startos.protocol.packages.TaskTargetChanged`; the
holder's ServiceActor updates its own ``tasks``.

A task on a package that is not installed or not running stays with the package that asked for
it, as it was created (active). When the target appears, its ServiceActor starts and tells every
holder (its first ``RefreshTasks``); when a holder starts, it asks each target it has tasks on to
do so again (``RefreshTasks``), so a change missed while the holder was down is caught up.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from pykka import ActorDeadError, ActorRef, Timeout

from startos.actors.services import offers
from startos.actors.services.journal import Journal
from startos.errors import StartOSError
from startos.protocol import service_items as items
from startos.protocol.actions import GetActionInput
from startos.protocol.notifications import Notify
from startos.protocol.packages import Flush, TaskTargetChanged
from startos.protocol.service_items import CreateTask
from startos.protocol.store import DbDump
from startos.runtime.host import RuntimeConnection
from startos.supervision import ActorNotFound, Directory

__all__ = ["action_form", "current_input", "run_action", "task_notice", "tell", "tell_task_holders"]

logger = logging.getLogger(__name__)


def tell(directory: Directory, name: str, message: Any) -> bool:
    """Tell the actor ``name``; ``False`` when it is not running (it catches up when it starts)."""
    try:
        directory.tell(name, message)
    except (ActorNotFound, ActorDeadError):
        return False
    return True


def _input(runtime: RuntimeConnection, action_id: str) -> dict[str, Any] | None:
    try:
        return runtime.get_action_input(action_id, timeout=60).value or {}
    except StartOSError as exc:  # unknown now: the tasks on it stay as they are
        logger.info("could not read the input of %s/%s: %s", runtime.package_id, action_id, exc)
        return None


def current_input(
    directory: Directory, runtime: RuntimeConnection | None, package_id: str, target: str, action_id: str
) -> dict[str, Any] | None:
    """The current values of ``target``'s action (``package_id``: this package), or None when they
    cannot be known now (the target is not running, or did not answer)."""
    if target == package_id:
        return None if runtime is None else _input(runtime, action_id)
    try:
        answer = directory.ask(f"service:{target}", GetActionInput(action_id=action_id), timeout=70)
    except ActorNotFound:
        return None
    except Exception as exc:  # noqa: BLE001 (whatever the other service raised: unknown now)
        logger.info("could not read the input of %s/%s: %s", target, action_id, exc)
        return None
    return dict(answer.get("value") or {})


def tell_task_holders(
    directory: Directory, runtime: RuntimeConnection | None, target: str, ran: str | None, *, wait: bool = False
) -> None:
    """Tell every package holding tasks on ``target``'s actions what changed (a job of ``target``'s
    ServiceActor: it asks the runtime, never touches the actor).

    ``wait``: ask, so every holder has written its tasks when this returns (an action's answer
    comes after the tasks it completed are gone, so the service may start at once).
    """
    try:
        data = directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
    except (ActorNotFound, ActorDeadError):  # stopping
        return
    holders = offers.tasks_on(data, target, ran)
    needed = sorted(set().union(*holders.values())) if holders else []
    inputs: dict[str, dict[str, Any]] = {}
    for action_id in needed:
        value = None if runtime is None else _input(runtime, action_id)
        if value is not None:
            inputs[action_id] = value
    for holder, actions in sorted(holders.items()):
        mine = {a: inputs[a] for a in sorted(actions) if a in inputs}
        message = TaskTargetChanged(package_id=target, ran=ran, inputs=mine)
        if not wait:
            tell(directory, f"service:{holder}", message)
            continue
        try:
            directory.ask(f"service:{holder}", message, timeout=30)
        except (ActorNotFound, StartOSError, Timeout) as exc:  # not running: it catches up when it starts
            logger.info("%s did not update its tasks on %s: %s", holder, target, exc)


def task_notice(package_id: str, task: CreateTask) -> Notify:
    """The notification of a new critical or important task."""
    target = task.package_id or package_id
    word = offers.SEVERITY_WORDS[task.severity]
    where = "" if target == package_id else f" on {target}"
    return Notify(
        level="warning",
        title=f"{package_id}: {word.lower()} task",
        message=(task.reason or f"Run the action {task.action_id}{where}."),
        package_id=package_id,
        data={"replayId": task.replay_id, "packageId": package_id, "link": f"#/services/{package_id}"},
    )


# -- actions: jobs of the ServiceActor (answer_later) ---------------------------------------------


def action_form(runtime: RuntimeConnection | None, decl: items.ActionDecl) -> dict[str, Any]:
    """The action's form: spec, the values to prefill, and the action's metadata."""
    if decl.input_spec is None or runtime is None:
        return {"spec": None, "value": None, "action": offers.action_entry(decl)}
    answer = runtime.get_action_input(decl.id, timeout=60)
    return {"spec": answer.spec, "value": answer.value, "action": offers.action_entry(decl)}


def run_action(
    owner: ActorRef[Any],
    directory: Directory,
    runtime: RuntimeConnection,
    journal: Journal,
    action_id: str,
    value: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Run the action; answer once the tasks it touched are in the tree (its own and others')."""
    outcome = runtime.run_action(action_id, value, timeout=600)
    journal.append("startos", f"action {action_id} finished")
    owner.ask(Flush(), timeout=30)  # the tasks the action created or cleared are in the tree
    tell_task_holders(directory, runtime, runtime.package_id, action_id, wait=True)
    if outcome.title is None and outcome.message is None and not outcome.values:
        return None
    return {
        "title": outcome.title,
        "message": outcome.message,
        "values": [msgspec.structs.asdict(v) for v in outcome.values],
    }

"""What a service offers besides its daemons: health checks, actions, interfaces and tasks.

These records travel between the host and the service runtime (see :mod:`startos.protocol.runtime`,
whose unions include them). They stay free of the s9pk package, like the rest of the runtime
protocol, so the runtime starts fast.

* :class:`ActionDecl` — an action the user may run, with an optional input spec
  (:mod:`startos.protocol.inputspec` shapes, carried as builtins and validated by the host).
* :class:`InterfaceDecl` — a network endpoint the host serves on the LAN through its proxy.
* :class:`CreateTask` / :class:`ClearTask` — effects: ask the user to run an action, or withdraw it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from startos.protocol.base import Message

__all__ = [
    "ActionDecl",
    "ActionInput",
    "ActionOutcome",
    "ActionValue",
    "ClearTask",
    "CreateTask",
    "Disabled",
    "GetActionInput",
    "InterfaceDecl",
    "RunAction",
    "TaskCreated",
    "TaskTrigger",
    "items_problem",
]

_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"
ItemId = Annotated[str, Meta(pattern=_ID, max_length=63)]  # the same rule as runtime.ItemId
PackageId = Annotated[str, Meta(pattern=_ID, max_length=63)]
ReplayId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", max_length=128)]
Line = Annotated[str, Meta(max_length=1024)]
Text = Annotated[str, Meta(max_length=16384)]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
Port = Annotated[int, Meta(ge=1, le=65535)]
Seconds = Annotated[float, Meta(gt=0, le=7 * 24 * 3600)]
Value = Annotated[str, Meta(max_length=65536)]

Severity = Literal["critical", "important", "optional"]
AllowedStatuses = Literal["only-running", "only-stopped", "any"]
InterfaceType = Literal["ui", "api", "p2p"]


# -- actions ------------------------------------------------------------------------------------


class Disabled(Message, frozen=True, kw_only=True):
    """Visibility of an action shown greyed out, with the reason why."""

    disabled: Line


class ActionDecl(Message, frozen=True, kw_only=True):
    """An action: its metadata, and its input spec (builtins of ``inputspec.InputSpec``) or None."""

    id: ItemId
    name: Name
    description: Text = ""
    warning: Text | None = None
    group: Name | None = None
    visibility: Literal["enabled", "hidden"] | Disabled = "enabled"
    allowed_statuses: AllowedStatuses = "any"
    input_spec: dict[str, Any] | None = None


class GetActionInput(Message, frozen=True, kw_only=True, tag="get-action-input"):
    """The form for ``action``: its spec and the current values to prefill (answered with ActionInput)."""

    action: ItemId


class ActionInput(Message, frozen=True, kw_only=True, tag="action-input"):
    spec: dict[str, Any] | None = None
    value: dict[str, Any] | None = None


class RunAction(Message, frozen=True, kw_only=True, tag="run-action"):
    """Run ``action`` with ``input`` (already validated by the host against the spec)."""

    action: ItemId
    input: dict[str, Any] | None = None


class ActionValue(Message, frozen=True, kw_only=True):
    """One value an action shows: copyable, masked when sensitive, optionally as a QR code."""

    name: Name
    value: Value
    description: Text | None = None
    copyable: bool = True
    masked: bool = False
    qr: bool = False


class ActionOutcome(Message, frozen=True, kw_only=True, tag="action-outcome"):
    """What an action returns: nothing to show (all None/empty) or a message and values."""

    title: Name | None = None
    message: Text | None = None
    values: Annotated[tuple[ActionValue, ...], Meta(max_length=256)] = ()


# -- interfaces ---------------------------------------------------------------------------------


class InterfaceDecl(Message, frozen=True, kw_only=True):
    """A network endpoint of the service: served on the LAN at a port the host assigns.

    ``scheme`` is what the service itself speaks (``http``, or None for raw TCP); with ``ssl``
    the host terminates TLS in front of it (``https`` for ``http``).
    """

    id: ItemId
    name: Name
    description: Text = ""
    type: InterfaceType = "ui"
    port: Port
    scheme: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9+.-]*$", max_length=32)] | None = "http"
    ssl: bool = True
    masked: bool = False
    path: Annotated[str, Meta(pattern=r"^/", max_length=2048)] = "/"


# -- tasks (effects) ----------------------------------------------------------------------------


class TaskTrigger(Message, frozen=True, kw_only=True):
    """When a task is active: while the action's current input does not match the prefilled one."""

    condition: Literal["input-not-matches"] = "input-not-matches"
    once: bool = False  # True: once cleared, it never comes back


class CreateTask(Message, frozen=True, kw_only=True, tag="create-task"):
    """Ask the user to run ``action_id`` of ``package_id`` (None: this package), maybe prefilled.

    Re-creating a task with the same ``replay_id`` replaces it. Without ``when`` the task stays
    until the action has run once; with it, it is active while the action's current input does
    not match ``input``, and comes back when it stops matching.
    """

    replay_id: ReplayId
    action_id: ItemId
    package_id: PackageId | None = None
    severity: Severity = "important"
    reason: Text | None = None
    input: dict[str, Any] | None = None
    when: TaskTrigger | None = None


class TaskCreated(Message, frozen=True, kw_only=True, tag="task-created"):
    active: bool


class ClearTask(Message, frozen=True, kw_only=True, tag="clear-task"):
    """Withdraw the task ``replay_id`` this package created (a missing one is not an error)."""

    replay_id: ReplayId


def items_problem(
    checks: tuple[Any, ...],
    actions: tuple[ActionDecl, ...],
    interfaces: tuple[InterfaceDecl, ...],
    item_ids: set[str],
) -> str | None:
    """The first rule the service's checks, actions and interfaces break, as one line, or None.

    ``item_ids`` are the daemon and oneshot ids: check ids share their namespace (an item may
    ``require`` a check), except a daemon's own ready check, which has the daemon's id.
    """
    seen: set[str] = set()
    for check in checks:
        if check.id in seen:
            return f"health check id {check.id!r} is used twice"
        if check.id in item_ids and check.daemon != check.id:
            return f"health check id {check.id!r} is also a daemon or oneshot id"
        seen.add(check.id)
        if check.daemon is not None and check.daemon not in item_ids:
            return f"health check {check.id!r} watches {check.daemon!r}, which is not a daemon"
    for check in checks:
        for needed in check.requires:
            if needed == check.id:
                return f"health check {check.id!r} requires itself"
            if needed not in seen:
                return f"health check {check.id!r} requires {needed!r}, which is not a health check"
    names: set[str] = set()
    for action in actions:
        if action.id in names:
            return f"action id {action.id!r} is used twice"
        names.add(action.id)
    ids: set[str] = set()
    ports: dict[int, str] = {}
    for interface in interfaces:
        if interface.id in ids:
            return f"interface id {interface.id!r} is used twice"
        ids.add(interface.id)
        if interface.port in ports:
            return (
                f"interfaces {ports[interface.port]!r} and {interface.id!r} both use port {interface.port}; "
                "each interface needs its own port"
            )
        ports[interface.port] = interface.id
    return None

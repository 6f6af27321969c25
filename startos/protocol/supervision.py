"""Messages of the supervision layer: child specs, supervisor requests, and child events."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from startos.protocol.base import Message

Restart = Literal["permanent", "transient", "temporary"]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
ChildType = Literal["worker", "supervisor"]
BRUTAL_KILL: Literal["brutal_kill"] = "brutal_kill"


class ChildSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a supervisor starts, restarts and stops one child (OTP's child specification).

    ``start`` is a callable returning a started ``ActorRef``; it is never sent over a wire.
    ``shutdown`` is seconds to wait for a graceful stop before a kill, ``None`` for no limit
    (the default for supervisors), or ``"brutal_kill"``. ``backoff`` (a
    ``startos.supervision.Backoff``) marks a child that wraps OS processes: it is restarted
    with exponential backoff instead of counting toward the restart intensity.
    """

    id: str
    start: Any
    restart: Restart = "permanent"
    shutdown: float | Literal["brutal_kill"] | None = 5.0
    type: ChildType = "worker"
    start_timeout: float = 30.0
    backoff: Any = None


class StartChild(Message, frozen=True):
    """Add a dynamic child at the end of the list and start it; replies with its ref."""

    spec: ChildSpec


class TerminateChild(Message, frozen=True):
    """Stop a child (reverse of start); its spec stays, so it can be restarted."""

    id: str


class RestartChild(Message, frozen=True):
    """Start a stopped, backing-off or crash-looping child now; replies with its ref."""

    id: str


class DeleteChild(Message, frozen=True):
    """Forget a stopped child's spec."""

    id: str


class LookupChild(Message, frozen=True):
    """Reply with the child's current ref, or ``None``."""

    id: str


class WhichChildren(Message, frozen=True):
    """Reply with a ``ChildInfo`` per child, in start order."""


class ChildInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a supervisor knows of one child."""

    id: str
    type: ChildType
    state: str
    restarts: int
    failures: int
    last_exit: str | None
    retry_in: float | None


class ChildExited(Message, frozen=True):
    """Sent by the monitor to the supervisor when a child's loop ended (internal)."""

    id: str
    urn: str
    reason: str
    abnormal: bool


class RetryChild(Message, frozen=True):
    """Sent by a backoff timer to its supervisor when the delay is over (internal)."""

    id: str
    generation: int


class ChildStateChanged(Message, frozen=True):
    """Told upward to a supervisor's observer on every child state transition."""

    supervisor: str
    child: str
    old: str
    new: str
    reason: str | None = None
    failures: int = 0
    retry_in: float | None = None

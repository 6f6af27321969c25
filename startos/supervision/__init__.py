"""The actor base on gevent and OTP-style supervisors."""

from startos.protocol.supervision import BRUTAL_KILL, ChildSpec
from startos.supervision.actor import (
    Actor,
    ActorCrashed,
    ExitReason,
    GeventActor,
    GeventFuture,
    UnknownMessage,
    demonitor,
    describe_greenlet,
    exit_reason,
    handles,
    kill,
    monitor,
    running_greenlets,
    wait_exited,
    wait_started,
)
from startos.supervision.backoff import Backoff
from startos.supervision.directory import ActorNotFound, Directory
from startos.supervision.states import ChildState
from startos.supervision.supervisor import (
    ChildStartError,
    Supervisor,
    SupervisorError,
    SupervisorEscalated,
)
from startos.supervision.threads import in_thread

__all__ = [
    "BRUTAL_KILL",
    "Actor",
    "ActorCrashed",
    "ActorNotFound",
    "Backoff",
    "ChildSpec",
    "ChildStartError",
    "ChildState",
    "Directory",
    "ExitReason",
    "GeventActor",
    "GeventFuture",
    "Supervisor",
    "SupervisorError",
    "SupervisorEscalated",
    "UnknownMessage",
    "demonitor",
    "describe_greenlet",
    "exit_reason",
    "handles",
    "in_thread",
    "kill",
    "monitor",
    "running_greenlets",
    "wait_exited",
    "wait_started",
]

"""The states of a supervised child, and every legal edge between them.

No dependencies on purpose (supervisord's ``states.py`` is the model): the supervisor, the
dashboard and the tests all read the same table.
"""

from __future__ import annotations

from enum import StrEnum


class ChildState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing-off"
    CRASH_LOOPING = "crash-looping"
    STOPPING = "stopping"
    STOPPED = "stopped"


S = ChildState

TRANSITIONS: dict[ChildState, frozenset[ChildState]] = {
    # start() was called: on_start ran to the end (running), or raised (a failure like any other)
    S.STARTING: frozenset({S.RUNNING, S.BACKING_OFF, S.CRASH_LOOPING, S.STOPPED}),
    # the child exited: wait its backoff delay, give up into crash-looping, or, when it was
    # asked to stop (or is temporary, or transient and exited normally), it is simply stopped
    S.RUNNING: frozenset({S.STARTING, S.BACKING_OFF, S.CRASH_LOOPING, S.STOPPING, S.STOPPED}),
    # the delay elapsed (starting) or the supervisor was told to stop the child meanwhile
    S.BACKING_OFF: frozenset({S.STARTING, S.STOPPED}),
    # the cooldown elapsed and the supervisor tries again, or the child was stopped by hand
    S.CRASH_LOOPING: frozenset({S.STARTING, S.STOPPED}),
    # a graceful stop ends in stopped, whatever the exit reason
    S.STOPPING: frozenset({S.STOPPED}),
    # restart_child or a strategy restart
    S.STOPPED: frozenset({S.STARTING}),
}


class IllegalTransition(RuntimeError):
    """Raised when the supervisor tries an edge not in ``TRANSITIONS``: a bug, never user input."""


def check_transition(old: ChildState, new: ChildState) -> None:
    if new is not old and new not in TRANSITIONS[old]:
        raise IllegalTransition(f"child state {old.value} -> {new.value} is not allowed")

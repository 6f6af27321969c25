"""OTP-style supervisors on the gevent actor base.

Semantics follow Erlang/OTP's ``supervisor`` (the best-tested answer there is): children start
in order and stop in reverse; each child is ``permanent`` (always restarted), ``transient``
(restarted after an abnormal exit) or ``temporary`` (never restarted, forgotten on exit); the
strategies are ``one_for_one``, ``one_for_all`` and ``rest_for_one``; more than ``intensity``
restarts within ``period`` seconds make the supervisor stop all children and die, which its own
supervisor sees as an abnormal exit (escalation).

Beyond OTP, a child whose spec carries a :class:`~startos.supervision.backoff.Backoff` (one
that wraps OS processes) is restarted with exponential backoff and shown as crash-looping
instead of escalating; see ``backoff.py``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gevent
from gevent.greenlet import Greenlet
from pykka import ActorDeadError, ActorRef

from startos.errors import StartOSError
from startos.protocol.supervision import (
    BRUTAL_KILL,
    ChildExited,
    ChildInfo,
    ChildSpec,
    ChildStateChanged,
    DeleteChild,
    LookupChild,
    RestartChild,
    RetryChild,
    StartChild,
    Strategy,
    TerminateChild,
    WhichChildren,
)
from startos.supervision.actor import (
    Actor,
    ExitReason,
    demonitor,
    handles,
    kill,
    monitor,
    wait_exited,
    wait_started,
)
from startos.supervision.directory import Directory
from startos.supervision.states import ChildState, check_transition

__all__ = ["ChildStartError", "Supervisor", "SupervisorEscalated"]

logger = logging.getLogger(__name__)


class SupervisorError(StartOSError):
    """Raised when a supervisor request cannot be honoured (unknown id, duplicate id...)."""


class ChildStartError(SupervisorError):
    """Raised when a child's start function or its ``on_start`` failed."""


class SupervisorEscalated(SupervisorError):
    """Raised inside a supervisor that reached its restart intensity: it dies with this reason."""


class _Child:
    __slots__ = (
        "failures",
        "generation",
        "last_exit",
        "monitor_handle",
        "ref",
        "restarts",
        "retry_at",
        "spec",
        "started_at",
        "state",
        "timer",
    )

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: ActorRef[Any] | None = None
        self.state = ChildState.STOPPED
        self.monitor_handle = 0
        self.started_at = 0.0
        self.failures = 0
        self.restarts = 0
        self.generation = 0
        self.last_exit: str | None = None
        self.timer: Greenlet | None = None
        self.retry_at: float | None = None


class Supervisor(Actor):
    """Starts, watches and restarts its children by an OTP strategy.

    ``directory`` (optional) is kept current with ``child id -> ref`` so other actors and tests
    can find a child by name across restarts. ``observer`` (optional: a ref, or a function
    returning the current ref, for an observer that may itself be restarted) is told a
    ``ChildStateChanged`` on every transition.
    """

    def __init__(
        self,
        name: str,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        intensity: int = 3,
        period: float = 5.0,
        directory: Directory | None = None,
        observer: ActorRef[Any] | Callable[[], ActorRef[Any] | None] | None = None,
        parallel_stop: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        self.strategy = strategy
        self.intensity = intensity
        self.period = period
        self.directory = directory
        self.observer = observer
        # Independent children (one per installed service) may stop all at once instead of in
        # reverse order one by one: 200 services stop in the time of the slowest, not the sum.
        self.parallel_stop = parallel_stop
        self._specs = list(children)
        self._children: dict[str, _Child] = {}
        self._restart_times: deque[float] = deque()

    def __str__(self) -> str:
        return f"Supervisor[{self.name}]"

    # -- lifecycle -----------------------------------------------------------------------------

    def on_start(self) -> None:
        for spec in self._specs:
            if spec.id in self._children:
                raise SupervisorError(f"{self.name}: duplicate child id {spec.id!r}")
            self._children[spec.id] = _Child(spec)
        for child in list(self._children.values()):
            try:
                self._start(child)
            except ChildStartError:
                self._shutdown_all()
                raise

    def on_stop(self) -> None:
        self._shutdown_all()

    def on_exit(self, reason: ExitReason) -> None:
        # Killed or crashed with children still up: never leave orphans behind.
        for child in self._children.values():
            if child.timer is not None:
                child.timer.kill(block=False)
            if child.ref is not None:
                demonitor(child.ref, child.monitor_handle)
                kill(child.ref, block=False)
                if self.directory is not None:
                    self.directory.unregister(child.spec.id, child.ref)

    # -- requests ------------------------------------------------------------------------------

    @handles(StartChild)
    def start_child(self, message: StartChild) -> ActorRef[Any]:
        """Add and start a dynamic child; reply with its ref."""
        spec = message.spec
        if spec.id in self._children:
            raise SupervisorError(f"{self.name}: a child named {spec.id!r} already exists")
        child = self._children[spec.id] = _Child(spec)
        try:
            self._start(child)
        except ChildStartError:
            del self._children[spec.id]
            raise
        assert child.ref is not None
        return child.ref

    @handles(TerminateChild)
    def terminate_child(self, message: TerminateChild) -> None:
        """Stop a child and keep its spec."""
        self._shutdown(self._get(message.id))

    @handles(RestartChild)
    def restart_child(self, message: RestartChild) -> ActorRef[Any]:
        """Start a stopped (or backing-off, or crash-looping) child now."""
        child = self._get(message.id)
        if child.state in (ChildState.RUNNING, ChildState.STARTING):
            raise SupervisorError(f"{self.name}: child {message.id!r} is already running")
        self._cancel_timer(child)
        self._start(child)
        assert child.ref is not None
        return child.ref

    @handles(DeleteChild)
    def delete_child(self, message: DeleteChild) -> None:
        """Forget a stopped child."""
        child = self._get(message.id)
        if child.ref is not None:
            raise SupervisorError(f"{self.name}: stop child {message.id!r} before deleting it")
        self._cancel_timer(child)
        del self._children[message.id]

    @handles(LookupChild)
    def lookup_child(self, message: LookupChild) -> ActorRef[Any] | None:
        """The child's current ref, or ``None``."""
        child = self._children.get(message.id)
        return None if child is None else child.ref

    @handles(WhichChildren)
    def which_children(self, _message: WhichChildren) -> list[ChildInfo]:
        """One ``ChildInfo`` per child, in start order."""
        now = time.monotonic()
        return [
            ChildInfo(
                id=c.spec.id,
                type=c.spec.type,
                state=c.state.value,
                restarts=c.restarts,
                failures=c.failures,
                last_exit=c.last_exit,
                retry_in=None if c.retry_at is None else max(0.0, c.retry_at - now),
            )
            for c in self._children.values()
        ]

    # -- child exits ---------------------------------------------------------------------------

    @handles(ChildExited)
    def child_exited(self, message: ChildExited) -> None:
        """React to a child's exit by its restart type and this supervisor's strategy."""
        child = self._children.get(message.id)
        if child is None or child.ref is None or child.ref.actor_urn != message.urn:
            return  # stale: a child we already stopped or replaced
        self._forget_ref(child)
        child.last_exit = message.reason
        restart = child.spec.restart
        if restart == "temporary" or (restart == "transient" and not message.abnormal):
            self._set_state(child, ChildState.STOPPED, message.reason)
            if restart == "temporary":
                del self._children[child.spec.id]
            return
        logger.warning("%s: child %s exited (%s)", self.name, child.spec.id, message.reason)
        self._failed(child, message.reason)

    @handles(RetryChild)
    def retry_child(self, message: RetryChild) -> None:
        """A backoff or cooldown timer is over: try the child again."""
        child = self._children.get(message.id)
        if child is None or child.generation != message.generation or child.ref is not None:
            return
        if child.state not in (ChildState.BACKING_OFF, ChildState.CRASH_LOOPING):
            return
        child.timer = None
        child.retry_at = None
        self._restart(child)

    def _failed(self, child: _Child, reason: str) -> None:
        if child.spec.backoff is not None:
            self._back_off(child, reason)
            return
        self._count_restart(child, reason)
        self._restart(child)

    def _count_restart(self, child: _Child, reason: str) -> None:
        now = time.monotonic()
        times = self._restart_times
        times.append(now)
        while times and now - times[0] > self.period:
            times.popleft()
        if len(times) > self.intensity:
            self._shutdown_all()
            raise SupervisorEscalated(
                f"{self.name}: more than {self.intensity} restarts in {self.period:g} s; "
                f"last: {child.spec.id} ({reason})"
            )

    def _back_off(self, child: _Child, reason: str) -> None:
        policy = child.spec.backoff
        uptime = time.monotonic() - child.started_at if child.started_at else 0.0
        if uptime >= policy.reset_after:
            child.failures = 0
        child.failures += 1
        if policy.crash_looping(child.failures):
            self._schedule_retry(child, policy.cooldown, ChildState.CRASH_LOOPING, reason)
            return
        delay = policy.delay(child.failures)
        if delay <= 0.0:
            self._restart(child)
        else:
            self._schedule_retry(child, delay, ChildState.BACKING_OFF, reason)

    def _schedule_retry(self, child: _Child, delay: float, state: ChildState, reason: str) -> None:
        self._cancel_timer(child)
        child.generation += 1
        child.retry_at = time.monotonic() + delay
        generation, child_id, me = child.generation, child.spec.id, self.actor_ref
        child.timer = self.spawn_later(delay, _tell_quietly, me, RetryChild(id=child_id, generation=generation))
        self._set_state(child, state, reason, retry_in=delay)

    def _restart(self, child: _Child) -> None:
        """Restart ``child`` and whatever the strategy says goes with it."""
        ordered = list(self._children.values())
        index = ordered.index(child)
        if self.strategy == "one_for_one":
            group = [child]
        else:
            rest = ordered if self.strategy == "one_for_all" else ordered[index:]
            group = [c for c in rest if c is child or c.ref is not None]
            for other in reversed(group):
                if other is not child:
                    self._shutdown(other)
        for member in group:
            while True:
                try:
                    member.restarts += 1
                    # A child with a backoff goes on from starting to backing-off (or crash-looping).
                    self._start(member, failed=None if member.spec.backoff is not None else ChildState.STOPPED)
                    break
                except ChildStartError as exc:
                    member.last_exit = str(exc)
                    if member.spec.backoff is not None:
                        self._back_off(member, str(exc))
                        break
                    self._count_restart(member, str(exc))  # escalates when it must

    # -- mechanics -----------------------------------------------------------------------------

    def _get(self, child_id: str) -> _Child:
        child = self._children.get(child_id)
        if child is None:
            raise SupervisorError(f"{self.name}: no child named {child_id!r}")
        return child

    def _start(self, child: _Child, *, failed: ChildState | None = ChildState.STOPPED) -> None:
        """Start ``child``; if that fails, put it in the ``failed`` state (``None``: leave it
        starting, for the caller to decide) and raise ``ChildStartError``."""
        spec = child.spec
        self._set_state(child, ChildState.STARTING)
        try:
            ref = spec.start()
            wait_started(ref, timeout=spec.start_timeout)
        except Exception as exc:
            if failed is not None:
                self._set_state(child, failed, f"{type(exc).__name__}: {exc}")
            raise ChildStartError(f"{self.name}: child {spec.id} failed to start: {exc}") from exc
        child.ref = ref
        child.started_at = time.monotonic()
        me, child_id = self.actor_ref, spec.id

        def on_exit(dead: ActorRef[Any], reason: ExitReason) -> None:
            _tell_quietly(
                me,
                ChildExited(id=child_id, urn=dead.actor_urn, reason=str(reason), abnormal=reason.abnormal),
            )

        child.monitor_handle = monitor(ref, on_exit)
        if self.directory is not None:
            self.directory.register(spec.id, ref)
        self._set_state(child, ChildState.RUNNING)

    def _shutdown(self, child: _Child) -> None:
        self._cancel_timer(child)
        ref = child.ref
        if ref is None:
            if child.state is not ChildState.STOPPED:
                self._set_state(child, ChildState.STOPPED)
            return
        self._set_state(child, ChildState.STOPPING)
        self._forget_ref(child)
        shutdown = child.spec.shutdown
        if shutdown == BRUTAL_KILL:
            kill(ref, block=True, timeout=5.0)
        else:
            try:
                ref.stop(block=False)
            except ActorDeadError:
                pass
            timeout = None if shutdown is None else float(shutdown)
            if wait_exited(ref, timeout=timeout) is None:
                logger.warning("%s: child %s did not stop within %s s; killing it", self.name, child.spec.id, shutdown)
                kill(ref, block=True, timeout=5.0)
        self._set_state(child, ChildState.STOPPED, "shutdown")

    def _shutdown_all(self) -> None:
        children = list(reversed(list(self._children.values())))
        if self.parallel_stop:
            gevent.joinall([self.spawn(self._shutdown, child) for child in children], raise_error=True)
            return
        for child in children:
            self._shutdown(child)

    def _forget_ref(self, child: _Child) -> None:
        ref = child.ref
        if ref is None:
            return
        demonitor(ref, child.monitor_handle)
        if self.directory is not None:
            self.directory.unregister(child.spec.id, ref)
        child.ref = None

    def _cancel_timer(self, child: _Child) -> None:
        if child.timer is not None:
            child.timer.kill(block=False)
            child.timer = None
        child.retry_at = None

    def _set_state(
        self, child: _Child, new: ChildState, reason: str | None = None, retry_in: float | None = None
    ) -> None:
        old = child.state
        check_transition(old, new)
        child.state = new
        observer = self.observer() if callable(self.observer) else self.observer
        if observer is not None and old is not new:
            _tell_quietly(
                observer,
                ChildStateChanged(
                    supervisor=self.name,
                    child=child.spec.id,
                    old=old.value,
                    new=new.value,
                    reason=reason,
                    failures=child.failures,
                    retry_in=retry_in,
                ),
            )


def _tell_quietly(ref: ActorRef[Any], message: object) -> None:
    """Tell upward without caring whether the receiver still lives (it may be shutting down)."""
    try:
        ref.tell(message)
    except ActorDeadError:
        pass

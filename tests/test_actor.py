"""The gevent actor base: replies, failures contained, exit reasons, monitors."""

from __future__ import annotations

from typing import Any

import gevent
import msgspec
import pykka
import pytest
from gevent.event import Event

from startos.supervision import (
    Actor,
    ActorCrashed,
    ExitReason,
    UnknownMessage,
    exit_reason,
    handles,
    kill,
    monitor,
    running_greenlets,
    wait_exited,
    wait_started,
)

pytestmark = pytest.mark.usefixtures("quiet_crashes")


class Ping(msgspec.Struct, frozen=True):
    n: int


class Fail(msgspec.Struct, frozen=True):
    exc: Any


class Block(msgspec.Struct, frozen=True):
    event: Any


class Later(msgspec.Struct, frozen=True):
    value: int


class Echo(Actor):
    def __init__(self, fail_start: bool = False) -> None:
        super().__init__()
        self.fail_start = fail_start
        self.seen: list[int] = []

    def on_start(self) -> None:
        if self.fail_start:
            raise RuntimeError("cannot start")

    @handles(Ping)
    def ping(self, message: Ping) -> int:
        self.seen.append(message.n)
        return message.n + 1

    @handles(Fail)
    def fail(self, message: Fail) -> None:
        raise message.exc

    @handles(Block)
    def block(self, message: Block) -> None:
        message.event.wait()

    @handles(Later)
    def later(self, message: Later) -> None:
        reply = self.defer_reply()
        assert reply is not None
        gevent.spawn(reply.set, message.value * 2)


def reasons_of(ref: pykka.ActorRef[Any]) -> list[ExitReason]:
    got: list[ExitReason] = []
    monitor(ref, lambda _ref, reason: got.append(reason))
    return got


def test_ask_and_tell_are_handled_in_order() -> None:
    ref = Echo.start()
    for n in range(5):
        ref.tell(Ping(n=n))
    assert ref.ask(Ping(n=10)) == 11
    assert ref.proxy().seen.get() == [0, 1, 2, 3, 4, 10]
    ref.stop()


def test_an_asks_exception_goes_to_the_asker_and_the_actor_lives() -> None:
    ref = Echo.start()
    with pytest.raises(ValueError, match="bad"):
        ref.ask(Fail(exc=ValueError("bad")))
    assert ref.ask(Ping(n=1)) == 2
    ref.stop()


def test_unknown_message_type_is_a_typed_error() -> None:
    ref = Echo.start()
    with pytest.raises(UnknownMessage, match="does not handle str"):
        ref.ask("hello")
    ref.stop()


def test_a_failing_tell_kills_only_that_actor_and_reports_why() -> None:
    victim, bystander = Echo.start(), Echo.start()
    reasons = reasons_of(victim)
    victim.tell(Fail(exc=RuntimeError("kaput")))
    reason = wait_exited(victim, timeout=5)
    assert reason is not None and reason.kind == "error" and "kaput" in reason.message
    assert reasons == [reason]
    assert bystander.ask(Ping(n=1)) == 2
    bystander.stop()


@pytest.mark.parametrize("exc", [KeyboardInterrupt("ctrl-c"), SystemExit(3), gevent.Timeout()])
def test_a_base_exception_never_stops_the_other_actors(exc: BaseException) -> None:
    victim, bystander = Echo.start(), Echo.start()
    with pytest.raises(pykka.ActorDeadError):
        victim.ask(Fail(exc=exc))
    reason = wait_exited(victim, timeout=5)
    assert reason is not None and reason.abnormal
    assert bystander.is_alive() and bystander.ask(Ping(n=2)) == 3
    bystander.stop()


def test_a_killed_greenlet_is_reported_as_killed_and_pending_asks_fail() -> None:
    ref = Echo.start()
    reasons = reasons_of(ref)
    release = Event()
    ref.tell(Block(event=release))
    pending = ref.ask(Ping(n=1), block=False)
    kill(ref)
    assert exit_reason(ref) == ExitReason("killed", "greenlet killed")
    assert [r.kind for r in reasons] == ["killed"]
    with pytest.raises(pykka.ActorDeadError):
        pending.get(timeout=5)
    with pytest.raises(pykka.ActorDeadError):
        ref.ask(Ping(n=2))


def test_on_start_failure_has_a_reason_and_wait_started_raises() -> None:
    ref = Echo.start(fail_start=True)
    with pytest.raises(ActorCrashed, match="cannot start"):
        wait_started(ref, timeout=5)
    reason = wait_exited(ref, timeout=5)
    assert reason is not None and "on_start" in reason.message


def test_monitoring_a_dead_actor_fires_at_once() -> None:
    ref = Echo.start()
    ref.stop()
    got = Event()
    seen: list[ExitReason] = []

    def record(_ref: Any, reason: ExitReason) -> None:
        seen.append(reason)
        got.set()

    monitor(ref, record)
    assert got.wait(timeout=5)
    assert seen[0].kind == "normal"


def test_a_graceful_stop_is_normal_and_answers_queued_asks_first() -> None:
    ref = Echo.start()
    future = ref.ask(Ping(n=7), block=False)
    ref.stop()
    assert future.get(timeout=5) == 8
    assert exit_reason(ref) == ExitReason("normal")


def test_deferred_replies_come_from_elsewhere() -> None:
    ref = Echo.start()
    assert ref.ask(Later(value=21), timeout=5) == 42
    ref.stop()


def test_ask_timeout_is_pykkas_timeout() -> None:
    ref = Echo.start()
    release = Event()
    ref.tell(Block(event=release))
    with pytest.raises(pykka.Timeout):
        ref.ask(Ping(n=1), timeout=0.05)
    release.set()
    assert ref.ask(Ping(n=1), timeout=5) == 2
    ref.stop()


# -- greenlets an actor owns ------------------------------------------------------------------


class Spawn(msgspec.Struct, frozen=True):
    """Start a job greenlet that blocks until ``event`` is set (``None``: forever)."""

    event: Any = None
    later: float | None = None


class AnswerLater(msgspec.Struct, frozen=True):
    running: Any  # set once the answering greenlet runs


class Owner(Actor):
    """Spawns greenlets on request and remembers them; records how each one ended."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[gevent.Greenlet] = []
        self.ended: list[str] = []

    def _job(self, event: Event | None) -> None:
        try:
            (event or Event()).wait()
        except BaseException as exc:
            self.ended.append(type(exc).__name__)
            raise
        self.ended.append("done")

    @handles(Spawn)
    def spawn_job(self, message: Spawn) -> gevent.Greenlet:
        if message.later is None:
            greenlet = self.spawn(self._job, message.event)
        else:
            greenlet = self.spawn_later(message.later, self._job, message.event)
        self.spawned.append(greenlet)
        return greenlet

    @handles(AnswerLater)
    def answer_after(self, message: AnswerLater) -> None:
        def never() -> None:
            message.running.set()
            Event().wait()

        self.answer_later(never)


def test_stop_returns_only_once_the_actors_blocked_greenlets_are_dead() -> None:
    ref = Owner.start()
    forever = ref.ask(Spawn())
    timer = ref.ask(Spawn(later=3600))
    actor = ref._actor_weakref()
    assert actor is not None and set(actor.greenlets) == {forever, timer}
    assert {g for a, g in running_greenlets() if a is actor} == {forever, timer}
    ref.stop()  # blocks until the actor exited, greenlets included
    assert forever.dead and timer.dead
    assert actor.ended == ["GreenletExit"]  # the timer never ran its function
    assert actor.greenlets == [] and not [g for a, g in running_greenlets() if a is actor]


def test_a_killed_actor_ends_its_greenlets_too() -> None:
    ref = Owner.start()
    jobs = [ref.ask(Spawn()) for _ in range(3)]
    kill(ref)
    assert exit_reason(ref) == ExitReason("killed", "greenlet killed")
    assert all(job.dead for job in jobs)


def test_a_crashed_actor_ends_its_greenlets_too() -> None:
    ref = Owner.start()
    job = ref.ask(Spawn())
    ref.tell(Fail(RuntimeError("boom")))
    assert wait_exited(ref, timeout=5) is not None
    assert job.dead


def test_finished_jobs_leave_the_group_and_an_exited_actor_starts_none() -> None:
    ref = Owner.start()
    event = Event()
    job = ref.ask(Spawn(event=event))
    actor = ref._actor_weakref()
    assert actor is not None
    event.set()
    job.join(timeout=5)
    assert actor.ended == ["done"] and actor.greenlets == []
    ref.stop()
    late = actor.spawn(gevent.sleep, 3600)  # e.g. from a job that outlived a handler
    assert not late.started and actor.greenlets == []


@pytest.mark.parametrize("when", ["before it ran", "while it ran"])
def test_an_answer_cut_short_by_the_actors_exit_fails_the_asker_not_its_greenlet(when: str) -> None:
    ref = Owner.start()
    running = Event()
    future = ref.ask(AnswerLater(running=running), block=False)
    if when == "while it ran":
        assert running.wait(timeout=5)
    ref.stop()  # queued behind the ask: without a wait, it ends the answering greenlet before it ran
    assert running.is_set() == (when == "while it ran")
    with pytest.raises(pykka.ActorDeadError, match="exited before it answered"):
        future.get(timeout=5)

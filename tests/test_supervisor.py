"""OTP semantics of the supervisor: order, strategies, restart types, intensity, backoff."""

from __future__ import annotations

from typing import Any

import gevent
import msgspec
import pykka
import pytest
from gevent.event import Event

from startos.protocol.supervision import (
    BRUTAL_KILL,
    ChildSpec,
    ChildStateChanged,
    DeleteChild,
    LookupChild,
    RestartChild,
    StartChild,
    TerminateChild,
    WhichChildren,
)
from startos.supervision import (
    Actor,
    Backoff,
    ChildStartError,
    Directory,
    Supervisor,
    SupervisorError,
    handles,
    kill,
    wait_exited,
    wait_started,
)

from .helpers import wait_until

pytestmark = pytest.mark.usefixtures("quiet_crashes")


class Who(msgspec.Struct, frozen=True):
    pass


class Crash(msgspec.Struct, frozen=True):
    pass


class Quit(msgspec.Struct, frozen=True):
    pass


class Worker(Actor):
    """Records its start and stop in a shared journal."""

    def __init__(
        self, name: str, journal: list[str], *, stop_hangs: Event | None = None, fail_start: bool = False
    ) -> None:
        super().__init__()
        self.name = name
        self.journal = journal
        self.stop_hangs = stop_hangs
        self.fail_start = fail_start

    def on_start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} refuses to start")
        self.journal.append(f"start {self.name}")

    def on_stop(self) -> None:
        self.journal.append(f"stop {self.name}")
        if self.stop_hangs is not None:
            self.stop_hangs.wait()

    @handles(Who)
    def who(self, _message: Who) -> str:
        return self.actor_urn

    @handles(Crash)
    def crash(self, _message: Crash) -> None:
        raise RuntimeError(f"{self.name} crashed")

    @handles(Quit)
    def quit(self, _message: Quit) -> None:
        self.actor_ref.stop(block=False)


class Observer(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[ChildStateChanged] = []

    @handles(ChildStateChanged)
    def changed(self, event: ChildStateChanged) -> None:
        self.events.append(event)

    @handles(Who)
    def seen(self, _message: Who) -> list[ChildStateChanged]:
        return list(self.events)


def spec(name: str, journal: list[str], **options: Any) -> ChildSpec:
    worker_options = {k: options.pop(k) for k in ("stop_hangs", "fail_start") if k in options}
    return ChildSpec(id=name, start=lambda: Worker.start(name, journal, **worker_options), **options)


def boot(*specs: ChildSpec, **options: Any) -> tuple[pykka.ActorRef[Any], Directory]:
    directory = Directory()
    ref = Supervisor.start("test", list(specs), directory=directory, **options)
    wait_started(ref, timeout=5)
    return ref, directory


def urns(directory: Directory, names: str) -> dict[str, str]:
    return {n: directory.ask(n, Who()) for n in names}


def replaced(directory: Directory, name: str, old_urn: str) -> bool:
    ref = directory.get(name)
    return ref is not None and ref.is_alive() and ref.actor_urn != old_urn


def test_children_start_in_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    sup, _ = boot(spec("a", journal), spec("b", journal), spec("c", journal))
    assert journal == ["start a", "start b", "start c"]
    sup.stop()
    assert journal[3:] == ["stop c", "stop b", "stop a"]


def test_one_for_one_restarts_only_the_crashed_child() -> None:
    journal: list[str] = []
    sup, d = boot(spec("a", journal), spec("b", journal), spec("c", journal))
    before = urns(d, "abc")
    d.tell("b", Crash())
    wait_until(lambda: replaced(d, "b", before["b"]), what="b restarted")
    after = urns(d, "abc")
    assert after["a"] == before["a"] and after["c"] == before["c"]
    sup.stop()


def test_one_for_all_restarts_everyone_in_order() -> None:
    journal: list[str] = []
    sup, d = boot(spec("a", journal), spec("b", journal), spec("c", journal), strategy="one_for_all")
    before = urns(d, "abc")
    journal.clear()
    d.tell("b", Crash())
    wait_until(lambda: all(replaced(d, n, before[n]) for n in "abc"), what="all restarted")
    assert journal == ["stop c", "stop a", "start a", "start b", "start c"]
    sup.stop()


def test_rest_for_one_restarts_the_child_and_those_after_it() -> None:
    journal: list[str] = []
    sup, d = boot(spec("a", journal), spec("b", journal), spec("c", journal), strategy="rest_for_one")
    before = urns(d, "abc")
    journal.clear()
    d.tell("b", Crash())
    wait_until(lambda: replaced(d, "b", before["b"]) and replaced(d, "c", before["c"]), what="b and c restarted")
    assert d.ask("a", Who()) == before["a"]
    assert journal == ["stop c", "start b", "start c"]
    sup.stop()


@pytest.mark.parametrize(
    ("restart", "crash_restarts", "normal_restarts"),
    [("permanent", True, True), ("transient", True, False), ("temporary", False, False)],
)
def test_restart_types(restart: str, crash_restarts: bool, normal_restarts: bool) -> None:
    journal: list[str] = []
    sup, d = boot(spec("w", journal, restart=restart))
    for message, expected in ((Crash(), crash_restarts), (Quit(), normal_restarts)):
        ref = d.get("w")
        if ref is None:
            sup.ask(RestartChild(id="w")) if restart != "temporary" else sup.ask(
                StartChild(spec=spec("w", journal, restart=restart))
            )
            ref = d.get("w")
        assert ref is not None
        old = ref.actor_urn
        ref.tell(message)
        wait_exited(ref, timeout=5)
        if expected:
            wait_until(lambda old=old: replaced(d, "w", old), what="restart")
        else:
            gevent.sleep(0)
            info = {c.id: c for c in sup.ask(WhichChildren())}
            if restart == "temporary":
                assert "w" not in info  # temporary children are forgotten when they exit
            else:
                assert info["w"].state == "stopped" and d.get("w") is None
    sup.stop()


def test_too_many_restarts_escalate_to_the_parent() -> None:
    journal: list[str] = []
    directory = Directory()
    inner_spec = ChildSpec(
        id="inner",
        type="supervisor",
        shutdown=None,
        start=lambda: Supervisor.start("inner", [spec("w", journal)], intensity=2, period=60, directory=directory),
    )
    outer = Supervisor.start("outer", [inner_spec, spec("sibling", journal)], directory=directory)
    wait_started(outer, timeout=5)
    first_inner = directory.get("inner")
    assert first_inner is not None
    for _ in range(3):
        ref = wait_until(lambda: directory.get("w"), what="w up")
        ref.tell(Crash())
        wait_exited(ref, timeout=5)
    reason = wait_exited(first_inner, timeout=5)
    assert reason is not None and reason.kind == "error" and "more than 2 restarts" in reason.message
    # The outer supervisor restarted the inner one, which restarted its worker afresh.
    wait_until(lambda: replaced(directory, "inner", first_inner.actor_urn), what="inner restarted")
    assert directory.ask("w", Who())
    outer.stop()
    assert not first_inner.is_alive()


def test_a_child_that_will_not_stop_is_killed_after_its_shutdown_timeout() -> None:
    journal: list[str] = []
    hang = Event()
    sup, d = boot(spec("stubborn", journal, stop_hangs=hang, shutdown=0.05))
    child = d.get("stubborn")
    assert child is not None
    sup.ask(TerminateChild(id="stubborn"))
    assert wait_exited(child, timeout=1) is not None
    assert not child.is_alive()
    sup.stop()


def test_brutal_kill_skips_on_stop() -> None:
    journal: list[str] = []
    sup, d = boot(spec("k", journal, shutdown=BRUTAL_KILL))
    child = d.get("k")
    sup.ask(TerminateChild(id="k"))
    reason = wait_exited(child, timeout=1)  # type: ignore[arg-type]
    assert reason is not None and reason.kind == "killed"
    assert "stop k" not in journal
    sup.stop()


def test_dynamic_children_start_terminate_restart_delete() -> None:
    journal: list[str] = []
    sup, d = boot()
    ref = sup.ask(StartChild(spec=spec("dyn", journal)))
    assert d.get("dyn") is ref
    with pytest.raises(SupervisorError, match="already exists"):
        sup.ask(StartChild(spec=spec("dyn", journal)))
    sup.ask(TerminateChild(id="dyn"))
    assert d.get("dyn") is None and sup.ask(LookupChild(id="dyn")) is None
    again = sup.ask(RestartChild(id="dyn"))
    assert again.is_alive() and again is not ref
    with pytest.raises(SupervisorError, match="stop child"):
        sup.ask(DeleteChild(id="dyn"))
    sup.ask(TerminateChild(id="dyn"))
    sup.ask(DeleteChild(id="dyn"))
    assert sup.ask(WhichChildren()) == []
    with pytest.raises(SupervisorError, match="no child"):
        sup.ask(TerminateChild(id="dyn"))
    sup.stop()


def test_a_static_child_that_fails_to_start_stops_the_started_ones() -> None:
    journal: list[str] = []
    sup = Supervisor.start("test", [spec("a", journal), spec("b", journal, fail_start=True), spec("c", journal)])
    with pytest.raises(Exception, match="b refuses to start"):
        wait_started(sup, timeout=5)
    assert journal == ["start a", "stop a"]
    assert wait_exited(sup, timeout=5) is not None


def test_a_dynamic_child_that_fails_to_start_is_a_typed_error() -> None:
    journal: list[str] = []
    sup, _ = boot()
    with pytest.raises(ChildStartError, match="refuses to start"):
        sup.ask(StartChild(spec=spec("bad", journal, fail_start=True)))
    assert sup.ask(WhichChildren()) == []
    sup.stop()


def test_killing_a_supervisor_leaves_no_orphans() -> None:
    journal: list[str] = []
    sup, d = boot(spec("a", journal), spec("b", journal))
    children = [d.get("a"), d.get("b")]
    kill(sup)
    for child in children:
        assert child is not None
        assert wait_exited(child, timeout=5) is not None


def test_backoff_children_back_off_then_crash_loop_then_retry_after_cooldown() -> None:
    journal: list[str] = []
    observer = Observer.start()
    policy = Backoff(base=0.01, factor=2, cap=0.05, jitter=0.0, crash_loop_after=4, cooldown=0.1, reset_after=60)
    directory = Directory()
    sup = Supervisor.start(
        "procs", [spec("daemon", journal, backoff=policy)], directory=directory, observer=observer, intensity=1
    )
    wait_started(sup, timeout=5)
    for _ in range(4):
        ref = wait_until(lambda: directory.get("daemon"), what="daemon up")
        ref.tell(Crash())
        wait_exited(ref, timeout=5)
    wait_until(lambda: any(c.state == "crash-looping" for c in sup.ask(WhichChildren())), what="crash-looping")
    info = sup.ask(WhichChildren())[0]
    assert info.failures == 4 and "daemon crashed" in (info.last_exit or "")
    assert sup.is_alive()  # a process child never escalates: it is shown, not given up
    wait_until(lambda: directory.get("daemon"), timeout=5, what="retried after cooldown")
    states = [(e.old, e.new) for e in observer.ask(Who())]
    assert ("running", "backing-off") in states
    assert ("running", "crash-looping") in states
    assert ("crash-looping", "starting") in states
    crash_loop = next(e for e in observer.ask(Who()) if e.new == "crash-looping")
    assert crash_loop.reason and "daemon crashed" in crash_loop.reason and crash_loop.retry_in == pytest.approx(0.1)
    sup.stop()
    observer.stop()


def test_backoff_delays_grow_with_jitter_and_a_cap() -> None:
    import random

    policy = Backoff(base=0.5, factor=2.0, cap=30.0, jitter=0.2)
    rng = random.Random(7)
    assert policy.delay(1, rng) == 0.0  # the first restart is immediate
    plain = Backoff(base=0.5, factor=2.0, cap=30.0, jitter=0.0)
    assert [plain.delay(n) for n in range(2, 6)] == [0.5, 1.0, 2.0, 4.0]
    assert plain.delay(50) == 30.0
    samples = [policy.delay(4, rng) for _ in range(200)]
    assert min(samples) >= 2.0 * 0.8 and max(samples) <= 2.0 * 1.2
    assert len(set(samples)) > 100  # jitter spreads restarts
    assert all(policy.delay(40, rng) <= 30.0 for _ in range(50))


def test_parallel_stop_stops_independent_children_at_once() -> None:
    journal: list[str] = []
    hang = Event()
    specs = [spec(name, journal, stop_hangs=hang, shutdown=5.0) for name in "abcd"]
    sup, _ = boot(*specs, parallel_stop=True)
    stopper = gevent.spawn(sup.stop)
    wait_until(lambda: len([e for e in journal if e.startswith("stop")]) == 4, what="all four stopping together")
    hang.set()
    stopper.join(timeout=5)
    assert not sup.is_alive()


def test_a_backoff_child_whose_restart_fails_backs_off_and_the_supervisor_lives() -> None:
    # The dependency watcher's case: it crashes because the store went away, and its immediate
    # restart fails too (the store is not back yet). That is starting -> backing-off, not a bug.
    journal: list[str] = []
    starts = {"n": 0}
    observer = Observer.start()

    def start() -> pykka.ActorRef[Any]:
        starts["n"] += 1
        return Worker.start("watcher", journal, fail_start=starts["n"] == 2)

    policy = Backoff(base=0.01, factor=2, cap=0.05, jitter=0.0, crash_loop_after=10, reset_after=60)
    directory = Directory()
    child = ChildSpec(id="watcher", start=start, backoff=policy)
    sup = Supervisor.start("procs", [child], directory=directory, observer=observer, intensity=1)
    wait_started(sup, timeout=5)
    first = directory.get("watcher")
    assert first is not None
    first.tell(Crash())
    wait_until(lambda: starts["n"] == 3 and replaced(directory, "watcher", first.actor_urn), what="third start")
    assert sup.is_alive()
    states = [(e.old, e.new) for e in observer.ask(Who())]
    assert ("starting", "backing-off") in states and ("backing-off", "starting") in states
    sup.stop()
    observer.stop()

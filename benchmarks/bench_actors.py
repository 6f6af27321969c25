"""Actor base and supervision: ask/tell cost, crash-to-replacement time, memory per actor.

Two tables:

* ``actors``: ``ask`` round-trip (p50/p99) and ``tell`` throughput through ``startos``'s
  ``Actor`` (a pykka actor on a greenlet), against the floor (two greenlets, a gevent
  ``SimpleQueue`` for requests and an ``AsyncResult`` for the reply: the very primitives the
  actor uses) and against pykka's ``ThreadingActor``, both patched (its "threads" are then
  greenlets) and unpatched (real OS threads, in a separate process).
* ``supervision``: a child crashes (its handler raises) and the time runs until its replacement,
  found through the ``Directory``, has answered an ``ask``; against a raw greenlet respawned from
  its ``link_exception`` callback. And the RSS cost of 1,000 idle actors against 1,000 raw
  greenlets blocked on a queue, each measured in a fresh process.
"""

import sys

# pykka's ThreadingActor on real OS threads needs an unpatched interpreter: that worker mode
# (a subprocess of this module) skips the patch. Everything else runs patched, as startd does.
_UNPATCHED_WORKER = "--threading-worker" in sys.argv
if not _UNPATCHED_WORKER:
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import pykka  # noqa: E402
from _common import Row, Table, bench_main, log, median, percentile, time_calls  # noqa: E402
from gevent.event import AsyncResult  # noqa: E402
from gevent.queue import SimpleQueue  # noqa: E402
from pykka import ActorRef  # noqa: E402

from startos.protocol.base import Message  # noqa: E402
from startos.supervision import (  # noqa: E402
    Actor,
    ChildSpec,
    Directory,
    Supervisor,
    handles,
    wait_exited,
    wait_started,
)

ASK_TARGET_RATIO = 1.5
TELL_TARGET = 1_000_000.0
RESTART_TARGET_US = 100.0
MEMORY_TARGET_KIB = 16.0
MEMORY_ACTORS = 1000


class Ping(Message, frozen=True):
    """The request every subject answers with ``1``."""


class Crash(Message, frozen=True):
    """Makes the worker's handler raise."""


PING = Ping()
CRASH = Crash()


class CrashError(Exception):
    """Raised on purpose by the benchmark's workers to make them crash."""


class EchoActor(Actor):
    """The subject: the smallest ``Actor`` with one typed handler."""

    @handles(Ping)
    def ping(self, _message: Ping) -> int:
        """Answer ``1``."""
        return 1


class WorkerActor(EchoActor):
    """A supervised child that crashes on demand."""

    @handles(Crash)
    def crash(self, _message: Crash) -> None:
        """Raise: the actor dies with an ``error`` exit reason and its supervisor restarts it."""
        raise CrashError("crashed on purpose by the benchmark")


class PykkaEcho(pykka.ThreadingActor):
    """The same handler on pykka's own actor runtime."""

    def on_receive(self, message: Any) -> Any:
        return 1


class RawServer:
    """The floor: one greenlet serving a ``SimpleQueue``; replies go through an ``AsyncResult``."""

    def __init__(self) -> None:
        self.inbox: SimpleQueue = SimpleQueue()
        self.greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        inbox = self.inbox
        crash_type = Crash
        while True:
            message, reply = inbox.get()
            if message is None:
                return
            if type(message) is crash_type:
                raise CrashError("crashed on purpose by the benchmark")
            if reply is not None:
                reply.set(1)

    def ask(self, message: object) -> Any:
        """Send ``message`` and wait for the reply."""
        reply = AsyncResult()
        self.inbox.put((message, reply))
        return reply.get()

    def tell(self, message: object) -> None:
        """Send ``message`` without waiting."""
        self.inbox.put((message, None))

    def stop(self) -> None:
        self.inbox.put((None, None))
        self.greenlet.join(timeout=5)


class RawRestarter:
    """The floor of a restart: a replacement greenlet spawned from the dead one's link callback."""

    def __init__(self) -> None:
        self.current = self._spawn()

    def _spawn(self) -> RawServer:
        server = RawServer()
        server.greenlet.link_exception(self._replace)
        return server

    def _replace(self, _dead: gevent.Greenlet) -> None:
        self.current = self._spawn()


# -- ask / tell --------------------------------------------------------------------------------


def _tell_rate(tell: Callable[[object], None], flush: Callable[[], object], count: int) -> float:
    """Messages per second: ``count`` tells, then one ask that can only return after them."""
    start = time.perf_counter()
    for _ in range(count):
        tell(PING)
    flush()
    return count / (time.perf_counter() - start)


def _threading_numbers(asks: int, tells: int, repeats: int) -> dict[str, float]:
    """Ask percentiles (µs) and tell rate of a ThreadingActor in this (unpatched) process."""
    ref = PykkaEcho.start()
    try:
        time_calls(lambda: ref.ask(PING), min(asks, 1000))
        samples = time_calls(lambda: ref.ask(PING), asks)
        rates = [_tell_rate(ref.tell, lambda: ref.ask(PING), tells) for _ in range(repeats)]
    finally:
        ref.stop()
    return {
        "p50": percentile(samples, 50) / 1000,
        "p99": percentile(samples, 99) / 1000,
        "tell": median(rates),
    }


def _unpatched_threading(quick: bool) -> dict[str, float] | None:
    """Run pykka's ThreadingActor on OS threads in a fresh, unpatched interpreter."""
    asks, tells = (1000, 20_000) if quick else (5000, 100_000)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--threading-worker",
        f"--asks={asks}",
        f"--tells={tells}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        log(f"unpatched ThreadingActor run failed: {exc}")
        return None
    numbers: dict[str, float] = json.loads(done.stdout)
    return numbers


def bench_ask_tell(quick: bool) -> Table:
    """The ``actors`` table."""
    rounds, per_round = (3, 2000) if quick else (6, 5000)
    tells, tell_repeats = (50_000, 3) if quick else (200_000, 5)
    table = Table("actors", "ask round-trip and tell throughput through the actor base")

    actor = EchoActor.start()
    wait_started(actor)
    floor = RawServer()
    threaded = PykkaEcho.start()
    subjects: dict[str, Callable[[], object]] = {
        "actor": lambda: actor.ask(PING),
        "floor": lambda: floor.ask(PING),
        "threading": lambda: threaded.ask(PING),
    }
    samples: dict[str, list[int]] = {name: [] for name in subjects}
    rates: dict[str, list[float]] = {name: [] for name in subjects}
    try:
        log(f"ask: {rounds} interleaved rounds of {per_round} per subject")
        for func in subjects.values():
            time_calls(func, 1000)  # warm-up
        for _ in range(rounds):
            for name, func in subjects.items():
                gc.collect()
                samples[name].extend(time_calls(func, per_round))
        log(f"tell: {tell_repeats} x {tells:,} per subject")
        tellers: dict[str, Callable[[object], None]] = {
            "actor": actor.tell,
            "floor": floor.tell,
            "threading": threaded.tell,
        }
        for _ in range(tell_repeats):
            for name, teller in tellers.items():
                gc.collect()
                rates[name].append(_tell_rate(teller, subjects[name], tells))
    finally:
        actor.stop()
        threaded.stop()
        floor.stop()

    log("ThreadingActor on OS threads, in an unpatched subprocess")
    unpatched = _unpatched_threading(quick)

    def p(name: str, pct: float) -> float:
        return percentile(samples[name], pct) / 1000

    floor_name = "raw gevent request/reply (floor)"
    patched_name = "pykka ThreadingActor, patched (greenlet threads)"
    os_name = "pykka ThreadingActor, unpatched (OS threads)"
    ratio = p("actor", 50) / p("floor", 50)
    table.add(
        Row(
            "ask p50 (µs)",
            p("actor", 50),
            floor_name,
            p("floor", 50),
            f"≤ {ASK_TARGET_RATIO}x floor",
            ratio <= ASK_TARGET_RATIO,
        )
    )
    table.add(Row("ask p99 (µs)", p("actor", 99), floor_name, p("floor", 99)))
    table.add(Row("ask p50 (µs)", p("actor", 50), patched_name, p("threading", 50)))
    table.add(Row("ask p99 (µs)", p("actor", 99), patched_name, p("threading", 99)))
    if unpatched is not None:
        table.add(Row("ask p50 (µs)", p("actor", 50), os_name, unpatched["p50"]))
        table.add(Row("ask p99 (µs)", p("actor", 99), os_name, unpatched["p99"]))
    tell = median(rates["actor"])
    table.add(Row("tell (msg/s)", tell, floor_name, median(rates["floor"]), "≥ 1,000,000 msg/s", tell >= TELL_TARGET))
    table.add(Row("tell (msg/s)", tell, patched_name, median(rates["threading"])))
    if unpatched is not None:
        table.add(Row("tell (msg/s)", tell, os_name, unpatched["tell"]))
    table.notes += [
        f"ask: {rounds * per_round:,} timed asks per subject, in {rounds} interleaved rounds; "
        "the floor uses the same primitives as the actor (gevent `SimpleQueue` inbox, "
        "`AsyncResult` reply), so the ratio is the price of pykka's envelope, future and dispatch.",
        f"tell: {tells:,} tells then one ask that flushes them, median of {tell_repeats} runs; "
        "the count includes handling every message, not only enqueueing it.",
        "pykka's ThreadingActor works under `monkey.patch_all()` (no deadlock): its threads "
        "become greenlets. The unpatched row runs it on real OS threads in a separate process; "
        "an OS-thread handoff costs ~12 µs when both threads share one (busy) core and ~60-90 µs "
        "across two idle cores of this kind of VM, so that row moves with the machine's load.",
    ]
    if unpatched is None:
        table.notes.append("the unpatched ThreadingActor run failed: see the log above.")
    return table


# -- supervision -------------------------------------------------------------------------------


def _await_replacement(current: Callable[[], object], old: object, timeout: float = 5.0) -> Any:
    """Yield to the hub until ``current()`` returns something other than ``old``."""
    deadline = time.monotonic() + timeout
    while True:
        now = current()
        if now is not None and now is not old:
            return now
        if time.monotonic() > deadline:
            raise TimeoutError("no replacement appeared")
        gevent.sleep(0)


def _restart_samples(count: int) -> list[int]:
    """Crash → replacement (found through the Directory) has answered an ask, in ns."""
    directory = Directory()
    supervisor = Supervisor.start(
        "bench",
        [ChildSpec(id="worker", start=WorkerActor.start)],
        intensity=10**9,
        period=1.0,
        directory=directory,
    )
    wait_started(supervisor)
    clock = time.perf_counter_ns
    samples: list[int] = []
    try:
        for _ in range(count):
            old: ActorRef[Any] | None = directory.get("worker")
            assert old is not None
            start = clock()
            old.tell(CRASH)
            fresh = _await_replacement(lambda: directory.get("worker"), old)
            fresh.ask(PING)
            samples.append(clock() - start)
    finally:
        supervisor.stop()
        wait_exited(supervisor, timeout=5)
    return samples


def _raw_restart_samples(count: int) -> list[int]:
    """The same measurement for a raw greenlet respawned from its link callback."""
    hub = gevent.get_hub()
    hub.NOT_ERROR = (*hub.NOT_ERROR, CrashError)  # the floor does not print tracebacks either
    restarter = RawRestarter()
    clock = time.perf_counter_ns
    samples: list[int] = []
    for _ in range(count):
        old = restarter.current
        start = clock()
        old.tell(CRASH)
        fresh = _await_replacement(lambda: restarter.current, old)
        fresh.ask(PING)
        samples.append(clock() - start)
    restarter.current.stop()
    return samples


def _memory_per_item(kind: str, repeats: int) -> float | None:
    """KiB of RSS per idle actor or blocked greenlet: median over fresh processes."""
    values: list[float] = []
    for _ in range(repeats):
        command = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", kind]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
        except (subprocess.SubprocessError, OSError) as exc:
            log(f"memory run for {kind} failed: {exc}")
            return None
        values.append(float(json.loads(done.stdout)["kib"]))
    return median(values)


def bench_supervision(quick: bool) -> Table:
    """The ``supervision`` table."""
    count = 500 if quick else 3000
    repeats = 1 if quick else 3
    table = Table("supervision", "crash → supervised replacement answering; memory per idle actor")
    # A crash logs a traceback (at ERROR) and the supervisor a warning: silence both.
    logging.getLogger("startos").setLevel(logging.CRITICAL)

    log(f"restart: {count} crashes per subject")
    _restart_samples(50)  # warm-up
    _raw_restart_samples(50)
    sup_samples = _restart_samples(count)
    raw_samples = _raw_restart_samples(count)

    log(f"memory: {MEMORY_ACTORS} idle actors vs greenlets, {repeats} fresh process(es) each")
    actor_kib = _memory_per_item("actors", repeats)
    greenlet_kib = _memory_per_item("greenlets", repeats)

    raw_name = "raw greenlet respawned by its link callback"
    p50 = percentile(sup_samples, 50) / 1000
    table.add(
        Row(
            "restart p50 (µs)",
            p50,
            raw_name,
            percentile(raw_samples, 50) / 1000,
            f"≤ {RESTART_TARGET_US:g} µs",
            p50 <= RESTART_TARGET_US,
        )
    )
    table.add(Row("restart p99 (µs)", percentile(sup_samples, 99) / 1000, raw_name, percentile(raw_samples, 99) / 1000))
    if actor_kib is not None:
        table.add(
            Row(
                "RSS per idle actor (KiB)",
                actor_kib,
                "raw greenlet blocked on a queue",
                greenlet_kib,
                f"≤ {MEMORY_TARGET_KIB:g} KiB",
                actor_kib <= MEMORY_TARGET_KIB,
            )
        )
    table.notes += [
        f"restart: {count:,} crashes; the clock starts when the crash is told and stops when "
        "the replacement, looked up in the `Directory`, has answered an `ask`. The crash is a "
        "handler raising, so it goes through the crash log (a formatted traceback) and the "
        "supervisor's warning; logging is set to CRITICAL, so nothing is printed.",
        f"memory: RSS growth (psutil, after `gc.collect()`) over {MEMORY_ACTORS:,} started idle "
        f"actors, divided by {MEMORY_ACTORS:,}; median of {repeats} fresh process(es).",
    ]
    return table


# -- worker modes (subprocesses) ---------------------------------------------------------------


def _memory_worker(kind: str) -> None:
    """Print ``{"kib": ...}``: RSS growth per idle actor or blocked greenlet in this process."""
    import psutil  # type: ignore[import-untyped,unused-ignore]  # stubs may be absent

    process = psutil.Process()
    keep: list[Any] = []

    def spawn(count: int) -> None:
        if kind == "actors":
            refs = [EchoActor.start() for _ in range(count)]
            for ref in refs:
                wait_started(ref)
            keep.extend(refs)
        else:
            queues = [SimpleQueue() for _ in range(count)]
            keep.extend((queue, gevent.spawn(queue.get)) for queue in queues)
            gevent.sleep(0.01)  # let every greenlet run up to its blocking get()

    spawn(100)  # warm imports, caches and free lists before measuring
    gc.collect()
    before = process.memory_info().rss
    spawn(MEMORY_ACTORS)
    gc.collect()
    after = process.memory_info().rss
    print(json.dumps({"kib": (after - before) / MEMORY_ACTORS / 1024}))
    if kind == "actors":
        pykka.ActorRegistry.stop_all(block=True, timeout=10)
    else:
        gevent.killall([greenlet for _queue, greenlet in keep], block=True, timeout=5)


def run(quick: bool) -> list[Table]:
    """Both tables of this module."""
    return [bench_ask_tell(quick), bench_supervision(quick)]


def _worker_main() -> bool:
    """Handle the subprocess modes; ``False`` when this is a normal benchmark run."""
    if _UNPATCHED_WORKER:
        parser = argparse.ArgumentParser()
        parser.add_argument("--threading-worker", action="store_true")
        parser.add_argument("--asks", type=int, default=5000)
        parser.add_argument("--tells", type=int, default=100_000)
        args = parser.parse_args()
        print(json.dumps(_threading_numbers(args.asks, args.tells, repeats=3)))
        return True
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-worker":
        _memory_worker(sys.argv[2])
        return True
    return False


if __name__ == "__main__" and not _worker_main():
    bench_main(run, __doc__)

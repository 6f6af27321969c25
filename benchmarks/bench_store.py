"""State tree: durable patches per second and commit-to-subscriber latency.

One table, ``store``:

* durable patches/s through ``StoreActor`` (``DbApply``, answered after an fsync'ed group
  commit; SQLite WAL with ``synchronous=FULL``, the default), with one writer waiting for each
  ack and with 50 writer greenlets whose patches share commits;
* the baselines, in the same process and on the same disk: raw ``sqlite3`` with the same
  pragmas inserting one row per transaction (on the calling thread, and through a one-thread
  gevent pool as the store does), and 50 rows per transaction;
* the time from issuing a ``DbApply`` to each of 100 subscribers receiving its revision,
  against the same path built by hand (commit on a thread pool, then put to 100 gevent queues).
"""

from gevent import monkey

monkey.patch_all()

import shutil  # noqa: E402
import sqlite3  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, cast  # noqa: E402

import gevent  # noqa: E402
import msgspec  # noqa: E402
from _common import Row, Table, bench_main, filesystem_of, log, median, percentile  # noqa: E402
from gevent.queue import Queue  # noqa: E402
from gevent.threadpool import ThreadPool  # noqa: E402
from pykka import ActorRef  # noqa: E402

from startos.actors.store import StoreActor, Subscription  # noqa: E402
from startos.protocol.store import DbApply, DbSubscribe  # noqa: E402
from startos.supervision import wait_started  # noqa: E402

PATCHES_TARGET = 5000.0
SUBSCRIBER_P99_TARGET_MS = 20.0
WRITERS = 50
SUBSCRIBERS = 100


def _patch(key: str, value: int) -> list[dict[str, Any]]:
    return [{"op": "add", "path": f"/public/ui/{key}", "value": value}]


def _start_store(path: Path) -> ActorRef[Any]:
    ref = StoreActor.start(path)
    wait_started(ref, timeout=30)
    return ref


def _sequential(store: ActorRef[Any], count: int) -> float:
    """Patches/s with one writer waiting for each durable ack."""
    start = time.perf_counter()
    for i in range(count):
        store.ask(DbApply(patch=_patch("seq", i), owner="client"))
    return count / (time.perf_counter() - start)


def _concurrent(store: ActorRef[Any], writers: int, each: int) -> float:
    """Patches/s with ``writers`` greenlets, each waiting for its own acks."""

    def writer(k: int) -> None:
        for i in range(each):
            store.ask(DbApply(patch=_patch(f"w{k}", i), owner="client"))

    start = time.perf_counter()
    gevent.joinall([gevent.spawn(writer, k) for k in range(writers)], raise_error=True)
    return writers * each / (time.perf_counter() - start)


def _subscriber_latencies(store: ActorRef[Any], revisions: int) -> list[int]:
    """ns from issuing each ``DbApply`` to each subscriber's receipt of its revision."""
    subs: list[Subscription] = []
    for _ in range(SUBSCRIBERS):
        subs.append(cast(Subscription, store.ask(DbSubscribe(pointer="/public"))))
    received: list[list[tuple[int, int]]] = [[] for _ in subs]
    clock = time.perf_counter_ns

    def follow(sub: Subscription, out: list[tuple[int, int]]) -> None:
        while True:
            revision = sub.get(timeout=10)
            if revision is None:
                return
            out.append((revision.id, clock()))

    readers = [gevent.spawn(follow, sub, out) for sub, out in zip(subs, received, strict=True)]
    issued: dict[int, int] = {}
    for i in range(revisions):
        start = clock()
        revision_id = cast(int, store.ask(DbApply(patch=_patch("sub", i), owner="client")))
        issued[revision_id] = start
    gevent.sleep(0.05)  # let the last revision reach every reader
    for sub in subs:
        sub.close()
    gevent.joinall(readers, timeout=10)
    latencies = [at - issued[rid] for out in received for rid, at in out if rid in issued]
    if len(latencies) != revisions * SUBSCRIBERS:
        raise RuntimeError(f"expected {revisions * SUBSCRIBERS} deliveries, got {len(latencies)}")
    return latencies


# -- raw SQLite baselines ----------------------------------------------------------------------


class RawLog:
    """A bare SQLite revision log with the store's pragmas and row shape."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE revisions (id INTEGER PRIMARY KEY, patch TEXT, ts REAL)")
        self.next_id = 1

    def commit(self, rows: int = 1) -> int:
        """One transaction inserting ``rows`` rows; returns the last id."""
        now = time.time()
        first = self.next_id
        self.next_id += rows
        batch = [(first + n, msgspec.json.encode(_patch("raw", first + n)).decode(), now) for n in range(rows)]
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany("INSERT INTO revisions (id, patch, ts) VALUES (?, ?, ?)", batch)
        self.conn.execute("COMMIT")
        return self.next_id - 1

    def close(self) -> None:
        self.conn.close()


def _raw_rate(commit: Callable[[], object], transactions: int, rows: int) -> float:
    start = time.perf_counter()
    for _ in range(transactions):
        commit()
    return transactions * rows / (time.perf_counter() - start)


def _raw_subscriber_latencies(raw: RawLog, pool: ThreadPool, revisions: int) -> list[int]:
    """The floor of fan-out: commit on a thread pool, then put to 100 gevent queues."""
    queues: list[Queue] = [Queue() for _ in range(SUBSCRIBERS)]
    received: list[list[tuple[int, int]]] = [[] for _ in queues]
    clock = time.perf_counter_ns

    def follow(queue: Queue, out: list[tuple[int, int]]) -> None:
        while True:
            item = queue.get()
            if item is None:
                return
            out.append((item, clock()))

    readers = [gevent.spawn(follow, q, out) for q, out in zip(queues, received, strict=True)]
    issued: dict[int, int] = {}
    for _ in range(revisions):
        start = clock()
        revision_id = pool.apply(raw.commit)
        for queue in queues:
            queue.put_nowait(revision_id)
        issued[revision_id] = start
    for queue in queues:
        queue.put_nowait(None)
    gevent.joinall(readers, timeout=10)
    return [at - issued[rid] for out in received for rid, at in out]


def run(quick: bool) -> list[Table]:
    """The ``store`` table."""
    rounds = 2 if quick else 4
    sequential_count = 250 if quick else 750  # per round
    each = 20 if quick else 50  # patches per writer, per round
    revisions = 50 if quick else 100  # per round
    batched_txns = max(10, sequential_count // 10)
    table = Table("store", "durable patches/s and commit → subscriber latency")
    workdir = Path(tempfile.mkdtemp(prefix="startos-bench-store-"))
    fstype = filesystem_of(workdir)
    rates: dict[str, list[float]] = {"seq": [], "conc": [], "raw": [], "pool": [], "batched": []}
    sub_lat: list[int] = []
    raw_lat: list[int] = []
    pool = ThreadPool(1)
    store: ActorRef[Any] | None = None
    raw: RawLog | None = None
    try:
        store = _start_store(workdir / "state.sqlite3")
        raw = RawLog(workdir / "raw.sqlite3")
        store.ask(DbApply(patch=_patch("warm", 0), owner="client"))
        raw.commit()
        # Store and raw runs alternate, so a burst of outside disk traffic hits both alike.
        for number in range(rounds):
            log(
                f"store round {number + 1}/{rounds}: {sequential_count} sequential patches, "
                f"{WRITERS} writers x {each}, {revisions} revisions to {SUBSCRIBERS} subscribers "
                "(and the same on raw sqlite3)"
            )
            rates["seq"].append(_sequential(store, sequential_count))
            rates["raw"].append(_raw_rate(raw.commit, sequential_count, 1))
            rates["pool"].append(_raw_rate(lambda: pool.apply(raw.commit), sequential_count, 1))
            rates["conc"].append(_concurrent(store, WRITERS, each))
            rates["batched"].append(_raw_rate(lambda: raw.commit(WRITERS), batched_txns, WRITERS))
            sub_lat.extend(_subscriber_latencies(store, revisions))
            raw_lat.extend(_raw_subscriber_latencies(raw, pool, revisions))
    finally:
        if store is not None:
            store.stop()
        pool.kill()
        if raw is not None:
            raw.close()
        shutil.rmtree(workdir, ignore_errors=True)

    seq, conc = median(rates["seq"]), median(rates["conc"])
    raw_direct, raw_pool, raw_batched = median(rates["raw"]), median(rates["pool"]), median(rates["batched"])
    one_row = "raw sqlite3, 1 row/txn"
    on_pool = "raw sqlite3, 1 row/txn via a gevent ThreadPool"
    batched = f"raw sqlite3, {WRITERS} rows/txn (rows/s)"
    table.add(Row("patches/s, 1 writer", seq, one_row, raw_direct))
    table.add(Row("patches/s, 1 writer", seq, on_pool, raw_pool))
    table.add(
        Row(
            f"patches/s, {WRITERS} writers",
            conc,
            one_row,
            raw_direct,
            f"≥ {PATCHES_TARGET:,.0f}/s",
            conc >= PATCHES_TARGET,
        )
    )
    table.add(Row(f"patches/s, {WRITERS} writers", conc, batched, raw_batched))
    fan_out = f"raw: commit on a pool, put to {SUBSCRIBERS} queues"
    p99 = percentile(sub_lat, 99) / 1e6
    table.add(
        Row(
            f"commit → {SUBSCRIBERS} subscribers p50 (ms)",
            percentile(sub_lat, 50) / 1e6,
            fan_out,
            percentile(raw_lat, 50) / 1e6,
        )
    )
    table.add(
        Row(
            f"commit → {SUBSCRIBERS} subscribers p99 (ms)",
            p99,
            fan_out,
            percentile(raw_lat, 99) / 1e6,
            f"≤ {SUBSCRIBER_P99_TARGET_MS:g} ms",
            p99 <= SUBSCRIBER_P99_TARGET_MS,
        )
    )
    table.notes += [
        f"SQLite in WAL mode with synchronous=FULL (the store's default) on {fstype} "
        f"({workdir.parent}); every patch is fsync'ed before its ack.",
        f"rates are the median of {rounds} rounds; store and raw runs alternate within each round.",
        f"1 writer: {sequential_count:,} patches per round, each `ask` waiting for its ack; its ceiling is "
        "one fsync plus the store's hop to its SQLite thread per patch, so the ≥ 5,000/s target "
        "is judged on the concurrent row.",
        f"{WRITERS} writers: {WRITERS} greenlets x {each} patches per round; group commit lets them "
        "share fsyncs. The batched baseline counts rows/s with no per-row ack at all.",
        f"subscribers: {revisions} revisions per round, each timed from issuing the `DbApply` to its "
        f"receipt by each of {SUBSCRIBERS} subscribers to /public "
        f"({rounds * revisions * SUBSCRIBERS:,} deliveries in all); the writer waits for each ack.",
    ]
    return [table]


if __name__ == "__main__":
    bench_main(run, __doc__)

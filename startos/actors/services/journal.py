"""A per-service log journal: timestamped stdout/stderr lines in SQLite, with cursors and follow.

Each service gets ``logs.sqlite3`` in its directory. A line is ``(cursor, time, boot, source,
text)``; the cursor is an increasing integer, so ``package.logs`` pages back (``before``) and
forward (``cursor``) like journalctl, and a follower resumes exactly where it left off. Writes are
batched: lines from every daemon pile up in memory and one writer greenlet commits them on the
journal's own thread. A service that floods its output cannot grow the journal without bound:
lines are capped in length, and the oldest lines beyond ``keep_lines`` are dropped.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Group
from gevent.queue import Full, Queue
from gevent.threadpool import ThreadPool

from startos.protocol.packages import LogEntry

logger = logging.getLogger(__name__)

MAX_LINE = 16 * 1024
FLUSH_EVERY = 0.05  # seconds: lines become visible to readers within this


class Follower:
    """New lines for one reader; it is cut off (``closed == "overflow"``) rather than waited for."""

    def __init__(self, follower_id: int, max_queue: int, registry: dict[int, Follower]) -> None:
        self.id = follower_id
        self.closed: str | None = None
        self._queue: Queue = Queue(maxsize=max_queue)
        self._registry = registry

    def push(self, entry: LogEntry) -> bool:
        try:
            self._queue.put_nowait(entry)
        except Full:
            self.close("overflow")
            return False
        return True

    def get(self, timeout: float | None = None) -> LogEntry | None:
        """The next line; ``None`` once closed and drained, or on timeout."""
        if self.closed is not None and self._queue.empty():
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except gevent.queue.Empty:
            return None
        return item if isinstance(item, LogEntry) else None

    def close(self, reason: str = "closed") -> None:
        if self.closed is None:
            self.closed = reason
            self._registry.pop(self.id, None)
            try:
                self._queue.put_nowait(reason)  # wake a blocked reader
            except Full:
                pass


class Journal:
    """Append and read one service's log lines (not an actor: owned by the service's actors)."""

    def __init__(self, path: Path, *, boot: str, keep_lines: int = 200_000) -> None:
        self.path = path
        self.boot = boot
        self.keep_lines = keep_lines
        self._pool = ThreadPool(1)
        self._pending: list[tuple[float, str, str, str]] = []
        self._wake = Event()
        self._followers: dict[int, Follower] = {}
        self._next_follower = 1
        self._conn: sqlite3.Connection | None = None
        self._last_cursor = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._pool.apply(self._open)
        # The journal's own greenlets (its writer, its readers): ended by ``close``.
        self._greenlets = Group()
        self._writer = self._greenlets.spawn(self._write_loop)

    # -- writing -------------------------------------------------------------------------------

    def append(self, source: str, text: str) -> None:
        """Record one line (without its newline) from ``source`` (e.g. ``web/stdout``)."""
        if len(text) > MAX_LINE:
            text = text[:MAX_LINE] + f"… [{len(text) - MAX_LINE} more characters cut]"
        self._pending.append((time.time(), self.boot, source, text))
        if len(self._pending) == 1:
            self._wake.set()

    def reader(self, stream: Any, source: str, on_line: Callable[[str], None] | None = None) -> gevent.Greenlet:
        """A greenlet that copies ``stream`` (a pipe) into the journal line by line until EOF.

        It belongs to the journal, not to the actor that started it: a daemon's last lines are
        still read after its actor exited; :meth:`close` ends every reader left.
        """

        def pump() -> None:
            buffer = b""
            while True:
                try:
                    chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                except (OSError, ValueError):
                    break
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    text = raw.decode("utf-8", "replace").rstrip("\r")
                    self.append(source, text)
                    if on_line is not None:
                        on_line(text)
                if len(buffer) > MAX_LINE:  # a line that never ends: cut it here
                    self.append(source, buffer.decode("utf-8", "replace"))
                    buffer = b""
            if buffer:
                self.append(source, buffer.decode("utf-8", "replace"))

        return self._greenlets.spawn(pump)

    def _write_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            gevent.sleep(FLUSH_EVERY)  # gather a batch: one transaction per burst, not per line
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                first = self._pool.apply(self._insert, (batch,))
            except sqlite3.Error:
                logger.exception("journal %s: could not write %d lines", self.path, len(batch))
                continue
            entries = [
                LogEntry(cursor=first + i, timestamp=ts, boot=boot, source=source, message=text)
                for i, (ts, boot, source, text) in enumerate(batch)
            ]
            self._last_cursor = entries[-1].cursor
            for follower in list(self._followers.values()):
                for entry in entries:
                    if not follower.push(entry):
                        break

    # -- reading -------------------------------------------------------------------------------

    def read(
        self, *, limit: int = 50, cursor: int | None = None, before: bool = False, boot: str | None = None
    ) -> list[LogEntry]:
        """Lines in cursor order: the newest ``limit`` (default), those after ``cursor``, or before it."""
        self.flush()
        rows = self._pool.apply(self._select, (limit, cursor, before, boot))
        return [LogEntry(cursor=r[0], timestamp=r[1], boot=r[2], source=r[3], message=r[4]) for r in rows]

    def follow(self, max_queue: int = 10_000) -> Follower:
        """Subscribe to lines committed from now on."""
        follower = Follower(self._next_follower, max_queue, self._followers)
        self._next_follower += 1
        self._followers[follower.id] = follower
        return follower

    def boots(self) -> list[str]:
        """Boot ids in the journal, oldest first."""
        self.flush()
        return list(self._pool.apply(self._boots))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every appended line is committed."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self._wake.set()
            gevent.sleep(FLUSH_EVERY)

    def close(self) -> None:
        """Write what is pending, end the journal's greenlets and followers, close the database."""
        self.flush()
        self._greenlets.kill(block=False)
        for follower in list(self._followers.values()):
            follower.close("journal-closed")
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.apply(conn.close)
        self._pool.kill()

    # -- SQLite, on the journal's own thread -----------------------------------------------------

    def _open(self) -> None:
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # logs may lose the last instant on power loss
        conn.execute(
            "CREATE TABLE IF NOT EXISTS lines (cursor INTEGER PRIMARY KEY, ts REAL, boot TEXT, source TEXT, text TEXT)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS lines_boot ON lines (boot, cursor)")
        self._conn = conn

    def _insert(self, batch: list[tuple[float, str, str, str]]) -> int:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN")
        try:
            start = (conn.execute("SELECT COALESCE(MAX(cursor), 0) FROM lines").fetchone()[0] or 0) + 1
            conn.executemany(
                "INSERT INTO lines (cursor, ts, boot, source, text) VALUES (?, ?, ?, ?, ?)",
                [(start + i, *row) for i, row in enumerate(batch)],
            )
            conn.execute("DELETE FROM lines WHERE cursor <= ?", (start + len(batch) - 1 - self.keep_lines,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(start)

    def _select(self, limit: int, cursor: int | None, before: bool, boot: str | None) -> list[tuple[Any, ...]]:
        conn = self._conn
        assert conn is not None
        where: list[str] = []
        args: list[Any] = []
        if boot is not None:
            where.append("boot = ?")
            args.append(boot)
        if cursor is not None:
            where.append("cursor < ?" if before else "cursor > ?")
            args.append(cursor)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        newest_first = cursor is None or before
        order = "DESC" if newest_first else "ASC"
        rows = conn.execute(
            f"SELECT cursor, ts, boot, source, text FROM lines {clause} ORDER BY cursor {order} LIMIT ?",
            (*args, limit),
        ).fetchall()
        return list(reversed(rows)) if newest_first else rows

    def _boots(self) -> list[str]:
        conn = self._conn
        assert conn is not None
        rows = conn.execute("SELECT boot, MIN(cursor) FROM lines GROUP BY boot ORDER BY MIN(cursor)").fetchall()
        return [row[0] for row in rows]

"""StoreActor: the live state tree `{public, private}`, persisted in SQLite, streamed as patches.

Writes follow one path: a patch is applied (path-copying, see ``patching.py``) to the newest
tree in the actor's own greenlet, which gives it the next revision id; a writer greenlet then
commits every pending revision in one SQLite transaction on a dedicated thread (group commit:
many concurrent writers share one fsync), and only then answers the writers and streams the
revisions to subscribers. Readers and subscribers only ever see committed revisions.

If a commit fails (disk full, I/O error), every revision not yet durable is dropped: the tree
goes back to the last committed one and each writer gets a ``StoreError``. Nothing half-done is
visible, on disk or in memory.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import msgspec
import pykka
import sqlite_utils
from gevent.event import Event
from gevent.queue import Full, Queue
from gevent.threadpool import ThreadPool

import startos
from startos.actors.patching import (
    PatchError,
    apply_patch,
    check_pointer,
    resolve,
    view_patch,
)
from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind
from startos.protocol.limits import MAX_TREE_DEPTH, decode_json
from startos.protocol.owners import owner_of
from startos.protocol.public_tree import SchemaError, validate_at
from startos.protocol.store import (
    DbApply,
    DbDump,
    DbPut,
    DbRevision,
    DbSubscribe,
    DbUnsubscribe,
    DbWaitRevision,
    Dump,
    Revision,
)
from startos.supervision import Actor, handles

__all__ = ["NotOwnerError", "StoreActor", "StoreError", "Subscription", "initial_document"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class StoreError(StartOSError):
    """Raised when the database cannot be read or written (corruption, full disk, I/O error)."""

    kind = ErrorKind.DATABASE


class NotOwnerError(PatchError):
    """Raised when a patch writes a subtree its sender does not own (``startos.protocol.owners``)."""

    kind = ErrorKind.AUTHORIZATION


def check_owner(patch: list[dict[str, Any]], owner: str) -> list[str]:
    """The paths ``patch`` writes, after checking that ``owner`` owns every one of them.

    ``test`` ops and the source of a ``copy`` only read: anyone may use them. A ``move`` writes
    both its source (removed) and its target.
    """
    written: list[str] = []
    for op in patch:
        kind = op.get("op")
        if kind == "test":
            continue
        paths = [op.get("path")]
        if kind == "move":
            paths.append(op.get("from"))
        for path in paths:
            if not isinstance(path, str):
                raise PatchError(f"{kind} without a string path")
            holder = owner_of(path)
            if holder != owner:
                who = f"{owner!r}" if owner else "a writer that does not name itself"
                whose = f"owned by {holder!r}" if holder else "written by nobody"
                raise NotOwnerError(f"{path or '(the root)'} is {whose}: {who} may not change it")
            written.append(path)
    return written


def initial_document() -> dict[str, Any]:
    """The tree of a brand-new data directory (REFERENCE.md §5)."""
    return {
        "public": {
            "serverInfo": {
                "id": None,
                "name": None,
                "hostname": None,
                "version": startos.__version__,
                "statusInfo": {
                    "backupProgress": None,
                    "updateProgress": None,
                    "shuttingDown": False,
                    "restarting": False,
                },
                "unreadNotificationCount": 0,
                "language": "en",
                "caFingerprint": None,
                "pubkey": None,
                "network": {},
            },
            "packageData": {},
            "ui": {},
        },
        "private": {},
    }


class Subscription:
    """One subscriber's stream: a bounded queue of ``Revision`` for one pointer.

    ``dump`` is the starting value (``None`` when the subscription replays from ``since``).
    When the subscriber falls ``max_queue`` revisions behind, the stream ends with reason
    ``overflow`` and the client must subscribe again: the store never blocks on a slow reader.
    """

    def __init__(self, sub_id: int, pointer: str, max_queue: int, on_close: Callable[[int], None]) -> None:
        self.id = sub_id
        self.pointer = pointer
        self.dump: Dump | None = None
        self.queue: Queue = Queue(maxsize=max_queue)
        self.closed: str | None = None
        self._on_close = on_close

    def push(self, revision: Revision) -> None:
        if self.closed is not None:
            return
        try:
            self.queue.put_nowait(revision)
        except Full:
            self._end("overflow")

    def get(self, timeout: float | None = None) -> Revision | None:
        """Next revision; ``None`` when the stream ended (see ``closed``) or on timeout."""
        if self.closed is not None and self.queue.empty():
            return None
        try:
            item = self.queue.get(timeout=timeout)
        except gevent.queue.Empty:
            return None
        return item if isinstance(item, Revision) else None

    def close(self) -> None:
        self._end("closed")

    def _end(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._on_close(self.id)
            try:
                self.queue.put_nowait(reason)  # wake a blocked reader
            except Full:
                pass


class _Pending:
    __slots__ = ("doc", "replies", "revision")

    def __init__(self, revision: Revision, doc: Any, replies: list[Any]) -> None:
        self.revision = revision
        self.doc = doc
        self.replies = replies


class StoreActor(Actor):
    """Owns the state tree and its SQLite file; the only writer of both."""

    def __init__(
        self,
        path: Path,
        *,
        snapshot_every: int = 1000,
        keep_revisions: int = 10_000,
        synchronous: str = "FULL",
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.snapshot_every = snapshot_every
        self.keep_revisions = keep_revisions
        self.synchronous = synchronous
        self._pool: ThreadPool | None = None
        self._conn: sqlite3.Connection | None = None
        self._doc: Any = None  # newest tree, possibly not yet durable
        self._revision = 0
        self._committed_doc: Any = None
        self._committed = 0
        self._since_snapshot = 0
        self._log: deque[Revision] = deque(maxlen=keep_revisions)
        self._pending: list[_Pending] = []
        self._wake = Event()
        self._committed_event = Event()
        self._writer: gevent.Greenlet | None = None
        self._subs: dict[int, Subscription] = {}
        self._next_sub = 1

    def __str__(self) -> str:
        return "StoreActor"

    # -- lifecycle -----------------------------------------------------------------------------

    def on_start(self) -> None:
        # /private holds keys and the password hash: the database is for the server's user only.
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        # One thread owns the connection: SQLite's C calls would otherwise hold the gevent hub.
        self._pool = ThreadPool(1)
        doc, revision, log, since_snapshot = self._db(self._open)
        self._doc = self._committed_doc = doc
        self._revision = self._committed = revision
        self._log.extend(log)
        self._since_snapshot = since_snapshot
        self._writer = self.spawn(self._write_loop)
        logger.info("state tree loaded", extra={"revision": revision, "path": str(self.path)})

    def on_stop(self) -> None:
        self._drain()
        self._shutdown("store-stopped")

    def on_exit(self, reason: Any) -> None:
        self._shutdown("store-stopped")

    def _shutdown(self, why: str) -> None:
        if self._writer is not None:
            self._writer.kill(block=False)
            self._writer = None
        for pending in self._pending:
            for reply in pending.replies:
                reply.set_exception(
                    (StoreError, StoreError(f"store stopped before revision {pending.revision.id} was durable"), None)
                )
        self._pending = []
        for sub in list(self._subs.values()):
            sub._end(why)
        pool, self._pool = self._pool, None
        conn, self._conn = self._conn, None
        if pool is not None:
            if conn is not None:
                try:
                    pool.apply(conn.close)
                except Exception:
                    logger.exception("closing the state database failed")
            pool.kill()

    def _drain(self) -> None:
        """Commit whatever is pending before stopping (a clean stop loses nothing)."""
        deadline = time.monotonic() + 5.0
        while self._pending and time.monotonic() < deadline:
            self._committed_event.wait(timeout=0.1)

    # -- requests ------------------------------------------------------------------------------

    @handles(DbDump)
    def dump(self, message: DbDump) -> Dump:
        """The committed value at ``pointer`` with its revision id."""
        check_pointer(message.pointer)
        return Dump(id=self._committed, value=resolve(self._committed_doc, message.pointer))

    @handles(DbRevision)
    def revision(self, _message: DbRevision) -> int:
        """The id of the last committed revision."""
        return self._committed

    @handles(DbApply)
    def apply(self, message: DbApply) -> int | None:
        """Apply a patch; answer with its revision id once it is durable.

        A patch that would nest the tree deeper than ``MAX_TREE_DEPTH`` is refused whole: such a
        tree could no longer be encoded for snapshots, dumps or subscribers.
        """
        if not message.patch:
            return self._committed
        try:
            written = check_owner(message.patch, message.owner)
            doc = apply_patch(self._doc, message.patch, max_depth=MAX_TREE_DEPTH)
            validate_at(doc["public"], written)
            self._doc = doc
        except (PatchError, SchemaError) as exc:
            if self._reply_to is None:
                # A bad patch told by another actor is that actor's bug: log it, keep serving.
                # No traceback: the message is all there is, and it is free of tree values.
                logger.error("dropped a patch that does not apply: %s", exc)
                return None
            raise
        self._revision += 1
        reply = self.defer_reply()
        replies: list[Any] = [] if reply is None else [reply]
        self._pending.append(_Pending(Revision(self._revision, message.patch), self._doc, replies))
        self._wake.set()
        return None

    @handles(DbPut)
    def put(self, message: DbPut) -> int | None:
        """Set the value at ``pointer``: replace it if present, else add it."""
        check_pointer(message.pointer)
        op = "add"
        if message.pointer == "":
            op = "replace"
        else:
            parent, _, last = message.pointer.rpartition("/")
            container = resolve(self._doc, parent)
            if isinstance(container, list):
                op = "replace" if last != "-" else "add"
            elif isinstance(container, dict) and last.replace("~1", "/").replace("~0", "~") in container:
                op = "replace"
        return self.apply(
            DbApply(patch=[{"op": op, "path": message.pointer, "value": message.value}], owner=message.owner)
        )

    @handles(DbSubscribe)
    def subscribe(self, message: DbSubscribe) -> Subscription:
        """Open a stream of committed revisions seen through ``pointer``."""
        check_pointer(message.pointer)
        sub = Subscription(self._next_sub, message.pointer, message.max_queue, self._forget)
        self._next_sub += 1
        replay = self._replay_from(message.since) if message.since is not None else None
        if replay is None:
            sub.dump = Dump(id=self._committed, value=resolve(self._committed_doc, message.pointer))
        self._subs[sub.id] = sub
        for revision in replay or ():
            view = view_patch(revision.patch, sub.pointer, self._committed_doc)
            if view:
                sub.push(Revision(revision.id, view))
        return sub

    @handles(DbUnsubscribe)
    def unsubscribe(self, message: DbUnsubscribe) -> None:
        """Close a subscription (idempotent)."""
        sub = self._subs.get(message.subscription_id)
        if sub is not None:
            sub.close()

    @handles(DbWaitRevision)
    def wait_revision(self, message: DbWaitRevision) -> int | None:
        """Answer once revision ``id`` is committed."""
        if message.id <= self._committed:
            return self._committed
        if message.id > self._revision:
            raise StoreError(f"revision {message.id} does not exist (newest is {self._revision})")
        for pending in self._pending:
            if pending.revision.id >= message.id:
                reply = self.defer_reply()
                if reply is not None:
                    pending.replies.append(_Forward(reply, pending.revision.id))
                return None
        return self._committed

    def _forget(self, sub_id: int) -> None:
        self._subs.pop(sub_id, None)

    def _replay_from(self, since: int) -> list[Revision] | None:
        """Revisions after ``since`` if the in-memory log still has all of them."""
        if since == self._committed:
            return []
        if since > self._committed or not self._log or self._log[0].id > since + 1:
            return None
        return [r for r in self._log if r.id > since]

    # -- the writer ----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if not self._pending:
                continue
            batch, self._pending = self._pending, []
            snapshot = None
            self._since_snapshot += len(batch)
            if self._since_snapshot >= self.snapshot_every:
                snapshot = batch[-1]
            try:
                self._db(self._commit, self._conn, [p.revision for p in batch], snapshot)
            except Exception as exc:  # noqa: BLE001 (any commit failure rolls back the same way)
                self._since_snapshot -= len(batch)
                self._rollback(batch, exc)
                continue
            if snapshot is not None:
                self._since_snapshot = 0
            self._publish(batch)

    def _publish(self, batch: list[_Pending]) -> None:
        # No yield from here to the end: subscribe() always sees a consistent (doc, id) pair.
        last = batch[-1]
        self._committed_doc = last.doc
        self._committed = last.revision.id
        for pending in batch:
            revision = pending.revision
            self._log.append(revision)
            for reply in pending.replies:
                reply.set(revision.id)
            if not self._subs:
                continue
            views: dict[str, list[dict[str, Any]]] = {}
            for sub in list(self._subs.values()):
                view = views.get(sub.pointer)
                if view is None:
                    view = views[sub.pointer] = view_patch(revision.patch, sub.pointer, pending.doc)
                if view:
                    sub.push(Revision(revision.id, view))
        self._committed_event.set()
        self._committed_event.clear()

    def _rollback(self, batch: list[_Pending], exc: Exception) -> None:
        failed = batch + self._pending
        self._pending = []
        self._doc = self._committed_doc
        self._revision = self._committed
        logger.error("commit of %d revisions failed; rolled back: %s", len(failed), exc)
        error = StoreError(f"the change was not saved: {exc}")
        for pending in failed:
            for reply in pending.replies:
                reply.set_exception((StoreError, error, None))

    # -- SQLite, always on the store's own thread ------------------------------------------------

    def _db(self, func: Callable[..., Any], *args: Any) -> Any:
        assert self._pool is not None
        try:
            return self._pool.apply(func, args)
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    def _open(self) -> tuple[Any, int, list[Revision], int]:
        # SQLite gives its -wal and -shm files the database file's mode: create that one 0600.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        db = sqlite_utils.Database(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                db.table("snapshots").create({"id": int, "doc": str, "ts": float}, pk="id")
                db.table("revisions").create({"id": int, "patch": str, "ts": float}, pk="id")
                db.table("snapshots").insert(
                    {"id": 0, "doc": msgspec.json.encode(initial_document()).decode(), "ts": time.time()}
                )
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer startos-py (schema {version}); upgrade to open it")
        return self._load(conn)

    def _load(self, conn: sqlite3.Connection) -> tuple[Any, int, list[Revision], int]:
        row = conn.execute("SELECT id, doc FROM snapshots ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            raise StoreError(f"{self.path} has no snapshot: the file is damaged")
        snap_id, doc = row[0], self._decode(row[1], f"snapshot {row[0]}")
        revision = snap_id
        replayed = 0
        for rev_id, patch_text in conn.execute("SELECT id, patch FROM revisions WHERE id > ? ORDER BY id", (snap_id,)):
            if rev_id != revision + 1:
                raise StoreError(f"{self.path}: revision {revision + 1} is missing from the log")
            try:
                doc = apply_patch(doc, self._decode(patch_text, f"revision {rev_id}"), max_depth=MAX_TREE_DEPTH)
            except PatchError as exc:
                raise StoreError(f"{self.path}: revision {rev_id} does not apply: {exc}") from None
            revision = rev_id
            replayed += 1
        log = [
            Revision(rev_id, self._decode(patch_text, f"revision {rev_id}"))
            for rev_id, patch_text in conn.execute(
                "SELECT id, patch FROM revisions ORDER BY id DESC LIMIT ?", (self.keep_revisions,)
            )
        ]
        log.reverse()
        return doc, revision, log, replayed

    def _decode(self, text: str, what: str) -> Any:
        # A revision holds a patch whose values sit below the root: give it the tree's limit.
        try:
            return decode_json(text, limit=MAX_TREE_DEPTH + 2, what=what)
        except msgspec.DecodeError as exc:
            raise StoreError(f"{self.path}: {what} cannot be read: {exc}") from None

    def _commit(self, conn: sqlite3.Connection | None, revisions: list[Revision], snapshot: _Pending | None) -> None:
        if conn is None:
            raise StoreError("the state database is closed (startd is stopping)")
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO revisions (id, patch, ts) VALUES (?, ?, ?)",
                [(r.id, msgspec.json.encode(r.patch).decode(), now) for r in revisions],
            )
            if snapshot is not None:
                snap_id = snapshot.revision.id
                conn.execute(
                    "INSERT INTO snapshots (id, doc, ts) VALUES (?, ?, ?)",
                    (snap_id, msgspec.json.encode(snapshot.doc).decode(), now),
                )
                conn.execute("DELETE FROM snapshots WHERE id < ?", (snap_id,))
                conn.execute("DELETE FROM revisions WHERE id <= ?", (snap_id - self.keep_revisions,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


class _Forward:
    """A reply that answers a revision waiter with the id it waited for."""

    __slots__ = ("_reply", "_wanted")

    def __init__(self, reply: pykka.Future[Any], wanted: int) -> None:
        self._reply = reply
        self._wanted = wanted

    def set(self, _value: Any = None) -> None:
        self._reply.set(self._wanted)

    def set_exception(self, exc_info: Any = None) -> None:
        self._reply.set_exception(exc_info)

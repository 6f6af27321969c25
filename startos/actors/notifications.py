"""NotificationActor: the server's notifications and its live unread count.

Where they live: in the state tree, under ``/private/notifications`` as
``{nextId, entries: {"<id>": {packageId, createdAt, code, level, title, message, data, seen}}}``,
not in a table of our own. The reason is atomicity: ``/public/serverInfo/unreadNotificationCount``
must change in the *same* revision as the notifications it counts, and only one patch to one
store gives that (two databases would need a two-phase commit, and a crash between them leaves
the badge wrong). The store's group commit makes each change durable before we answer, the tree
is backed up and restored as a whole, and ``/private`` never leaves the server.

Speed: this actor is the only writer of ``/private/notifications`` (as StartOS's notification
code is of its map), so it keeps an in-memory mirror (id -> entry, plus the ids in order) loaded
once at start. ``list`` is a bisect and a slice: O(log n + limit), no store round trip. The mirror
only changes after the store confirmed a revision, so a failed commit leaves both untouched.

Retention keeps the tree (and its snapshots) small: beyond ``keep`` notifications the oldest
*seen* ones are dropped; beyond ``hard_cap`` notifications or ``max_bytes`` of entries the oldest
go whatever their state (a runaway service must not grow the tree without bound). Dropping
happens in the same revision as the creation that caused it.
"""

from __future__ import annotations

import bisect
import logging
from datetime import UTC, datetime
from typing import Any

import msgspec

from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind
from startos.protocol.notifications import (
    DATA_MAX_BYTES,
    DEFAULT_LIMIT,
    MESSAGE_MAX_CHARS,
    TITLE_MAX_CHARS,
    ListNotifications,
    MarkSeen,
    MarkSeenBefore,
    MarkUnseen,
    NotificationWithId,
    Notify,
    RemoveNotifications,
    RemoveNotificationsBefore,
)
from startos.protocol.store import DbApply, DbDump, DbRevision
from startos.supervision import Actor, Directory, handles

__all__ = ["InvalidNotification", "NotificationActor", "NotificationNotFound"]

logger = logging.getLogger(__name__)

ROOT = "/private/notifications"
ENTRIES = f"{ROOT}/entries"
UNREAD = "/public/serverInfo/unreadNotificationCount"


class InvalidNotification(StartOSError):
    """Raised when a notification message breaks a rule (level, title, sizes, ids); nothing changes."""

    kind = ErrorKind.INVALID_PARAMS


class NotificationNotFound(StartOSError):
    """Raised when a request names notification ids that do not exist; nothing changes."""

    kind = ErrorKind.NOT_FOUND


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _size(entry: dict[str, Any]) -> int:
    return len(msgspec.json.encode(entry))


def _cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, its end replaced by an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fitted(message: Notify) -> Notify:
    """``message`` with its title and text cut to their limits.

    Senders inside the server build titles from names they do not control (a package's title or
    id), and a notification that is too long must still be seen: refusing it would lose it,
    since most are told, not asked. Clients of ``notification.create`` are refused instead, by
    the params check, so they learn the limit.
    """
    title, text = message.title, message.message
    if not (isinstance(title, str) and isinstance(text, str)):
        return message  # a wrong type: the validation that follows says so
    if len(title) <= TITLE_MAX_CHARS and len(text) <= MESSAGE_MAX_CHARS:
        return message
    return msgspec.structs.replace(message, title=_cut(title, TITLE_MAX_CHARS), message=_cut(text, MESSAGE_MAX_CHARS))


class NotificationActor(Actor):
    """Creates, lists, marks and removes notifications; keeps the unread count live."""

    def __init__(
        self,
        directory: Directory,
        *,
        keep: int = 1000,
        hard_cap: int = 2000,
        max_bytes: int = 4 * 1024 * 1024,
        store_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        if not 0 < keep <= hard_cap:
            raise ValueError("need 0 < keep <= hard_cap")
        self.directory = directory
        self.keep = keep
        self.hard_cap = hard_cap
        self.max_bytes = max_bytes
        self.store_timeout = store_timeout
        self._entries: dict[int, dict[str, Any]] = {}
        self._ids: list[int] = []  # ascending; ids only ever grow, so creation appends
        self._sizes: dict[int, int] = {}
        self._bytes = 0
        self._unread = 0
        self._next_id = 1

    def __str__(self) -> str:
        return "NotificationActor"

    # -- lifecycle -----------------------------------------------------------------------------

    def on_start(self) -> None:
        private = self._store(DbDump(pointer="/private")).value
        stored = private.get("notifications") if isinstance(private, dict) else None
        patch: list[dict[str, Any]] = []
        if stored is None:
            patch.append({"op": "add", "path": ROOT, "value": {"nextId": 1, "entries": {}}})
            stored = {"nextId": 1, "entries": {}}
        for key, entry in stored["entries"].items():
            self._entries[int(key)] = entry
        self._ids = sorted(self._entries)
        self._next_id = max(int(stored["nextId"]), (self._ids[-1] + 1) if self._ids else 1)
        self._sizes = {i: _size(e) for i, e in self._entries.items()}
        self._bytes = sum(self._sizes.values())
        self._unread = sum(1 for e in self._entries.values() if not e["seen"])
        # Repair a count that drifted (e.g. a tree restored from elsewhere): the badge must match.
        shown = self._store(DbDump(pointer="/public/serverInfo")).value.get("unreadNotificationCount")
        if shown != self._unread:
            patch.append({"op": "add", "path": UNREAD, "value": self._unread})
        if patch:
            self._store(DbApply(patch=patch, owner="notifications"))
        logger.info("notifications loaded", extra={"count": len(self._ids), "unread": self._unread})

    # -- requests ------------------------------------------------------------------------------

    @handles(Notify)
    def notify(self, message: Notify) -> int | None:
        """Store a new notification; reply (to an ask) with its id once durable."""
        try:
            entry = self._validated_entry(message)
        except InvalidNotification:
            if self._reply_to is None:
                # A bad tell is the sender's bug: log it, stay up, change nothing.
                logger.warning("dropped an invalid notification: %r", message, exc_info=True)
                return None
            raise
        new_id = self._next_id
        size = _size(entry)
        dropped = self._overflow(size)
        patch: list[dict[str, Any]] = [{"op": "remove", "path": f"{ENTRIES}/{i}"} for i in dropped]
        patch.append({"op": "add", "path": f"{ENTRIES}/{new_id}", "value": entry})
        patch.append({"op": "replace", "path": f"{ROOT}/nextId", "value": new_id + 1})
        unread = self._unread + 1 - sum(1 for i in dropped if not self._entries[i]["seen"])
        patch.append({"op": "replace", "path": UNREAD, "value": unread})
        try:
            self._store(DbApply(patch=patch, owner="notifications"))
        except StartOSError:
            if self._reply_to is None:
                logger.exception("could not store notification %r", message.title)
                return None
            raise
        self._forget(dropped)
        self._entries[new_id] = entry
        self._ids.append(new_id)
        self._sizes[new_id] = size
        self._bytes += size
        self._unread = unread
        self._next_id = new_id + 1
        return new_id

    @handles(ListNotifications)
    def list_notifications(self, message: ListNotifications) -> list[NotificationWithId]:
        """Up to ``limit`` (default 40) notifications below ``before``, newest first."""
        message = self._validated(message)
        limit = DEFAULT_LIMIT if message.limit is None else message.limit
        end = len(self._ids) if message.before is None else bisect.bisect_left(self._ids, message.before)
        start = max(0, end - limit)
        return [self._listed(i) for i in reversed(self._ids[start:end])]

    @handles(MarkSeen)
    def mark_seen(self, message: MarkSeen) -> int:
        """Mark ``ids`` seen; reply with the revision id."""
        return self._set_seen(self._known(self._validated(message).ids), True)

    @handles(MarkUnseen)
    def mark_unseen(self, message: MarkUnseen) -> int:
        """Mark ``ids`` unseen; reply with the revision id."""
        return self._set_seen(self._known(self._validated(message).ids), False)

    @handles(MarkSeenBefore)
    def mark_seen_before(self, message: MarkSeenBefore) -> int:
        """Mark every id lower than ``before`` seen; reply with the revision id."""
        return self._set_seen(self._below(self._validated(message).before), True)

    @handles(RemoveNotifications)
    def remove(self, message: RemoveNotifications) -> int:
        """Delete ``ids``; reply with the revision id."""
        return self._remove(self._known(self._validated(message).ids))

    @handles(RemoveNotificationsBefore)
    def remove_before(self, message: RemoveNotificationsBefore) -> int:
        """Delete every id lower than ``before``; reply with the revision id."""
        return self._remove(self._below(self._validated(message).before))

    # -- helpers -------------------------------------------------------------------------------

    def _store(self, message: object) -> Any:
        return self.directory.ask("store", message, timeout=self.store_timeout)

    @staticmethod
    def _validated(message: Any) -> Any:
        """Re-check an in-process message against its declared limits (construction does not)."""
        try:
            return msgspec.convert(msgspec.to_builtins(message), type(message))
        except (msgspec.ValidationError, TypeError) as exc:
            raise InvalidNotification(f"{type(message).__name__} rejected: {exc}") from exc

    def _validated_entry(self, message: Notify) -> dict[str, Any]:
        checked: Notify = self._validated(_fitted(message))
        if not checked.title.strip():
            raise InvalidNotification("a notification needs a title that is not blank")
        data_size = len(msgspec.json.encode(checked.data))
        if data_size > DATA_MAX_BYTES:
            raise InvalidNotification(f"notification data is {data_size} bytes encoded; the limit is {DATA_MAX_BYTES}")
        return {
            "packageId": checked.package_id,
            "createdAt": _now(),
            "code": checked.code,
            "level": checked.level,
            "title": checked.title,
            "message": checked.message,
            "data": checked.data,
            "seen": False,
        }

    def _known(self, ids: list[int]) -> list[int]:
        unique = sorted(set(ids))
        missing = [i for i in unique if i not in self._entries]
        if missing:
            listed = ", ".join(str(i) for i in missing)
            noun = "notification" if len(missing) == 1 else "notifications"
            raise NotificationNotFound(f"no {noun} with id {listed}; nothing was changed")
        return unique

    def _below(self, before: int) -> list[int]:
        return self._ids[: bisect.bisect_left(self._ids, before)]

    def _overflow(self, incoming: int) -> list[int]:
        """Ids to drop so that one more entry of ``incoming`` bytes fits the retention limits."""
        count, size = len(self._ids) + 1, self._bytes + incoming
        dropped: list[int] = []
        if count > self.keep:
            for i in self._ids:
                if count <= self.keep:
                    break
                if self._entries[i]["seen"]:
                    dropped.append(i)
                    count -= 1
                    size -= self._sizes[i]
        if count > self.hard_cap or size > self.max_bytes:
            gone = set(dropped)
            for i in self._ids:
                if count <= self.hard_cap and size <= self.max_bytes:
                    break
                if i not in gone:
                    dropped.append(i)
                    count -= 1
                    size -= self._sizes[i]
        return sorted(dropped)

    def _set_seen(self, ids: list[int], seen: bool) -> int:
        changed = [i for i in ids if self._entries[i]["seen"] != seen]
        if not changed:
            return int(self._store(DbRevision()))
        unread = self._unread + (-len(changed) if seen else len(changed))
        patch: list[dict[str, Any]] = [{"op": "replace", "path": f"{ENTRIES}/{i}/seen", "value": seen} for i in changed]
        patch.append({"op": "replace", "path": UNREAD, "value": unread})
        revision = int(self._store(DbApply(patch=patch, owner="notifications")))
        for i in changed:
            self._entries[i] = {**self._entries[i], "seen": seen}
        self._unread = unread
        return revision

    def _remove(self, ids: list[int]) -> int:
        if not ids:
            return int(self._store(DbRevision()))
        unread = self._unread - sum(1 for i in ids if not self._entries[i]["seen"])
        patch: list[dict[str, Any]] = [{"op": "remove", "path": f"{ENTRIES}/{i}"} for i in ids]
        if unread != self._unread:
            patch.append({"op": "replace", "path": UNREAD, "value": unread})
        revision = int(self._store(DbApply(patch=patch, owner="notifications")))
        self._forget(ids)
        self._unread = unread
        return revision

    def _forget(self, ids: list[int]) -> None:
        if not ids:
            return
        for i in ids:
            del self._entries[i]
            self._bytes -= self._sizes.pop(i)
        gone = set(ids)
        self._ids = [i for i in self._ids if i not in gone]  # one pass, however many go

    def _listed(self, i: int) -> NotificationWithId:
        e = self._entries[i]
        return NotificationWithId(
            id=i,
            package_id=e["packageId"],
            created_at=e["createdAt"],
            code=e["code"],
            level=e["level"],
            title=e["title"],
            message=e["message"],
            data=e["data"],
            seen=e["seen"],
        )

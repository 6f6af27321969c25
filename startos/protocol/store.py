"""Messages of the StoreActor (the live state tree) and the JSON Patch operations."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from startos.protocol.base import Message


class AddOp(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="add"):
    path: str
    value: Any


class RemoveOp(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="remove"):
    path: str


class ReplaceOp(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="replace"):
    path: str
    value: Any


class MoveOp(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="move"):
    path: str
    from_: str = msgspec.field(name="from")


class CopyOp(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="copy"):
    path: str
    from_: str = msgspec.field(name="from")


class TestOp(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="test"):
    __test__ = False  # not a pytest test class
    path: str
    value: Any


PatchOp = AddOp | RemoveOp | ReplaceOp | MoveOp | CopyOp | TestOp
"""One RFC 6902 operation."""


class Dump(msgspec.Struct, frozen=True):
    """A value of the tree at a revision."""

    id: int
    value: Any


class Revision(msgspec.Struct, frozen=True):
    """One committed change: ``patch`` holds RFC 6902 operations as plain dicts."""

    id: int
    patch: list[dict[str, Any]]


# -- requests ---------------------------------------------------------------------------------


class DbDump(Message, frozen=True):
    """Reply with a ``Dump`` of the value at ``pointer`` (absolute; "" is the whole tree)."""

    pointer: str = ""


class DbApply(Message, frozen=True):
    """Apply an RFC 6902 patch atomically; reply with the committed revision id once durable.

    ``patch`` holds plain dict operations (already validated by the caller's protocol types).
    An empty patch commits nothing and replies with the current revision. ``owner`` names the
    writer (``startos.protocol.owners``): every op must touch only what that owner owns.
    """

    patch: list[dict[str, Any]]
    owner: str = ""


class DbPut(Message, frozen=True):
    """Set the value at ``pointer`` (creating it or replacing it); reply with the revision id."""

    pointer: str
    value: Any
    owner: str = ""


class DbSubscribe(Message, frozen=True):
    """Open a subscription to ``pointer``; reply with a ``Subscription``.

    With ``since`` and the log still holding every revision after it, the subscription replays
    those revisions instead of starting with a dump.
    """

    pointer: str = "/public"
    since: int | None = None
    max_queue: int = 10_000


class DbUnsubscribe(Message, frozen=True):
    subscription_id: int


class DbRevision(Message, frozen=True):
    """Reply with the id of the last committed revision."""


class DbWaitRevision(Message, frozen=True):
    """Reply once revision ``id`` is committed (or at once if it already is)."""

    id: int


SubscriptionEnd = Literal["closed", "overflow", "store-stopped"]

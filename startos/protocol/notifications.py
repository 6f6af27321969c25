"""Notifications: the NotificationActor's messages and the ``notification.*`` RPC methods.

Shapes follow StartOS (``core/startos/src/notifications.rs``): levels ``success | info |
warning | error``; a listed notification is ``{id, packageId, createdAt, code, level, title,
message, data, seen}``; ``list {before?, limit?}`` is newest first with a default limit of 40;
``mark-seen``/``mark-unseen``/``remove`` take ``{ids}``, ``mark-seen-before``/``remove-before``
take ``{before}``.

One difference on purpose: ``before`` always means "ids lower than it" (StartOS's
``mark-seen-before`` also includes ``before`` itself while its ``remove-before`` does not).

The limits live in the types below, so the wire (the facade's params check) and in-process
senders (the actor re-validates every message with ``msgspec.convert``) obey the same rules,
with one difference: an in-process ``Notify`` whose title or message is too long is cut to the
limit with an ellipsis rather than refused (its sender builds the title from names it does not
control, and a told notification that is refused is lost).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from startos.protocol.base import Message, Params, Result
from startos.protocol.rpc import method

__all__ = [
    "DATA_MAX_BYTES",
    "DEFAULT_LIMIT",
    "LEVELS",
    "MESSAGE_MAX_CHARS",
    "TITLE_MAX_CHARS",
    "ListNotifications",
    "MarkSeen",
    "MarkSeenBefore",
    "MarkUnseen",
    "NotificationBeforeParams",
    "NotificationCreateParams",
    "NotificationIdsParams",
    "NotificationLevel",
    "NotificationListParams",
    "NotificationWithId",
    "Notify",
    "RemoveNotifications",
    "RemoveNotificationsBefore",
]

NotificationLevel = Literal["success", "info", "warning", "error"]
LEVELS: tuple[str, ...] = ("success", "info", "warning", "error")

DEFAULT_LIMIT = 40  # StartOS's default page
TITLE_MAX_CHARS = 200  # a title is one line in a list
MESSAGE_MAX_CHARS = 4000  # long reports belong in ``data`` (e.g. a backup report), not the message
DATA_MAX_BYTES = 16 * 1024  # of ``data`` encoded as JSON; keeps the retained set small (see the actor)

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=TITLE_MAX_CHARS)]
Body = Annotated[str, msgspec.Meta(max_length=MESSAGE_MAX_CHARS)]
NotificationId = Annotated[int, msgspec.Meta(ge=0)]
Limit = Annotated[int, msgspec.Meta(ge=0)]
Code = Annotated[int, msgspec.Meta(ge=0)]
# The package id rule (startos.paths.ID_PATTERN, ID_MAX_LENGTH); protocol/ imports no domain module.
PackageId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=63)]


# -- messages of the NotificationActor ("notifications" in the tree) ---------------------------------


class Notify(Message, frozen=True):
    """Create a notification. Tell it (services, health checks, backups) or ask it for the new id.

    ``code`` says what ``data`` holds, as in StartOS: 0 plain, 1 backup report, 2 release notes
    (markdown string). The notification and the new unread count land in one durable revision.
    """

    level: NotificationLevel
    title: Title
    message: Body
    package_id: PackageId | None = None
    code: Code = 0
    data: Any = None


class ListNotifications(Message, frozen=True):
    """Reply with up to ``limit`` notifications with ids lower than ``before``, newest first."""

    before: NotificationId | None = None
    limit: Limit | None = None


class MarkSeen(Message, frozen=True):
    """Mark these notifications seen; reply with the revision id. Unknown ids change nothing."""

    ids: list[NotificationId]


class MarkUnseen(Message, frozen=True):
    """Mark these notifications unseen; reply with the revision id. Unknown ids change nothing."""

    ids: list[NotificationId]


class MarkSeenBefore(Message, frozen=True):
    """Mark every notification with an id lower than ``before`` seen; reply with the revision id."""

    before: NotificationId


class RemoveNotifications(Message, frozen=True):
    """Delete these notifications; reply with the revision id. Unknown ids change nothing."""

    ids: list[NotificationId]


class RemoveNotificationsBefore(Message, frozen=True):
    """Delete every notification with an id lower than ``before``; reply with the revision id."""

    before: NotificationId


# -- RPC params and results ---------------------------------------------------------------------------


class NotificationWithId(Result, frozen=True):
    """One notification as listed (StartOS's ``NotificationWithId``)."""

    id: int
    package_id: str | None
    created_at: str  # RFC 3339, UTC
    code: int
    level: NotificationLevel
    title: str
    message: str
    data: Any
    seen: bool


class NotificationListParams(Params, frozen=True):
    before: NotificationId | None = None
    limit: Limit | None = None


class NotificationCreateParams(Params, frozen=True):
    level: NotificationLevel
    title: Title
    message: Body
    package_id: PackageId | None = None


class NotificationIdsParams(Params, frozen=True):
    ids: list[NotificationId]


class NotificationBeforeParams(Params, frozen=True):
    before: NotificationId


method(
    "notification.list",
    f"Notifications with ids lower than `before` (all if absent), newest first, at most `limit` "
    f"(default {DEFAULT_LIMIT}).",
    NotificationListParams,
    list[NotificationWithId],
)
method(
    "notification.create",
    "Create a notification (level success, info, warning or error), optionally about a package.",
    NotificationCreateParams,
    None,
    mutating=True,
)
method("notification.mark-seen", "Mark the notifications `ids` as read.", NotificationIdsParams, None, mutating=True)
method(
    "notification.mark-seen-before",
    "Mark every notification with an id lower than `before` as read.",
    NotificationBeforeParams,
    None,
    mutating=True,
)
method(
    "notification.mark-unseen", "Mark the notifications `ids` as unread.", NotificationIdsParams, None, mutating=True
)
method("notification.remove", "Delete the notifications `ids`.", NotificationIdsParams, None, mutating=True)
method(
    "notification.remove-before",
    "Delete every notification with an id lower than `before`.",
    NotificationBeforeParams,
    None,
    mutating=True,
)

"""``notification.*``: list, create, mark (un)seen, remove — all answered by the NotificationActor."""

from __future__ import annotations

from startos.actors.facade import FacadeActor
from startos.actors.registry import rpc
from startos.protocol.calls import CallContext
from startos.protocol.notifications import (
    ListNotifications,
    MarkSeen,
    MarkSeenBefore,
    MarkUnseen,
    NotificationBeforeParams,
    NotificationCreateParams,
    NotificationIdsParams,
    NotificationListParams,
    NotificationWithId,
    Notify,
    RemoveNotifications,
    RemoveNotificationsBefore,
)

ACTOR = "notifications"


@rpc("notification.list")
def _list(facade: FacadeActor, params: NotificationListParams, _ctx: CallContext) -> list[NotificationWithId]:
    result: list[NotificationWithId] = facade.ask(ACTOR, ListNotifications(before=params.before, limit=params.limit))
    return result


@rpc("notification.create")
def _create(facade: FacadeActor, params: NotificationCreateParams, _ctx: CallContext) -> None:
    # The reply is the new id; the facade reports the revision (StartOS answers null here too).
    facade.ask(
        ACTOR,
        Notify(level=params.level, title=params.title, message=params.message, package_id=params.package_id),
    )


@rpc("notification.mark-seen")
def _mark_seen(facade: FacadeActor, params: NotificationIdsParams, _ctx: CallContext) -> int:
    return int(facade.ask(ACTOR, MarkSeen(ids=params.ids)))


@rpc("notification.mark-seen-before")
def _mark_seen_before(facade: FacadeActor, params: NotificationBeforeParams, _ctx: CallContext) -> int:
    return int(facade.ask(ACTOR, MarkSeenBefore(before=params.before)))


@rpc("notification.mark-unseen")
def _mark_unseen(facade: FacadeActor, params: NotificationIdsParams, _ctx: CallContext) -> int:
    return int(facade.ask(ACTOR, MarkUnseen(ids=params.ids)))


@rpc("notification.remove")
def _remove(facade: FacadeActor, params: NotificationIdsParams, _ctx: CallContext) -> int:
    return int(facade.ask(ACTOR, RemoveNotifications(ids=params.ids)))


@rpc("notification.remove-before")
def _remove_before(facade: FacadeActor, params: NotificationBeforeParams, _ctx: CallContext) -> int:
    return int(facade.ask(ACTOR, RemoveNotificationsBefore(before=params.before)))

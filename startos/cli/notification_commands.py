"""``start-cli notification …``: list, create, mark seen/unseen and remove notifications.

Words follow StartOS's CLI: ``notification list [BEFORE] [LIMIT]``, ``create LEVEL TITLE MESSAGE
[-p PACKAGE]``, ``mark-seen [IDS...]``, ``mark-seen-before BEFORE``, ``mark-unseen [IDS...]``,
``remove [IDS...]``, ``remove-before BEFORE``. ``BEFORE`` always means "ids lower than BEFORE".
"""

from __future__ import annotations

from typing import Any

import click

from startos.cli.output import emit, format_option, table
from startos.cli.start_cli import Context, pass_ctx
from startos.protocol.notifications import LEVELS

__all__ = ["register"]

NON_NEGATIVE = click.IntRange(min=0)


@click.group("notification")
def notification() -> None:
    """View and manage the server's notifications."""


@notification.command("list")
@click.argument("before", type=NON_NEGATIVE, required=False)
@click.argument("limit", type=NON_NEGATIVE, required=False)
@format_option
@pass_ctx
def list_(ctx: Context, before: int | None, limit: int | None, fmt: str | None) -> None:
    """List notifications, newest first: those with ids lower than BEFORE, at most LIMIT (40)."""
    params: dict[str, Any] = {}
    if before is not None:
        params["before"] = before
    if limit is not None:
        params["limit"] = limit
    items = ctx.call("notification.list", params)
    fmt = fmt or ctx.format
    if fmt == "json":
        emit(items, "json")
        return
    rows = [[str(n["id"]), n["level"], n["title"], _time(n["createdAt"]), "yes" if n["seen"] else "no"] for n in items]
    table(rows, ["id", "level", "title", "time", "seen"])


@notification.command("create")
@click.argument("level", type=click.Choice(LEVELS))
@click.argument("title")
@click.argument("message")
@click.option("-p", "--package", "package", metavar="ID", help="The package the notification is about.")
@pass_ctx
def create(ctx: Context, level: str, title: str, message: str, package: str | None) -> None:
    """Create a notification: LEVEL is success, info, warning or error."""
    params: dict[str, Any] = {"level": level, "title": title, "message": message}
    if package is not None:
        params["packageId"] = package
    ctx.call("notification.create", params)
    _report_revision(ctx)


@notification.command("mark-seen")
@click.argument("ids", type=NON_NEGATIVE, nargs=-1)
@pass_ctx
def mark_seen(ctx: Context, ids: tuple[int, ...]) -> None:
    """Mark the notifications IDS as read."""
    ctx.call("notification.mark-seen", {"ids": list(ids)})
    _report_revision(ctx)


@notification.command("mark-seen-before")
@click.argument("before", type=NON_NEGATIVE)
@pass_ctx
def mark_seen_before(ctx: Context, before: int) -> None:
    """Mark every notification with an id lower than BEFORE as read."""
    ctx.call("notification.mark-seen-before", {"before": before})
    _report_revision(ctx)


@notification.command("mark-unseen")
@click.argument("ids", type=NON_NEGATIVE, nargs=-1)
@pass_ctx
def mark_unseen(ctx: Context, ids: tuple[int, ...]) -> None:
    """Mark the notifications IDS as unread."""
    ctx.call("notification.mark-unseen", {"ids": list(ids)})
    _report_revision(ctx)


@notification.command("remove")
@click.argument("ids", type=NON_NEGATIVE, nargs=-1)
@pass_ctx
def remove(ctx: Context, ids: tuple[int, ...]) -> None:
    """Delete the notifications IDS."""
    ctx.call("notification.remove", {"ids": list(ids)})
    _report_revision(ctx)


@notification.command("remove-before")
@click.argument("before", type=NON_NEGATIVE)
@pass_ctx
def remove_before(ctx: Context, before: int) -> None:
    """Delete every notification with an id lower than BEFORE."""
    ctx.call("notification.remove-before", {"before": before})
    _report_revision(ctx)


def _time(created_at: str) -> str:
    """``2026-05-01T12:00:03.123Z`` -> ``2026-05-01 12:00:03Z`` (UTC, to the second)."""
    date, _, rest = created_at.partition("T")
    return f"{date} {rest[:8]}Z" if rest else created_at


def _report_revision(ctx: Context) -> None:
    # Like the db commands: the revision that holds the change (nothing else to show).
    revision = ctx.client.last_revision
    if ctx.format == "json":
        emit({"revision": revision}, "json")
    elif revision is not None:
        click.echo(f"revision {revision}")


def register(cli: click.Group) -> None:
    """Add ``notification …`` to start-cli."""
    cli.add_command(notification)

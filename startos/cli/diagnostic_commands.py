"""``start-cli diagnostic …``: what to do when startd is in diagnostic mode.

startd enters diagnostic mode when its state tree cannot be loaded; then only these commands
(and ``echo``, ``state``) work. ``error`` is open to anyone who can reach the server; ``logs``
and ``restart`` need root on the server (start-cli there presents the local cookie file).

Not here (StartOS has them): ``kernel-logs``, ``rebuild`` and ``disk …`` (startos-py manages
no kernel, disks or containers of its own in this mode), and ``logs --follow``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from startos.cli.output import emit, format_option
from startos.cli.start_cli import Context, pass_ctx

__all__ = ["register"]


@click.group("diagnostic")
def diagnostic() -> None:
    """Troubleshoot a server in diagnostic mode (its state tree could not be loaded)."""


@diagnostic.command("error")
@format_option
@pass_ctx
def error(ctx: Context, fmt: str | None) -> None:
    """Display the current diagnostic error (none when the server runs normally)."""
    result = ctx.call("diagnostic.error")
    if (fmt or ctx.format) == "json":
        emit(result, "json")
        return
    if result is None:
        click.echo("no diagnostic error: startd is running normally")
        return
    details = (result.get("data") or {}).get("details") or ""
    click.echo(f"{result['message']} ({result['code']}): {details}" if details else result["message"])


@diagnostic.command("logs")
@click.option("-l", "--limit", type=click.IntRange(1, 10_000), default=None, help="Max entries (default 50).")
@click.option("-c", "--cursor", type=int, default=None, help="Start after this cursor (or before it, with -B).")
@click.option("-B", "--before", is_flag=True, help="Show the lines before --cursor.")
@format_option
@pass_ctx
def logs(ctx: Context, limit: int | None, cursor: int | None, before: bool, fmt: str | None) -> None:
    """Display startd's own recent log lines (kept in memory since it started); root only."""
    params: dict[str, Any] = {"before": before}
    if limit is not None:
        params["limit"] = limit
    if cursor is not None:
        params["cursor"] = cursor
    result = ctx.call("diagnostic.logs", params)
    json_lines = (fmt or ctx.format) == "json"
    for entry in result["entries"]:
        if json_lines:  # one object per line, like `package logs --format json`
            click.echo(json.dumps(entry))
            continue
        stamp = datetime.fromtimestamp(entry["timestamp"]).isoformat(sep=" ", timespec="milliseconds")
        click.echo(f"{stamp} {entry['level'].upper():<7} {entry['logger']}: {entry['message']}")


@diagnostic.command("restart")
@pass_ctx
def restart(ctx: Context) -> None:
    """Restart the server from diagnostic mode (after repairing its data directory); root only."""
    ctx.call("diagnostic.restart")
    if ctx.format == "json":
        emit({"restarting": True}, "json")
    else:
        click.echo("startd is restarting")


def register(cli: click.Group) -> None:
    """Add ``diagnostic …`` to start-cli."""
    cli.add_command(diagnostic)

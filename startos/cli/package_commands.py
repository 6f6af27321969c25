"""``start-cli package``: install (sideload), start, stop, logs, stats, uninstall."""

from __future__ import annotations

import http.client
import json
import os
import sys
from collections.abc import Iterable
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from startos.cli.live import close_socket, open_socket, watch
from startos.cli.output import emit, table
from startos.cli.start_cli import Context, pass_ctx
from startos.errors import StartOSError
from startos.s9pk import Package

CHUNK = 1024 * 1024


@click.group()
def package() -> None:
    """Install, run and inspect services."""


@package.command("list")
@pass_ctx
def list_(ctx: Context) -> None:
    """List installed packages."""
    result = ctx.call("package.list")
    if ctx.format == "json":
        emit(result, "json")
        return
    table(
        [[p["id"], p["version"], p["title"], p["state"], p["status"]] for p in result],
        ["id", "version", "title", "state", "status"],
    )


@package.command("installed-version")
@click.argument("package_id", metavar="ID")
@pass_ctx
def installed_version(ctx: Context, package_id: str) -> None:
    """Show the installed version of package ID (nothing if it is not installed)."""
    emit(ctx.call("package.installed-version", {"id": package_id}), ctx.format)


@package.command("install")
@click.argument("package_id", metavar="[ID]", required=False)
@click.argument("version", required=False)
@click.option(
    "-s",
    "--sideload",
    "sideload",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Install this local .s9pk file (uploaded to the server).",
)
@click.option("--accept-new-key", is_flag=True, help="Accept an update signed by a different developer key.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before installing when the package shows an alert.")
@pass_ctx
def install(
    ctx: Context, package_id: str | None, version: str | None, sideload: Path | None, accept_new_key: bool, yes: bool
) -> None:
    """Install a package: -s FILE sideloads a local .s9pk, showing each phase with a progress bar."""
    if sideload is None:
        raise click.UsageError("installing from a registry is not available yet: use -s FILE to sideload")
    with Package(sideload) as local:  # check it here first: a bad file fails before any upload
        manifest = local.manifest_json
    alert = (manifest.get("alerts") or {}).get("install")
    if alert and not yes:
        click.echo(f"Before installing {manifest.get('title', manifest['id'])}:\n  {alert}", err=True)
        click.confirm("Continue?", abort=True, err=True)
    ticket = ctx.call("package.sideload", {"acceptNewKey": accept_new_key})
    started = _upload(ctx, sideload, ticket["upload"])
    if ctx.format != "json":
        click.echo(f"signed by {started['signer']}", err=True)
        for problem in started.get("dependencyProblems") or []:
            click.echo(f"warning: it will not start until this is fixed: {problem}", err=True)
    _follow_install(ctx, started)
    if ctx.format == "json":
        emit(started, "json")


def _upload(ctx: Context, path: Path, guid: str) -> dict[str, Any]:
    client = ctx.client
    size = path.stat().st_size
    cls: Any = http.client.HTTPSConnection if client.url.startswith("https") else http.client.HTTPConnection
    host = client.url.split("://", 1)[1]
    kwargs: dict[str, Any] = {"timeout": 600}
    if cls is http.client.HTTPSConnection:
        kwargs["context"] = client._tls  # the same trust as every other call
    conn = cls(host, **kwargs)
    try:
        conn.putrequest("PUT", f"/rest/upload/{guid}")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(size))
        if client.cookies:
            conn.putheader("Cookie", "; ".join(f"{k}={v}" for k, v in client.cookies.items()))
        conn.endheaders()
        with path.open("rb") as source, click.progressbar(length=size, label="upload ", file=_bar_file()) as bar:
            while chunk := source.read(CHUNK):
                conn.send(chunk)
                bar.update(len(chunk))
        if not sys.stderr.isatty():  # the live bar is drawn only on a terminal
            click.echo(f"{'upload':<7}[{'#' * 36}]  done ({size / 1e6:.1f} MB)", err=True)
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
    except OSError as exc:
        raise StartOSError(f"the upload to {client.url} failed: {exc}") from exc
    finally:
        conn.close()
    if "error" in body:
        details = (body["error"].get("data") or {}).get("details") or body["error"].get("message")
        raise StartOSError(str(details))
    return dict(body["result"])


def _bar_file() -> Any:
    return sys.stderr


def _follow_install(ctx: Context, started: dict[str, Any]) -> None:
    """Show verify / unpack / init as they complete, until the package is installed or gone."""
    package_id = started["id"]
    with closing(watch(ctx, "/public/packageData", f"the install of {package_id}")) as changes:
        _show_install(ctx, started, changes)


def _show_install(ctx: Context, started: dict[str, Any], changes: Iterable[dict[str, Any]]) -> None:
    package_id = started["id"]
    shown: set[str] = set()
    for data in changes:
        entry = data.get(package_id)
        if entry is None:
            raise StartOSError(f"the install of {package_id} failed; see `start-cli notification list`")
        info = entry["stateInfo"]
        phases = ((info.get("installingInfo") or {}).get("progress") or {}).get("phases", [])
        for phase in phases:
            if phase["progress"] is True and phase["name"] not in shown:
                shown.add(phase["name"])
                if ctx.format != "json":
                    click.echo(f"{phase['name']:<7}[{'#' * 36}]  done", err=True)
        if info["state"] == "installed" and info["manifest"].get("version") == started["version"]:
            if ctx.format != "json":
                for name in ("verify", "unpack", "init"):
                    if name not in shown:
                        click.echo(f"{name:<7}[{'#' * 36}]  done", err=True)
                click.echo(f"{package_id} {started['version']} installed", err=True)
            return


@package.command("cancel-install")
@click.argument("package_id", metavar="ID")
@pass_ctx
def cancel_install(ctx: Context, package_id: str) -> None:
    """Cancel an install or update of ID that has not finished."""
    ctx.call("package.cancel-install", {"id": package_id})


@package.command("uninstall")
@click.argument("package_id", metavar="ID")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Uninstall even though other services require it.")
@pass_ctx
def uninstall(ctx: Context, package_id: str, yes: bool, force: bool) -> None:
    """Remove package ID and all its data."""
    if not yes:
        alert = _alert(ctx, package_id, "uninstall")
        if alert:
            click.echo(alert, err=True)
        click.confirm(f"Uninstall {package_id} and delete its data?", abort=True, err=True)
    ctx.call("package.uninstall", {"id": package_id, "force": force})
    # The removal goes on in the server: wait until its entry is gone.
    with closing(watch(ctx, "/public/packageData", f"the removal of {package_id}")) as changes:
        next(data for data in changes if package_id not in data)
    if ctx.format != "json":
        click.echo(f"{package_id} uninstalled")


def _alert(ctx: Context, package_id: str, operation: str) -> str | None:
    """The package's own warning for ``operation`` (its manifest's ``alerts``), if it has one."""
    entry = ctx.call("db.dump", {"pointer": "/public/packageData"})["value"].get(package_id) or {}
    alerts = ((entry.get("stateInfo") or {}).get("manifest") or {}).get("alerts") or {}
    alert = alerts.get(operation)
    return str(alert) if alert else None


def _lifecycle(name: str, verb: str) -> click.Command:
    @click.command(name, help=f"{verb} service ID.")
    @click.argument("package_id", metavar="ID")
    @click.option("-y", "--yes", is_flag=True, help="Do not ask when the package shows an alert.")
    @pass_ctx
    def command(ctx: Context, package_id: str, yes: bool) -> None:
        alert = _alert(ctx, package_id, name) if name in ("start", "stop") and not yes else None
        if alert:
            click.echo(alert, err=True)
            click.confirm("Continue?", abort=True, err=True)
        ctx.call(f"package.{name}", {"id": package_id})

    return command


for _name, _verb in (
    ("start", "Start"),
    ("stop", "Stop"),
    ("restart", "Restart"),
    ("rebuild", "Rebuild the sandbox of"),
):
    package.add_command(_lifecycle(_name, _verb))


def _print_entry(entry: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(entry))
        return
    stamp = datetime.fromtimestamp(entry["timestamp"]).isoformat(sep=" ", timespec="milliseconds")
    click.echo(f"{stamp} {entry['source']}: {entry['message']}")


@package.command("logs")
@click.argument("package_id", metavar="ID")
@click.option("-l", "--limit", type=click.IntRange(min=1), default=None, help="Max entries (default 50).")
@click.option("-f", "--follow", is_flag=True, help="Stream new lines as they come.")
@click.option("-c", "--cursor", type=int, default=None, help="Start after this cursor (or before it, with -B).")
@click.option("-B", "--before", is_flag=True, help="Show the lines before --cursor.")
@click.option("-b", "--boot", default=None, help="Only lines of this boot id.")
@pass_ctx
def logs(
    ctx: Context, package_id: str, limit: int | None, follow: bool, cursor: int | None, before: bool, boot: str | None
) -> None:
    """Show the logs of service ID."""
    if follow:
        _follow_logs(ctx, package_id, limit if limit is not None else 20, boot)
        return
    result = ctx.call(
        "package.logs", {"id": package_id, "limit": limit, "cursor": cursor, "before": before, "boot": boot}
    )
    for entry in result["entries"]:
        _print_entry(entry, ctx.format)


def _follow_logs(ctx: Context, package_id: str, limit: int, boot: str | None) -> None:
    import simple_websocket

    result = ctx.call("package.logs.follow", {"id": package_id, "limit": limit, "boot": boot})
    ws = open_socket(ctx, result["guid"], "follow the logs")
    try:
        while True:
            message = ws.receive()
            if message is None:
                break
            _print_entry(json.loads(message), ctx.format)
    except simple_websocket.ConnectionClosed:
        pass
    except KeyboardInterrupt:
        pass
    finally:
        close_socket(ws)


@package.command("attach", context_settings={"ignore_unknown_options": True})
@click.argument("package_id", metavar="ID")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--force-tty", is_flag=True, help="Use a terminal even when stdin is not one.")
@click.option("-u", "--user", default=None, help="Run as this user inside the sandbox.")
@pass_ctx
def attach(ctx: Context, package_id: str, command: tuple[str, ...], force_tty: bool, user: str | None) -> None:
    """Open a shell inside service ID's sandbox, or run COMMAND there (exit code passed through)."""
    tty = force_tty or sys.stdin.isatty()
    result = ctx.call("package.attach", {"id": package_id, "command": list(command) or None, "tty": tty, "user": user})
    status = _relay(open_socket(ctx, result["guid"], "attach"), tty)
    raise SystemExit(status if status >= 0 else 128 - status)


def _relay(ws: Any, tty: bool) -> int:
    """Copy stdin to the socket and the socket to stdout; return the remote exit status."""
    import shutil
    import termios
    import threading
    import tty as tty_module

    stdin_fd = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin_fd) if tty and sys.stdin.isatty() else None
    status = 0

    def send_input() -> None:
        try:
            while True:
                data = os.read(stdin_fd, 4096)
                if not data:
                    if not tty:
                        ws.send(json.dumps({"eof": True}))  # the remote command sees its input end
                    break
                ws.send(data)
        except Exception:  # noqa: BLE001 (the socket closed: the session is over)
            return

    try:
        if saved is not None:
            tty_module.setraw(stdin_fd)
            size = shutil.get_terminal_size()
            ws.send(json.dumps({"resize": [size.lines, size.columns]}))
        threading.Thread(target=send_input, daemon=True).start()
        while True:
            message = ws.receive()
            if message is None:
                break
            if isinstance(message, str):
                try:
                    status = int(json.loads(message).get("exit", 0))
                except (ValueError, TypeError, AttributeError):
                    pass
                continue
            sys.stdout.buffer.write(message)
            sys.stdout.buffer.flush()
    except Exception:  # noqa: BLE001 (ConnectionClosed ends the session like an exit)
        pass
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        close_socket(ws)
    return status


@package.command("stats")
@click.argument("package_id", metavar="ID")
@pass_ctx
def stats(ctx: Context, package_id: str) -> None:
    """Show CPU, memory and process count of service ID."""
    result = ctx.call("package.stats", {"id": package_id})
    if ctx.format == "json":
        emit(result, "json")
        return
    memory = f"{result['memoryBytes'] / 1024 / 1024:.1f} MiB"
    if result.get("memoryLimitBytes"):
        memory += f" of {result['memoryLimitBytes'] / 1024 / 1024:.0f} MiB"
    table([[f"{result['cpuPercent']:.1f}%", memory, str(result["processes"])]], ["cpu", "memory", "processes"])


def register(cli: click.Group) -> None:
    """Add ``package`` to start-cli."""
    cli.add_command(package)


__all__ = ["register"]

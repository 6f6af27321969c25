"""``start-cli auth``, ``setup`` and ``server`` commands: sessions, initial setup, name, language."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from startos.cli.output import emit, table
from startos.cli.start_cli import Context, pass_ctx
from startos.protocol.auth import LANGUAGES


def read_password(prompt: str, from_stdin: bool, *, confirm: bool = False) -> str:
    """One password line from stdin (for scripts) or a hidden prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.BadParameter("no password on stdin")
        return line.rstrip("\r\n")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


@click.group()
def auth() -> None:
    """Log in and out, manage sessions, and change or reset the master password."""


@auth.command("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--ephemeral", is_flag=True, help="Do not keep this session across server restarts.")
@pass_ctx
def login(ctx: Context, password_stdin: bool, ephemeral: bool) -> None:
    """Log in with the master password; the session is kept at --cookie-path."""
    password = read_password("Password", password_stdin)
    ctx.call("auth.login", {"password": password, "ephemeral": ephemeral})
    if ctx.format == "json":
        emit({"loggedIn": True}, "json")
    else:
        click.echo(f"logged in to {ctx.client.url}")


@auth.command("logout")
@click.argument("session", required=False)
@pass_ctx
def logout(ctx: Context, session: str | None) -> None:
    """End this session, or the session with id SESSION."""
    if session:
        ctx.call("auth.session.kill", {"ids": [session]})
    else:
        ctx.call("auth.logout")
    if ctx.format != "json":
        click.echo("logged out" if not session else f"session {session} ended")


@auth.group("session")
def session_group() -> None:
    """List and end sessions."""


@session_group.command("list")
@pass_ctx
def session_list(ctx: Context) -> None:
    """List active sessions and when each expires unless used; the current one is marked with *."""
    result = ctx.call("auth.session.list")
    if ctx.format == "json":
        emit(result, "json")
        return
    rows = [
        [
            ("* " if sid == result["current"] else "  ") + sid,
            info["loggedIn"],
            info["lastActive"],
            info.get("expiresAt") or "",
            info.get("userAgent") or "",
        ]
        for sid, info in sorted(result["sessions"].items(), key=lambda item: item[1]["loggedIn"])
    ]
    table(rows, ["id", "logged in", "last active", "expires", "user agent"])


@session_group.command("kill")
@click.argument("ids", nargs=-1, required=True)
@pass_ctx
def session_kill(ctx: Context, ids: tuple[str, ...]) -> None:
    """End the sessions with these IDS."""
    ctx.call("auth.session.kill", {"ids": list(ids)})


@auth.command("change-password")
@click.option("--password-stdin", is_flag=True, help="Read the old then the new password from standard input.")
@pass_ctx
def change_password(ctx: Context, password_stdin: bool) -> None:
    """Change the master password (asks for the old one); other sessions end."""
    old = read_password("Current password", password_stdin)
    new = read_password("New password", password_stdin, confirm=not password_stdin)
    ctx.call("auth.change-password", {"oldPassword": old, "newPassword": new})
    if ctx.format != "json":
        click.echo("password changed")


@auth.command("reset-password")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@pass_ctx
def reset_password(ctx: Context, password_stdin: bool) -> None:
    """Set a new master password without the old one. Only on the server itself, as root."""
    new = read_password("New password", password_stdin, confirm=not password_stdin)
    ctx.call("auth.reset-password", {"newPassword": new})
    if ctx.format != "json":
        click.echo("password reset; every session has ended")


@auth.command("get-pubkey")
@pass_ctx
def get_pubkey(ctx: Context) -> None:
    """Print the server's public key (a JWK)."""
    emit(ctx.call("auth.get-pubkey"), "json")


@click.group()
def setup() -> None:
    """Initial setup without a browser."""


@setup.command("status")
@pass_ctx
def setup_status(ctx: Context) -> None:
    """Say whether the server still needs setup."""
    result = ctx.call("setup.status")
    emit(result if ctx.format == "json" else result["status"], ctx.format)


@setup.command("execute")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the master password from standard input.")
@click.option(
    "-o",
    "--info",
    "info_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save StartOS-info.html (address and root CA) here.",
)
@pass_ctx
def setup_execute(ctx: Context, name: str, password_stdin: bool, info_path: Path | None) -> None:
    """Set up a fresh server called NAME with a master password."""
    password = read_password("Master password", password_stdin, confirm=not password_stdin)
    result = ctx.call("setup.execute", {"serverName": name, "password": password})
    if info_path is not None:
        info_path.write_text(result["infoHtml"])
    if ctx.format == "json":
        emit({k: v for k, v in result.items() if k != "infoHtml"}, "json")
        return
    click.echo(f"server {result['name']} is set up at {result['mdnsAddress']}")
    if result.get("caFingerprint"):
        click.echo(f"root CA fingerprint (SHA-256): {result['caFingerprint']}")
    if info_path is not None:
        click.echo(f"saved {info_path}")


@click.group()
def server() -> None:
    """Server settings."""


@server.command("set-hostname")
@click.argument("name")
@pass_ctx
def set_hostname(ctx: Context, name: str) -> None:
    """Rename the server to NAME; its .local address and certificate follow."""
    ctx.call("server.set-hostname", {"name": name})


@server.command("set-language")
@click.argument("language", type=click.Choice(LANGUAGES))
@pass_ctx
def set_language(ctx: Context, language: str) -> None:
    """Set the interface language."""
    ctx.call("server.set-language", {"language": language})


def register(cli: click.Group) -> None:
    """Add ``auth``, ``setup`` and ``server`` to start-cli."""
    cli.add_command(auth)
    cli.add_command(setup)
    cli.add_command(server)

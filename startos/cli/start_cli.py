"""``start-cli``: the command line for a startos-py server.

Commands mirror the API's method tree (``db dump`` calls ``db.dump``). A failure prints one
line, ``error: ...``, and exits non-zero.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from startos import __version__
from startos.cli.client import RpcClient
from startos.cli.cookies import CookieJar, default_auth_cookie_path, default_cookie_path, local_secret
from startos.cli.output import emit, table
from startos.errors import StartOSError

DEFAULT_HOST = "http://127.0.0.1:5959"


class Context:
    """What every command gets: the server URL, the output format, and a lazy client."""

    def __init__(
        self,
        host: str,
        fmt: str,
        ca: str | None = None,
        *,
        cookie_path: Path | None = None,
        auth_cookie: Path | None = None,
    ) -> None:
        self.host = host
        self.format = fmt
        self.ca = ca
        self.cookie_path = cookie_path or default_cookie_path()
        self.auth_cookie = auth_cookie or default_auth_cookie_path()
        self._client: RpcClient | None = None

    @property
    def client(self) -> RpcClient:
        if self._client is None:
            client = RpcClient(self.host, ca_path=self.ca)
            jar = CookieJar(self.cookie_path)
            client.cookies.update(jar.load(client.url))
            secret = local_secret(client.url, self.auth_cookie)
            if secret is not None:
                client.cookies["local"] = secret

            def remember(name: str, value: str | None) -> None:
                if name == "session":
                    jar.store(client.url, name, value)

            client.on_cookie = remember
            self._client = client
        return self._client

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.call(method, params)


pass_ctx = click.make_pass_decorator(Context)


class Cli(click.Group):
    """Turns every ``StartOSError`` into one ``error: ...`` line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StartOSError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def parse_json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} must be JSON ({exc.msg} at position {exc.pos})") from exc


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-H",
    "--host",
    default=lambda: os.environ.get("START_CLI_HOST", DEFAULT_HOST),
    show_default=DEFAULT_HOST,
    help="URL of the server (env START_CLI_HOST).",
)
@click.option(
    "--ca",
    default=lambda: os.environ.get("START_CLI_CA"),
    metavar="PATH",
    help="The server's root CA (PEM) to trust for an https --host (env START_CLI_CA).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Output format."
)
@click.option(
    "--cookie-path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where session cookies are kept (default: ~/.config/startos-py/cookies.json).",
)
@click.option(
    "--auth-cookie",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The server's root-only local cookie, used on this machine (default: <data dir>/rpc.authcookie).",
)
@click.version_option(__version__, prog_name="start-cli")
@click.pass_context
def cli(
    ctx: click.Context, host: str, ca: str | None, fmt: str, cookie_path: Path | None, auth_cookie: Path | None
) -> None:
    """Manage a startos-py server from the command line."""
    ctx.obj = Context(host, fmt, ca or None, cookie_path=cookie_path, auth_cookie=auth_cookie)
    ctx.call_on_close(lambda: ctx.obj.client.close() if ctx.obj._client else None)


@cli.command()
@click.argument("message")
@pass_ctx
def echo(ctx: Context, message: str) -> None:
    """Ask the server to echo MESSAGE back (checks that it answers)."""
    emit(ctx.call("echo", {"message": message}), ctx.format)


@cli.command()
@pass_ctx
def state(ctx: Context) -> None:
    """Show the API specification (OpenRPC): every method with its params, and the state tree's schema."""
    spec = ctx.call("state")
    if ctx.format == "json":
        emit(spec, "json")
        return
    rows = [
        [
            m["name"],
            ", ".join(p["name"] + ("" if p["required"] else "?") for p in m["params"]),
            "yes" if m.get("x-authenticated") else "no",
            m["summary"],
        ]
        for m in spec["methods"]
    ]
    table(rows, ["method", "params", "session", "summary"])
    tree = spec.get("x-state-tree")
    if tree:  # the whole JSON Schema is in the JSON output (--format json), under components.schemas
        click.echo(f"\nstate tree {tree['pointer']}: schema {tree['schema']['$ref']} (see --format json)")


@cli.command("git-info")
@pass_ctx
def git_info(ctx: Context) -> None:
    """Show the git commit the server was built from."""
    emit(ctx.call("git-info"), ctx.format)


@cli.group()
def db() -> None:
    """Read and change the server's state tree."""


@db.command("dump")
@click.option("-p", "--pointer", default="/public", show_default=True, help="JSON pointer of the part to show.")
@pass_ctx
def db_dump(ctx: Context, pointer: str) -> None:
    """Print the state tree (or the part at POINTER) with its revision id."""
    result = ctx.call("db.dump", {"pointer": pointer})
    if ctx.format == "json":
        emit(result, "json")
    else:
        click.echo(f"revision {result['id']}")
        click.echo(json.dumps(result["value"], indent=2))


@db.command("put")
@click.argument("pointer")
@click.argument("value")
@pass_ctx
def db_put(ctx: Context, pointer: str, value: str) -> None:
    """Set the value at POINTER (under /public) to VALUE, given as JSON."""
    ctx.call("db.put", {"pointer": pointer, "value": parse_json_arg(value, "VALUE")})
    _report_revision(ctx)


@db.command("put-ui")
@click.argument("pointer")
@click.argument("value")
@pass_ctx
def db_put_ui(ctx: Context, pointer: str, value: str) -> None:
    """Set the value at POINTER inside the UI settings (/public/ui) to VALUE, given as JSON."""
    ctx.call("db.put.ui", {"pointer": pointer, "value": parse_json_arg(value, "VALUE")})
    _report_revision(ctx)


@db.command("apply")
@click.argument("patch")
@pass_ctx
def db_apply(ctx: Context, patch: str) -> None:
    """Apply PATCH, an RFC 6902 JSON patch (a JSON array), atomically."""
    ops = parse_json_arg(patch, "PATCH")
    if not isinstance(ops, list):
        raise click.BadParameter("PATCH must be a JSON array of operations")
    ctx.call("db.apply", {"patch": ops})
    _report_revision(ctx)


def _report_revision(ctx: Context) -> None:
    revision = ctx.client.last_revision
    if ctx.format == "json":
        emit({"revision": revision}, "json")
    elif revision is not None:
        click.echo(f"revision {revision}")


# Command groups that live in their own modules; each exposes ``register(cli)``.
EXTENSIONS = (
    "startos.cli.auth_commands",
    "startos.cli.notification_commands",
    "startos.cli.package_commands",
    "startos.cli.action_commands",  # after package_commands: it adds to the package group
    "startos.cli.s9pk_commands",
    "startos.cli.diagnostic_commands",
)


def _register_extensions() -> None:
    import importlib

    for name in EXTENSIONS:
        importlib.import_module(name).register(cli)


_register_extensions()


def main() -> None:
    cli(prog_name="start-cli")


if __name__ == "__main__":
    main()

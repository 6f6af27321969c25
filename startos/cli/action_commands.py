"""``start-cli package action`` and ``package host``: actions, tasks and interface addresses."""

from __future__ import annotations

import json
from typing import Any

import click

from startos.cli.output import emit, table
from startos.cli.start_cli import Context, pass_ctx

MASK = "••••••••"


@click.group()
def action() -> None:
    """Run a service's actions and dismiss its tasks."""


@action.command("get-input")
@click.argument("action_id", metavar="ACTION_ID")
@click.option("-p", "--package-id", required=True, help="Package identifier.")
@pass_ctx
def get_input(ctx: Context, action_id: str, package_id: str) -> None:
    """Show the input spec of ACTION_ID and the values its form starts with."""
    result = ctx.call("package.action.get-input", {"packageId": package_id, "actionId": action_id})
    if ctx.format == "json":
        emit(result, "json")
        return
    spec, value = result.get("spec"), result.get("value") or {}
    if spec is None:
        click.echo(f"{action_id} takes no input")
        return
    rows = []
    for field_id, field in spec.items():
        current = value.get(field_id, field.get("default"))
        shown = MASK if field.get("masked") and current else json.dumps(current)
        required = "yes" if field.get("required") else ""
        rows.append([field_id, field.get("type", "?"), field.get("name", ""), required, shown])
    table(rows, ["field", "type", "name", "required", "value"])


@action.command("run")
@click.argument("words", metavar="PACKAGE_ID ACTION_ID [INPUT]", nargs=-1, required=True)
@click.option("-p", "--package-id", "package_option", help="Package identifier (then give ACTION_ID [INPUT]).")
@click.option("--reveal", is_flag=True, help="Print masked values (passwords) in clear.")
@pass_ctx
def run(ctx: Context, words: tuple[str, ...], package_option: str | None, reveal: bool) -> None:
    """Run ACTION_ID of PACKAGE_ID; INPUT is a JSON object (see get-input), validated by the server."""
    if package_option is not None:
        words = (package_option, *words)
    if not 2 <= len(words) <= 3:
        raise click.UsageError("give PACKAGE_ID ACTION_ID [INPUT] (or -p PACKAGE_ID ACTION_ID [INPUT])")
    package_id, action_id = words[0], words[1]
    input_json = words[2] if len(words) == 3 else None
    params: dict[str, Any] = {"packageId": package_id, "actionId": action_id}
    if input_json is not None:
        try:
            params["input"] = json.loads(input_json)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
        if not isinstance(params["input"], dict):
            raise click.BadParameter('INPUT must be a JSON object, e.g. \'{"greeting": "Hi"}\'')
    result = ctx.call("package.action.run", params)
    if ctx.format == "json":
        emit(result, "json")
        return
    if result is None:
        click.echo(f"{action_id} done")
        return
    if result.get("title"):
        click.echo(result["title"])
    if result.get("message"):
        click.echo(result["message"])
    values = result.get("values") or []
    if values:
        rows = [[v["name"], MASK if v.get("masked") and not reveal else v["value"]] for v in values]
        table(rows, ["name", "value"])
        if any(v.get("masked") for v in values) and not reveal:
            click.echo("(masked values hidden; add --reveal to print them)", err=True)


@action.command("clear-task")
@click.argument("package_id", metavar="PACKAGE_ID")
@click.argument("replay_id", metavar="REPLAY_ID")
@click.option("--force", is_flag=True, help="Dismiss even a required task.")
@pass_ctx
def clear_task(ctx: Context, package_id: str, replay_id: str, force: bool) -> None:
    """Dismiss task REPLAY_ID of PACKAGE_ID."""
    ctx.call("package.action.clear-task", {"packageId": package_id, "replayId": replay_id, "force": force})
    if ctx.format != "json":
        click.echo(f"task {replay_id} dismissed")


@click.group()
def host() -> None:
    """Addresses and port bindings of a service's interfaces."""


@host.group("address")
def address() -> None:
    """The addresses a service's interfaces answer on."""


@address.command("list")
@click.argument("package_id", metavar="PACKAGE")
@click.argument("host_id", metavar="[HOST]", required=False)
@pass_ctx
def address_list(ctx: Context, package_id: str, host_id: str | None) -> None:
    """List every address of PACKAGE's interfaces (of HOST only, if given)."""
    rows = ctx.call("package.host.address.list", {"package": package_id, "host": host_id})
    if ctx.format == "json":
        emit(rows, "json")
        return
    table(
        [
            [r["interface"], r["kind"], "Root CA" if r["ssl"] else "None", "on" if r["enabled"] else "off", r["url"]]
            for r in rows
        ],
        ["interface", "type", "certificate", "enabled", "url"],
    )


@host.group("binding")
def binding() -> None:
    """The ports a service's interfaces are served on."""


@binding.command("list")
@click.argument("package_id", metavar="PACKAGE")
@click.argument("host_id", metavar="[HOST]", required=False)
@pass_ctx
def binding_list(ctx: Context, package_id: str, host_id: str | None) -> None:
    """List PACKAGE's port bindings: internal port, assigned port, disabled addresses."""
    rows = ctx.call("package.host.binding.list", {"package": package_id, "host": host_id})
    if ctx.format == "json":
        emit(rows, "json")
        return
    table(
        [
            [
                r["host"],
                str(r["internalPort"]),
                str(r["assignedPort"]),
                "yes" if r["ssl"] else "no",
                ", ".join(r["disabled"]),
            ]
            for r in rows
        ],
        ["host", "internal", "assigned", "ssl", "disabled"],
    )


@binding.command("set-address-enabled")
@click.argument("package_id", metavar="PACKAGE")
@click.argument("host_id", metavar="HOST")
@click.argument("internal_port", metavar="INTERNAL_PORT", type=click.IntRange(1, 65535))
@click.option("--address", required=True, help="The address to change (an IP or <hostname>.local).")
@click.option("--enabled", required=True, type=click.BOOL, help="true to answer on it, false to stop.")
@pass_ctx
def set_address_enabled(
    ctx: Context, package_id: str, host_id: str, internal_port: int, address: str, enabled: bool
) -> None:
    """Enable or disable one address of a binding (a disabled address stops answering)."""
    params = {
        "package": package_id,
        "host": host_id,
        "internalPort": internal_port,
        "address": address,
        "enabled": enabled,
    }
    ctx.call("package.host.binding.set-address-enabled", params)
    if ctx.format != "json":
        click.echo(f"{address} {'enabled' if enabled else 'disabled'}")


def register(cli: click.Group) -> None:
    package = cli.commands["package"]
    assert isinstance(package, click.Group)
    package.add_command(action)
    package.add_command(host)

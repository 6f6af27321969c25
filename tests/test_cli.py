"""start-cli through click's runner, against a live in-process server."""

from __future__ import annotations

import json
import socket

import click
import pytest
from click.testing import CliRunner

from startos.cli.start_cli import cli

from .conftest import TreeHarness


@pytest.fixture
def run(web_tree: TreeHarness):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, fmt: str = "table") -> tuple[int, str, str]:
        result = runner.invoke(cli, ["-H", web_tree.url, "--format", fmt, *args])  # type: ignore[attr-defined]
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_echo(run) -> None:  # type: ignore[no-untyped-def]
    assert run("echo", "hello there") == (0, "hello there\n", "")


def test_state_as_table_and_json(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("state")
    assert code == 0 and "db.apply" in out and "METHOD" in out
    code, out, _ = run("state", fmt="json")
    assert json.loads(out)["openrpc"]


def test_db_put_dump_apply(run) -> None:  # type: ignore[no-untyped-def]
    assert run("db", "put", "/public/ui/theme", '"dark"') == (0, "revision 1\n", "")
    code, out, _ = run("db", "apply", '[{"op": "add", "path": "/public/ui/n", "value": 3}]')
    assert (code, out) == (0, "revision 2\n")
    code, out, _ = run("db", "dump", "-p", "/public/ui", fmt="json")
    assert json.loads(out) == {"id": 2, "value": {"theme": "dark", "n": 3}}
    code, out, _ = run("db", "dump", "-p", "/public/ui")
    assert out.startswith("revision 2\n")
    assert run("db", "put-ui", "/theme", '"light"') == (0, "revision 3\n", "")
    code, out, _ = run("db", "dump", "-p", "/public/ui/theme", fmt="json")
    assert json.loads(out)["value"] == "light"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("db", "apply", '[{"op": "remove", "path": "/public/ui/none"}]'), "error: operation 0"),
        (("db", "dump", "-p", "/private"), "error: pointer '/private' is not allowed"),
        (("db", "put", "/public/ui/x", "{bad"), "VALUE must be JSON"),
        (("db", "apply", '{"op": "add"}'), "PATCH must be a JSON array"),
    ],
)
def test_failures_print_one_clear_line_and_exit_non_zero(run, args, fragment) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(*args)
    assert code != 0 and out == ""
    assert fragment in err


def test_unreachable_daemon_says_where_and_how_to_start_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nobody listens on
    result = CliRunner().invoke(cli, ["-H", f"http://127.0.0.1:{port}", "echo", "x"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert f"cannot reach startd at http://127.0.0.1:{port}/rpc/v1" in result.stderr
    assert "start it with `startd`" in result.stderr


def test_a_bad_host_url_is_one_line() -> None:
    result = CliRunner().invoke(cli, ["-H", "ftp://box", "echo", "x"])
    assert result.exit_code == 1 and "is not an http(s) URL" in result.stderr


def walk(group: click.Group, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*prefix, name))


def test_every_command_has_help_text() -> None:
    commands = list(walk(cli))
    assert commands
    for path, command in commands:
        assert (command.help or "").strip(), f"start-cli {' '.join(path)} has no help text"
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path

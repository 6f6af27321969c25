"""start-cli through click's runner, against a live in-process server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from startos.cli.start_cli import cli

from .conftest import TreeHarness

PASSWORD = "a master password that is long"


def make_runner(web_tree: TreeHarness, tmp_path: Path, *, local: bool):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    auth_cookie = web_tree.tree.config.local_cookie_path if local else tmp_path / "no-such-cookie"

    def invoke(*args: str, fmt: str = "table", input: str | None = None) -> tuple[int, str, str]:
        result = runner.invoke(
            cli,
            [
                "-H",
                web_tree.url,  # type: ignore[attr-defined]
                "--auth-cookie",
                str(auth_cookie),
                "--cookie-path",
                str(tmp_path / "cookies.json"),
                "--format",
                fmt,
                *args,
            ],
            input=input,
        )
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.fixture
def fresh(web_tree: TreeHarness, tmp_path: Path):  # type: ignore[no-untyped-def]
    """start-cli as root on the machine, against a server that is not set up yet."""
    return make_runner(web_tree, tmp_path, local=True)


@pytest.fixture
def run(fresh):  # type: ignore[no-untyped-def]
    """start-cli as root on the machine, against a set-up server."""
    code, _out, err = fresh("setup", "execute", "CLI Box", "--password-stdin", input=PASSWORD + "\n")
    assert code == 0, err
    return fresh


@pytest.fixture
def remote(run, web_tree: TreeHarness, tmp_path: Path):  # type: ignore[no-untyped-def]
    """start-cli without the local cookie: it needs a session like any remote client."""
    return make_runner(web_tree, tmp_path, local=False)


def revision_of(out: str) -> int:
    assert out.startswith("revision "), out
    return int(out.split()[1])


def test_echo(run) -> None:  # type: ignore[no-untyped-def]
    assert run("echo", "hello there") == (0, "hello there\n", "")


def test_state_as_table_and_json(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("state")
    assert code == 0 and "db.apply" in out and "METHOD" in out
    code, out, _ = run("state", fmt="json")
    assert json.loads(out)["openrpc"]


def test_db_put_dump_apply(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("db", "put", "/public/ui/theme", '"dark"')
    base = revision_of(out)
    code, out, _ = run("db", "apply", '[{"op": "add", "path": "/public/ui/n", "value": 3}]')
    second = revision_of(out)
    assert code == 0 and second > base  # other actors may commit in between: ids only grow
    code, out, _ = run("db", "dump", "-p", "/public/ui", fmt="json")
    dumped = json.loads(out)
    assert dumped["id"] >= second and dumped["value"] == {"theme": "dark", "n": 3}
    code, out, _ = run("db", "dump", "-p", "/public/ui")
    assert revision_of(out) >= second
    code, out, _ = run("db", "put-ui", "/theme", '"light"')
    assert code == 0 and revision_of(out) > second
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


def test_setup_status_and_execute_once(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert fresh("setup", "status") == (0, "needs-setup\n", "")
    code, out, err = fresh("db", "dump")
    assert code == 1 and "not set up yet" in err
    info = tmp_path / "StartOS-info.html"
    code, out, err = fresh(
        "setup", "execute", "My Cool Server", "--password-stdin", "-o", str(info), input=PASSWORD + "\n"
    )
    assert code == 0 and "my-cool-server.local" in out, err
    assert "my-cool-server.local" in info.read_text()
    assert fresh("setup", "status") == (0, "complete\n", "")
    code, _, err = fresh("setup", "execute", "Again", "--password-stdin", input=PASSWORD + "\n")
    assert code == 1 and "already complete" in err


def test_remote_cli_logs_in_keeps_the_cookie_and_logs_out(remote, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = remote("db", "dump")
    assert code == 1 and "not logged in" in err
    code, _, err = remote("auth", "login", "--password-stdin", input="wrong password!!\n")
    assert code == 1 and err == "error: the password is incorrect\n"
    assert remote("auth", "login", "--password-stdin", input=PASSWORD + "\n")[0] == 0
    jar = tmp_path / "cookies.json"
    assert oct(jar.stat().st_mode & 0o777) == "0o600"
    assert remote("db", "dump", "-p", "/public/serverInfo/name", fmt="json")[0] == 0
    code, out, _ = remote("auth", "session", "list")
    assert code == 0 and "* " in out
    code, _, err = remote("auth", "reset-password", "--password-stdin", input="another long password\n")
    assert code == 1 and "only on the server itself" in err
    assert remote("auth", "logout") == (0, "logged out\n", "")
    code, _, err = remote("db", "dump")
    assert code == 1 and "not logged in" in err


def test_local_root_resets_the_password_and_sessions_end(run, remote) -> None:  # type: ignore[no-untyped-def]
    assert remote("auth", "login", "--password-stdin", input=PASSWORD + "\n")[0] == 0
    new = "a brand new master password"
    assert run("auth", "reset-password", "--password-stdin", input=new + "\n")[0] == 0
    code, _, err = remote("db", "dump")
    assert code == 1 and "not logged in" in err
    assert remote("auth", "login", "--password-stdin", input=new + "\n")[0] == 0


def test_server_set_hostname_and_language(run) -> None:  # type: ignore[no-untyped-def]
    assert run("server", "set-hostname", "Living Room")[0] == 0
    code, out, _ = run("db", "dump", "-p", "/public/serverInfo", fmt="json")
    info = json.loads(out)["value"]
    assert (info["name"], info["hostname"]) == ("Living Room", "living-room")
    assert run("server", "set-language", "pl")[0] == 0
    code, _, err = run("server", "set-language", "xx")
    assert code == 2 and "xx" in err

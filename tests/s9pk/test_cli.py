"""``start-cli`` package and key commands, driven through click's runner as a user would."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import blake3
import click
import pytest
from click.testing import CliRunner, Result

from startos.cli.s9pk_commands import register
from startos.s9pk.archive import ArchiveReader
from startos.s9pk.signing import load_signing_key, public_key_to_pem

from .conftest import HELLO


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("start-cli")
    register(group)
    return group


@pytest.fixture
def keyfile(tmp_path: Path, cli: click.Group) -> Path:
    path = tmp_path / "conf" / "developer.key.pem"
    result = run(cli, "init", "key", "--developer-key-path", str(path))
    assert result.stdout == f"New developer key generated at {path}\n"
    return path


@pytest.fixture
def package(tmp_path: Path, cli: click.Group, keyfile: Path) -> Path:
    source = tmp_path / "hello"
    shutil.copytree(HELLO, source)
    out = tmp_path / "hello.s9pk"
    result = run(cli, "s9pk", "pack", str(source), "-o", str(out), "--developer-key-path", str(keyfile))
    assert result.stdout == f"packed {out}\n"
    return out


def run(cli: click.Group, *args: str, code: int = 0, stdin: bytes | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    if code:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return result


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out.extend(all_commands(command, (*prefix, name)))
    return out


def test_every_command_has_help(cli: click.Group) -> None:
    names = all_commands(cli)
    assert {
        ("s9pk", "pack"),
        ("s9pk", "inspect", "cat"),
        ("init", "key"),
        ("pubkey",),
        ("util", "b3sum"),
        ("s9pk", "edit", "manifest"),
        ("s9pk", "verify"),
        ("s9pk", "select"),
        ("s9pk", "list-ingredients"),
    } <= set(names)
    for path in names:
        command: click.Command = cli
        for part in path:
            assert isinstance(command, click.Group)
            command = command.commands[part]
        assert command.help and command.help.strip(), path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, (path, param.name)


def test_help_output(cli: click.Group) -> None:
    assert "Package the source folder" in run(cli, "s9pk", "pack", "--help").stdout
    assert "manifest" in run(cli, "s9pk", "inspect", "--help").stdout


def test_register_joins_existing_groups() -> None:
    group = click.Group("start-cli")
    init = click.Group("init", help="Existing init commands.")
    init.add_command(click.Command("logs", help="Logs.", callback=lambda: None))
    group.add_command(init)
    register(group)
    assert set(group.commands["init"].commands) == {"logs", "key"}  # type: ignore[attr-defined]


def test_init_key_and_pubkey(cli: click.Group, keyfile: Path) -> None:
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    again = run(cli, "init", "key", "--developer-key-path", str(keyfile))
    assert again.stdout == f"Developer key already exists at {keyfile}\n"
    out = run(cli, "pubkey", "--developer-key-path", str(keyfile)).stdout
    assert out == public_key_to_pem(load_signing_key(keyfile).public_key)
    assert out.startswith("-----BEGIN PUBLIC KEY-----\n")


def test_key_path_from_environment(cli: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.pem"
    monkeypatch.setenv("START_CLI_DEVELOPER_KEY_PATH", str(path))
    run(cli, "init", "key")
    assert path.exists()


def test_pubkey_without_a_key(cli: click.Group, tmp_path: Path) -> None:
    result = run(cli, "pubkey", "--developer-key-path", str(tmp_path / "none.pem"), code=1)
    assert "start-cli init key" in result.stderr


def test_list_ingredients(cli: click.Group) -> None:
    out = run(cli, "s9pk", "list-ingredients", str(HELLO)).stdout
    assert out.strip().split(" ") == [
        str(HELLO / n) for n in ("manifest.json", "python", "icon.png", "LICENSE.md", "instructions.md")
    ]


def test_inspect_commands(cli: click.Group, package: Path) -> None:
    manifest = json.loads(run(cli, "s9pk", "inspect", str(package), "manifest").stdout)
    assert manifest["id"] == "hello"
    compact = run(cli, "s9pk", "inspect", str(package), "manifest", "--format", "json").stdout
    assert json.loads(compact) == manifest and compact.count("\n") == 1
    tree = json.loads(run(cli, "s9pk", "inspect", str(package), "file-tree").stdout)
    assert tree == [
        "LICENSE.md",
        "icon.png",
        "instructions.md",
        "manifest.json",
        "python/",
        "python/hello/",
        "python/hello/__init__.py",
        "python/hello/main.py",
    ]
    cat = run(cli, "s9pk", "inspect", str(package), "cat", "python/hello/__init__.py")
    assert cat.stdout_bytes == (HELLO / "python" / "hello" / "__init__.py").read_bytes()
    commitment = json.loads(run(cli, "s9pk", "inspect", str(package), "commitment").stdout)
    with ArchiveReader(package) as reader:
        assert commitment == reader.commitment.to_json()
    run(cli, "s9pk", "inspect", str(package), "cat", "nope", code=1)


def test_verify_ok_and_corrupt(cli: click.Group, package: Path, keyfile: Path) -> None:
    out = run(cli, "s9pk", "verify", str(package)).stdout
    assert out.startswith(f"verified {package}\n") and "6 files" in out
    pub = public_key_to_pem(load_signing_key(keyfile).public_key)
    run(cli, "s9pk", "verify", str(package), "--trusted-key", pub)
    other = run(cli, "s9pk", "verify", str(package), "--trusted-key", "00" * 32, code=1)
    assert "not a trusted key" in other.stderr
    data = bytearray(package.read_bytes())
    data[-1] ^= 1
    package.write_bytes(bytes(data))
    result = run(cli, "s9pk", "verify", str(package), code=1)
    assert "does not match its signed hash" in result.stderr
    assert result.stdout == ""


def test_verify_rejects_garbage(cli: click.Group, tmp_path: Path) -> None:
    junk = tmp_path / "junk.s9pk"
    junk.write_bytes(b"hello")
    assert "wrong magic" in run(cli, "s9pk", "verify", str(junk), code=1).stderr
    assert run(cli, "s9pk", "verify", str(tmp_path / "absent.s9pk"), code=1).stderr


def test_edit_manifest(cli: click.Group, package: Path, keyfile: Path) -> None:
    result = run(
        cli, "s9pk", "edit", str(package), "manifest", '.title = "Edited"', "--developer-key-path", str(keyfile)
    )
    assert json.loads(result.stdout)["title"] == "Edited"
    run(cli, "s9pk", "verify", str(package))
    bad = run(
        cli, "s9pk", "edit", str(package), "manifest", ".title = nope", "--developer-key-path", str(keyfile), code=1
    )
    assert "must be JSON" in bad.stderr


def test_select(cli: click.Group, package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(cli, "s9pk", "select", str(package)).stdout == f"{package}\n"
    monkeypatch.chdir(tmp_path)
    assert run(cli, "s9pk", "select").stdout == "hello.s9pk\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    run(cli, "s9pk", "select", code=1)


def test_pack_errors_are_one_line(cli: click.Group, tmp_path: Path, keyfile: Path) -> None:
    result = run(cli, "s9pk", "pack", str(tmp_path / "nowhere"), "--developer-key-path", str(keyfile), code=1)
    assert "does not exist" in result.stderr


def test_b3sum_known_values(cli: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("abc").write_bytes(b"abc")
    out = run(cli, "util", "b3sum", "abc").stdout
    assert out == "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85  abc\n"
    assert run(cli, "util", "b3sum", "abc", "--no-mmap").stdout == out
    assert run(cli, "util", "b3sum", "-", stdin=b"abc").stdout == out.replace("abc\n", "-\n")
    Path("a\\b").write_bytes(b"")
    assert run(cli, "util", "b3sum", "a\\b").stdout == ("\\" + blake3.blake3(b"").hexdigest() + "  a\\\\b\n")
    run(cli, "util", "b3sum", "missing", code=1)
    run(cli, "util", "b3sum", ".", code=1)


@pytest.mark.skipif(shutil.which("b3sum") is None, reason="the b3sum tool is not installed")
@pytest.mark.parametrize("name", ["plain.bin", "with space", "back\\slash", "new\nline", "ü.txt"])
def test_b3sum_prints_exactly_what_the_tool_prints(
    cli: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).write_bytes(bytes(range(256)) * 5000)
    tool = subprocess.run(["b3sum", name], capture_output=True, check=True).stdout
    assert run(cli, "util", "b3sum", name).stdout_bytes == tool
    tool_nommap = subprocess.run(["b3sum", "--no-mmap", name], capture_output=True, check=True).stdout
    assert run(cli, "util", "b3sum", "--no-mmap", name).stdout_bytes == tool_nommap


def test_default_key_location(cli: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("START_CLI_DEVELOPER_KEY_PATH", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    run(cli, "init", "key")
    path = tmp_path / "cfg" / "startos-py" / "developer.key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run(cli, "pubkey").stdout.startswith("-----BEGIN PUBLIC KEY-----")


def test_inspect_and_edit_accept_the_file_after_the_subcommand(tmp_path: Path) -> None:
    """``inspect manifest FILE`` works like StartOS's ``inspect FILE manifest``."""
    from click.testing import CliRunner

    from startos.cli.start_cli import cli

    runner = CliRunner()
    key = tmp_path / "key.pem"
    out = tmp_path / "hello.s9pk"
    fixture = Path(__file__).parent / "fixtures" / "hello"
    assert runner.invoke(cli, ["init", "key", "--developer-key-path", str(key)]).exit_code == 0
    packed = runner.invoke(cli, ["s9pk", "pack", str(fixture), "-o", str(out), "--developer-key-path", str(key)])
    assert packed.exit_code == 0, packed.output
    first = runner.invoke(cli, ["s9pk", "inspect", str(out), "manifest"])
    last = runner.invoke(cli, ["s9pk", "inspect", "manifest", str(out)])
    assert first.exit_code == last.exit_code == 0 and first.stdout == last.stdout
    cat_last = runner.invoke(cli, ["s9pk", "inspect", "cat", "LICENSE.md", str(out)])
    assert cat_last.exit_code == 0 and cat_last.stdout

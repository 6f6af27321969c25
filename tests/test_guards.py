"""Guards that keep the layers as DESIGN.md draws them (issue 11).

* every RPC method declared in ``startos.protocol`` has a handler in the facade, and every
  handler a declared method (and diagnostic mode answers the methods it lists);
* every ``start-cli`` line in the README's code blocks parses against the click command tree
  (as sqlite-utils tests its docs): the command path exists, the options exist, the arguments fit;
* ``startos.sdk`` exports what ``__all__`` says, all importable, and nothing private;
* every store write in ``startos/`` names its owner (``DbApply(..., owner=...)``, ``DbPut(..., owner=...)``);
* ``actors/handlers`` and the web layer stay on their side of the layers.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import shlex
import types
from pathlib import Path

import click
import pytest

import startos
import startos.protocol

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(startos.__file__).resolve().parent
README = ROOT / "README.md"


def _import_all(package: types.ModuleType) -> None:
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)


# -- (a) every declared RPC method has a handler, and every handler a method -----------------------


def test_every_declared_method_has_a_handler_and_every_handler_a_method() -> None:
    _import_all(startos.protocol)  # every module that declares methods
    importlib.import_module("startos.actors.tree")  # everything a running server registers
    from startos.actors.registry import HANDLERS
    from startos.protocol.rpc import METHODS

    unhandled = sorted(set(METHODS) - set(HANDLERS))
    undeclared = sorted(set(HANDLERS) - set(METHODS))
    assert not unhandled, f"declared in startos.protocol but no @rpc handler: {unhandled}"
    assert not undeclared, f"@rpc handlers without a declared method: {undeclared}"


def test_diagnostic_mode_answers_exactly_the_methods_it_lists() -> None:
    from startos.actors.diagnostic import DIAGNOSTIC_METHODS, DiagnosticFacadeActor, diagnostic_error
    from startos.actors.tree import StateLoadError
    from startos.protocol.rpc import METHODS

    assert set(DIAGNOSTIC_METHODS) <= set(METHODS)
    actor = DiagnosticFacadeActor(diagnostic_error(StateLoadError("the database is damaged")))
    assert set(actor._answers) == set(DIAGNOSTIC_METHODS)


def test_the_facade_answers_every_message_the_web_layer_sends() -> None:
    from startos.actors.diagnostic import DiagnosticFacadeActor
    from startos.actors.facade import FacadeActor
    from startos.protocol import calls
    from startos.protocol.base import Message

    sent = {obj for name in calls.__all__ if isinstance(obj := getattr(calls, name), type) and issubclass(obj, Message)}
    for actor in (FacadeActor, DiagnosticFacadeActor):
        missing = sorted(t.__name__ for t in sent - set(actor.handled_messages()))
        assert not missing, f"{actor.__name__} does not handle {missing}"


# -- (b) the README's start-cli lines parse against the click tree --------------------------------


def _readme_cli_lines() -> list[str]:
    lines, inside = [], False
    for raw in README.read_text().splitlines():
        if raw.lstrip().startswith("```"):
            inside = not inside
            continue
        line = raw.strip().removeprefix("$ ")
        if inside and line.startswith("start-cli"):
            lines.append(line)
    return lines


README_CLI_LINES = _readme_cli_lines()


def _path_types(command: click.Command) -> list[click.Path]:
    found = [p.type for p in command.params if isinstance(p.type, click.Path)]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found += _path_types(sub)
    return found


@pytest.fixture
def no_file_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README names files of its reader's (``hello.s9pk``): parse them without looking for them."""
    from startos.cli.start_cli import cli

    for path_type in _path_types(cli):
        monkeypatch.setattr(path_type, "exists", False)


def resolve_cli(argv: list[str]) -> list[str]:
    """Parse ``argv`` as click would for ``start-cli``; the command path, or a ``click.UsageError``.

    Only parsing: no command runs (``make_context`` converts and checks params, it invokes nothing).
    """
    from startos.cli.start_cli import cli

    command: click.Command = cli
    ctx = cli.make_context("start-cli", list(argv))
    path = ["start-cli"]
    while isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            break
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
        path.append(name)
    return path


def test_the_readme_shows_start_cli_lines() -> None:
    assert len(README_CLI_LINES) >= 10, "the README's code blocks should show how start-cli is used"


@pytest.mark.parametrize("line", README_CLI_LINES)
@pytest.mark.usefixtures("no_file_checks")
def test_each_start_cli_line_of_the_readme_parses(line: str) -> None:
    argv = shlex.split(line, comments=True)[1:]
    try:
        path = resolve_cli(argv)
    except click.UsageError as exc:
        pytest.fail(f"README: `{line}` does not parse: {exc.format_message()}")
    assert len(path) > 1 or argv[:1] == [], line


def test_the_parser_of_these_guards_refuses_what_start_cli_refuses() -> None:
    """The guard itself: a wrong word, an unknown flag, a missing or extra argument all fail."""
    assert resolve_cli(["db", "dump", "-p", "/public/ui"]) == ["start-cli", "db", "dump"]
    for argv in (
        ["db", "dunp"],
        ["db", "dump", "--pointr", "/x"],
        ["echo"],
        ["echo", "a", "b"],
        ["package", "logs", "x", "--limit", "many"],
    ):
        with pytest.raises(click.UsageError):
            resolve_cli(argv)


def _commands(command: click.Command, path: str = "start-cli") -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            found += _commands(sub, f"{path} {name}")
    return found


def test_every_start_cli_command_has_help_text() -> None:
    from startos.cli.start_cli import cli

    bare = [path for path, command in _commands(cli) if not (command.help or command.short_help)]
    assert bare == [], f"commands without help text: {bare}"


def test_every_start_cli_group_appears_in_the_readme() -> None:
    from startos.cli.start_cli import cli

    shown = {tuple(shlex.split(line, comments=True)[1:2]) for line in README_CLI_LINES}
    groups = sorted(name for name, command in cli.commands.items() if isinstance(command, click.Group))
    assert [g for g in groups if (g,) not in shown] == [], "command groups the README never shows"


# -- (c) startos.sdk exports ---------------------------------------------------------------------------


def test_the_sdk_exports_what_all_says_and_nothing_private() -> None:
    import startos.sdk as sdk

    exported = list(sdk.__all__)
    assert len(exported) == len(set(exported)), "a name is listed twice in startos.sdk.__all__"
    assert [n for n in exported if n.startswith("_")] == [], "startos.sdk.__all__ lists a private name"
    missing = [n for n in exported if not hasattr(sdk, n)]
    assert missing == [], f"startos.sdk.__all__ names what it does not define: {missing}"
    public = {
        name
        for name, value in vars(sdk).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public - set(exported) == set(), "startos.sdk defines public names outside __all__"
    namespace: dict[str, object] = {}
    exec("from startos.sdk import *", namespace)
    assert {n for n in namespace if n != "__builtins__"} == set(exported)


@pytest.mark.parametrize("module", ["startos.sdk.errors", "startos.sdk.input", "startos.sdk.testing"])
def test_the_sdks_public_modules_export_what_all_says(module: str) -> None:
    imported = importlib.import_module(module)
    exported = list(imported.__all__)
    assert [n for n in exported if n.startswith("_") or not hasattr(imported, n)] == []


def test_the_sdk_names_its_own_objects_by_their_public_path() -> None:
    """What the SDK exports from its private modules is documented under ``startos.sdk``."""
    import startos.sdk as sdk

    for name in sdk.__all__:
        value = getattr(sdk, name)
        module = getattr(value, "__module__", None)
        if module is None or not isinstance(value, type | types.FunctionType):
            continue
        assert module.startswith(("startos.sdk", "startos.protocol")), f"{name} comes from {module}"


# -- (d) every store write names its owner ------------------------------------------------------------

WRITES = ("DbApply", "DbPut")


def store_writes_without_owner(root: Path = PACKAGE) -> list[str]:
    """``file:line`` of each ``DbApply(...)``/``DbPut(...)`` under ``root`` that passes no ``owner=``."""
    missing: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "store.py" and path.parent.name == "protocol":
            continue  # where the messages are declared
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in WRITES and not any(k.arg == "owner" for k in node.keywords):
                missing.append(f"{path.relative_to(root.parent)}:{node.lineno} {name}")
    return missing


def test_every_store_write_names_its_owner() -> None:
    missing = store_writes_without_owner()
    assert missing == [], "store writes that do not say who they are from (owner=...):\n" + "\n".join(missing)


def test_the_owner_scan_finds_a_write_without_owner(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(
        "ask('store', DbApply(patch=[]))\nask('store', DbPut(pointer='/x', value=1, owner='auth'))\n"
    )
    found = store_writes_without_owner(tmp_path / "pkg")
    assert len(found) == 1 and found[0].endswith("a.py:1 DbApply")


# -- (e) layers ------------------------------------------------------------------------------------------

IMPORT = re.compile(r"^\s*(?:from|import)\s+(startos\.[\w.]+)", re.MULTILINE)


def _imports(folder: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(ROOT)): set(IMPORT.findall(path.read_text()))
        for path in sorted((PACKAGE / folder).rglob("*.py"))
    }


def test_handlers_do_not_import_the_web_layer() -> None:
    """The handlers (and the facade) answer RPC; only the tree's wiring starts the web servers."""
    imports = _imports("actors/handlers") | {
        k: v for k, v in _imports("actors").items() if k.endswith("actors/facade.py")
    }
    offending = {f: sorted(m for m in mods if m.startswith("startos.webui")) for f, mods in imports.items()}
    assert {f: m for f, m in offending.items() if m} == {}


def test_the_web_layer_talks_to_the_facade_only() -> None:
    """No actor module and no store message in ``webui``: it sends ``protocol.calls`` to the facade."""
    offending = {
        f: sorted(m for m in mods if m.startswith("startos.actors") or m == "startos.protocol.store")
        for f, mods in _imports("webui").items()
    }
    assert {f: m for f, m in offending.items() if m} == {}
    asked = set()
    for path in sorted((PACKAGE / "webui").rglob("*.py")):
        asked |= set(re.findall(r"directory\.(?:ask|ref|get|tell)\(\s*\"([\w:-]+)\"", path.read_text()))
    assert asked <= {"facade", "web-tls"}, f"the web layer addresses {sorted(asked - {'facade', 'web-tls'})}"


def test_restart_policies_live_in_one_module() -> None:
    defined = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "supervision" or path == PACKAGE / "actors" / "policies.py":
            continue
        for match in re.finditer(r"^\w+\s*=\s*Backoff\(", path.read_text(), re.MULTILINE):
            defined.append(f"{path.relative_to(ROOT)}: {match.group().split('=')[0].strip()}")
    assert defined == [], "named restart policies belong in startos/actors/policies.py"

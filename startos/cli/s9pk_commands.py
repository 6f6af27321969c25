"""``start-cli`` commands for packages and developer keys (no server needed).

``register(cli)`` adds ``s9pk …``, ``init key``, ``pubkey`` and ``util b3sum`` to the main
group. Words and shapes follow StartOS's CLI: ``s9pk inspect S9PK manifest``, ``s9pk edit S9PK
manifest EXPR``, ``list-ingredients`` printing paths separated by spaces (for Makefiles), JSON
pretty-printed by default. Every failure prints one line, ``error: …``, on stderr and exits 1.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from startos.errors import StartOSError
from startos.s9pk.archive import ArchiveReader, hash_file
from startos.s9pk.errors import S9pkError
from startos.s9pk.package import (
    edit_manifest,
    find_sources,
    pack_package,
    select_best,
)
from startos.s9pk.signing import (
    default_developer_key_path,
    fingerprint,
    generate_signing_key,
    load_public_key,
    load_signing_key,
    public_key_to_pem,
    save_signing_key,
)

__all__ = ["register"]

P = ParamSpec("P")
R = TypeVar("R")
KEY_ENV = "START_CLI_DEVELOPER_KEY_PATH"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(message: str) -> None:
    click.echo(f"error: {_one_line(message)}", err=True)
    raise click.exceptions.Exit(1)


def _errors_as_one_line(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our typed errors and OS errors into ``error: …`` and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StartOSError as exc:
            _fail(str(exc))
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where}")
        raise AssertionError("unreachable")

    return wrapper


def _key_path(explicit: str | None) -> Path:
    """--developer-key-path, else the env var, else the main group's option, else the default."""
    if explicit:
        return Path(explicit)
    ctx = click.get_current_context(silent=True)
    root_value = ctx.find_root().params.get("developer_key_path") if ctx else None
    return Path(root_value) if root_value else default_developer_key_path()


_key_option = click.option(
    "--developer-key-path",
    "key_path",
    envvar=KEY_ENV,
    type=click.Path(dir_okay=False),
    help=f"Developer key (PEM). Default ~/.config/startos-py/developer.key.pem; env {KEY_ENV}.",
)
_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["json-pretty", "json"]),
    default="json-pretty",
    show_default=True,
    help="Output format.",
)


def _emit_json(value: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    else:
        click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _pack_options(func: Callable[P, R]) -> Callable[P, R]:
    func = click.option("--no-assets", is_flag=True, help="Build without an assets directory.")(func)
    func = click.option("--assets", type=click.Path(file_okay=False), help="Assets directory (default PATH/assets).")(
        func
    )
    func = click.option("--license", "license_", type=click.Path(dir_okay=False), help="License file.")(func)
    func = click.option("--icon", type=click.Path(dir_okay=False), help="Service icon file.")(func)
    return click.argument("path", required=False, default=".", type=click.Path())(func)


@click.group("s9pk")
def s9pk() -> None:
    """Build, inspect, edit and verify s9pk package files."""


@s9pk.command("pack")
@_pack_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file path.")
@_key_option
@_errors_as_one_line
def pack(
    path: str,
    icon: str | None,
    license_: str | None,
    assets: str | None,
    no_assets: bool,
    output: str | None,
    key_path: str | None,
) -> None:
    """Package the source folder PATH (default .) into a signed s9pk."""
    sources = find_sources(path, icon=icon, license=license_, assets=assets, no_assets=no_assets)
    key = load_signing_key(_key_path(key_path))
    out = pack_package(sources, key, output)
    click.echo(f"packed {out}")


@s9pk.command("list-ingredients")
@_pack_options
@_errors_as_one_line
def list_ingredients(path: str, icon: str | None, license_: str | None, assets: str | None, no_assets: bool) -> None:
    """Print the paths a pack of PATH reads, separated by spaces (for Makefile prerequisites)."""
    sources = find_sources(path, icon=icon, license=license_, assets=assets, no_assets=no_assets)
    click.echo(" ".join(str(p) for p in sources.ingredients()))


class FileFirstGroup(click.Group):
    """A group whose S9PK argument may come first (StartOS's order) or last.

    ``inspect hello.s9pk manifest`` and ``inspect manifest hello.s9pk`` mean the same: when the
    first word is one of the subcommands and the last one names an existing file, that file is
    moved to the front before click parses the line.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if len(args) >= 2 and args[0] in self.commands and os.path.isfile(args[-1]) and not args[-1].startswith("-"):
            args = [args[-1], *args[:-1]]
        return super().parse_args(ctx, args)


@s9pk.group("inspect", cls=FileFirstGroup)
@click.argument("s9pk_path", metavar="S9PK", type=click.Path(dir_okay=False))
def inspect(s9pk_path: str) -> None:
    """Show a package's manifest, file tree, a file's contents, or its commitment.

    The S9PK file may come before or after the subcommand.
    """


def _parent_s9pk() -> str:
    """The S9PK argument of the enclosing ``inspect``/``edit`` group."""
    parent = click.get_current_context().parent
    assert parent is not None
    return str(parent.params["s9pk_path"])


def _open_from_ctx() -> ArchiveReader:
    return ArchiveReader(_parent_s9pk())


@inspect.command("manifest")
@_format_option
@_errors_as_one_line
def inspect_manifest(fmt: str) -> None:
    """Print manifest.json (verified against its hash; not schema-checked, so StartOS's work)."""
    with _open_from_ctx() as reader:
        raw = reader.read_bytes("manifest.json", max_size=4 * 1024 * 1024)
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise S9pkError(f"manifest.json is not valid JSON: {exc}") from exc
    _emit_json(doc, fmt)


@inspect.command("file-tree")
@_format_option
@_errors_as_one_line
def inspect_file_tree(fmt: str) -> None:
    """List every path in the package (directories end with /)."""
    with _open_from_ctx() as reader:
        _emit_json(reader.file_paths(), fmt)


@inspect.command("cat")
@click.argument("file_path")
@_errors_as_one_line
def inspect_cat(file_path: str) -> None:
    """Write FILE_PATH's contents to stdout (the end is withheld if it fails its hash)."""
    out = sys.stdout.buffer
    with _open_from_ctx() as reader:
        reader.copy_file(file_path, out)
    out.flush()


@inspect.command("commitment")
@_format_option
@_errors_as_one_line
def inspect_commitment(fmt: str) -> None:
    """Print the signed root sighash and max size ({rootSighash, rootMaxsize})."""
    with _open_from_ctx() as reader:
        _emit_json(reader.commitment.to_json(), fmt)


@s9pk.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--trusted-key",
    "trusted",
    multiple=True,
    help="Accept only this signer (PEM file, PEM text, base64 or hex); repeatable.",
)
@_errors_as_one_line
def verify(file: str, trusted: tuple[str, ...]) -> None:
    """Check FILE's signature and every hash; exit 0 only if everything holds."""
    keys = [load_public_key(t) for t in trusted] if trusted else None
    with ArchiveReader(file, trusted_keys=keys) as reader:
        report = reader.verify()
    click.echo(f"verified {file}")
    click.echo(f"  signer: {fingerprint(report.signer)}")
    click.echo(f"  commitment: {json.dumps(report.commitment.to_json())}")
    click.echo(
        f"  {report.files} files ({report.file_bytes} bytes), {report.directories} directories, "
        f"{report.missing} missing"
    )


@s9pk.group("edit", cls=FileFirstGroup)
@click.argument("s9pk_path", metavar="S9PK", type=click.Path(dir_okay=False))
def edit(s9pk_path: str) -> None:
    """Change a package and re-sign it with your developer key."""


@edit.command("manifest")
@click.argument("expression")
@_key_option
@_format_option
@_errors_as_one_line
def edit_manifest_command(expression: str, key_path: str | None, fmt: str) -> None:
    """Apply EXPRESSION to the manifest and re-sign; print the new manifest.

    EXPRESSION is a JSON Patch array ('[{"op":"replace","path":"/title","value":"X"}]') or an
    assignment: '.title = "X"' or '/description/short = "Y"' (the value is JSON).
    """
    key = load_signing_key(_key_path(key_path))
    _emit_json(edit_manifest(_parent_s9pk(), expression, key), fmt)


@s9pk.command("select")
@click.argument("s9pks", nargs=-1, type=click.Path(dir_okay=False))
@_errors_as_one_line
def select(s9pks: tuple[str, ...]) -> None:
    """Print the best package for this machine among S9PKS (default: *.s9pk here)."""
    paths = list(s9pks) or sorted(str(p) for p in Path(".").glob("*.s9pk"))
    if not paths:
        raise S9pkError("no .s9pk files given and none in the current directory")
    click.echo(str(select_best(paths)))


@click.command("key")
@_key_option
@_errors_as_one_line
def init_key(key_path: str | None) -> None:
    """Create a developer signing key (kept if one exists)."""
    path = _key_path(key_path)
    if path.exists():
        click.echo(f"Developer key already exists at {path}")
        return
    save_signing_key(generate_signing_key(), path)
    click.echo(f"New developer key generated at {path}")


@click.command("pubkey")
@_key_option
@_errors_as_one_line
def pubkey(key_path: str | None) -> None:
    """Print the developer public key (PEM), as registries and `s9pk verify` take it."""
    key = load_signing_key(_key_path(key_path))
    click.echo(public_key_to_pem(key.public_key), nl=False)


def _b3sum_name(name: str) -> tuple[str, bool]:
    # What b3sum prints for a name: lossy UTF-8, with "\\" and newlines escaped and the line
    # then prefixed by a backslash so `b3sum --check` can undo it.
    text = os.fsencode(name).decode("utf-8", "replace")
    if "\\" in text or "\n" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n"), True
    return text, False


@click.command("b3sum")
@click.argument("file", type=click.Path())
@click.option("--no-mmap", is_flag=True, help="Read with plain reads instead of mapping the file.")
@_errors_as_one_line
def b3sum(file: str, no_mmap: bool) -> None:
    """Print FILE's BLAKE3 hash exactly as the b3sum tool does ("-" reads stdin)."""
    if file == "-":
        import blake3

        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        stdin = sys.stdin.buffer
        while chunk := stdin.read(8 * 1024 * 1024):
            hasher.update(chunk)
        digest = hasher.digest()
    elif os.path.isdir(file):
        raise S9pkError(f"{file}: is a directory")
    else:
        digest = hash_file(file, use_mmap=not no_mmap)
    name, escaped = _b3sum_name(file)
    click.echo(("\\" if escaped else "") + f"{digest.hex()}  {name}")


def _group(cli: click.Group, name: str, help_text: str) -> click.Group:
    existing = cli.commands.get(name)
    if isinstance(existing, click.Group):
        return existing
    group = click.Group(name, help=help_text)
    cli.add_command(group)
    return group


def register(cli: click.Group) -> None:
    """Add ``s9pk``, ``init key``, ``pubkey`` and ``util b3sum`` to ``cli``.

    ``init`` and ``util`` are joined if the main group already has them.
    """
    cli.add_command(s9pk)
    _group(cli, "init", "Set up this machine for start-cli.").add_command(init_key)
    cli.add_command(pubkey)
    _group(cli, "util", "Utilities.").add_command(b3sum)

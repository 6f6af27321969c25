"""How start-cli prints results: JSON, or a readable table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default=None, help="Output format (default: start-cli's)."
)
"""``--format`` after a subcommand too (the docs place it there); ``None`` means start-cli's global one."""


def emit(value: Any, fmt: str) -> None:
    """Print ``value``: pretty JSON for ``json``; strings bare and mappings as key/value rows for ``table``."""
    if fmt == "json":
        click.echo(json.dumps(value, indent=2, sort_keys=False))
        return
    if value is None:
        return
    if isinstance(value, str):
        click.echo(value)
    elif isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
        table([[str(k), _cell(v)] for k, v in value.items()], ["key", "value"])
    else:
        click.echo(json.dumps(value, indent=2))


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> None:
    """Print rows in aligned columns under ``headers``."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    click.echo(line.rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

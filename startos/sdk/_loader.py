"""Finding and importing a package's service code (the entry convention).

A package's ``python/`` folder holds a module named ``startos_service`` (``startos_service.py`` or
a ``startos_service/`` package) that defines ``service = startos.sdk.Service(...)``. The
``python/`` folder goes first on ``sys.path``, so the package's other modules import by their
own names. The entry module's name starts with ``startos_`` so that it never collides with a
module a package brings, and it is not ``startos`` itself, which stays the server's.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

from startos.sdk._env import ENTRY_MODULE
from startos.sdk._service import Service

__all__ = ["LoadFailure", "describe_exception", "format_debug", "load_service"]

DEBUG_CAP = 60_000


class LoadFailure(Exception):
    """The package code could not be loaded; ``message`` is one line, ``debug`` a traceback."""

    def __init__(self, message: str, debug: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.debug = debug


def describe_exception(exc: BaseException) -> str:
    """``ValueError: boom`` on one line; ``sys.exit(3)`` spelt out as such."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    line = f"{name}: {text}" if text else name
    return line if len(line) <= 500 else line[:499] + "…"


def format_debug(exc: BaseException) -> str:
    """The traceback of ``exc``, capped (the end is kept: it names the failing line)."""
    text = "".join(traceback.format_exception(exc))
    return text if len(text) <= DEBUG_CAP else "…" + text[-(DEBUG_CAP - 1) :]


def entry_file(python_dir: Path) -> Path | None:
    """The entry module's file under ``python_dir``, or None."""
    for candidate in (python_dir / f"{ENTRY_MODULE}.py", python_dir / ENTRY_MODULE / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def load_service(python_dir: Path) -> Service:
    """Import ``python_dir/startos_service`` and return its ``service``; raise :class:`LoadFailure`."""
    if entry_file(python_dir) is None:
        raise LoadFailure(
            f"the package has no python/{ENTRY_MODULE}.py; it must define service = startos.sdk.Service(...)"
        )
    path = str(python_dir)
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    sys.modules.pop(ENTRY_MODULE, None)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(ENTRY_MODULE)
    except BaseException as exc:  # noqa: BLE001 (package code: SyntaxError, sys.exit, anything)
        raise LoadFailure(f"importing {ENTRY_MODULE} failed: {describe_exception(exc)}", format_debug(exc)) from None
    service = getattr(module, "service", None)
    if not isinstance(service, Service):
        got = "nothing" if service is None else type(service).__name__
        raise LoadFailure(f"{ENTRY_MODULE} must define service = startos.sdk.Service(...), found {got}")
    return service

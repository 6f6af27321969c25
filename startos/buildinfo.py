"""Which code is running: the git commit recorded at build time or read from a checkout."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def git_hash() -> str | None:
    """The commit hash, with ``-modified`` appended when built from a dirty tree (as StartOS)."""
    recorded = _PACKAGE / "_build_info.json"
    info: dict[str, object] | None = None
    if (_PACKAGE.parent / ".git").exists():
        info = _from_checkout(_PACKAGE.parent)
    if info is None and recorded.exists():
        try:
            info = json.loads(recorded.read_text())
        except (OSError, ValueError):
            info = None
    if not info or not info.get("commit"):
        return None
    return f"{info['commit']}{'-modified' if info.get('dirty') else ''}"


def _from_checkout(root: Path) -> dict[str, object] | None:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}

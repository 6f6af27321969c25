"""When Crashy crashes: ``crashy.json`` (settings) and ``starts.txt`` (start counter) in its volume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG = "crashy.json"
STARTS = "starts.txt"
HEARTBEAT = "crashy.heartbeat"  # in the service's tmp directory
DEFAULTS: dict[str, Any] = {"exit_after": 3.0, "exit_code": 1, "crash_every": 1}


def ensure_config(volume: Path) -> None:
    if not (volume / CONFIG).exists():
        (volume / CONFIG).write_text(json.dumps(DEFAULTS, indent=2) + "\n")


def load_config(volume: Path) -> dict[str, Any]:
    try:
        return {**DEFAULTS, **json.loads((volume / CONFIG).read_text())}
    except FileNotFoundError:
        return dict(DEFAULTS)


def count_start(volume: Path) -> int:
    """Add one to the start counter; the number of this start (1 for the first)."""
    path = volume / STARTS
    try:
        starts = int(path.read_text().strip() or 0) + 1
    except FileNotFoundError:
        starts = 1
    path.write_text(f"{starts}\n")
    return starts


def crashes_on(start: int, crash_every: int) -> bool:
    """Whether start number ``start`` is one that crashes."""
    return crash_every > 0 and start % crash_every == 0

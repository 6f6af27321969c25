"""Slow Sync's files in its main volume: ``sync.json`` (settings), ``progress.json``, ``blocks/``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONFIG = "sync.json"
PROGRESS = "progress.json"
DEFAULTS: dict[str, Any] = {"blocks": 30, "interval": 1.0}


def ensure_config(volume: Path) -> None:
    if not (volume / CONFIG).exists():
        (volume / CONFIG).write_text(json.dumps(DEFAULTS, indent=2) + "\n")


def load_config(volume: Path) -> dict[str, Any]:
    """Settings with defaults filled in; ``SLOW_SYNC_INTERVAL`` overrides the interval."""
    try:
        config = {**DEFAULTS, **json.loads((volume / CONFIG).read_text())}
    except FileNotFoundError:
        config = dict(DEFAULTS)
    if "SLOW_SYNC_INTERVAL" in os.environ:
        config["interval"] = float(os.environ["SLOW_SYNC_INTERVAL"])
    return config


def load_progress(volume: Path) -> int:
    try:
        return int(json.loads((volume / PROGRESS).read_text())["done"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def save_progress(volume: Path, done: int) -> None:
    tmp = volume / (PROGRESS + ".tmp")
    tmp.write_text(json.dumps({"done": done}))
    os.replace(tmp, volume / PROGRESS)


def update_config(volume: Path, **changes: Any) -> None:
    """Change some settings (written atomically), keeping the others."""
    try:
        current = json.loads((volume / CONFIG).read_text())
    except FileNotFoundError:
        current = dict(DEFAULTS)
    tmp = volume / (CONFIG + ".tmp")
    tmp.write_text(json.dumps({**current, **changes}, indent=2) + "\n")
    os.replace(tmp, volume / CONFIG)

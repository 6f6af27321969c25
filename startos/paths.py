"""Default locations: a per-user data directory, and the developer's config directory."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """``/var/lib/startos-py`` for root, else ``$XDG_DATA_HOME/startos-py`` (``~/.local/share``)."""
    if os.geteuid() == 0:
        return Path("/var/lib/startos-py")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "startos-py"


def default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "startos-py"

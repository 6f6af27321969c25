"""Hello World's files in its main volume: ``config.json`` (settings) and ``visits.json``."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

CONFIG = "config.json"
VISITS = "visits.json"
CREDENTIALS = "credentials.json"
DEFAULTS: dict[str, Any] = {"port": 8080, "greeting": "Hello from startos-py!"}


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def ensure_defaults(volume: Path) -> None:
    """Create the settings and the counter if they are missing; keep what is there."""
    config = volume / CONFIG
    if not config.exists():
        write_atomically(config, json.dumps(DEFAULTS, indent=2) + "\n")
    visits = volume / VISITS
    if not visits.exists() and not (volume / "counter.txt").exists():
        write_atomically(visits, json.dumps({"visits": 0}))


def load(volume: Path) -> dict[str, Any]:
    """The settings, defaults filled in; raise ValueError naming a bad value."""
    try:
        raw = json.loads((volume / CONFIG).read_text())
    except FileNotFoundError:
        raw = {}
    settings = {**DEFAULTS, **raw}
    port = settings["port"]
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError(f"config.json: port must be a number from 1 to 65535, got {port!r}")
    if not isinstance(settings["greeting"], str):
        raise ValueError("config.json: greeting must be text")
    return settings


def update(volume: Path, **changes: Any) -> None:
    """Change some settings, keeping the others."""
    current = load(volume)
    write_atomically(volume / CONFIG, json.dumps({**current, **changes}, indent=2) + "\n")


def ensure_credentials(volume: Path) -> bool:
    """Generate the admin password once (0600); True when it was created now."""
    path = volume / CREDENTIALS
    if path.exists():
        return False
    data = {"username": "admin", "password": secrets.token_urlsafe(18)}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data))
    os.replace(tmp, path)
    return True


def load_credentials(volume: Path) -> dict[str, str]:
    """The admin credentials written at install."""
    data = json.loads((volume / CREDENTIALS).read_text())
    return {"username": str(data["username"]), "password": str(data["password"])}

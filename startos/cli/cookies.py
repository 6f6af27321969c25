"""Where start-cli keeps its session cookies, and the local root cookie it may present."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from startos.paths import default_config_dir, default_data_dir
from startos.webui.policy import is_loopback


def default_cookie_path() -> Path:
    return default_config_dir() / "cookies.json"


def default_auth_cookie_path() -> Path:
    return default_data_dir() / "rpc.authcookie"


class CookieJar:
    """``{server URL: {cookie: value}}`` in one JSON file readable only by its owner."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, url: str) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        cookies = data.get(url) if isinstance(data, dict) else None
        return {str(k): str(v) for k, v in cookies.items()} if isinstance(cookies, dict) else {}

    def store(self, url: str, name: str, value: str | None) -> None:
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        cookies = data.setdefault(url, {})
        if value is None:
            cookies.pop(name, None)
        else:
            cookies[name] = value
        if not cookies:
            data.pop(url, None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(data, indent=2).encode())
        finally:
            os.close(fd)
        os.replace(tmp, self.path)


def local_secret(url: str, path: Path) -> str | None:
    """The local root cookie, when talking to this machine and allowed to read the file."""
    host = urlsplit(url).hostname or ""
    if host != "localhost" and not is_loopback(host):
        return None
    try:
        return path.read_text().strip() or None
    except OSError:
        return None

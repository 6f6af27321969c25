"""Shared bits of the example packages' tests: where they are, free ports, HTTP gets."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "packages"
NAMES = ("hello-world", "slow-sync", "crashy", "wallet")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value))

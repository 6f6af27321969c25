"""Test helpers: poll a condition with a deadline instead of sleeping; well-formed tree entries."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import gevent

T = TypeVar("T")

POLL_INTERVAL = 0.002  # seconds between two looks at the condition


def wait_until(condition: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Return the first truthy value of ``condition()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        gevent.sleep(POLL_INTERVAL)  # yield to the hub so the actors under test can run


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real small filesystem (tmpfs) at ``path`` for full-disk tests; skips unless root can mount."""
    import pytest

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# -- well-formed packageData entries (they pass startos.protocol.public_tree) ----------------


def package_entry() -> dict[str, Any]:
    """A running package as the server writes it (every part filled in)."""
    return {
        "stateInfo": {"state": "installed", "manifest": {"id": "hello", "version": "1.0.0:0", "extra": [1, None]}},
        "statusInfo": {
            "desired": "running",
            "started": "2026-12-04T18:00:00.000Z",
            "error": None,
            "health": {"web": {"name": "Web interface", "result": "success", "message": None}},
            "daemons": {"main": {"state": "running", "reason": None, "failures": 0, "retryIn": None, "retryAt": None}},
            "progress": {"main": {"daemon": "main", "done": 3, "total": None, "message": "syncing"}},
            "blocked": None,
            "dependencies": {"other": {"satisfied": False, "message": "Other is not installed"}},
            "summary": "running",
        },
        "icon": "data:image/png;base64,AAAA",
        "signer": "c2lnbmVy",
        "registry": None,
        "lastBackup": None,
        "currentDependencies": {
            "other": {
                "kind": "running",
                "versionRange": ">=1.0.0:0",
                "healthChecks": ["sync"],
                "optional": True,
                "title": "Other",
                "description": None,
            }
        },
        "actions": {
            "show": {
                "name": "Show",
                "description": "Shows it.",
                "warning": None,
                "visibility": "enabled",
                "allowedStatuses": "any",
                "hasInput": False,
                "group": None,
            },
            "off": {
                "name": "Off",
                "description": "",
                "warning": "Careful",
                "visibility": {"disabled": "not now"},
                "allowedStatuses": "only-stopped",
                "hasInput": True,
                "group": "Setup",
            },
        },
        "tasks": {
            "setup": {
                "task": {
                    "packageId": "other",
                    "actionId": "show",
                    "severity": "important",
                    "reason": "Please",
                    "input": {"kind": "partial", "value": {"anything": {"the": ["package's own"]}}},
                    "when": {"condition": "input-not-matches", "once": False},
                },
                "active": True,
                "createdAt": "2026-12-04T18:00:00.000Z",
            }
        },
        "serviceInterfaces": {
            "main": {
                "id": "main",
                "name": "Web",
                "description": "",
                "type": "ui",
                "masked": False,
                "addressInfo": {
                    "hostId": "main",
                    "internalPort": 8080,
                    "scheme": None,
                    "sslScheme": "https",
                    "path": "/",
                },
            }
        },
        "hosts": {
            "main": {
                "bindings": {
                    "8080": {
                        "enabled": True,
                        "net": {"assignedPort": 41000, "ssl": True},
                        "addresses": {
                            "available": [
                                {
                                    "kind": "ipv4",
                                    "hostname": "127.0.0.1",
                                    "port": 41000,
                                    "ssl": True,
                                    "public": False,
                                    "enabled": True,
                                    "url": "https://127.0.0.1:41000/",
                                }
                            ],
                            "disabled": [],
                        },
                    }
                },
                "publicDomains": {},
                "privateDomains": [],
            }
        },
        "outboundGateway": None,
    }


def installing_entry() -> dict[str, Any]:
    entry = package_entry()
    phases = [{"name": "verify", "progress": True}, {"name": "unpack", "progress": False}]
    phases.append({"name": "init", "progress": None})
    entry["stateInfo"] = {
        "state": "installing",
        "manifest": {},
        "installingInfo": {
            "progress": {"overall": {"done": 1, "total": 3, "units": None}, "phases": phases},
            "newVersion": "1.0.0:0",
        },
    }
    return entry

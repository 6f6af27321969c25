"""slow-sync's service code, unit-tested with startos.sdk.testing (no server)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from startos.protocol import runtime as wire
from startos.sdk.testing import ServiceTester

from ..helpers import wait_until
from .conftest import EXAMPLES, write_json

FOLDER = EXAMPLES / "slow-sync"


@pytest.fixture
def t(tmp_path: Path) -> Iterator[ServiceTester]:
    with ServiceTester(FOLDER, tmp_path) as tester:
        tester.run_init("install")
        yield tester


def test_install_writes_default_config(t: ServiceTester) -> None:
    assert json.loads(t.volume("main", "sync.json").read_text()) == {"blocks": 30, "interval": 1.0}


def test_description(t: ServiceTester) -> None:
    description = t.describe()
    sync = t.daemon("sync")
    assert [d.id for d in description.daemons] == ["sync"] and description.oneshots == ()
    assert sync.ready == wire.FunctionReady(display="Sync", grace_period=0)
    assert sync.env["STARTOS_DAEMON"] == "sync"
    assert description.backup.volumes == (wire.BackupVolume(id="main", exclude=("blocks/**",)),)


def test_sync_reports_progress_and_resumes(t: ServiceTester) -> None:
    from slow_sync.daemon import sync  # the package's modules import inside the tester

    write_json(t.volume("main", "sync.json"), {"blocks": 3, "interval": 0})
    assert sync(t.volume("main"), threading.Event()) == 3
    assert [(p.done, p.total) for p in t.progress] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert t.progress[-1].message == "Synced 3 of 3 blocks"
    assert all(p.daemon is None for p in t.progress)  # in-process: not a daemon
    write_json(t.volume("main", "sync.json"), {"blocks": 5, "interval": 0})
    assert sync(t.volume("main"), threading.Event()) == 5
    assert [p.done for p in t.progress[4:]] == [3, 4, 5]  # resumed after block 3
    assert sorted(p.name for p in t.volume("main", "blocks").iterdir()) == [f"{n:06d}" for n in range(1, 6)]


def test_sync_stops_when_asked(t: ServiceTester) -> None:
    from slow_sync.daemon import sync

    stop = threading.Event()
    stop.set()
    assert sync(t.volume("main"), stop) == 0


def test_check_shows_loading_then_success(t: ServiceTester) -> None:
    from slow_sync.daemon import sync

    assert t.run_check("sync") == wire.CheckResult(result="loading", message="Synced 0 of 30 blocks")
    write_json(t.volume("main", "sync.json"), {"blocks": 2, "interval": 0})
    sync(t.volume("main"), threading.Event())
    assert t.run_check("sync") == wire.CheckResult(result="success", message="Synced all 2 blocks")


def test_interval_from_the_environment(t: ServiceTester, monkeypatch: pytest.MonkeyPatch) -> None:
    from slow_sync import state

    monkeypatch.setenv("SLOW_SYNC_INTERVAL", "0.25")
    assert state.load_config(t.volume("main"))["interval"] == 0.25


def test_daemon_process_without_a_runtime_keeps_syncing(t: ServiceTester) -> None:
    # Outside a server nothing listens for progress: the daemon warns once and carries on.
    write_json(t.volume("main", "sync.json"), {"blocks": 4, "interval": 0.01})
    process = t.start_daemon("sync", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: t.run_check("sync").result == "success", timeout=15, what="sync finished")
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert b"synced 4 blocks" in out
    assert err.count(b"cannot report progress") == 1, err


def test_the_daemon_module_runs_with_this_python(t: ServiceTester) -> None:
    assert t.daemon("sync").argv[0] == sys.executable

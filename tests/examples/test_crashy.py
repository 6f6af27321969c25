"""crashy's service code, unit-tested with startos.sdk.testing (no server)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from startos.protocol import runtime as wire
from startos.sdk.testing import ServiceTester

from ..helpers import wait_until
from .conftest import EXAMPLES, write_json

FOLDER = EXAMPLES / "crashy"


@pytest.fixture
def t(tmp_path: Path) -> Iterator[ServiceTester]:
    with ServiceTester(FOLDER, tmp_path) as tester:
        tester.run_init("install")
        yield tester


def test_install_writes_default_config(t: ServiceTester) -> None:
    assert json.loads(t.volume("main", "crashy.json").read_text()) == {
        "exit_after": 3.0,
        "exit_code": 1,
        "crash_every": 1,
    }


def test_schedule(t: ServiceTester) -> None:
    from crashy.schedule import crashes_on  # the package's modules import inside the tester

    assert [crashes_on(n, 1) for n in (1, 2, 3)] == [True, True, True]
    assert [crashes_on(n, 2) for n in (1, 2, 3, 4)] == [False, True, False, True]
    assert [crashes_on(n, 0) for n in (1, 2)] == [False, False]


def test_description(t: ServiceTester) -> None:
    crashy = t.daemon("crashy")
    assert isinstance(crashy.ready, wire.CommandReady)
    assert crashy.ready.argv[-2:] == ("-m", "crashy.check") and crashy.ready.display == "Heartbeat"
    assert crashy.ready.env["PYTHONPATH"] == str(FOLDER / "python")
    assert crashy.stop_timeout == 5


def test_check_fails_without_a_heartbeat(t: ServiceTester) -> None:
    assert t.run_check("crashy") == wire.CheckResult(result="failure", message="no heartbeat yet")


def test_daemon_crashes_with_the_configured_status(t: ServiceTester) -> None:
    write_json(t.volume("main", "crashy.json"), {"exit_after": 0.1, "exit_code": 3, "crash_every": 1})
    process = t.start_daemon("crashy", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 3
    assert b"crashing on purpose with status 3" in err
    assert t.volume("main", "starts.txt").read_text() == "1\n"


def test_every_second_start_crashes(t: ServiceTester) -> None:
    write_json(t.volume("main", "crashy.json"), {"exit_after": 0.1, "exit_code": 1, "crash_every": 2})
    first = t.start_daemon("crashy", stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: t.run_check("crashy").result == "success", timeout=15, what="heartbeat")
        assert first.poll() is None  # start 1 stays up
    finally:
        first.terminate()
    assert first.wait(timeout=10) == 0
    second = t.start_daemon("crashy", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert second.wait(timeout=15) == 1  # start 2 crashes
    assert t.volume("main", "starts.txt").read_text() == "2\n"


def test_no_backup_settings_means_every_volume(t: ServiceTester) -> None:
    assert t.describe().backup == wire.BackupSpec(volumes=(wire.BackupVolume(id="main"),))

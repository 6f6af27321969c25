"""The way a user does it: a real startd, start-cli sideloading with progress, logs, kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ..conftest import PASSWORD
from ..daemon import Daemon
from ..helpers import alive, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "data", tmp_path / "startd.log")
    try:
        d.wait_ready()
        done = d.cli("setup", "execute", "Box", "--password-stdin", input=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        yield d
    finally:
        d.stop()


def processes_of(package_id: str, startd_pid: int) -> list[psutil.Process]:
    """The processes of ``package_id`` that this test's startd started."""
    found = []
    for proc in psutil.Process(startd_pid).children(recursive=True):
        try:
            if f"startos[{package_id}" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def status(d: Daemon, package_id: str) -> dict:  # type: ignore[type-arg]
    out = d.cli("--format", "json", "db", "dump", "-p", f"/public/packageData/{package_id}/statusInfo").stdout
    return dict(json.loads(out)["value"])


def test_sideload_start_logs_kill_9_and_no_orphans(daemon: Daemon, packed: dict[str, Path], tmp_path: Path) -> None:
    installed = daemon.cli("package", "install", "-s", str(packed["hello-world"]), "-y")
    assert installed.returncode == 0, installed.stderr
    for phase in ("upload", "verify", "unpack", "init"):
        assert phase in installed.stderr, installed.stderr  # each phase shown with a bar
    assert "hello-world 1.0.0:0 installed" in installed.stderr
    listed = daemon.cli("package", "list").stdout
    assert "hello-world" in listed and "task-required" in listed  # statusInfo.summary (issue 11)
    refused = daemon.cli("package", "start", "hello-world")
    assert refused.returncode == 1 and "required task" in refused.stderr
    shown = daemon.cli("package", "action", "run", "hello-world", "show-credentials")
    assert shown.returncode == 0, shown.stderr
    assert "Username" in shown.stdout and "admin" in shown.stdout and "Password" in shown.stdout
    form = daemon.cli("package", "action", "get-input", "set-greeting", "-p", "hello-world")
    assert form.returncode == 0 and "greeting" in form.stdout and "Hello from startos-py" in form.stdout
    refused = daemon.cli("package", "action", "run", "-p", "hello-world", "set-greeting", '{"greeting": "<hi>"}')
    assert refused.returncode == 1 and "error: Greeting: No angle brackets" in refused.stderr
    garbled = daemon.cli("package", "action", "run", "hello-world", "set-greeting", "{not json")
    assert garbled.returncode == 2 and "not JSON" in garbled.stderr
    assert daemon.cli("package", "start", "hello-world").returncode == 0
    addresses = daemon.cli("package", "host", "address", "list", "hello-world")
    assert addresses.returncode == 0 and "https://127.0.0.1:" in addresses.stdout, addresses.stderr
    wait_until(lambda: status(daemon, "hello-world")["started"], timeout=60, what="hello-world started")
    logs = daemon.cli("package", "logs", "hello-world", "-l", "100")
    assert "daemon web started" in logs.stdout
    follow = subprocess.Popen(
        [*daemon.cli_argv(), "package", "logs", "hello-world", "-f", "-l", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.cli("package", "restart", "hello-world").returncode == 0
        seen = ""
        deadline = time.monotonic() + 60
        while "daemon web started" not in seen and time.monotonic() < deadline:
            line = follow.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            seen += line
        assert "daemon web started" in seen, "a restart's lines arrive on the follow stream"
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    stats = json.loads(daemon.cli("--format", "json", "package", "stats", "hello-world").stdout)
    assert stats["processes"] >= 1 and stats["memoryBytes"] > 0

    before = {p.pid for p in processes_of("hello-world", daemon.proc.pid)}
    assert before
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(timeout=10)
    again = Daemon(daemon.data_dir, tmp_path / "again.log")
    try:
        again.wait_ready()
        wait_until(lambda: status(again, "hello-world")["started"], timeout=60, what="hello-world back after kill -9")
        left = [pid for pid in before if alive(pid)]
        assert not left, f"processes of the killed startd survived: {left}"
        now = {p.pid for p in processes_of("hello-world", again.proc.pid)}
        assert now
        assert again.cli("package", "uninstall", "hello-world", "-y").returncode == 0
        assert not [pid for pid in now if alive(pid)]
    finally:
        again.stop()


def test_a_tampered_sideload_is_refused_locally_with_one_line(
    daemon: Daemon, packed: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.s9pk"
    data = bytearray(packed["hello-world"].read_bytes())
    data[200] ^= 0x01
    bad.write_bytes(bytes(data))
    result = daemon.cli("package", "install", "-s", str(bad), "-y")
    assert result.returncode == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "hello-world" not in daemon.cli("package", "list").stdout


def test_attach_runs_commands_inside_the_sandbox(daemon: Daemon, packed: dict[str, Path]) -> None:
    assert daemon.cli("package", "install", "-s", str(packed["hello-world"]), "-y").returncode == 0
    result = daemon.cli("package", "attach", "hello-world", "sh", "-c", 'echo "in $STARTOS_PACKAGE_ID"; exit 3')
    assert result.returncode == 3, result.stderr
    assert "in hello-world" in result.stdout
    piped = subprocess.run(
        [*daemon.cli_argv(), "package", "attach", "hello-world", "cat"],
        input="through stdin\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 0 and "through stdin" in piped.stdout
    shell = subprocess.run(
        [*daemon.cli_argv(), "package", "attach", "hello-world", "--force-tty"],
        input="echo tty-$((6*7))\nexit 5\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "tty-42" in shell.stdout and shell.returncode == 5

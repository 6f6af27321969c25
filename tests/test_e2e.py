"""End to end: a real startd subprocess driven by the real start-cli."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from .conftest import PASSWORD, set_up_server
from .daemon import Daemon
from .rpc_client import Http

pytestmark = pytest.mark.e2e
PAUSE = 0.01  # seconds: how often the kill test checks the writers progress


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "data", tmp_path / "startd.log")
    try:
        d.wait_ready()
        yield d
    finally:
        d.stop()


def test_start_cli_drives_startd_and_sigterm_stops_it_cleanly(daemon: Daemon) -> None:
    assert daemon.cli("echo", "hi").stdout == "hi\n"
    assert daemon.cli("setup", "status").stdout == "needs-setup\n"
    done = daemon.cli("setup", "execute", "Home Box", "--password-stdin", input=PASSWORD + "\n")
    assert done.returncode == 0 and "home-box.local" in done.stdout, done.stderr
    put = daemon.cli("db", "put", "/public/ui/name", '"home"')
    assert put.returncode == 0 and put.stdout.startswith("revision "), put.stderr
    revision = int(put.stdout.split()[1])
    dumped = json.loads(daemon.cli("--format", "json", "db", "dump", "-p", "/public/ui").stdout)
    assert dumped == {"id": revision, "value": {"name": "home"}}
    failed = daemon.cli("db", "dump", "-p", "/private")
    assert failed.returncode == 1 and failed.stderr.startswith("error: ")
    code, took = daemon.terminate(signal.SIGTERM)
    assert code == 0 and took < 10
    messages = [e["msg"] for e in daemon.log_entries() if e.get("logger") == "startos.startd"]
    assert messages[-2:] == ["stopping", "stopped"]
    assert all(e.get("level") in {"debug", "info", "warning", "error"} for e in daemon.log_entries())


def test_sigint_also_stops_it(daemon: Daemon) -> None:
    code, took = daemon.terminate(signal.SIGINT)
    assert code == 0 and took < 10


def test_a_second_startd_on_the_same_data_dir_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    other = Daemon(daemon.data_dir, tmp_path / "other.log")
    try:
        assert other.proc.wait(timeout=30) != 0
        assert "another startd is already using" in other.log_path.read_text()
    finally:
        other.stop()


def test_kill_9_mid_write_loses_no_committed_revision(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Daemon(data, tmp_path / "first.log")
    acked: dict[str, int] = {}
    last_revision = 0
    try:
        first.wait_ready()
        setup_client = Http(first.url)
        set_up_server(setup_client)
        session = dict(setup_client.cookies)
        setup_client.close()

        def writer(key: str) -> None:
            nonlocal last_revision
            client = Http(first.url)
            client.cookies.update(session)
            try:
                for counter in range(1, 100_000):
                    status, headers, body = client.post(
                        json.dumps(
                            {
                                "jsonrpc": "2.0",
                                "id": counter,
                                "method": "db.put",
                                "params": {"pointer": f"/public/ui/{key}", "value": counter},
                            }
                        )
                    )
                    if status != 200 or "error" in body:
                        return
                    acked[key] = counter  # the server said this write is durable
                    last_revision = max(last_revision, int(headers["x-patch-sequence"]))
            except OSError:
                return  # the server died under us: expected
            finally:
                client.close()

        writers = [gevent.spawn(writer, f"k{i}") for i in range(8)]
        deadline = gevent.Timeout(30)
        with deadline:
            while sum(acked.values()) < 400:
                gevent.sleep(PAUSE)  # let the writers run; bounded by the Timeout above
        first.proc.kill()  # SIGKILL, mid-write
        first.proc.wait(timeout=10)
        gevent.joinall(writers, timeout=30)
    finally:
        first.stop()
    db_file = data / "db" / "state.sqlite3"
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    second = Daemon(data, tmp_path / "second.log")
    try:
        second.wait_ready()
        client = Http(second.url)
        client.cookies.update(session)  # sessions survive a restart too
        state = client.call("db.dump", {"pointer": "/public/ui"})["result"]
        client.close()
        assert state["id"] >= last_revision
        for key, counter in acked.items():
            assert state["value"][key] >= counter, f"{key}: acked {counter}, found {state['value'][key]}"
    finally:
        second.stop()

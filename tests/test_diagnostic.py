"""Diagnostic mode: a state tree that cannot load keeps startd up, explaining itself (issue #10)."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from startos.actors.diagnostic import LogRing
from startos.actors.store import SCHEMA_VERSION, StoreError, initial_document
from startos.actors.tree import StateLoadError, TreeConfig, start_tree
from startos.net.certs import create_root_ca, issue_server_cert
from startos.protocol.errors import ErrorKind

from .daemon import Daemon
from .rpc_client import Http

DIAGNOSTIC_METHODS = {"echo", "state", "diagnostic.error", "diagnostic.logs", "diagnostic.restart"}


def write_db(
    data_dir: Path, doc: str, revisions: tuple[tuple[int, str], ...] = (), version: int = SCHEMA_VERSION
) -> Path:
    """A state database with the store's schema (``StoreActor._open``) holding what we choose."""
    path = data_dir / "db" / "state.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE snapshots (id INTEGER PRIMARY KEY, doc TEXT, ts FLOAT)")
        conn.execute("CREATE TABLE revisions (id INTEGER PRIMARY KEY, patch TEXT, ts FLOAT)")
        conn.execute("INSERT INTO snapshots VALUES (0, ?, 0)", (doc,))
        conn.executemany("INSERT INTO revisions VALUES (?, ?, 0)", revisions)
        conn.execute(f"PRAGMA user_version={version}")
    conn.close()
    return path


def initial() -> str:
    return msgspec.json.encode(initial_document()).decode()


def garbage(data_dir: Path) -> None:
    path = data_dir / "db" / "state.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\xffnot a database at all\n" * 200)


def bad_revision(data_dir: Path) -> None:
    write_db(data_dir, initial(), ((1, json.dumps([{"op": "remove", "path": "/public/nothing-here"}])),))


def deep_snapshot(data_dir: Path) -> None:
    write_db(data_dir, '{"public": ' + "[" * 5000 + "]" * 5000 + ', "private": {}}')


def newer_schema(data_dir: Path) -> None:
    write_db(data_dir, initial(), version=SCHEMA_VERSION + 1)


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (garbage, "file is not a database"),
    "bad-revision": (bad_revision, "revision 1 does not apply"),
    "deep-snapshot": (deep_snapshot, "snapshot 0"),
    "newer-schema": (newer_schema, "written by a newer startos-py"),
}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start startd on a data dir damaged the named way (or left fresh); every one is stopped."""
    started: list[Daemon] = []

    def run(damage: str | None = None, bind: str = "127.0.0.1:0", certificate_for: str | None = None) -> Daemon:
        data = tmp_path / f"data{len(started)}"
        if damage is not None:
            DAMAGE[damage][0](data)
        if certificate_for is not None:  # as the CertificateActor mirrors it after setup
            ca = create_root_ca("Test")
            server = issue_server_cert(ca, certificate_for, ["127.0.0.1"])
            (data / "tls").mkdir(parents=True)
            (data / "tls" / "server.crt").write_text(server.cert_pem + ca.cert_pem)
        daemon = Daemon(data, tmp_path / f"startd{len(started)}.log", bind=bind)
        started.append(daemon)
        return daemon

    yield run
    for daemon in started:
        daemon.stop()


@pytest.fixture
def http() -> Iterator[Callable[[str], Http]]:
    """Raw HTTP clients, closed before startd stops (an open keep-alive would slow its stop)."""
    opened: list[Http] = []

    def connect(url: str) -> Http:
        opened.append(Http(url))
        return opened[-1]

    yield connect
    for client in opened:
        client.close()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_state_tree_starts_diagnostic_mode(start, http, damage: str) -> None:  # type: ignore[no-untyped-def]
    daemon = start(damage)
    daemon.wait_diagnostic()
    fragment = DAMAGE[damage][1]
    client = http(daemon.url)

    error = client.call("diagnostic.error")["result"]
    assert error["code"] == ErrorKind.DATABASE and error["message"] == "Database Error"
    details = error["data"]["details"]
    assert fragment in details
    assert "\n" not in details and "Traceback" not in details and len(details) < 500

    status, _, body = client.post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "db.dump"}))
    assert status == 200
    assert body["error"]["code"] == ErrorKind.DIAGNOSTIC_MODE
    refusal = body["error"]["data"]["details"]
    assert refusal.startswith("startd is in diagnostic mode: ") and fragment in refusal
    assert refusal.endswith("see `start-cli diagnostic error`")
    assert client.call("echo", {"message": "still here"})["result"] == "still here"

    result = daemon.cli("diagnostic", "error")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Database Error (29): ") and fragment in result.stdout
    assert result.stdout.count("\n") == 1
    assert daemon.proc.poll() is None


def test_only_diagnostic_methods_answer_and_the_page_shows_the_error(start, http) -> None:  # type: ignore[no-untyped-def]
    daemon = start("garbage", certificate_for="my-box.local")
    daemon.wait_diagnostic()
    client = http(daemon.url)
    spec = client.call("state")["result"]
    assert {m["name"] for m in spec["methods"]} == DIAGNOSTIC_METHODS
    for method in ("auth.login", "package.list", "notification.list", "db.subscribe"):
        assert client.call(method, {})["error"]["code"] == ErrorKind.DIAGNOSTIC_MODE, method
    assert client.call("no.such.method")["error"]["code"] == ErrorKind.METHOD_NOT_FOUND
    # A batch gets one error per call, never an HTTP error.
    batch = [{"jsonrpc": "2.0", "id": i, "method": m} for i, m in enumerate(("db.dump", "diagnostic.error"))]
    status, _, body = client.post(json.dumps(batch))
    assert status == 200
    assert body[0]["error"]["code"] == ErrorKind.DIAGNOSTIC_MODE and body[1]["result"]["code"] == ErrorKind.DATABASE

    status, page = client.get("/")
    assert status == 200 and b'src="/static/js/diagnostic.js"' in page and b"<script>" not in page
    assert b"style=" not in page  # the strict CSP allows no inline style or script
    status, script = client.get("/static/js/diagnostic.js")
    assert status == 200 and b'"diagnostic.error"' in script and b"start-cli diagnostic restart" in script
    assert client.get("/static/css/diagnostic.css")[0] == 200
    assert client.get("/ws/rpc/0123")[0] == 404

    # The hostname is in the tree that did not load; the certificate on disk still names it, so
    # the page answers at <hostname>.local, and the DNS-rebinding guard still refuses the rest.
    call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "diagnostic.error"})
    status, _, body = client.post(call, headers={"Host": f"my-box.local:{daemon.url.rsplit(':', 1)[1]}"})
    assert status == 200 and body["result"]["code"] == ErrorKind.DATABASE
    assert client.post(call, headers={"Host": "rebound.example.com"})[0] == 421


def test_logs_and_restart_need_the_local_cookie(start, http) -> None:  # type: ignore[no-untyped-def]
    daemon = start("bad-revision")
    daemon.wait_diagnostic()
    client = http(daemon.url)  # a browser: no local cookie
    for method in ("diagnostic.logs", "diagnostic.restart"):
        error = client.call(method)["error"]
        assert error["code"] == ErrorKind.AUTHORIZATION
        assert f"start-cli {method.replace('.', ' ')}" in error["data"]["details"]
    assert client.call("echo", {"message": "not restarted"})["result"] == "not restarted"

    result = daemon.cli("diagnostic", "logs", "-l", "50")
    assert result.returncode == 0, result.stderr
    assert "the state tree could not be loaded: " in result.stdout
    assert "revision 1 does not apply" in result.stdout and "Traceback" not in result.stdout
    result = daemon.cli("--format", "json", "diagnostic", "logs", "-l", "2")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and lines[0]["cursor"] < lines[1]["cursor"]
    assert set(lines[0]) == {"cursor", "timestamp", "level", "logger", "message"}

    root = http(daemon.url)  # what start-cli on the server presents
    root.cookies["local"] = (daemon.data_dir / "rpc.authcookie").read_text()
    page = root.call("diagnostic.logs", {"cursor": lines[1]["cursor"], "before": True, "limit": 1})["result"]
    assert [e["cursor"] for e in page["entries"]] == [lines[0]["cursor"]]
    assert page["startCursor"] == page["endCursor"] == lines[0]["cursor"]
    assert root.call("diagnostic.logs", {"limit": 0})["error"]["code"] == ErrorKind.INVALID_PARAMS


def test_restart_after_repair_comes_up_normally(start, http) -> None:  # type: ignore[no-untyped-def]
    daemon = start("bad-revision")
    daemon.wait_diagnostic()
    conn = sqlite3.connect(daemon.data_dir / "db" / "state.sqlite3")
    with conn:
        conn.execute("DELETE FROM revisions WHERE id = 1")  # the repair: drop the revision that does not apply
    conn.close()
    seen = len(daemon.log_entries())

    result = daemon.cli("diagnostic", "restart")
    assert result.returncode == 0 and result.stdout == "startd is restarting\n", result.stderr
    ready = daemon.wait_for("startd ready", after=seen)
    assert ready["pid"] == daemon.proc.pid  # the same process, re-executed
    daemon.url = ready["url"]
    assert http(daemon.url).call("echo", {"message": "back"})["result"] == "back"
    result = daemon.cli("diagnostic", "error")
    assert (result.returncode, result.stdout) == (0, "no diagnostic error: startd is running normally\n")
    result = daemon.cli("diagnostic", "restart")
    assert result.returncode == 1 and "not in diagnostic mode" in result.stderr


@pytest.mark.parametrize("damage", [None, "garbage"])
def test_a_port_in_use_still_exits_1_with_one_line(start, damage: str | None) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        daemon = start(damage, bind=f"127.0.0.1:{busy.getsockname()[1]}")
        assert daemon.proc.wait(timeout=60) == 1
    fatal = [e for e in daemon.log_entries() if e["msg"].startswith("startd could not start")]
    assert len(fatal) == 1 and "in use" in fatal[0]["msg"] and "\n" not in fatal[0]["msg"]
    if damage is not None:
        assert "not even in diagnostic mode" in fatal[0]["msg"]


def test_start_tree_names_a_state_failure_and_leaves_nothing_running(tmp_path: Path) -> None:
    garbage(tmp_path)
    with pytest.raises(StateLoadError, match="file is not a database") as info:
        start_tree(TreeConfig(data_dir=tmp_path, port=None, mdns=False))
    assert isinstance(info.value.__cause__, StoreError)
    assert info.value.kind == ErrorKind.DATABASE and "\n" not in str(info.value)


def test_the_log_ring_pages_like_service_logs() -> None:
    import logging

    ring = LogRing(capacity=5)
    log = logging.getLogger("test.diagnostic.ring")
    log.addHandler(ring)
    log.propagate = False
    try:
        for i in range(8):
            log.warning("line %d", i, extra={"n": i})
        try:
            raise ValueError("first\nsecond")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(ring)
        log.propagate = True
    entries = ring.read(limit=50)
    assert [e.cursor for e in entries] == [5, 6, 7, 8, 9]  # the oldest fell out
    assert entries[0].message == "line 4 n=4" and entries[0].level == "warning"
    assert entries[-1].message == "failed: ValueError: first second"
    assert [e.cursor for e in ring.read(limit=2)] == [8, 9]
    assert [e.cursor for e in ring.read(limit=2, cursor=6)] == [7, 8]
    assert [e.cursor for e in ring.read(limit=2, cursor=8, before=True)] == [6, 7]

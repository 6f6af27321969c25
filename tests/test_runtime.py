"""The service runtime for real: ``python -m startos.runtime`` in a ProcessSandbox, and the host's
connection to it, including a fake runtime that sends what the protocol forbids."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import msgspec
import pytest

from startos.protocol import runtime as wire
from startos.protocol.errors import ErrorKind
from startos.protocol.framing import encode_frame, read_frame
from startos.protocol.service_items import CreateTask, TaskCreated
from startos.runtime.effects import short_path
from startos.runtime.errors import (
    PackageCodeError,
    RuntimeBroken,
    RuntimeClosed,
    RuntimeProtocolError,
    RuntimeTimeout,
)
from startos.runtime.host import RuntimeConnection, check_description, start_runtime
from startos.sandbox import namespace_support
from startos.sandbox.base import Sandbox, SandboxSpec
from startos.sandbox.namespace import NamespaceSandbox
from startos.sandbox.process import ProcessSandbox

from .examples.conftest import EXAMPLES, NAMES, free_port, get, write_json
from .helpers import wait_until

# A package whose hooks misbehave in every way the runtime must survive.
BROKEN_SERVICE = """
import os
import sys
import threading
import time

from startos.sdk import Daemon, Service, python_module

service = Service(volumes=["main"])


@service.init("install")
def boom(ctx):
    raise ValueError("boom: the install hook broke")


@service.init("restore")
def hang(ctx):
    threading.Event().wait(3600)  # a hook that hangs


@service.init("update")
def noisy(ctx):
    sys.stdout.buffer.write(bytes(range(256)) * 64)
    sys.stdout.flush()
    os.write(1, b"\\x00\\x00\\x00\\x05garbage")
    print("an ordinary line on stderr", file=sys.stderr)
    ctx.volume_path("main", "noisy.txt").write_text("still fine")


@service.uninit("uninstall")
def leave(ctx):
    sys.exit(3)


@service.uninit("update")
def die(ctx):
    os._exit(9)


@service.main
def main(ctx):
    return [Daemon("web", argv=python_module("http.server"), env={"CONTAINER_IP": ctx.container_ip()})]
"""


class Runtime:
    """One started runtime: its sandbox, process, connection and what reached ``on_effect``."""

    def __init__(self, spec: SandboxSpec, sandbox: Sandbox, log: Any) -> None:
        self.spec = spec
        self.sandbox = sandbox
        self.log_file = log
        self.effects: list[object] = []
        self.process: Any = None
        self.conn: RuntimeConnection = None  # type: ignore[assignment]

    def volume(self, *parts: str) -> Path:
        return Path(self.spec.volumes_dir, "main", *parts)

    def log(self) -> bytes:
        self.log_file.flush()
        return Path(self.log_file.name).read_bytes()

    def progress(self) -> list[wire.ReportProgress]:
        return [e for e in self.effects if isinstance(e, wire.ReportProgress)]


Starter = Callable[..., Runtime]


def write_package(folder: Path, service_code: str) -> Path:
    """A package source folder around ``service_code`` (only what the runtime reads)."""
    (folder / "python").mkdir(parents=True)
    (folder / "python" / "startos_service.py").write_text(service_code)
    return folder


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[Starter]:
    started: list[Runtime] = []

    def start(
        name: str,
        *,
        source: Path | None = None,
        on_effect: Callable[[object], object] | None = None,
        backend: str = "process",
    ) -> Runtime:
        base = tmp_path / name
        code = base / "code"
        shutil.copytree(source or EXAMPLES / name, code, ignore=shutil.ignore_patterns("__pycache__"))
        spec = SandboxSpec(
            package_id=name,
            code_dir=code,
            volumes_dir=base / "volumes",
            volume_ids=("main",),
            run_dir=base / "run",
            tmp_dir=base / "tmp",
        )
        sandbox: Sandbox = (
            ProcessSandbox(spec) if backend == "process" else NamespaceSandbox(spec, state_dir=base / "state")
        )
        sandbox.create()
        runtime = Runtime(spec, sandbox, open(base / "runtime.log", "wb"))  # noqa: SIM115 (closed in teardown)
        started.append(runtime)

        def record(effect: object) -> object:
            runtime.effects.append(effect)
            if on_effect is not None:
                return on_effect(effect)
            if isinstance(effect, wire.GetContainerIp):
                return wire.ContainerIp(ip="127.0.0.1")
            if isinstance(effect, CreateTask):
                return TaskCreated(active=True)
            return None

        runtime.process, runtime.conn = start_runtime(
            sandbox, name, on_effect=record, stdout=runtime.log_file, stderr=runtime.log_file
        )
        return runtime

    yield start
    for runtime in started:
        if runtime.conn is not None:
            runtime.conn.close()
        runtime.sandbox.destroy()
        runtime.log_file.close()


@pytest.fixture
def broken(runtimes: Starter, tmp_path: Path) -> Runtime:
    return runtimes("broken", source=write_package(tmp_path / "broken-src", BROKEN_SERVICE))


# -- the examples in a real runtime -----------------------------------------------------------------

DAEMONS = {"hello-world": ["web"], "slow-sync": ["sync"], "crashy": ["crashy"], "wallet": ["web"]}


@pytest.mark.parametrize("name", NAMES)
def test_describe_each_example(runtimes: Starter, name: str) -> None:
    runtime = runtimes(name)
    runtime.conn.ping(timeout=10)
    runtime.conn.run_init("install", timeout=10)
    description = runtime.conn.describe(timeout=10)
    manifest = json.loads((EXAMPLES / name / "manifest.json").read_text())
    check_description(description, manifest["volumes"], name)
    assert [d.id for d in description.daemons] == DAEMONS[name]
    assert description.protocol == wire.PROTOCOL_VERSION
    daemon = description.daemons[0]
    # Paths in the description are the sandbox's, never the source folder's.
    assert daemon.env["PYTHONPATH"] == str(runtime.spec.code_dir / "python")
    assert (runtime.spec.run_dir / "effects.sock").exists()  # where its daemons report progress
    assert runtime.conn.shutdown(timeout=10)
    assert runtime.process.wait(timeout=10) == 0
    assert runtime.conn.closed
    assert not (runtime.spec.run_dir / "effects.sock").exists()


def test_runtime_over_a_socket_path(runtimes: Starter, tmp_path: Path) -> None:
    # The other way to reach the host: a Unix socket the host listens on (here a long path).
    sandbox = runtimes("hello-world").sandbox
    path = tmp_path / ("s" * 80) / "host.sock"
    path.parent.mkdir()
    with socket.socket(socket.AF_UNIX) as listener:
        with short_path(path) as address:
            listener.bind(address)
        listener.listen(1)
        process = sandbox.spawn(
            [sys.executable, "-P", "-m", "startos.runtime", "--socket", str(path), "--package-id", "hello-world"]
        )
        accepted, _ = listener.accept()
    conn = RuntimeConnection(accepted, package_id="hello-world")
    try:
        assert [d.id for d in conn.describe(timeout=10).daemons] == ["web"]
        assert conn.shutdown(timeout=10)
        assert process.wait(timeout=10) == 0
    finally:
        conn.close()


def test_process_title_names_the_package(runtimes: Starter) -> None:
    runtime = runtimes("hello-world")
    runtime.conn.ping(timeout=10)
    cmdline = Path(f"/proc/{runtime.process.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].startswith(b"startos[hello-world")
    assert b"startos.runtime" in cmdline


def test_init_hook_effects_are_visible_on_the_host(runtimes: Starter) -> None:
    runtime = runtimes("hello-world")
    runtime.conn.run_init("install", timeout=10)
    assert json.loads(runtime.volume("config.json").read_text())["port"] == 8080
    runtime.volume("counter.txt").write_text("12\n")
    runtime.volume("visits.json").unlink()
    plan = runtime.conn.run_migration("0.9.0:0", "1.0.0:0", dry_run=True, timeout=10)
    assert (plan.direction, plan.steps) == ("up", ("1.0.0:0",))
    assert runtime.volume("counter.txt").exists()  # a dry run changes nothing
    runtime.conn.run_migration("0.9.0:0", "1.0.0:0", timeout=10)
    assert json.loads(runtime.volume("visits.json").read_text()) == {"visits": 12}


def test_hello_world_serves_once_ready(runtimes: Starter) -> None:
    runtime = runtimes("hello-world")
    port = free_port()
    runtime.conn.run_init("install", timeout=10)
    write_json(runtime.volume("config.json"), {"port": port})
    description = runtime.conn.describe(timeout=10)
    prepare, web = description.oneshots[0], description.daemons[0]
    # What the host's daemon actors do: spawn in the sandbox with the description's env.
    oneshot = runtime.sandbox.spawn(list(prepare.argv), env=dict(prepare.env), stdout=runtime.log_file)
    assert oneshot.wait(timeout=15) == 0
    daemon = runtime.sandbox.spawn(list(web.argv), env=dict(web.env), stdout=runtime.log_file, stderr=runtime.log_file)
    assert runtime.conn.run_check("web", timeout=10).result in ("failure", "success")
    wait_until(lambda: runtime.conn.run_check("web", timeout=10).result == "success", timeout=15, what="web ready")
    assert get(f"http://127.0.0.1:{port}/") == "Hello from startos-py! You are visitor number 1.\n"
    daemon.signal_group(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0


def test_progress_from_a_daemon_reaches_on_effect(runtimes: Starter) -> None:
    runtime = runtimes("slow-sync")
    runtime.conn.run_init("install", timeout=10)
    write_json(runtime.volume("sync.json"), {"blocks": 20, "interval": 0.01})
    sync = runtime.conn.describe(timeout=10).daemons[0]
    assert runtime.conn.run_check("sync", timeout=10) == wire.CheckResult(
        result="loading", message="Synced 0 of 20 blocks"
    )
    daemon = runtime.sandbox.spawn(
        list(sync.argv), env=dict(sync.env), stdout=runtime.log_file, stderr=runtime.log_file
    )
    wait_until(lambda: any(p.done == 20 for p in runtime.progress()), timeout=20, what="the last report")
    reports = runtime.progress()
    assert all(p.daemon == "sync" and p.total == 20 for p in reports)
    assert [p.done for p in reports] == sorted(p.done for p in reports)  # in order
    assert reports[-1].message == "Synced 20 of 20 blocks"
    done = wire.CheckResult(result="success", message="Synced all 20 blocks")
    assert runtime.conn.run_check("sync", timeout=10) == done
    daemon.signal_group(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0


def test_crashy_daemon_exits_and_its_command_check_says_why(runtimes: Starter) -> None:
    runtime = runtimes("crashy")
    runtime.conn.run_init("install", timeout=10)
    write_json(runtime.volume("crashy.json"), {"exit_after": 0.3, "exit_code": 4, "crash_every": 1})
    spec = runtime.conn.describe(timeout=10).daemons[0]
    no_heartbeat = wire.CheckResult(result="failure", message="no heartbeat yet")
    assert runtime.conn.run_check("crashy", timeout=10) == no_heartbeat
    daemon = runtime.sandbox.spawn(
        list(spec.argv), env=dict(spec.env), stdout=runtime.log_file, stderr=runtime.log_file
    )
    assert daemon.wait(timeout=15) == 4
    assert runtime.volume("starts.txt").read_text() == "1\n"


@pytest.mark.skipif(not namespace_support()[0], reason=namespace_support()[1])
def test_runtime_in_the_namespace_sandbox(runtimes: Starter) -> None:
    # Sandbox paths (/startos/...) instead of host paths, a private network, a read-only system.
    runtime = runtimes("slow-sync", backend="namespace")
    runtime.conn.run_init("install", timeout=10)
    write_json(runtime.volume("sync.json"), {"blocks": 5, "interval": 0.01})
    sync = runtime.conn.describe(timeout=10).daemons[0]
    assert sync.env["PYTHONPATH"] == "/startos/code/python"
    daemon = runtime.sandbox.spawn(
        list(sync.argv), env=dict(sync.env), stdout=runtime.log_file, stderr=runtime.log_file
    )
    wait_until(lambda: any(p.done == 5 for p in runtime.progress()), timeout=20, what="the last report")
    assert runtime.conn.run_check("sync", timeout=10).result == "success"
    daemon.signal_group(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0
    assert runtime.conn.shutdown(timeout=10)
    assert runtime.process.wait(timeout=10) == 0


# -- package code that misbehaves --------------------------------------------------------------------


def test_hook_that_raises_is_a_typed_error_and_the_runtime_lives_on(broken: Runtime) -> None:
    with pytest.raises(PackageCodeError) as caught:
        broken.conn.run_init("install", timeout=10)
    error = caught.value
    assert str(error) == "package broken: init hook 'install' failed: ValueError: boom: the install hook broke"
    assert (error.package, error.hook, error.reason) == ("broken", "init install", "hook-failed")
    assert error.kind == ErrorKind.INSTALL_FAILED
    assert error.debug is not None and "startos_service.py" in error.debug and "raise ValueError" in error.debug
    broken.conn.ping(timeout=5)
    assert broken.conn.describe(timeout=10).daemons[0].env["CONTAINER_IP"] == "127.0.0.1"


def test_sys_exit_in_a_hook_is_caught(broken: Runtime) -> None:
    with pytest.raises(PackageCodeError, match=r"uninit hook 'uninstall' failed: called sys.exit\(3\)"):
        broken.conn.run_uninit("uninstall", timeout=10)
    broken.conn.ping(timeout=5)
    assert broken.process.poll() is None


def test_garbage_on_stdout_does_not_reach_the_protocol(broken: Runtime) -> None:
    broken.conn.run_init("update", "0.1.0:0", timeout=10)
    broken.conn.ping(timeout=5)
    assert broken.volume("noisy.txt").read_text() == "still fine"
    log = broken.log()
    assert bytes(range(256)) in log and b"\x00\x00\x00\x05garbage" in log
    assert b"an ordinary line on stderr" in log


def test_hook_that_hangs_times_out(broken: Runtime) -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeTimeout) as caught:
        broken.conn.run_init("restore", timeout=0.5)
    assert time.monotonic() - started < 5
    assert str(caught.value) == "package broken: init hook 'restore' did not answer within 0.5 s"
    assert caught.value.kind == ErrorKind.TIMEOUT and caught.value.what == "init hook 'restore'"
    # The hung hook keeps its thread; the runtime still answers everything else.
    broken.conn.ping(timeout=5)
    assert not broken.conn.closed


def test_runtime_dying_fails_pending_calls_at_once(broken: Runtime) -> None:
    def restore() -> BaseException | None:
        try:
            broken.conn.run_init("restore", timeout=60)
        except RuntimeBroken as exc:
            return exc
        return None

    pending = gevent.spawn(restore)
    broken.conn.ping(timeout=5)  # the restore call is in flight by now
    started = time.monotonic()
    broken.process.signal_group(signal.SIGKILL)
    error = pending.get(timeout=10)
    assert time.monotonic() - started < 5
    assert isinstance(error, RuntimeBroken)
    assert str(error) == (
        "package broken: init hook 'restore' failed: the runtime closed the connection (it exited or crashed)"
    )
    with pytest.raises(RuntimeBroken):
        broken.conn.ping(timeout=5)


def test_hook_that_exits_the_process(broken: Runtime) -> None:
    with pytest.raises(RuntimeBroken, match="uninit hook 'update' failed: the runtime closed the connection"):
        broken.conn.run_uninit("update", "2.0.0:0", timeout=10)
    assert broken.process.wait(timeout=10) == 9


def test_effect_calls_reach_the_host(runtimes: Starter, tmp_path: Path) -> None:
    runtime = runtimes(
        "broken",
        source=write_package(tmp_path / "src", BROKEN_SERVICE),
        on_effect=lambda effect: wire.ContainerIp(ip="10.11.12.13"),
    )
    assert runtime.conn.describe(timeout=10).daemons[0].env["CONTAINER_IP"] == "10.11.12.13"
    assert runtime.effects == [wire.GetContainerIp()]


def test_effect_handler_failure_reaches_the_hook(runtimes: Starter, tmp_path: Path) -> None:
    def refuse(effect: object) -> object:
        raise RuntimeError("no network yet")

    runtime = runtimes("broken", source=write_package(tmp_path / "src", BROKEN_SERVICE), on_effect=refuse)
    with pytest.raises(PackageCodeError) as caught:
        runtime.conn.describe(timeout=10)
    assert caught.value.hook == "main"
    refused = "the host refused get-container-ip: get-container-ip failed on the host: RuntimeError: no network yet"
    assert refused in str(caught.value)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("raise RuntimeError('cannot start')\n", "importing startos_service failed: RuntimeError: cannot start"),
        ("def broken(:\n", "importing startos_service failed: SyntaxError"),
        ("import sys\nsys.exit(2)\n", "importing startos_service failed: called sys.exit(2)"),
        ("service = 42\n", "startos_service must define service = startos.sdk.Service(...), found int"),
    ],
)
def test_code_that_does_not_load(runtimes: Starter, tmp_path: Path, code: str, message: str) -> None:
    runtime = runtimes("unloadable", source=write_package(tmp_path / "src", code))
    runtime.conn.ping(timeout=10)
    with pytest.raises(PackageCodeError) as caught:
        runtime.conn.describe(timeout=10)
    assert caught.value.reason == "load-failed"
    assert str(caught.value).startswith("package unloadable: its code did not load, so describe failed: ")
    assert message in str(caught.value)
    assert runtime.conn.shutdown(timeout=10)
    assert runtime.process.wait(timeout=10) == 0


# -- a fake runtime sending what the protocol forbids ---------------------------------------------


@pytest.fixture
def fake() -> Iterator[tuple[RuntimeConnection, socket.socket, list[object]]]:
    host_end, peer = socket.socketpair()
    effects: list[object] = []
    conn = RuntimeConnection(host_end, effects.append, package_id="fake", max_frame=64 * 1024)
    yield conn, peer, effects
    conn.close()
    peer.close()


def _answer_first_call(peer: socket.socket, payload: bytes) -> gevent.Greenlet:
    def run() -> None:
        read_frame(peer, wire.ToRuntime)
        peer.sendall(payload)

    return gevent.spawn(run)


def _raw(obj: object) -> bytes:
    body = msgspec.msgpack.encode(obj)
    return struct.pack(">I", len(body)) + body


BAD_FRAMES = {
    "not msgpack": struct.pack(">I", 4) + b"\xc1\xc1\xc1\xc1",
    "wrong direction": encode_frame(wire.RuntimeCall(id=1, request=wire.Ping())),
    "unknown field": _raw({"type": "reply", "id": 1, "result": {"type": "done"}, "extra": True}),
    "unknown tag": _raw({"type": "hello", "id": 1}),
    "result and error": _raw(
        {"type": "reply", "id": 1, "result": {"type": "done"}, "error": {"reason": "internal", "message": "x"}}
    ),
    "never asked": encode_frame(wire.RuntimeReply(id=99, result=wire.Done())),
    "wrong result type": encode_frame(wire.RuntimeReply(id=1, result=wire.MigrationDone(direction="none"))),
    "oversized claim": struct.pack(">I", 0xFFFFFFF0),
    "bad progress": _raw({"type": "notice", "effect": {"type": "report-progress", "done": 5, "total": 2}}),
}


@pytest.mark.parametrize("what", list(BAD_FRAMES))
def test_bad_frames_are_refused(fake: tuple[RuntimeConnection, socket.socket, list[object]], what: str) -> None:
    conn, peer, effects = fake
    _answer_first_call(peer, BAD_FRAMES[what])
    started = time.monotonic()
    with pytest.raises(RuntimeProtocolError) as caught:
        conn.ping(timeout=10)
    assert time.monotonic() - started < 5  # refused at once, not after the timeout
    assert str(caught.value).startswith("package fake: ping failed: the runtime ")
    assert caught.value.kind == ErrorKind.DESERIALIZATION
    assert conn.closed and effects == []
    with pytest.raises(RuntimeProtocolError):  # nothing after a bad frame is trusted
        conn.ping(timeout=1)


def test_oversized_claim_is_refused_before_the_body(
    fake: tuple[RuntimeConnection, socket.socket, list[object]],
) -> None:
    conn, peer, _ = fake
    _answer_first_call(peer, struct.pack(">I", 64 * 1024 + 1))  # the header alone: no body follows
    with pytest.raises(RuntimeProtocolError, match="frame of 65537 bytes exceeds the limit of 65536"):
        conn.ping(timeout=10)


def test_late_reply_is_dropped_and_the_connection_stays(
    fake: tuple[RuntimeConnection, socket.socket, list[object]],
) -> None:
    conn, peer, _ = fake
    with pytest.raises(RuntimeTimeout, match=r"package fake: ping did not answer within 0\.05 s"):
        conn.ping(timeout=0.05)
    first = read_frame(peer, wire.ToRuntime)
    peer.sendall(encode_frame(wire.RuntimeReply(id=first.id, result=wire.Done())))  # too late
    replier = gevent.spawn(
        lambda: peer.sendall(
            encode_frame(wire.RuntimeReply(id=read_frame(peer, wire.ToRuntime).id, result=wire.Done()))
        )
    )
    conn.ping(timeout=5)
    replier.join(timeout=5)
    assert not conn.closed


def test_close_fails_pending_calls(fake: tuple[RuntimeConnection, socket.socket, list[object]]) -> None:
    conn, _, _ = fake

    def describe() -> BaseException | None:
        try:
            conn.describe(timeout=30)
        except RuntimeClosed as exc:
            return exc
        return None

    pending = gevent.spawn(describe)
    gevent.sleep(0.01)
    conn.close()
    error = pending.get(timeout=5)
    assert isinstance(error, RuntimeClosed)
    assert str(error) == "package fake: describe failed: the host closed the connection"


def test_notices_and_effect_calls_from_a_fake_runtime(
    fake: tuple[RuntimeConnection, socket.socket, list[object]],
) -> None:
    conn, peer, effects = fake
    report = wire.ReportProgress(daemon="sync", done=1, total=2, message="half")
    peer.sendall(encode_frame(wire.EffectNotice(effect=report)))
    peer.sendall(encode_frame(wire.EffectCall(id=1, effect=wire.GetContainerIp())))
    reply = read_frame(peer, wire.ToRuntime)
    # effects.append returns None: not a ContainerIp, so the runtime gets an error, not a crash.
    assert isinstance(reply, wire.EffectReply) and reply.id == 1 and reply.error is not None
    assert reply.error.message == "the host has no answer for get-container-ip"
    assert effects == [report, wire.GetContainerIp()]
    assert not conn.closed


def test_too_many_effects_at_once(fake: tuple[RuntimeConnection, socket.socket, list[object]]) -> None:
    conn, peer, _ = fake
    release = gevent.event.Event()
    conn._on_effect = lambda effect: release.wait() and wire.ContainerIp(ip="10.0.0.1")
    for call_id in range(1, conn.max_effects + 2):
        peer.sendall(encode_frame(wire.EffectCall(id=call_id, effect=wire.GetContainerIp())))
    refused = read_frame(peer, wire.ToRuntime)
    assert isinstance(refused, wire.EffectReply) and refused.id == conn.max_effects + 1
    assert refused.error is not None and "too many effects" in refused.error.message
    release.set()
    answers = [read_frame(peer, wire.ToRuntime) for _ in range(conn.max_effects)]
    assert all(isinstance(a, wire.EffectReply) and a.result == wire.ContainerIp(ip="10.0.0.1") for a in answers)

"""Sandboxes: the process backend everywhere; the namespace backend where this host allows it (root, Linux).

Every sandbox a test makes is destroyed in teardown, and teardown then checks that no process,
network namespace, veth interface or cgroup of it is left, whether the test passed or not.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from startos.sandbox import (
    Limits,
    NamespaceSandbox,
    ProcessSandbox,
    Sandbox,
    SandboxError,
    SandboxProcess,
    SandboxSpec,
    _cgroups,
    _netns,
    choose_sandbox,
    namespace_support,
)
from startos.sandbox import namespace as namespace_module
from startos.sandbox._common import PopenProcess

from .helpers import wait_until

NS_OK, NS_REASON = namespace_support()
needs_namespaces = pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable here: {NS_REASON}")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
KINDS = ["process", pytest.param("namespace", marks=needs_namespaces)]
PY = sys.executable
NO_LIMITS = Limits()

# Forks two children that each fork a grandchild; all of them wait on a pipe nobody writes to.
FORKER = """
import os, sys
r, w = os.pipe()
for _ in range(2):
    if os.fork() == 0:
        if os.fork() == 0:
            os.read(r, 1); os._exit(0)
        os.read(r, 1); os._exit(0)
print("ready", flush=True)
os.read(r, 1)
"""

# On SIGTERM says so, then finishes only when its stdin closes, with exit code 7. (os.write: a
# print in a signal handler may re-enter the print the handler interrupted.)
GRACEFUL = """
import os, signal
def stop(*_):
    os.write(1, b"got term\\n")
    while os.read(0, 100):
        pass
    os._exit(7)
signal.signal(signal.SIGTERM, stop)
os.write(1, b"ready\\n")
while True:
    signal.pause()
"""

# Ignores SIGTERM and daemonizes a grandchild (new session, parent gone): a badly behaved service.
STUBBORN = """
import os, signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        signal.pause()
    os._exit(0)
os.wait()
print("ready", flush=True)
signal.pause()
"""


def gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie has stopped running)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def readline(process: SandboxProcess) -> str:
    assert isinstance(process, PopenProcess) and process.stdout is not None
    return process.stdout.readline().decode().strip()


def ps_args() -> dict[int, str]:
    """pid -> command line as ``ps -eo args`` shows it (read from /proc where procps is missing)."""
    if shutil.which("ps"):
        listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
        return {int(line.split(None, 1)[0]): line.split(None, 1)[1] for line in listing.splitlines() if line.strip()}
    found = {}
    for proc in psutil.process_iter(["cmdline"]):
        found[proc.pid] = " ".join(proc.info["cmdline"] or [])
    return found


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def assert_nothing_left(sandbox: Sandbox) -> None:
    package_id = sandbox.spec.package_id
    marker = f"startos[{package_id}"
    left = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or []):
            left.append(proc.pid)
    assert not left, f"processes of {package_id} left: {left}"
    if isinstance(sandbox, NamespaceSandbox):
        netns, host_if, _ = _netns.names(sandbox.name)
        assert not _netns.exists(sandbox.name), f"network namespace {netns} or interface {host_if} left"
        assert _cgroups.existing(sandbox.name) is None, f"cgroup of {package_id} left"
        assert not (sandbox.state_dir / sandbox.name).exists()


MakeSandbox = Callable[..., Sandbox]


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[MakeSandbox]:
    """Makes and creates sandboxes with unique package ids; destroys and checks them in teardown."""
    made: list[Sandbox] = []

    def make(
        kind: str,
        *,
        name: str = "svc",
        volumes: tuple[str, ...] = ("main",),
        limits: Limits = NO_LIMITS,
        network: bool = True,
        create: bool = True,
        **options: Any,
    ) -> Sandbox:
        package_id = f"t{name}-{uuid.uuid4().hex[:6]}"
        base = tmp_path / package_id
        spec = SandboxSpec(
            package_id=package_id,
            code_dir=base / "code",
            volumes_dir=base / "volumes",
            volume_ids=volumes,
            run_dir=base / "run",
            tmp_dir=base / "tmp",
            limits=limits,
            network=network,
        )
        sandbox = choose_sandbox(spec, kind, stop_grace=options.pop("stop_grace", 2.0), **options)
        made.append(sandbox)
        if create:
            sandbox.create()
        return sandbox

    yield make
    failures = []
    for sandbox in made:
        try:
            sandbox.destroy()
            assert_nothing_left(sandbox)
        except Exception as exc:  # noqa: BLE001 - clean up the others, then report all
            failures.append(f"{sandbox!r}: {exc}")
    assert not failures, failures


def run(sandbox: Sandbox, argv: list[str], **kwargs: Any) -> tuple[int | None, str]:
    process = sandbox.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    assert isinstance(process, PopenProcess) and process.stdout is not None
    output = process.stdout.read().decode()
    return process.wait(timeout=30), output


# -- both backends ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_exit_codes_and_wait(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    assert sandbox.kind == kind
    assert sandbox.spawn(["true"]).wait(timeout=30) == 0
    assert sandbox.spawn(["sh", "-c", "exit 3"]).wait(timeout=30) == 3
    assert sandbox.spawn(["sh", "-c", "kill -TERM $$"]).wait(timeout=30) == -signal.SIGTERM
    waiting = sandbox.spawn([PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    assert isinstance(waiting, PopenProcess) and waiting.stdin is not None
    assert waiting.wait(timeout=0.05) is None
    assert waiting.poll() is None
    waiting.stdin.close()
    assert waiting.wait(timeout=30) == 0
    assert waiting.poll() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_bad_commands_are_clear_errors(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    with pytest.raises(SandboxError, match="no-such-program-zz"):
        sandbox.spawn(["no-such-program-zz"])
    with pytest.raises(SandboxError, match="empty command"):
        sandbox.spawn([])
    with pytest.raises(SandboxError, match="no such user"):
        sandbox.spawn(["true"], user="no-such-user-zz")
    with pytest.raises(SandboxError, match="nope"):
        sandbox.spawn(["true"], cwd="/startos/volumes/main/nope")
    unmade = make_sandbox(kind, create=False)
    with pytest.raises(SandboxError, match=unmade.spec.package_id):
        unmade.spawn(["true"])


@pytest.mark.parametrize("kind", KINDS)
def test_group_signal_reaches_grandchildren(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    process = sandbox.spawn([PY, "-c", FORKER], stdout=subprocess.PIPE)
    assert readline(process) == "ready"
    program = process.pid
    wait_until(lambda: len(descendants(program)) == 4, what="grandchildren")
    family = descendants(program)
    process.signal_group(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM
    wait_until(lambda: all(gone(pid) for pid in [program, *family]), what="every process of the group ended")


@pytest.mark.parametrize("kind", KINDS)
def test_group_signal_waits_for_the_program(make_sandbox: MakeSandbox, kind: str) -> None:
    """The exit status is the program's own, seen only once the program has really ended."""
    sandbox = make_sandbox(kind)
    process = sandbox.spawn([PY, "-c", GRACEFUL], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert isinstance(process, PopenProcess) and process.stdin is not None
    assert readline(process) == "ready"
    process.signal_group(signal.SIGTERM)
    assert readline(process) == "got term"
    assert process.poll() is None  # still shutting down: nothing in between may report an exit
    process.stdin.close()
    assert process.wait(timeout=30) == 7


@pytest.mark.parametrize("kind", KINDS)
def test_package_id_shows_in_ps_for_every_process(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    package_id = sandbox.spec.package_id
    process = sandbox.spawn([PY, "-c", FORKER], stdout=subprocess.PIPE, title="main")
    assert readline(process) == "ready"
    program = process.pid
    wait_until(lambda: len(descendants(program)) == 4, what="grandchildren")
    assert isinstance(process, PopenProcess)
    ours = {process.popen.pid, process.pid, *descendants(process.pid)}  # with namespace: helper, program
    if isinstance(sandbox, NamespaceSandbox):
        assert sandbox.init_pid is not None
        ours |= {sandbox.init_pid, psutil.Process(sandbox.init_pid).ppid()}
    args = ps_args()
    for pid in ours:
        assert f"startos[{package_id}" in args[pid], (pid, args[pid])
    assert args[program].startswith(f"startos[{package_id}:main] {PY} -c")
    process.signal_group(signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.parametrize("kind", KINDS)
def test_environment_and_paths(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    spec = sandbox.spec
    show = 'echo "$STARTOS_PACKAGE_ID|$STARTOS_CODE|$STARTOS_VOLUMES|$STARTOS_RUN|$STARTOS_TMP|$TMPDIR|$EXTRA"; pwd'
    code, output = run(sandbox, ["sh", "-c", show], cwd="/startos/volumes/main", env={"EXTRA": "given"})
    assert code == 0, output
    if kind == "process":
        paths = [str(p) for p in (spec.code_dir, spec.volumes_dir, spec.run_dir, spec.tmp_dir, spec.tmp_dir)]
        where = str(spec.volumes_dir / "main")
    else:
        paths = ["/startos/code", "/startos/volumes", "/startos/run", "/tmp", "/tmp"]
        where = "/startos/volumes/main"
    assert output.splitlines() == ["|".join([spec.package_id, *paths, "given"]), where]
    # A whole argument naming a sandbox path reaches the volume on the host.
    assert run(sandbox, ["touch", "/startos/volumes/main/made-here"])[0] == 0
    assert (spec.volumes_dir / "main" / "made-here").is_file()
    assert sandbox.env()["STARTOS_PACKAGE_ID"] == spec.package_id


@pytest.mark.parametrize("kind", KINDS)
def test_passed_descriptors_reach_the_program(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    read_end, write_end = os.pipe()
    try:
        script = "import os, sys; os.write(int(sys.argv[1]), b'through the pipe')"
        process = sandbox.spawn([PY, "-c", script, str(write_end)], pass_fds=(write_end,))
        os.close(write_end)
        write_end = -1
        assert process.wait(timeout=30) == 0
        assert os.read(read_end, 100) == b"through the pipe"
        assert os.read(read_end, 100) == b""  # nobody in between kept a copy
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


@pytest.mark.parametrize("kind", KINDS)
def test_host_path_mapping(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind, create=False)
    spec = sandbox.spec
    assert sandbox.host_path("/startos/code") == spec.code_dir
    assert sandbox.host_path("/startos/code/python/main.py") == spec.code_dir / "python/main.py"
    assert sandbox.host_path("/startos/volumes/main/db") == spec.volumes_dir / "main/db"
    assert sandbox.host_path("/startos/run/rpc.sock") == spec.run_dir / "rpc.sock"
    assert sandbox.host_path("/tmp/x") == spec.tmp_dir / "x"
    assert sandbox.host_path("/startos/code/../run/x") == spec.run_dir / "x"
    assert sandbox.host_path("/etc/hostname") == Path("/etc/hostname")  # not running: the same path
    with pytest.raises(SandboxError, match="no volume 'other'"):
        sandbox.host_path("/startos/volumes/other/x")
    with pytest.raises(SandboxError, match="not an absolute path"):
        sandbox.host_path("startos/code")


@pytest.mark.parametrize("kind", KINDS)
def test_destroy_leaves_no_process(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind, stop_grace=0.3)
    polite = sandbox.spawn([PY, "-c", FORKER], stdout=subprocess.PIPE)
    stubborn = sandbox.spawn([PY, "-c", STUBBORN], stdout=subprocess.PIPE)
    assert readline(polite) == "ready"
    lines = {readline(stubborn), readline(stubborn)}  # "ready" and the daemon's pid, in any order
    assert "ready" in lines
    wait_until(lambda: len(descendants(polite.pid)) == 4, what="all processes started")
    assert isinstance(polite, PopenProcess) and isinstance(stubborn, PopenProcess)
    everything = {polite.pid, stubborn.pid, polite.popen.pid, stubborn.popen.pid}
    everything |= {*descendants(polite.pid), *descendants(stubborn.pid)}
    if isinstance(sandbox, NamespaceSandbox):
        assert sandbox.init_pid is not None
        everything |= {sandbox.init_pid, psutil.Process(sandbox.init_pid).ppid()}
    # The daemon left its session and its parent: only the sandbox itself still knows it.
    daemons = {p.pid for p in psutil.process_iter() if p.pid not in everything and _is_marked(p, sandbox)}
    assert len(daemons) == 1
    sandbox.destroy()
    for pid in everything | daemons:
        assert gone(pid), pid
    assert polite.poll() is not None and stubborn.poll() is not None
    sandbox.destroy()  # idempotent
    with pytest.raises(SandboxError):
        sandbox.spawn(["true"])


def _is_marked(process: psutil.Process, sandbox: Sandbox) -> bool:
    try:
        return f"startos[{sandbox.spec.package_id}" in " ".join(process.cmdline())
    except psutil.Error:
        return False


@pytest.mark.parametrize("kind", KINDS)
def test_stats(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    process = sandbox.spawn([PY, "-c", FORKER], stdout=subprocess.PIPE)
    assert readline(process) == "ready"
    wait_until(lambda: sandbox.stats()["processes"] == 5, what="five processes counted")
    figures = sandbox.stats()
    assert figures["memory_bytes"] > 1_000_000
    assert figures["cpu_percent"] >= 0.0
    process.signal_group(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


@needs_root
@pytest.mark.parametrize("kind", KINDS)
def test_runs_as_another_user(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    code, output = run(sandbox, ["sh", "-c", "id -u; id -g"], user="nobody")
    assert code == 0, output
    assert output.split() == ["65534", "65534"]
    if kind == "namespace":  # (the process backend's tmp_dir may sit below directories only root enters)
        assert run(sandbox, ["sh", "-c", "echo hi > /tmp/mine"], user="nobody")[0] == 0
        assert sandbox.host_path("/tmp/mine").stat().st_uid == 65534


@pytest.mark.parametrize("kind", KINDS)
def test_create_is_idempotent(make_sandbox: MakeSandbox, kind: str) -> None:
    sandbox = make_sandbox(kind)
    sandbox.create()
    assert run(sandbox, ["true"])[0] == 0


def test_choose_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SandboxSpec(
        package_id="choice",
        code_dir=tmp_path / "c",
        volumes_dir=tmp_path / "v",
        run_dir=tmp_path / "r",
        tmp_dir=tmp_path / "t",
    )
    assert isinstance(choose_sandbox(spec, "process"), ProcessSandbox)
    expected = NamespaceSandbox if NS_OK else ProcessSandbox
    assert isinstance(choose_sandbox(spec), expected)
    with pytest.raises(SandboxError, match="unknown sandbox kind 'docker'"):
        choose_sandbox(spec, "docker")
    monkeypatch.setattr(namespace_module, "_SUPPORT", (False, "namespace sandboxes need root (this is uid 1000)"))
    assert isinstance(choose_sandbox(spec), ProcessSandbox)
    with pytest.raises(SandboxError, match="need root"):
        choose_sandbox(spec, "namespace")


# -- namespace backend -----------------------------------------------------------------------------


@needs_namespaces
def test_hostname_and_init(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("namespace")
    package_id = sandbox.spec.package_id
    # ahostsv4: an IPv6 look-up would fall through /etc/hosts to DNS, which nothing answers here.
    script = "hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; getent ahostsv4 $(hostname) | head -1"
    code, output = run(sandbox, ["sh", "-c", script])
    assert code == 0, output
    hostname, init_cmdline, own_pid, resolved = output.splitlines()
    assert hostname == package_id
    assert resolved.split() == [sandbox.address(), "STREAM", package_id]
    assert init_cmdline.startswith(f"startos[{package_id}] init ")
    assert int(own_pid) > 1


@needs_namespaces
def test_one_package_id_on_two_servers(tmp_path: Path) -> None:
    """Two startd on one host (two data dirs) each run the same package: neither touches the other's."""
    sandboxes = []
    package_id = f"twin-{uuid.uuid4().hex[:6]}"
    try:
        for server in ("one", "two"):
            base = tmp_path / server / package_id
            spec = SandboxSpec(
                package_id=package_id,
                code_dir=base / "code",
                volumes_dir=base / "volumes",
                volume_ids=("main",),
                run_dir=base / "run",
                tmp_dir=base / "tmp",
                limits=NO_LIMITS,
            )
            sandbox = NamespaceSandbox(spec)
            sandbox.create()  # destroys leftovers under its own name only
            sandboxes.append(sandbox)
        one, two = sandboxes
        assert one.name != two.name and one.address() != two.address()
        assert one.running() and two.running()
        assert run(two, ["hostname"]) == (0, f"{package_id}\n")
        one.destroy()
        assert not _netns.exists(one.name) and two.running()
        assert run(two, ["true"])[0] == 0
    finally:
        for sandbox in sandboxes:
            sandbox.destroy()
    for sandbox in sandboxes:
        assert not _netns.exists(sandbox.name) and not (sandbox.state_dir / sandbox.name).exists()


@needs_namespaces
def test_remains_of_a_killed_server_are_swept(tmp_path: Path) -> None:
    """A startd killed with -9 leaves a dead sandbox behind; the next sandbox made removes it."""
    made = []
    try:
        for server in ("dead", "next"):
            base = tmp_path / server
            spec = SandboxSpec(
                package_id=f"sweep-{uuid.uuid4().hex[:6]}",
                code_dir=base / "code",
                volumes_dir=base / "volumes",
                volume_ids=(),
                run_dir=base / "run",
                tmp_dir=base / "tmp",
                limits=NO_LIMITS,
            )
            sandbox = NamespaceSandbox(spec, state_dir=tmp_path / "state")
            if server == "next":
                dead = made[0]
                assert dead.init_pid is not None
                os.kill(dead.init_pid, signal.SIGKILL)  # its server died: nothing destroys it
                wait_until(lambda dead=dead: not dead.running(), timeout=10, what="the init gone")
                assert _netns.exists(dead.name)
                old = time.time() - 3600
                os.utime(dead.state_dir / dead.name, (old, old))
            sandbox.create()
            made.append(sandbox)
        dead, alive = made
        assert not _netns.exists(dead.name) and not (dead.state_dir / dead.name).exists()
        assert alive.running() and _netns.exists(alive.name)
    finally:
        for sandbox in made:
            sandbox.destroy()


@needs_namespaces
def test_the_runtime_can_import_startos(make_sandbox: MakeSandbox) -> None:
    """The virtualenv and the startos package are visible, read-only, under their host paths.

    ``-P``: with the working directory ``/``, ``/startos`` (the sandbox's mount points) would
    otherwise shadow the ``startos`` package as a namespace package.
    """
    sandbox = make_sandbox("namespace")
    script = "import startos.sandbox.base as b, sys; print(b.__file__, sys.prefix)"
    code, output = run(sandbox, [PY, "-P", "-c", script])
    assert code == 0, output
    assert output.split() == [str(Path(startos_base_file()).resolve()), sys.prefix]


def startos_base_file() -> str:
    import startos.sandbox.base

    return startos.sandbox.base.__file__


@needs_namespaces
def test_program_dies_with_its_enter_helper(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("namespace")
    process = sandbox.spawn([PY, "-c", "import signal; signal.pause()"])
    assert isinstance(process, PopenProcess) and process.popen.pid != process.pid
    assert psutil.Process(process.pid).ppid() == process.popen.pid
    process.popen.kill()
    assert process.wait(timeout=30) == -signal.SIGKILL
    wait_until(lambda: gone(process.pid), what="the program ended with its helper")


@needs_namespaces
def test_read_only_outside_volumes_and_tmp(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("namespace")
    script = """
import errno, sys
for path in sys.argv[1:]:
    try:
        with open(path, "r+b" if path.startswith("/proc") else "wb") as f:
            if not path.startswith("/proc"):
                f.write(b"x")
        print(path, "written")
    except OSError as exc:
        print(path, errno.errorcode[exc.errno])
"""
    refused = ["/etc/x", "/usr/x", "/x", "/startos/code/x", "/var/x", "/dev/x", f"{sys.prefix}/x"]
    # Opened for writing, never written: should the guard fail, the host is not touched.
    refused += ["/proc/sys/kernel/hostname"]
    if os.path.exists("/proc/sysrq-trigger"):  # some kernels have no magic SysRq
        refused.append("/proc/sysrq-trigger")
    allowed = ["/tmp/x", "/startos/volumes/main/x", "/startos/run/x", "/run/x", "/dev/shm/x"]
    code, output = run(sandbox, [PY, "-c", script, *refused, *allowed])
    assert code == 0, output
    results = dict(line.rsplit(" ", 1) for line in output.splitlines())
    assert results == {**{p: errno.errorcode[errno.EROFS] for p in refused}, **{p: "written" for p in allowed}}
    spec = sandbox.spec
    for host in (spec.tmp_dir / "x", spec.volumes_dir / "main/x", spec.run_dir / "x"):
        assert host.read_text() == "x"
    assert not Path("/x").exists()


@needs_namespaces
def test_host_secrets_and_other_paths_are_hidden(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox("namespace")
    script = "import os, sys; print([p for p in sys.argv[1:] if os.path.exists(p) and os.path.getsize(p)])"
    paths = ["/etc/shadow", "/root/.bashrc", "/home", str(tmp_path), "/run/startos", "/etc/passwd"]
    code, output = run(sandbox, [PY, "-c", script, *paths])
    assert code == 0, output
    assert output.strip() == "['/etc/passwd']"


@needs_namespaces
def test_one_service_cannot_see_another(make_sandbox: MakeSandbox) -> None:
    a = make_sandbox("namespace", name="a")
    b = make_sandbox("namespace", name="b")
    secret = b.host_path("/startos/volumes/main/secret")
    secret.write_text("b's data")
    holder = b.spawn([PY, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, title="holder")
    probe = f"""
import os
print(os.path.exists({str(secret)!r}), os.path.exists({str(b.spec.volumes_dir)!r}))
mine = []
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            mine.append(open(f"/proc/{{entry}}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
        except OSError:
            pass
print(sum(c.startswith("startos[{b.spec.package_id}") for c in mine),
      sum(c.startswith("startos[{a.spec.package_id}") for c in mine), len(mine))
"""
    code, output = run(a, [PY, "-c", probe])
    assert code == 0, output
    paths_line, procs_line = output.splitlines()
    assert paths_line == "False False"
    seen_b, seen_a, total = map(int, procs_line.split())
    assert seen_b == 0
    assert seen_a == total == 2  # its init and the probe itself
    assert isinstance(holder, PopenProcess) and holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


@needs_namespaces
def test_veth_reaches_a_server_inside(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("namespace")
    address = sandbox.address()
    assert address is not None and address.startswith("10.92.")
    code, output = run(sandbox, ["ip", "-4", "-o", "addr", "show"])
    assert code == 0, output
    assert f"eth0    inet {address}/30" in output
    assert "lo    inet 127.0.0.1/8" in output
    server = f"""
import socket
s = socket.socket()
s.bind(({address!r}, 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
conn, _ = s.accept()
conn.sendall(conn.recv(100).upper())
"""
    process = sandbox.spawn([PY, "-c", server], stdout=subprocess.PIPE)
    port = int(readline(process))
    with socket.create_connection((address, port), timeout=10) as conn:
        conn.sendall(b"hello sandbox")
        assert conn.recv(100) == b"HELLO SANDBOX"
    assert process.wait(timeout=30) == 0


@needs_namespaces
def test_without_network_only_loopback(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("namespace", network=False)
    assert sandbox.address() is None
    code, output = run(sandbox, ["ip", "-o", "link", "show"])
    assert code == 0, output
    assert [line.split(":")[1].strip() for line in output.splitlines()] == ["lo"]


@needs_namespaces
def test_memory_limit_kills_the_hog(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("namespace", limits=Limits(memory_bytes=50 * 2**20))
    assert isinstance(sandbox, NamespaceSandbox) and sandbox.cgroup is not None
    hog = "b = bytearray(b'x') * (200 * 2**20); print('survived')"
    code, output = run(sandbox, [PY, "-c", hog])
    assert code == -signal.SIGKILL, output
    assert "survived" not in output
    assert run(sandbox, [PY, "-c", "b = bytearray(b'x') * (10 * 2**20)"])[0] == 0
    assert sandbox.stats()["memory_limit_bytes"] == 50 * 2**20


@needs_namespaces
def test_process_limit_refuses_the_sixth(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("namespace", limits=Limits(max_processes=5))
    forker = """
import os
r, w = os.pipe()
forks = 0
try:
    for _ in range(20):
        if os.fork() == 0:
            os.close(w); os.read(r, 1); os._exit(0)
        forks += 1
except BlockingIOError as exc:
    print("forks", forks, "refused", exc.errno == 11)
os.close(w)
"""
    code, output = run(sandbox, [PY, "-c", forker])
    assert code == 0, output
    assert output.strip() == "forks 4 refused True"  # itself and four children: five processes


@needs_namespaces
def test_limits_nobody_can_enforce_stop_the_sandbox(make_sandbox: MakeSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cgroups, "v1_controllers", lambda root=None: set())
    monkeypatch.setattr(_cgroups, "v2_controllers", lambda root=None: {"hugetlb"})
    sandbox = make_sandbox("namespace", limits=Limits(memory_bytes=2**26), create=False)
    with pytest.raises(SandboxError, match=f"cannot enforce the resource limits of {sandbox.spec.package_id}"):
        sandbox.create()
    assert_nothing_left(sandbox)


@needs_namespaces
def test_failed_creation_leaves_nothing(make_sandbox: MakeSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = make_sandbox("namespace", create=False)
    assert isinstance(sandbox, NamespaceSandbox)
    plan = sandbox.plan
    monkeypatch.setattr(sandbox, "plan", lambda: [*plan(), {"op": "bogus"}])
    with pytest.raises(SandboxError, match="unknown plan step 'bogus'"):
        sandbox.create()
    assert not sandbox.running()
    assert_nothing_left(sandbox)


@needs_namespaces
def test_cpu_limit_is_written(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("namespace", limits=Limits(cpu_cores=0.5))
    assert isinstance(sandbox, NamespaceSandbox) and sandbox.cgroup is not None
    group = sandbox.cgroup
    if group.version == 2:
        assert (group.directories[0] / "cpu.max").read_text().split() == ["50000", "100000"]
    else:
        cpu = next(d for d in group.directories if d.parent.parent.name.startswith("cpu"))
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    process = sandbox.spawn(["true"])
    assert process.wait(timeout=30) == 0


# -- cgroup logic on fake hierarchies (runs anywhere) -----------------------------------------------


def test_cgroup_v2_limits(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    limits = Limits(memory_bytes=50 * 2**20, cpu_cores=1.5, max_processes=5)
    group = _cgroups.create("svc", limits, root=tmp_path)
    assert group is not None and group.version == 2
    directory = tmp_path / "startos" / "svc"
    assert group.directories == [directory]
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (directory / "memory.max").read_text() == str(50 * 2**20)
    assert (directory / "cpu.max").read_text() == "150000 100000"
    assert (directory / "pids.max").read_text() == "5"
    assert group.procs_files() == [str(directory / "cgroup.procs")]


def test_cgroup_v1_limits(tmp_path: Path) -> None:
    for name in ("memory", "pids", "cpu", "cpuacct"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cgroup.procs").write_text("")
    limits = Limits(memory_bytes=2**26, cpu_cores=0.25, max_processes=9)
    group = _cgroups.create("svc", limits, root=tmp_path)
    assert group is not None and group.version == 1
    assert (tmp_path / "memory/startos/svc/memory.limit_in_bytes").read_text() == str(2**26)
    assert (tmp_path / "cpu/startos/svc/cpu.cfs_quota_us").read_text() == "25000"
    assert (tmp_path / "pids/startos/svc/pids.max").read_text() == "9"
    assert len(group.procs_files()) == 4


def test_limits_without_controllers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("hugetlb\n")
    with pytest.raises(SandboxError, match="no usable cgroup controller for memory, pids"):
        _cgroups.create("svc", Limits(memory_bytes=2**26, max_processes=5), root=tmp_path)
    assert not (tmp_path / "startos").exists()
    assert _cgroups.create("svc", Limits(), root=tmp_path) is None  # no limits: no cgroup needed

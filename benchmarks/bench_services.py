"""Services: crash → daemon running again (against supervisord), and 200 tiny services at once.

Tables:

* ``daemons``: a service's only daemon is killed with SIGKILL, and the clock runs until the
  replacement process runs its first line of Python. That line takes ``time.monotonic_ns()``
  and the daemon sends it to a Unix socket the benchmark listens on (``CLOCK_MONOTONIC`` is one
  clock for every process of the machine), so the benchmark's own scheduling and polling are
  not in the number. startos runs in this process (``start_tree``, driven through the facade as
  a client would), once per sandbox kind; the same program runs under supervisord
  (``autorestart=true``, ``startsecs=0``) and under a bare gevent loop that waits for its child
  and spawns it again at once (the floor: fork, exec and the interpreter's start-up). All of
  them are crashed in interleaved rounds.
* ``services`` (process sandbox) and ``services-namespace``: 200 tiny services (one daemon each,
  which sleeps) in one startos tree: start-all and stop-all wall times, startd's idle CPU and
  RSS with all of them running, against supervisord running the same 200 programs; and crash →
  running again while the 200 run, against the floor in the same (now larger) process.

The daemons' restart backoff (``DAEMON_BACKOFF`` in ``startos.actors.policies``: the
first restart at once, then 0.5 s·2^n, crash-looping after 5 quick failures) is configured with
``reset_after=0`` (``TreeConfig.daemon_backoff``), so every crash counts as the first one.
"""

import os
import sys

# The namespace sandbox runs `sys.executable` inside its own root, where a path such as
# /repo/benchmarks/../.venv/bin/python does not resolve (benchmarks/ is not mounted there):
# normalise it before startos reads it. (The runtime is started with sys.executable unchanged.)
sys.executable = os.path.normpath(sys.executable)

from gevent import monkey  # noqa: E402

monkey.patch_all()

import dataclasses  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import xmlrpc.client  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.subprocess  # noqa: E402
import psutil  # noqa: E402
from _common import Row, Table, bench_main, log, percentile  # noqa: E402
from gevent.queue import Empty, Queue  # noqa: E402

from startos.actors.tree import Tree, TreeConfig, start_tree  # noqa: E402
from startos.protocol.calls import CallContext, RpcCall  # noqa: E402
from startos.s9pk import generate_signing_key, pack_package  # noqa: E402
from startos.s9pk.package import find_sources  # noqa: E402
from startos.supervision import Backoff  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "packages" / "crashy"  # icon, license
PYTHON = sys.executable
SUPERVISORD = Path(PYTHON).with_name("supervisord")
ROOT = CallContext(local_root=True)

CRASH_P50_TARGET_MS = 20.0
IDLE_CPU_TARGET = 3.0  # % of one core
RSS_TARGET_MB = 300.0
SETTLE = 0.1  # s between a restart and the next kill: the restart's bookkeeping is over by then
IDLE_SETTLE = 3.0  # s after start-all before the idle window opens
CRASH_ID = "bench-crash"

# The same program everywhere: its first line takes the time; then it reports in, and sleeps.
DAEMON_SOURCE = """\
import time
STARTED = time.monotonic_ns()
import signal, socket, sys
if len(sys.argv) > 1:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[1])
    sock.sendall(b"%d\\n" % STARTED)
    sock.close()
while True:
    signal.pause()
"""
DAEMON_FILE = "benchd.py"
# -S (no site import: the program needs only the standard library) starts in ~10 ms, not ~20.
DAEMON_ARGV = [PYTHON, "-S", "-u"]

SERVICE_SOURCE = '''\
"""A benchmark service: one daemon that sleeps (and, given a socket, first reports when it started)."""

from startos.sdk import Daemon, MainContext, Service

service = Service(volumes=["main"])
ARGV = {argv!r}


@service.main
def main(ctx: MainContext) -> list[Daemon]:
    return [Daemon("tiny", argv=ARGV, stop_timeout=5)]
'''
REPORT_SOCKET = "bench.sock"  # in the service's volume "main": the host and the sandbox both see it

# Every crash counts as the first (restarted at once), however short the daemon's uptime was.
CRASH_BACKOFF = Backoff(base=0.5, factor=2.0, cap=30.0, jitter=0.2, reset_after=0.0, crash_loop_after=5)

Closers = list[Callable[[], object]]


# -- packages ------------------------------------------------------------------------------------


def write_package(folder: Path, package_id: str, *, report: bool) -> Path:
    """A source folder shaped like ``examples/packages/crashy`` whose daemon is ``DAEMON_SOURCE``."""
    (folder / "python").mkdir(parents=True)
    shutil.copy(EXAMPLE / "icon.png", folder / "icon.png")
    shutil.copy(EXAMPLE / "LICENSE.md", folder / "LICENSE.md")
    (folder / "instructions.md").write_text(f"# {package_id}\n\nA benchmark service: one daemon that sleeps.\n")
    manifest = json.loads((EXAMPLE / "manifest.json").read_text())
    manifest.update(
        id=package_id,
        title=package_id,
        description={"short": "A benchmark service.", "long": "One daemon that reports when it starts, then sleeps."},
        alerts={},
    )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (folder / "python" / DAEMON_FILE).write_text(DAEMON_SOURCE)
    # Sandbox paths: the process sandbox translates arguments under /startos/ to host paths.
    argv = [*DAEMON_ARGV, f"/startos/code/python/{DAEMON_FILE}"]
    if report:
        argv.append(f"/startos/volumes/main/{REPORT_SOCKET}")
    (folder / "python" / "startos_service.py").write_text(SERVICE_SOURCE.format(argv=argv))
    return folder


def build_packages(workdir: Path, ids: list[str], *, report: set[str] | None = None) -> list[Path]:
    """Pack one signed s9pk per id; those in ``report`` report their starts to ``REPORT_SOCKET``."""
    key = generate_signing_key()
    (workdir / "s9pk").mkdir(parents=True, exist_ok=True)
    return [
        pack_package(
            find_sources(write_package(workdir / "src" / package_id, package_id, report=package_id in (report or ()))),
            key,
            output=workdir / "s9pk" / f"{package_id}.s9pk",
        )
        for package_id in ids
    ]


# -- crashes and their reports -------------------------------------------------------------------


class Reports:
    """The Unix socket daemons report to: one ``(started_ns, host pid)`` per new daemon process.

    The host pid comes from ``SO_PEERCRED`` (the kernel translates it out of a PID namespace).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(64)
        self.queue: Queue = Queue()
        self._accepting = gevent.spawn(self._accept)

    def _accept(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            gevent.spawn(self._read, conn)

    def _read(self, conn: socket.socket) -> None:
        with conn:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid = struct.unpack("3i", creds)[0]
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(64)
                if not chunk:
                    return
                data += chunk
        self.queue.put((int(data), pid))

    def next(self, timeout: float = 15.0) -> tuple[int, int]:
        try:
            return self.queue.get(timeout=timeout)
        except Empty:
            raise RuntimeError(f"no daemon reported to {self.path} within {timeout:g} s") from None

    def close(self) -> None:
        self._accepting.kill()
        self.sock.close()
        self.path.unlink(missing_ok=True)


@dataclasses.dataclass
class Subject:
    """One restarter under test: where its daemon reports, the daemon's pid, the samples (ns)."""

    label: str
    reports: Reports
    pid: int
    samples: list[int] = dataclasses.field(default_factory=list)

    def crash(self) -> None:
        """Kill the daemon; record the time until its replacement ran its first line."""
        killed = time.monotonic_ns()
        os.kill(self.pid, signal.SIGKILL)
        started, self.pid = self.reports.next()
        self.samples.append(started - killed)

    def ms(self, pct: float) -> float:
        return percentile(self.samples, pct) / 1e6


def crash_rounds(subjects: list[Subject], rounds: int, each: int, what: str) -> None:
    """``rounds`` rounds; in each, ``each`` crashes per subject, ``SETTLE`` apart."""
    for number in range(rounds):
        log(f"{what} round {number + 1}/{rounds}: {each} crashes each for {', '.join(s.label for s in subjects)}")
        for subject in subjects:
            for _ in range(each):
                gevent.sleep(SETTLE)
                subject.crash()


def close_all(closers: Closers) -> None:
    """Run every closer, newest first; one failing does not stop the others."""
    for close in reversed(closers):
        try:
            close()
        except Exception as exc:  # noqa: BLE001 (clean-up goes on)
            log(f"clean-up step failed: {exc!r}")
    closers.clear()


# -- startos -------------------------------------------------------------------------------------


class Startos:
    """A tree in this process, called through the facade as the local start-cli would."""

    def __init__(self, workdir: Path, sandbox: str, backoff: Backoff | None = None) -> None:
        self.data_dir = workdir / "data"
        options: dict[str, Any] = {}
        if backoff is not None:
            options["daemon_backoff"] = backoff
        config = TreeConfig(data_dir=self.data_dir, port=None, mdns=False, sandbox=sandbox, **options)
        self.tree: Tree = start_tree(config)
        self.call("setup.execute", serverName="Bench", password="a long enough password")

    def call(self, method: str, timeout: float = 120.0, **params: Any) -> Any:
        return self.tree.ask("facade", RpcCall(method=method, params=params, context=ROOT), timeout=timeout).result

    def packages(self) -> dict[str, Any]:
        return self.call("db.dump", pointer="/public/packageData").value

    def wait_for(self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check(self.packages()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"startos: {what} did not happen within {timeout:g} s")
            gevent.sleep(0.02)

    def install(self, paths: list[Path], timeout: float) -> list[str]:
        """Install the first package alone, then all the others at once; wait until all show installed.

        The first one alone: concurrent *first* installs race in ``ServicesActor._private_put``
        (each one that saw no ``/private/packages`` adds an empty one, wiping the others' records).
        """

        def installed(ids: list[str]) -> Callable[[dict[str, Any]], bool]:
            return lambda data: all(data.get(i, {}).get("stateInfo", {}).get("state") == "installed" for i in ids)

        first = [self.call("package.install", path=str(paths[0])).id]
        self.wait_for("install", installed(first), timeout)
        rest = [self.call("package.install", path=str(path)).id for path in paths[1:]]
        self.wait_for("install", installed(rest), timeout)
        return first + rest

    def start_all(self, ids: list[str]) -> None:
        for package_id in ids:
            self.call("package.start", id=package_id)
        self.wait_for("start-all", all_started(ids), timeout=600)

    def stop_all(self, ids: list[str]) -> None:
        for package_id in ids:
            self.call("package.stop", id=package_id)
        self.wait_for("stop-all", all_stopped(ids), timeout=600)

    def crash_subject(self, package_id: str, label: str, closers: Closers) -> Subject:
        """Start the (installed) reporting package; its daemon is the subject."""
        volume = self.data_dir / "packages" / package_id / "volumes" / "main"
        reports = Reports(volume / REPORT_SOCKET)
        closers.append(reports.close)
        self.call("package.start", id=package_id)
        _, pid = reports.next(timeout=60)
        self.wait_for("start", all_started([package_id]), timeout=60)
        return Subject(label, reports, pid)

    def close(self) -> None:
        if not self.tree.stop(timeout=120):
            log("startos: the tree did not stop gracefully")


def all_started(ids: list[str]) -> Callable[[dict[str, Any]], bool]:
    return lambda data: all(data[i]["statusInfo"].get("started") for i in ids)


def all_stopped(ids: list[str]) -> Callable[[dict[str, Any]], bool]:
    """``started`` null and every daemon gone or ``stopped`` (a daemon stops once its process has exited)."""

    def stopped(status: dict[str, Any]) -> bool:
        daemons = (status.get("daemons") or {}).values()
        return not status.get("started") and all(d.get("state") == "stopped" for d in daemons)

    return lambda data: all(stopped(data[i]["statusInfo"]) for i in ids)


# -- supervisord and the floor -------------------------------------------------------------------


def supervisord_missing() -> str | None:
    """Why the supervisord baseline cannot run here, or None."""
    if not SUPERVISORD.exists():
        return f"{SUPERVISORD} not found (install it: {Path(PYTHON).with_name('pip')} install supervisor)"
    return None


def supervisord_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("supervisor")
    except PackageNotFoundError:
        return "unknown"


class Supervisord:
    """A supervisord in a temp dir running ``programs`` (name → argv), controlled over XML-RPC."""

    def __init__(self, workdir: Path, programs: dict[str, list[str]], *, autostart: bool) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "supervisor.sock"
        lines = [
            "[supervisord]",
            f"logfile={workdir / 'supervisord.log'}",
            f"pidfile={workdir / 'supervisord.pid'}",
            f"childlogdir={workdir}",
            "loglevel=warn",
            "nodaemon=true",
            "minfds=4096",
            "",
            "[unix_http_server]",
            f"file={self.socket}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
        ]
        for name, argv in programs.items():
            lines += [
                f"[program:{name}]",
                f"command={subprocess.list2cmdline(argv)}",
                f"autostart={'true' if autostart else 'false'}",
                "autorestart=true",
                "startsecs=0",
                "startretries=1000000",
                "stopsignal=TERM",
                "stdout_logfile=NONE",
                "stderr_logfile=NONE",
                "",
            ]
        config = workdir / "supervisord.conf"
        config.write_text("\n".join(lines))
        self.process = gevent.subprocess.Popen(
            [str(SUPERVISORD), "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            self.rpc = self._client()  # a transport whose request failed cannot be used again
            try:
                if self.rpc.supervisor.getState()["statename"] == "RUNNING":
                    break
            except (OSError, http.client.HTTPException, xmlrpc.client.Fault):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._kill()
                raise RuntimeError(f"supervisord did not come up (see {workdir / 'supervisord.log'})")
            gevent.sleep(0.05)

    def _client(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

        transport = SupervisorTransport(None, None, serverurl=f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def close(self) -> None:
        """Shut supervisord down (it stops its programs first); kill everything if that fails."""
        if self.process.poll() is not None:
            return
        try:
            self.rpc.supervisor.shutdown()
            self.process.wait(timeout=60)
        except (OSError, http.client.HTTPException, xmlrpc.client.Fault, subprocess.TimeoutExpired):
            self._kill()

    def _kill(self) -> None:
        """SIGKILL supervisord and its programs (each leads a process group of its own)."""
        try:
            everyone = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
        except psutil.Error:
            everyone = []
        for process in everyone:
            try:
                process.kill()
            except psutil.Error:
                pass
        self.process.wait()
        psutil.wait_procs(everyone, timeout=10)


class Respawner:
    """The floor: a greenlet that waits for its child and spawns the same program again at once."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.popen: Any = None
        self._stopping = False
        self._loop = gevent.spawn(self._run)

    def _run(self) -> None:
        while not self._stopping:
            self.popen = gevent.subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.popen.wait()

    def close(self) -> None:
        self._stopping = True
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
        self._loop.join(timeout=10)


def program_subject(workdir: Path, kind: str, closers: Closers) -> Subject:
    """``DAEMON_SOURCE`` under supervisord (``kind="supervisord"``) or the respawn loop (``"floor"``)."""
    workdir.mkdir(parents=True)
    (workdir / DAEMON_FILE).write_text(DAEMON_SOURCE)
    reports = Reports(workdir / REPORT_SOCKET)
    closers.append(reports.close)
    argv = [*DAEMON_ARGV, str(workdir / DAEMON_FILE), str(reports.path)]
    if kind == "supervisord":
        daemon = Supervisord(workdir, {"crash": argv}, autostart=True)
        closers.append(daemon.close)
        label = "supervisord, autorestart=true"
    else:
        respawner = Respawner(argv)
        closers.append(respawner.close)
        label = "bare gevent respawn loop (floor)"
    _, pid = reports.next(timeout=30)
    return Subject(label, reports, pid)


# -- the tables ----------------------------------------------------------------------------------


def crash_rows(table: Table, mine: Subject, where: str, baselines: list[Subject | None], judge: bool) -> None:
    """p50 and p99 rows of ``mine`` against each baseline (``None``: supervisord not installed)."""
    for baseline in baselines:
        label = baseline.label if baseline is not None else "supervisord (not installed)"
        for pct in (50, 99):
            value = mine.ms(pct)
            judged = judge and pct == 50 and baseline is baselines[0]
            table.add(
                Row(
                    f"crash → running p{pct} (ms), {where}",
                    value,
                    label,
                    None if baseline is None else baseline.ms(pct),
                    f"≤ {CRASH_P50_TARGET_MS:g} ms" if judged else "",
                    (value <= CRASH_P50_TARGET_MS) if judged else None,
                )
            )


def bench_crashes(quick: bool, sandboxes: list[str], missing_supervisord: str | None) -> Table:
    """Crash → the replacement daemon's first line, for each subject, interleaved in rounds."""
    table = Table("daemons", "crash (SIGKILL) → replacement daemon running, against supervisord")
    count, rounds = (20, 2) if quick else (200, 5)
    workdir = Path(tempfile.mkdtemp(prefix="sbs-"))  # short: a Unix socket path must fit in 107 bytes
    closers: Closers = []
    mine: dict[str, Subject] = {}
    try:
        floor = program_subject(workdir / "floor", "floor", closers)
        for sandbox in sandboxes:
            log(f"daemons: installing the crash package in a tree with the {sandbox} sandbox")
            server = Startos(workdir / sandbox[:2], sandbox, backoff=CRASH_BACKOFF)
            closers.append(server.close)
            server.install(build_packages(workdir / sandbox[:2], [CRASH_ID], report={CRASH_ID}), timeout=120)
            mine[sandbox] = server.crash_subject(CRASH_ID, f"startos ({sandbox})", closers)
        supervisord = None if missing_supervisord else program_subject(workdir / "sv", "supervisord", closers)
        subjects = [floor, *mine.values(), *([supervisord] if supervisord else [])]
        crash_rounds(subjects, rounds, count // rounds, "daemons")
    finally:
        close_all(closers)
        shutil.rmtree(workdir, ignore_errors=True)

    for sandbox, subject in mine.items():
        crash_rows(table, subject, f"{sandbox} sandbox", [supervisord, floor], judge=True)
    table.notes += [
        f"{count} crashes per subject in {rounds} interleaved rounds, {SETTLE * 1000:.0f} ms apart; the clock "
        "starts just before `kill -9` of the daemon and stops at the `time.monotonic_ns()` its replacement "
        "takes on its first line (sent to a Unix socket: no polling in the number).",
        f"the daemon is the same program everywhere: `python -S -u {DAEMON_FILE} SOCKET` (no site import); "
        "the floor row is what fork, exec and the interpreter's start-up cost alone, restarted by a greenlet "
        "blocked in `Popen.wait()` in this process.",
        "startos: a tree per sandbox kind in this process, the package installed and started through the "
        "facade; daemon backoff `reset_after=0` (`TreeConfig.daemon_backoff`), so every crash counts as the "
        "first and is restarted at once; logging at CRITICAL. The namespace sandbox starts each process "
        "through its enter helper (`python -I -S _enter.py`), a second interpreter start-up per restart.",
    ]
    if supervisord is not None:
        table.notes.append(
            f"supervisord {supervisord_version()} in its own process (`autorestart=true startsecs=0 "
            "startretries=1000000`): it reaps and restarts in its main loop, which wakes once a second."
        )
    else:
        table.notes.append(f"supervisord baseline skipped: {missing_supervisord}")
    return table


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def idle_usage(processes: dict[str, psutil.Process], window: float) -> dict[str, tuple[float, float]]:
    """``name -> (CPU % of one core, RSS in MB at the end)`` over one window shared by all."""
    before = {name: cpu_seconds(p) for name, p in processes.items()}
    started = time.monotonic()
    gevent.sleep(window)
    elapsed = time.monotonic() - started
    return {
        name: (100.0 * (cpu_seconds(p) - before[name]) / elapsed, p.memory_info().rss / 1e6)
        for name, p in processes.items()
    }


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def services_rss(exclude: set[int]) -> float:
    """RSS (MB) of this process's descendants but ``exclude``: the services' runtimes and daemons."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        if child.pid in exclude:
            continue
        try:
            total += child.memory_info().rss / 1e6
        except psutil.Error:
            continue
    return total


def bench_many(quick: bool, sandbox: str, missing_supervisord: str | None) -> Table:
    """N tiny services: start-all and stop-all times; idle CPU and RSS with all of them running."""
    count = 50 if quick else 200
    window = 5.0 if quick else 10.0
    crashes = 10 if quick else 50
    name = "services" if sandbox == "process" else f"services-{sandbox}"
    table = Table(name, f"{count} tiny services, {sandbox} sandbox: start-all, stop-all, idle CPU and RSS")
    ids = [f"tiny-{number:03d}" for number in range(count)]
    workdir = Path(tempfile.mkdtemp(prefix="sbs-"))
    closers: Closers = []
    figures: dict[str, float] = {}
    usage: dict[str, tuple[float, float]] = {}
    try:
        log(f"{name}: packing {count + 1} packages")
        paths = build_packages(workdir, [CRASH_ID, *ids], report={CRASH_ID})
        me = psutil.Process()
        server = Startos(workdir / "st", sandbox, backoff=CRASH_BACKOFF)
        closers.append(server.close)
        figures["rss empty"] = me.memory_info().rss / 1e6
        log(f"{name}: installing {count + 1} packages")
        figures["install"] = timed(lambda: server.install(paths, timeout=900))
        supervisord: Supervisord | None = None
        if missing_supervisord is None:
            (workdir / DAEMON_FILE).write_text(DAEMON_SOURCE)
            programs = {i: [*DAEMON_ARGV, str(workdir / DAEMON_FILE)] for i in ids}
            supervisord = Supervisord(workdir / "sv", programs, autostart=False)
            closers.append(supervisord.close)
        log(f"{name}: start-all ({count})")
        figures["start"] = timed(lambda: server.start_all(ids))
        watched = {"startos": me}
        if supervisord is not None:
            rpc = supervisord.rpc
            figures["sv start"] = timed(lambda: rpc.supervisor.startAllProcesses(True))
            watched["supervisord"] = psutil.Process(supervisord.pid)
        gevent.sleep(IDLE_SETTLE)
        log(f"{name}: idle for {window:g} s with {count} services running")
        usage = idle_usage(watched, window)
        if supervisord is not None:
            supervised = {supervisord.pid, *(p.pid for p in watched["supervisord"].children(recursive=True))}
            figures["services rss"] = services_rss(supervised)
            figures["sv stop"] = timed(lambda: rpc.supervisor.stopAllProcesses(True))
        else:
            figures["services rss"] = services_rss(set())
        # Crash → running again with all of them running (supervisord's programs stopped by now).
        floor = program_subject(workdir / "floor", "floor", closers)
        crashing = server.crash_subject(CRASH_ID, "startos", closers)
        crash_rounds([floor, crashing], 1, crashes, name)
        server.stop_all([CRASH_ID])
        log(f"{name}: stop-all ({count})")
        figures["stop"] = timed(lambda: server.stop_all(ids))
        log(f"{name}: stopping the tree")
        closers.remove(server.close)
        figures["shutdown"] = timed(server.close)
    finally:
        close_all(closers)
        shutil.rmtree(workdir, ignore_errors=True)

    sv = "supervisord, same programs" if missing_supervisord is None else "supervisord (not installed)"
    cpu, rss = usage["startos"]
    sv_cpu, sv_rss = usage.get("supervisord", (None, None))
    table.add(Row(f"start-all, {count} services (s)", figures["start"], sv, figures.get("sv start")))
    table.add(Row(f"stop-all, {count} services (s)", figures["stop"], sv, figures.get("sv stop")))
    table.add(
        Row(
            f"idle CPU, {count} running (% of a core)",
            cpu,
            sv,
            sv_cpu,
            f"≤ {IDLE_CPU_TARGET:g}%",
            cpu <= IDLE_CPU_TARGET,
        )
    )
    table.add(Row(f"RSS, {count} running (MB)", rss, sv, sv_rss, f"≤ {RSS_TARGET_MB:g} MB", rss <= RSS_TARGET_MB))
    crash_rows(table, crashing, f"{count} running", [floor], judge=False)
    table.notes += [
        f"each service: one daemon, `python -S -u {DAEMON_FILE}` (sleeps in `signal.pause()`), ready once "
        "started. startd (a tree in this process) is driven through the facade: start-all is `package.start` "
        "for each id in turn, then waiting until every `statusInfo.started` is set (`db.dump` every 20 ms); "
        "stop-all the same with `package.stop` until `started` is null and every daemon `stopped`.",
        f"supervisord runs the same {count} programs (`startsecs=0`); its start-all and stop-all are "
        "`startAllProcesses(wait=True)` and `stopAllProcesses(wait=True)` over XML-RPC.",
        f"idle: CPU time (user + system) of startd's process and of supervisord over the same {window:g} s "
        f"window, {IDLE_SETTLE:g} s after start-all; RSS at its end (MB = 10^6 bytes). startd is this whole "
        "process; the harness sleeps meanwhile.",
        f"crash rows: {crashes} crashes of one more (reporting) service while the {count} run, against the "
        "floor's respawn loop in this same process (forking a bigger process costs more), measured as in "
        "the `daemons` table; not judged against the target.",
        f"not in the table: this process's RSS was {figures['rss empty']:.0f} MB with the tree up and no "
        f"service, so ~{(rss - figures['rss empty']) * 1000 / count:.0f} KB per running service; installing "
        f"{count + 1} packages took {figures['install']:.1f} s (one, then the rest at once); the services' own "
        f"processes held {figures['services rss']:,.0f} MB RSS in all (summed per process, shared pages "
        f"counted in each); stopping the tree with {count + 1} services installed took "
        f"{figures['shutdown']:.1f} s.",
    ]
    if missing_supervisord is not None:
        table.notes.append(f"supervisord baseline skipped: {missing_supervisord}")
    return table


def many_in_fresh_process(quick: bool, sandbox: str) -> Table:
    """``bench_many`` in a process of its own, so that its RSS holds nothing of the other tables."""
    command = [PYTHON, str(Path(__file__).resolve()), "--many-worker", sandbox, *(["--quick"] if quick else [])]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the {sandbox} services run failed (status {done.returncode})")
    return Table.from_dict(json.loads(done.stdout))


def quiet() -> None:
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("startos").setLevel(logging.CRITICAL)


def run(quick: bool) -> list[Table]:
    """The ``daemons`` table, then the many-services table per sandbox kind (each in a fresh process)."""
    quiet()
    missing = supervisord_missing()
    if missing is not None:
        log(f"SKIP the supervisord baseline: {missing}")
    from startos.sandbox import namespace_support

    usable, reason = namespace_support()
    sandboxes = ["process", "namespace"] if usable else ["process"]
    if not usable:
        log(f"SKIP the namespace sandbox: {reason}")
    tables = [bench_crashes(quick, sandboxes, missing)]
    tables += [many_in_fresh_process(quick, sandbox) for sandbox in sandboxes]
    return tables


def _worker_main() -> bool:
    """``--many-worker SANDBOX [--quick]``: one many-services table as JSON on stdout."""
    if len(sys.argv) < 3 or sys.argv[1] != "--many-worker":
        return False
    quiet()
    table = bench_many("--quick" in sys.argv[3:], sys.argv[2], supervisord_missing())
    print(json.dumps(table.to_dict()))
    return True


if __name__ == "__main__" and not _worker_main():
    bench_main(run, __doc__)

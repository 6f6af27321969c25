"""Health checks: 200 services with 3 checks each at 1 s intervals (startd CPU, schedule lag).

One table, ``health``. 200 tiny services (process sandbox) each run one daemon, a small Python
HTTP server on a port of its own, and declare three stand-alone health checks that run every
second: HTTP (``GET /``), TCP (connect) and a function check (``lambda ctx: True``). startd (a
tree in a fresh worker process, driven through the facade as a client would) starts them all;
once every check reports success, a window opens in which the benchmark measures:

* startd's CPU (user + system time of the worker process, whose harness sleeps meanwhile) and
  the CPU of its children (the services' runtimes and daemons), over the window;
* the check runs in the window, and each run's lag: the time between when it was due and when
  it started (``startos.actors.services.health.CHECK_LAG``, filled while ``RECORD_LAG`` is set).
  The issue's target: p99 ≤ 50 ms;
* startd's RSS at the end of the window.

The baseline runs in the same run, in another fresh worker: the same 200 services with the
daemon only (no checks), the same window. Its worker also times 600 bare gevent timers at 1 s
(an ``Event.wait(timeout)`` loop like the check's, doing nothing) after its CPU window: the floor
of the schedule lag in a process holding 200 services.
"""

import os
import sys

sys.executable = os.path.normpath(sys.executable)  # as bench_services: start-up paths without ".."

from gevent import monkey  # noqa: E402

monkey.patch_all()

import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402
from _common import Row, Table, bench_main, log, percentile  # noqa: E402
from bench_services import EXAMPLE, Closers, Startos, all_started, close_all, cpu_seconds, quiet  # noqa: E402
from gevent.event import Event  # noqa: E402

from startos.s9pk import generate_signing_key, pack_package  # noqa: E402
from startos.s9pk.package import find_sources  # noqa: E402

PYTHON = sys.executable
COUNT = 200
CHECKS_PER_SERVICE = 3
INTERVAL = 1.0  # s between a check's runs
LAG_P99_TARGET_MS = 50.0
BASE_PORT = 20000  # the daemons listen on a free run of COUNT ports from here up
SETTLE = 3.0  # s after the last check's first success before the window opens

WEB_FILE = "web.py"
WEB_SOURCE = """\
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # a line per request would be 200 journal lines a second for startd to carry


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

SERVICE_SOURCE = '''\
"""A benchmark service: a tiny HTTP server{checks_doc}."""

from startos.sdk import Daemon, FunctionCheck, HealthCheck, HttpCheck, MainContext, Service, TcpCheck

service = Service(volumes=["main"])
ARGV = {argv!r}
PORT = {port}
CHECKS = {checks!r}


@service.main
def main(ctx: MainContext) -> list[Daemon | HealthCheck]:
    items: list[Daemon | HealthCheck] = [Daemon("web", argv=ARGV, stop_timeout=5)]
    if CHECKS:
        items += [
            HealthCheck("http", HttpCheck(PORT, "/", interval={interval}, grace_period=0), name="HTTP"),
            HealthCheck("tcp", TcpCheck(PORT, interval={interval}, grace_period=0), name="TCP"),
            HealthCheck("fn", FunctionCheck(lambda ctx: True, interval={interval}, grace_period=0), name="Function"),
        ]
    return items
'''


# -- packages and ports --------------------------------------------------------------------------


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    """The first port of a run of ``count`` free ports from ``BASE_PORT`` up (below the ephemeral range)."""
    for base in range(BASE_PORT, 32768 - count, count):
        if all(port_free(port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} free consecutive ports between {BASE_PORT} and 32767")


def write_package(folder: Path, package_id: str, port: int, checks: bool) -> Path:
    """A source folder shaped like ``examples/packages/crashy``: one HTTP daemon, maybe three checks."""
    (folder / "python").mkdir(parents=True)
    shutil.copy(EXAMPLE / "icon.png", folder / "icon.png")
    shutil.copy(EXAMPLE / "LICENSE.md", folder / "LICENSE.md")
    (folder / "instructions.md").write_text(f"# {package_id}\n\nA benchmark service: a tiny HTTP server.\n")
    manifest = json.loads((EXAMPLE / "manifest.json").read_text())
    manifest.update(
        id=package_id,
        title=package_id,
        description={"short": "A benchmark service.", "long": "A tiny HTTP server, checked every second."},
        alerts={},
    )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (folder / "python" / WEB_FILE).write_text(WEB_SOURCE)
    # Sandbox paths: the process sandbox translates arguments under /startos/ to host paths.
    argv = [PYTHON, "-S", "-u", f"/startos/code/python/{WEB_FILE}", str(port)]
    source = SERVICE_SOURCE.format(
        argv=argv,
        port=port,
        checks=checks,
        interval=INTERVAL,
        checks_doc=" and three health checks (HTTP, TCP, function) every second" if checks else "",
    )
    (folder / "python" / "startos_service.py").write_text(source)
    return folder


def build_packages(workdir: Path, ids: list[str], base_port: int, checks: bool) -> list[Path]:
    key = generate_signing_key()
    (workdir / "s9pk").mkdir(parents=True, exist_ok=True)
    return [
        pack_package(
            find_sources(write_package(workdir / "src" / package_id, package_id, base_port + index, checks)),
            key,
            output=workdir / "s9pk" / f"{package_id}.s9pk",
        )
        for index, package_id in enumerate(ids)
    ]


# -- measuring -----------------------------------------------------------------------------------


def all_healthy(ids: list[str]) -> Any:
    """Every service shows its three checks, each with ``success``."""

    def healthy(data: dict[str, Any]) -> bool:
        for package_id in ids:
            health = data[package_id]["statusInfo"].get("health") or {}
            if len(health) != CHECKS_PER_SERVICE or any(h.get("result") != "success" for h in health.values()):
                return False
        return True

    return healthy


def kind_of(process: psutil.Process) -> str:
    """``runtime`` (``python -m startos.runtime``), ``daemon`` (the HTTP server) or ``other``."""
    try:
        cmdline = process.cmdline()
    except psutil.Error:
        return "other"
    if "startos.runtime" in cmdline:
        return "runtime"
    if any(part.endswith(WEB_FILE) for part in cmdline):
        return "daemon"
    return "other"


def children_cpu(children: list[psutil.Process]) -> dict[int, float]:
    seconds: dict[int, float] = {}
    for child in children:
        try:
            seconds[child.pid] = cpu_seconds(child)
        except psutil.Error:
            continue
    return seconds


def main_thread_sched() -> tuple[float, float]:
    """(seconds on a CPU, seconds waiting in the run queue) of this process's main thread, the hub's."""
    try:
        ran, waited, _ = Path(f"/proc/self/task/{os.getpid()}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(ran) / 1e9, int(waited) / 1e9


def window(seconds: float) -> dict[str, float]:
    """CPU % of this process and of its children (by kind) over ``seconds`` of sleeping; RSS at the end.

    The children are read before this process's clock starts and after it stops, so reading
    ~400 ``/proc/<pid>/stat`` files is not in startd's figure.
    """
    me = psutil.Process()
    children = me.children(recursive=True)
    kinds = {child.pid: kind_of(child) for child in children}
    children_before = children_cpu(children)
    me_before = cpu_seconds(me)
    sched_before = main_thread_sched()
    started = time.monotonic()
    gevent.sleep(seconds)
    elapsed = time.monotonic() - started
    sched_after = main_thread_sched()
    me_after = cpu_seconds(me)
    children_after = children_cpu(children)
    figures = {"cpu": 100.0 * (me_after - me_before) / elapsed, "rss": me.memory_info().rss / 1e6}
    for kind in ("runtime", "daemon", "other"):
        spent = sum(
            children_after[pid] - children_before[pid]
            for pid in children_after
            if pid in children_before and kinds[pid] == kind
        )
        figures[f"{kind} cpu"] = 100.0 * spent / elapsed
        figures[f"{kind} count"] = sum(1 for pid in children_after if kinds[pid] == kind)
    figures["elapsed"] = elapsed
    # How long the hub's thread was runnable but not running: other load on the machine shows here.
    figures["hub ran"] = sched_after[0] - sched_before[0]
    figures["hub waited"] = sched_after[1] - sched_before[1]
    return figures


def timer_floor(count: int, interval: float, seconds: float) -> list[float]:
    """Lags of ``count`` bare greenlets on the check's schedule (``Event.wait(timeout)``, no work)."""
    lags: list[float] = []
    stop = time.monotonic() + seconds

    def loop(offset: float) -> None:
        wake = Event()
        due = time.monotonic() + offset
        while True:
            wake.wait(max(0.0, due - time.monotonic()))
            started = time.monotonic()
            if started > stop:
                return
            lags.append(max(0.0, started - due))
            due = started + interval

    rng = random.Random(7)
    gevent.joinall([gevent.spawn(loop, rng.uniform(0, interval)) for _ in range(count)])
    return lags


def lag_stats(lags: list[float]) -> dict[str, float]:
    if not lags:
        return {"runs": 0.0}
    ms = [lag * 1000 for lag in lags]
    return {
        "runs": float(len(ms)),
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "over": float(sum(1 for value in ms if value > LAG_P99_TARGET_MS)),
    }


def measure(quick: bool, checks: bool, base_port: int) -> dict[str, Any]:
    """One worker's run: pack, install and start ``COUNT`` services; settle; one window; clean up."""
    from startos.actors.services import health

    seconds = 10.0 if quick else 30.0
    what = "checks" if checks else "plain"
    ids = [f"hc-{number:03d}" for number in range(COUNT)]
    workdir = Path(tempfile.mkdtemp(prefix="sbh-"))
    closers: Closers = []
    out: dict[str, Any] = {"window": seconds}
    try:
        log(f"health/{what}: packing {COUNT} packages")
        paths = build_packages(workdir, ids, base_port, checks)
        health.RECORD_LAG = checks
        server = Startos(workdir / "st", "process")
        closers.append(server.close)
        log(f"health/{what}: installing {COUNT} packages")
        server.install(paths, timeout=900)
        log(f"health/{what}: start-all ({COUNT})")
        started = time.monotonic()
        for package_id in ids:
            server.call("package.start", id=package_id)
        server.wait_for("start-all", all_started(ids), timeout=600)
        out["start"] = time.monotonic() - started
        if checks:
            server.wait_for("every check succeeding", all_healthy(ids), timeout=300)
            out["healthy"] = time.monotonic() - started
        gevent.sleep(SETTLE)
        log(f"health/{what}: measuring for {seconds:g} s")
        health.CHECK_LAG.clear()
        out.update(window(seconds))
        lags = list(health.CHECK_LAG)
        out["lag"] = lag_stats(lags)
        health.RECORD_LAG = False
        if checks:
            data = server.packages()
            out["unhealthy"] = sum(
                1
                for package_id in ids
                for check in (data[package_id]["statusInfo"].get("health") or {}).values()
                if check.get("result") != "success"
            )
        else:
            log(f"health/{what}: {COUNT * CHECKS_PER_SERVICE} bare gevent timers for {seconds:g} s (the lag floor)")
            out["floor"] = lag_stats(timer_floor(COUNT * CHECKS_PER_SERVICE, INTERVAL, seconds))
        log(f"health/{what}: stop-all and closing the tree")
        server.stop_all(ids)
        closers.remove(server.close)
        server.close()
    finally:
        health.RECORD_LAG = False
        close_all(closers)
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# -- the table -----------------------------------------------------------------------------------


def in_fresh_process(quick: bool, checks: bool, base_port: int) -> dict[str, Any]:
    """``measure`` in a worker of its own, so startd's RSS and CPU hold nothing else."""
    command = [PYTHON, str(Path(__file__).resolve()), "--worker", "checks" if checks else "plain", str(base_port)]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the health worker ({'checks' if checks else 'plain'}) failed (status {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run(quick: bool) -> list[Table]:
    """The baseline (no checks) first, then the same services with 3 checks each; one table."""
    quiet()
    base_port = free_ports(COUNT)
    plain = in_fresh_process(quick, False, base_port)
    checked = in_fresh_process(quick, True, base_port)

    n, total = COUNT, COUNT * CHECKS_PER_SERVICE
    table = Table("health", f"{n} services, {CHECKS_PER_SERVICE} health checks each every {INTERVAL:g} s: CPU and lag")
    no_checks = f"same {n} services, no checks"
    table.add(Row("startd CPU (% of a core)", checked["cpu"], no_checks, plain["cpu"]))
    table.add(
        Row(f"runtimes' CPU, {n} processes (% of a core)", checked["runtime cpu"], no_checks, plain["runtime cpu"])
    )
    table.add(
        Row(f"daemons' CPU, {n} HTTP servers (% of a core)", checked["daemon cpu"], no_checks, plain["daemon cpu"])
    )
    table.add(Row("startd RSS (MB)", checked["rss"], no_checks, plain["rss"]))
    expected = f"{total} checks / {INTERVAL:g} s"
    lag, floor = checked["lag"], plain["floor"]
    table.add(Row("check runs per second", lag["runs"] / checked["elapsed"], expected, total / INTERVAL))
    floor_label = f"{total} bare gevent timers at {INTERVAL:g} s (floor)"
    table.add(Row("schedule → run lag p50 (ms)", lag["p50"], floor_label, floor.get("p50")))
    p99 = lag["p99"]
    table.add(
        Row(
            "schedule → run lag p99 (ms)",
            p99,
            floor_label,
            floor.get("p99"),
            f"≤ {LAG_P99_TARGET_MS:g} ms",
            p99 <= LAG_P99_TARGET_MS,
        )
    )
    table.add(Row("schedule → run lag max (ms)", lag["max"], floor_label, floor.get("max")))
    window_s = checked["window"]
    table.notes += [
        f"each service (process sandbox): one daemon, `python -S -u {WEB_FILE} PORT` (`http.server`, answers "
        f"`GET /` with 200, no request log), ready once started; with checks, three stand-alone `HealthCheck`s "
        f'at `interval={INTERVAL:g}`, `grace_period=0`: `HttpCheck(port, "/")`, `TcpCheck(port)`, '
        "`FunctionCheck(lambda ctx: True)`. The runtime runs each check inside the sandbox; startd schedules "
        "them (one `HealthCheckActor` each) and asks the runtime.",
        "startd is a tree in a fresh worker process per column (`start_tree`, process sandbox, driven through "
        f"the facade): install, `package.start` each, wait until every check shows success, {SETTLE:g} s "
        f"settle, then a {window_s:g} s window in which the harness sleeps. CPU = user + system time over the "
        "window (startd: the worker process; runtimes and daemons: its child processes by kind); RSS at the "
        "end (MB = 10^6 bytes).",
        "lag: for every check run in the window, its start minus when it was due "
        "(`startos.actors.services.health.CHECK_LAG`, with `RECORD_LAG = True`); a run is due `interval` "
        "after the previous run's start. The floor: the baseline worker (no checks), after its window, runs "
        f"{total} greenlets that wait on an `Event` with a timeout on the same schedule and do nothing, "
        f"for {window_s:g} s.",
        f"not in the table: start-all took {checked['start']:.1f} s with checks ({plain['start']:.1f} s without); "
        f"every check showed success {checked['healthy']:.1f} s after the first `package.start`; "
        f"{lag['runs']:,.0f} runs in the window, {lag.get('over', 0):,.0f} of them more than "
        f"{LAG_P99_TARGET_MS:g} ms late ({floor.get('over', 0):,.0f} of the floor's {floor['runs']:,.0f}); "
        f"{checked['unhealthy']} checks not at success at the end of the window.",
        f"startd's main thread (the gevent hub) ran {checked['hub ran']:.1f} s and waited "
        f"{checked['hub waited']:.1f} s for a CPU in the window (`/proc/<pid>/task/<pid>/schedstat`; "
        f"{plain['hub ran']:.1f} / {plain['hub waited']:.1f} s without checks): lag beyond the floor's comes "
        "from that wait when the machine is busy.",
    ]
    return [table]


def _worker_main() -> bool:
    """``--worker checks|plain BASE_PORT [--quick]``: one column's figures as JSON on stdout."""
    if len(sys.argv) < 4 or sys.argv[1] != "--worker":
        return False
    quiet()
    figures = measure("--quick" in sys.argv[4:], sys.argv[2] == "checks", int(sys.argv[3]))
    print(json.dumps(figures))
    return True


if __name__ == "__main__" and not _worker_main():
    bench_main(run, __doc__)

"""JSON-RPC over HTTP: ``echo`` requests/s and p99 at 1 and 50 keep-alive connections.

One table, ``rpc``: the full startos path (``POST /rpc/v1`` on the tree's web server → bottle →
the facade actor → ``echo``) against the floor, a bare bottle app on the same
``NoDelayWSGIServer`` that decodes the JSON body and answers
``{"jsonrpc": "2.0", "id": .., "result": ..}``.

Each server runs in its own subprocess (``--serve startos|floor``) so that the load generator
never shares its process. The load comes from ``wrk`` (one thread: the machine may have two
cores, one for each side) when it is installed, else from a gevent-based Python client in a
separate process (``--client``), which is itself slower than ``wrk``. Floor and startos runs
are interleaved, and each figure is the median over the rounds.
"""

from gevent import monkey

monkey.patch_all()

import http.client  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import bottle  # noqa: E402
import gevent  # noqa: E402
import msgspec  # noqa: E402
from _common import Row, ServerProcess, Table, bench_main, log, median, percentile  # noqa: E402
from gevent.event import Event  # noqa: E402

TARGET_RATIO = 0.6
CONNECTIONS = (1, 50)
PATH = "/rpc/v1"
MESSAGE = "hello"
BODY = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": MESSAGE}}, separators=(",", ":")
).encode()
HEADERS = {"Content-Type": "application/json"}
WRK_SCRIPT = f"""wrk.method = "POST"
wrk.body = '{BODY.decode()}'
wrk.headers["Content-Type"] = "application/json"
"""
KINDS = ("floor", "startos")


@dataclass
class Load:
    """What one load run measured."""

    rps: float
    p50_ms: float
    p99_ms: float


# -- servers (subprocess mode) -----------------------------------------------------------------


def floor_app() -> bottle.Bottle:
    """The baseline: decode the JSON-RPC body, answer its ``params.message`` as the result."""
    app = bottle.Bottle()
    encoder = msgspec.json.Encoder()

    @app.post(PATH)
    def echo() -> bytes:
        length = bottle.request.content_length
        request: dict[str, Any] = msgspec.json.decode(bottle.request.environ["wsgi.input"].read(length))
        bottle.response.content_type = "application/json"
        return encoder.encode({"jsonrpc": "2.0", "id": request.get("id"), "result": request["params"]["message"]})

    return app


def _listener() -> socket.socket:
    """A listening socket made the way ``WebServerActor`` makes its own."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    return listener


def serve(kind: str) -> None:
    """Run one server; print its port; stop on SIGTERM or when the parent goes away."""
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("startos").setLevel(logging.CRITICAL)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    parent = os.getppid()

    def watch_parent() -> None:
        while os.getppid() == parent:
            gevent.sleep(0.5)
        stop.set()

    gevent.spawn(watch_parent)
    close: Callable[[], None]
    if kind == "startos":
        from startos.actors.tree import TreeConfig, start_tree
        from startos.webui.server import GetAddress

        workdir = Path(tempfile.mkdtemp(prefix="startos-bench-rpc-"))
        tree = start_tree(TreeConfig(data_dir=workdir, host="127.0.0.1", port=0))
        port = int(tree.ask("web", GetAddress()).port)

        def close() -> None:
            tree.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    else:
        from startos.webui.server import NoDelayWSGIServer

        listener = _listener()
        server = NoDelayWSGIServer(listener, floor_app(), log=None, error_log=None)
        server.start()
        port = listener.getsockname()[1]

        def close() -> None:
            server.stop(timeout=2.0)

    print(port, flush=True)
    stop.wait()
    close()


def check_echo(port: int) -> None:
    """One request by hand: the server must answer the echo correctly before it is timed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", PATH, BODY, HEADERS)
        response = conn.getresponse()
        payload = json.loads(response.read())
    finally:
        conn.close()
    if response.status != 200 or payload.get("result") != MESSAGE or payload.get("id") != 1:
        raise RuntimeError(f"unexpected echo reply: HTTP {response.status} {payload!r}")


# -- load generators ---------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk_latency(output: str, label: str) -> float:
    match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {label}% latency in wrk's output:\n{output}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk_load(url: str, connections: int, seconds: int, script: Path) -> Load:
    """Run ``wrk`` with one thread and parse requests/s and the latency percentiles."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
        "-s", str(script), url,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    for problem in ("Non-2xx or 3xx responses", "Socket errors"):
        if problem in output:
            raise RuntimeError(f"wrk reported {problem.lower()}:\n{output}")
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if rps is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    return Load(float(rps.group(1)), _wrk_latency(output, "50"), _wrk_latency(output, "99"))


def client(url: str, connections: int, seconds: float) -> None:
    """``--client`` mode: keep-alive POSTs from ``connections`` greenlets; print a JSON summary."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[int] = []
    errors = 0
    deadline = time.monotonic() + seconds
    clock = time.perf_counter_ns

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            while time.monotonic() < deadline:
                start = clock()
                conn.request("POST", parts.path, BODY, HEADERS)
                response = conn.getresponse()
                response.read()
                latencies.append(clock() - start)
                if response.status != 200:
                    errors += 1
        finally:
            conn.close()

    start = time.perf_counter()
    gevent.joinall([gevent.spawn(worker) for _ in range(connections)], raise_error=True)
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "rps": len(latencies) / elapsed,
                "p50_ms": percentile(latencies, 50) / 1e6,
                "p99_ms": percentile(latencies, 99) / 1e6,
                "errors": errors,
            }
        )
    )


def python_load(url: str, connections: int, seconds: int) -> Load:
    """The fallback load generator, in its own process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--client", url, str(connections), str(seconds)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    data = json.loads(done.stdout)
    if data["errors"]:
        raise RuntimeError(f"{data['errors']} non-200 replies from {url}")
    return Load(data["rps"], data["p50_ms"], data["p99_ms"])


# -- the benchmark -----------------------------------------------------------------------------


def run(quick: bool) -> list[Table]:
    """The ``rpc`` table."""
    rounds, warm, seconds = (1, 1, 2) if quick else (5, 1, 3)
    table = Table("rpc", "JSON-RPC `echo` over HTTP keep-alive, server in its own process")
    use_wrk = shutil.which("wrk") is not None
    scratch = Path(tempfile.mkdtemp(prefix="startos-bench-wrk-"))
    script = scratch / "post.lua"
    script.write_text(WRK_SCRIPT)

    def load(url: str, connections: int, duration: int) -> Load:
        if use_wrk:
            return wrk_load(url, connections, duration, script)
        return python_load(url, connections, duration)

    results: dict[tuple[str, int], list[Load]] = {(k, c): [] for k in KINDS for c in CONNECTIONS}
    try:
        for number in range(rounds):
            for kind in KINDS:
                with ServerProcess(__file__, kind) as server:
                    check_echo(server.port)
                    url = f"http://127.0.0.1:{server.port}{PATH}"
                    for connections in CONNECTIONS:
                        log(f"rpc round {number + 1}/{rounds}: {kind}, {connections} connection(s)")
                        load(url, connections, warm)
                        results[(kind, connections)].append(load(url, connections, seconds))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def med(kind: str, connections: int, attr: str) -> float:
        return median([getattr(result, attr) for result in results[(kind, connections)]])

    floor_name = "bare bottle JSON echo, same server"
    for connections in CONNECTIONS:
        plural = "connection" if connections == 1 else "connections"
        rps = med("startos", connections, "rps")
        base = med("floor", connections, "rps")
        table.add(
            Row(
                f"echo req/s, {connections} {plural}",
                rps,
                floor_name,
                base,
                f"≥ {TARGET_RATIO}x floor",
                rps >= TARGET_RATIO * base,
            )
        )
        table.add(
            Row(
                f"echo p99 (ms), {connections} {plural}",
                med("startos", connections, "p99_ms"),
                floor_name,
                med("floor", connections, "p99_ms"),
            )
        )
    generator = "`wrk -t1` (one thread)" if use_wrk else "a gevent Python client in its own process (wrk not found)"
    table.notes += [
        f"load: {generator}; {rounds} round(s), each a {warm} s warm-up then {seconds} s measured per "
        "case, floor and startos interleaved; the table shows the median of the rounds.",
        "startos path: `POST /rpc/v1` → bottle → `FacadeActor` (an `ask`, and a greenlet per call) "
        "→ `echo`; the floor decodes the body with msgspec and answers inline.",
        "each server runs in a fresh subprocess; neither process is pinned to a core.",
    ]
    return [table]


def _worker_main() -> bool:
    """Handle the subprocess modes; ``False`` when this is a normal benchmark run."""
    if len(sys.argv) == 3 and sys.argv[1] == "--serve" and sys.argv[2] in KINDS:
        serve(sys.argv[2])
        return True
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        return True
    return False


if __name__ == "__main__" and not _worker_main():
    bench_main(run, __doc__)

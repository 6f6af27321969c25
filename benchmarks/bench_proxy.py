"""The ProxyActor in front of an HTTP backend: requests/s, latency and bulk throughput, plain and TLS.

One table, ``proxy``. A backend (a minimal WSGI ``hello`` app on ``NoDelayWSGIServer``, plus
``/big``, a large download) runs in its own process, on a plain port and on a TLS port (gevent's
TLS server, an ECDSA P-256 certificate like ours); a ProxyActor in a small tree (store, certs,
proxy, with a root CA and a server certificate as after setup) runs in another and exposes the
plain port twice, plain and TLS. ``wrk`` (one thread) measures each case *direct* and *through
the proxy*, interleaved; each figure is the median over the rounds. The plain proxy is compared
with the backend's plain port, the TLS proxy with the backend's own TLS port (the same TLS work
done in one process instead of two).

    python benchmarks/bench_proxy.py [--quick]
"""

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from _common import Row, ServerProcess, Table, bench_main, log, median  # noqa: E402
from gevent.event import Event  # noqa: E402

HELLO = b"hello"
BIG_CHUNK = 1024 * 1024
BIG_CHUNKS = 64  # /big is 64 MiB
KINDS = ("direct", "direct-tls", "plain", "tls")
LABELS = {"plain": "proxy, plain", "tls": "proxy, TLS"}
BASELINES = {"plain": ("direct", "backend direct, plain"), "tls": ("direct-tls", "backend direct, its own TLS")}


@dataclass
class Load:
    """What one wrk run measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    mb_per_s: float


# -- servers (subprocess mode) -----------------------------------------------------------------


def _wait_for_signal() -> None:
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    parent = os.getppid()

    def watch_parent() -> None:
        while os.getppid() == parent:
            gevent.sleep(0.5)
        stop.set()

    gevent.spawn(watch_parent)
    stop.wait()


def serve_backend() -> None:
    """The backend: ``/`` answers ``hello``, ``/big`` streams 64 MiB; prints its plain and TLS ports."""
    import socket

    from startos.net.certs import create_root_ca, issue_server_cert
    from startos.webui.server import NoDelayWSGIServer
    from startos.webui.tls import _TlsWSGIServer, server_context

    chunk = os.urandom(BIG_CHUNK)
    big_length = str(BIG_CHUNK * BIG_CHUNKS)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/big":
            start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", big_length)])
            return (chunk for _ in range(BIG_CHUNKS))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
        return [HELLO]

    def listen() -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        return listener

    workdir = Path(tempfile.mkdtemp(prefix="startos-bench-backend-"))
    ca = create_root_ca("bench")
    issued = issue_server_cert(ca, "bench.local")
    (workdir / "server.crt").write_text(issued.cert_pem + ca.cert_pem)
    (workdir / "server.key").write_text(issued.key_pem)
    context = server_context()
    context.load_cert_chain(str(workdir / "server.crt"), str(workdir / "server.key"))
    plain, secure = listen(), listen()
    servers = [
        NoDelayWSGIServer(plain, app, log=None, error_log=None),
        _TlsWSGIServer(secure, app, log=None, error_log=None, ssl_context=context),
    ]
    for server in servers:
        server.start()
    print(plain.getsockname()[1], secure.getsockname()[1], flush=True)
    try:
        _wait_for_signal()
    finally:
        for server in servers:
            server.stop(timeout=2.0)
        shutil.rmtree(workdir, ignore_errors=True)


def serve_proxy(backend_port: int) -> None:
    """A tree with store, certs and proxy, set up like after setup; prints plain and TLS ports."""
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("startos").setLevel(logging.CRITICAL)
    from startos.actors.tree import TreeConfig, start_tree
    from startos.protocol.certs import CreateAuthority, IssueServerCert
    from startos.protocol.proxy import Expose

    workdir = Path(tempfile.mkdtemp(prefix="startos-bench-proxy-"))
    only = frozenset({"store", "certs", "proxy"})
    tree = start_tree(TreeConfig(data_dir=workdir, host="127.0.0.1", port=None, mdns=False, only=only))
    try:
        tree.ask("certs", CreateAuthority(name="bench"))
        tree.ask("certs", IssueServerCert(hostname="bench.local"))
        target: dict[str, Any] = {"target_host": "127.0.0.1", "target_port": backend_port, "http": True}
        plain = tree.ask("proxy", Expose(key="plain", tls=False, **target)).port
        tls = tree.ask("proxy", Expose(key="tls", tls=True, **target)).port
        print(plain, tls, flush=True)
        _wait_for_signal()
    finally:
        tree.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# -- load --------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_SIZES = {"B": 1e-6, "KB": 1024 / 1e6, "MB": 1024**2 / 1e6, "GB": 1024**3 / 1e6}


def _latency(output: str, label: str) -> float:
    match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {label}% latency in wrk's output:\n{output}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, connections: int, seconds: int, *, close: bool = False) -> Load:
    """Run ``wrk -t1`` and parse requests/s, p50/p99 and transfer rate (MB/s, 10^6 bytes)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if close:
        command += ["-H", "Connection: close"]
    output = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    if "Non-2xx or 3xx responses" in output:
        raise RuntimeError(f"wrk reported non-2xx responses for {url}:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors is not None:
        connect, read, write, timeouts = (int(group) for group in errors.groups())
        # With "Connection: close" wrk counts every server-side close as a read error.
        if connect or write or timeouts or (read and not close):
            raise RuntimeError(f"wrk reported socket errors for {url}:\n{output}")
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    transfer = re.search(r"^Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", output, re.MULTILINE)
    if rps is None or transfer is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    mb = float(transfer.group(1)) * _SIZES[transfer.group(2)]
    return Load(float(rps.group(1)), _latency(output, "50"), _latency(output, "99"), mb)


# -- the benchmark -----------------------------------------------------------------------------

CASES = {  # name -> (path, connections, new connection per request)
    "hello, 1 connection": ("/", 1, False),
    "hello, 50 connections": ("/", 50, False),
    "hello, new connection per request (10 at a time)": ("/", 10, True),
    "64 MiB downloads, 1 connection": ("/big", 1, False),
}


def run(quick: bool) -> list[Table]:
    """The ``proxy`` table."""
    if shutil.which("wrk") is None:
        raise SystemExit("bench_proxy needs wrk (apt-get install -y wrk)")
    rounds, warm, seconds = (1, 1, 2) if quick else (3, 1, 3)
    results: dict[tuple[str, str], list[Load]] = {(kind, case): [] for kind in KINDS for case in CASES}
    with ServerProcess(__file__, "backend") as backend, ServerProcess(__file__, "proxy", str(backend.port)) as proxy:
        urls = {
            "direct": f"http://127.0.0.1:{backend.ports[0]}",
            "direct-tls": f"https://127.0.0.1:{backend.ports[1]}",
            "plain": f"http://127.0.0.1:{proxy.ports[0]}",
            "tls": f"https://127.0.0.1:{proxy.ports[1]}",
        }
        for number in range(rounds):
            for case, (path, connections, close) in CASES.items():
                for kind in KINDS:
                    log(f"proxy round {number + 1}/{rounds}: {case}, {kind}")
                    wrk(urls[kind] + path, connections, warm, close=close)
                    results[(kind, case)].append(wrk(urls[kind] + path, connections, seconds, close=close))

    def med(kind: str, case: str, attr: str) -> float:
        return median([getattr(load, attr) for load in results[(kind, case)]])

    table = Table("proxy", "ProxyActor in front of a gevent WSGI backend (wrk, 1 thread)")
    for case, (path, _connections, _close) in CASES.items():
        for kind in ("plain", "tls"):
            label = f"{LABELS[kind]}: {case}"
            base, name = BASELINES[kind]
            if path == "/big":
                table.add(Row(f"{label}, MB/s", med(kind, case, "mb_per_s"), name, med(base, case, "mb_per_s")))
                continue
            table.add(Row(f"{label}, req/s", med(kind, case, "rps"), name, med(base, case, "rps")))
            for pct in ("p50", "p99"):
                attr = f"{pct}_ms"
                table.add(Row(f"{label}, {pct} (ms)", med(kind, case, attr), name, med(base, case, attr)))
    table.notes += [
        f"load: `wrk -t1`; {rounds} round(s), each case a {warm} s warm-up then {seconds} s measured, direct, "
        "plain and TLS interleaved; medians over the rounds. MB/s are 10^6 bytes per second.",
        "backend: `NoDelayWSGIServer` with a WSGI app answering `hello` (5 bytes) or 64 MiB in 1 MiB chunks, "
        "in its own process (plain, and TLS through the HTTPS server's `_TlsWSGIServer`); the proxy "
        "(`Expose(..., http=True)`, plain and `tls=True` with the server certificate, ECDSA P-256) in another. "
        "Three processes share the cores when proxied, two when direct, so the ratios include the proxy's CPU "
        "competing with the backend and wrk.",
        "'new connection per request': `Connection: close`, so every request pays accept + backend connect "
        "(+ a full TLS handshake and the certificate check for TLS).",
    ]
    return [table]


def _worker_main() -> bool:
    """Handle the subprocess modes; ``False`` when this is a normal benchmark run."""
    if len(sys.argv) == 3 and sys.argv[1:] == ["--serve", "backend"]:
        serve_backend()
        return True
    if len(sys.argv) == 4 and sys.argv[1:3] == ["--serve", "proxy"]:
        serve_proxy(int(sys.argv[3]))
        return True
    return False


if __name__ == "__main__" and not _worker_main():
    bench_main(run, __doc__)

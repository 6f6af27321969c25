"""Stopping the tree leaves no greenlet running: every one an actor starts ends with its actor.

The tree is driven as users drive it (setup, login over HTTP, a sideloaded service installed,
started and reached through the proxy, live patch sockets), then stopped while connections and
subscriptions are still open. Afterwards no ``gevent.Greenlet`` the tree started may be alive:
not an actor's job, timer or reader, not a proxy pump, not a web request or its WebSocket
watcher, not a thread (under ``monkey.patch_all()`` a thread is a greenlet too).
"""

from __future__ import annotations

import gc
import json
import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
import websocket

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.calls import CallContext, RpcCall
from startos.protocol.proxy import ListExposed
from startos.s9pk import generate_signing_key, pack_package
from startos.s9pk.package import find_sources
from startos.supervision import describe_greenlet, running_greenlets
from startos.webui.server import GetAddress
from startos.webui.tls import GetTlsAddress

from .conftest import TreeHarness, set_up_server
from .rpc_client import Http

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "packages"
ROOT = CallContext(local_root=True)  # as the local start-cli
HW = "hello-world"


def web_request(greenlet: gevent.Greenlet) -> bool:
    """A greenlet of a web request: gevent's handler, or the thread of its WebSocket."""
    run = getattr(greenlet, "_run", None)
    if getattr(run, "__name__", "") == "_handle_and_close_when_done":
        return True
    thread = getattr(run, "__self__", None)
    return "simple_websocket" in str(getattr(thread, "name", ""))


def live_greenlets() -> list[gevent.Greenlet]:
    """Every gevent greenlet that runs or is scheduled to run (never-started ones never will)."""
    gc.collect()
    current = gevent.getcurrent()
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, gevent.Greenlet) and obj is not current and obj.started and not obj.dead
    ]


class Box(TreeHarness):
    """A whole tree (HTTP, HTTPS, proxy, services in plain processes) and an HTTP client."""

    def __init__(self, data_dir: Path) -> None:
        config = TreeConfig(data_dir=data_dir, port=0, tls_port=0, mdns=False, sandbox="process")
        super().__init__(start_tree(config))
        self.url = f"http://127.0.0.1:{self.ask('web', GetAddress()).port}"
        self.http = Http(self.url)

    def call(self, method: str, timeout: float = 120.0, **params: Any) -> Any:
        """Call through the facade as the local start-cli does."""
        return self.ask("facade", RpcCall(method=method, params=params, context=ROOT), timeout=timeout).result

    def wait_package(self, predicate: Any, timeout: float = 90.0) -> Any:
        watch = self.watch("/public/packageData")
        return watch.wait_for(lambda v: predicate(v.get(HW)), timeout=timeout).get(HW)


@pytest.fixture
def hello_world(tmp_path: Path) -> Path:
    out = tmp_path / "packed"
    out.mkdir()
    packed = pack_package(find_sources(EXAMPLES / HW), generate_signing_key(), output=out / f"{HW}.s9pk")
    source = tmp_path / f"{HW}.s9pk"
    shutil.copy(packed, source)
    return source


@pytest.fixture
def before() -> Iterator[set[int]]:
    """The greenlets alive before the test (another test's, the session's): not this tree's."""
    alive = live_greenlets()
    yield {id(g) for g in alive}
    del alive


def test_stopping_the_tree_leaves_no_greenlet_running(tmp_path: Path, hello_world: Path, before: set[int]) -> None:
    box = Box(tmp_path / "data")
    held: list[Any] = []  # sockets left open across the stop
    try:
        set_up_server(box.http)  # setup, then a login: the session sweeper, the certificate timer
        box.call("package.install", path=str(hello_world))
        box.wait_package(lambda p: p is not None and p["stateInfo"]["state"] == "installed")
        box.call("package.action.run", packageId=HW, actionId="show-credentials")  # its critical task
        box.wait_package(lambda p: not p["tasks"])
        box.call("package.start", id=HW)
        entry = box.wait_package(lambda p: (p["statusInfo"]["health"].get("web") or {}).get("result") == "success")
        port = entry["hosts"]["main"]["bindings"]["8080"]["net"]["assignedPort"]
        assert [e.port for e in box.ask("proxy", ListExposed())] == [port]

        # A live patch socket, and a subscription nobody claims (its claim expires in 30 s).
        result = box.http.call("db.subscribe", {"pointer": "/public/ui"})["result"]
        ws = websocket.create_connection(box.url.replace("http://", "ws://") + f"/ws/rpc/{result['guid']}", timeout=10)
        held.append(ws)
        box.http.call("db.put", {"pointer": "/public/ui/seen", "value": True})
        assert json.loads(ws.recv())["patch"] == [{"op": "add", "path": "/seen", "value": True}]
        assert "guid" in box.http.call("db.subscribe", {"pointer": "/public"})["result"]

        # Through the proxy: a kept-alive TLS connection (both pumps running) and a client that
        # never starts its handshake.
        tls = ssl._create_unverified_context().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        held.append(tls)
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.")
        held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        # The dashboard over HTTPS (served once setup issued the certificate), kept alive.
        https = ssl._create_unverified_context().wrap_socket(
            socket.create_connection(("127.0.0.1", box.ask("web-tls", GetTlsAddress()).port), timeout=10)
        )
        held.append(https)
        https.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
        assert https.recv(4096).startswith(b"HTTP/1.1 200")
        assert running_greenlets(), "the tree's actors run greenlets of their own"

        box.http.close()
        box.close()  # stops the tree gracefully (asserted), with all of the above still open
        owned = [f"{actor}: {describe_greenlet(g)}" for actor, g in running_greenlets()]
        assert not owned, f"greenlets of exited actors still run: {owned}"
        leftover = [g for g in live_greenlets() if id(g) not in before]
        stray = [describe_greenlet(g) for g in leftover]
        assert not stray, f"greenlets still run after the tree stopped: {stray}"
    finally:
        for sock in held:
            sock.close()
        if box.tree.root.is_alive():
            box.tree.stop(timeout=10)

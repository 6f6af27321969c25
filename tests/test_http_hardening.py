"""HTTP hardening (issue 10): the Host allowlist, the security headers, idle and slow connections."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import websocket
from click.testing import CliRunner

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.calls import GetServerHostname
from startos.protocol.certs import GetTlsAddress
from startos.protocol.store import DbDump
from startos.webui.server import GetAddress, WebServerActor

from .conftest import TreeHarness
from .daemon import BIN, Daemon
from .helpers import wait_until
from .rpc_client import Http
from .test_https import client_context, set_up_certs

EVIL = "evil.example"
SECURITY = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


# -- helpers ------------------------------------------------------------------------------------


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def fetch(
    port: int, path: str = "/", *, host: str | None = None, method: str = "GET", body: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection to 127.0.0.1:``port``, with ``Host: host`` if given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if host is not None:
            headers["Host"] = host  # http.client then sends this one instead of its own
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def rpc_body(method: str, params: Any = None) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}})


def raw_get(sock: socket.socket, path: str = "/", host: str = "127.0.0.1") -> http.client.HTTPResponse:
    """Send a keep-alive GET on ``sock`` and read its whole response."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response


def seconds_until_closed(sock: socket.socket, timeout: float) -> float | None:
    """Wait for the server to close ``sock`` (it sends nothing else); ``None`` if still open at the deadline."""
    started = time.monotonic()
    sock.settimeout(timeout)
    try:
        data = sock.recv(1)
    except TimeoutError:
        return None
    except (ConnectionResetError, ssl.SSLError):
        data = b""  # closed without a TLS close_notify: closed all the same
    assert data == b"", f"the server sent {data!r} unasked"
    return time.monotonic() - started


@contextmanager
def web_server(harness: TreeHarness, host: str = "127.0.0.1", **options: Any) -> Iterator[int]:
    """A second HTTP server for the tree (other timeouts, another address); yields its port."""
    ref = WebServerActor.start(harness.directory, host, 0, **options)
    try:
        address: Any = ref.ask(GetAddress(), timeout=10)
        yield address.port
    finally:
        ref.stop(timeout=10)


def lan_address() -> str:
    """A non-loopback IPv4 address of this machine: requests to it come from a LAN peer."""
    import ifaddr

    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith(("127.", "169.254.")):
                return ip.ip
    pytest.skip("this machine has no non-loopback IPv4 address")


def assert_security_headers(headers: dict[str, str], *, hsts: bool = False) -> None:
    from startos.webui.hardening import CONTENT_SECURITY_POLICY

    for name, value in SECURITY.items():
        assert headers.get(name) == value, (name, headers)
    assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY
    if hsts:
        assert headers.get("strict-transport-security") == "max-age=31536000"
    else:
        assert "strict-transport-security" not in headers


# -- the allowlist as a plain object ------------------------------------------------------------


class FakeStore:
    """Stands in for the directory: answers the facade's hostname question and counts the asks."""

    def __init__(self, hostname: str | None) -> None:
        self.hostname = hostname
        self.asks = 0

    def ask(self, name: str, message: object, timeout: float | None = None) -> str | None:
        assert name == "facade" and message == GetServerHostname()
        self.asks += 1
        return self.hostname


def allowlist(store: FakeStore, names: tuple[str, ...] = (), refresh_interval: float = 3600.0) -> Any:
    from startos.webui.hardening import HostAllowlist

    return HostAllowlist(store, names, refresh_interval=refresh_interval)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1:5959", ("127.0.0.1", True)),
        ("192.168.1.20", ("192.168.1.20", True)),
        ("[::1]:5959", ("::1", True)),
        ("[FE80::1]", ("fe80::1", True)),
        ("::1", ("::1", True)),
        ("Box.Local.:443", ("box.local", False)),
        ("localhost", ("localhost", False)),
        ("127.1", ("127.1", False)),  # not an address in canonical form: judged as a name
        ("[::1", None),
        ("[not-ip]:80", None),
        ("[::1]x", None),
        ("box.local:http", None),
        ("box.local:123456", None),
        (":80", None),
        ("", None),
    ],
)
def test_host_header_parsing(host: str, expected: tuple[str, bool] | None) -> None:
    from startos.webui.hardening import host_name

    assert host_name(host) == expected


def test_addresses_localhost_and_given_names_are_allowed_without_asking_the_store() -> None:
    store = FakeStore("box")
    hosts = allowlist(store, ("proxy.example.com",))
    for host in ("127.0.0.1:5959", "10.0.0.7", "[::1]:80", "[2001:db8::5]", "localhost:5959", "app.localhost"):
        assert hosts.allows(host), host
    assert hosts.allows("Proxy.Example.COM:8443")
    assert store.asks == 0


def test_unknown_names_are_refused_and_cost_one_store_ask_per_interval() -> None:
    store = FakeStore("box")
    hosts = allowlist(store, refresh_interval=3600.0)
    for i in range(100):
        assert not hosts.allows(f"{EVIL}-{i}:5959")
    assert store.asks == 1  # the first miss looked; the others wait for the interval
    assert hosts.allows("box.local:5959")  # learned by that one look
    for host in ("", "[::1", "box.local:x", "notlocalhost", "box.local.evil.example"):
        assert not hosts.allows(host), host
    assert store.asks == 1


def test_the_mdns_name_follows_the_hostname() -> None:
    store = FakeStore(None)  # before setup
    hosts = allowlist(store, refresh_interval=0.0)
    assert not hosts.allows("box.local")
    store.hostname = "box"  # setup.execute
    assert hosts.allows("box.local") and hosts.allows("BOX.local.:5959")
    asks = store.asks
    assert hosts.allows("box.local") and store.asks == asks  # a known Host is a set lookup
    store.hostname = "renamed"  # server.set-hostname
    assert hosts.allows("renamed.local")
    assert not hosts.allows("box.local")  # the old name is dropped on the next look
    assert hosts.names() == frozenset({"renamed.local"})


def test_learned_names_stay_allowed() -> None:
    hosts = allowlist(FakeStore(None))
    hosts.learn(["my-box.local", "localhost", "not a name"])
    hosts.learn(["renamed.local"])
    assert hosts.allows("my-box.local:5443") and hosts.allows("renamed.local")
    assert hosts.names() == frozenset({"my-box.local", "renamed.local", "localhost"})


def test_allowed_host_names_are_checked() -> None:
    from startos.webui.hardening import normalize_host_name

    assert normalize_host_name(" Proxy.Example.com. ") == "proxy.example.com"
    for bad in ("", "http://x", "x:8080", "*.example.com", "a..b", "-x.example", "x/y", "[::1]"):
        with pytest.raises(ValueError, match="is not a host name"):
            normalize_host_name(bad)


def test_the_csp_allows_exactly_the_dashboards_import_map(tmp_path: Path) -> None:
    from startos.webui.hardening import CONTENT_SECURITY_POLICY, import_map_hashes

    index = tmp_path / "index.html"
    body = '\n{"imports": {"x": "/static/x.js"}}\n'
    index.write_text(f'<script type="importmap">{body}</script><script>alert(1)</script>')
    expected = "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
    assert import_map_hashes(index) == [expected]
    assert import_map_hashes(tmp_path / "missing.html") == []
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    script_src = directives["script-src"].split()
    assert script_src[0] == "'self'" and len(script_src) == 2 and script_src[1].startswith("'sha256-")
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


# -- the Host check in a running server ---------------------------------------------------------


def test_a_rebound_host_is_refused_with_421(web_tree: TreeHarness) -> None:
    port = port_of(web_tree.url)  # type: ignore[attr-defined]
    status, headers, body = fetch(port, "/", host=f"{EVIL}:{port}")
    assert status == 421 and headers["content-type"] == "application/json"
    assert b"\n" not in body.strip()
    error = json.loads(body)["error"]
    assert EVIL in error and "--allow-host" in error
    # The API answers with a JSON-RPC error object, and the anonymous call is not run.
    status, _, body = fetch(
        port, "/rpc/v1", host=EVIL, method="POST", body=rpc_body("setup.execute", {"serverName": "x", "password": "y"})
    )
    assert status == 421
    reply = json.loads(body)
    assert reply["jsonrpc"] == "2.0" and reply["id"] is None and reply["error"]["code"] == 38
    assert EVIL in reply["error"]["data"]["details"]
    assert web_tree.ask("store", DbDump(pointer="/public/serverInfo/id")).value is None  # still not set up


def test_addresses_and_localhost_are_served(web_tree: TreeHarness) -> None:
    port = port_of(web_tree.url)  # type: ignore[attr-defined]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "dashboard.localhost", f"[::1]:{port}", "192.168.1.20"):
        status, _, _ = fetch(port, "/", host=host)
        assert status == 200, host


def test_the_servers_mdns_name_is_served_and_follows_set_hostname(session_http: Http, web_tree: TreeHarness) -> None:
    port = port_of(web_tree.url)  # type: ignore[attr-defined]
    assert fetch(port, "/", host=f"my-cool-server.local:{port}")[0] == 200  # set up as "My Cool Server"
    assert "error" not in session_http.call("server.set-hostname", {"name": "Renamed Box"})
    # A new name is looked up at most once a second: the first asks may still be refused.
    wait_until(lambda: fetch(port, "/", host="renamed-box.local")[0] == 200, what="the new name served")
    assert fetch(port, "/", host=f"my-cool-server.local:{port}")[0] == 421


def test_a_request_without_host_is_served_only_to_loopback(web_tree: TreeHarness) -> None:
    with socket.create_connection(("127.0.0.1", port_of(web_tree.url)), timeout=10) as sock:  # type: ignore[attr-defined]
        sock.sendall(b"GET /nothing HTTP/1.0\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 404  # past the Host check: the route is what is missing
    address = lan_address()
    with web_server(web_tree, address) as port, socket.create_connection((address, port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 421 and b"only accepted from this machine" in response.read()


def test_dns_rebinding_from_the_lan_cannot_reach_the_setup_wizard(web_tree: TreeHarness) -> None:
    address = lan_address()
    with web_server(web_tree, address) as port:
        conn = http.client.HTTPConnection(address, port, timeout=10)
        try:
            # Before setup, plain HTTP from the LAN serves the wizard (and setup.execute) by design...
            conn.request("POST", "/rpc/v1", body=rpc_body("echo", {"message": "hi"}), headers=_json_headers())
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["result"] == "hi"
            # ...but not to a page whose name was rebound to this address.
            headers = {**_json_headers(), "Host": f"{EVIL}:{port}"}
            conn.request("POST", "/rpc/v1", body=rpc_body("setup.execute", {"serverName": "x"}), headers=headers)
            response = conn.getresponse()
            assert response.status == 421 and json.loads(response.read())["error"]["code"] == 38
        finally:
            conn.close()


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_allowed_hosts_from_the_tree_config(data_dir: Path) -> None:
    harness = TreeHarness(
        start_tree(TreeConfig(data_dir=data_dir, port=0, mdns=False, allowed_hosts=("proxy.example.com",)))
    )
    try:
        port = harness.ask("web", GetAddress()).port
        assert fetch(port, "/", host="proxy.example.com:443")[0] == 200
        assert fetch(port, "/", host="other.example.com")[0] == 421
    finally:
        harness.close()


def test_startd_refuses_a_bad_allow_host() -> None:
    from startos.cli.startd import main

    result = CliRunner().invoke(main, ["--allow-host", "https://proxy.example.com"])
    assert result.exit_code == 2 and "is not a host name" in result.output
    help_text = CliRunner().invoke(main, ["--help"]).output
    assert "--allow-host NAME" in help_text


class _StartdWith(Daemon):
    """``Daemon`` with extra startd flags."""

    def __init__(self, data_dir: Path, log: Path, *flags: str) -> None:
        self.data_dir = data_dir
        self.log_path = log
        self.url = ""
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        argv = [str(BIN / "startd"), "--data-dir", str(data_dir), "--bind", "127.0.0.1:0", "--log-format", "json"]
        self.proc = subprocess.Popen(
            [*argv, "--no-mdns", *flags],
            stdout=self._log,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


@pytest.mark.e2e
def test_startd_allow_host(tmp_path: Path) -> None:
    daemon = _StartdWith(tmp_path / "data", tmp_path / "startd.log", "--allow-host", "Proxy.Example.com")
    try:
        port = port_of(daemon.wait_ready())
        assert fetch(port, "/", host="proxy.example.com")[0] == 200
        assert fetch(port, "/", host=EVIL)[0] == 421
    finally:
        daemon.stop()


# -- security headers ---------------------------------------------------------------------------


def test_every_http_response_carries_the_security_headers(
    web_tree: TreeHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = port_of(web_tree.url)  # type: ignore[attr-defined]
    for method, path, expected in (
        ("GET", "/", 200),
        ("GET", "/static/js/app.js", 200),
        ("GET", "/nothing-here", 404),
        ("GET", "/rpc/v1", 405),
    ):
        status, headers, _ = fetch(port, path, method=method)
        assert status == expected, path
        assert_security_headers(headers)
    status, headers, _ = fetch(port, "/rpc/v1", method="POST", body=rpc_body("echo", {"message": "x"}))
    assert status == 200
    assert_security_headers(headers)
    status, headers, _ = fetch(port, "/", host=EVIL)
    assert status == 421
    assert_security_headers(headers)

    def broken(_directory: Any) -> None:
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr("startos.webui.app._root_ca_pem", broken)
    caplog.set_level("CRITICAL", logger="startos.webui.app")
    status, headers, body = fetch(port, "/static/local-root-ca.crt")
    assert status == 500 and b"internal error" in body
    assert_security_headers(headers)  # bottle rebuilds a 500's headers: the server adds them


def test_the_plain_http_redirect_carries_the_security_headers(session_http: Http, web_tree: TreeHarness) -> None:
    address = lan_address()
    with web_server(web_tree, address, tls_port=5443) as port:
        conn = http.client.HTTPConnection(address, port, timeout=10)
        try:
            conn.request("GET", "/some/page?x=1")
            response = conn.getresponse()
            response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
    assert response.status == 301 and headers["location"] == f"https://{address}:5443/some/page?x=1"
    assert_security_headers(headers)


@pytest.fixture
def tls_harness(data_dir: Path) -> Iterator[TreeHarness]:
    """HTTP and HTTPS on free loopback ports, not set up (``tls_port``)."""
    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=0, tls_port=0, mdns=False)))
    harness.tls_port = harness.ask("web-tls", GetTlsAddress()).port  # type: ignore[attr-defined]
    yield harness
    harness.close()


def tls_connection(port: int, ca_file: Path, name: str) -> http.client.HTTPSConnection:
    """An HTTPS connection to loopback that verifies (and sends SNI and Host for) ``name``."""
    conn = http.client.HTTPSConnection(name, port, context=client_context(ca_file), timeout=10)
    conn.sock = client_context(ca_file).wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=name
    )
    return conn


def test_hsts_is_sent_over_https_on_port_443_only() -> None:
    from startos.webui.hardening import security_headers, sends_hsts

    assert sends_hsts(secure=True, port=443)
    assert not sends_hsts(secure=True, port=5443)  # http://box.local:5959 would become https://…:5959
    assert not sends_hsts(secure=False, port=443)
    assert dict(security_headers(hsts=True))[b"Strict-Transport-Security"] == b"max-age=31536000"
    assert b"Strict-Transport-Security" not in dict(security_headers(hsts=False))


def test_https_answers_to_its_certificates_names(tls_harness: TreeHarness, tmp_path: Path) -> None:
    _, cert, ca_file = set_up_certs(tls_harness, tmp_path)  # my-cool-server.local; no hostname in the state
    conn = tls_connection(tls_harness.tls_port, ca_file, cert.hostname)  # type: ignore[attr-defined]
    try:
        for path, host, expected in (
            ("/", None, 200),
            ("/nothing-here", None, 404),
            ("/", EVIL, 421),  # refused over HTTPS too, on the same connection
        ):
            conn.request("GET", path, headers={"Host": host} if host else {})
            response = conn.getresponse()
            response.read()
            assert response.status == expected, (path, host)
            # An ephemeral port, not 443: no HSTS (see test_hsts_is_sent_over_https_on_port_443_only).
            assert_security_headers({k.lower(): v for k, v in response.getheaders()})
    finally:
        conn.close()


# -- idle and slow connections ------------------------------------------------------------------


def test_an_idle_keep_alive_connection_is_closed(web_tree: TreeHarness) -> None:
    with web_server(web_tree, idle_timeout=0.5) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        assert raw_get(sock, "/static/img/logo.svg").status == 200
        assert raw_get(sock, "/static/img/logo.svg").status == 200  # keep-alive still works
        waited = seconds_until_closed(sock, timeout=10)
    assert waited is not None, "the server kept the idle connection open"
    assert waited >= 0.3  # the idle timeout, not an immediate close


def test_a_slow_client_is_cut_off_after_the_header_timeout(web_tree: TreeHarness) -> None:
    with (
        web_server(web_tree, idle_timeout=30, header_timeout=0.5) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # Slowloris: one more header byte every 50 ms, each read well within any per-read timeout.
        closed = False
        while not closed and time.monotonic() - started < 10:
            try:
                sock.sendall(b"X")
            except OSError:
                break  # reset: closed
            closed = seconds_until_closed(sock, timeout=0.05) is not None
        elapsed = time.monotonic() - started
    assert elapsed < 10, "the server waited forever for the headers"
    assert elapsed >= 0.4


def test_a_websocket_outlives_the_idle_timeout(web_tree: TreeHarness, session_http: Http) -> None:
    result = session_http.call("db.subscribe", {"pointer": "/public/ui"})["result"]
    with web_server(web_tree, idle_timeout=0.3) as port:
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/rpc/{result['guid']}", timeout=10)
        try:
            # A keep-alive connection opened after the socket: once it is closed as idle, the
            # socket has been quiet for longer than the idle timeout too.
            with socket.create_connection(("127.0.0.1", port)) as control:
                raw_get(control, "/static/img/logo.svg")
                assert seconds_until_closed(control, timeout=10) is not None
            session_http.call("db.put", {"pointer": "/public/ui/after", "value": "idle"})
            patch = json.loads(ws.recv())["patch"]
            assert patch == [{"op": "add", "path": "/after", "value": "idle"}]
        finally:
            ws.close()


def test_an_idle_https_connection_is_closed(tls_harness: TreeHarness, tmp_path: Path) -> None:
    from startos.webui.tls import TlsWebServerActor

    _, cert, ca_file = set_up_certs(tls_harness, tmp_path)
    ref = TlsWebServerActor.start(tls_harness.directory, "127.0.0.1", 0, idle_timeout=0.5)
    try:

        def address() -> Any:
            return ref.ask(GetTlsAddress(), timeout=10)

        port = address().port
        wait_until(lambda: address().listening, what="HTTPS listening")
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with client_context(ca_file).wrap_socket(raw, server_hostname=cert.hostname) as sock:
            assert raw_get(sock, "/", host=cert.hostname).status == 200
            waited = seconds_until_closed(sock, timeout=10)
        assert waited is not None and waited >= 0.3
    finally:
        ref.stop(timeout=10)

"""ProxyActor ("proxy"): services' interfaces forwarded on loopback, plain and TLS, with switches."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIServer
from gevent.server import StreamServer
from pykka import ActorRef

from startos.actors.proxy import ProxyActor
from startos.net.proxy_io import BAD_GATEWAY, parse_host_header, peek_http_host
from startos.protocol.certs import CreateAuthority, GetServerCert, IssueServerCert, ServerCertChanged
from startos.protocol.errors import ErrorKind
from startos.protocol.proxy import (
    Expose,
    Exposed,
    ExposeError,
    ListExposed,
    NotExposed,
    PortInUse,
    ProxyStats,
    SetDisabled,
    Unexpose,
)

from .conftest import TreeHarness
from .helpers import wait_until

HOSTNAME = "my-cool-server.local"
TIMEOUT = 10.0
LOOP = "127.0.0.1"


# -- backends -----------------------------------------------------------------------------------


class Echo:
    """A TCP server on loopback: says ``hello <name>\\n`` (when named), then echoes until EOF."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port: int = self.server.server_port

    def _handle(self, sock: socket.socket, _address: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.name:
                sock.sendall(f"hello {self.name}\n".encode())
            buffer = bytearray(65536)
            while True:
                count = sock.recv_into(buffer)
                if not count:
                    break
                sock.sendall(memoryview(buffer)[:count])
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            sock.close()

    def stop(self) -> None:
        self.server.stop(timeout=2)


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.stop()


@pytest.fixture
def hello_http() -> Iterator[int]:
    """A WSGI app on loopback answering ``hello`` to every request; yields its port."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = f"hello {environ.get('HTTP_HOST', '')}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    server = WSGIServer(("127.0.0.1", 0), app, log=None, error_log=None)
    server.start()
    yield server.server_port
    server.stop(timeout=2)


def closed_port() -> int:
    """A loopback port nothing listens on (bound then closed: connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


# -- clients ------------------------------------------------------------------------------------


def connect(port: int, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def tls_connect(port: int, ca_file: Path, server_hostname: str = HOSTNAME, host: str = "127.0.0.1") -> ssl.SSLSocket:
    """A verifying TLS client: trusts only the root CA, checks ``server_hostname`` (SNI for names)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    return context.wrap_socket(connect(port, host), server_hostname=server_hostname)


def recv_exactly(sock: Any, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        data = sock.recv(min(65536, size - len(chunks)))
        if not data:
            raise AssertionError(f"connection closed after {len(chunks)} of {size} bytes")
        chunks += data
    return bytes(chunks)


def recv_line(sock: Any) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        line += data
    return bytes(line)


def round_trip(sock: Any, payload: bytes) -> None:
    """Send ``payload`` while reading it back concurrently; check the echo byte for byte."""
    sender = gevent.spawn(sock.sendall, payload)
    received = recv_exactly(sock, len(payload))
    sender.get(timeout=TIMEOUT)
    assert received == payload


def is_closed(sock: Any) -> bool:
    """True when the peer closed (EOF or reset) without sending anything; waits up to TIMEOUT."""
    try:
        data = sock.recv(1024)
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    return data == b""


def http_get(sock: Any, host: str) -> bytes:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    answer = bytearray()
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not data:
            break
        answer += data
    return bytes(answer)


# -- the tree, its certificate and extra proxies ------------------------------------------------


@pytest.fixture
def ca_file(tree: TreeHarness, tmp_path: Path) -> Path:
    """What setup does to the certificates: the root CA and the server certificate."""
    ca = tree.ask("certs", CreateAuthority(name="my-cool-server"))
    tree.ask("certs", IssueServerCert(hostname=HOSTNAME))
    path = tmp_path / "root-ca.crt"
    path.write_text(ca.pem)
    return path


@pytest.fixture
def start_proxy(tree: TreeHarness) -> Iterator[Callable[..., ActorRef[Any]]]:
    """Start extra ProxyActors on the tree's directory (another listen host); stopped at the end."""
    refs: list[ActorRef[Any]] = []

    def start(**options: Any) -> ActorRef[Any]:
        ref = ProxyActor.start(tree.directory, **options)
        refs.append(ref)
        return ref

    yield start
    for ref in refs:
        if ref.is_alive():
            ref.stop()


def ask(proxy: ActorRef[Any], message: object) -> Any:
    return proxy.ask(message, timeout=TIMEOUT)


def exposed(tree: TreeHarness, key: str) -> Any:
    return next(info for info in tree.ask("proxy", ListExposed()) if info.key == key)


def open_connections(tree: TreeHarness, key: str) -> int:
    return int(exposed(tree, key).connections)


# -- plain TCP ----------------------------------------------------------------------------------


def test_plain_round_trip_of_8_mib_each_way_is_byte_exact(tree: TreeHarness, echo: Echo) -> None:
    reply = tree.ask("proxy", Expose(key="svc/main", target_host=LOOP, target_port=echo.port, tls=False))
    assert isinstance(reply, Exposed) and reply.key == "svc/main" and reply.port > 0
    payload = os.urandom(8 * 1024 * 1024)
    sock = connect(reply.port)
    try:
        round_trip(sock, payload)
        assert open_connections(tree, "svc/main") == 1
        sock.shutdown(socket.SHUT_WR)  # half-close reaches the backend, whose close comes back
        assert sock.recv(1) == b""
    finally:
        sock.close()
    wait_until(lambda: open_connections(tree, "svc/main") == 0, what="connection gone")
    stats = tree.ask("proxy", ProxyStats())
    assert stats.bytes_in == stats.bytes_out == len(payload)
    assert stats.accepted == 1 and stats.failed == 0 and stats.refused == 0


def test_the_listing_shows_every_expose(tree: TreeHarness, echo: Echo) -> None:
    tree.ask("proxy", Expose(key="b", target_host=LOOP, target_port=echo.port, tls=True, http=True))
    port = tree.ask(
        "proxy", Expose(key="a", target_host=LOOP, target_port=echo.port, tls=False, hostnames=("A.Local",))
    ).port
    listing = tree.ask("proxy", ListExposed())
    assert [info.key for info in listing] == ["a", "b"]
    assert listing[0].port == port and listing[0].target_port == echo.port and listing[0].hostnames == ("a.local",)
    assert (listing[1].tls, listing[1].http, listing[1].connections) == (True, True, 0)


def test_a_wanted_port_is_used(tree: TreeHarness, echo: Echo) -> None:
    wanted = closed_port()
    reply = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False, listen_port=wanted))
    assert reply.port == wanted
    sock = connect(wanted)
    try:
        round_trip(sock, b"ping")
    finally:
        sock.close()


def test_retarget_keeps_the_listener_and_open_connections(tree: TreeHarness) -> None:
    first, second = Echo("first"), Echo("second")
    try:
        port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=first.port, tls=False)).port
        old = connect(port)
        assert recv_line(old) == b"hello first\n"
        again = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=second.port, tls=False))
        assert again.port == port
        new = connect(port)
        try:
            assert recv_line(new) == b"hello second\n"
            round_trip(old, b"still the first backend")  # the open connection was not touched
            assert exposed(tree, "k").target_port == second.port
        finally:
            new.close()
            old.close()
    finally:
        first.stop()
        second.stop()


def test_a_new_listen_port_moves_the_key(tree: TreeHarness, echo: Echo) -> None:
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False)).port
    tree.ask("proxy", SetDisabled(key="k", disabled=("10.9.8.7",)))
    wanted = closed_port()
    moved = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False, listen_port=wanted))
    assert moved.port == wanted != port
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    assert exposed(tree, "k").disabled == ("10.9.8.7",)


def test_unexpose_closes_the_listener_and_every_open_connection(tree: TreeHarness, echo: Echo) -> None:
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False)).port
    socks = [connect(port) for _ in range(3)]
    try:
        for sock in socks:
            round_trip(sock, b"before")
        wait_until(lambda: open_connections(tree, "k") == 3, what="three connections")
        assert tree.ask("proxy", Unexpose(key="k")) is True
        for sock in socks:
            assert is_closed(sock)
        with pytest.raises(ConnectionRefusedError):
            connect(port)
        assert tree.ask("proxy", ListExposed()) == []
        assert tree.ask("proxy", Unexpose(key="k")) is False
    finally:
        for sock in socks:
            sock.close()


def test_stopping_the_actor_closes_everything(tree: TreeHarness, echo: Echo) -> None:
    proxy = ProxyActor.start(tree.directory, listen_host="127.0.0.1")
    try:
        port = ask(proxy, Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False)).port
        sock = connect(port)
        round_trip(sock, b"x")
    finally:
        proxy.stop()
    try:
        assert is_closed(sock)
        with pytest.raises(ConnectionRefusedError):
            connect(port)
    finally:
        sock.close()


# -- errors -------------------------------------------------------------------------------------


def test_a_port_in_use_is_a_clear_error_and_changes_nothing(tree: TreeHarness, echo: Echo) -> None:
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} is already in use") as info:
            tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False, listen_port=port))
        assert info.value.kind == ErrorKind.NETWORK
        assert tree.ask("proxy", ListExposed()) == []
        # An existing key that asks to move onto a taken port keeps its old listener.
        old = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False)).port
        with pytest.raises(PortInUse):
            tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False, listen_port=port))
        assert exposed(tree, "k").port == old
        sock = connect(old)
        round_trip(sock, b"still here")
        sock.close()
    finally:
        taken.close()


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (Expose(key="", target_host=LOOP, target_port=80, tls=False), "key"),
        (Expose(key="k", target_host=LOOP, target_port=0, tls=False), "target port 0"),
        (Expose(key="k", target_host=LOOP, target_port=80, tls=False, listen_port=70000), "listen port 70000"),
        (Expose(key="k", target_host="not a host", target_port=80, tls=False), "target host"),
        (Expose(key="k", target_host=LOOP, target_port=80, tls=False, hostnames=("a b",)), "hostnames"),
    ],
)
def test_bad_expose_parameters_are_typed_errors(tree: TreeHarness, message: Expose, error: str) -> None:
    with pytest.raises(ExposeError, match=error) as info:
        tree.ask("proxy", message)
    assert info.value.kind == ErrorKind.INVALID_PARAMS
    assert tree.ask("proxy", ListExposed()) == []


def test_set_disabled_checks_its_input(tree: TreeHarness, echo: Echo) -> None:
    with pytest.raises(NotExposed):
        tree.ask("proxy", SetDisabled(key="nope", disabled=()))
    tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False))
    tree.ask("proxy", SetDisabled(key="k", disabled=("::FFFF:192.168.1.5", "My-Server.Local.", "[::1]")))
    assert exposed(tree, "k").disabled == ("192.168.1.5", "::1", "my-server.local")
    with pytest.raises(ExposeError, match="neither an IP address nor a hostname"):
        tree.ask("proxy", SetDisabled(key="k", disabled=("10.0.0.1", "no such thing!")))
    assert exposed(tree, "k").disabled == ("192.168.1.5", "::1", "my-server.local")


def test_a_backend_that_is_down_closes_the_client(tree: TreeHarness) -> None:
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=closed_port(), tls=False)).port
    sock = connect(port)
    try:
        sock.sendall(b"anyone there?")
        assert is_closed(sock)
    finally:
        sock.close()
    assert tree.ask("proxy", ProxyStats()).failed == 1


def test_an_http_backend_that_is_down_gets_a_502(tree: TreeHarness, ca_file: Path) -> None:
    down = closed_port()
    plain = tree.ask("proxy", Expose(key="p", target_host=LOOP, target_port=down, tls=False, http=True)).port
    secure = tree.ask("proxy", Expose(key="s", target_host=LOOP, target_port=down, tls=True, http=True)).port
    sock = connect(plain)
    try:
        assert http_get(sock, "127.0.0.1") == BAD_GATEWAY
    finally:
        sock.close()
    tls = tls_connect(secure, ca_file)
    try:
        assert http_get(tls, HOSTNAME) == BAD_GATEWAY
    finally:
        tls.close()


def test_the_502_answer_is_well_formed() -> None:
    head, body = BAD_GATEWAY.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 502 ")
    assert f"Content-Length: {len(body)}".encode() in head


def test_peeking_waits_for_the_host_line_and_consumes_nothing() -> None:
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"GET / HTTP/1.1\r\nAccept: */*\r\n")
        job = gevent.spawn(peek_http_host, ours, TIMEOUT, TIMEOUT)
        gevent.idle()
        assert not job.ready()  # half a header block: still looking
        theirs.sendall(b"Host: X.Local:8080\r\n\r\n")
        assert job.get(timeout=TIMEOUT) == "x.local"
        assert ours.recv(1024) == b"GET / HTTP/1.1\r\nAccept: */*\r\nHost: X.Local:8080\r\n\r\n"
    finally:
        ours.close()
        theirs.close()


def test_peeking_gives_up_on_silence_and_on_endless_headers() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert peek_http_host(ours, TIMEOUT, first_byte_timeout=0.05) is None
        theirs.sendall(b"GET / HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 9000 + b"\r\n")
        assert peek_http_host(ours, TIMEOUT, TIMEOUT) is None  # 8 KiB and no Host: judged by address
        assert ours.gettimeout() is None
    finally:
        ours.close()
        theirs.close()


def test_host_header_parsing() -> None:
    assert parse_host_header(b"GET / HTTP/1.1\r\nhOsT: My-Server.local:8443\r\n") == ("my-server.local", True)
    assert parse_host_header(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n") == ("::1", True)
    assert parse_host_header(b"GET / HTTP/1.1\r\nAccept: */*\r\nHo") == (None, False)
    assert parse_host_header(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n") == (None, True)


# -- TLS ----------------------------------------------------------------------------------------


def test_tls_round_trip_verifies_against_the_root_ca(tree: TreeHarness, echo: Echo, ca_file: Path) -> None:
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=True)).port
    for name in (HOSTNAME, "127.0.0.1", "localhost"):
        sock = tls_connect(port, ca_file, server_hostname=name)
        try:
            assert sock.version() in ("TLSv1.2", "TLSv1.3")
            round_trip(sock, os.urandom(1024 * 1024))
        finally:
            sock.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_connect(port, ca_file, server_hostname="somebody-else.local")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(tree: TreeHarness, echo: Echo, ca_file: Path) -> None:
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=True)).port
    context = ssl.create_default_context(cafile=str(ca_file))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as info:
        context.wrap_socket(connect(port), server_hostname=HOSTNAME).close()
    assert "ALERT_PROTOCOL_VERSION" in str(info.value)


def test_tls_before_setup_binds_but_refuses_then_serves_once_a_certificate_exists(
    tree: TreeHarness, echo: Echo, tmp_path: Path
) -> None:
    assert tree.ask("certs", GetServerCert()) is None
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=True)).port
    sock = connect(port)
    try:
        sock.sendall(b"\x16\x03\x01\x00\x05hello")  # the start of a ClientHello
        assert is_closed(sock)
    finally:
        sock.close()
    assert tree.ask("proxy", ProxyStats()).refused == 1
    ca = tree.ask("certs", CreateAuthority(name="my-cool-server"))
    cert = tree.ask("certs", IssueServerCert(hostname=HOSTNAME))
    tree.ask("proxy", ServerCertChanged(cert_path=cert.cert_path, key_path=cert.key_path))
    (tmp_path / "ca.crt").write_text(ca.pem)
    tls = tls_connect(port, tmp_path / "ca.crt")
    try:
        round_trip(tls, b"now it answers")
    finally:
        tls.close()


def test_a_reissued_certificate_is_served_to_new_connections(tree: TreeHarness, echo: Echo, ca_file: Path) -> None:
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=True)).port
    first = tls_connect(port, ca_file)
    old_der = first.getpeercert(binary_form=True)
    cert = tree.ask("certs", IssueServerCert(hostname="renamed.local"))
    tree.ask("proxy", ServerCertChanged(cert_path=cert.cert_path, key_path=cert.key_path))
    second = tls_connect(port, ca_file, server_hostname="renamed.local")
    try:
        assert second.getpeercert(binary_form=True) != old_der
        round_trip(first, b"the old connection keeps its session")
        round_trip(second, b"the new one has the new certificate")
    finally:
        first.close()
        second.close()


# -- disabled addresses -------------------------------------------------------------------------


def test_a_disabled_ip_address_refuses_while_another_still_answers(
    start_proxy: Callable[..., ActorRef[Any]], echo: Echo
) -> None:
    proxy = start_proxy(listen_host="0.0.0.0")  # 127.0.0.1 and 127.0.0.2 are both loopback
    port = ask(proxy, Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False)).port
    ask(proxy, SetDisabled(key="k", disabled=("127.0.0.2",)))
    refused = connect(port, "127.0.0.2")
    allowed = connect(port, "127.0.0.1")
    try:
        assert is_closed(refused)
        round_trip(allowed, b"this address is enabled")
    finally:
        refused.close()
        allowed.close()
    ask(proxy, SetDisabled(key="k", disabled=()))
    again = connect(port, "127.0.0.2")
    other = connect(port, "127.0.0.1")
    try:
        round_trip(again, b"enabled again")
        round_trip(other, b"on the other address")
        ask(proxy, SetDisabled(key="k", disabled=("127.0.0.2",)))
        assert is_closed(again)  # an open connection on an address turned off ends too
        round_trip(other, b"the other address is untouched")
    finally:
        again.close()
        other.close()
    assert ask(proxy, ProxyStats()).refused == 1


def test_dual_stack_compares_ipv4_clients_as_ipv4(start_proxy: Callable[..., ActorRef[Any]], echo: Echo) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        proxy = start_proxy(listen_host="::")
        port = ask(proxy, Expose(key="k", target_host=LOOP, target_port=echo.port, tls=False)).port
    except PortInUse as exc:
        pytest.skip(f"cannot bind [::]: {exc}")
    ask(proxy, SetDisabled(key="k", disabled=("127.0.0.1",)))
    refused = connect(port, "127.0.0.1")  # seen as ::ffff:127.0.0.1 by the listener
    allowed = connect(port, "::1")
    try:
        assert is_closed(refused)
        round_trip(allowed, b"IPv6 is enabled")
    finally:
        refused.close()
        allowed.close()


def test_a_disabled_hostname_refuses_tls_by_sni_while_the_ip_works(
    tree: TreeHarness, echo: Echo, ca_file: Path
) -> None:
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=echo.port, tls=True)).port
    tree.ask("proxy", SetDisabled(key="k", disabled=(HOSTNAME,)))
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        tls_connect(port, ca_file, server_hostname=HOSTNAME)
    sock = tls_connect(port, ca_file, server_hostname="127.0.0.1")  # an IP: no SNI, judged by address
    try:
        round_trip(sock, b"by address")
    finally:
        sock.close()
    # The other way round: the address is off, the name still answers (it resolves to it).
    tree.ask("proxy", SetDisabled(key="k", disabled=("127.0.0.1",)))
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        tls_connect(port, ca_file, server_hostname="127.0.0.1")
    named = tls_connect(port, ca_file, server_hostname=HOSTNAME)
    try:
        round_trip(named, b"by name")
    finally:
        named.close()
    assert tree.ask("proxy", ProxyStats()).refused == 2


def test_a_disabled_hostname_refuses_plain_http_by_host_header(tree: TreeHarness, hello_http: int) -> None:
    port = tree.ask("proxy", Expose(key="k", target_host=LOOP, target_port=hello_http, tls=False, http=True)).port
    tree.ask("proxy", SetDisabled(key="k", disabled=(HOSTNAME,)))
    refused = connect(port)
    try:
        assert http_get(refused, f"{HOSTNAME}:{port}") == b""
    finally:
        refused.close()
    allowed = connect(port)
    try:
        answer = http_get(allowed, f"127.0.0.1:{port}")
        # The request reached the backend untouched (peeking consumed nothing).
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(f"hello 127.0.0.1:{port}".encode())
    finally:
        allowed.close()
    slow = connect(port)  # headers in pieces: the peek waits for the Host line
    try:
        slow.sendall(b"GET / HTTP/1.1\r\nAccept: */*\r\n")
        gevent.idle()  # let the proxy see the first part alone
        slow.sendall(f"Host: {HOSTNAME}\r\n\r\n".encode())
        assert is_closed(slow)
    finally:
        slow.close()


# -- misbehaving clients ------------------------------------------------------------------------


def test_garbage_and_abrupt_clients_do_not_disturb_a_good_connection(
    tree: TreeHarness, echo: Echo, ca_file: Path
) -> None:
    tls_port = tree.ask("proxy", Expose(key="t", target_host=LOOP, target_port=echo.port, tls=True)).port
    plain_port = tree.ask("proxy", Expose(key="p", target_host=LOOP, target_port=echo.port, tls=False)).port
    good = tls_connect(tls_port, ca_file)
    silent = connect(tls_port)  # never says anything: its handshake waits on its own greenlet
    chunk = os.urandom(256 * 1024)

    def garbage() -> None:
        sock = connect(tls_port)
        try:
            # Random bytes after a zero: a byte with the high bit set could start an SSLv2-style
            # ClientHello whose length OpenSSL would wait for (until the handshake timeout).
            sock.sendall(b"\x00" + os.urandom(4095))
            is_closed(sock)
        finally:
            sock.close()

    def hang_up_mid_handshake() -> None:
        sock = connect(tls_port)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        sock.close()

    def hang_up_mid_stream(port: int, secure: bool) -> None:
        sock: Any = tls_connect(port, ca_file) if secure else connect(port)
        sock.sendall(chunk)
        sock.recv(1024)
        # RST instead of FIN, in the middle of the echo.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()

    try:
        round_trip(good, b"before")
        jobs = [gevent.spawn(garbage) for _ in range(10)]
        jobs += [gevent.spawn(hang_up_mid_handshake) for _ in range(5)]
        jobs += [gevent.spawn(hang_up_mid_stream, tls_port, True) for _ in range(3)]
        jobs += [gevent.spawn(hang_up_mid_stream, plain_port, False) for _ in range(3)]
        for _ in range(5):
            round_trip(good, os.urandom(128 * 1024))  # interleaved with the troublemakers
        gevent.joinall(jobs, timeout=TIMEOUT, raise_error=True)
        round_trip(good, b"after")
        wait_until(lambda: tree.ask("proxy", ProxyStats()).failed >= 15, what="every bad handshake counted")
        wait_until(lambda: open_connections(tree, "p") == 0, what="the plain aborts cleaned up")
        wait_until(lambda: open_connections(tree, "t") == 2, what="only the good and the silent one left")
    finally:
        good.close()
        silent.close()
    assert tree.tree.root.is_alive()

"""HTTPS: the CertificateActor ("certs") and the TLS web server ("web-tls") in a real tree."""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import socket
import ssl
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gevent.queue import Queue

from startos.actors.certificates import CertificateActor
from startos.actors.store import StoreActor
from startos.actors.tree import TreeConfig, start_tree
from startos.cli.start_cli import cli
from startos.net.certs import InvalidHostname, NoAuthority, create_root_ca, san_addresses, verify_server_cert
from startos.protocol.actions import RefreshHosts
from startos.protocol.certs import (
    CaInfo,
    CheckRenewal,
    CreateAuthority,
    GetAuthority,
    GetServerCert,
    GetTlsAddress,
    IssueServerCert,
    ServerCertInfo,
)
from startos.protocol.errors import ErrorKind
from startos.protocol.store import DbDump
from startos.supervision import Actor, Directory, handles

from .conftest import TreeHarness
from .daemon import Daemon
from .helpers import wait_until

HOSTNAME = "my-cool-server.local"


@pytest.fixture
def tls_tree(data_dir: Path) -> Iterator[TreeHarness]:
    """The whole tree with HTTP and HTTPS on free loopback ports (``url``, ``tls_port``)."""
    harness = _boot(data_dir)
    yield harness
    harness.close()


def _boot(data_dir: Path) -> TreeHarness:
    from startos.webui.server import GetAddress

    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=0, tls_port=0, max_body=64 * 1024, mdns=False)))
    harness.url = f"http://127.0.0.1:{harness.ask('web', GetAddress()).port}"  # type: ignore[attr-defined]
    harness.tls_port = harness.ask("web-tls", GetTlsAddress()).port  # type: ignore[attr-defined]
    return harness


def set_up_certs(harness: TreeHarness, tmp_path: Path) -> tuple[CaInfo, ServerCertInfo, Path]:
    """What setup does: the CA, then the server certificate; returns them and the CA's file."""
    ca = harness.ask("certs", CreateAuthority(name="my-cool-server"))
    cert = harness.ask("certs", IssueServerCert(hostname=HOSTNAME))
    ca_file = tmp_path / "local-root-ca.crt"
    ca_file.write_text(ca.pem)
    wait_until(lambda: harness.ask("web-tls", GetTlsAddress()).listening, what="HTTPS listening")
    return ca, cert, ca_file


def client_context(ca_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.set_alpn_protocols(["http/1.1"])  # as browsers do
    return context


def https(harness: TreeHarness, ca_file: Path, server_hostname: str = HOSTNAME) -> http.client.HTTPSConnection:
    """A verifying HTTPS connection to the tree's port that checks ``server_hostname``."""
    conn = http.client.HTTPSConnection(server_hostname, harness.tls_port, context=client_context(ca_file), timeout=10)  # type: ignore[attr-defined]
    # Connect to loopback but verify (and send SNI for) the server's name, as a browser on the LAN would.
    conn.sock = client_context(ca_file).wrap_socket(
        socket.create_connection(("127.0.0.1", harness.tls_port), timeout=10),  # type: ignore[attr-defined]
        server_hostname=server_hostname,
    )
    return conn


def echo(conn: http.client.HTTPConnection, message: str) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": message}})
    conn.request("POST", "/rpc/v1", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())["result"]


def peer_fingerprint(conn: http.client.HTTPSConnection) -> str:
    assert isinstance(conn.sock, ssl.SSLSocket)
    der = conn.sock.getpeercert(binary_form=True)
    assert der is not None
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# -- before setup -------------------------------------------------------------------------------


def test_before_setup_https_does_not_answer(tls_tree: TreeHarness) -> None:
    address = tls_tree.ask("web-tls", GetTlsAddress())
    assert address.port > 0 and not address.listening
    assert refused(address.port)
    assert tls_tree.ask("certs", GetAuthority()) is None
    assert tls_tree.ask("certs", GetServerCert()) is None
    server_info = tls_tree.ask("store", DbDump(pointer="/public/serverInfo")).value
    assert server_info.get("caFingerprint") is None


def test_a_server_cert_before_the_ca_is_a_typed_error(tls_tree: TreeHarness) -> None:
    with pytest.raises(NoAuthority) as info:
        tls_tree.ask("certs", IssueServerCert(hostname=HOSTNAME))
    assert info.value.kind == ErrorKind.UNINITIALIZED
    assert tls_tree.ask("certs", GetServerCert()) is None
    assert refused(tls_tree.tls_port)  # type: ignore[attr-defined]


# -- after setup --------------------------------------------------------------------------------


def test_after_setup_a_verifying_client_gets_echo_over_https(tls_tree: TreeHarness, tmp_path: Path) -> None:
    _, cert, ca_file = set_up_certs(tls_tree, tmp_path)
    for name in (HOSTNAME, "localhost"):
        conn = https(tls_tree, ca_file, name)
        try:
            assert echo(conn, f"over tls to {name}") == f"over tls to {name}"
            assert echo(conn, "keep-alive") == "keep-alive"
            assert peer_fingerprint(conn) == cert.fingerprint
            assert isinstance(conn.sock, ssl.SSLSocket)
            assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
            assert conn.sock.selected_alpn_protocol() == "http/1.1"
        finally:
            conn.close()
    # By address, as http.client does it itself: the certificate names 127.0.0.1 too.
    direct = http.client.HTTPSConnection("127.0.0.1", tls_tree.tls_port, context=client_context(ca_file), timeout=10)  # type: ignore[attr-defined]
    try:
        assert echo(direct, "by ip") == "by ip"
    finally:
        direct.close()
    # The plain HTTP server keeps working beside it.
    plain = http.client.HTTPConnection("127.0.0.1", int(tls_tree.url.rsplit(":", 1)[1]), timeout=10)  # type: ignore[attr-defined]
    try:
        assert echo(plain, "plain") == "plain"
    finally:
        plain.close()


def test_the_certificate_files_the_state_and_the_fingerprint(
    tls_tree: TreeHarness, tmp_path: Path, data_dir: Path
) -> None:
    watch = tls_tree.watch("/public")
    ca, cert, _ = set_up_certs(tls_tree, tmp_path)
    watch.wait_for(lambda v: v["serverInfo"].get("caFingerprint") == ca.fingerprint)
    assert cert.hostname == HOSTNAME
    assert "127.0.0.1" in cert.addresses and "::1" in cert.addresses
    key, chain = Path(cert.key_path), Path(cert.cert_path)
    assert key.parent == data_dir / "tls"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "tls").stat().st_mode) == 0o700
    assert chain.read_text().endswith(ca.pem)  # leaf, then the root
    assert (data_dir / "tls" / "ca.crt").read_text() == ca.pem
    verify_server_cert(chain.read_text(), ca.pem, HOSTNAME)
    # Secrets only under /private: nothing public holds a key.
    public = tls_tree.ask("store", DbDump(pointer="/public")).value
    assert "PRIVATE KEY" not in json.dumps(public)
    private = tls_tree.ask("store", DbDump(pointer="/private/certs")).value
    assert "PRIVATE KEY" in private["ca"]["keyPem"] and private["server"]["hostname"] == HOSTNAME


def test_creating_the_authority_is_idempotent(tls_tree: TreeHarness) -> None:
    first = tls_tree.ask("certs", CreateAuthority(name="my-cool-server"))
    again = tls_tree.ask("certs", CreateAuthority(name="another-name"))
    assert again == first
    assert tls_tree.ask("certs", GetAuthority()) == first


def test_bad_hostnames_are_refused_and_change_nothing(tls_tree: TreeHarness, tmp_path: Path) -> None:
    _, cert, _ = set_up_certs(tls_tree, tmp_path)
    for bad in ("", "bad..name", "-x.local", "x" * 300):
        with pytest.raises(InvalidHostname) as info:
            tls_tree.ask("certs", IssueServerCert(hostname=bad))
        assert info.value.kind == ErrorKind.INVALID_REQUEST
    assert tls_tree.ask("certs", GetServerCert()) == cert


def test_a_reissued_certificate_is_served_without_restart(tls_tree: TreeHarness, tmp_path: Path) -> None:
    ca, first, ca_file = set_up_certs(tls_tree, tmp_path)
    web_tls = tls_tree.directory.get("web-tls")
    old = https(tls_tree, ca_file)
    try:
        assert peer_fingerprint(old) == first.fingerprint
        # What server.set-hostname does: a new certificate for the new name, same CA.
        second = tls_tree.ask("certs", IssueServerCert(hostname="renamed.local"))
        assert second.fingerprint != first.fingerprint and second.hostname == "renamed.local"
        assert tls_tree.ask("certs", GetAuthority()) == ca

        def new_handshake_gets_it() -> bool:
            conn = https(tls_tree, ca_file, "renamed.local")
            try:
                return peer_fingerprint(conn) == second.fingerprint and echo(conn, "new") == "new"
            except ssl.SSLCertVerificationError:
                return False  # still the old certificate: it does not name renamed.local
            finally:
                conn.close()

        wait_until(new_handshake_gets_it, what="the new certificate on new connections")
        assert echo(old, "old connection") == "old connection"  # open connections keep theirs
        assert peer_fingerprint(old) == first.fingerprint
        with pytest.raises(ssl.SSLCertVerificationError):
            https(tls_tree, ca_file, HOSTNAME)  # the old name is no longer served
    finally:
        old.close()
    assert tls_tree.directory.get("web-tls") is web_tls  # the same actor: nothing restarted


def test_a_restarted_server_serves_https_at_once_and_rewrites_missing_files(data_dir: Path, tmp_path: Path) -> None:
    harness = _boot(data_dir)
    try:
        ca, cert, ca_file = set_up_certs(harness, tmp_path)
    finally:
        harness.close()
    for path in (data_dir / "tls").iterdir():
        path.unlink()  # a wiped tls/ directory: the store is the truth
    harness = _boot(data_dir)
    try:
        assert harness.ask("web-tls", GetTlsAddress()).listening
        assert harness.ask("certs", GetAuthority()) == ca
        assert harness.ask("certs", GetServerCert()).fingerprint == cert.fingerprint
        conn = https(harness, ca_file)
        try:
            assert echo(conn, "after restart") == "after restart"
        finally:
            conn.close()
    finally:
        harness.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_old_tls_versions_are_refused(tls_tree: TreeHarness, tmp_path: Path) -> None:
    _, _, ca_file = set_up_certs(tls_tree, tmp_path)
    context = client_context(ca_file)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.1
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"),
        socket.create_connection(("127.0.0.1", tls_tree.tls_port), timeout=10) as raw,  # type: ignore[attr-defined]
    ):
        context.wrap_socket(raw, server_hostname=HOSTNAME)
    # ...and the server is still fine afterwards.
    conn = https(tls_tree, ca_file)
    try:
        assert echo(conn, "still here") == "still here"
    finally:
        conn.close()


def test_failed_and_silent_handshakes_do_not_hurt_the_server(tls_tree: TreeHarness, tmp_path: Path) -> None:
    _, _, ca_file = set_up_certs(tls_tree, tmp_path)
    port = tls_tree.tls_port  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP to the TLS port
        try:
            raw.recv(100)  # an alert, or the connection closed
        except OSError:
            pass
    untrusting = ssl.create_default_context(cafile=str(_other_ca_file(tmp_path)))
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
    ):
        untrusting.wrap_socket(raw, server_hostname=HOSTNAME)
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)  # says nothing at all
    try:
        conn = https(tls_tree, ca_file)
        try:
            assert echo(conn, "fine") == "fine"
        finally:
            conn.close()
    finally:
        idle.close()


def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    tls_tree: TreeHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from startos.webui import tls

    monkeypatch.setattr(tls._TlsWSGIServer, "handshake_timeout", 0.2)
    set_up_certs(tls_tree, tmp_path)
    with socket.create_connection(("127.0.0.1", tls_tree.tls_port), timeout=10) as idle:  # type: ignore[attr-defined]
        try:
            assert idle.recv(100) == b""  # closed by the server, well before our 10 s
        except ConnectionResetError:
            pass


def _other_ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "other-ca.crt"
    path.write_text(create_root_ca("someone-else").cert_pem)
    return path


# -- through the API (setup.execute and server.set-hostname call the certs actor) ---------------


def test_setup_turns_https_on_and_set_hostname_reissues(tls_tree: TreeHarness, tmp_path: Path) -> None:
    from .conftest import PASSWORD, set_up_server
    from .rpc_client import Http

    plain = Http(tls_tree.url)  # type: ignore[attr-defined]
    try:
        setup = set_up_server(plain)
        status, downloaded = plain.get("/static/local-root-ca.crt")
    finally:
        plain.close()
    assert status == 200 and downloaded.decode() == setup["rootCa"]
    ca = tls_tree.ask("certs", GetAuthority())
    assert setup["caFingerprint"] == ca.fingerprint
    ca_file = tmp_path / "local-root-ca.crt"
    ca_file.write_text(setup["rootCa"])
    wait_until(lambda: tls_tree.ask("web-tls", GetTlsAddress()).listening, what="HTTPS listening")
    address = setup["mdnsAddress"]  # my-cool-server.local

    secure = Http(tls_tree.url)  # type: ignore[attr-defined]
    secure.conn.close()
    secure.conn = https(tls_tree, ca_file, address)
    try:
        assert "error" not in secure.call("auth.login", {"password": PASSWORD})
        assert "error" not in secure.call("server.set-hostname", {"name": "Renamed Box"})
    finally:
        secure.close()

    def serves(name: str) -> bool:
        try:
            https(tls_tree, ca_file, name).close()
        except ssl.SSLCertVerificationError:
            return False
        return True

    wait_until(lambda: serves("renamed-box.local"), what="the certificate for the new name")
    assert not serves(address)
    assert tls_tree.ask("certs", GetAuthority()) == ca  # same CA: devices keep trusting the server


# -- renewal ------------------------------------------------------------------------------------


class Recorder(Actor):
    """Stands in for a ServiceActor: keeps what it is told."""

    def __init__(self, told: Queue) -> None:
        super().__init__()
        self.told = told

    @handles(RefreshHosts)
    def refresh(self, message: RefreshHosts) -> None:
        self.told.put(message)


class Standalone:
    """A StoreActor and a CertificateActor with test knobs, outside any tree."""

    def __init__(self, data_dir: Path, **options: Any) -> None:
        self.directory = Directory()
        self.store = StoreActor.start(data_dir / "db" / "state.sqlite3")
        self.directory.register("store", self.store)
        self.certs = CertificateActor.start(self.directory, data_dir, **options)
        self.directory.register("certs", self.certs)

    def ask(self, message: object) -> Any:
        return self.certs.ask(message, timeout=10)

    def stop(self) -> None:
        self.certs.stop(timeout=10)
        self.store.stop(timeout=10)


@pytest.fixture
def standalone(data_dir: Path) -> Iterator[Any]:
    started: list[Standalone] = []

    def start(**options: Any) -> Standalone:
        s = Standalone(data_dir, **options)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_a_fresh_certificate_is_not_renewed(tls_tree: TreeHarness, tmp_path: Path) -> None:
    _, cert, _ = set_up_certs(tls_tree, tmp_path)
    assert tls_tree.ask("certs", CheckRenewal()) is False
    assert tls_tree.ask("certs", GetServerCert()) == cert


def test_a_certificate_close_to_expiry_is_renewed_by_the_timer(standalone: Any) -> None:
    # Every certificate is "about to expire" with a 400-day margin: each tick renews it.
    certs = standalone(check_interval=0.05, renew_margin=timedelta(days=400))
    ca = certs.ask(CreateAuthority(name="box"))
    first = certs.ask(IssueServerCert(hostname="box.local"))
    wait_until(lambda: certs.ask(GetServerCert()).fingerprint != first.fingerprint, what="a renewal")
    renewed = certs.ask(GetServerCert())
    assert renewed.hostname == "box.local"
    assert certs.ask(GetAuthority()) == ca  # the CA is kept
    verify_server_cert(Path(renewed.cert_path).read_text(), ca.pem, "box.local")


def test_a_new_machine_address_triggers_a_reissue(standalone: Any) -> None:
    addresses = [ipaddress.ip_address("127.0.0.1")]
    certs = standalone(addresses=lambda: list(addresses))
    certs.ask(CreateAuthority(name="box"))
    first = certs.ask(IssueServerCert(hostname="box.local"))
    assert certs.ask(CheckRenewal()) is False
    told: Queue = Queue()
    service = Recorder.start(told)
    certs.directory.register("service:hello-world", service)
    try:
        addresses.append(ipaddress.ip_address("10.1.2.3"))  # a new DHCP lease
        assert certs.ask(CheckRenewal()) is True
        assert isinstance(told.get(timeout=10), RefreshHosts)  # services list their addresses again
    finally:
        service.stop()
    renewed = certs.ask(GetServerCert())
    assert renewed.fingerprint != first.fingerprint
    assert ipaddress.ip_address("10.1.2.3") in san_addresses(Path(renewed.cert_path).read_text())
    assert certs.ask(CheckRenewal()) is False


# -- start-cli ----------------------------------------------------------------------------------


def test_start_cli_trusts_the_server_with_ca(
    tls_tree: TreeHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("START_CLI_CA", raising=False)
    _, _, ca_file = set_up_certs(tls_tree, tmp_path)
    url = f"https://127.0.0.1:{tls_tree.tls_port}"  # type: ignore[attr-defined]
    runner = CliRunner()

    result = runner.invoke(cli, ["-H", url, "--ca", str(ca_file), "echo", "secure hello"])
    assert (result.exit_code, result.stdout) == (0, "secure hello\n"), result.stderr

    result = runner.invoke(cli, ["-H", url, "echo", "x"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "error: the server's certificate is not trusted by this system" in result.stderr
    assert "pass --ca PATH" in result.stderr

    other = _other_ca_file(tmp_path)
    result = runner.invoke(cli, ["-H", url, "--ca", str(other), "echo", "x"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert f"error: the server's certificate is not signed by the CA in {other}" in result.stderr

    result = runner.invoke(cli, ["-H", url, "--ca", str(tmp_path / "missing.crt"), "echo", "x"])
    assert result.exit_code == 1 and "no such file" in result.stderr

    (tmp_path / "junk.crt").write_text("not a certificate")
    result = runner.invoke(cli, ["-H", url, "--ca", str(tmp_path / "junk.crt"), "echo", "x"])
    assert result.exit_code == 1 and "is not a PEM certificate" in result.stderr

    monkeypatch.setenv("START_CLI_CA", str(ca_file))
    result = runner.invoke(cli, ["-H", url, "echo", "from env"])
    assert (result.exit_code, result.stdout) == (0, "from env\n"), result.stderr


def test_start_cli_names_a_name_mismatch() -> None:
    from startos.cli.client import RpcClient

    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = 62  # what OpenSSL reports for a certificate that does not name the host
    exc.verify_message = "Hostname mismatch, certificate is not valid for 'box.example'."
    client = RpcClient("https://box.example:5443", ca_path=None)
    assert str(client._untrusted(exc)).startswith("the server's certificate is not valid for box.example")


def test_start_cli_talking_tls_to_a_plain_port_says_so(tls_tree: TreeHarness, tmp_path: Path) -> None:
    _, _, ca_file = set_up_certs(tls_tree, tmp_path)
    port = int(tls_tree.url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    result = CliRunner().invoke(cli, ["-H", f"https://127.0.0.1:{port}", "--ca", str(ca_file), "echo", "x"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "is that an https port?" in result.stderr


# -- startd -------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_startd_reports_its_https_address_and_refuses_until_setup(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path / "data", tmp_path / "startd.log")
    try:
        daemon.wait_ready()
        ready = next(e for e in daemon.log_entries() if e.get("msg") == "startd ready")
        assert ready["https_url"].startswith("https://127.0.0.1:")
        port = int(ready["https_url"].rsplit(":", 1)[1])
        assert port > 0 and ready["https_listening"] is False
        assert refused(port)
    finally:
        daemon.stop()

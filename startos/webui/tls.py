"""TlsWebServerActor ("web-tls"): the same app as the HTTP server, over HTTPS.

Before setup there is no server certificate, so the actor only reserves its port (bound, not
listening: connections are refused, and port 0 resolves at once) and starts accepting when the
CertificateActor reports one. A reissued certificate is loaded into the live ``SSLContext``:
new handshakes get it, open connections keep theirs, and nothing restarts. The app answers to
the names of every certificate loaded since start (``HostAllowlist.learn``), besides the names
the HTTP server answers to.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pykka
from gevent import ssl as gevent_ssl

from startos.net.certs import CertificateError, san_dns_names
from startos.protocol.calls import GetWebCertificate
from startos.protocol.certs import GetTlsAddress, ServerCertChanged, TlsAddress
from startos.supervision import Actor, ActorNotFound, Directory, handles
from startos.webui.app import build_app
from startos.webui.hardening import HostAllowlist
from startos.webui.server import HEADER_TIMEOUT, IDLE_TIMEOUT, NoDelayWSGIServer

__all__ = ["TlsWebServerActor", "server_context"]

logger = logging.getLogger(__name__)

FACADE_NAME = "facade"  # the web layer talks to the facade only
HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to finish the TLS handshake


def server_context() -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or newer, HTTP/1.1 over ALPN, no certificate loaded yet.

    gevent's ``SSLContext`` (the stdlib one after monkey-patching) so handshakes yield to the hub.
    """
    context: ssl.SSLContext = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


class _TlsWSGIServer(NoDelayWSGIServer):
    """``NoDelayWSGIServer`` with a bounded handshake whose failures are logged quietly.

    A browser that does not trust the root CA yet aborts every handshake; gevent would print each
    one as a traceback. The handshake also gets a deadline, so a silent client cannot hold a
    greenlet forever.
    """

    handshake_timeout = HANDSHAKE_TIMEOUT

    def wrap_socket_and_handle(self, client_socket: socket.socket, address: Any) -> Any:
        try:
            client_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        previous = client_socket.gettimeout()
        client_socket.settimeout(self.handshake_timeout)
        try:
            tls_socket = self.wrap_socket(client_socket, **self.ssl_args)
        except (ssl.SSLError, OSError) as exc:  # TimeoutError is an OSError
            logger.debug("TLS handshake with %s failed: %s", address, exc)
            return None
        try:
            tls_socket.settimeout(previous)
            return self.handle(tls_socket, address)
        finally:
            tls_socket.close()


class TlsWebServerActor(Actor):
    """Serves the app for one tree over HTTPS on ``host:port`` once a server certificate exists."""

    def __init__(
        self,
        directory: Directory,
        host: str,
        port: int,
        *,
        allowed_hosts: Iterable[str] = (),
        idle_timeout: float = IDLE_TIMEOUT,
        header_timeout: float = HEADER_TIMEOUT,
        **app_options: Any,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.host = host
        self.port = port
        self.timeouts = {"idle_timeout": idle_timeout, "header_timeout": header_timeout}
        self.app_options = app_options
        # Kept here, not only in the app, to teach it the names of each certificate loaded.
        self.allowlist = HostAllowlist(directory, allowed_hosts)
        self._listener: socket.socket | None = None
        self._context = server_context()
        self._server: _TlsWSGIServer | None = None

    def __str__(self) -> str:
        return f"TlsWebServerActor[{self.host}:{self.port}]"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def on_start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        try:
            info = self.directory.ask(FACADE_NAME, GetWebCertificate(), timeout=10.0)
        except (ActorNotFound, pykka.Timeout):
            info = None  # the CertificateActor tells us when it has one
        if info is None or not self._load(info.cert_path, info.key_path):
            logger.info("HTTPS waits for a server certificate (created at setup)", extra={"url": self.url})
            return
        self._serve()

    def on_stop(self) -> None:
        self._close(graceful=True)

    def on_exit(self, reason: Any) -> None:
        self._close(graceful=False)

    def _close(self, *, graceful: bool) -> None:
        server, self._server = self._server, None
        listener, self._listener = self._listener, None
        if server is not None:
            if graceful:
                server.stop(timeout=2.0)
            else:
                server.close()
        if listener is not None:
            listener.close()

    def _load(self, cert_path: str, key_path: str) -> bool:
        try:
            names = san_dns_names(Path(cert_path).read_bytes())
            self._context.load_cert_chain(cert_path, key_path)
        except (OSError, ssl.SSLError, CertificateError) as exc:
            logger.error("could not load the server certificate %s: %s", cert_path, exc)
            return False
        self.allowlist.learn(names)  # a client that verified the certificate used one of these
        return True

    def _serve(self) -> None:
        assert self._listener is not None
        self._listener.listen(1024)
        app = build_app(self.directory, allowed_hosts=self.allowlist, **self.app_options)
        self._server = _TlsWSGIServer(
            self._listener,
            app,
            log=None,
            error_log=None,
            ssl_context=self._context,
            spawn=self.spawn,  # handlers are this actor's greenlets: they end when it stops
            **self.timeouts,
        )
        self._server.start()
        logger.info("listening", extra={"url": self.url})

    @handles(ServerCertChanged)
    def cert_changed(self, message: ServerCertChanged) -> None:
        """Load the new certificate for new handshakes; start accepting if this is the first."""
        if not self._load(message.cert_path, message.key_path):
            return  # keep serving the previous certificate, if any
        if self._server is None and self._listener is not None:
            self._serve()
        else:
            logger.info("server certificate reloaded", extra={"url": self.url})

    @handles(GetTlsAddress)
    def address(self, _message: GetTlsAddress) -> TlsAddress:
        """Where HTTPS is and whether it accepts connections yet."""
        return TlsAddress(host=self.host, port=self.port, listening=self._server is not None)

"""ProxyActor ("proxy"): serves installed services' interfaces on the server's own addresses.

Each *expose* is a listening socket on ``listen_host`` (the web server's bind host) whose
connections are forwarded, byte for byte, to a service's ``target_host:target_port`` inside its
sandbox. With ``tls`` the proxy terminates TLS with the server certificate the CertificateActor
("certs") manages, so every interface is reachable as ``https://<address>:<port>`` with the same
trusted root CA as the dashboard; the backend leg is always plain TCP.

Everything happens on greenlets the actor owns: an accept loop per listener and, per
connection, the connection's greenlet (filtering, TLS handshake, client -> backend) plus one
helper (backend -> client). Handshakes and backend connects are bounded by timeouts and run
on the connection's greenlet, never on the actor's loop, and whatever goes wrong with one
connection (garbage bytes, a reset, an unreachable backend) ends that connection only, logged
in one line. The greenlets read the expose's settings directly (gevent is cooperative, and the
actor only replaces whole values), so a re-target applies to the next connection at once.

The TLS context is rebuilt when the server certificate's fingerprint changes. The proxy asks
"certs" at most once per ``cert_check_interval`` (1 s) on an incoming TLS connection: one ask
costs ~85 µs there (it parses the certificate), a TLS handshake ~1 ms. ``ServerCertChanged``
told to "proxy" forces the next connection to look again.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import time
from typing import Any

import gevent
import pykka
from gevent import ssl as gevent_ssl
from gevent.greenlet import Greenlet
from gevent.lock import Semaphore
from gevent.pool import Group
from greenlet import GreenletExit

from startos.net.proxy_io import (
    BAD_GATEWAY,
    PEEK_LIMIT,
    Tally,
    is_ip,
    normalize_address,
    normalize_ip,
    peek_http_host,
    pump,
    set_nodelay,
)
from startos.protocol.certs import GetServerCert, ServerCertChanged
from startos.protocol.proxy import (
    Expose,
    Exposed,
    ExposedInfo,
    ExposeError,
    ListExposed,
    NotExposed,
    PortInUse,
    ProxyStats,
    ProxyStatsInfo,
    SetDisabled,
    Unexpose,
)
from startos.supervision import Actor, ActorNotFound, Directory, handles

__all__ = ["ProxyActor"]

logger = logging.getLogger(__name__)

CERTS_NAME = "certs"
HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to finish the TLS handshake
CONNECT_TIMEOUT = 5.0  # seconds to reach the backend
PEEK_TIMEOUT = 2.0  # seconds to wait for a plain HTTP client's Host header
CERT_CHECK_INTERVAL = 1.0  # seconds a looked-up certificate fingerprint is trusted
BACKLOG = 1024
_ACCEPT_RETRY = 0.1  # seconds to back off when accept() runs out of descriptors or memory


class _Expose:
    """One listener and its settings; the connection greenlets read these fields directly."""

    __slots__ = (
        "accepter",
        "closed",
        "conns",
        "disabled",
        "group",
        "hostnames",
        "http",
        "key",
        "port",
        "sock",
        "target_host",
        "target_port",
        "tls",
    )

    def __init__(self, key: str, sock: socket.socket, message: Expose) -> None:
        self.key = key
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.target_host = message.target_host
        self.target_port = message.target_port
        self.tls = message.tls
        self.http = message.http
        self.hostnames: tuple[str, ...] = ()
        self.disabled: frozenset[str] = frozenset()
        self.conns: set[_Conn] = set()
        self.group = Group()
        self.accepter: Greenlet | None = None
        self.closed = False

    def update(self, message: Expose, target_host: str, hostnames: tuple[str, ...]) -> None:
        self.target_host = target_host
        self.target_port = message.target_port
        self.tls = message.tls
        self.http = message.http
        self.hostnames = hostnames

    def judge(self, conn: _Conn, name: str | None, local_ip: str) -> None:
        """Record which address ``conn`` used; raise ``_Refused`` if that address is disabled.

        The name the client asked for (SNI, Host) decides when it sent one (``my-server.local``
        stays up while its IP address is disabled, and the other way round); else the local
        address it connected to.
        """
        address = local_ip
        if name is not None and not is_ip(name):
            address = name.lower().rstrip(".")
        conn.address = address
        if address in self.disabled:
            raise _Refused(f"address {address} disabled")

    def info(self) -> ExposedInfo:
        return ExposedInfo(
            key=self.key,
            port=self.port,
            target_host=self.target_host,
            target_port=self.target_port,
            tls=self.tls,
            http=self.http,
            hostnames=self.hostnames,
            disabled=tuple(sorted(self.disabled)),
            connections=len(self.conns),
        )


class _Conn:
    """One client connection: its two sockets; ``closing`` once it is being torn down on purpose."""

    __slots__ = ("address", "backend", "client", "closing", "peer")

    def __init__(self, client: Any, peer: str) -> None:
        self.client: Any = client
        self.backend: socket.socket | None = None
        self.peer = peer
        self.address: str | None = None  # the address it used (hostname or local IP), once judged
        self.closing = False

    def close(self) -> None:
        self.closing = True
        for sock in (self.client, self.backend):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass


class _Refused(Exception):
    """Ends a connection on purpose (disabled address, no certificate); counted as refused."""


class _HandshakeFailed(Exception):
    """A client's TLS handshake failed (garbage, an untrusted CA, a hang-up); counted as failed."""


class ProxyActor(Actor):
    """Forwards exposed ports to services' interfaces, with TLS termination and per-address switches."""

    def __init__(
        self,
        directory: Directory,
        *,
        listen_host: str = "127.0.0.1",
        certs_name: str = CERTS_NAME,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        peek_timeout: float = PEEK_TIMEOUT,
        cert_check_interval: float = CERT_CHECK_INTERVAL,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.listen_host = listen_host
        self.certs_name = certs_name
        self.handshake_timeout = handshake_timeout
        self.connect_timeout = connect_timeout
        self.peek_timeout = peek_timeout
        self.cert_check_interval = cert_check_interval
        self._exposes: dict[str, _Expose] = {}
        self._context: ssl.SSLContext | None = None
        self._fingerprint: str | None = None
        self._checked_at = float("-inf")
        self._cert_lock = Semaphore()
        # id(TLS socket) -> (expose, connection, local IP, refusal) while its handshake runs, for the
        # SNI callback (it only gets the socket).
        self._handshakes: dict[int, tuple[_Expose, _Conn, str, list[_Refused]]] = {}
        self._accepted = self._refused = self._failed = 0
        self._bytes_in, self._bytes_out = Tally(), Tally()

    def __str__(self) -> str:
        return f"ProxyActor[{self.listen_host}]"

    # -- lifecycle ------------------------------------------------------------------------------

    def on_stop(self) -> None:
        self._close_all()

    def on_exit(self, reason: Any) -> None:
        self._close_all()

    def _close_all(self) -> None:
        exposes, self._exposes = list(self._exposes.values()), {}
        for expose in exposes:
            self._close_expose(expose)

    # -- messages -------------------------------------------------------------------------------

    @handles(Expose)
    def expose(self, message: Expose) -> Exposed:
        """Bind (or update) the listener for ``message.key``; reply with the bound port."""
        # Constraints on the struct are checked when decoded from the wire, not when built in-process.
        if not message.key:
            raise ExposeError("the key must not be empty")
        if not 1 <= message.target_port <= 65535:
            raise ExposeError(f"target port {message.target_port} is not between 1 and 65535")
        if not 0 <= message.listen_port <= 65535:
            raise ExposeError(f"listen port {message.listen_port} is not between 0 and 65535")
        target_host = message.target_host.strip("[]")
        if not is_ip(target_host):
            try:
                normalize_address(target_host)
            except ValueError:
                raise ExposeError(f"target host {message.target_host!r} is not an address or hostname") from None
        try:
            hostnames = tuple(sorted({normalize_address(name) for name in message.hostnames}))
        except ValueError as exc:
            raise ExposeError(f"hostnames: {exc}") from None
        current = self._exposes.get(message.key)
        if current is not None and message.listen_port in (0, current.port):
            current.update(message, target_host, hostnames)
            logger.info(
                "proxy expose updated",
                extra={"key": message.key, "port": current.port, "target": f"{target_host}:{message.target_port}"},
            )
            return Exposed(key=message.key, port=current.port)
        sock = self._bind(message.listen_port)
        expose = _Expose(message.key, sock, message)
        expose.update(message, target_host, hostnames)
        if current is not None:  # moved to another port: the old listener goes once the new one is up
            expose.disabled = current.disabled
            self._close_expose(current)
        self._exposes[message.key] = expose
        expose.accepter = self.spawn(self._accept_loop, expose)
        logger.info(
            "proxy listening",
            extra={
                "key": message.key,
                "port": expose.port,
                "target": f"{target_host}:{message.target_port}",
                "tls": message.tls,
            },
        )
        return Exposed(key=message.key, port=expose.port)

    @handles(Unexpose)
    def unexpose(self, message: Unexpose) -> bool:
        """Close the key's listener and every open connection; ``False`` if it was not exposed."""
        expose = self._exposes.pop(message.key, None)
        if expose is None:
            return False
        self._close_expose(expose)
        logger.info("proxy expose closed", extra={"key": message.key, "port": expose.port})
        return True

    @handles(SetDisabled)
    def set_disabled(self, message: SetDisabled) -> None:
        """Replace the key's disabled addresses (IPs and hostnames); new connections obey at once."""
        expose = self._exposes.get(message.key)
        if expose is None:
            raise NotExposed(f"{message.key!r} is not exposed")
        try:
            disabled = frozenset(normalize_address(entry) for entry in message.disabled)
        except ValueError as exc:
            raise ExposeError(f"disabled: {exc}") from None
        expose.disabled = disabled
        # Connections already open on an address that is now off end too.
        for conn in list(expose.conns):
            if conn.address in disabled:
                conn.close()

    @handles(ListExposed)
    def list_exposed(self, _message: ListExposed) -> list[ExposedInfo]:
        """Every expose with its port, target, flags and open connection count, sorted by key."""
        return [self._exposes[key].info() for key in sorted(self._exposes)]

    @handles(ProxyStats)
    def stats(self, _message: ProxyStats) -> ProxyStatsInfo:
        """Counters since start: listeners, open connections, accepted/refused/failed, bytes."""
        return ProxyStatsInfo(
            listeners=len(self._exposes),
            connections=sum(len(expose.conns) for expose in self._exposes.values()),
            accepted=self._accepted,
            refused=self._refused,
            failed=self._failed,
            bytes_in=self._bytes_in.count,
            bytes_out=self._bytes_out.count,
        )

    @handles(ServerCertChanged)
    def cert_changed(self, _message: ServerCertChanged) -> None:
        """A new server certificate exists: the next TLS connection loads it."""
        self._checked_at = float("-inf")

    # -- listeners ------------------------------------------------------------------------------

    def _bind(self, port: int) -> socket.socket:
        host = self.listen_host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::" serves IPv4 too
            sock.bind((host, port))
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} is already in use on {host}") from None
            if exc.errno == errno.EACCES:
                raise PortInUse(f"not allowed to listen on port {port} (ports below 1024 need root)") from None
            raise PortInUse(f"cannot listen on {where}: {exc.strerror or exc}") from None
        return sock

    def _close_expose(self, expose: _Expose) -> None:
        expose.closed = True
        accepter, expose.accepter = expose.accepter, None
        if accepter is not None:
            accepter.kill(block=False)
        try:
            expose.sock.close()
        except OSError:
            pass
        for conn in list(expose.conns):
            conn.close()
        expose.group.kill(block=False)

    def _accept_loop(self, expose: _Expose) -> None:
        while not expose.closed:
            try:
                client, address = expose.sock.accept()
            except OSError as exc:
                if expose.closed:
                    return
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    logger.warning("proxy cannot accept on port %s: %s", expose.port, exc.strerror)
                    gevent.sleep(_ACCEPT_RETRY)
                continue  # ECONNABORTED and the like: that client gave up; take the next
            self._accepted += 1
            # The actor owns the greenlet (it dies with the actor); the expose's group ends it with the listener.
            expose.group.add(self.spawn(self._connection, expose, client, _peer(address)))

    # -- one connection -------------------------------------------------------------------------

    def _connection(self, expose: _Expose, client: socket.socket, peer: str) -> None:
        conn = _Conn(client, peer)
        expose.conns.add(conn)
        try:
            self._serve(expose, conn)
        except GreenletExit:
            raise
        except _Refused as exc:
            self._refused += 1
            logger.info("proxy refused %s on port %s: %s", peer, expose.port, exc)
        except Exception as exc:  # noqa: BLE001 (one connection's failure ends that connection only)
            if not conn.closing:
                self._failed += 1
                logger.info("proxy connection from %s on port %s ended: %s", peer, expose.port, _describe(exc))
        finally:
            conn.close()
            expose.conns.discard(conn)

    def _serve(self, expose: _Expose, conn: _Conn) -> None:
        client = conn.client
        set_nodelay(client)
        local_ip = normalize_ip(client.getsockname()[0])
        tls = expose.tls
        if tls:
            client = self._handshake(expose, conn, local_ip)
        elif expose.http and any(not is_ip(entry) for entry in expose.disabled):
            expose.judge(conn, peek_http_host(client, self.peek_timeout, self.handshake_timeout), local_ip)
        else:
            expose.judge(conn, None, local_ip)
        target = (expose.target_host, expose.target_port)
        try:
            backend = socket.create_connection(target, timeout=self.connect_timeout)
        except OSError as exc:
            self._failed += 1
            conn.closing = True  # counted and logged here
            logger.warning("proxy: the backend of %s at %s:%s is unreachable: %s", expose.key, *target, _describe(exc))
            if expose.http:
                _bad_gateway(client, tls)
            return
        conn.backend = backend
        backend.settimeout(None)
        set_nodelay(backend)
        down = self.spawn(self._downstream, conn, backend, client, tls)
        try:
            pump(client, backend, self._bytes_in)
            # The client is done sending (half-close): tell the backend, keep its answer flowing.
            backend.shutdown(socket.SHUT_WR)
            down.join()
        finally:
            down.kill(block=False)

    def _downstream(self, conn: _Conn, backend: socket.socket, client: Any, tls: bool) -> None:
        try:
            pump(backend, client, self._bytes_out)
            if tls:
                conn.close()  # no TLS half-close: the backend is done, so is the connection
            else:
                client.shutdown(socket.SHUT_WR)
        except OSError as exc:
            if not conn.closing:
                self._failed += 1
                logger.info("proxy connection from %s ended: %s", conn.peer, _describe(exc))
            conn.close()  # wakes the upstream greenlet, which then ends quietly

    def _handshake(self, expose: _Expose, conn: _Conn, local_ip: str) -> ssl.SSLSocket:
        context = self._tls_context()
        if context is None:
            raise _Refused("no server certificate yet (it is created at setup)")
        conn.client.settimeout(self.handshake_timeout)
        tls = conn.client = context.wrap_socket(conn.client, server_side=True, do_handshake_on_connect=False)
        refusal: list[_Refused] = []
        self._handshakes[id(tls)] = (expose, conn, local_ip, refusal)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            if refusal:
                raise refusal[0] from None
            raise _HandshakeFailed(f"TLS handshake failed: {exc}") from None
        finally:
            self._handshakes.pop(id(tls), None)
        if conn.address is None:
            # The SNI callback did not run (no extension at all): judge by the local address.
            expose.judge(conn, None, local_ip)
        tls.settimeout(None)
        return tls

    def _sni(self, tls: Any, server_name: str | None, _context: ssl.SSLContext) -> int | None:
        pending = self._handshakes.get(id(tls))
        if pending is None:
            return None
        expose, conn, local_ip, refusal = pending
        try:
            expose.judge(conn, server_name, local_ip)
        except _Refused as exc:  # refuse before the handshake completes
            refusal.append(exc)
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        return None

    # -- the TLS context ------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext | None:
        """The context for the current server certificate, checked at most once per interval."""
        if time.monotonic() - self._checked_at < self.cert_check_interval:
            return self._context
        with self._cert_lock:  # one look-up at a time; the others use its result
            if time.monotonic() - self._checked_at < self.cert_check_interval:
                return self._context
            try:
                info = self.directory.ask(self.certs_name, GetServerCert(), timeout=5.0)
            except (ActorNotFound, pykka.Timeout, pykka.ActorDeadError) as exc:
                logger.warning("proxy: cannot look up the server certificate (%s); keeping the last one", exc)
                self._checked_at = time.monotonic()
                return self._context
            if info is None:
                self._context, self._fingerprint = None, None
            elif info.fingerprint != self._fingerprint:
                try:
                    self._context = self._new_context(info.cert_path, info.key_path)
                    self._fingerprint = info.fingerprint
                    logger.info("proxy loaded the server certificate", extra={"fingerprint": info.fingerprint})
                except (OSError, ssl.SSLError) as exc:
                    logger.error("proxy could not load the server certificate %s: %s", info.cert_path, exc)
            self._checked_at = time.monotonic()
            return self._context

    def _new_context(self, cert_path: str, key_path: str) -> ssl.SSLContext:
        context: ssl.SSLContext = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        context.sni_callback = self._sni  # refuses disabled names before the handshake completes
        return context


# -- helpers ------------------------------------------------------------------------------------


def _peer(address: Any) -> str:
    try:
        host, port = address[0], address[1]
    except (TypeError, IndexError):
        return str(address)
    try:
        host = normalize_ip(host)
    except ValueError:
        pass
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _describe(exc: BaseException) -> str:
    """One short line for a log: the error's name and what it says."""
    if isinstance(exc, _HandshakeFailed):
        return str(exc)
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return f"{exc.__class__.__name__}: {text}"


def _bad_gateway(client: Any, tls: bool) -> None:
    """Answer ``502 Bad Gateway`` to an HTTP client, reading its request first so the answer
    is not lost to a reset (closing with unread bytes sends RST)."""
    try:
        client.settimeout(1.0)
        client.recv(PEEK_LIMIT)
        client.sendall(BAD_GATEWAY)
        if not tls:
            client.shutdown(socket.SHUT_WR)
            while client.recv(PEEK_LIMIT):  # until the client closes (it reads the answer first)
                pass
    except OSError:
        pass

"""WebServerActor: gevent's WSGI server as a supervised worker of the tree."""

from __future__ import annotations

import logging
import socket
from typing import Any

import msgspec
from gevent import Timeout
from gevent.pywsgi import WSGIHandler, WSGIServer

from startos.protocol.base import Message
from startos.supervision import Actor, Directory, handles
from startos.webui.app import build_app
from startos.webui.hardening import security_headers, sends_hsts

__all__ = ["HEADER_TIMEOUT", "IDLE_TIMEOUT", "GetAddress", "NoDelayWSGIServer", "WebServerActor"]

logger = logging.getLogger(__name__)

IDLE_TIMEOUT = 60.0  # seconds a keep-alive connection may wait for its next request
HEADER_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its headers (slowloris)


class GetAddress(Message, frozen=True):
    """Reply with the ``(host, port)`` the server is bound to (useful with port 0)."""


class BoundAddress(msgspec.Struct, frozen=True):
    host: str
    port: int


class _QuietHandler(WSGIHandler):
    """gevent's handler with bounded waits before each request and the security headers.

    Only the wait *between* requests is bounded: once a request's headers are in, the
    application runs unbounded, so a WebSocket (the connection hijacked inside the app by
    ``simple_websocket.Server.accept``) may stay quiet for hours.
    """

    server: NoDelayWSGIServer
    # Two timers per connection, re-armed for each request: creating a gevent Timeout costs a
    # few µs, re-arming one about 1 µs (the RPC path is benchmarked).
    _idle: Timeout
    _headers_due: Timeout

    def handle(self) -> None:
        self._idle = Timeout(self.server.idle_timeout)
        self._headers_due = Timeout(self.server.header_timeout)
        try:
            super().handle()
        finally:
            self._idle.close()
            self._headers_due.close()

    def handle_one_request(self) -> Any:
        # The next request must start within the idle timeout, and its headers be complete
        # within the header timeout after that: a slowloris client sends one byte at a time,
        # each well within any per-read timeout. Either way the connection is closed without
        # an answer, as an idle keep-alive connection is.
        if self.rfile.closed or not self._next_request_started():
            return None
        deadline = self._headers_due
        deadline.start()
        try:
            return super().handle_one_request()
        except Timeout as exc:
            if exc is not deadline:
                raise
            logger.debug("closing %s: its request headers took over %s s", self.client_address, deadline.seconds)
            return None
        finally:
            deadline.cancel()

    def _next_request_started(self) -> bool:
        """Wait for the next request's first byte; ``False`` if the peer closed or stayed idle too long."""
        idle = self._idle
        idle.start()
        try:
            return bool(self.rfile.peek(1))  # buffered: no wait when requests are pipelined
        except Timeout as exc:
            if exc is not idle:
                raise
            return False  # idle for too long
        except OSError:
            return False  # reset by the peer
        finally:
            idle.cancel()

    def handle_one_response(self) -> None:
        # The headers are all in: from here on the application takes as long as it needs.
        self._headers_due.cancel()
        super().handle_one_response()

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        write = super().start_response(status, headers, exc_info)
        # Every response the server sends, including bottle's error pages and gevent's own 500s.
        self.response_headers.extend(self.server.security_headers)
        return write

    def log_request(self) -> None:
        if logger.isEnabledFor(logging.DEBUG):  # format_request costs a few µs per request
            logger.debug("%s", self.format_request())


class NoDelayWSGIServer(WSGIServer):
    """gevent's WSGI server with TCP_NODELAY, bounded idle and header waits, and security headers.

    Without TCP_NODELAY every keep-alive request waits ~40 ms for a delayed ACK (REFERENCE.md §10).
    A connection is closed when it waits more than ``idle_timeout`` for its next request, or
    when a request's headers take more than ``header_timeout`` from their first byte.
    """

    handler_class = _QuietHandler

    def __init__(
        self,
        *args: Any,
        idle_timeout: float = IDLE_TIMEOUT,
        header_timeout: float = HEADER_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.security_headers = security_headers(hsts=sends_hsts(secure=self.ssl_enabled, port=self.server_port))

    def handle(self, sock: socket.socket, address: Any) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket): nothing to tune
        super().handle(sock, address)


class WebServerActor(Actor):
    """Serves the app for one tree on ``host:port`` while it lives."""

    def __init__(
        self,
        directory: Directory,
        host: str,
        port: int,
        *,
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
        self._server: NoDelayWSGIServer | None = None

    def __str__(self) -> str:
        return f"WebServerActor[{self.host}:{self.port}]"

    def on_start(self) -> None:
        app = build_app(self.directory, **self.app_options)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(1024)
        # Request handlers are this actor's greenlets: they end when it stops (no request outlives it).
        self._server = NoDelayWSGIServer(listener, app, log=None, error_log=None, spawn=self.spawn, **self.timeouts)
        self._server.start()
        self.port = listener.getsockname()[1]
        logger.info("listening", extra={"url": f"http://{_url_host(self.host)}:{self.port}"})

    def on_stop(self) -> None:
        self._close(graceful=True)

    def on_exit(self, reason: Any) -> None:
        self._close(graceful=False)

    def _close(self, *, graceful: bool) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if graceful:
            server.stop(timeout=2.0)
        else:
            server.close()

    @handles(GetAddress)
    def address(self, _message: GetAddress) -> BoundAddress:
        """Where the server listens."""
        return BoundAddress(host=self.host, port=self.port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

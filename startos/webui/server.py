"""WebServerActor: gevent's WSGI server as a supervised worker of the tree."""

from __future__ import annotations

import logging
import socket
from typing import Any

import msgspec
from gevent.pywsgi import WSGIHandler, WSGIServer

from startos.protocol.base import Message
from startos.supervision import Actor, Directory, handles
from startos.webui.app import build_app

__all__ = ["GetAddress", "NoDelayWSGIServer", "WebServerActor"]

logger = logging.getLogger(__name__)


class GetAddress(Message, frozen=True):
    """Reply with the ``(host, port)`` the server is bound to (useful with port 0)."""


class BoundAddress(msgspec.Struct, frozen=True):
    host: str
    port: int


class _QuietHandler(WSGIHandler):
    def log_request(self) -> None:
        if logger.isEnabledFor(logging.DEBUG):  # format_request costs a few µs per request
            logger.debug("%s", self.format_request())


class NoDelayWSGIServer(WSGIServer):
    """gevent's WSGI server with TCP_NODELAY on each connection.

    Without it every keep-alive request waits ~40 ms for a delayed ACK (REFERENCE.md §10).
    """

    handler_class = _QuietHandler

    def handle(self, sock: socket.socket, address: Any) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a Unix socket): nothing to tune
        super().handle(sock, address)


class WebServerActor(Actor):
    """Serves the app for one tree on ``host:port`` while it lives."""

    def __init__(self, directory: Directory, host: str, port: int, **app_options: Any) -> None:
        super().__init__()
        self.directory = directory
        self.host = host
        self.port = port
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
        self._server = NoDelayWSGIServer(listener, app, log=None, error_log=None)
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

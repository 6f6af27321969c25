"""A small synchronous JSON-RPC 2.0 client for start-cli (stdlib only: no gevent here)."""

from __future__ import annotations

import http.client
import itertools
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from startos.errors import StartOSError


class RpcClientError(StartOSError):
    """Raised when the server answers a call with a JSON-RPC error."""

    def __init__(self, code: int, message: str, details: str | None) -> None:
        super().__init__(details or message, kind=code)
        self.code = code
        self.title = message
        self.details = details


class DaemonUnreachable(StartOSError):
    """Raised when no startd answers at the URL."""


class RpcClient:
    """Calls methods on ``POST {url}/rpc/v1`` over one keep-alive connection."""

    def __init__(self, url: str, *, timeout: float = 120.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StartOSError(f"--host {url!r} is not an http(s) URL like http://127.0.0.1:5959")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._ids = itertools.count(1)
        self.last_revision: int | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``method``; return its result or raise ``RpcClientError``/``DaemonUnreachable``."""
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or {}}
        body = json.dumps(request).encode()
        endpoint = f"{self.url}/rpc/v1"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", "/rpc/v1", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                break
            except (ConnectionRefusedError, socket.gaierror) as exc:
                self.close()
                raise DaemonUnreachable(
                    f"cannot reach startd at {endpoint} ({exc.strerror or exc}); "
                    "start it with `startd` or point -H/--host at a running server"
                ) from exc
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()  # a keep-alive connection the server closed: retry once on a new one
                if attempt == 2:
                    raise DaemonUnreachable(f"startd at {endpoint} closed the connection: {exc}") from exc
            except (TimeoutError, OSError) as exc:
                self.close()
                raise DaemonUnreachable(f"cannot reach startd at {endpoint}: {exc}") from exc
        revision = response.getheader("X-Patch-Sequence")
        self.last_revision = int(revision) if revision and revision.isdigit() else None
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            raise StartOSError(
                f"{endpoint} answered HTTP {response.status} with something that is not JSON-RPC"
            ) from exc
        if not isinstance(answer, dict):
            raise StartOSError(f"{endpoint} answered with an unexpected JSON-RPC payload")
        error = answer.get("error")
        if error is not None:
            data = error.get("data") or {}
            raise RpcClientError(int(error.get("code", 1)), str(error.get("message", "error")), data.get("details"))
        return answer.get("result")

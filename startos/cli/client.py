"""A small synchronous JSON-RPC 2.0 client for start-cli (stdlib only: no gevent here)."""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import ssl
from collections.abc import Callable
from http.cookies import SimpleCookie
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


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH = (62, 64)


class CertificateNotTrusted(StartOSError):
    """Raised when an https server's certificate does not verify against the trusted CAs."""


def tls_context(ca_path: str | None) -> ssl.SSLContext:
    """A client context trusting only the CA file at ``ca_path``, or the system's CAs without one."""
    if ca_path is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_path)
    except FileNotFoundError:
        raise StartOSError(f"--ca {ca_path}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        raise StartOSError(f"--ca {ca_path} is not a PEM certificate ({exc})") from exc


class RpcClient:
    """Calls methods on ``POST {url}/rpc/v1`` over one keep-alive connection.

    For https URLs the server's certificate must verify against ``ca_path`` (the server's root CA,
    as downloaded from ``/static/local-root-ca.crt``) or, without one, the system's trust store.
    """

    def __init__(self, url: str, *, timeout: float = 120.0, ca_path: str | None = None) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StartOSError(f"--host {url!r} is not an http(s) URL like http://127.0.0.1:5959")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._timeout = timeout
        self._ca_path = ca_path
        self._tls = tls_context(ca_path) if parts.scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None
        self._ids = itertools.count(1)
        self.last_revision: int | None = None
        # Cookies sent with every call; ``on_cookie(name, value or None)`` hears what the server sets.
        self.cookies: dict[str, str] = {}
        self.on_cookie: Callable[[str, str | None], None] | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._tls is not None:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._tls
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _untrusted(self, exc: ssl.SSLCertVerificationError) -> CertificateNotTrusted:
        reason = exc.verify_message or exc.reason or str(exc)
        if exc.verify_code in _NAME_MISMATCH:
            return CertificateNotTrusted(f"the server's certificate is not valid for {self._host} ({reason})")
        if self._ca_path is not None:
            return CertificateNotTrusted(
                f"the server's certificate is not signed by the CA in {self._ca_path} ({reason})"
            )
        return CertificateNotTrusted(
            f"the server's certificate is not trusted by this system ({reason}); pass --ca PATH with the server's "
            "root CA (its HTTP address serves it at /static/local-root-ca.crt)"
        )

    def _take_cookie(self, header: str) -> None:
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            gone = not morsel.value or morsel["max-age"] == "0" or morsel["expires"].startswith("Thu, 01 Jan 1970")
            if gone:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
            if self.on_cookie is not None:
                self.on_cookie(name, None if gone else morsel.value)

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
                headers = {"Content-Type": "application/json"}
                if self.cookies:
                    headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
                conn.request("POST", "/rpc/v1", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except ssl.SSLCertVerificationError as exc:
                self.close()
                raise self._untrusted(exc) from exc
            except ssl.SSLError as exc:
                self.close()
                raise DaemonUnreachable(
                    f"TLS with {endpoint} failed ({exc.reason or exc}); is that an https port?"
                ) from exc
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
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                self._take_cookie(value)
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

"""A raw HTTP helper for the RPC tests (the CLI's client is tested separately)."""

from __future__ import annotations

import http.client
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit


class Http:
    """Keeps its cookies like a browser would (``session`` after login)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self.cookies: dict[str, str] = {}
        self.password: str | None = None

    def post(
        self, body: bytes | str, path: str = "/rpc/v1", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = body.encode() if isinstance(body, str) else body
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.cookies and "Cookie" not in sent:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request("POST", path, body=data, headers=sent)
        response = self.conn.getresponse()
        raw = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                self._remember(value)
        headers_out = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers_out, json.loads(raw) if raw else None

    def _remember(self, header: str) -> None:
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            if morsel["max-age"] == "0" or morsel["expires"].startswith("Thu, 01 Jan 1970") or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    def call(self, method: str, params: Any = None, request_id: int = 1) -> Any:
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        return self.post(json.dumps(request))[2]

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()

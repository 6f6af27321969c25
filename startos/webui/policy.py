"""Who may reach what over HTTP: CSRF checks, loopback vs LAN, the local root cookie.

* Plain HTTP from loopback serves everything (a developer's browser on localhost just works).
* Plain HTTP from any other address serves the setup wizard before setup, the root CA download
  and otherwise a redirect to HTTPS: passwords and session cookies never cross the LAN in clear.
* An RPC must be ``Content-Type: application/json`` and, when the browser says where it comes
  from (``Origin``, ``Sec-Fetch-Site``), come from this same origin. A cross-site form or
  ``fetch`` cannot forge that without a CORS preflight, which we never grant.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOCAL_COOKIE = "local"
ALWAYS_OPEN = ("/static/local-root-ca.crt",)


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_secure(environ: dict[str, Any]) -> bool:
    return environ.get("wsgi.url_scheme") == "https"


def csrf_problem(environ: dict[str, Any]) -> str | None:
    """Why this RPC request looks cross-site (one readable line), or ``None`` when it is fine."""
    content_type = (environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        shown = content_type or "none"
        return f"RPC requests must have Content-Type: application/json (got {shown})"
    if (environ.get("HTTP_SEC_FETCH_SITE") or "").lower() == "cross-site":
        return "cross-site requests are refused"
    origin = environ.get("HTTP_ORIGIN")
    if origin and origin != "null":
        host = (environ.get("HTTP_HOST") or "").lower()
        if urlsplit(origin).netloc.lower() != host:
            return f"cross-origin requests are refused (origin {origin})"
    elif origin == "null":
        return "requests from an opaque origin are refused"
    return None


def https_url(environ: dict[str, Any], tls_port: int | None) -> str | None:
    """Where this request should go over HTTPS, if the server offers it."""
    if tls_port is None:
        return None
    host = (environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").rsplit(":", 1)[0]
    if host.startswith("[") and not host.endswith("]"):
        host = environ.get("SERVER_NAME", "")
    path = environ.get("PATH_INFO", "/")
    query = environ.get("QUERY_STRING")
    port = "" if tls_port == 443 else f":{tls_port}"
    return f"https://{host}{port}{path}{'?' + query if query else ''}"


class LocalCookie:
    """A secret in a file only root (the server's user) can read; presenting it proves locality.

    ``startd`` writes a fresh one at every start; the local ``start-cli`` reads it and sends it
    as the ``local`` cookie, which counts as an authenticated root session.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.secret = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, self.secret.encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.secret.encode())  # type: ignore[union-attr]

"""HTTP hardening: which ``Host`` names the server answers to, and the headers on every response.

* **DNS rebinding.** A page on ``evil.example`` can point that name at this server's LAN address
  and then call the API from the victim's browser as if it were same-origin. The browser still
  sends ``Host: evil.example``, so the app refuses, with HTTP 421, every Host that is not one this
  server answers to (``HostAllowlist``). Requests with no Host at all (HTTP/1.0 tools) are only
  taken from loopback.
* **Security headers** (``security_headers``): a Content-Security-Policy for the dashboard, no
  framing, no MIME sniffing, no Referer, and HSTS over HTTPS on port 443. The WSGI server adds them to every
  response it sends (``server.py``), not a bottle hook: bottle replaces the response's headers when
  a route raises, so an ``after_request`` hook would miss the 500s.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
import time
from collections.abc import Iterable
from pathlib import Path

import bottle
import msgspec
import pykka

from startos.paths import shown
from startos.protocol.calls import GetServerHostname
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError, error_response
from startos.supervision import ActorNotFound, Directory
from startos.webui.policy import is_loopback

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "HostAllowlist",
    "install_host_check",
    "normalize_host_name",
    "security_headers",
    "sends_hsts",
]

logger = logging.getLogger(__name__)

INDEX_HTML = Path(__file__).resolve().parent / "static" / "index.html"
RPC_PATH = "/rpc/v1"
REFRESH_INTERVAL = 1.0  # seconds: at most one hostname ask per interval for unknown Host names
ASK_TIMEOUT = 2.0  # seconds: a request waits at most this long for the facade's answer
MAX_REMEMBERED = 1024  # Host values kept for the fast path (IP literals are unbounded in number)

_json = msgspec.json.Encoder()
_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


# -- security headers ---------------------------------------------------------------------------


def import_map_hashes(index_html: Path = INDEX_HTML) -> list[str]:
    """CSP hash sources for the import maps inlined in the dashboard's ``index.html``.

    Browsers only take an import map inline (``<script type="importmap" src=…>`` is not
    supported), and ``script-src 'self'`` blocks inline scripts: the hash allows exactly that
    text, so any other inline script (an injected one) stays blocked.
    """
    try:
        text = index_html.read_text(encoding="utf-8")
    except OSError:
        return []  # no dashboard in this install: nothing inline to allow
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _IMPORT_MAP.findall(text)
    ]


def content_security_policy(script_hashes: Iterable[str] = ()) -> str:
    """The dashboard's CSP: its own files only, no plugins, no framing, no foreign forms.

    ``style-src 'self'`` holds as is: the dashboard sets inline styles only through the CSSOM
    (``element.style``, and preact writes a ``style=`` prop as ``style.cssText``), which CSP does
    not govern; ``style=`` attributes in parsed HTML would be blocked. ``data:`` images are the
    QR codes and the CSS's inline SVG icons; ``blob:`` covers downloads the dashboard builds.
    """
    return "; ".join(
        (
            "default-src 'self'",
            " ".join(("script-src 'self'", *script_hashes)),
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",  # CSP 3: 'self' also matches ws:/wss: to this host (the live streams)
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy(import_map_hashes())

# Encoded once: the server appends these to gevent's already-encoded header list per response.
_COMMON_HEADERS = (
    (b"Content-Security-Policy", CONTENT_SECURITY_POLICY.encode("latin-1")),
    (b"X-Frame-Options", b"DENY"),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Referrer-Policy", b"no-referrer"),
)
# No includeSubDomains: other machines on the LAN have their own names under .local.
_HSTS = (b"Strict-Transport-Security", b"max-age=31536000")


def sends_hsts(*, secure: bool, port: int) -> bool:
    """Whether a server sends HSTS: over HTTPS on port 443 only.

    A browser holding HSTS for a name upgrades every ``http://`` URL of it but keeps an explicit
    port, so on startd's default ports ``http://box.local:5959`` would become
    ``https://box.local:5959`` (the plain-HTTP port) and fail instead of being redirected to 5443.
    """
    return secure and port == 443


def security_headers(*, hsts: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every response carries, with HSTS when ``hsts`` (see ``sends_hsts``)."""
    return (*_COMMON_HEADERS, _HSTS) if hsts else _COMMON_HEADERS


# -- the Host allowlist -------------------------------------------------------------------------


def normalize_host_name(name: str) -> str:
    """``name`` as the allowlist compares it (lowercase, no final dot).

    Raises ``ValueError`` when it is not a DNS name (a scheme, a port, a path or a wildcard).
    """
    value = name.strip().lower().removesuffix(".")
    if not value or len(value) > 253 or not _DNS_NAME.fullmatch(value):
        raise ValueError(f"{name!r} is not a host name: give a DNS name such as box.example.com, without port")
    return value


def host_name(host: str) -> tuple[str, bool] | None:
    """The name in a ``Host`` header value and whether it is an IP literal; ``None`` if malformed.

    The name is lowercased, without its port or final dot; an IPv6 literal without brackets.
    """
    value = host.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1 :]
        if end < 0 or (rest and not (rest[0] == ":" and _is_port(rest[1:]))):
            return None
        try:
            ipaddress.IPv6Address(value[1:end])
        except ValueError:
            return None
        return value[1:end], True
    if value.count(":") > 1:  # an IPv6 literal without brackets: invalid HTTP, but not a rebinding
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return None
        return value, True
    name, sep, port = value.partition(":")
    if sep and not _is_port(port):
        return None
    name = name.removesuffix(".")
    if not name:
        return None
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return name, False
    return name, True


def _is_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


class HostAllowlist:
    """The ``Host`` names this server answers to.

    Always: any IP literal (an address cannot be rebound), ``localhost`` and ``*.localhost``
    (browsers resolve those to loopback themselves) and the names given at start (``startd
    --allow-host``). Also ``<hostname>.local`` for the hostname in the state tree, which changes
    with ``server.set-hostname``: it is re-read only when a request names a host not allowed yet,
    and at most once per ``refresh_interval``, so a stream of unknown names costs one facade ask
    a second, not one a request. And names taught with ``learn``: the HTTPS server teaches the
    names of each certificate it loads, since connections keep the certificate they started with.

    ``allows`` answers a Host value seen before with one set lookup. ``names`` must be DNS names
    (``normalize_host_name``; ``ValueError`` otherwise): check them where they come in.
    """

    def __init__(
        self, directory: Directory, names: Iterable[str] = (), *, refresh_interval: float = REFRESH_INTERVAL
    ) -> None:
        self.directory = directory
        self.refresh_interval = refresh_interval
        self._fixed = frozenset(normalize_host_name(name) for name in names)
        self._learned: frozenset[str] = frozenset()
        self._mdns_name: str | None = None  # <hostname>.local as last heard from the facade
        self._next_refresh = 0.0  # monotonic time from which a miss may ask again
        self._seen: set[str] = set()  # Host values allowed before, as sent

    def names(self) -> frozenset[str]:
        """The host names allowed now besides IP literals and ``*.localhost``."""
        mdns = frozenset() if self._mdns_name is None else frozenset((self._mdns_name,))
        return self._fixed | self._learned | mdns

    def learn(self, names: Iterable[str]) -> None:
        """Allow these names from now on (until the server stops)."""
        learned = set(self._learned)
        for name in names:
            try:
                learned.add(normalize_host_name(name))
            except ValueError:
                logger.debug("not allowing %r as a Host: not a DNS name", name)
        self._learned = frozenset(learned)

    def allows(self, host: str) -> bool:
        """Whether a request with this ``Host`` header value is for this server."""
        if host in self._seen:
            return True
        parsed = host_name(host)
        if parsed is None:
            return False
        name, is_ip = parsed
        if not (is_ip or self._allowed_name(name) or (self._refresh() and self._allowed_name(name))):
            return False
        if len(self._seen) < MAX_REMEMBERED:
            self._seen.add(host)
        return True

    def _allowed_name(self, name: str) -> bool:
        return (
            name == "localhost"
            or name.endswith(".localhost")
            or name == self._mdns_name
            or name in self._fixed
            or name in self._learned
        )

    def _refresh(self) -> bool:
        """Re-read the hostname if the last look is old enough; ``True`` if it looked."""
        now = time.monotonic()
        if now < self._next_refresh:
            return False
        self._next_refresh = now + self.refresh_interval
        try:
            hostname = self.directory.ask("facade", GetServerHostname(), timeout=ASK_TIMEOUT)
        except (ActorNotFound, pykka.Timeout) as exc:
            logger.debug("could not re-read the hostname (%s); keeping %r", exc, self._mdns_name)
            return False
        mdns_name = f"{hostname}.local" if isinstance(hostname, str) and hostname else None
        if mdns_name != self._mdns_name:
            self._mdns_name = mdns_name
            self._seen.clear()  # it may hold the previous name: the server no longer answers to it
        return True


def install_host_check(
    app: bottle.Bottle, directory: Directory, allowed_hosts: Iterable[str] | HostAllowlist = ()
) -> HostAllowlist:
    """Refuse, with HTTP 421, requests whose ``Host`` is not one this server answers to.

    Install it first, before the other ``before_request`` hooks: a refused request must not get
    as far as the LAN policy's redirect (built from the Host it was sent with). ``allowed_hosts``
    is extra names, or an allowlist the caller keeps to ``learn`` more names later.
    """
    allowlist = allowed_hosts if isinstance(allowed_hosts, HostAllowlist) else HostAllowlist(directory, allowed_hosts)

    @app.hook("before_request")
    def host_check() -> None:
        environ = bottle.request.environ
        host = environ.get("HTTP_HOST")
        if host:
            if allowlist.allows(host):
                return
            why = (
                f"this server does not answer to the name {shown(host)} (protection against DNS rebinding): "
                "use its IP address or its .local name, or start startd with --allow-host NAME"
            )
        elif is_loopback(environ.get("REMOTE_ADDR") or ""):
            return  # HTTP/1.0 tools on this machine send no Host
        else:
            why = "a request without a Host header is only accepted from this machine"
        raise misdirected(bottle.request.path, why)

    return allowlist


def misdirected(path: str, why: str) -> bottle.HTTPResponse:
    """The 421 answer: a JSON-RPC error object for the RPC endpoint, ``{"error": why}`` elsewhere."""
    if path == RPC_PATH:
        body = _json.encode(error_response(None, RpcError(ErrorKind.INVALID_REQUEST, why)))
    else:
        body = _json.encode({"error": why})
    return bottle.HTTPResponse(status=421, body=body, headers={"Content-Type": "application/json"})

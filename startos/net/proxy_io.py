"""Socket plumbing of the ProxyActor: address normalization, HTTP ``Host`` peeking, byte pumping.

Pure functions over (gevent) sockets, with no actor state, so they can be tested and measured
on their own.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from typing import Any

import gevent

__all__ = [
    "BAD_GATEWAY",
    "BUFFER_SIZE",
    "BUFFER_START",
    "PEEK_LIMIT",
    "Tally",
    "host_of_header",
    "is_ip",
    "normalize_address",
    "normalize_ip",
    "parse_host_header",
    "peek_http_host",
    "pump",
    "set_nodelay",
]

BUFFER_START = 16 * 1024  # bytes per recv_into at first: an idle connection holds two of these
BUFFER_SIZE = 256 * 1024  # the most a bulk transfer grows to
PEEK_LIMIT = 8 * 1024  # give up looking for a Host header after this many bytes
PEEK_POLL = 0.005  # seconds between two peeks while a request's headers are still arriving

_BAD_GATEWAY_BODY = b"502 Bad Gateway: the service is not answering.\n"
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n" % len(_BAD_GATEWAY_BODY)
) + _BAD_GATEWAY_BODY

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def normalize_ip(text: str) -> str:
    """An IP address in canonical form; IPv4-mapped IPv6 (``::ffff:1.2.3.4``) becomes IPv4.

    A zone id (``fe80::1%eth0``) is dropped. Raises ``ValueError`` for anything else.
    """
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_ip(text: str) -> bool:
    """True when ``text`` is an IP address literal (IPv4 or IPv6, brackets allowed)."""
    try:
        normalize_ip(text.strip("[]"))
    except ValueError:
        return False
    return True


def normalize_address(text: str) -> str:
    """A disabled-address entry in the form connections are compared with.

    IP addresses are canonicalized (``normalize_ip``); hostnames are lowercased without a
    trailing dot. Raises ``ValueError`` for something that is neither.
    """
    candidate = text.strip()
    if is_ip(candidate):
        return normalize_ip(candidate.strip("[]"))
    name = candidate.lower().rstrip(".")
    if not _HOSTNAME.match(name):
        raise ValueError(f"{text!r} is neither an IP address nor a hostname")
    return name


def host_of_header(value: str) -> str | None:
    """The host part of a ``Host`` header value (port and IPv6 brackets removed), normalized."""
    value = value.strip()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        host = value[1:end] if end > 0 else value
    elif value.count(":") == 1:
        host = value.split(":", 1)[0]
    else:
        host = value  # a bare name, or a bare IPv6 address (not valid HTTP, but harmless)
    try:
        return normalize_address(host)
    except ValueError:
        return None


def parse_host_header(data: bytes) -> tuple[str | None, bool]:
    """Look for ``Host:`` in the start of an HTTP/1.x request.

    Returns ``(host, finished)``: ``finished`` is true once the answer cannot change with more
    bytes (the header was found, or the header block ended without one).
    """
    end = data.find(b"\r\n\r\n")
    block = data if end < 0 else data[:end]
    lines = block.split(b"\n")
    if end < 0:
        lines = lines[:-1]  # the last line may still be arriving
    for line in lines[1:]:  # the first is the request line
        if line[:5].lower() == b"host:":
            return host_of_header(line[5:].decode("latin-1")), True
    return None, end >= 0


def peek_http_host(
    sock: socket.socket, timeout: float, first_byte_timeout: float, limit: int = PEEK_LIMIT
) -> str | None:
    """The ``Host`` of the request arriving on ``sock``, read with ``MSG_PEEK`` (nothing consumed).

    Waits up to ``first_byte_timeout`` seconds for the request to start (browsers open sockets
    ahead of use), then up to ``timeout`` seconds for the header. ``None`` when no Host header
    came in time or within ``limit`` bytes, or the client closed. The socket is left blocking.
    """
    try:
        sock.settimeout(first_byte_timeout)
        try:
            data = sock.recv(limit, socket.MSG_PEEK)
        except TimeoutError:
            return None
        deadline = time.monotonic() + timeout
        while True:
            if not data:
                return None
            host, finished = parse_host_header(data)
            if finished or len(data) >= limit:
                return host
            # Headers still arriving: a peek returns at once while any byte is buffered, so
            # wait a little before looking again (rare: browsers send the headers in one go).
            gevent.sleep(PEEK_POLL)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            try:
                data = sock.recv(limit, socket.MSG_PEEK)
            except TimeoutError:
                return None
    finally:
        sock.settimeout(None)


class Tally:
    """A byte counter that ``pump`` adds to as it goes (so a reset connection still counts)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def pump(source: Any, sink: Any, tally: Tally, size: int = BUFFER_START, limit: int = BUFFER_SIZE) -> None:
    """Copy bytes from ``source`` to ``sink`` until ``source`` reaches end of stream.

    The buffer starts at ``size`` bytes (small: most connections are idle or chatty) and grows
    up to ``limit`` while reads keep filling it (a bulk transfer: fewer, larger system calls).
    Socket errors propagate (the caller ends the connection).
    """
    buffer = bytearray(size)
    view = memoryview(buffer)
    recv_into = source.recv_into
    sendall = sink.sendall
    while True:
        count = recv_into(buffer)
        if not count:
            return
        sendall(view[:count])
        tally.count += count
        if count == size and size < limit:
            size = min(size * 4, limit)
            buffer = bytearray(size)
            view = memoryview(buffer)


def set_nodelay(sock: socket.socket) -> None:
    """``TCP_NODELAY`` (no Nagle: a small reply is not held back ~40 ms, REFERENCE.md §10)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not TCP: nothing to tune

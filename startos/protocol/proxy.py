"""The ProxyActor's messages ("proxy"): installed services' interfaces served on the LAN.

A service listens inside its sandbox (``127.0.0.1`` for a process sandbox, its veth address for
a network namespace); the proxy binds a port on the server's own address and forwards every
connection there, terminating TLS with the server certificate when asked. Each forwarded port
is an *expose* named by a caller-chosen ``key`` (e.g. ``"<packageId>/<hostId>/<internalPort>"``).

Errors: ``ExposeError`` (bad parameters, ``kind`` invalid params), ``PortInUse`` (the wanted
port is taken; ``kind`` network), ``NotExposed`` (``SetDisabled`` for an unknown key; ``kind``
not found). A refused request changes nothing.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from startos.errors import StartOSError
from startos.protocol.base import Message
from startos.protocol.errors import ErrorKind

__all__ = [
    "Expose",
    "ExposeError",
    "Exposed",
    "ExposedInfo",
    "ListExposed",
    "NotExposed",
    "PortInUse",
    "ProxyStats",
    "ProxyStatsInfo",
    "SetDisabled",
    "Unexpose",
]

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
ListenPort = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class ExposeError(StartOSError):
    """An ``Expose``/``SetDisabled`` whose parameters make no sense; nothing changed."""

    kind = ErrorKind.INVALID_PARAMS


class PortInUse(StartOSError):
    """The port an ``Expose`` asked for could not be bound (taken, or not allowed)."""

    kind = ErrorKind.NETWORK


class NotExposed(StartOSError):
    """``SetDisabled`` named a key that is not exposed."""

    kind = ErrorKind.NOT_FOUND


class Expose(Message, frozen=True):
    """Serve ``target_host:target_port`` on the proxy's host at ``listen_port``; reply ``Exposed``.

    ``listen_port`` 0 lets the OS choose. ``tls``: terminate TLS with the server certificate (the
    backend leg is always plain TCP). ``http``: the backend speaks HTTP/1.x, so a plain client's
    ``Host`` header can be checked against disabled hostnames and an unreachable backend gets a
    ``502 Bad Gateway`` answer. ``hostnames``: the names clients reach this interface by (e.g.
    ``my-server.local``), for the records only; matching uses whatever name the client sends.

    Exposing a key again updates target, ``tls``, ``http`` and ``hostnames`` in place: open
    connections stay on the old target, new ones go to the new one, the listener is kept. A
    different non-zero ``listen_port`` moves the key to that port (old listener and its
    connections closed once the new port is bound). Fails with ``PortInUse`` naming the port.
    """

    key: Key
    target_host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    target_port: Port
    tls: bool
    listen_port: ListenPort = 0
    http: bool = False
    hostnames: tuple[str, ...] = ()


class Exposed(msgspec.Struct, frozen=True, kw_only=True):
    """Where ``key`` is served: the bound external port."""

    key: str
    port: int


class Unexpose(Message, frozen=True):
    """Stop serving ``key``: close its listener and every open connection. Replies ``True`` if it
    was exposed, ``False`` if there was nothing to do."""

    key: Key


class SetDisabled(Message, frozen=True):
    """Addresses of ``key`` that must stop answering (replaces the previous list); replies ``None``.

    Each entry is an IP address (``"192.168.1.5"``, ``"::1"``) or a hostname (``"my-server.local"``).
    Which address a connection used: the name the client asked for (TLS SNI, or the HTTP ``Host``
    header of a plain ``http`` expose) when it sent a name, else the local IP address it
    connected to. A connection to a disabled address is closed at once (TLS: the handshake is
    refused with an ``unrecognized_name`` alert).
    """

    key: Key
    disabled: tuple[str, ...]


class ListExposed(Message, frozen=True):
    """Reply with every expose as a list of ``ExposedInfo``, sorted by key."""


class ExposedInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One expose as it is now; ``connections`` counts the open client connections."""

    key: str
    port: int
    target_host: str
    target_port: int
    tls: bool
    http: bool
    hostnames: tuple[str, ...]
    disabled: tuple[str, ...]
    connections: int


class ProxyStats(Message, frozen=True):
    """Reply with ``ProxyStatsInfo``: counters since the actor started."""


class ProxyStatsInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the whole proxy. ``refused``: closed because the address was disabled or TLS had
    no certificate; ``failed``: ended by a handshake error, an unreachable backend or a reset."""

    listeners: int
    connections: int
    accepted: int
    refused: int
    failed: int
    bytes_in: int  # client -> backend
    bytes_out: int  # backend -> client

"""mDNS: the MdnsActor's messages (the actor that makes ``<hostname>.local`` resolve on the LAN).

The hostname is the DNS label derived from the server name (StartOS: lowercase letters, digits
and hyphens; "My Cool Server" -> ``my-cool-server``): deriving it is the caller's job, the
actor only checks it is a valid label. Its status is published at
``/public/serverInfo/network/mdns`` as ``{hostname, advertised, addresses, error}``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from startos.protocol.base import Message, Result

__all__ = ["HOSTNAME_PATTERN", "Advertise", "GetMdnsStatus", "Hostname", "MdnsStatus", "StopAdvertising"]

HOSTNAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"  # one RFC 1123 label, lowercase
Hostname = Annotated[str, msgspec.Meta(pattern=HOSTNAME_PATTERN)]


class Advertise(Message, frozen=True):
    """Advertise ``<hostname>.local`` (replacing any previous name); answers at once.

    The registration (about 1.7 s of mDNS probing) runs in the background; watch
    ``/public/serverInfo/network/mdns`` for ``advertised: true`` or ask ``GetMdnsStatus``.
    An invalid hostname is refused (``InvalidHostname``) and changes nothing.
    """

    hostname: Hostname


class StopAdvertising(Message, frozen=True):
    """Withdraw the ``.local`` name (goodbye packets tell the LAN's caches to forget it)."""


class GetMdnsStatus(Message, frozen=True):
    """Reply with the current ``MdnsStatus``."""


class MdnsStatus(Result, frozen=True):
    """What is advertised: ``hostname`` (without ``.local``), whether the name is registered on
    the network yet, the machine addresses it resolves to, and the last error (or ``None``)."""

    hostname: str | None
    advertised: bool
    addresses: list[str] = []
    error: str | None = None

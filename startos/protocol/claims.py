"""What an RPC call leaves waiting for a WebSocket or an upload to take, by guid.

``db.subscribe`` and ``package.logs.follow`` leave a :class:`StreamClaim` (a stream for
``/ws/rpc/{guid}``), ``package.attach`` an :class:`AttachClaim` (a terminal session for the same
socket), ``package.sideload`` an :class:`UploadClaim` (a ticket for ``/rest/upload/{guid}``).
The facade holds them for a short window; the web layer takes one with ``TakeClaim`` and
dispatches on its type. A claim never leaves the process: its stream and session are live objects.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

__all__ = ["AttachClaim", "AttachSession", "Claim", "Stream", "StreamClaim", "UploadClaim", "release"]


class Stream(Protocol):
    """A stream of items (state revisions, log lines) read by one WebSocket.

    ``get`` returns ``None`` once the stream ended; ``closed`` then says why (``"overflow"``:
    the reader fell behind and must subscribe again).
    """

    closed: str | None

    def get(self, timeout: float | None = None) -> Any: ...

    def close(self) -> None: ...


class AttachSession(Protocol):
    """A process in a service's sandbox relayed over one WebSocket (``package attach``)."""

    def serve(self, ws: Any) -> None: ...

    def close(self) -> None: ...


class StreamClaim(msgspec.Struct, frozen=True, kw_only=True, tag="stream"):
    """A stream for ``/ws/rpc/{guid}``: ``initial`` items are sent first, then the stream's."""

    source: Stream
    initial: tuple[Any, ...] = ()


class AttachClaim(msgspec.Struct, frozen=True, kw_only=True, tag="attach"):
    """A terminal session for ``/ws/rpc/{guid}``."""

    session: AttachSession


class UploadClaim(msgspec.Struct, frozen=True, kw_only=True, tag="upload"):
    """A ticket to upload one ``.s9pk`` to ``/rest/upload/{guid}``, which then installs it."""

    accept_new_key: bool = False


Claim = StreamClaim | AttachClaim | UploadClaim
"""Everything a guid can stand for."""


def release(claim: Claim) -> None:
    """Close what ``claim`` holds open (a claim nobody took, or one the transport is done with)."""
    if isinstance(claim, StreamClaim):
        claim.source.close()
    elif isinstance(claim, AttachClaim):
        claim.session.close()

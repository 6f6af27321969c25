"""What the transports send the FacadeActor, and what it answers (DESIGN.md "Layout").

The web layer (``startos.webui``) and the local CLI socket talk to the facade only: an RPC call
is an :class:`RpcCall`; a WebSocket or an upload takes what a call left waiting with
:class:`TakeClaim`; and the few things the web layer needs besides RPC (whether setup is done,
whether a caller holds a session, the root CA, the hostname, the HTTPS certificate, installing
an uploaded file) are the requests below. None of these are RPC methods: no client can send
them, only the transports in this process.
"""

from __future__ import annotations

from typing import Any

import msgspec

from startos.protocol.base import Message

__all__ = [
    "CallContext",
    "CheckCaller",
    "CheckSetUp",
    "GetRootCa",
    "GetServerHostname",
    "GetWebCertificate",
    "InstallUpload",
    "RpcCall",
    "RpcReply",
    "TakeClaim",
    "WithCookie",
]


class CallContext(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the transport fills it in; handlers may read it.

    ``session`` is the caller's session token (from the cookie), ``session_id`` the session it
    belongs to once the facade has checked it. ``local_root`` is set when the caller proved it
    is root on this machine (the cookie file only root can read).
    """

    peer: str = ""
    local: bool = False
    secure: bool = False
    session: str | None = None
    session_id: str | None = None
    user_agent: str | None = None
    local_root: bool = False


class RpcCall(Message, frozen=True):
    """One JSON-RPC call to route: reply is an ``RpcReply`` or an ``RpcError`` is raised."""

    method: str
    params: dict[str, Any] | list[Any] | None = None
    context: CallContext = CallContext()


class RpcReply(msgspec.Struct, frozen=True):
    """A method's result; ``revision`` is set for mutating methods (``X-Patch-Sequence``).

    ``set_session`` (a token, with ``persistent``) or ``clear_session`` ask the transport to set or
    clear the ``session`` cookie.
    """

    result: Any
    revision: int | None = None
    set_session: str | None = None
    persistent: bool = True
    clear_session: bool = False


class WithCookie(msgspec.Struct, frozen=True):
    """Returned by a handler that also sets (``token``) or clears the session cookie."""

    result: Any
    token: str | None = None
    persistent: bool = True
    clear: bool = False


class TakeClaim(Message, frozen=True):
    """Reply with the ``Claim`` a call left for ``guid`` (``startos.protocol.claims``); once per guid.

    The patch socket (``/ws/rpc/{guid}``) and the upload endpoint (``/rest/upload/{guid}``) send
    it. Raises ``RpcError`` (NotFound) when nothing waits for the guid (expired or taken).
    """

    guid: str


# -- what the web layer asks besides RPC -------------------------------------------------------


class CheckSetUp(Message, frozen=True):
    """Reply ``True`` once initial setup is complete (the LAN policy serves the wizard before)."""


class CheckCaller(Message, frozen=True):
    """Reply ``True`` when ``context`` holds a live session or proved local root."""

    context: CallContext


class GetRootCa(Message, frozen=True):
    """Reply with the root CA's PEM, or ``None`` before setup created it (or without a CA)."""


class GetServerHostname(Message, frozen=True):
    """Reply with the server's hostname label (``<label>.local``), or ``None`` before setup."""


class GetWebCertificate(Message, frozen=True):
    """Reply with the HTTPS certificate (``protocol.certs.ServerCertInfo``), or ``None`` without one."""


class InstallUpload(Message, frozen=True):
    """Install the ``.s9pk`` the web layer received for an upload claim; reply with ``InstallStarted``.

    ``path`` is the file the upload was written to; it is removed once the install has read it.
    """

    path: str
    accept_new_key: bool = False

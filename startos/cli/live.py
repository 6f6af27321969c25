"""Live streams for start-cli: the WebSocket at ``/ws/rpc/{guid}`` and the state tree's patches.

``db.subscribe`` answers with a dump of a pointer and a guid; the socket then carries every
revision under that pointer as ``{id, patch}`` (paths relative to the pointer). :func:`watch`
keeps the value current from those patches, so the CLI waits on the server's news instead of
asking for the whole tree again and again.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import jsonpatch

from startos.errors import StartOSError

if TYPE_CHECKING:
    from startos.cli.start_cli import Context

__all__ = ["close_socket", "open_socket", "watch"]


def open_socket(ctx: Context, guid: str, what: str) -> Any:
    """The WebSocket at /ws/rpc/{guid}, with the same cookies and TLS trust as every call."""
    import simple_websocket

    url = ctx.client.url.replace("http", "ws", 1) + f"/ws/rpc/{guid}"
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in ctx.client.cookies.items())} if ctx.client.cookies else None
    ssl_context = ctx.client._tls if url.startswith("wss") else None
    try:
        return simple_websocket.Client.connect(url, headers=headers, ssl_context=ssl_context)
    except (OSError, simple_websocket.ConnectionError) as exc:
        raise StartOSError(f"cannot {what} at {url}: {exc}") from exc


def close_socket(ws: Any) -> None:
    try:
        ws.close()
    except Exception:  # noqa: BLE001 (the server closed first: nothing left to close)
        pass


def watch(ctx: Context, pointer: str, what: str) -> Generator[Any, None, None]:
    """The value at ``pointer`` now, then again after each revision that changes it.

    Stop iterating to close the stream. Raises ``StartOSError`` naming ``what`` the caller was
    waiting for if the server ends the stream (it stopped, or this reader fell behind).
    """
    import simple_websocket

    result = ctx.call("db.subscribe", {"pointer": pointer})
    value = result["dump"]["value"]
    ws = open_socket(ctx, result["guid"], f"follow {what}")
    try:
        yield value
        while True:
            message = ws.receive()
            if message is None:
                continue  # no timeout was asked for: nothing arrived yet
            revision = json.loads(message)
            value = jsonpatch.apply_patch(value, revision["patch"])
            yield value
    except simple_websocket.ConnectionClosed:
        raise StartOSError(f"the server ended the stream while waiting for {what}; try again") from None
    finally:
        close_socket(ws)

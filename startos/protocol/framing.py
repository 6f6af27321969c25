"""Length-prefixed MessagePack frames for stream sockets.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of MessagePack.
The reader refuses a length over its limit *before* reading the body, so a hostile peer cannot
make us allocate more than the limit.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, TypeVar

import msgspec

from startos.errors import StartOSError
from startos.protocol.limits import decode_msgpack

T = TypeVar("T")

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 16 * 1024 * 1024

_encoder = msgspec.msgpack.Encoder()


class FrameError(StartOSError):
    """Raised when a peer sends a frame that is too large, truncated or undecodable."""

    kind = 12  # Deserialization


class PeerClosed(FrameError):
    """Raised when the peer closed the stream cleanly between frames."""


def encode_frame(message: Any) -> bytes:
    """One frame holding ``message`` encoded as MessagePack."""
    body = _encoder.encode(message)
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes as they arrive, get whole frames' bodies back."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        buf = self._buffer
        while len(buf) >= HEADER.size:
            (length,) = HEADER.unpack_from(buf)
            if length > self.max_frame:
                raise FrameError(f"frame of {length} bytes exceeds the limit of {self.max_frame}")
            end = HEADER.size + length
            if len(buf) < end:
                break
            frames.append(bytes(buf[HEADER.size : end]))
            del buf[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buffer)


def _recv_exactly(sock: socket.socket, size: int, *, at_boundary: bool) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            if at_boundary and not chunks:
                raise PeerClosed("peer closed the connection")
            raise FrameError(f"connection closed mid-frame ({len(chunks)} of {size} bytes)")
        chunks += chunk
    return bytes(chunks)


def read_frame(sock: socket.socket, message_type: type[T], *, max_frame: int = DEFAULT_MAX_FRAME) -> T:
    """Read one frame and decode it strictly as ``message_type``."""
    (length,) = HEADER.unpack(_recv_exactly(sock, HEADER.size, at_boundary=True))
    if length > max_frame:
        raise FrameError(f"frame of {length} bytes exceeds the limit of {max_frame}")
    body = _recv_exactly(sock, length, at_boundary=False)
    return decode_body(body, message_type)


def decode_body(body: bytes, message_type: type[T]) -> T:
    """Decode a frame's body strictly, nested at most ``limits.MAX_DEPTH`` levels."""
    try:
        result: T = decode_msgpack(body, message_type, what="the frame")
    except msgspec.DecodeError as exc:
        raise FrameError(f"bad frame: {exc}") from exc
    return result


def write_frame(sock: socket.socket, message: Any) -> None:
    sock.sendall(encode_frame(message))

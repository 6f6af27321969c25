"""The one depth limit for JSON and MessagePack values crossing a boundary.

Every value that enters the server (an RPC body, a WebSocket message, a runtime frame, a
manifest, an action's input) is decoded through :func:`decode_json` or :func:`decode_msgpack`,
which refuse anything nested deeper than :data:`MAX_DEPTH` levels *before* the value reaches
code that recurses over it. msgspec's decoders recurse in C and raise ``RecursionError``
somewhere past ~850 levels, depending on how deep the caller's stack already is; a value a few
hundred levels deep decodes fine and then breaks whatever walks it next (patching, encoding a
snapshot, a subscriber's view). So the limit must hold at the edge, and be far below either.

The state tree adds its own path on top of such values: the store refuses any change that
would make the document deeper than :data:`MAX_TREE_DEPTH` (a boundary value placed at most
``MAX_DEPTH`` levels down), so stacked writes cannot build a tree that no longer encodes.

Errors are ``msgspec.DecodeError`` subclasses, so every caller that already handles a bad
encoding handles these too, and each says what rule was broken.

No library offers a depth limit for msgspec's decoders (nor for the stdlib ``json``), hence the
scanners below; each runs at C speed (regex, ``bytes.translate``, ``itertools``).
"""

from __future__ import annotations

import operator
import re
from itertools import accumulate, count
from typing import Any, TypeVar

import msgspec

__all__ = [
    "MAX_DEPTH",
    "MAX_TREE_DEPTH",
    "DepthError",
    "decode_json",
    "decode_msgpack",
    "json_depth",
    "value_depth_exceeds",
]

T = TypeVar("T")

MAX_DEPTH = 64
"""Containers (objects/maps and arrays) a value may nest, counting its outermost one."""

MAX_TREE_DEPTH = 2 * MAX_DEPTH
"""How deep the state tree may become: a ``MAX_DEPTH`` value at most ``MAX_DEPTH`` levels down."""


class DepthError(msgspec.DecodeError):
    """Raised when a value nests deeper than the limit; the message names the limit."""

    def __init__(self, limit: int, what: str = "the value") -> None:
        super().__init__(f"{what} nests deeper than {limit} levels (the limit)")
        self.limit = limit


# A JSON string, escapes included ("unrolled loop" form: linear, no backtracking blow-up).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# Openers count 2 and closers 0: the running sum minus the position is the depth there.
_BRACKET_WEIGHT = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def json_depth(data: bytes, limit: int = MAX_DEPTH) -> int:
    """How deep the JSON text ``data`` nests (0 for a scalar); exact up to ``limit``.

    Cheap when the text holds at most ``limit`` brackets (then it cannot be deeper, and the
    answer is only an upper bound). Malformed text gives some number: the decoder reports it.
    """
    openers = data.count(b"[") + data.count(b"{")
    if openers <= limit:
        return openers
    weights = _JSON_STRING.sub(b"", data).translate(_BRACKET_WEIGHT, _NOT_BRACKET)
    return max(map(operator.sub, accumulate(weights), count(1)), default=0)


def decode_json(
    data: bytes | bytearray | memoryview | str,
    type: Any = Any,
    *,
    limit: int = MAX_DEPTH,
    what: str = "the value",
    strict: bool = True,
) -> Any:
    """``msgspec.json.decode`` that refuses values deeper than ``limit`` and bad UTF-8.

    Raises ``DepthError`` or ``msgspec.DecodeError`` (``msgspec.ValidationError`` for a value
    of the wrong shape, as msgspec does).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if json_depth(raw, limit) > limit:
        raise DepthError(limit, what)
    try:
        return msgspec.json.decode(raw, type=type, strict=strict)
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    except RecursionError:  # only reachable with a limit far above MAX_DEPTH
        raise DepthError(limit, what) from None


# MessagePack container headers: fixmap, fixarray, array16/32, map16/32. Counting these bytes
# over-counts (string and binary bodies hold any byte), so it only ever errs on the safe side.
_NOT_CONTAINER_HEADER = bytes(b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF))


def decode_msgpack(data: bytes, type: Any = Any, *, limit: int = MAX_DEPTH, what: str = "the value") -> Any:
    """``msgspec.msgpack.decode`` that refuses values deeper than ``limit``.

    A frame with at most ``limit`` container-looking bytes cannot be too deep and decodes
    directly; a larger one is first decoded untyped and measured (bounded by the frame size).
    """
    try:
        suspect = len(data.translate(None, _NOT_CONTAINER_HEADER)) > limit
        if suspect and value_depth_exceeds(msgspec.msgpack.decode(data), limit):
            raise DepthError(limit, what)
        return msgspec.msgpack.decode(data, type=type)
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError(f"{what} holds a string that is not valid UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise DepthError(limit, what) from None


def value_depth_exceeds(value: Any, limit: int) -> bool:
    """True when a decoded value (dicts, lists, tuples, scalars) nests deeper than ``limit``.

    Iterative, and it stops as soon as the limit is passed: safe on any value.
    """
    if not isinstance(value, dict | list | tuple):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))
    return False

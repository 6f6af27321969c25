"""Varints and varstrings of the s9pk v2 merkle archive (REFERENCE.md §1).

A ``varint`` is unsigned LEB128 as written by Rust's ``integer_encoding`` crate (at most 10 bytes
for a u64); a ``varstring`` is a varint byte length followed by that many UTF-8 bytes, capped at
1 MiB. The readers here are stricter than StartOS's: StartOS silently truncates an over-long
varstring and accepts non-minimal varints, which would let bytes change without changing the
parsed value. Refusing them means every TOC has exactly one encoding, so any flipped bit shows up
as a parse error or a hash mismatch.
"""

from __future__ import annotations

from startos.s9pk.errors import S9pkError

__all__ = [
    "MAX_VARINT_LEN",
    "MAX_VARSTRING_LEN",
    "decode_varint",
    "decode_varstring",
    "encode_varint",
    "encode_varstring",
    "varint_size",
    "varstring_size",
]

MAX_VARINT_LEN = 10  # ceil(64 / 7): the longest LEB128 encoding of a u64
MAX_VARSTRING_LEN = 1024 * 1024  # StartOS's MAX_STR_LEN
_U64_MAX = (1 << 64) - 1


def encode_varint(n: int) -> bytes:
    """Encode ``0 <= n < 2**64`` as minimal unsigned LEB128."""
    if n < 0 or n > _U64_MAX:
        raise ValueError(f"varint out of range: {n}")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint_size(n: int) -> int:
    """The number of bytes :func:`encode_varint` writes for ``n``."""
    return max(1, (n.bit_length() + 6) // 7)


def decode_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a varint at ``buf[pos:]``; return ``(value, next_pos)``.

    Raises :class:`S9pkError` when the buffer ends first, the encoding runs past 10 bytes,
    the value overflows a u64, or the encoding is not minimal.
    """
    result = 0
    shift = 0
    start = pos
    end = len(buf)
    while True:
        if pos >= end:
            raise S9pkError("truncated varint: the table of contents ends inside a number")
        if pos - start >= MAX_VARINT_LEN:
            raise S9pkError("varint longer than 10 bytes")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    if result > _U64_MAX:
        raise S9pkError("varint overflows 64 bits")
    if pos - start > 1 and b == 0:
        raise S9pkError("varint is not minimally encoded")
    return result, pos


def encode_varstring(s: str) -> bytes:
    """Encode ``s`` as varint(len) + UTF-8; refuse strings over 1 MiB."""
    raw = s.encode("utf-8")
    if len(raw) > MAX_VARSTRING_LEN:
        raise ValueError(f"string of {len(raw)} bytes exceeds the 1 MiB varstring cap")
    return encode_varint(len(raw)) + raw


def varstring_size(s: str) -> int:
    """The number of bytes :func:`encode_varstring` writes for ``s``."""
    n = len(s.encode("utf-8"))
    return varint_size(n) + n


def decode_varstring(buf: bytes | memoryview, pos: int) -> tuple[str, int]:
    """Decode a varstring at ``buf[pos:]``; return ``(text, next_pos)``.

    Raises :class:`S9pkError` when the length is over 1 MiB, the buffer ends first, or the bytes
    are not UTF-8.
    """
    length, pos = decode_varint(buf, pos)
    if length > MAX_VARSTRING_LEN:
        raise S9pkError(f"varstring of {length} bytes exceeds the 1 MiB cap")
    if pos + length > len(buf):
        raise S9pkError("truncated varstring: the table of contents ends inside a name")
    try:
        text = bytes(buf[pos : pos + length]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise S9pkError("name is not valid UTF-8") from exc
    return text, pos + length

"""The one depth limit (``startos.protocol.limits``) and runtime frames, under hostile bytes.

Property tests: deeply nested MessagePack and JSON are refused without recursion, arbitrary bytes
only ever raise the documented errors, and ``json_depth`` measures nesting exactly where it must
(issue #10). The same limit over HTTP is tested in ``test_hostile_input.py``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from startos.protocol import runtime as wire
from startos.protocol.framing import FrameError, decode_body
from startos.protocol.limits import MAX_DEPTH, DepthError, decode_json, decode_msgpack, json_depth

# -- runtime frames and the depth limit ----------------------------------------------------------

FRAME_TYPE: Any = wire.ToHost  # the union the host decodes every runtime frame into
PURE = settings(max_examples=400, deadline=None, derandomize=True, database=None)

# MessagePack container headers: (label, header of a one-element container, what it holds).
CONTAINERS = [
    ("fixarray", b"\x91", b""),
    ("array16", b"\xdc\x00\x01", b""),
    ("array32", b"\xdd\x00\x00\x00\x01", b""),
    ("fixmap", b"\x81", b"\xa1a"),
    ("map16", b"\xde\x00\x01", b"\xa1a"),
    ("map32", b"\xdf\x00\x00\x00\x01", b"\xa1a"),
]


def nested_msgpack(header: bytes, key: bytes, levels: int) -> bytes:
    return (header + key) * levels + b"\xc0"


@pytest.mark.parametrize("levels", [65, 500, 900, 5000, 100_000])
@pytest.mark.parametrize(("label", "header", "key"), CONTAINERS)
def test_deep_msgpack_is_refused_without_recursion(label: str, header: bytes, key: bytes, levels: int) -> None:
    data = nested_msgpack(header, key, levels)
    with pytest.raises(DepthError):
        decode_msgpack(data)
    with pytest.raises(FrameError, match="deeper than"):
        decode_body(data, FRAME_TYPE)
    envelope = b"\x82\xa4type\xa6notice\xa6effect" + data  # {"type": "notice", "effect": <deep>}
    with pytest.raises(FrameError, match="deeper than"):
        decode_body(envelope, FRAME_TYPE)


@pytest.mark.parametrize(("label", "header", "key"), CONTAINERS)
def test_msgpack_at_the_limit_decodes(label: str, header: bytes, key: bytes) -> None:
    value = decode_msgpack(nested_msgpack(header, key, MAX_DEPTH))
    depth = 0
    while isinstance(value, list | dict):
        value = value[0] if isinstance(value, list) else value["a"]
        depth += 1
    assert depth == MAX_DEPTH


@pytest.mark.parametrize(
    "data",
    [
        b"\xdd\xff\xff\xff\xff",  # an array announcing 4 billion items
        b"\xdf\xff\xff\xff\xff",  # a map announcing 4 billion pairs
        b"\xdb\xff\xff\xff\xff",  # a 4 GiB string
        b"\xc6\xff\xff\xff\xff",  # 4 GiB of binary
        b"\xc9\xff\xff\xff\xff\x01",  # a 4 GiB extension
        b"\xd6\xff\x00",  # a truncated timestamp
        b"\xdc\x01\x00" + b"\x90" * 256,  # many containers, but shallow
        b"\xdc\xff\xff" + b"\x91" * 65535,  # 65535 one-item arrays, truncated
    ],
)
def test_msgpack_bombs_are_refused_quickly(data: bytes) -> None:
    started = time.monotonic()
    try:
        decode_msgpack(data)
    except msgspec.DecodeError:
        pass
    with pytest.raises(FrameError):
        decode_body(data, FRAME_TYPE)
    assert time.monotonic() - started < 5.0


@PURE
@given(data=st.binary(max_size=300))
@example(data=nested_msgpack(b"\x91", b"", 100_000))
@example(data=nested_msgpack(b"\x81", b"\xa1a", 100_000))
@example(data=b"\x83\xa4type\xa5reply\xa2id\x01\xa6result\xc0")  # neither result nor error
@example(data=b"\x83\xa4type\xa5reply\xa2id\xcf\xff\xff\xff\xff\xff\xff\xff\xff\xa6result\xc0")
def test_runtime_frames_only_raise_frame_error(data: bytes) -> None:
    try:
        frame = decode_body(data, FRAME_TYPE)
    except FrameError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(frame, wire.RuntimeReply | wire.EffectCall | wire.EffectNotice)
    try:
        decode_msgpack(data)
    except msgspec.DecodeError:
        pass


_bracket_text = st.text(alphabet='[]{}"\\,: a\u00e9\u2028\x00', max_size=12)
_json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), _bracket_text
)
bracket_json = st.recursive(
    _json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_bracket_text, inner, max_size=3),
    max_leaves=20,
)


def true_depth(value: Any) -> int:
    """How many containers nest in ``value`` (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def encodings(value: Any) -> list[bytes]:
    """``value`` as JSON text the way different writers put it (escaped, pretty, raw UTF-8)."""
    return [
        msgspec.json.encode(value),
        json.dumps(value).encode(),
        json.dumps(value, indent=1, ensure_ascii=False).encode(),
    ]


@PURE
@given(value=bracket_json, limit=st.integers(min_value=0, max_value=8))
@example(value=[[], []], limit=0)
@example(value={"[[[": ['"]]]', "\\", {'\\"{': []}]}, limit=1)
def test_json_depth_measures_nesting(value: Any, limit: int) -> None:
    depth = true_depth(value)
    for data in encodings(value):
        # Exact whenever it has to count (more brackets than the limit); an upper bound otherwise.
        assert json_depth(data, limit=0) == depth, data
        measured = json_depth(data, limit=limit)
        assert measured >= depth, data
        assert (measured > limit) == (depth > limit), data
        if depth <= MAX_DEPTH:
            assert decode_json(data) == value
        else:
            with pytest.raises(DepthError):
                decode_json(data)


@PURE
@given(text=st.one_of(st.binary(max_size=200), st.text(max_size=100)))
@example(text=b"[" * 100_000)
@example(text="\ud800")
@example(text='"\ud800"')
@example(text=b'"\\ud800"')
@example(text="[" * 65 + "]" * 65)
def test_decode_json_only_raises_decode_error(text: bytes | str) -> None:
    try:
        decode_json(text)
    except msgspec.DecodeError:
        pass


def test_decode_json_depth_boundary() -> None:
    assert decode_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(DepthError):
        decode_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    shallow = json.dumps({"k": "[" * 10_000 + "{" * 10_000}).encode()  # brackets only in a string
    assert decode_json(shallow) == {"k": "[" * 10_000 + "{" * 10_000}


def test_a_frame_with_invalid_utf8_is_a_frame_error() -> None:
    with pytest.raises(FrameError):
        decode_body(b"\x81\xa4type\xa3\xff\xfe\xfd", FRAME_TYPE)  # {"type": <3 bytes that are not UTF-8>}

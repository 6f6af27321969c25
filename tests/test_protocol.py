"""Typed messages, MessagePack framing, and the JSON-RPC envelope."""

from __future__ import annotations

import socket

import msgspec
import pytest

from startos.protocol.calls import RpcCall
from startos.protocol.framing import (
    FrameDecoder,
    FrameError,
    PeerClosed,
    decode_body,
    encode_frame,
    read_frame,
    write_frame,
)
from startos.protocol.jsonrpc import Request, parse_body
from startos.protocol.rpc import METHODS, DbApplyParams, EchoParams
from startos.protocol.store import DbApply, DbDump, DbPut


def test_messages_are_immutable_and_reject_unknown_fields() -> None:
    message = DbDump(pointer="/public")
    with pytest.raises(AttributeError):
        message.pointer = "/private"  # type: ignore[misc]
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.msgpack.decode(msgspec.msgpack.encode({"pointer": "", "extra": 1}), type=DbDump)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"message": "x", "sneaky": True}, EchoParams)


def test_rpc_params_are_camel_case_and_typed() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"Expected `str`, got `int` - at `\$.message`"):
        msgspec.convert({"message": 1}, EchoParams)
    params = msgspec.convert({"patch": [{"op": "move", "from": "/public/a", "path": "/public/b"}]}, DbApplyParams)
    assert msgspec.to_builtins(params.patch) == [{"op": "move", "path": "/public/b", "from": "/public/a"}]
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"patch": [{"op": "frobnicate", "path": "/public/a"}]}, DbApplyParams)


def test_every_declared_method_has_struct_params() -> None:
    for spec in METHODS.values():
        assert issubclass(spec.params, msgspec.Struct), spec.name
        assert spec.summary


def test_frames_round_trip_through_a_socket() -> None:
    left, right = socket.socketpair()
    try:
        for message in (DbPut(pointer="/public/x", value={"a": [1, 2]}), DbApply(patch=[])):
            write_frame(left, message)
            assert read_frame(right, type(message)) == message
        left.close()
        with pytest.raises(PeerClosed):
            read_frame(right, DbDump)
    finally:
        left.close()
        right.close()


def test_a_frame_over_the_limit_is_refused_before_its_body_is_read() -> None:
    left, right = socket.socketpair()
    try:
        left.sendall(b"\xff\xff\xff\xff")  # claims 4 GiB and sends nothing more
        with pytest.raises(FrameError, match="exceeds the limit"):
            read_frame(right, DbDump, max_frame=1024)
    finally:
        left.close()
        right.close()


def test_a_truncated_frame_is_an_error_not_a_hang() -> None:
    left, right = socket.socketpair()
    try:
        frame = encode_frame(DbDump(pointer="/public"))
        left.sendall(frame[:-2])
        left.close()
        with pytest.raises(FrameError, match="mid-frame"):
            read_frame(right, DbDump)
    finally:
        right.close()


def test_incremental_decoder_splits_and_joins_frames() -> None:
    frames = encode_frame(DbDump(pointer="/a")) + encode_frame(DbDump(pointer="/b"))
    decoder = FrameDecoder()
    got = []
    for i in range(len(frames)):
        got += decoder.feed(frames[i : i + 1])
    assert [decode_body(body, DbDump).pointer for body in got] == ["/a", "/b"]
    assert decoder.pending == 0
    with pytest.raises(FrameError):
        FrameDecoder(max_frame=4).feed(encode_frame(DbDump(pointer="/long")))


def test_bad_frame_body_is_a_typed_error() -> None:
    with pytest.raises(FrameError, match="bad frame"):
        decode_body(b"\xc1", DbDump)
    with pytest.raises(FrameError):
        decode_body(msgspec.msgpack.encode({"method": 3}), RpcCall)


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{", -32700), (b"[]", -32600)],
)
def test_bodies_that_are_not_requests(body: bytes, code: int) -> None:
    from startos.protocol.jsonrpc import RpcError

    with pytest.raises(RpcError) as info:
        parse_body(body)
    assert info.value.kind == code


def test_a_batch_keeps_good_and_bad_items_apart() -> None:
    is_batch, items = parse_body(
        b'[{"jsonrpc":"2.0","id":1,"method":"echo"}, 5, {"jsonrpc":"1.0","id":"x","method":"echo"},'
        b' {"jsonrpc":"2.0","method":"echo"}]'
    )
    assert is_batch
    assert isinstance(items[0], Request) and items[0].id == 1
    assert items[1][0] is None and items[1][1].kind == -32600  # type: ignore[index]
    assert items[2][0] == "x" and items[2][1].kind == -32600  # type: ignore[index]
    assert isinstance(items[3], Request) and items[3].is_notification

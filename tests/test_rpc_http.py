"""JSON-RPC over HTTP: the methods, the bad input, the live patch socket."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websocket

from startos.protocol.rpc import METHODS

from .conftest import TreeHarness
from .rpc_client import Http


@pytest.fixture
def http(session_http: Http) -> Http:
    """A logged-in client: these tests are about RPC, not about sessions."""
    return session_http


def dump(http: Http) -> Any:
    return http.call("db.dump", {"pointer": "/public"})["result"]


def test_echo_and_git_info(http: Http) -> None:
    assert http.call("echo", {"message": "héllo"}) == {"jsonrpc": "2.0", "id": 1, "result": "héllo"}
    info = http.call("git-info")["result"]
    assert info is None or len(info.split("-")[0]) == 40


def test_state_is_an_openrpc_document_listing_every_method(http: Http) -> None:
    spec = http.call("state")["result"]
    assert spec["openrpc"].startswith("1.") and spec["info"]["title"] == "startos-py"
    listed = {m["name"]: m for m in spec["methods"]}
    assert set(listed) == set(METHODS)
    put = listed["db.put"]
    assert [(p["name"], p["required"]) for p in put["params"]] == [("pointer", True), ("value", True)]
    assert listed["echo"]["params"][0]["schema"] == {"type": "string"}
    patch_schema = listed["db.apply"]["params"][0]["schema"]
    assert patch_schema["type"] == "array"
    assert "AddOp" in spec["components"]["schemas"]


def test_put_dump_apply_with_patch_sequence_header(http: Http) -> None:
    base = dump(http)["id"]
    status, headers, body = http.post(
        json.dumps(
            {"jsonrpc": "2.0", "id": 7, "method": "db.put", "params": {"pointer": "/public/ui/theme", "value": "dark"}}
        )
    )
    assert status == 200 and body == {"jsonrpc": "2.0", "id": 7, "result": None}
    first = int(headers["x-patch-sequence"])
    assert first > base
    _, headers, body = http.post(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 8,
                "method": "db.apply",
                "params": {
                    "patch": [
                        {"op": "add", "path": "/public/ui/n", "value": 1},
                        {"op": "move", "from": "/public/ui/n", "path": "/public/ui/m"},
                    ]
                },
            }
        )
    )
    assert "error" not in body and int(headers["x-patch-sequence"]) > first
    assert dump(http)["value"]["ui"] == {"theme": "dark", "m": 1}
    _, headers, _ = http.post(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "echo", "params": {"message": "x"}}))
    assert "x-patch-sequence" not in headers


def error_of(body: Any) -> tuple[int, str]:
    return body["error"]["code"], body["error"]["data"]["details"]


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (b"not json", -32700, "not valid JSON"),
        (b'{"jsonrpc": "2.0", "id": 1', -32700, "not valid JSON"),
        (b"[]", -32600, "empty batch"),
        (b'"just a string"', -32600, "JSON object"),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "echo"}', -32600, '"jsonrpc" must be "2.0"'),
        (b'{"jsonrpc": "2.0", "id": 1}', -32600, "method"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "nope"}', -32601, "no method 'nope'"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": 5}}', -32602, "Expected `str`"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {}}', -32602, "missing required field"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": "a", "x": 1}}', -32602, "unknown field"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": ["positional"]}', -32602, "named params"),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "db.apply", "params": {"patch": [{"op": "zap", "path": "/public/a"}]}}',  # noqa: E501
            -32602,
            "zap",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "db.apply", "params": {"patch": [{"op": "remove", "path": "/public/ui/nothing"}]}}',  # noqa: E501
            29,
            "cannot apply",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "db.put", "params": {"pointer": "/public/ui/a/b/c", "value": 1}}',
            29,
            "nothing at",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "db.put", "params": {"pointer": "no-slash", "value": 1}}',
            34,
            "not allowed",
        ),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "db.dump", "params": {"pointer": "/private"}}', 34, "not allowed"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "db.dump", "params": {"pointer": ""}}', 34, "not allowed"),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "db.put", "params": {"pointer": "/public", "value": {}}}',
            34,
            "below /public",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "db.apply", "params": {"patch": [{"op": "copy", "from": "/private", "path": "/public/ui/leak"}]}}',  # noqa: E501
            34,
            "not allowed",
        ),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "db.subscribe", "params": {"pointer": "/private/x"}}',
            34,
            "not allowed",
        ),
    ],
)
def test_bad_input_gets_the_right_error_and_changes_nothing(http: Http, raw: bytes, code: int, fragment: str) -> None:
    before = dump(http)
    status, _, body = http.post(raw)
    assert status == 200
    got_code, details = error_of(body)
    assert got_code == code and fragment in details
    assert body["jsonrpc"] == "2.0"
    assert dump(http) == before


def test_a_body_over_the_limit_is_refused_without_reading_it(http: Http) -> None:
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": "x" * 100_000}})
    status, _, body = http.post(big)
    assert status == 200 and error_of(body)[0] == -32600 and "exceeds" in error_of(body)[1]


def test_chunked_bodies_are_read_and_limited(http: Http) -> None:
    def chunked(payload: bytes) -> tuple[int, Any]:
        http.conn.putrequest("POST", "/rpc/v1")
        http.conn.putheader("Transfer-Encoding", "chunked")
        http.conn.putheader("Content-Type", "application/json")
        http.conn.endheaders()
        for start in range(0, len(payload), 1000):
            piece = payload[start : start + 1000]
            http.conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        http.conn.send(b"0\r\n\r\n")
        response = http.conn.getresponse()
        return response.status, json.loads(response.read())

    ok = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": "c" * 5000}}).encode()
    assert chunked(ok)[1]["result"] == "c" * 5000
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": "c" * 100_000}}).encode()
    status, body = chunked(big)
    assert status == 200 and "exceeds" in error_of(body)[1]


def test_a_batch_of_mixed_calls_answers_each(http: Http) -> None:
    base = dump(http)["id"]
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": "a"}},
        {"jsonrpc": "2.0", "id": 2, "method": "db.put", "params": {"pointer": "/public/ui/x", "value": 1}},
        {"jsonrpc": "2.0", "id": 3, "method": "missing"},
        {"jsonrpc": "2.0", "method": "db.put", "params": {"pointer": "/public/ui/y", "value": 2}},
        17,
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "db.apply",
            "params": {"patch": [{"op": "test", "path": "/public/ui/x", "value": 0}]},
        },
    ]
    status, headers, body = http.post(json.dumps(batch))
    assert status == 200 and isinstance(body, list) and len(body) == 5  # the notification gets no answer
    by_id = {item["id"]: item for item in body if item["id"] is not None}
    assert by_id[1]["result"] == "a" and by_id[2]["result"] is None
    assert by_id[3]["error"]["code"] == -32601 and by_id[4]["error"]["code"] == 29
    assert [item["error"]["code"] for item in body if item["id"] is None] == [-32600]
    assert int(headers["x-patch-sequence"]) >= base + 2  # two writes in the batch
    assert dump(http)["value"]["ui"] == {"x": 1, "y": 2}


def test_notifications_only_get_no_content(http: Http) -> None:
    status, _, body = http.post(json.dumps({"jsonrpc": "2.0", "method": "echo", "params": {"message": "a"}}))
    assert status == 204 and body is None


def test_unknown_paths_and_methods_are_json_not_500(http: Http) -> None:
    status, body = http.get("/nothing-here")
    assert status == 404 and b"no such path" in body
    status, body = http.get("/rpc/v1")
    assert status == 405
    status, body = http.get("/")
    assert status == 200 and body.lower().startswith(b"<!doctype html>")


def test_subscribe_streams_patches_over_websocket(web_tree: TreeHarness, http: Http) -> None:
    result = http.call("db.subscribe", {"pointer": "/public/ui"})["result"]
    base = result["dump"]["id"]
    assert result["dump"]["value"] == {}
    url = web_tree.url.replace("http://", "ws://") + f"/ws/rpc/{result['guid']}"  # type: ignore[attr-defined]
    ws = websocket.create_connection(url, timeout=10)
    try:
        http.call("db.put", {"pointer": "/public/ui/a", "value": 1})
        http.call("server.set-language", {"language": "de"})  # a revision outside /public/ui
        http.call("db.apply", {"patch": [{"op": "remove", "path": "/public/ui/a"}]})
        first = json.loads(ws.recv())
        second = json.loads(ws.recv())
        assert first["id"] > base and first["patch"] == [{"op": "add", "path": "/a", "value": 1}]
        assert second["id"] > first["id"] + 1 and second["patch"] == [{"op": "remove", "path": "/a"}]
    finally:
        ws.close()
    # A guid is good for one socket only.
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, timeout=10)


def test_subscribe_can_resume_from_a_revision(web_tree: TreeHarness, http: Http) -> None:
    revisions = []
    for i in range(3):
        request = {"jsonrpc": "2.0", "id": i, "method": "db.put", "params": {"pointer": "/public/ui/i", "value": i}}
        revisions.append(int(http.post(json.dumps(request))[1]["x-patch-sequence"]))
    result = http.call("db.subscribe", {"pointer": "/public/ui", "since": revisions[0]})["result"]
    assert result["dump"] is None
    url = web_tree.url.replace("http://", "ws://") + f"/ws/rpc/{result['guid']}"  # type: ignore[attr-defined]
    ws = websocket.create_connection(url, timeout=10)
    try:
        replayed = [json.loads(ws.recv()) for _ in range(2)]  # everything after value 0, in order
        assert replayed == [
            {"id": revisions[v], "patch": [{"op": "replace", "path": "/i", "value": v}]} for v in (1, 2)
        ]
    finally:
        ws.close()

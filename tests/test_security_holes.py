"""Regression tests for the holes an outside probe found (issue #10), through the public API.

Each test here failed on the code before the fix: client writes outside ``/public/ui``, values
nested deep enough to crash the store or brick the data directory, and batches that made an
anonymous caller's request cost gigabytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.limits import MAX_DEPTH, MAX_TREE_DEPTH
from startos.protocol.store import DbApply, DbDump
from startos.webui.server import GetAddress, WebServerActor

from .conftest import TreeHarness, set_up_server
from .rpc_client import Http


def nested(levels: int, leaf: Any = 1) -> Any:
    """A value ``levels`` arrays deep (built without recursion)."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def nested_json(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


def rpc_body(method: str, params_json: str, request_id: int = 1) -> bytes:
    return f'{{"jsonrpc": "2.0", "id": {request_id}, "method": "{method}", "params": {params_json}}}'.encode()


def error_of(body: Any) -> tuple[int, str]:
    assert isinstance(body, dict) and "error" in body, body
    return body["error"]["code"], body["error"]["data"]["details"]


@pytest.fixture
def big_tree(data_dir: Path) -> Iterator[TreeHarness]:
    """A tree with a 4 MiB body limit (startd's default) that snapshots after every commit."""
    config = TreeConfig(data_dir=data_dir, port=0, mdns=False, store_options={"snapshot_every": 1})
    harness = TreeHarness(start_tree(config))
    harness.url = f"http://127.0.0.1:{harness.ask('web', GetAddress()).port}"  # type: ignore[attr-defined]
    yield harness
    harness.close()


@pytest.fixture
def client(big_tree: TreeHarness) -> Iterator[Http]:
    http = Http(big_tree.url)  # type: ignore[attr-defined]
    set_up_server(http)
    yield http
    http.close()


def set_up_server_login(http: Http) -> None:
    from .conftest import PASSWORD

    assert "error" not in http.call("auth.login", {"password": PASSWORD})


def all_actors_answer(harness: TreeHarness) -> None:
    """Every actor of the tree still answers (the store with a read, the rest with echo)."""
    assert harness.tree.root.is_alive()
    harness.ask("store", DbDump(pointer="/public/ui"))
    for name in harness.directory.names():
        ref = harness.directory.get(name)
        assert ref is not None and ref.is_alive(), f"{name} is not alive"


# -- hole 1 (first half): clients write only /public/ui ----------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("db.put", {"pointer": "/public/packageData/~1tmp~1victim", "value": {"stateInfo": {"state": "installing"}}}),
        ("db.put", {"pointer": "/public/packageData/..~1..~1victim", "value": {}}),
        ("db.put", {"pointer": "/public/serverInfo/id", "value": None}),
        ("db.apply", {"patch": [{"op": "add", "path": "/public/packageData/x", "value": {}}]}),
        ("db.apply", {"patch": [{"op": "remove", "path": "/public/serverInfo/id"}]}),
        ("db.apply", {"patch": [{"op": "move", "from": "/public/serverInfo/name", "path": "/public/ui/name"}]}),
        ("db.apply", {"patch": [{"op": "remove", "path": "/public/ui"}]}),
        ("db.put.ui", {"pointer": "", "value": [1]}),
    ],
)
def test_clients_cannot_write_outside_the_ui_subtree(client: Http, method: str, params: dict[str, Any]) -> None:
    before = client.call("db.dump", {"pointer": "/public"})["result"]["value"]
    code, details = error_of(client.call(method, params))
    assert code in (34, -32602) and "/public/ui" in details
    assert client.call("db.dump", {"pointer": "/public"})["result"]["value"] == before


def test_clients_still_write_and_read_the_ui_subtree(client: Http) -> None:
    assert "error" not in client.call("db.put", {"pointer": "/public/ui/theme", "value": "dark"})
    patch = [
        {"op": "test", "path": "/public/serverInfo/language", "value": "en"},  # reading elsewhere is fine
        {"op": "copy", "from": "/public/serverInfo/name", "path": "/public/ui/shownName"},
        {"op": "move", "from": "/public/ui/theme", "path": "/public/ui/look"},
    ]
    assert "error" not in client.call("db.apply", {"patch": patch})
    ui = client.call("db.dump", {"pointer": "/public/ui"})["result"]["value"]
    assert ui == {"look": "dark", "shownName": "My Cool Server"}


# -- hole 2: a deeply nested value never reaches the store -------------------------------------


@pytest.mark.parametrize("levels", [MAX_DEPTH, 440, 867, 868, 5000, 100_000])
@pytest.mark.parametrize("method", ["db.put", "db.apply", "db.put.ui"])
def test_deep_values_get_a_jsonrpc_error_and_the_store_lives(
    big_tree: TreeHarness, client: Http, method: str, levels: int
) -> None:
    store = big_tree.directory.get("store")
    deep = nested_json(levels)
    params = {
        "db.put": f'{{"pointer": "/public/ui/x", "value": {deep}}}',
        "db.put.ui": f'{{"pointer": "/x", "value": {deep}}}',
        "db.apply": f'{{"patch": [{{"op": "add", "path": "/public/ui/x", "value": {deep}}}]}}',
    }[method]
    status, _, body = client.post(rpc_body(method, params))
    assert status == 200
    code, details = error_of(body)
    assert code == -32600 and f"deeper than {MAX_DEPTH} levels" in details
    assert big_tree.directory.get("store") is store  # never restarted
    all_actors_answer(big_tree)


def test_many_deep_requests_in_a_row_leave_startd_running(big_tree: TreeHarness, client: Http) -> None:
    store = big_tree.directory.get("store")
    body = rpc_body("db.put", f'{{"pointer": "/public/ui/x", "value": {nested_json(600)}}}')
    for _ in range(30):  # the probe ended startd with one per second for ~7 s
        status, _, answer = client.post(body)
        assert status == 200 and error_of(answer)[0] == -32600
    assert big_tree.directory.get("store") is store
    assert client.call("echo", {"message": "still here"})["result"] == "still here"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (nested_json(868).encode(), -32600),
        (b"[" * 100_000, -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": "\xff\xfe"}}', -32700),
        (b"\xc3\x28", -32700),
    ],
)
def test_before_login_a_hostile_body_gets_a_jsonrpc_error_not_http_500(
    big_tree: TreeHarness, raw: bytes, code: int
) -> None:
    anonymous = Http(big_tree.url)  # type: ignore[attr-defined]
    try:
        status, _, body = anonymous.post(raw)
        assert status == 200
        assert error_of(body)[0] == code
    finally:
        anonymous.close()


def test_a_value_at_the_limit_is_accepted(client: Http) -> None:
    # The request object and its params take two levels of the body's limit.
    value = nested(MAX_DEPTH - 3)
    assert "error" not in client.call("db.put", {"pointer": "/public/ui/x", "value": value})
    assert client.call("db.dump", {"pointer": "/public/ui/x"})["result"]["value"] == value


# -- hole 4: stacked values cannot brick the data directory ------------------------------------


def test_stacked_values_cannot_nest_the_tree_past_its_limit(big_tree: TreeHarness, client: Http) -> None:
    chunk = MAX_DEPTH - 4
    pointer = "/public/ui/stack"
    refused = None
    for _ in range(2 * MAX_TREE_DEPTH // chunk + 2):
        answer = client.call("db.put", {"pointer": pointer, "value": nested(chunk)})
        if "error" in answer:
            refused = error_of(answer)
            break
        pointer += "/0" * chunk
    assert refused is not None, "the tree grew without bound"
    assert refused[0] == 29 and f"deeper than {MAX_TREE_DEPTH} levels" in refused[1]
    # Everything still reads, streams and writes, and every commit snapshots (snapshot_every=1).
    assert "error" not in client.call("db.dump", {"pointer": "/public"})
    assert "error" not in client.call("db.subscribe", {"pointer": "/public"})
    assert "error" not in client.call("db.put", {"pointer": "/public/ui/after", "value": 1})


def test_an_internal_writer_cannot_nest_the_tree_past_its_limit_either(big_tree: TreeHarness) -> None:
    from startos.actors.patching import PatchError

    with pytest.raises(PatchError, match=f"deeper than {MAX_TREE_DEPTH} levels"):
        big_tree.ask(
            "store", DbApply(patch=[{"op": "add", "path": "/public/ui/x", "value": nested(500)}], owner="client")
        )
    big_tree.ask("store", DbApply(patch=[{"op": "add", "path": "/public/ui/x", "value": nested(100)}], owner="client"))
    # A copy deeper down counts the copied value's depth too.
    with pytest.raises(PatchError, match="deeper than"):
        big_tree.ask(
            "store",
            DbApply(patch=[{"op": "copy", "from": "/public/ui/x", "path": "/public/ui/x" + "/0" * 60}], owner="client"),
        )
    all_actors_answer(big_tree)


def test_the_data_directory_opens_again_after_hostile_writes(data_dir: Path) -> None:
    config = TreeConfig(data_dir=data_dir, port=0, mdns=False)
    first = TreeHarness(start_tree(config))
    try:
        http = Http(f"http://127.0.0.1:{first.ask('web', GetAddress()).port}")
        set_up_server(http)
        pointer = "/public/ui/s"
        for _ in range(20):  # ~1,200 levels in all bricked the directory before the fix
            http.call("db.put", {"pointer": pointer, "value": nested(MAX_DEPTH - 4)})
            pointer += "/0" * (MAX_DEPTH - 4)
        http.close()
    finally:
        first.close()
    second = TreeHarness(start_tree(config))
    try:
        http = Http(f"http://127.0.0.1:{second.ask('web', GetAddress()).port}")
        set_up_server_login(http)
        assert http.call("db.dump", {"pointer": "/public/serverInfo/name"})["result"]["value"] == "My Cool Server"
        assert "error" not in http.call("db.dump", {"pointer": "/public"})  # failed before the fix
        http.close()
    finally:
        second.close()


# -- hole 5: batches are bounded ----------------------------------------------------------------


def batch_of(method: str, count: int) -> bytes:
    calls = [{"jsonrpc": "2.0", "id": i, "method": method} for i in range(count)]
    return json.dumps(calls, separators=(",", ":")).encode()


def test_an_anonymous_batch_is_small(big_tree: TreeHarness) -> None:
    anonymous = Http(big_tree.url)  # type: ignore[attr-defined]
    try:
        status, _, body = anonymous.post(batch_of("state", 90_000))  # ~4 MB, as the probe sent
        assert status == 200 and error_of(body)[0] == -32600 and "at most 1000 calls" in error_of(body)[1]
        status, _, body = anonymous.post(batch_of("state", 21))
        code, details = error_of(body)
        assert status == 200 and code == -32600 and "at most 20 calls before you log in" in details
        status, _, body = anonymous.post(batch_of("echo", 20))
        assert status == 200 and isinstance(body, list) and len(body) == 20
    finally:
        anonymous.close()


def test_a_batch_with_a_forged_session_counts_as_anonymous(big_tree: TreeHarness) -> None:
    forged = Http(big_tree.url)  # type: ignore[attr-defined]
    try:
        forged.cookies["session"] = "not-a-session"
        _, _, body = forged.post(batch_of("state", 100))
        assert error_of(body)[0] == -32600
    finally:
        forged.close()


def test_a_logged_in_batch_has_a_cap_too(client: Http) -> None:
    _, _, body = client.post(batch_of("echo", 1001))
    assert error_of(body)[0] == -32600 and "at most 1000 calls" in error_of(body)[1]
    _, _, body = client.post(batch_of("state", 100))
    assert isinstance(body, list) and len(body) == 100 and all("result" in r for r in body)


def test_a_batch_stops_running_calls_once_its_responses_pass_the_byte_cap(big_tree: TreeHarness) -> None:
    # A second server on the same tree with a small response cap.
    server = WebServerActor.start(big_tree.directory, "127.0.0.1", 0, max_response=20_000)
    try:
        port = server.ask(GetAddress(), timeout=10).port
        http = Http(f"http://127.0.0.1:{port}")
        set_up_server(http)
        _, _, body = http.post(batch_of("state", 15))
        assert isinstance(body, list) and len(body) == 15
        answered = [r for r in body if "result" in r]
        skipped = [r for r in body if "error" in r]
        assert 1 <= len(answered) < 15 and skipped
        assert [r["id"] for r in body] == list(range(15))
        assert all("not run" in r["error"]["data"]["details"] for r in skipped)
        http.close()
    finally:
        server.stop()

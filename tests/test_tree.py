"""The booted tree: message any actor by name, watch the stream, survive crashes."""

from __future__ import annotations

import pytest

from startos.actors.facade import CallContext, RpcCall, RpcReply
from startos.protocol.jsonrpc import RpcError
from startos.protocol.store import DbPut, DbRevision
from startos.protocol.supervision import WhichChildren

from .conftest import TreeHarness
from .helpers import wait_until


def test_any_actor_answers_typed_messages_by_name(tree: TreeHarness) -> None:
    children = tree.ask("root", WhichChildren())
    assert next(c.id for c in children) == "store" and "facade" in [c.id for c in children]
    assert all(c.state == "running" for c in children)
    assert isinstance(tree.ask("store", DbRevision()), int)
    reply = tree.ask("facade", RpcCall(method="echo", params={"message": "hi"}))
    assert reply == RpcReply(result="hi")
    with pytest.raises(RpcError, match="no method"):
        tree.ask("facade", RpcCall(method="nope"))


ROOT = CallContext(local_root=True)  # as the local start-cli: no session needed


def set_up(tree: TreeHarness) -> None:
    params = {"serverName": "Tree", "password": "a long enough password"}
    tree.ask("facade", RpcCall(method="setup.execute", params=params), timeout=30)


def test_watching_the_patch_stream(tree: TreeHarness) -> None:
    set_up(tree)
    watch = tree.watch("/public")
    reply = tree.ask("facade", RpcCall(method="db.put", params={"pointer": "/public/ui/x", "value": [1]}, context=ROOT))
    assert reply.revision > watch.revision
    assert watch.wait_for(lambda v: v["ui"].get("x") == [1])["ui"] == {"x": [1]}


@pytest.mark.usefixtures("quiet_crashes")
def test_a_crashed_store_is_restarted_with_what_depends_on_it(tree: TreeHarness) -> None:
    tree.ask("store", DbPut(pointer="/public/ui/kept", value=True))
    store, facade = tree.directory.get("store"), tree.directory.get("facade")
    sub = tree.watch("/public").sub
    tree.tell("store", DbPut(pointer=None, value=1))  # type: ignore[arg-type]  # a sender bug crashes the store
    wait_until(lambda: tree.directory.get("store") not in (None, store), what="store restarted")
    wait_until(lambda: tree.directory.get("facade") not in (None, facade), what="facade restarted (rest_for_one)")
    assert sub.get(timeout=5) is None and sub.closed == "store-stopped"
    set_up(tree)
    reply = tree.ask("facade", RpcCall(method="db.dump", params={"pointer": "/public/ui"}, context=ROOT))
    assert reply.result.value == {"kept": True}  # nothing committed was lost

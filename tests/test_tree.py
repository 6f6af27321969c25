"""The booted tree: message any actor by name, watch the stream, survive crashes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from gevent.event import Event

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.calls import CallContext, RpcCall, RpcReply
from startos.protocol.jsonrpc import RpcError
from startos.protocol.store import DbPut, DbRevision
from startos.protocol.supervision import WhichChildren
from startos.supervision import Actor

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
    tree.ask("store", DbPut(pointer="/public/ui/kept", value=True, owner="client"))
    store, facade = tree.directory.get("store"), tree.directory.get("facade")
    sub = tree.watch("/public").sub
    tree.tell("store", DbPut(pointer=None, value=1))  # type: ignore[arg-type]  # a sender bug crashes the store
    wait_until(lambda: tree.directory.get("store") not in (None, store), what="store restarted")
    wait_until(lambda: tree.directory.get("facade") not in (None, facade), what="facade restarted (rest_for_one)")
    assert sub.get(timeout=5) is None and sub.closed == "store-stopped"
    set_up(tree)
    reply = tree.ask("facade", RpcCall(method="db.dump", params={"pointer": "/public/ui"}, context=ROOT))
    assert reply.result.value == {"kept": True}  # nothing committed was lost


class _Stray(Actor):
    """An actor nobody supervises, with a greenlet of its own: what Tree.stop must call a bug."""

    def on_start(self) -> None:
        self.spawn(Event().wait)


def test_stopping_the_tree_reports_actors_and_greenlets_left_running_as_bugs(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outsider = _Stray.start()  # ran before the tree: not the tree's
    tree = start_tree(TreeConfig(data_dir=data_dir, port=None, mdns=False, only=frozenset({"store", "auth"})))
    stray = _Stray.start()
    stray_actor = stray._actor_weakref()
    try:
        with caplog.at_level(logging.ERROR, logger="startos.actors.tree"):
            assert tree.stop(timeout=10)
        bugs = [r.getMessage() for r in caplog.records if r.name == "startos.actors.tree"]
        assert bugs == [
            f"bug: actor {stray} still runs after the tree stopped",
            f"bug: a greenlet of {stray_actor} (Event.wait) still runs after the tree stopped",
        ]
        assert not any(str(outsider) in bug for bug in bugs)
    finally:
        stray.stop()
        outsider.stop()
    assert tree.leftovers() == ([], [])  # the tree's own actors and greenlets (the auth sweeper...) are gone

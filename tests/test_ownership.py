"""One owner per subtree: the store refuses a patch from anyone but the owner of what it writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from startos.actors.patching import PatchError
from startos.actors.store import NotOwnerError
from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.owners import CLIENT, OWNERS, owner_of, service_owner
from startos.protocol.store import DbApply, DbDump, DbPut, DbRevision

from .conftest import TreeHarness
from .helpers import package_entry


@pytest.fixture
def tree(data_dir: Path) -> Iterator[TreeHarness]:
    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=None, only=frozenset({"store"}))))
    yield harness
    harness.close()


@pytest.mark.parametrize(
    ("pointer", "owner"),
    [
        ("/public/packageData/hello/statusInfo/desired", "service:hello"),
        ("/public/packageData/hello/tasks/abc", "service:hello"),
        ("/public/packageData/hello", "services"),
        ("/public/packageData/hello/stateInfo/state", "services"),
        ("/public/packageData/a~1b/statusInfo", "service:a/b"),
        ("/public/serverInfo/name", "auth"),
        ("/public/serverInfo/unreadNotificationCount", "notifications"),
        ("/public/serverInfo/caFingerprint", "certs"),
        ("/public/serverInfo/network/mdns", "mdns"),
        ("/public/ui/theme", CLIENT),
        ("/private/auth/sessions/x", "auth"),
        ("/public/packageData", None),
        ("/public/serverInfo", None),
        ("/public", None),
        ("", None),
    ],
)
def test_every_pointer_has_the_owner_the_table_gives(pointer: str, owner: str | None) -> None:
    assert owner_of(pointer) == owner


def test_the_owner_table_has_no_duplicate_rows() -> None:
    patterns = [pattern for pattern, _ in OWNERS]
    assert len(patterns) == len(set(patterns))


def seed_package(tree: TreeHarness, package_id: str) -> None:
    entry = package_entry()
    entry["statusInfo"]["desired"] = "stopped"
    entry["tasks"] = {}
    tree.ask("store", DbPut(pointer=f"/public/packageData/{package_id}", value=entry, owner="services"))


@pytest.mark.parametrize(
    ("owner", "op"),
    [
        # another service's ServiceActor may not write a task into this package's entry
        ("service:wallet", {"op": "add", "path": "/public/packageData/hello/tasks/t1", "value": {}}),
        # the services manager does not write what the ServiceActor owns
        ("services", {"op": "replace", "path": "/public/packageData/hello/statusInfo/desired", "value": "running"}),
        # a service may not remove its whole entry (that is the manager's)
        ("service:hello", {"op": "remove", "path": "/public/packageData/hello"}),
        # clients write /public/ui only
        (CLIENT, {"op": "replace", "path": "/public/serverInfo/name", "value": "x"}),
        # a move writes its source too
        (CLIENT, {"op": "move", "from": "/public/packageData/hello/tasks", "path": "/public/ui/stolen"}),
        # nobody owns the root of a subtree map
        ("services", {"op": "replace", "path": "/public/packageData", "value": {}}),
        # a writer that does not say who it is
        ("", {"op": "replace", "path": "/public/packageData/hello/statusInfo/desired", "value": "running"}),
    ],
)
def test_a_patch_from_a_non_owner_is_refused_and_nothing_changes(
    tree: TreeHarness, owner: str, op: dict[str, object]
) -> None:
    seed_package(tree, "hello")
    before = tree.ask("store", DbDump(pointer=""))
    with pytest.raises(NotOwnerError) as caught:
        # for a client, a first op it does own: the whole patch is refused, not just the bad op
        first = {"op": "add", "path": "/public/ui/ok", "value": 1}
        if owner != CLIENT:
            first = {"op": "test", "path": "/public/packageData/hello/stateInfo/state", "value": "installed"}
        tree.ask("store", DbApply(patch=[first, op], owner=owner))
    assert str(op["path"] if op["op"] != "move" else op["from"]) in str(caught.value)
    assert caught.value.kind == 34
    assert tree.ask("store", DbDump(pointer="")) == before
    assert tree.ask("store", DbRevision()) == before.id


def test_owners_write_their_own_subtrees_and_anyone_may_test_or_copy_from(tree: TreeHarness) -> None:
    seed_package(tree, "hello")
    owner = service_owner("hello")
    tree.ask(
        "store",
        DbApply(
            patch=[
                {"op": "test", "path": "/public/packageData/hello/stateInfo/state", "value": "installed"},
                {"op": "replace", "path": "/public/packageData/hello/statusInfo/desired", "value": "running"},
            ],
            owner=owner,
        ),
    )
    tree.ask(
        "store",
        DbApply(
            patch=[{"op": "copy", "from": "/public/packageData/hello/statusInfo", "path": "/public/ui/s"}], owner=CLIENT
        ),
    )
    assert tree.ask("store", DbDump(pointer="/public/ui/s")).value["desired"] == "running"
    tree.ask("store", DbApply(patch=[{"op": "remove", "path": "/public/packageData/hello"}], owner="services"))
    assert tree.ask("store", DbDump(pointer="/public/packageData")).value == {}


def test_a_refused_patch_is_still_a_patch_error(tree: TreeHarness) -> None:
    """Callers that catch PatchError (a patch that does not apply) also catch a refusal."""
    with pytest.raises(PatchError):
        tree.ask("store", DbPut(pointer="/public/serverInfo/name", value="x", owner=CLIENT))

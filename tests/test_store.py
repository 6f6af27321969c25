"""StoreActor: atomic patches with revisions, durability, subscriptions, failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest

from startos.actors.patching import PatchError
from startos.actors.store import StoreActor, StoreError
from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.store import (
    DbApply,
    DbDump,
    DbPut,
    DbRevision,
    DbSubscribe,
    DbWaitRevision,
)
from startos.supervision import ActorCrashed, wait_started

from .conftest import TreeHarness
from .helpers import tmpfs


@pytest.fixture
def tree(data_dir: Path) -> Iterator[TreeHarness]:
    """A tree holding only the store: no other actor writes revisions behind the test's back."""
    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=None, only=frozenset({"store"}))))
    yield harness
    harness.close()


def start_store(path: Path, **options: Any) -> Any:
    ref = StoreActor.start(path, **options)
    wait_started(ref, timeout=10)
    return ref


def test_put_apply_dump_with_increasing_revisions(tree: TreeHarness) -> None:
    assert tree.ask("store", DbRevision()) == 0
    assert tree.ask("store", DbPut(pointer="/public/ui/theme", value="dark", owner="client")) == 1
    rev = tree.ask(
        "store",
        DbApply(
            patch=[
                {"op": "add", "path": "/public/ui/list", "value": []},
                {"op": "add", "path": "/public/ui/list/-", "value": 1},
            ],
            owner="client",
        ),
    )
    assert rev == 2
    dump = tree.ask("store", DbDump(pointer="/public/ui"))
    assert dump.id == 2 and dump.value == {"theme": "dark", "list": [1]}
    assert tree.ask("store", DbPut(pointer="/public/ui/list/0", value=9, owner="client")) == 3  # replaces, not inserts
    assert tree.ask("store", DbDump(pointer="/public/ui/list")).value == [9]


def test_a_failing_patch_changes_nothing(tree: TreeHarness) -> None:
    tree.ask("store", DbPut(pointer="/public/ui/a", value=1, owner="client"))
    with pytest.raises(PatchError, match="failed its test"):
        tree.ask(
            "store",
            DbApply(
                patch=[
                    {"op": "replace", "path": "/public/ui/a", "value": 2},
                    {"op": "test", "path": "/public/ui/a", "value": 3},
                ],
                owner="client",
            ),
        )
    dump = tree.ask("store", DbDump(pointer="/public/ui"))
    assert dump == type(dump)(id=1, value={"a": 1})


def test_a_bad_patch_told_by_another_actor_does_not_kill_the_store(tree: TreeHarness) -> None:
    store = tree.directory.get("store")
    tree.tell("store", DbApply(patch=[{"op": "remove", "path": "/public/ui/missing"}], owner="client"))
    assert tree.ask("store", DbPut(pointer="/public/ui/ok", value=True, owner="client")) == 1
    assert tree.directory.get("store") is store


def test_state_survives_a_restart(data_dir: Path) -> None:
    path = data_dir / "state.sqlite3"
    store = start_store(path)
    for i in range(10):
        store.ask(DbPut(pointer=f"/public/ui/k{i}", value=i, owner="client"))
    store.stop()
    again = start_store(path)
    dump = again.ask(DbDump(pointer="/public/ui"))
    assert dump.id == 10 and dump.value == {f"k{i}": i for i in range(10)}
    again.stop()


def test_snapshots_compact_and_replay(data_dir: Path) -> None:
    path = data_dir / "state.sqlite3"
    store = start_store(path, snapshot_every=5, keep_revisions=4)
    for i in range(23):
        store.ask(DbPut(pointer="/public/ui/n", value=i, owner="client"))
    store.stop()
    again = start_store(path, snapshot_every=5, keep_revisions=4)
    assert again.ask(DbDump(pointer="/public/ui/n")).value == 22
    assert again.ask(DbRevision()) == 23
    # The log keeps the newest revisions so clients can resume from one of them.
    sub = again.ask(DbSubscribe(pointer="/public/ui", since=21))
    assert sub.dump is None
    assert [sub.get(timeout=1).id, sub.get(timeout=1).id] == [22, 23]
    old = again.ask(DbSubscribe(pointer="/public/ui", since=3))
    assert old.dump is not None and old.dump.id == 23  # too old to replay: a fresh dump
    again.stop()


def test_subscribers_get_a_dump_then_their_part_of_each_revision(tree: TreeHarness) -> None:
    ui = tree.watch("/public/ui")
    everything = tree.watch("/public")
    tree.ask("store", DbPut(pointer="/public/ui/a", value={"x": 1}, owner="client"))
    tree.ask("store", DbPut(pointer="/public/serverInfo/name", value="box", owner="auth"))
    tree.ask("store", DbApply(patch=[{"op": "add", "path": "/private/serverKey", "value": "s"}], owner="auth"))
    tree.ask("store", DbPut(pointer="/public/ui/a/x", value=2, owner="client"))
    ui.wait_for(lambda v: v.get("a") == {"x": 2})
    everything.wait_for(lambda v: v["serverInfo"]["name"] == "box" and v["ui"]["a"]["x"] == 2)
    assert [r.id for r in ui.revisions] == [1, 4]
    assert ui.revisions[0].patch == [{"op": "add", "path": "/a", "value": {"x": 1}}]
    assert all("private" not in str(r.patch) for r in everything.revisions)


def test_a_slow_subscriber_is_cut_off_not_waited_for(tree: TreeHarness) -> None:
    sub = tree.ask("store", DbSubscribe(pointer="/public", max_queue=3))
    for i in range(6):
        tree.ask("store", DbPut(pointer="/public/ui/i", value=i, owner="client"))
    received = []
    while (revision := sub.get(timeout=1)) is not None:
        received.append(revision.id)
    assert received == [1, 2, 3] and sub.closed == "overflow"


def test_concurrent_writers_share_commits_and_each_gets_its_revision(tree: TreeHarness) -> None:
    def write(i: int) -> int:
        return tree.ask("store", DbPut(pointer=f"/public/ui/w{i}", value=i, owner="client"))  # type: ignore[no-any-return]

    jobs = [gevent.spawn(write, i) for i in range(200)]
    gevent.joinall(jobs, raise_error=True)
    assert sorted(job.value for job in jobs) == list(range(1, 201))
    assert len(tree.ask("store", DbDump(pointer="/public/ui")).value) == 200


def test_wait_revision(tree: TreeHarness) -> None:
    assert tree.ask("store", DbWaitRevision(id=0)) == 0
    rev = tree.ask("store", DbPut(pointer="/public/ui/a", value=1, owner="client"))
    assert tree.ask("store", DbWaitRevision(id=rev)) == rev
    with pytest.raises(StoreError, match="does not exist"):
        tree.ask("store", DbWaitRevision(id=99))


def test_a_damaged_database_is_a_typed_error(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "state.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    ref = StoreActor.start(path)
    with pytest.raises(ActorCrashed, match="state database"):
        wait_started(ref, timeout=10)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Any:
    """A real 1 MiB filesystem to fill up."""
    with tmpfs(tmp_path / "tiny", "1m") as mount:
        yield mount


def test_a_full_disk_rolls_back_and_loses_nothing_committed(tiny_disk: Path) -> None:
    store = start_store(tiny_disk / "state.sqlite3", snapshot_every=1_000_000)
    committed = {}
    blob = "x" * 60_000
    with pytest.raises(StoreError, match="not saved"):
        for i in range(100):
            rev = store.ask(DbPut(pointer=f"/public/ui/b{i}", value=blob, owner="client"))
            committed[f"b{i}"] = rev
    assert committed, "the disk filled before anything was written"
    dump = store.ask(DbDump(pointer="/public/ui"))
    assert sorted(dump.value) == sorted(committed)  # the failed write left no trace in memory
    assert dump.id == max(committed.values())
    # Space freed: writing works again and continues the same history.
    assert store.ask(DbPut(pointer=f"/public/ui/{next(iter(committed))}", value="small", owner="client")) == dump.id + 1
    store.stop()
    again = start_store(tiny_disk / "state.sqlite3")
    assert again.ask(DbRevision()) == dump.id + 1
    again.stop()


def test_the_database_is_private_to_the_server_user(data_dir: Path) -> None:
    store = start_store(data_dir / "db" / "state.sqlite3")
    store.ask(DbPut(pointer="/public/ui/x", value=1, owner="client"))
    db_dir = data_dir / "db"
    assert db_dir.stat().st_mode & 0o777 == 0o700
    for path in db_dir.iterdir():
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is readable by others"
    store.stop()

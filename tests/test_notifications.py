"""Notifications: the NotificationActor by typed messages, the notification.* RPC, start-cli."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from startos.actors.notifications import InvalidNotification, NotificationActor, NotificationNotFound
from startos.actors.tree import TreeConfig, start_tree
from startos.cli.start_cli import cli
from startos.protocol.errors import ErrorKind
from startos.protocol.notifications import (
    DATA_MAX_BYTES,
    MESSAGE_MAX_CHARS,
    TITLE_MAX_CHARS,
    ListNotifications,
    MarkSeen,
    MarkSeenBefore,
    MarkUnseen,
    Notify,
    RemoveNotifications,
    RemoveNotificationsBefore,
)
from startos.protocol.store import DbDump, DbPut, DbRevision
from startos.supervision import wait_started

from .conftest import TreeHarness
from .helpers import wait_until

UNREAD = "unreadNotificationCount"


def notify(tree: TreeHarness, title: str, level: str = "info", **kw: Any) -> int:
    new_id: int = tree.ask("notifications", Notify(level=level, title=title, message=f"about {title}", **kw))  # type: ignore[arg-type]
    return new_id


def listed(tree: TreeHarness, **kw: Any) -> list[tuple[int, str, bool]]:
    return [(n.id, n.title, n.seen) for n in tree.ask("notifications", ListNotifications(**kw))]


def unread(tree: TreeHarness) -> int:
    count: int = tree.ask("store", DbDump(pointer=f"/public/serverInfo/{UNREAD}")).value
    return count


def private(tree: TreeHarness) -> dict[str, Any]:
    value: dict[str, Any] = tree.ask("store", DbDump(pointer="/private/notifications")).value
    return value


# -- the actor ------------------------------------------------------------------------------------


def test_create_and_list_newest_first_with_before_and_limit(tree: TreeHarness) -> None:
    ids = [notify(tree, f"n{i}") for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5  # increasing integers
    assert [i for i, _, _ in listed(tree)] == ids[::-1]
    assert listed(tree, limit=2) == [(ids[4], "n4", False), (ids[3], "n3", False)]
    assert [i for i, _, _ in listed(tree, before=ids[3])] == [ids[2], ids[1], ids[0]]  # lower than before
    assert [i for i, _, _ in listed(tree, before=ids[3], limit=1)] == [ids[2]]
    assert listed(tree, limit=0) == [] and listed(tree, before=ids[0]) == []
    first = tree.ask("notifications", ListNotifications(limit=1))[0]
    assert first.level == "info" and first.message == "about n4" and first.package_id is None
    assert first.code == 0 and first.data is None and first.created_at.endswith("Z")


def test_default_limit_is_40(tree: TreeHarness) -> None:
    for i in range(45):
        tree.tell("notifications", Notify(level="success", title=f"t{i}", message=""))
    wait_until(lambda: unread(tree) == 45, what="45 told notifications stored")
    assert len(listed(tree)) == 40


def test_package_code_and_data_are_kept(tree: TreeHarness) -> None:
    report = {"packages": {"hello": {"error": None}}}
    notify(tree, "Backup complete", level="success", package_id="hello-world", code=1, data=report)
    (item,) = tree.ask("notifications", ListNotifications())
    assert (item.package_id, item.code, item.data, item.level) == ("hello-world", 1, report, "success")


def test_unread_count_is_live_and_changes_in_the_same_revision(tree: TreeHarness) -> None:
    watch = tree.watch("")  # the whole tree (in-process only): both halves of each revision
    public = tree.watch("/public/serverInfo")
    a, b, c = (notify(tree, t) for t in "abc")
    public.wait_for(lambda v: v[UNREAD] == 3)
    tree.ask("notifications", MarkSeen(ids=[a, b]))
    public.wait_for(lambda v: v[UNREAD] == 1)
    tree.ask("notifications", MarkUnseen(ids=[a]))
    public.wait_for(lambda v: v[UNREAD] == 2)
    tree.ask("notifications", RemoveNotifications(ids=[c]))
    public.wait_for(lambda v: v[UNREAD] == 1)
    tree.ask("notifications", MarkSeenBefore(before=c))
    public.wait_for(lambda v: v[UNREAD] == 0)
    entries = lambda v: v["private"]["notifications"]["entries"]  # noqa: E731
    watch.wait_for(lambda v: len(entries(v)) == 2 and all(e["seen"] for e in entries(v).values()))
    changes = [r for r in watch.revisions if any(op["path"].startswith("/private/notifications/") for op in r.patch)]
    assert len(changes) == 7  # 3 creations, 4 changes: each one revision...
    for revision in changes:  # ...that carries the new count with it (every change here alters it)
        assert f"/public/serverInfo/{UNREAD}" in [op["path"] for op in revision.patch], revision
    assert [(i, s) for i, _, s in listed(tree)] == [(b, True), (a, True)]


def test_mark_and_remove_before(tree: TreeHarness) -> None:
    ids = [notify(tree, f"n{i}") for i in range(6)]
    tree.ask("notifications", MarkSeenBefore(before=ids[3]))
    assert [s for _, _, s in listed(tree)] == [False, False, False, True, True, True]
    assert unread(tree) == 3
    tree.ask("notifications", RemoveNotificationsBefore(before=ids[2]))
    assert [i for i, _, _ in listed(tree)] == ids[:1:-1]
    assert unread(tree) == 3
    tree.ask("notifications", RemoveNotificationsBefore(before=ids[5] + 1))
    assert listed(tree) == [] and unread(tree) == 0
    assert notify(tree, "after") == ids[5] + 1  # ids are never reused, even once all are gone


def test_repeated_marks_change_nothing(tree: TreeHarness) -> None:
    a = notify(tree, "a")
    rev = tree.ask("notifications", MarkSeen(ids=[a, a]))
    assert tree.ask("notifications", MarkSeen(ids=[a])) == rev == tree.ask("store", DbRevision())
    assert tree.ask("notifications", MarkSeen(ids=[])) == rev
    assert unread(tree) == 0


BAD_NOTIFY: list[tuple[dict[str, Any], str]] = [
    ({"level": "fatal"}, "level"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "not blank"),
    ({"package_id": "Not A Package"}, "package_id"),
    ({"code": -1}, "code"),
    ({"data": "x" * DATA_MAX_BYTES}, f"limit is {DATA_MAX_BYTES}"),
    ({"data": object()}, "rejected"),
]


@pytest.mark.parametrize(("change", "fragment"), BAD_NOTIFY)
def test_bad_notifications_are_refused_and_change_nothing(
    tree: TreeHarness, change: dict[str, Any], fragment: str
) -> None:
    notify(tree, "kept")
    before = tree.ask("store", DbRevision())
    fields: dict[str, Any] = {"level": "info", "title": "ok", "message": "ok", **change}
    with pytest.raises(InvalidNotification, match=fragment) as caught:
        tree.ask("notifications", Notify(**fields))
    assert caught.value.kind == ErrorKind.INVALID_PARAMS
    # Told (as services do), the same message is dropped and the actor lives on.
    tree.tell("notifications", Notify(**fields))
    assert listed(tree) == [(1, "kept", False)]
    assert tree.ask("store", DbRevision()) == before and unread(tree) == 1


def test_a_long_title_or_message_is_cut_with_an_ellipsis_not_dropped(tree: TreeHarness) -> None:
    # In-process senders build titles from names they do not control (a package title or id):
    # the notification must still be seen, told or asked.
    long_title, long_message = "Install of " + "x" * 300 + " failed", "y" * (MESSAGE_MAX_CHARS + 50)
    tree.tell("notifications", Notify(level="error", title=long_title, message=long_message))
    asked = tree.ask("notifications", Notify(level="error", title=long_title, message="short"))
    told, again = tree.ask("notifications", ListNotifications(limit=2))[::-1]
    assert again.id == asked
    for shown in (told, again):
        assert len(shown.title) == TITLE_MAX_CHARS and shown.title.endswith("…")
        assert shown.title.startswith("Install of xxx")
    assert len(told.message) == MESSAGE_MAX_CHARS and told.message.endswith("…")
    assert again.message == "short"
    assert unread(tree) == 2


@pytest.mark.parametrize(
    "message",
    [
        ListNotifications(limit=-1),
        ListNotifications(before=-5),
        MarkSeenBefore(before=-1),
        RemoveNotificationsBefore(before=-1),
        MarkSeen(ids=[-1]),
    ],
)
def test_negative_numbers_are_refused(tree: TreeHarness, message: Any) -> None:
    with pytest.raises(InvalidNotification, match=r">= 0"):
        tree.ask("notifications", message)


@pytest.mark.parametrize("kind", [MarkSeen, MarkUnseen, RemoveNotifications])
def test_unknown_ids_are_named_and_nothing_changes(tree: TreeHarness, kind: type) -> None:
    a = notify(tree, "a")
    before = tree.ask("store", DbRevision())
    with pytest.raises(NotificationNotFound, match=r"no notifications with id 7, 9; nothing was changed") as caught:
        tree.ask("notifications", kind(ids=[a, 9, 7]))
    assert caught.value.kind == ErrorKind.NOT_FOUND
    assert tree.ask("store", DbRevision()) == before
    assert listed(tree) == [(a, "a", False)] and unread(tree) == 1


def test_notifications_survive_a_restart(data_dir: Path, tree: TreeHarness) -> None:
    a, b = notify(tree, "a"), notify(tree, "b")
    tree.ask("notifications", MarkSeen(ids=[a]))
    assert tree.tree.stop(timeout=10)
    again = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=None, mdns=False)))
    try:
        assert listed(again) == [(b, "b", False), (a, "a", True)]
        assert unread(again) == 1
        assert notify(again, "c") == b + 1
    finally:
        again.close()


def test_a_drifted_count_is_repaired_at_start(data_dir: Path, tree: TreeHarness) -> None:
    notify(tree, "a")
    tree.ask("store", DbPut(pointer=f"/public/serverInfo/{UNREAD}", value=17, owner="notifications"))
    assert tree.tree.stop(timeout=10)
    again = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=None, mdns=False)))
    try:
        assert unread(again) == 1
    finally:
        again.close()


@pytest.fixture
def small(tree: TreeHarness) -> Iterator[Any]:
    """A second NotificationActor with tiny retention limits, over the same (empty) store."""
    ref = NotificationActor.start(tree.directory, keep=3, hard_cap=5, max_bytes=100_000)
    wait_started(ref, timeout=5)
    yield ref
    ref.stop()


def test_retention_drops_the_oldest_seen_first_then_anything_past_the_hard_cap(tree: TreeHarness, small: Any) -> None:
    def add(title: str) -> int:
        new_id: int = small.ask(Notify(level="info", title=title, message=""))
        return new_id

    ids = [add(f"n{i}") for i in range(3)]
    small.ask(MarkSeen(ids=ids[:2]))
    add("n3")  # 4 > keep=3: the oldest seen one (n0) goes
    assert [n.title for n in small.ask(ListNotifications())] == ["n3", "n2", "n1"]
    add("n4")  # n1 (seen) goes
    assert [n.title for n in small.ask(ListNotifications())] == ["n4", "n3", "n2"]
    add("n5")
    add("n6")  # all unseen: kept up to hard_cap=5
    assert [n.title for n in small.ask(ListNotifications())] == ["n6", "n5", "n4", "n3", "n2"]
    add("n7")  # past the hard cap the oldest goes even unseen, and the count follows
    assert [n.title for n in small.ask(ListNotifications())] == ["n7", "n6", "n5", "n4", "n3"]
    assert unread(tree) == 5
    assert sorted(private(tree)["entries"], key=int) == [str(i) for i in range(4, 9)]


def test_listing_stays_fast_with_thousands(tree: TreeHarness) -> None:
    entry = {
        "packageId": None,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "code": 0,
        "level": "info",
        "title": "t",
        "message": "m" * 100,
        "data": None,
        "seen": True,
    }
    entries = {str(i): entry for i in range(1, 2001)}
    tree.ask(
        "store",
        DbPut(pointer="/private/notifications", value={"nextId": 2001, "entries": entries}, owner="notifications"),
    )
    ref = NotificationActor.start(tree.directory, keep=1000, hard_cap=5000)
    try:
        wait_started(ref, timeout=10)
        started = time.perf_counter()
        for before in range(2001, 1, -40):
            page: list[Any] = ref.ask(ListNotifications(before=before))  # type: ignore[assignment]
            assert page[0].id == before - 1
        elapsed = (time.perf_counter() - started) / 50
        assert elapsed < 0.005, f"one page took {elapsed * 1000:.2f} ms"
    finally:
        ref.stop()


# -- over RPC (needs a set-up server and a session) --------------------------------------------------


@pytest.fixture
def http(request: pytest.FixtureRequest) -> Any:
    """``session_http`` from conftest (setup done, logged in)."""
    try:
        return request.getfixturevalue("session_http")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no session_http fixture yet")


def result(answer: dict[str, Any]) -> Any:
    assert "error" not in answer, answer
    return answer["result"]


def error(answer: dict[str, Any]) -> tuple[int, str]:
    assert "error" in answer, answer
    return answer["error"]["code"], answer["error"]["data"]["details"]


def test_rpc_create_list_mark_remove(http: Any) -> None:
    status, headers, answer = http.post(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "notification.create",
                "params": {"level": "warning", "title": "Low disk", "message": "5% left", "packageId": "hello"},
            }
        )
    )
    assert status == 200 and result(answer) is None and int(headers["x-patch-sequence"]) > 0
    for title in ("two", "three"):
        result(http.call("notification.create", {"level": "info", "title": title, "message": ""}))
    items = result(http.call("notification.list", {}))
    assert [n["title"] for n in items] == ["three", "two", "Low disk"]
    assert set(items[2]) == {"id", "packageId", "createdAt", "code", "level", "title", "message", "data", "seen"}
    assert items[2]["packageId"] == "hello" and items[2]["level"] == "warning" and items[2]["seen"] is False
    ids = [n["id"] for n in items]
    assert result(http.call("notification.list", {"before": ids[0], "limit": 1}))[0]["id"] == ids[1]

    def count() -> int:
        value: int = result(http.call("db.dump", {"pointer": f"/public/serverInfo/{UNREAD}"}))["value"]
        return value

    assert count() == 3
    result(http.call("notification.mark-seen", {"ids": [ids[0]]}))
    assert count() == 2
    result(http.call("notification.mark-unseen", {"ids": [ids[0]]}))
    assert count() == 3
    result(http.call("notification.mark-seen-before", {"before": ids[0]}))
    assert count() == 1
    result(http.call("notification.remove", {"ids": [ids[0]]}))
    assert count() == 0
    result(http.call("notification.remove-before", {"before": ids[0]}))
    assert result(http.call("notification.list", {})) == []


@pytest.mark.parametrize(
    ("method", "params", "code", "fragment"),
    [
        ("notification.create", {"level": "fatal", "title": "t", "message": "m"}, -32602, "level"),
        ("notification.create", {"level": "info", "title": "", "message": "m"}, -32602, "title"),
        ("notification.create", {"level": "info", "title": " ", "message": "m"}, -32602, "not blank"),
        ("notification.create", {"level": "info", "title": "t" * 201, "message": "m"}, -32602, "title"),
        ("notification.create", {"level": "info", "title": "t", "message": "m", "extra": 1}, -32602, "extra"),
        ("notification.list", {"limit": -1}, -32602, "limit"),
        ("notification.list", {"before": "x"}, -32602, "before"),
        ("notification.mark-seen", {"ids": [12345]}, 6, "no notification with id 12345"),
        ("notification.remove", {"ids": [12345, 777]}, 6, "777, 12345"),
        ("notification.remove-before", {}, -32602, "before"),
    ],
)
def test_rpc_bad_input(http: Any, method: str, params: dict[str, Any], code: int, fragment: str) -> None:
    result(http.call("notification.create", {"level": "info", "title": "kept", "message": ""}))
    got_code, details = error(http.call(method, params))
    assert got_code == code and fragment in details, details
    assert [n["title"] for n in result(http.call("notification.list", {}))] == ["kept"]


def test_rpc_needs_a_session(http: Any) -> None:
    from .rpc_client import Http

    anonymous = Http(http.url)
    try:
        assert error(anonymous.call("notification.list", {}))[0] == ErrorKind.AUTHORIZATION
        assert error(anonymous.call("notification.create", {"level": "info", "title": "t", "message": ""}))[0] == 34
    finally:
        anonymous.close()


def test_private_notifications_never_leave_the_server(http: Any) -> None:
    assert error(http.call("db.dump", {"pointer": "/private/notifications"}))[0] == ErrorKind.AUTHORIZATION


# -- start-cli --------------------------------------------------------------------------------------


def test_cli_commands(http: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    cookies = tmp_path / "cookies.json"

    def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
        argv = ["-H", http.url, "--cookie-path", str(cookies), "--auth-cookie", str(tmp_path / "none"), *args]
        out = runner.invoke(cli, argv, input=input)
        return out.exit_code, out.stdout, out.stderr

    assert run("auth", "login", "--password-stdin", input=http.password + "\n")[0] == 0
    code, out, err = run("notification", "create", "warning", "Disk almost full", "Only 5% left", "-p", "hello")
    assert code == 0 and out.startswith("revision "), err
    assert run("notification", "create", "success", "Backup done", "all good")[0] == 0
    code, out, _ = run("notification", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "LEVEL", "TITLE", "TIME", "SEEN"]
    assert "Backup done" in lines[1] and "success" in lines[1] and lines[1].rstrip().endswith("no")
    assert "Disk almost full" in lines[2]
    code, out, _ = run("notification", "list", "--format", "json")
    items = json.loads(out)
    first, second = items[1]["id"], items[0]["id"]
    assert items[1]["packageId"] == "hello"
    code, out, _ = run("--format", "json", "notification", "list", str(second), "1")
    assert [n["id"] for n in json.loads(out)] == [first]
    assert run("notification", "mark-seen", str(first), str(second))[0] == 0
    code, out, _ = run("notification", "list")
    assert all(line.rstrip().endswith("yes") for line in out.splitlines()[1:])
    assert run("notification", "mark-unseen", str(first))[0] == 0
    assert run("notification", "mark-seen-before", str(second))[0] == 0
    assert run("notification", "remove", str(second))[0] == 0
    assert run("notification", "remove-before", str(second + 1))[0] == 0
    code, out, _ = run("notification", "list", "--format", "json")
    assert json.loads(out) == []
    code, _, err = run("notification", "remove", "424242")
    assert code == 1 and err == "error: no notification with id 424242; nothing was changed\n"
    code, _, err = run("notification", "create", "fatal", "t", "m")
    assert code == 2 and "'fatal'" in err
    code, _, err = run("notification", "list", "-3")
    assert code == 2


def test_cli_help_texts() -> None:
    runner = CliRunner()
    for command in ("list", "create", "mark-seen", "mark-seen-before", "mark-unseen", "remove", "remove-before"):
        out = runner.invoke(cli, ["notification", command, "--help"])
        assert out.exit_code == 0 and "Usage:" in out.output
        summary = out.output.split("\n\n")[1].strip()
        assert summary, command

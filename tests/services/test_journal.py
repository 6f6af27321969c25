"""The per-service journal: cursors, paging, boots, follow, floods."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from startos.actors.services.journal import MAX_LINE, Journal


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "logs.sqlite3", boot="boot-1", keep_lines=100)
    yield j
    j.close()


def test_lines_get_increasing_cursors_and_page_both_ways(journal: Journal) -> None:
    for i in range(10):
        journal.append("web/stdout", f"line {i}")
    newest = journal.read(limit=3)
    assert [e.message for e in newest] == ["line 7", "line 8", "line 9"]
    assert [e.cursor for e in newest] == sorted(e.cursor for e in newest)
    after = journal.read(cursor=newest[0].cursor, limit=5)
    assert [e.message for e in after] == ["line 8", "line 9"]
    before = journal.read(cursor=newest[0].cursor, before=True, limit=2)
    assert [e.message for e in before] == ["line 5", "line 6"]
    assert all(e.boot == "boot-1" and e.source == "web/stdout" for e in newest)


def test_boots_are_kept_apart(tmp_path: Path) -> None:
    path = tmp_path / "logs.sqlite3"
    first = Journal(path, boot="a")
    first.append("x", "from a")
    first.close()
    second = Journal(path, boot="b")
    second.append("x", "from b")
    assert second.boots() == ["a", "b"]
    assert [e.message for e in second.read(boot="a")] == ["from a"]
    assert [e.message for e in second.read()] == ["from a", "from b"]
    second.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_followers_get_new_lines_and_are_cut_off_when_too_slow(journal: Journal) -> None:
    follower = journal.follow(max_queue=5)
    journal.append("x", "hello")
    entry = follower.get(timeout=5)
    assert entry is not None and entry.message == "hello"
    for i in range(20):
        journal.append("x", f"flood {i}")
    journal.flush()
    got = []
    while (item := follower.get(timeout=1)) is not None:
        got.append(item)
    assert follower.closed == "overflow" and len(got) <= 5


def test_floods_are_bounded_in_length_and_count(journal: Journal) -> None:
    journal.append("x", "y" * (MAX_LINE * 3))
    for i in range(300):
        journal.append("x", str(i))
    journal.flush()
    everything = journal.read(limit=1000)
    assert len(everything) == 100  # keep_lines
    assert everything[-1].message == "299"


def test_a_pipe_is_copied_line_by_line(journal: Journal) -> None:
    read_fd, write_fd = os.pipe()
    from gevent.fileobject import FileObject

    reader = journal.reader(FileObject(read_fd, "rb", close=True), "daemon/stdout")
    os.write(write_fd, b"one\ntwo\r\npartial")
    os.close(write_fd)
    reader.join(timeout=5)
    journal.flush()
    assert [e.message for e in journal.read(limit=10)] == ["one", "two", "partial"]
    assert gevent.getcurrent() is not None

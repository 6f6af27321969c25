"""The one gate between outside names and the filesystem: ``startos.paths``."""

from __future__ import annotations

import os
from pathlib import Path

import gevent
import pytest

from startos.paths import (
    ID_MAX_LENGTH,
    NotRegularFileError,
    UnsafePathError,
    check_id,
    is_valid_id,
    open_regular_file,
    safe_child,
    shown,
)
from startos.protocol.errors import ErrorKind


@pytest.fixture
def root(tmp_path: Path) -> Path:
    packages = tmp_path / "packages"
    packages.mkdir()
    return packages


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    return outside


def test_a_valid_id_gives_the_child_as_joined(root: Path) -> None:
    assert safe_child(root, "hello-world") == root / "hello-world"
    assert safe_child(root, "a", "b1", kind="volume id") == root / "a" / "b1"
    assert safe_child(root, "BACKUP", kind="volume id") == root / "BACKUP"
    assert safe_child(root, "1.0.0_0", kind="version") == root / "1.0.0_0"
    assert safe_child(root, "x" * ID_MAX_LENGTH) == root / ("x" * ID_MAX_LENGTH)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("/tmp/victim", "must not contain '/'"),
        ("../victim", "must not contain '/'"),
        ("..", "must not be '.' or '..'"),
        (".", "must not be '.' or '..'"),
        ("", "must not be empty"),
        ("a\x00b", "NUL"),
        ("x" * (ID_MAX_LENGTH + 1), f"at most {ID_MAX_LENGTH} characters long, got {ID_MAX_LENGTH + 1}"),
        ("Hello", "lowercase letters and digits"),
        ("a--b", "lowercase letters and digits"),
        ("-a", "lowercase letters and digits"),
        ("a\nb", "lowercase letters and digits"),
        ("BACKUP", "lowercase letters and digits"),  # a volume name, not a package id
    ],
)
def test_a_bad_package_id_is_refused_with_one_readable_line(root: Path, name: str, rule: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        safe_child(root, name)
    error = caught.value
    assert error.kind == ErrorKind.INVALID_ID
    assert rule in error.message and "\n" not in error.message and "\x00" not in error.message
    assert error.message.startswith(f"invalid package id {shown(name)}")
    assert not is_valid_id(name)


def test_the_bad_value_is_repr_d_and_truncated(root: Path) -> None:
    hostile = "x" * 5000 + "\n/etc/passwd"
    with pytest.raises(UnsafePathError) as caught:
        safe_child(root, hostile)
    assert len(caught.value.message) < 300 and "…" in caught.value.message
    assert "\n" not in caught.value.message


def test_every_name_is_checked_not_only_the_first(root: Path) -> None:
    with pytest.raises(UnsafePathError, match=r"invalid volume id '\.\.'"):
        safe_child(root, "main", "..", kind="volume id")
    with pytest.raises(UnsafePathError, match="at least one name"):
        safe_child(root)


def test_names_of_other_kinds_follow_their_own_rule(root: Path) -> None:
    assert check_id("BACKUP", "volume id") == "BACKUP"
    assert check_id("0123456789abcdef0123456789abcdef", "upload id")
    assert check_id("notes.s9pk", "file name")
    assert check_id("Ünïcödé name", "file name")
    with pytest.raises(UnsafePathError, match="at most 255 bytes"):
        check_id("é" * 128, "file name")  # 256 bytes in UTF-8
    with pytest.raises(UnsafePathError, match="invalid upload id"):
        check_id("../x", "upload id")
    with pytest.raises(UnsafePathError, match="invalid version"):
        safe_child(root, ".hidden", kind="version")
    with pytest.raises(UnsafePathError, match="must be a string"):
        check_id(None)


def test_a_symlink_inside_the_root_pointing_outside_is_not_followed(root: Path, canary: Path) -> None:
    (root / "victim").symlink_to(canary)
    with pytest.raises(UnsafePathError, match=r"leads outside .* through a symbolic link"):
        safe_child(root, "victim")
    (root / "dangling").symlink_to(canary.parent / "not-yet-there")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_child(root, "dangling")
    (root / "self").symlink_to(root)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_child(root, "self")
    # A link one level down, below a valid name, is caught too.
    (root / "pkg").mkdir()
    (root / "pkg" / "main").symlink_to(canary)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_child(root, "pkg", "main", kind="volume id")
    assert (canary / "precious.txt").read_text() == "keep me"


def test_a_root_reached_through_a_symlink_is_fine(tmp_path: Path, root: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    (root / "inside").mkdir()
    (root / "also-inside").symlink_to(root / "inside")
    assert safe_child(alias, "inside") == alias / "inside"
    assert safe_child(alias, "also-inside") == alias / "also-inside"  # stays under the root


def test_open_regular_file_follows_a_link_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "package.s9pk"
    target.write_bytes(b"data")
    link = tmp_path / "link.s9pk"
    link.symlink_to(target)
    fd = open_regular_file(link)
    try:
        assert os.read(fd, 10) == b"data" and os.get_blocking(fd)
    finally:
        os.close(fd)


def test_open_regular_file_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # On a real thread (as the install steps run): a blocking open would hang there, not the hub.
    attempt = gevent.get_hub().threadpool.spawn(_open_and_close, fifo)
    try:
        outcome = attempt.get(timeout=10)
    finally:
        if not attempt.ready():  # it hung: give it a writer so no thread is left behind
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert isinstance(outcome, NotRegularFileError)


def _open_and_close(path: Path) -> BaseException | None:
    try:
        os.close(open_regular_file(path))
    except BaseException as exc:  # noqa: BLE001 (handed to the test)
        return exc
    return None


def test_open_regular_file_refuses_directories_and_devices(tmp_path: Path) -> None:
    with pytest.raises(NotRegularFileError, match="not a regular file"):
        open_regular_file(tmp_path)
    with pytest.raises(NotRegularFileError):
        open_regular_file("/dev/null")
    with pytest.raises(FileNotFoundError):
        open_regular_file(tmp_path / "missing")
    with pytest.raises(ValueError):
        open_regular_file("a\x00b")


@pytest.mark.parametrize("guid", ["../escape", "..", "a/b", "x" * 65, "nul\x00", ""])
def test_an_upload_name_from_the_url_never_leaves_the_upload_directory(tmp_path: Path, guid: str) -> None:
    import io

    from startos.webui.uploads import receive_upload

    uploads = tmp_path / "uploads" / "inner"
    environ = {"CONTENT_LENGTH": "4", "wsgi.input": io.BytesIO(b"data")}
    with pytest.raises(UnsafePathError, match="invalid upload id"):
        receive_upload(environ, uploads, guid, limit=1024)
    assert not (tmp_path / "uploads" / "escape.s9pk").exists() and not list(tmp_path.rglob("*.s9pk"))


def test_an_upload_with_a_good_name_is_stored(tmp_path: Path) -> None:
    import io

    from startos.webui.uploads import receive_upload

    environ = {"CONTENT_LENGTH": "4", "wsgi.input": io.BytesIO(b"data")}
    path = receive_upload(environ, tmp_path / "uploads", "0123456789abcdef0123456789abcdef", limit=1024)
    assert path == tmp_path / "uploads" / "0123456789abcdef0123456789abcdef.s9pk"
    assert path.read_bytes() == b"data"

"""Security issue 10 at the package layer: ids, names and manifests that must never reach a path."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gevent
import pytest

from startos.paths import ID_MAX_LENGTH
from startos.s9pk import ArchiveReader, ManifestError, NotAnS9pkError, S9pkError, generate_signing_key, write_archive
from startos.s9pk.package import Package, build_tree, find_sources
from startos.s9pk.toc import Entry, EntryKind, parse_toc, serialize_toc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "packages"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads((EXAMPLES / "hello-world" / "manifest.json").read_text())


def manifest_error(document: dict[str, Any] | bytes) -> str:
    from startos.s9pk import parse_manifest

    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw)
    assert "\n" not in caught.value.message
    return caught.value.message


def test_a_package_id_longer_than_the_cap_is_refused_clearly(manifest: dict[str, Any]) -> None:
    from startos.s9pk import parse_manifest

    assert parse_manifest({**manifest, "id": "a" * ID_MAX_LENGTH}).id == "a" * ID_MAX_LENGTH
    message = manifest_error({**manifest, "id": "a" * 300})
    assert message == f"manifest: id: must be at most {ID_MAX_LENGTH} characters long, got 300"
    assert "at most 63" in manifest_error({**manifest, "id": "a" * (ID_MAX_LENGTH + 1)})


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"volumes": ["main", "v" * 64]}, "volumes"),
        ({"images": {"i" * 64: {"source": "packed", "arch": ["x86_64"]}}}, "images"),
        ({"dependencies": {"d" * 64: {"optional": True}}}, "dependencies"),
        ({"volumes": ["../../escape"]}, "lowercase letters"),
        ({"id": "../../victim"}, "lowercase letters"),
    ],
)
def test_other_ids_follow_the_same_rule(manifest: dict[str, Any], change: dict[str, Any], fragment: str) -> None:
    assert fragment in manifest_error({**manifest, **change})


def test_a_manifest_nested_5000_levels_deep_gets_a_clear_error(manifest: dict[str, Any]) -> None:
    deep = json.dumps(manifest).encode()[:-1] + b', "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    message = manifest_error(deep)  # not a RecursionError
    assert message.startswith("manifest: not valid JSON: the manifest nests deeper than")


def test_a_package_with_a_deep_manifest_is_refused_when_opened(tmp_path: Path) -> None:
    tree, _manifest = build_tree(find_sources(EXAMPLES / "hello-world"))
    tree["manifest.json"] = b'{"deep": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    out = tmp_path / "deep.s9pk"
    write_archive(tree, out, generate_signing_key())
    with pytest.raises(ManifestError, match="nests deeper than"):
        Package(out)


def test_an_archive_entry_name_over_255_bytes_is_refused() -> None:
    entry = Entry("n" * 256, EntryKind.MISSING, bytes(32), 0)
    with pytest.raises(S9pkError, match="at most 255 bytes"):
        parse_toc(serialize_toc([entry]))
    for name in ("..", "a/b", "a\x00b", ""):
        with pytest.raises(S9pkError, match="invalid entry name"):
            parse_toc(serialize_toc([Entry(name, EntryKind.MISSING, bytes(32), 0)]))


def test_opening_a_fifo_answers_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "package.s9pk"
    os.mkfifo(fifo)
    attempt = gevent.get_hub().threadpool.spawn(_open, fifo)
    try:
        outcome = attempt.get(timeout=10)
    finally:
        if not attempt.ready():  # it hung: give it a writer so no thread is left behind
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert isinstance(outcome, NotAnS9pkError) and "not a regular file" in str(outcome)


def _open(path: Path) -> BaseException | None:
    try:
        ArchiveReader(path).close()
    except BaseException as exc:  # noqa: BLE001 (handed to the test)
        return exc
    return None


@pytest.mark.parametrize("content", [None, b"", b";", b"PK\x03\x04" + bytes(200)])
def test_what_is_not_an_s9pk_at_all_is_one_error_class(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "thing.s9pk"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NotAnS9pkError):
        ArchiveReader(path)

"""Every kind of bad archive gives a typed, one-line error; nothing hangs or over-allocates."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest

from startos.s9pk import archive_writer
from startos.s9pk.archive import ArchiveReader, Commitment
from startos.s9pk.archive_writer import TreeNode, write_archive
from startos.s9pk.errors import (
    S9pkError,
    S9pkIntegrityError,
    SignatureError,
)
from startos.s9pk.toc import HEADER_SIZE, Entry, EntryKind, serialize_toc, sighash
from startos.s9pk.varint import encode_varint

from .conftest import OTHER_KEY, TEST_KEY, file_entry, forge, read_everything

TINY: dict[str, TreeNode] = {"manifest.json": b'{"id":"x"}', "d": {"f": b"hello"}, "e": b""}


def expect(kind: type[S9pkError], action: Callable[[], object], match: str | None = None) -> S9pkError:
    """Run ``action``; it must raise ``kind`` with a one-line message matching ``match``."""
    with pytest.raises(kind, match=match) as info:
        action()
    message = str(info.value)
    assert message and "\n" not in message, message
    return info.value


def write(tmp_path: Path, data: bytes, name: str = "bad.s9pk") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def tiny(tmp_path: Path) -> bytes:
    out = tmp_path / "tiny.s9pk"
    write_archive(TINY, out, TEST_KEY)
    return out.read_bytes()


# -- header ---------------------------------------------------------------------------------


def test_wrong_magic(tmp_path: Path) -> None:
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, b"PK\x03\x04" + bytes(200))), "wrong magic")


def test_version_one_is_named(tmp_path: Path) -> None:
    expect(
        S9pkError, lambda: ArchiveReader(write(tmp_path, b"\x3b\x3b\x01" + bytes(200))), "unsupported s9pk version 1"
    )


def test_empty_file(tmp_path: Path) -> None:
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, b"")), "empty")


def test_truncated_anywhere(tmp_path: Path) -> None:
    data = tiny(tmp_path)
    for cut in range(len(data)):
        path = write(tmp_path, data[:cut])
        expect(S9pkError, lambda p=path: read_everything(p))  # type: ignore[misc]


def test_every_flipped_bit_is_caught(tmp_path: Path) -> None:
    """One flipped bit in any byte (a different bit per byte) fails a hash or the signature."""
    data = tiny(tmp_path)
    assert read_everything(write(tmp_path, data))
    for i in range(len(data)):
        for bit in {i % 8, 7 - i % 8}:
            mutated = bytearray(data)
            mutated[i] ^= 1 << bit
            path = write(tmp_path, bytes(mutated))
            expect(S9pkError, lambda p=path: read_everything(p))  # type: ignore[misc]


def test_signature_over_other_key_or_commitment(tmp_path: Path) -> None:
    data = bytearray(tiny(tmp_path))
    data[3:35] = OTHER_KEY.public_key  # signer swapped, signature kept
    expect(SignatureError, lambda: ArchiveReader(write(tmp_path, bytes(data))), "does not verify")


def test_unknown_signer_key(tmp_path: Path) -> None:
    path = write(tmp_path, tiny(tmp_path))
    expect(SignatureError, lambda: ArchiveReader(path, trusted_keys=[OTHER_KEY.public_key]), "not a trusted key")
    ArchiveReader(path, trusted_keys=[OTHER_KEY.public_key, TEST_KEY.public_key]).close()


def test_commitment_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, tiny(tmp_path))
    with ArchiveReader(path) as reader:
        good = reader.commitment
    expect(SignatureError, lambda: ArchiveReader(path, commitment=Commitment(bytes(32), 10**6)), "merkle root")
    expect(
        SignatureError,
        lambda: ArchiveReader(path, commitment=Commitment(good.root_sighash, good.root_maxsize - 1)),
        "max size",
    )


# -- TOC encoding ---------------------------------------------------------------------------


def test_varint_longer_than_allowed(tmp_path: Path) -> None:
    toc = b"\x80" * 10 + b"\x01"
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(toc))), "longer than 10")


def test_varint_overflow_and_non_minimal(tmp_path: Path) -> None:
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(b"\xff" * 9 + b"\x7f"))), "overflows")
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(b"\x80\x00"))), "minimal")


def test_varstring_longer_than_allowed(tmp_path: Path) -> None:
    toc = b"\x01" + encode_varint(2 * 1024 * 1024) + b"x" * 42
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(toc))), "1 MiB cap")


def test_forged_entry_count_fails_fast(tmp_path: Path) -> None:
    toc = encode_varint(2**60) + b"\x00" * 60
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(toc))), "too many")


def test_unknown_type_trailing_bytes_and_bad_utf8(tmp_path: Path) -> None:
    entry = b"\x01\x01a" + bytes(32) + bytes(8)
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(entry + b"\x07"))), "unknown entry type 7")
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(entry + b"\x00junk"))), "unexpected bytes")
    bad_name = b"\x01\x02\xff\xfe" + bytes(40) + b"\x00"
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(bad_name))), "UTF-8")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../etc", "nul\x00byte", "/abs"])
def test_bad_names(tmp_path: Path, name: str) -> None:
    entries = [Entry(name, EntryKind.MISSING, bytes(32), 0)]
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(entries))), "name")


def test_duplicate_names(tmp_path: Path) -> None:
    entries = [Entry("a", EntryKind.MISSING, bytes(32), 0)] * 2
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(entries))), "duplicate")


# -- sizes and positions --------------------------------------------------------------------


def test_toc_larger_than_signed_size(tmp_path: Path) -> None:
    entries = [Entry("a", EntryKind.MISSING, bytes(32), 0)]
    toc = serialize_toc(entries)
    data = forge(entries, maxsize=len(toc) - 1)
    expect(S9pkIntegrityError, lambda: ArchiveReader(write(tmp_path, data)), "larger than its signed size")


def test_subdirectory_toc_larger_than_signed_size(tmp_path: Path) -> None:
    child = [Entry("x", EntryKind.MISSING, bytes(32), 0)]
    child_toc = serialize_toc(child)
    sub = Entry("sub", EntryKind.DIRECTORY, sighash(child), len(child_toc) - 1, 0, len(child_toc))
    root_len = len(serialize_toc([sub]))
    sub = Entry(sub.name, sub.kind, sub.hash, sub.size, HEADER_SIZE + root_len, sub.toc_size)
    path = write(tmp_path, forge([sub], child_toc))
    with ArchiveReader(path) as reader:
        expect(S9pkIntegrityError, lambda: reader.listdir("sub"), "larger than its signed size")


def test_root_over_one_mib_without_commitment(tmp_path: Path) -> None:
    entries = [Entry("a", EntryKind.MISSING, bytes(32), 0)]
    data = forge(entries, maxsize=2 * 1024 * 1024)
    path = write(tmp_path, data)
    expect(S9pkIntegrityError, lambda: ArchiveReader(path), "over 1 MiB")


def test_root_over_one_mib_is_fine_with_a_commitment(tmp_path: Path) -> None:
    entries = [Entry("a", EntryKind.MISSING, bytes(32), 0)]
    data = forge(entries, maxsize=2 * 1024 * 1024)
    commitment = Commitment(sighash(entries), 2 * 1024 * 1024)
    with ArchiveReader(write(tmp_path, data), commitment=commitment) as reader:
        assert reader.listdir() == ["a"]


def test_position_outside_the_file(tmp_path: Path) -> None:
    entries = [file_entry("f", b"hello", 10_000)]
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(entries, b"hello"))), "past the end")


def test_position_into_the_header(tmp_path: Path) -> None:
    entries = [file_entry("f", b"\x3b\x3b\x02", 0)]
    expect(S9pkError, lambda: ArchiveReader(write(tmp_path, forge(entries))), "header")
    expect(
        S9pkError,
        lambda: ArchiveReader(write(tmp_path, forge([Entry("a", EntryKind.MISSING, bytes(32), 0)], root_pos=40))),
        "header",
    )


def test_zip_bomb_size_claim_allocates_nothing(tmp_path: Path) -> None:
    huge = Entry("bomb", EntryKind.FILE, bytes(32), 2**62, HEADER_SIZE + 60)
    path = write(tmp_path, forge([huge], b"x" * 64))
    tracemalloc.start()
    try:
        expect(S9pkError, lambda: ArchiveReader(path), "past the end")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_huge_subdirectory_claim_is_capped(tmp_path: Path) -> None:
    sub = Entry("sub", EntryKind.DIRECTORY, bytes(32), 2**40, HEADER_SIZE + 70, 2**40)
    path = write(tmp_path, forge([sub]))
    with ArchiveReader(path) as reader:
        expect(S9pkError, lambda: reader.listdir("sub"), "size cap")


def test_trailing_and_gap_bytes_fail_verify(tmp_path: Path) -> None:
    data = tiny(tmp_path)
    with ArchiveReader(write(tmp_path, data + b"extra")) as reader:
        expect(S9pkIntegrityError, reader.verify, "trailing")
    gap = [file_entry("f", b"hello", 0)]
    toc_len = len(serialize_toc(gap))
    gap = [file_entry("f", b"hello", HEADER_SIZE + toc_len + 3)]
    with ArchiveReader(write(tmp_path, forge(gap, b"???hello"))) as reader:
        assert reader.read_bytes("f") == b"hello"  # lazily fine...
        expect(S9pkIntegrityError, reader.verify, "breadth-first")  # ...but not complete


def test_overlapping_file_regions(tmp_path: Path) -> None:
    toc_len = len(serialize_toc([file_entry("a", b"hello", 0), file_entry("b", b"hello", 0)]))
    at = HEADER_SIZE + toc_len
    entries = [file_entry("a", b"hello", at), file_entry("b", b"hello", at)]
    with ArchiveReader(write(tmp_path, forge(entries, b"hello"))) as reader:
        expect(S9pkIntegrityError, reader.verify, "overlap")
        expect(S9pkIntegrityError, lambda: reader.unpack(tmp_path / "out"), "overlap")
    assert not (tmp_path / "out").exists()


def test_directory_cycle_fails_without_hanging(tmp_path: Path) -> None:
    loop = Entry("loop", EntryKind.DIRECTORY, bytes(32), 200, HEADER_SIZE, 0)
    toc_len = len(serialize_toc([loop]))
    loop = Entry("loop", EntryKind.DIRECTORY, bytes(32), 200, HEADER_SIZE, toc_len)
    path = write(tmp_path, forge([loop]))
    with ArchiveReader(path) as reader:
        expect(S9pkIntegrityError, reader.verify, "reuses")
        expect(S9pkIntegrityError, lambda: reader.listdir("loop/loop/loop"), "does not match")


def test_shared_subtree_is_refused_by_verify_and_unpack(tmp_path: Path) -> None:
    """Two names pointing at one table would let a small file expand exponentially."""
    child = [Entry("x", EntryKind.MISSING, bytes(32), 0)]
    child_toc = serialize_toc(child)
    probe = [Entry(n, EntryKind.DIRECTORY, sighash(child), len(child_toc), 0, len(child_toc)) for n in ("a", "b")]
    at = HEADER_SIZE + len(serialize_toc(probe))
    entries = [Entry(e.name, e.kind, e.hash, e.size, at, e.toc_size) for e in probe]
    with ArchiveReader(write(tmp_path, forge(entries, child_toc))) as reader:
        assert reader.listdir("a") == reader.listdir("b") == ["x"]
        expect(S9pkIntegrityError, reader.verify, "reuses")
        expect(S9pkIntegrityError, lambda: reader.unpack(tmp_path / "out"), "reuses")


def test_too_deep_nesting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_writer, "MAX_DEPTH", 1000)
    tree: dict[str, object] = {"leaf": b"x"}
    for _ in range(140):
        tree = {"d": tree}
    out = tmp_path / "deep.s9pk"
    write_archive(tree, out, TEST_KEY)  # type: ignore[arg-type]
    with ArchiveReader(out) as reader:
        expect(S9pkError, reader.verify, "deeper than 128")


# -- unpacking ------------------------------------------------------------------------------


def test_unpack_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    path = write(tmp_path, tiny(tmp_path))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with ArchiveReader(path) as reader:
        expect(S9pkError, lambda: reader.unpack(dest), "not an empty directory")
    assert (dest / "keep").read_text() == "mine"


def test_unpack_of_a_corrupt_file_leaves_nothing(tmp_path: Path) -> None:
    data = bytearray(tiny(tmp_path))
    data[-1] ^= 1  # the last file's last byte
    path = write(tmp_path, bytes(data))
    before = sorted(p.name for p in tmp_path.iterdir())
    with ArchiveReader(path) as reader:
        expect(S9pkIntegrityError, lambda: reader.unpack(tmp_path / "dest"), "signed hash")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    existing = tmp_path / "empty-dest"
    existing.mkdir()
    with ArchiveReader(path) as reader:
        expect(S9pkIntegrityError, lambda: reader.unpack(existing), "signed hash")
    assert existing.is_dir() and not list(existing.iterdir())


def test_every_message_names_the_problem_in_one_line(tmp_path: Path) -> None:
    content = b"payload"
    entries = [file_entry("f", content, 0)]
    at = HEADER_SIZE + len(serialize_toc(entries))
    bad = [Entry("f", EntryKind.FILE, blake3.blake3(b"other").digest(), len(content), at)]
    with ArchiveReader(write(tmp_path, forge(bad, content))) as reader:
        err = expect(S9pkIntegrityError, lambda: reader.read_bytes("f"), "'f'")
        assert err.kind == 24


def test_manifest_that_fails_validation(tmp_path: Path) -> None:
    from startos.s9pk.errors import ManifestError
    from startos.s9pk.package import Package

    path = tmp_path / "m.s9pk"
    write_archive({"manifest.json": b'{"id": "x", "title": 5}'}, path, TEST_KEY)
    expect(ManifestError, lambda: Package(path), "manifest")
    write_archive({"manifest.json": b"{not json"}, path, TEST_KEY)
    expect(ManifestError, lambda: Package(path), "JSON")

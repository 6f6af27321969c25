"""The merkle archive: encodings, exact StartOS layout, lazy verified reads, verify, unpack."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from startos.s9pk.archive import ArchiveReader, Commitment, hash_file, open_archive
from startos.s9pk.archive_writer import (
    MissingEntry,
    TreeNode,
    tree_from_folder,
    write_archive,
)
from startos.s9pk.errors import PackError, S9pkError, S9pkIntegrityError
from startos.s9pk.toc import HEADER_SIZE, EntryKind, layout_order, root_priority
from startos.s9pk.varint import (
    decode_varint,
    decode_varstring,
    encode_varint,
    encode_varstring,
    varint_size,
)

from .conftest import TEST_KEY, flatten, read_everything, sample_tree

# -- varints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (2**64 - 1, "ffffffffffffffffff01"),
    ],
)
def test_varint_known_encodings(value: int, encoded: str) -> None:
    assert encode_varint(value).hex() == encoded
    assert decode_varint(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)
    assert varint_size(value) == len(encoded) // 2


@settings(derandomize=True, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    raw = encode_varint(value)
    assert decode_varint(raw + b"tail", 0) == (value, len(raw))


@settings(derandomize=True, deadline=None)
@given(st.text(max_size=200))
def test_varstring_round_trip(text: str) -> None:
    raw = encode_varstring(text)
    assert decode_varstring(raw, 0) == (text, len(raw))


# -- layout: byte for byte what StartOS's writer produces ------------------------------------


def _u64(n: int) -> bytes:
    return struct.pack(">Q", n)


def test_layout_matches_startos_writer_byte_for_byte(tmp_path: Path) -> None:
    """Hand-built from StartOS's MerkleArchive::serialize + WriteQueue rules: header, root
    TOC (dirs before files), then breadth-first: foo's TOC, a.txt, then foo/bar.txt."""
    out = tmp_path / "golden.s9pk"
    commitment = write_archive({"a.txt": b"hello", "foo": {"bar.txt": b"hi"}}, out, TEST_KEY)

    h_hello, h_hi = blake3.blake3(b"hello").digest(), blake3.blake3(b"hi").digest()
    foo_toc_size = 1 + (1 + 7 + 32 + 8 + 1 + 8)
    root_toc_size = 1 + (1 + 3 + 32 + 8 + 1 + 16) + (1 + 5 + 32 + 8 + 1 + 8)
    assert root_toc_size == 117
    foo_pos = 155 + root_toc_size
    a_pos = foo_pos + foo_toc_size
    bar_pos = a_pos + 5
    foo_sighash = blake3.blake3(b"\x01\x07bar.txt" + h_hi + _u64(2) + b"\x00").digest()
    root_sighash = blake3.blake3(
        b"\x02" + b"\x05a.txt" + h_hello + _u64(5) + b"\x00" + b"\x03foo" + foo_sighash + _u64(foo_toc_size) + b"\x00"
    ).digest()
    root_toc = (
        b"\x02"
        + b"\x03foo"
        + foo_sighash
        + _u64(foo_toc_size)
        + b"\x02"
        + _u64(foo_pos)
        + _u64(foo_toc_size)
        + b"\x05a.txt"
        + h_hello
        + _u64(5)
        + b"\x01"
        + _u64(a_pos)
    )
    foo_toc = b"\x01" + b"\x07bar.txt" + h_hi + _u64(2) + b"\x01" + _u64(bar_pos)
    data = out.read_bytes()
    signature = data[35:99]
    expected = (
        b"\x3b\x3b\x02"
        + TEST_KEY.public_key
        + signature
        + root_sighash
        + _u64(root_toc_size)
        + _u64(155)
        + _u64(root_toc_size)
        + root_toc
        + foo_toc
        + b"hello"
        + b"hi"
    )
    assert data == expected
    assert commitment == Commitment(root_sighash, root_toc_size)
    # Ed25519 is deterministic: this is the signature any correct signer produces.
    from startos.s9pk.signing import sign_commitment

    assert signature == sign_commitment(TEST_KEY, root_sighash, root_toc_size)


def test_root_priority_order_like_startos() -> None:
    names = [
        ("zeta", EntryKind.FILE),
        ("images", EntryKind.DIRECTORY),
        ("LICENSE.md", EntryKind.FILE),
        ("icon.svg", EntryKind.FILE),
        ("manifest.json", EntryKind.FILE),
        ("gone", EntryKind.MISSING),
        ("alpha", EntryKind.MISSING),
        ("python", EntryKind.DIRECTORY),
        ("dependencies", EntryKind.DIRECTORY),
        ("instructions.md", EntryKind.FILE),
        ("assets.squashfs", EntryKind.FILE),
        ("javascript.squashfs", EntryKind.FILE),
        ("Zulu", EntryKind.FILE),
    ]
    ordered = [n for n, _ in layout_order(names, root=True)]
    assert ordered == [
        "dependencies",
        "images",
        "python",
        "manifest.json",
        "icon.svg",
        "LICENSE.md",
        "instructions.md",
        "javascript.squashfs",
        "assets.squashfs",
        "Zulu",
        "zeta",
        "alpha",
        "gone",
    ]
    # Below the root StartOS has no priority: kinds, then plain name (byte) order.
    assert [n for n, _ in layout_order(names, root=False)][:6] == [
        "dependencies",
        "images",
        "python",
        "LICENSE.md",
        "Zulu",
        "assets.squashfs",
    ]


@pytest.mark.parametrize(
    ("name", "priority"),
    [
        ("icon.png", 1),
        ("icon", 1),
        ("icon.tar.gz", None),
        (".icon", None),
        ("icons.png", None),
        ("manifest.json", 0),
        ("images", 7),
    ],
)
def test_icon_priority_uses_rust_file_stem(name: str, priority: int | None) -> None:
    assert root_priority(name) == priority


def test_body_is_breadth_first_and_contiguous(sample_archive: Path) -> None:
    with ArchiveReader(sample_archive) as reader:
        order = list(reader.walk())
        regions = sorted(
            (e.position, e.toc_size if e.kind is EntryKind.DIRECTORY else e.size)
            for _, e in order
            if e.kind is not EntryKind.MISSING
        )
        assert regions[0][0] == HEADER_SIZE + reader.root_entry.toc_size
        for (pos, size), (nxt, _) in itertools.pairwise(regions):
            assert pos + size == nxt
        # Positions follow breadth-first order.
        positions = [e.position for _, e in order if e.kind is not EntryKind.MISSING]
        assert positions == sorted(positions)


# -- reading ------------------------------------------------------------------------------


def test_round_trip_reads_and_verifies(sample_archive: Path) -> None:
    assert read_everything(sample_archive) == flatten(sample_tree())
    with open_archive(sample_archive) as reader:
        report = reader.verify()
        assert report.files == len(flatten(sample_tree()))
        assert report.archive_bytes == sample_archive.stat().st_size
        assert reader.listdir() == [
            "images",
            "assets",
            "python",
            "manifest.json",
            "icon.png",
            "LICENSE.md",
            "instructions.md",
            "empty",
            "zeta.txt",
        ]
        assert reader.listdir("python") == ["emptydir", "svc"]
        assert reader.read_bytes("python/svc/__init__.py") == b"print('hi')\n"
        assert reader.exists("assets/a/b/c.txt") and not reader.exists("assets/nope")


def test_file_paths_like_startos_file_tree(sample_archive: Path) -> None:
    with ArchiveReader(sample_archive) as reader:
        paths = reader.file_paths()
    assert paths[:6] == ["LICENSE.md", "assets/", "assets/a/", "assets/a/b/", "assets/a/b/c.txt", "empty"]
    assert "python/emptydir/" in paths and "images/x86_64/main.squashfs" in paths


def test_directories_are_verified_lazily(tmp_path: Path) -> None:
    """Corrupting a sub-directory's TOC does not stop other reads, only that directory."""
    out = tmp_path / "a.s9pk"
    write_archive({"top.txt": b"fine", "sub": {"x": b"x"}}, out, TEST_KEY)
    with ArchiveReader(out) as reader:
        sub = reader.root.get("sub")
        assert sub is not None
        pos = sub.position + 3  # inside the name of sub's only entry
    data = bytearray(out.read_bytes())
    data[pos] ^= 0x01
    out.write_bytes(bytes(data))
    with ArchiveReader(out) as reader:
        assert reader.read_bytes("top.txt") == b"fine"
        with pytest.raises(S9pkIntegrityError, match="'sub' does not match"):
            reader.listdir("sub")


def test_streaming_read_withholds_the_end_of_a_corrupt_file(tmp_path: Path) -> None:
    out = tmp_path / "a.s9pk"
    content = os.urandom(3 * 1024 * 1024 + 17)
    write_archive({"big.bin": content}, out, TEST_KEY)
    with ArchiveReader(out) as reader:
        entry = reader.entry("big.bin")
    data = bytearray(out.read_bytes())
    data[entry.position + len(content) - 1] ^= 0x80  # last byte
    out.write_bytes(bytes(data))
    with ArchiveReader(out) as reader, reader.open_file("big.bin") as fh:
        got = 0
        with pytest.raises(S9pkIntegrityError, match=r"'big\.bin' does not match"):
            while chunk := fh.read(1024 * 1024):
                got += len(chunk)
        assert got == 3 * 1024 * 1024  # the last chunk never reached the caller


def test_hash_file_matches_blake3_with_and_without_mmap(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    content = os.urandom(5 * 1024 * 1024 + 3)
    path.write_bytes(content)
    expected = blake3.blake3(content).digest()
    assert hash_file(path) == expected == hash_file(path, use_mmap=False)
    (tmp_path / "e").write_bytes(b"")
    assert hash_file(tmp_path / "e").hex().startswith("af1349b9")


def test_verify_checks_big_files_with_mmap_and_pread(tmp_path: Path) -> None:
    out = tmp_path / "a.s9pk"
    write_archive({"a": os.urandom(70 * 1024 * 1024 + 5), "b": b"small"}, out, TEST_KEY)
    with ArchiveReader(out) as reader:
        assert reader.verify().file_bytes == 70 * 1024 * 1024 + 10
        assert reader.verify(use_mmap=False).files == 2


# -- commitments --------------------------------------------------------------------------


def test_commitment_json_round_trip_padded_or_not(sample_archive: Path) -> None:
    with ArchiveReader(sample_archive) as reader:
        commitment = reader.commitment
    obj = commitment.to_json()
    assert isinstance(obj["rootSighash"], str) and not obj["rootSighash"].endswith("=")
    assert Commitment.from_json(obj) == commitment
    padded = {**obj, "rootSighash": obj["rootSighash"] + "="}
    assert Commitment.from_json(padded) == commitment
    with ArchiveReader(sample_archive, commitment=commitment) as reader:
        assert reader.verify().commitment == commitment
    with pytest.raises(S9pkError):
        Commitment.from_json({"rootSighash": "!!", "rootMaxsize": 1})
    with pytest.raises(S9pkError):
        Commitment.from_json({"rootSighash": obj["rootSighash"], "rootMaxsize": True})


# -- writing ------------------------------------------------------------------------------


def test_rewrite_from_tree_is_byte_identical(sample_archive: Path, tmp_path: Path) -> None:
    """StartOS's own archive test: serialize, deserialize, serialize again -> same bytes."""
    again = tmp_path / "again.s9pk"
    with ArchiveReader(sample_archive) as reader:
        write_archive(reader.tree(), again, TEST_KEY)
    assert again.read_bytes() == sample_archive.read_bytes()


def test_missing_entries_are_kept_and_sorted_last(tmp_path: Path) -> None:
    out = tmp_path / "m.s9pk"
    tree: dict[str, TreeNode] = {"b": b"b", "a": MissingEntry(bytes(32), 10), "c": {"d": b"d"}}
    write_archive(tree, out, TEST_KEY)
    with ArchiveReader(out) as reader:
        assert reader.listdir() == ["c", "b", "a"]
        assert reader.entry("a").kind is EntryKind.MISSING
        with pytest.raises(S9pkError, match="not in this archive"):
            reader.open_file("a")
        reader.verify()
        dest = tmp_path / "x"
        assert reader.unpack(dest) == 2
        assert sorted(p.name for p in dest.iterdir()) == ["b", "c"]


def test_tree_from_folder_and_unpack_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "e" / "f.txt").write_bytes(b"f")
    (src / "top").write_bytes(os.urandom(100_000))
    (src / "skipme.pyc").write_bytes(b"junk")
    out = tmp_path / "a.s9pk"
    write_archive(tree_from_folder(src, skip=lambda rel: rel.endswith(".pyc")), out, TEST_KEY)
    dest = tmp_path / "dest"
    with ArchiveReader(out) as reader:
        assert reader.unpack(dest) == 2
    assert (dest / "d" / "e" / "f.txt").read_bytes() == b"f"
    assert (dest / "top").read_bytes() == (src / "top").read_bytes()
    assert not (dest / "skipme.pyc").exists()


def test_folder_with_symlink_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(PackError, match="symlink"):
        tree_from_folder(src)


def test_writer_refuses_bad_names(tmp_path: Path) -> None:
    for bad in ["", ".", "..", "a/b", "nul\x00"]:
        with pytest.raises(PackError):
            write_archive({bad: b"x"}, tmp_path / "x.s9pk", TEST_KEY)
    assert not list(tmp_path.iterdir())  # no temp file left behind


def test_writer_detects_a_file_changing_size(tmp_path: Path) -> None:
    from startos.s9pk import archive_writer

    src = tmp_path / "grows"
    src.write_bytes(b"1234")
    built = archive_writer._build({"grows": src}, root_priority=True)
    src.write_bytes(b"123456")  # grows after the layout was planned from its size
    fd = os.open(tmp_path / "o", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(PackError, match="changed size"):
            archive_writer._copy_file(built.children[0], fd, memoryview(bytearray(16)))
    finally:
        os.close(fd)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=st.recursive(
        st.binary(max_size=300),
        lambda children: st.dictionaries(
            st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12).filter(
                lambda s: s not in (".", "..")
            ),
            children,
            max_size=5,
        ),
        max_leaves=20,
    ).filter(lambda t: isinstance(t, dict))
)
def test_property_write_read_rewrite(tree: dict[str, TreeNode], tmp_path_factory: pytest.TempPathFactory) -> None:
    """Any tree round-trips: files read back equal, and a rewrite is byte-identical."""
    tmp = tmp_path_factory.mktemp("prop")
    out = tmp / "p.s9pk"
    write_archive(tree, out, TEST_KEY)
    assert read_everything(out) == flatten(tree)
    with ArchiveReader(out) as reader:
        write_archive(reader.tree(), tmp / "q.s9pk", TEST_KEY)
        dest = tmp / "unpacked"
        reader.unpack(dest)
    assert (tmp / "q.s9pk").read_bytes() == out.read_bytes()
    for path, content in flatten(tree).items():
        assert (dest / path).read_bytes() == content
    shutil.rmtree(tmp)


# -- real StartOS files and StartOS's own reader ---------------------------------------------


@pytest.mark.skipif(not os.environ.get("STARTOS_REAL_S9PK"), reason="set STARTOS_REAL_S9PK")
def test_real_startos_s9pk_inspects_and_verifies(tmp_path: Path) -> None:
    """A package built by StartOS's start-cli: opens, verifies fully, manifest is JSON."""
    path = Path(os.environ["STARTOS_REAL_S9PK"])
    with ArchiveReader(path) as reader:
        reader.verify()
        manifest = json.loads(reader.read_bytes("manifest.json"))
        assert isinstance(manifest.get("id"), str)
        assert reader.file_paths()
        assert reader.commitment.to_json()["rootMaxsize"] == reader.commitment.root_maxsize
        # Re-writing with the same tree keeps every file and directory hash (only the
        # signature and the root order may differ).
        write_archive(reader.tree(), tmp_path / "copy.s9pk", TEST_KEY)
    with ArchiveReader(tmp_path / "copy.s9pk") as copy:
        assert copy.commitment.root_sighash == reader.commitment.root_sighash
        copy.verify()


CHECK_TS = """
import { readFileSync } from 'fs'
import { S9pk } from './lib/s9pk'
import { DirectoryContents } from './lib/s9pk/merkleArchive/directoryContents'
import { FileContents } from './lib/s9pk/merkleArchive/fileContents'
import { blake3 } from '@noble/hashes/blake3'

async function walk(dir: DirectoryContents, prefix: string, out: Record<string, string>) {
  for (const [name, entry] of Object.entries(dir.contents)) {
    const p = prefix ? prefix + '/' + name : name
    if (entry.contents instanceof DirectoryContents) await walk(entry.contents, p, out)
    else if (entry.contents instanceof FileContents)
      out[p] = Buffer.from(blake3(new Uint8Array(await entry.verifiedFileContents()))).toString('hex')
  }
}
async function main() {
  const s9pk = await S9pk.deserialize(new Blob([readFileSync(process.argv[2])]), null)
  const files: Record<string, string> = {}
  await walk(s9pk.archive.contents, '', files)
  console.log(JSON.stringify({ id: s9pk.manifest.id, files }))
}
main().catch(e => { console.error(e.message); process.exit(1) })
"""


@pytest.mark.skipif(not os.environ.get("STARTOS_TS_CHECK_DIR"), reason="set STARTOS_TS_CHECK_DIR (see docstring)")
def test_startos_typescript_reader_accepts_our_archives(sample_archive: Path) -> None:
    """StartOS's own TypeScript reader verifies and reads our archive.

    STARTOS_TS_CHECK_DIR must hold StartOS's ``shared-libs/ts-modules/start-core/lib/s9pk``
    as ``lib/s9pk`` (with stubs for ``lib/osBindings.ts`` and ``lib/util/index.ts``) and
    ``npm install @noble/curves@1.9 @noble/hashes@1.8 mime@4 tsx``. The reader checks the
    Ed25519ph signature (context "s9pk"), every directory sighash and every file hash.
    """
    workdir = Path(os.environ["STARTOS_TS_CHECK_DIR"])
    (workdir / "startos_py_check.ts").write_text(CHECK_TS)
    result = subprocess.run(
        ["npx", "tsx", "startos_py_check.ts", str(sample_archive)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    files = json.loads(result.stdout)["files"]
    expected = {p: blake3.blake3(c).hexdigest() for p, c in flatten(sample_tree()).items()}
    assert files == expected


def test_closed_reader_fails_cleanly(sample_archive: Path) -> None:
    reader = ArchiveReader(sample_archive)
    reader.close()
    reader.close()  # idempotent
    with pytest.raises(S9pkError, match="closed"):
        reader.listdir("python")
    with pytest.raises(S9pkError, match="closed"):
        reader.open_file("zeta.txt")

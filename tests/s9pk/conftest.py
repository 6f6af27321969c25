"""Fixtures and forging helpers for the s9pk tests.

``forge`` builds archives byte by byte (with a real signature) so that each bad-input test
reaches exactly the check it is about instead of failing earlier on the signature.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from startos.s9pk.archive import ArchiveReader
from startos.s9pk.archive_writer import TreeNode, write_archive
from startos.s9pk.signing import SigningKey, sign_commitment
from startos.s9pk.toc import HEADER_SIZE, MAGIC, Entry, EntryKind, serialize_toc, sighash

HELLO = Path(__file__).parent / "fixtures" / "hello"
TEST_KEY = SigningKey(bytes(range(32)))
OTHER_KEY = SigningKey(bytes(range(1, 33)))


def sample_tree() -> dict[str, TreeNode]:
    """A small tree with every shape: nested dirs, empty file, empty dir, priority names."""
    return {
        "zeta.txt": b"last by name",
        "manifest.json": b'{"id":"sample"}',
        "icon.png": b"\x89PNG fake",
        "LICENSE.md": b"MIT",
        "instructions.md": b"# Read me",
        "empty": b"",
        "images": {"x86_64": {"main.squashfs": bytes(range(256)) * 40, "main.json": b"{}"}},
        "python": {"svc": {"__init__.py": b"print('hi')\n"}, "emptydir": {}},
        "assets": {"a": {"b": {"c.txt": b"deep"}}},
    }


def flatten(tree: dict[str, TreeNode], prefix: str = "") -> dict[str, bytes]:
    """Files of a bytes-only tree as {path: content}."""
    out: dict[str, bytes] = {}
    for name, value in tree.items():
        path = f"{prefix}/{name}" if prefix else name
        if isinstance(value, dict):
            out.update(flatten(value, path))
        else:
            assert isinstance(value, bytes)
            out[path] = value
    return out


def read_everything(path: str | os.PathLike[str], **kwargs: object) -> dict[str, bytes]:
    """Open, fully verify and read every file through the streaming reader."""
    with ArchiveReader(path, **kwargs) as reader:  # type: ignore[arg-type]
        reader.verify()
        files: dict[str, bytes] = {}
        for cpath, entry in reader.walk():
            if entry.kind is EntryKind.FILE:
                with reader.open_file(cpath) as fh:
                    chunks = []
                    while chunk := fh.read(7):
                        chunks.append(chunk)
                files[cpath] = b"".join(chunks)
        return files


def forge(
    toc: Sequence[Entry] | bytes,
    body: bytes = b"",
    *,
    key: SigningKey = TEST_KEY,
    root_hash: bytes | None = None,
    maxsize: int | None = None,
    root_pos: int = HEADER_SIZE,
    root_size: int | None = None,
    magic: bytes = MAGIC,
) -> bytes:
    """A correctly signed archive whose root TOC is ``toc`` followed by ``body``."""
    raw = toc if isinstance(toc, bytes) else serialize_toc(list(toc))
    digest = root_hash if root_hash is not None else (sighash(list(toc)) if not isinstance(toc, bytes) else bytes(32))
    max_size = maxsize if maxsize is not None else len(raw)
    signature = sign_commitment(key, digest, max_size)
    header = (
        magic
        + key.public_key
        + signature
        + digest
        + max_size.to_bytes(8, "big")
        + root_pos.to_bytes(8, "big")
        + (root_size if root_size is not None else len(raw)).to_bytes(8, "big")
    )
    return header + raw + body


def file_entry(name: str, content: bytes, position: int) -> Entry:
    """A file entry with the right hash for ``content`` at ``position``."""
    import blake3

    return Entry(name, EntryKind.FILE, blake3.blake3(content).digest(), len(content), position)


@pytest.fixture
def key() -> SigningKey:
    return TEST_KEY


@pytest.fixture
def sample_archive(tmp_path: Path) -> Path:
    out = tmp_path / "sample.s9pk"
    write_archive(sample_tree(), out, TEST_KEY)
    return out

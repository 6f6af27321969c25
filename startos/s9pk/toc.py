"""The table-of-contents codec shared by the archive reader and writer (REFERENCE.md §1).

A TOC is ``varint(count)`` then, per entry, ``varstring(name) ‖ hash[32] ‖ u64be(size) ‖ type``
and, for a file, ``u64be(position)``; for a directory, ``u64be(position) ‖ u64be(toc_size)``.
A directory's signed hash (its *sighash*) is BLAKE3 of its TOC re-serialized with every entry
written as Missing, sorted by name. Entry order in a written TOC follows StartOS's
``DirectoryContents::serialize_toc`` comparator, reproduced in :func:`layout_order`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import blake3

from startos.paths import name_problem, shown
from startos.s9pk.errors import S9pkError
from startos.s9pk.varint import (
    decode_varint,
    decode_varstring,
    encode_varint,
    encode_varstring,
    varint_size,
    varstring_size,
)

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "MAX_DEPTH",
    "MAX_ROOT_TOC_SIZE",
    "MAX_TOC_SIZE",
    "Entry",
    "EntryKind",
    "entry_header_size",
    "layout_order",
    "parse_toc",
    "root_priority",
    "serialize_toc",
    "sighash",
    "toc_size",
    "validate_name",
]

MAGIC = b"\x3b\x3b\x02"
# magic 3 + pubkey 32 + signature 64 + root sighash 32 + root maxsize 8 + root (position, size) 16
HEADER_SIZE = 3 + 32 + 64 + 32 + 8 + 16
MAX_ROOT_TOC_SIZE = 1024 * 1024  # StartOS refuses bigger roots unless a commitment vouches
MAX_TOC_SIZE = 16 * 1024 * 1024  # our cap for sub-directories (~250k entries in one directory)
MAX_DEPTH = 128  # deeper trees are refused rather than walked
_MIN_ENTRY = 1 + 32 + 8 + 1  # the smallest possible entry: 1-byte name length, missing


class EntryKind(enum.IntEnum):
    """The type byte of a TOC entry."""

    MISSING = 0
    FILE = 1
    DIRECTORY = 2


@dataclass(frozen=True, slots=True)
class Entry:
    """One TOC entry as stored.

    ``size`` is what the parent's sighash covers: a file's length, or a directory's signed
    maximum TOC size. ``position`` and ``toc_size`` are layout and are not signed; they are
    checked through the content they point at.
    """

    name: str
    kind: EntryKind
    hash: bytes
    size: int
    position: int = 0
    toc_size: int = 0


def validate_name(name: str, where: str = "") -> None:
    """Refuse names that could not be a single path component on any platform we unpack to.

    The rule is the one every path built from outside data obeys (:func:`startos.paths.name_problem`):
    not empty, no NUL, no ``/``, not ``.`` or ``..``, at most 255 bytes.
    """
    problem = name_problem(name)
    if problem is not None:
        raise S9pkError(f"invalid entry name {shown(name)} in {shown(where or '/')}: {problem}")


def parse_toc(raw: bytes, where: str = "") -> list[Entry]:
    """Parse a TOC strictly: every byte used, valid unique names, known types."""
    count, pos = decode_varint(raw, 0)
    # Each entry needs at least _MIN_ENTRY bytes, so a forged count cannot make us loop long.
    if count > (len(raw) - pos) // _MIN_ENTRY:
        raise S9pkError(f"table of contents of {where or '/'!r} claims {count} entries, too many")
    entries: list[Entry] = []
    names: set[str] = set()
    end = len(raw)
    for _ in range(count):
        name, pos = decode_varstring(raw, pos)
        validate_name(name, where)
        if name in names:
            raise S9pkError(f"duplicate entry name {name!r} in {where or '/'!r}")
        names.add(name)
        if pos + 41 > end:
            raise S9pkError(f"truncated table of contents in {where or '/'!r}")
        digest = raw[pos : pos + 32]
        size = int.from_bytes(raw[pos + 32 : pos + 40], "big")
        kind_byte = raw[pos + 40]
        pos += 41
        if kind_byte == EntryKind.MISSING:
            entries.append(Entry(name, EntryKind.MISSING, digest, size))
        elif kind_byte == EntryKind.FILE:
            if pos + 8 > end:
                raise S9pkError(f"truncated table of contents in {where or '/'!r}")
            position = int.from_bytes(raw[pos : pos + 8], "big")
            pos += 8
            entries.append(Entry(name, EntryKind.FILE, digest, size, position))
        elif kind_byte == EntryKind.DIRECTORY:
            if pos + 16 > end:
                raise S9pkError(f"truncated table of contents in {where or '/'!r}")
            position = int.from_bytes(raw[pos : pos + 8], "big")
            child_toc = int.from_bytes(raw[pos + 8 : pos + 16], "big")
            pos += 16
            entries.append(Entry(name, EntryKind.DIRECTORY, digest, size, position, child_toc))
        else:
            raise S9pkError(f"unknown entry type {kind_byte} for {name!r} in {where or '/'!r}")
    if pos != end:
        raise S9pkError(f"{end - pos} unexpected bytes after the table of contents of {where or '/'!r}")
    return entries


def sighash(entries: Iterable[Entry]) -> bytes:
    """A directory's signed hash: its entries as Missing, sorted by name (UTF-8 byte order)."""
    ordered = sorted(entries, key=lambda e: e.name.encode("utf-8"))
    hasher = blake3.blake3(encode_varint(len(ordered)))
    for e in ordered:
        hasher.update(encode_varstring(e.name))
        hasher.update(e.hash)
        hasher.update(e.size.to_bytes(8, "big"))
        hasher.update(b"\x00")
    return hasher.digest()


def entry_header_size(name: str, kind: EntryKind) -> int:
    """Bytes one entry takes in a TOC."""
    tail = {EntryKind.MISSING: 0, EntryKind.FILE: 8, EntryKind.DIRECTORY: 16}[kind]
    return varstring_size(name) + 32 + 8 + 1 + tail


def toc_size(children: Sequence[tuple[str, EntryKind]]) -> int:
    """Bytes of a TOC holding ``children`` (name, kind) — StartOS's ``toc_size``."""
    return varint_size(len(children)) + sum(entry_header_size(n, k) for n, k in children)


def serialize_toc(entries: Sequence[Entry]) -> bytes:
    """Encode entries in the order given (use :func:`layout_order` first)."""
    out = bytearray(encode_varint(len(entries)))
    for e in entries:
        out += encode_varstring(e.name)
        out += e.hash
        out += e.size.to_bytes(8, "big")
        out.append(int(e.kind))
        if e.kind is EntryKind.FILE:
            out += e.position.to_bytes(8, "big")
        elif e.kind is EntryKind.DIRECTORY:
            out += e.position.to_bytes(8, "big") + e.toc_size.to_bytes(8, "big")
    return bytes(out)


def _rust_file_stem(name: str) -> str:
    """``std::path::Path::file_stem`` for one component: "icon.png" -> "icon", ".icon" stays."""
    if name == "..":
        return name
    dot = name.rfind(".")
    if dot <= 0:
        return name
    return name[:dot]


def root_priority(name: str) -> int | None:
    """StartOS ``s9pk::v2::priority``: what a reader needs first goes first (None = after)."""
    if name == "manifest.json":
        return 0
    if _rust_file_stem(name) == "icon":
        return 1
    fixed = {
        "LICENSE.md": 2,
        "instructions.md": 3,
        "dependencies": 4,
        "javascript.squashfs": 5,
        "assets.squashfs": 6,
        "images": 7,
    }
    return fixed.get(name)


def layout_order(children: Iterable[tuple[str, EntryKind]], *, root: bool) -> list[tuple[str, EntryKind]]:
    """Order entries as StartOS writes a TOC.

    Directories, then files, then Missing (by name). Directories and files keep name order,
    except in the root where StartOS's priority comparator (a stable sort) puts manifest.json,
    icon.*, LICENSE.md, instructions.md, dependencies, javascript.squashfs, assets.squashfs and
    images first. StartOS applies that comparator only to the root of an archive it has read
    and re-writes; sub-directories are always in name order.
    """
    by_name = sorted(children, key=lambda c: c[0].encode("utf-8"))

    def key(child: tuple[str, EntryKind]) -> tuple[int, int, int]:
        name, kind = child
        group = {EntryKind.DIRECTORY: 0, EntryKind.FILE: 1, EntryKind.MISSING: 2}[kind]
        if kind is EntryKind.MISSING or not root:
            return (group, 0, 0)
        prio = root_priority(name)
        return (group, 0, prio) if prio is not None else (group, 1, 0)

    return sorted(by_name, key=key)  # stable: ties keep name order

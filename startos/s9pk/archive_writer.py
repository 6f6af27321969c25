"""Writing signed s9pk v2 merkle archives, laid out byte for byte as StartOS lays them out.

StartOS (``MerkleArchive::serialize`` and its ``WriteQueue``) writes the header, the root TOC
right after it, then a breadth-first queue: each TOC, when written, appends its children to the
queue, and every queued item gets the next free position. Positions depend only on names, kinds
and sizes, never on hashes, so this writer plans the whole layout from sizes first and then
makes one streaming pass over the contents, hashing each file while it is copied. TOCs (which
need the children's hashes) are written into their reserved places afterwards, and the header,
with the signature, last. Sources are read once; memory is one copy buffer.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import blake3

from startos.s9pk.errors import PackError, S9pkError
from startos.s9pk.signing import SigningKey, sign_commitment
from startos.s9pk.toc import (
    HEADER_SIZE,
    MAGIC,
    MAX_DEPTH,
    Entry,
    EntryKind,
    layout_order,
    serialize_toc,
    sighash,
    toc_size,
    validate_name,
)

if TYPE_CHECKING:
    from startos.s9pk.archive import ArchiveReader, Commitment

__all__ = ["ArchivedFile", "MissingEntry", "TreeNode", "tree_from_folder", "write_archive"]

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class MissingEntry:
    """An entry listed by hash and size whose contents the archive leaves out."""

    hash: bytes
    size: int


@dataclass(frozen=True)
class ArchivedFile:
    """A file taken from another open archive; re-checked against its hash while copied."""

    reader: ArchiveReader
    path: str


# A tree to write: bytes (inline content), a path to a regular file, a file of another archive,
# a Missing entry, or a mapping (a sub-directory).
TreeNode: TypeAlias = bytes | os.PathLike[str] | ArchivedFile | MissingEntry | Mapping[str, "TreeNode"]


@dataclass(eq=False)
class _Node:
    name: str
    kind: EntryKind
    source: object = None
    size: int = 0  # file length; for a directory, its TOC size
    hash: bytes = b""
    position: int = 0
    children: list[_Node] = field(default_factory=list)

    def entry(self) -> Entry:
        if self.kind is EntryKind.DIRECTORY:
            return Entry(self.name, self.kind, self.hash, self.size, self.position, self.size)
        return Entry(self.name, self.kind, self.hash, self.size, self.position)


def _file_node(name: str, value: object, where: str) -> _Node:
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return _Node(name, EntryKind.FILE, data, len(data))
    if isinstance(value, MissingEntry):
        if len(value.hash) != 32 or not 0 <= value.size < 2**64:
            raise PackError(f"missing entry {where!r} needs a 32-byte hash and a u64 size")
        return _Node(name, EntryKind.MISSING, None, value.size, value.hash)
    if isinstance(value, ArchivedFile):
        entry = value.reader.entry(value.path)
        if entry.kind is EntryKind.MISSING:
            return _Node(name, EntryKind.MISSING, None, entry.size, entry.hash)
        if entry.kind is not EntryKind.FILE:
            raise PackError(f"{value.path!r} in the source archive is not a file")
        return _Node(name, EntryKind.FILE, value, entry.size, entry.hash)
    if isinstance(value, os.PathLike):
        path = Path(value)
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError as exc:
            raise PackError(f"cannot read {path}: {exc.strerror}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise PackError(f"{path} is not a regular file (symlinks and devices are not packed)")
        return _Node(name, EntryKind.FILE, path, st.st_size)
    raise PackError(f"cannot pack {where!r}: unsupported source {type(value).__name__}")


def _build(tree: Mapping[str, TreeNode], *, root_priority: bool) -> _Node:
    """Turn a tree into nodes with sizes and TOC order; directories iteratively, depth-capped."""
    root = _Node("", EntryKind.DIRECTORY, tree)
    stack: list[tuple[_Node, str, int]] = [(root, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PackError(f"directories nested deeper than {MAX_DEPTH} levels at {where!r}")
        mapping = node.source
        assert isinstance(mapping, Mapping)
        kids: dict[str, _Node] = {}
        for name, value in mapping.items():
            child_where = f"{where}/{name}" if where else name
            if not isinstance(name, str):
                raise PackError(f"entry names must be strings, got {name!r}")
            try:
                validate_name(name, where)
            except S9pkError as exc:
                raise PackError(exc.message) from exc
            if isinstance(value, Mapping):
                child = _Node(name, EntryKind.DIRECTORY, value)
                stack.append((child, child_where, depth + 1))
            else:
                child = _file_node(name, value, child_where)
            kids[name] = child
        at_root = root_priority and not where
        order = layout_order(((n, c.kind) for n, c in kids.items()), root=at_root)
        node.children = [kids[n] for n, _ in order]
        node.size = toc_size(order)
    return root


def _plan(root: _Node) -> tuple[list[_Node], int]:
    """Assign positions exactly as StartOS's WriteQueue does; return the queue order and end."""
    root.position = HEADER_SIZE
    next_pos = HEADER_SIZE + root.size
    queue: deque[_Node] = deque([root])
    order: list[_Node] = []
    while queue:
        node = queue.popleft()
        order.append(node)
        if node.kind is not EntryKind.DIRECTORY:
            continue
        for child in node.children:
            if child.kind is EntryKind.MISSING:
                continue
            child.position = next_pos
            next_pos += child.size
            queue.append(child)
    return order, next_pos


def _pwrite_all(fd: int, data: memoryview | bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _copy_file(node: _Node, fd: int, buf: memoryview) -> None:
    """Copy one file's contents to its position, hashing on the way."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if node.size >= 1 << 20 else 1)
    offset = node.position
    src = node.source
    if isinstance(src, bytes):
        hasher.update(src)
        _pwrite_all(fd, src, offset)
        node.hash = hasher.digest()
        return
    if isinstance(src, ArchivedFile):
        done = 0
        with src.reader.open_file(src.path) as fh:  # raises if the source does not verify
            while n := fh.readinto(buf):
                _pwrite_all(fd, buf[:n], offset + done)
                done += n
        return  # node.hash is the source's signed hash, just checked
    assert isinstance(src, Path)
    try:
        # O_NOFOLLOW: the path was checked to be a regular file; refuse if it became a link.
        fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise PackError(f"cannot read {src}: {exc.strerror}") from exc
    try:
        done = 0
        while done < node.size:
            n = os.readv(fd_in, [buf[: min(len(buf), node.size - done)]])
            if not n:
                break
            hasher.update(buf[:n])
            _pwrite_all(fd, buf[:n], offset + done)
            done += n
        if done != node.size or os.read(fd_in, 1):
            raise PackError(f"{src} changed size while it was being packed")
    except OSError as exc:
        raise PackError(f"cannot read {src}: {exc.strerror}") from exc
    finally:
        os.close(fd_in)
    node.hash = hasher.digest()


def write_archive(
    tree: Mapping[str, TreeNode],
    out: str | os.PathLike[str],
    key: SigningKey,
    *,
    root_priority: bool = True,
) -> Commitment:
    """Write ``tree`` as a signed s9pk v2 file at ``out`` and return its commitment.

    The file appears atomically (written beside ``out`` and renamed). ``root_priority`` orders
    the root as StartOS does when it re-writes an archive (manifest.json, icon.*, … first); set
    it False for plain name order, as a fresh ``start-cli s9pk pack`` on StartOS writes it.
    """
    from startos.s9pk.archive import Commitment

    root = _build(tree, root_priority=root_priority)
    order, end = _plan(root)
    target = Path(out)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise PackError(f"cannot write {target}: {exc.strerror}") from exc
    try:
        buf = memoryview(bytearray(_CHUNK))
        for node in order:
            if node.kind is EntryKind.FILE:
                _copy_file(node, fd, buf)
        dirs = [n for n in order if n.kind is EntryKind.DIRECTORY]
        for node in reversed(dirs):  # breadth-first reversed: children before parents
            node.hash = sighash(c.entry() for c in node.children)
        for node in dirs:
            _pwrite_all(fd, serialize_toc([c.entry() for c in node.children]), node.position)
        signature = sign_commitment(key, root.hash, root.size)
        header = b"".join(
            [
                MAGIC,
                key.public_key,
                signature,
                root.hash,
                root.size.to_bytes(8, "big"),
                HEADER_SIZE.to_bytes(8, "big"),
                root.size.to_bytes(8, "big"),
            ]
        )
        _pwrite_all(fd, header, 0)
        os.ftruncate(fd, end)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except OSError as exc:
        raise PackError(f"cannot write {target}: {exc.strerror}") from exc
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp.exists():
            tmp.unlink()
    return Commitment(root.hash, root.size)


def tree_from_folder(
    folder: str | os.PathLike[str], *, skip: Callable[[str], bool] | None = None
) -> dict[str, TreeNode]:
    """A tree mirroring ``folder``: sub-directories as mappings, regular files as paths.

    ``skip(relative_path)`` leaves entries out. Symlinks and special files raise
    :class:`PackError`: a package must not depend on what a link points at on the build host.
    """
    base = Path(folder)
    if not base.is_dir():
        raise PackError(f"{base} is not a directory")
    root: dict[str, TreeNode] = {}
    stack: list[tuple[Path, str, dict[str, TreeNode]]] = [(base, "", root)]
    while stack:
        path, rel, into = stack.pop()
        try:
            children = sorted(os.scandir(path), key=lambda d: d.name)
        except OSError as exc:
            raise PackError(f"cannot list {path}: {exc.strerror}") from exc
        for child in children:
            crel = f"{rel}/{child.name}" if rel else child.name
            if skip is not None and skip(crel):
                continue
            if child.is_symlink():
                raise PackError(f"{child.path} is a symlink; packages hold regular files only")
            if child.is_dir(follow_symlinks=False):
                sub: dict[str, TreeNode] = {}
                into[child.name] = sub
                stack.append((Path(child.path), crel, sub))
            elif child.is_file(follow_symlinks=False):
                into[child.name] = Path(child.path)
            else:
                raise PackError(f"{child.path} is not a regular file or directory")
    return root

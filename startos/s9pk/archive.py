"""Reading s9pk v2 merkle archives, lazily and completely verified (REFERENCE.md §1).

Layout: ``3B 3B 02`` magic, the signer's Ed25519 key, an Ed25519ph signature over the commitment
(root sighash, root max size), the root TOC's position and size, then the root TOC and the
contents breadth-first. Opening an archive checks the signature and the root directory; each
sub-directory is checked when first opened and each file while it is read (the read that would
complete a file raises instead of returning corrupt bytes). :meth:`ArchiveReader.verify` checks
everything, and also that every entry sits exactly where StartOS's breadth-first writer puts it:
positions are not signed, so that rule is what makes a flipped bit anywhere an error.

The writer lives in :mod:`startos.s9pk.archive_writer`; both share the TOC codec in
:mod:`startos.s9pk.toc`.
"""

from __future__ import annotations

import base64
import binascii
import errno
import io
import itertools
import mmap
import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import blake3

from startos.paths import NotRegularFileError, open_regular_file
from startos.s9pk.archive_writer import ArchivedFile, MissingEntry, TreeNode
from startos.s9pk.errors import NotAnS9pkError, S9pkError, S9pkIntegrityError, SignatureError
from startos.s9pk.signing import fingerprint, verify_commitment
from startos.s9pk.toc import (
    HEADER_SIZE,
    MAGIC,
    MAX_DEPTH,
    MAX_ROOT_TOC_SIZE,
    MAX_TOC_SIZE,
    Entry,
    EntryKind,
    parse_toc,
    sighash,
)

__all__ = [
    "ArchiveFile",
    "ArchiveReader",
    "Commitment",
    "Directory",
    "VerifyReport",
    "hash_file",
    "open_archive",
]

_CHUNK = 8 * 1024 * 1024  # big reads: fewer syscalls, and blake3 can spread a chunk over cores
_MMAP_WINDOW = 16 * 1024 * 1024  # mapped, hashed and unmapped in turn so RSS stays flat
_THREADED_MIN = 1024 * 1024  # below this, spinning up blake3's thread pool costs more than it saves


@dataclass(frozen=True)
class Commitment:
    """What a signature covers: the root directory's sighash and its maximum TOC size."""

    root_sighash: bytes
    root_maxsize: int

    def to_json(self) -> dict[str, object]:
        """``{rootSighash, rootMaxsize}`` as StartOS serializes it (base64 without padding)."""
        return {
            "rootSighash": base64.b64encode(self.root_sighash).decode().rstrip("="),
            "rootMaxsize": self.root_maxsize,
        }

    @classmethod
    def from_json(cls, obj: object) -> Commitment:
        """Parse ``{rootSighash, rootMaxsize}``; the base64 may be padded or not."""
        if not isinstance(obj, dict):
            raise S9pkError("a commitment is an object {rootSighash, rootMaxsize}")
        digest, maxsize = obj.get("rootSighash"), obj.get("rootMaxsize")
        if not isinstance(digest, str) or isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise S9pkError("a commitment needs rootSighash (base64) and rootMaxsize (integer)")
        try:
            raw = base64.b64decode(digest + "=" * (-len(digest) % 4), validate=True)
        except binascii.Error as exc:
            raise S9pkError("commitment rootSighash is not base64") from exc
        if len(raw) != 32 or not 0 <= maxsize < 2**64:
            raise S9pkError("commitment rootSighash must be 32 bytes and rootMaxsize a u64")
        return cls(raw, maxsize)


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a full :meth:`ArchiveReader.verify` (only returned when all holds)."""

    signer: bytes
    commitment: Commitment
    directories: int
    files: int
    missing: int
    file_bytes: int
    archive_bytes: int


class Directory:
    """One verified directory: its entries in stored order, and by name."""

    __slots__ = ("_by_name", "entries", "path")

    def __init__(self, path: str, entries: tuple[Entry, ...]) -> None:
        self.path = path
        self.entries = entries
        self._by_name = {e.name: e for e in entries}

    def get(self, name: str) -> Entry | None:
        """The entry called ``name``, or None."""
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _split(path: str) -> list[str]:
    return [part for part in path.strip("/").split("/") if part]


def _new_hasher(size: int) -> blake3.blake3:
    if size >= _THREADED_MIN:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3()


def _pread_exact(fd: int, size: int, offset: int, what: str) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise S9pkError(f"truncated: {what} ends past the end of the file")
    return data


class ArchiveFile(io.RawIOBase):
    """A streaming reader over one archived file that checks its BLAKE3 hash.

    Reads never hold more than the caller's buffer. The read that consumes the last byte
    raises :class:`S9pkIntegrityError` instead of returning data when the content does not
    match its signed hash, so a consumer that reads to EOF without an error got the real file.
    """

    def __init__(self, fd: int, entry: Entry, path: str) -> None:
        super().__init__()
        self._fd = fd
        self._path = path
        self._expected = entry.hash
        self._offset = entry.position
        self._remaining = entry.size
        self._hasher = _new_hasher(entry.size)
        self._checked = False
        self.size = entry.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._remaining == 0:
            self._finish()
            return 0
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._remaining)
        if want == 0:
            return 0
        got = os.preadv(self._fd, [view[:want]], self._offset)
        if got == 0:
            raise S9pkError(f"truncated: {self._path!r} ends past the end of the file")
        self._hasher.update(view[:got])
        self._offset += got
        self._remaining -= got
        if self._remaining == 0:
            self._finish()
        return got

    def _finish(self) -> None:
        if not self._checked:
            if self._hasher.digest() != self._expected:
                raise S9pkIntegrityError(f"{self._path!r} does not match its signed hash")
            self._checked = True


def _hash_region(fd: int, position: int, size: int, *, use_mmap: bool) -> bytes:
    """BLAKE3 of ``size`` bytes at ``position``: mapped windows for big regions, else pread."""
    hasher = _new_hasher(size)
    end = position + size
    # Mapping avoids a copy (about 2x faster here). If another process truncated the file
    # while it is mapped, touching the lost pages would raise SIGBUS: callers that cannot rule
    # that out pass use_mmap=False.
    if use_mmap and size >= _THREADED_MIN:
        gran = mmap.ALLOCATIONGRANULARITY
        offset = position
        while offset < end:
            base = offset - offset % gran
            length = min(end, base + _MMAP_WINDOW) - base
            with (
                mmap.mmap(fd, length, offset=base, access=mmap.ACCESS_READ) as mapped,
                memoryview(mapped) as view,
            ):
                hasher.update(view[offset - base :])
            offset = base + length
        return hasher.digest()
    buf = bytearray(min(size, _CHUNK) or 1)
    view = memoryview(buf)
    offset = position
    while offset < end:
        got = os.preadv(fd, [view[: min(len(buf), end - offset)]], offset)
        if got == 0:
            raise S9pkError("truncated: a file ends past the end of the archive")
        hasher.update(view[:got])
        offset += got
    return hasher.digest()


def hash_file(path: str | os.PathLike[str], *, use_mmap: bool = True) -> bytes:
    """BLAKE3 of a whole file on disk, streamed (the engine of ``start-cli util b3sum``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _hash_region(fd, 0, os.fstat(fd).st_size, use_mmap=use_mmap)
    finally:
        os.close(fd)


class ArchiveReader:
    """An open s9pk archive: signature and root directory verified, the rest on demand.

    ``commitment``, when given (e.g. from a registry), must match the signed one; without it a
    root TOC over 1 MiB is refused, as StartOS does, so a hostile file cannot make us read a
    huge table. ``trusted_keys``, when given, must contain the signer.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        commitment: Commitment | None = None,
        trusted_keys: Iterable[bytes] | None = None,
        max_toc_size: int = MAX_TOC_SIZE,
    ) -> None:
        self.path = Path(path)
        self._max_toc_size = max_toc_size
        try:
            # Non-blocking open and fstat on the descriptor: a FIFO answers at once instead of
            # holding a worker thread forever, and nothing can be swapped in after the check.
            self._fd = open_regular_file(self.path)
        except NotRegularFileError as exc:
            raise NotAnS9pkError(f"{self.path} is not a regular file") from exc
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            raise NotAnS9pkError(f"cannot open {self.path}: {getattr(exc, 'strerror', None) or exc}") from exc
        try:
            self.file_size = os.fstat(self._fd).st_size
            self._read_header(commitment, trusted_keys)
        except BaseException:
            os.close(self._fd)
            raise

    # -- header ---------------------------------------------------------------------------

    def _read_header(self, commitment: Commitment | None, trusted_keys: Iterable[bytes] | None) -> None:
        try:
            head = os.pread(self._fd, HEADER_SIZE, 0)
        except OSError as exc:  # e.g. EIO from /proc/self/mem: a "regular" file that cannot be read
            raise NotAnS9pkError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        if not head:
            raise NotAnS9pkError("truncated: the file is empty")
        if len(head) < 2 or head[:2] != MAGIC[:2]:
            raise NotAnS9pkError("not an s9pk file: wrong magic bytes")
        if len(head) >= 3 and head[2] != MAGIC[2]:
            raise S9pkError(f"unsupported s9pk version {head[2]} (only version 2 is read)")
        if len(head) < HEADER_SIZE:
            raise S9pkError(f"truncated: the file is {len(head)} bytes, the header needs 155")
        pubkey, signature = head[3:35], head[35:99]
        root_sighash = head[99:131]
        root_maxsize = int.from_bytes(head[131:139], "big")
        root_pos = int.from_bytes(head[139:147], "big")
        root_size = int.from_bytes(head[147:155], "big")
        verify_commitment(pubkey, signature, root_sighash, root_maxsize)
        if trusted_keys is not None and pubkey not in set(trusted_keys):
            raise SignatureError(f"signer {fingerprint(pubkey)} is not a trusted key")
        if commitment is not None:
            if commitment.root_sighash != root_sighash:
                raise SignatureError("merkle root does not match the expected commitment")
            if root_maxsize > commitment.root_maxsize:
                raise SignatureError("root directory max size is larger than committed")
        elif root_maxsize > MAX_ROOT_TOC_SIZE:
            raise S9pkIntegrityError("root table of contents claims over 1 MiB; refusing without a commitment")
        self.signer = pubkey
        self.signature = signature
        self.commitment = Commitment(root_sighash, root_maxsize)
        self.root_entry = Entry("", EntryKind.DIRECTORY, root_sighash, root_maxsize, root_pos, root_size)
        self._dirs: dict[str, Directory] = {}
        self.root = self._load_dir("", self.root_entry)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Release the file descriptor; open :class:`ArchiveFile` readers stop working."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- directories ----------------------------------------------------------------------

    def _check_region(self, path: str, position: int, size: int) -> None:
        if position < HEADER_SIZE:
            raise S9pkError(f"{path or '/'!r} points into the archive header")
        if position + size > self.file_size:
            raise S9pkError(
                f"{path or '/'!r} claims {size} bytes at offset {position}, past the end of the "
                f"{self.file_size}-byte file (truncated or forged size)"
            )

    def _load_dir(self, path: str, entry: Entry) -> Directory:
        cached = self._dirs.get(path)
        if cached is not None:
            return cached
        if self._fd < 0:
            raise S9pkError(f"{self.path} is closed")
        if len(_split(path)) > MAX_DEPTH:
            raise S9pkError(f"directories nested deeper than {MAX_DEPTH} levels at {path!r}")
        if entry.toc_size > entry.size:
            raise S9pkIntegrityError(f"table of contents of {path or '/'!r} is larger than its signed size")
        # The root is already bounded by its signed max size (1 MiB, or the commitment's).
        if path and entry.toc_size > self._max_toc_size:
            raise S9pkError(f"table of contents of {path!r} exceeds the size cap")
        self._check_region(path, entry.position, entry.toc_size)
        raw = _pread_exact(self._fd, entry.toc_size, entry.position, "a table of contents")
        entries = parse_toc(raw, path)
        if sighash(entries) != entry.hash:
            raise S9pkIntegrityError(f"directory {path or '/'!r} does not match its signed hash")
        for child in entries:
            if child.kind is EntryKind.FILE:
                self._check_region(_join(path, child.name), child.position, child.size)
        directory = Directory(path, tuple(entries))
        self._dirs[path] = directory
        return directory

    def entry(self, path: str) -> Entry:
        """The entry at ``path`` ("a/b/c"); parent directories are verified on the way."""
        parts = _split(path)
        if not parts:
            return self.root_entry
        directory = self.root
        for i, name in enumerate(parts):
            child = directory.get(name)
            if child is None:
                raise S9pkError(f"no such entry in the archive: {path!r}")
            if i == len(parts) - 1:
                return child
            if child.kind is not EntryKind.DIRECTORY:
                raise S9pkError(f"not a directory in the archive: {'/'.join(parts[: i + 1])!r}")
            directory = self._load_dir("/".join(parts[: i + 1]), child)
        raise AssertionError("unreachable")

    def directory(self, path: str = "") -> Directory:
        """The verified directory at ``path`` ("" is the root)."""
        entry = self.entry(path)
        if entry.kind is not EntryKind.DIRECTORY:
            raise S9pkError(f"not a directory in the archive: {path!r}")
        return self._load_dir("/".join(_split(path)), entry)

    def listdir(self, path: str = "") -> list[str]:
        """Names in the directory at ``path``, in stored order."""
        return [e.name for e in self.directory(path)]

    def exists(self, path: str) -> bool:
        """Whether ``path`` names an entry (file, directory or missing)."""
        try:
            self.entry(path)
        except S9pkError:
            return False
        return True

    # -- files ----------------------------------------------------------------------------

    def open_file(self, path: str) -> ArchiveFile:
        """A streaming, hash-checking reader over the file at ``path``."""
        entry = self.entry(path)
        if entry.kind is EntryKind.MISSING:
            raise S9pkError(f"{path!r} is listed but its contents are not in this archive")
        if entry.kind is not EntryKind.FILE:
            raise S9pkError(f"not a file in the archive: {path!r}")
        if self._fd < 0:
            raise S9pkError(f"{self.path} is closed")
        return ArchiveFile(self._fd, entry, "/".join(_split(path)))

    def read_bytes(self, path: str, *, max_size: int = 16 * 1024 * 1024) -> bytes:
        """The verified contents of a small file; refuse files over ``max_size`` bytes."""
        entry = self.entry(path)
        if entry.kind is EntryKind.FILE and entry.size > max_size:
            raise S9pkError(f"{path!r} is {entry.size} bytes, over the {max_size}-byte limit")
        with self.open_file(path) as fh:
            return fh.read()

    def copy_file(self, path: str, out: BinaryIO) -> int:
        """Stream the file at ``path`` to ``out``; the last write happens only if it verifies."""
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        total = 0
        with self.open_file(path) as fh:
            while n := fh.readinto(view):
                out.write(view[:n])
                total += n
        return total

    # -- whole archive --------------------------------------------------------------------

    def walk(self) -> Iterator[tuple[str, Entry]]:
        """Every entry below the root, breadth-first, as ``(path, entry)``; dirs get verified."""
        self._structure()  # refuses shared tables first, so a walk cannot blow up
        queue: deque[str] = deque([""])
        while queue:
            dpath = queue.popleft()
            for child in self.directory(dpath):
                cpath = _join(dpath, child.name)
                yield cpath, child
                if child.kind is EntryKind.DIRECTORY:
                    queue.append(cpath)

    def file_paths(self) -> list[str]:
        """All paths, directories with a trailing "/", in StartOS's ``file-tree`` order."""
        self._structure()
        out: list[str] = []

        def visit(dpath: str) -> None:
            for child in sorted(self.directory(dpath), key=lambda e: e.name):
                cpath = _join(dpath, child.name)
                if child.kind is EntryKind.DIRECTORY:
                    out.append(cpath + "/")
                    visit(cpath)
                else:
                    out.append(cpath)

        visit("")
        return out

    def tree(self) -> dict[str, TreeNode]:
        """This archive as a writer tree, so it can be re-written (e.g. with a new manifest).

        Files become :class:`ArchivedFile` references, re-checked against their hashes when
        copied; Missing entries stay Missing.
        """
        self._structure()
        root: dict[str, TreeNode] = {}
        queue: deque[tuple[str, dict[str, TreeNode]]] = deque([("", root)])
        while queue:
            dpath, into = queue.popleft()
            for child in self.directory(dpath):
                cpath = _join(dpath, child.name)
                if child.kind is EntryKind.DIRECTORY:
                    sub: dict[str, TreeNode] = {}
                    into[child.name] = sub
                    queue.append((cpath, sub))
                elif child.kind is EntryKind.FILE:
                    into[child.name] = ArchivedFile(self, cpath)
                else:
                    into[child.name] = MissingEntry(child.hash, child.size)
        return root

    def _structure(self) -> list[tuple[int, int, str, Entry]]:
        """Load every directory and check that no two regions overlap; return file regions.

        Shared or cyclic tables of contents are refused here before descending, so a forged
        archive cannot make a walk revisit the same table exponentially often.
        """
        regions: list[tuple[int, int, str]] = [(0, HEADER_SIZE, "the header")]
        files: list[tuple[int, int, str, Entry]] = []
        seen_tocs: set[int] = set()
        root = self.root_entry
        regions.append((root.position, root.position + root.toc_size, "/"))
        seen_tocs.add(root.position)
        queue: deque[str] = deque([""])
        while queue:
            dpath = queue.popleft()
            for child in self.directory(dpath):
                cpath = _join(dpath, child.name)
                if child.kind is EntryKind.DIRECTORY:
                    if child.position in seen_tocs:
                        raise S9pkIntegrityError(
                            f"directory {cpath!r} reuses another directory's table (a cycle or overlapping regions)"
                        )
                    seen_tocs.add(child.position)
                    regions.append((child.position, child.position + child.toc_size, cpath))
                    queue.append(cpath)
                elif child.kind is EntryKind.FILE:
                    files.append((child.position, child.size, cpath, child))
                    if child.size:
                        regions.append((child.position, child.position + child.size, cpath))
        regions.sort()
        for (_, prev_end, prev), (start, _, name) in itertools.pairwise(regions):
            if start < prev_end:
                raise S9pkIntegrityError(f"regions overlap: {prev!r} and {name!r}")
        return files

    def _check_canonical_layout(self) -> None:
        """Every position must be where StartOS's breadth-first writer puts it.

        Positions are not signed, so this is what makes a changed position (even that of an
        empty file, which no hash covers) or any unused byte an error.
        """
        if self.root_entry.position != HEADER_SIZE:
            raise S9pkIntegrityError("the root table of contents is not right after the header")
        next_pos = HEADER_SIZE + self.root_entry.toc_size
        queue: deque[str] = deque([""])
        while queue:
            dpath = queue.popleft()
            for child in self.directory(dpath):
                if child.kind is EntryKind.MISSING:
                    continue
                cpath = _join(dpath, child.name)
                if child.position != next_pos:
                    raise S9pkIntegrityError(
                        f"{cpath!r} is at offset {child.position}, not where the breadth-first "
                        f"layout puts it ({next_pos}): unsigned bytes were changed"
                    )
                if child.kind is EntryKind.DIRECTORY:
                    next_pos += child.toc_size
                    queue.append(cpath)
                else:
                    next_pos += child.size
        if next_pos != self.file_size:
            raise S9pkIntegrityError(f"{self.file_size - next_pos} trailing bytes after the last entry")

    def verify(self, *, use_mmap: bool = True) -> VerifyReport:
        """Check everything: every directory, every file's hash, and that the contents are laid
        out exactly as StartOS lays them out (so no byte is unaccounted for). Raises on the
        first failure."""
        files = self._structure()
        self._check_canonical_layout()
        files.sort(key=lambda f: f[0])  # disk order: one sequential pass
        total = 0
        for position, size, cpath, entry in files:
            try:
                digest = _hash_region(self._fd, position, size, use_mmap=use_mmap)
            except OSError as exc:
                raise S9pkError(f"cannot read {cpath!r}: {exc.strerror}") from exc
            if digest != entry.hash:
                raise S9pkIntegrityError(f"{cpath!r} does not match its signed hash")
            total += size
        dirs = len(self._dirs)
        missing = sum(1 for d in self._dirs.values() for e in d if e.kind is EntryKind.MISSING)
        return VerifyReport(self.signer, self.commitment, dirs, len(files), missing, total, self.file_size)

    def unpack(self, dest: str | os.PathLike[str]) -> int:
        """Extract every file into ``dest`` (absent or empty); return the number of files.

        Names were validated when their directory was read (no "/", NUL, "." or ".."), and
        files are created relative to directory descriptors with ``O_NOFOLLOW | O_EXCL``, so
        nothing lands outside ``dest``. On any failure what was extracted is removed.
        """
        target = Path(dest)
        created = not target.exists()
        if not created and (not target.is_dir() or any(target.iterdir())):
            raise S9pkError(f"unpack destination {target} exists and is not an empty directory")
        self._structure()
        try:
            target.mkdir(parents=True, exist_ok=True)
            return self._unpack_into(target)
        except BaseException:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            else:
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            raise

    def _unpack_into(self, target: Path) -> int:
        dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        count = 0
        view = memoryview(bytearray(_CHUNK))
        queue: deque[tuple[str, int]] = deque()
        try:
            queue.append(("", os.open(target, dir_flags)))
            while queue:
                dpath, dfd = queue.popleft()
                try:
                    for child in self.directory(dpath):
                        cpath = _join(dpath, child.name)
                        if child.kind is EntryKind.DIRECTORY:
                            os.mkdir(child.name, 0o755, dir_fd=dfd)
                            queue.append((cpath, os.open(child.name, dir_flags, dir_fd=dfd)))
                        elif child.kind is EntryKind.FILE:
                            self._extract(cpath, child, dfd, view)
                            count += 1
                finally:
                    os.close(dfd)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise S9pkError(f"unpack found a duplicate path: {exc.filename}") from exc
            raise S9pkError(f"cannot unpack into {target}: {exc.strerror}") from exc
        finally:
            for _, fd in queue:  # only left over when an error stopped the walk
                os.close(fd)
        return count

    def _extract(self, cpath: str, entry: Entry, dfd: int, view: memoryview) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        out = os.open(entry.name, flags, 0o644, dir_fd=dfd)
        try:
            with ArchiveFile(self._fd, entry, cpath) as fh:
                while n := fh.readinto(view):
                    written = 0
                    while written < n:
                        written += os.write(out, view[written:n])
        except BaseException:
            os.close(out)
            os.unlink(entry.name, dir_fd=dfd)
            raise
        os.close(out)


def open_archive(
    path: str | os.PathLike[str],
    *,
    commitment: Commitment | None = None,
    trusted_keys: Iterable[bytes] | None = None,
) -> ArchiveReader:
    """Open and authenticate an s9pk archive (see :class:`ArchiveReader`)."""
    return ArchiveReader(path, commitment=commitment, trusted_keys=trusted_keys)

"""Where things live, and the one gate between outside names and the filesystem.

Default locations: a per-user data directory, and the developer's config directory.

The gate: nothing read from the state tree, a manifest, an archive or a request becomes a
filesystem path except through :func:`safe_child` (or :func:`check_id` for a bare id). A key of
``/public/packageData`` once reached ``shutil.rmtree(packages / key)`` unchecked at boot, and a
key of ``/tmp/victim`` or ``../../victim`` made startd delete any directory as root. Each name is
checked against the rule of its kind (package ids: lowercase letters and digits in groups joined
by single hyphens, at most :data:`ID_MAX_LENGTH` characters), then as one path component (no NUL,
no ``/``, not ``.`` or ``..``, at most 255 bytes), and finally the joined path is resolved
(symbolic links followed) and must still lie under the resolved root: a link planted inside the
root that points outside it is never followed out.

The id rules live here, below every other module, so that the manifest validator
(:mod:`startos.s9pk.manifest`) and this gate enforce one and the same rule.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind

__all__ = [
    "ID_MAX_LENGTH",
    "ID_PATTERN",
    "NAME_MAX_BYTES",
    "VOLUME_ID_PATTERN",
    "IdKind",
    "NotRegularFileError",
    "UnsafePathError",
    "check_id",
    "default_config_dir",
    "default_data_dir",
    "id_problem",
    "is_valid_id",
    "name_problem",
    "open_regular_file",
    "safe_child",
    "shown",
]

#: Package, image, volume, interface and host ids: lowercase letters and digits, in groups joined
#: by single hyphens (StartOS's ``Id`` rule).
ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
#: Volume ids: an id, or ``BACKUP``, the one reserved volume name StartOS knows.
VOLUME_ID_PATTERN = r"^(BACKUP|[a-z0-9]+(-[a-z0-9]+)*)$"
#: The longest id: a package id is also the sandbox's hostname and a DNS label (at most 63
#: characters) and part of directory, network-namespace and cgroup names. StartOS sets no cap; a
#: 300-character id failed only when its directory was created (ENAMETOOLONG), half-installed.
ID_MAX_LENGTH = 63
#: The longest single path component on Linux filesystems (``NAME_MAX``), in bytes.
NAME_MAX_BYTES = 255

IdKind = Literal["package id", "image id", "volume id", "interface id", "host id", "version", "upload id", "file name"]


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str] | None
    max_length: int
    words: str  # the rule in plain words, finishing "must be ..."


_ID_WORDS = f"lowercase letters and digits in groups joined by single hyphens, at most {ID_MAX_LENGTH} characters"
_ID_RULE = _Rule(re.compile(ID_PATTERN), ID_MAX_LENGTH, f"{_ID_WORDS} (like my-service)")
_RULES: dict[str, _Rule] = {
    "package id": _ID_RULE,
    "image id": _ID_RULE,
    "interface id": _ID_RULE,
    "host id": _ID_RULE,
    "volume id": _Rule(re.compile(VOLUME_ID_PATTERN), ID_MAX_LENGTH, f"BACKUP or {_ID_WORDS} (like main)"),
    # A version's directory name (see install.version_dir): exver without its ':' and '#'.
    "version": _Rule(
        re.compile(r"^[0-9A-Za-z_][0-9A-Za-z._+~-]*$"), 128, "letters, digits, '.', '_', '+', '~' and '-'"
    ),
    # The facade's claim ids are uuid4 hex; leave room for other token shapes, not for paths.
    "upload id": _Rule(re.compile(r"^[0-9A-Za-z_-]+$"), 64, "letters, digits, '_' and '-', at most 64"),
    "file name": _Rule(None, NAME_MAX_BYTES, "one path component"),
}


class UnsafePathError(StartOSError):
    """Raised when a name from outside breaks the rule of its kind, or would lead out of its root.

    The message names the value (repr'd, truncated) and the rule it breaks.
    """

    kind = ErrorKind.INVALID_ID


class NotRegularFileError(StartOSError):
    """Raised when a path that must name a regular file names a directory, FIFO, device or socket."""

    kind = ErrorKind.FILESYSTEM


def default_data_dir() -> Path:
    """``/var/lib/startos-py`` for root, else ``$XDG_DATA_HOME/startos-py`` (``~/.local/share``)."""
    if os.geteuid() == 0:
        return Path("/var/lib/startos-py")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "startos-py"


def default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "startos-py"


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: safe to put in a one-line message or a log.

    repr escapes NUL, newlines and control characters, so a hostile name cannot forge log lines.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be one path component (the rule it breaks), or None when it can."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not name:
        return "must not be empty"
    if "\x00" in name:
        return "must not contain a NUL byte"
    if "/" in name:
        return "must not contain '/' (it names one entry, not a path)"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
        return f"must be at most {NAME_MAX_BYTES} bytes long"
    return None


def id_problem(value: object, kind: IdKind = "package id") -> str | None:
    """Why ``value`` is not a valid ``kind`` (the rule it breaks), or None when it is."""
    rule = _RULES[kind]
    if isinstance(value, str) and len(value) > rule.max_length:  # the rule of the kind first: it is the one to tell
        return f"must be at most {rule.max_length} characters long, got {len(value)}"
    problem = name_problem(value)
    if problem is not None:
        return problem
    assert isinstance(value, str)
    if rule.pattern is not None and rule.pattern.match(value) is None:
        return f"must be {rule.words}"
    return None


def is_valid_id(value: object, kind: IdKind = "package id") -> bool:
    """True when ``value`` is a valid ``kind`` (see :func:`id_problem`)."""
    return id_problem(value, kind) is None


def check_id(value: object, kind: IdKind = "package id") -> str:
    """Return ``value`` when it is a valid ``kind``; else raise :class:`UnsafePathError`."""
    problem = id_problem(value, kind)
    if problem is not None:
        raise UnsafePathError(f"invalid {kind} {shown(value)}: {problem}")
    assert isinstance(value, str)
    return value


def safe_child(root: str | os.PathLike[str], *names: str, kind: IdKind = "package id") -> Path:
    """``root / name / ...`` for names that each pass the ``kind`` rule and that stay under ``root``.

    Every name is checked (:func:`check_id`), then the joined path is resolved, symbolic links
    included, and must lie strictly under the resolved ``root``: a link inside ``root`` pointing
    outside it (or at ``root`` itself) is refused, not followed. Returns the path as joined (not
    resolved), so callers keep their own spelling of ``root``. Raises :class:`UnsafePathError`.

    Names of several kinds are joined by nesting calls: ``safe_child(safe_child(root, pkg) /
    "volumes", vol, kind="volume id")``; literal names of our own may be joined with ``/``.
    """
    if not names:
        raise UnsafePathError("safe_child needs at least one name below the root")
    for name in names:
        check_id(name, kind)
    base = Path(os.path.realpath(root))
    joined = Path(root, *names)
    real = Path(os.path.realpath(joined))
    if real == base or not real.is_relative_to(base):
        raise UnsafePathError(
            f"invalid {kind} {shown('/'.join(names))}: it leads outside {shown(str(root))} through a symbolic link"
            " (refusing to follow it; remove the link)"
        )
    return joined


def open_regular_file(path: str | os.PathLike[str]) -> int:
    """Open ``path`` read-only and return the descriptor, only if it is a regular file.

    Symbolic links to a regular file are followed (a user names "the file", wherever it lies).
    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a writer forever,
    and the type is checked on the *opened* descriptor (``fstat``), so a file swapped for a FIFO
    or a device between a check and the open cannot slip through. The descriptor is blocking
    again when returned. Raises ``OSError`` (or ``ValueError`` for a NUL in the path) when it
    cannot be opened, :class:`NotRegularFileError` when it is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"{shown(os.fspath(path))} is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd

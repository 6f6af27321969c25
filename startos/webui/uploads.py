"""Receiving an uploaded file: streamed to disk with a size limit, removed if anything fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from startos.errors import StartOSError
from startos.paths import check_id, safe_child
from startos.protocol.errors import ErrorKind

CHUNK = 1024 * 1024


class UploadError(StartOSError):
    """Raised when an upload is too large, cut short, or cannot be written."""

    kind = ErrorKind.INVALID_REQUEST


def receive_upload(environ: dict[str, Any], directory: Path, name: str, limit: int) -> Path:
    """Copy the request body into ``directory/name.s9pk`` (mode 0600) and return its path.

    ``name`` comes from the URL: it must be an upload id (one path component of letters, digits,
    ``_`` and ``-``) before it names a file. Raises :class:`UploadError` or, for a bad name,
    ``startos.paths.UnsafePathError``.
    """
    check_id(name, "upload id")
    length = int(environ.get("CONTENT_LENGTH") or -1)
    if length > limit:
        raise UploadError(f"the upload is {length} bytes; the limit is {limit}")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = safe_child(directory, f"{name}.s9pk", kind="file name")
    stream = environ["wsgi.input"]
    received = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while True:
                want = CHUNK if length < 0 else min(CHUNK, length - received)
                if want <= 0:
                    break
                chunk = stream.read(want)
                if not chunk:
                    break
                received += len(chunk)
                if received > limit:
                    raise UploadError(f"the upload exceeds the {limit}-byte limit")
                out.write(chunk)
        if 0 <= length != received:
            raise UploadError(f"the upload was cut short: {received} of {length} bytes arrived")
        if received == 0:
            raise UploadError("the upload is empty")
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise UploadError(f"could not store the upload: {exc.strerror or exc}", kind=ErrorKind.FILESYSTEM) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path

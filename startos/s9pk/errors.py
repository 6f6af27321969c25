"""Errors of the package domain (archives, signatures, manifests, versions)."""

from __future__ import annotations

from startos.errors import StartOSError


class S9pkError(StartOSError):
    """Raised when an s9pk archive is malformed: bad magic, truncation, bad varint, bad TOC."""

    kind = 18  # ParseS9pk


class NotAnS9pkError(S9pkError):
    """Raised when a path cannot be opened as a regular file, or its first bytes are not an s9pk's.

    Callers that open a path a client chose (``package.install`` with a server path) answer all
    of these with one message, so a probe cannot learn which files exist or what they hold.
    """


class S9pkIntegrityError(S9pkError):
    """Raised when a hash or size in an archive does not match its content (tampering or corruption)."""

    kind = 24  # ValidateS9pk


class SignatureError(S9pkError):
    """Raised when an archive's signature does not verify, or its signer is not trusted."""

    kind = 31  # InvalidSignature


class ManifestError(S9pkError):
    """Raised when a manifest breaks a rule; the message names the field and the rule."""

    kind = 24  # ValidateS9pk


class PackError(S9pkError):
    """Raised when a package source folder cannot be packed (missing file, bad layout)."""

    kind = 23  # Pack


class VersionParseError(StartOSError):
    """Raised when an extended version or a version range does not parse."""

    kind = 14  # ParseVersion

"""Errors the SDK raises in package code, each naming the rule that was broken."""

from __future__ import annotations

from startos.errors import StartOSError

__all__ = ["DescriptionError", "MigrationPathError", "OutsideSandboxError", "SdkError"]


class SdkError(StartOSError):
    """Raised when package code uses the SDK against its rules (the message says which rule)."""


class DescriptionError(SdkError):
    """Raised when a daemon, oneshot, check, volume, backup or hook declaration is invalid."""

    kind = 24  # ValidateS9pk: the package itself is at fault


class MigrationPathError(SdkError):
    """Raised when no chain of migration steps joins two versions (e.g. a step has no ``down``)."""

    kind = 39  # MigrationFailed


class OutsideSandboxError(SdkError):
    """Raised when a path helper runs without the ``STARTOS_*`` environment of a sandbox.

    Package code gets that environment from the runtime and its daemons from the host; unit
    tests get it from :mod:`startos.sdk.testing`.
    """

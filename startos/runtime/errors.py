"""Errors of calls into a service runtime, as the host sees them.

Every message starts with ``package <id>:`` and names what was asked, so a failure read in a log
or a notification says which service and which step broke.
"""

from __future__ import annotations

from startos.errors import StartOSError

__all__ = [
    "PackageCodeError",
    "RuntimeBroken",
    "RuntimeCallError",
    "RuntimeClosed",
    "RuntimeProtocolError",
    "RuntimeTimeout",
]


class RuntimeCallError(StartOSError):
    """Raised when a call into a service runtime does not produce a result.

    ``package`` is the package id; ``what`` names the request (``init hook 'install'``).
    """

    def __init__(self, message: str, *, package: str, what: str | None = None, kind: int | None = None) -> None:
        super().__init__(message, kind=kind)
        self.package = package
        self.what = what


class PackageCodeError(RuntimeCallError):
    """Raised when the package's code failed: a hook raised, the code did not load, a description
    broke a rule, or no migration path exists.

    ``reason`` is the runtime's :class:`~startos.protocol.runtime.RemoteError` reason, ``hook``
    the hook that ran (``init install``, ``main``...), ``debug`` the traceback (for logs only).
    """

    def __init__(
        self,
        message: str,
        *,
        package: str,
        what: str | None = None,
        reason: str,
        hook: str | None,
        debug: str | None,
        kind: int | None = None,
    ) -> None:
        super().__init__(message, package=package, what=what, kind=kind)
        self.reason = reason
        self.hook = hook
        self.debug = debug


class RuntimeTimeout(RuntimeCallError):
    """Raised when the runtime did not answer a call in time (the call may still be running there)."""

    kind = 71  # Timeout


class RuntimeBroken(RuntimeCallError):
    """Raised when the connection broke under us: the runtime exited or closed its end."""


class RuntimeClosed(RuntimeCallError):
    """Raised when a call is made on (or was pending on) a connection the host closed itself."""


class RuntimeProtocolError(RuntimeBroken):
    """Raised when the runtime sent something the protocol forbids (oversized, undecodable or
    unexpected frame); the host closes the connection, since nothing after it can be trusted."""

    kind = 12  # Deserialization

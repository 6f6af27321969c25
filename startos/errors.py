"""The one exception root of startos-py, and its per-layer subclasses."""

from __future__ import annotations


class StartOSError(Exception):
    """Root of every error this project raises on purpose.

    ``kind`` is a StartOS error-kind number (REFERENCE.md §4) so that the JSON-RPC layer can
    report it unchanged; ``message`` is one readable line for humans.
    """

    kind: int = 1  # Unknown

    def __init__(self, message: str, *, kind: int | None = None, details: object = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        self.details = details

    def __str__(self) -> str:
        return self.message

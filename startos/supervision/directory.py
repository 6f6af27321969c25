"""Find actors by name across restarts.

Supervisors keep a ``Directory`` current as they start and stop children, so an actor (or a
test) can address ``"store"`` without holding a ref that a restart would make stale. One
directory per tree, so several trees can live in one process (as tests do).
"""

from __future__ import annotations

import time
from typing import Any

from gevent.event import Event
from pykka import ActorDeadError, ActorRef

from startos.errors import StartOSError


class ActorNotFound(StartOSError):
    """Raised when no live actor is registered under a name."""


class Directory:
    """``name -> ActorRef`` for the live actors of one tree."""

    def __init__(self) -> None:
        self._refs: dict[str, ActorRef[Any]] = {}
        self._changed = Event()

    def register(self, name: str, ref: ActorRef[Any]) -> None:
        self._refs[name] = ref
        self._changed.set()
        self._changed.clear()

    def unregister(self, name: str, ref: ActorRef[Any]) -> None:
        """Remove ``name`` only if it still points at ``ref`` (a replacement may be there)."""
        if self._refs.get(name) is ref:
            del self._refs[name]

    def get(self, name: str) -> ActorRef[Any] | None:
        """The live actor called ``name``, or ``None`` (also while it is being restarted)."""
        ref = self._refs.get(name)
        return ref if ref is not None and ref.is_alive() else None

    def names(self) -> list[str]:
        return sorted(self._refs)

    def ref(self, name: str, timeout: float = 0.0) -> ActorRef[Any]:
        """The live actor called ``name``, waiting up to ``timeout`` s for it to (re)appear."""
        deadline = None if timeout <= 0 else time.monotonic() + timeout
        while True:
            ref = self._refs.get(name)
            if ref is not None and ref.is_alive():
                return ref
            if deadline is None:
                raise ActorNotFound(f"no live actor named {name!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ActorNotFound(f"no live actor named {name!r} after {timeout:g} s")
            self._changed.wait(timeout=min(remaining, 0.05))

    def ask(self, name: str, message: object, timeout: float | None = 10.0, *, wait: float = 0.0) -> Any:
        """Ask the actor called ``name``; raise ``ActorNotFound`` if it is not there.

        ``wait`` seconds are granted for it to (re)appear, e.g. while its supervisor restarts it.
        """
        try:
            return self.ref(name, timeout=wait).ask(message, timeout=timeout)
        except ActorDeadError as exc:
            raise ActorNotFound(f"actor {name!r} died before answering: {exc}") from exc

    def tell(self, name: str, message: object) -> None:
        try:
            self.ref(name).tell(message)
        except ActorDeadError as exc:
            raise ActorNotFound(f"actor {name!r} is gone: {exc}") from exc

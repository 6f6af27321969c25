"""DependencyWatcherActor: tells a service when a package it depends on changed.

It follows ``/public/packageData`` through a store subscription and tells each dependent's
ServiceActor ``DependencyChanged`` when a package it needs changed in a way that can change
whether it is satisfied (installed, started, stopped, a health check, an error). The dependent
re-checks and starts as soon as its dependency is healthy (readiness-gated), or shows itself
degraded when it fails later.

It is a supervised child of ``services-sup``: a store error crashes it, and its supervisor
starts it again (with backoff), which subscribes again from a fresh dump. A subscription the
store ends (the watcher fell behind: ``overflow``) is simply opened again.
"""

from __future__ import annotations

import logging
from typing import Any

import pykka

from startos.actors.policies import WATCHER_BACKOFF
from startos.actors.services.service import service_name
from startos.errors import StartOSError
from startos.protocol.actions import DependencyChanged
from startos.protocol.service_jobs import DependencyWatchEnded, PackageDataChanged
from startos.protocol.store import DbDump, DbSubscribe, DbUnsubscribe
from startos.protocol.supervision import ChildSpec
from startos.supervision import Actor, ActorNotFound, Directory, handles

__all__ = ["DependencyWatchError", "DependencyWatcherActor", "watcher_spec"]

logger = logging.getLogger(__name__)


# Parts of a package's entry whose change can change whether it satisfies a dependent.
_RELEVANT = ("stateInfo", "statusInfo/started", "statusInfo/health", "statusInfo/error", "statusInfo/desired")
_MAX_QUEUE = 100_000


class DependencyWatchError(StartOSError):
    """Raised (crashing the watcher, which its supervisor restarts) when the store ended its stream."""


class DependencyWatcherActor(Actor):
    """Follows ``packageData`` and tells dependents when a package they need changed."""

    def __init__(self, directory: Directory) -> None:
        super().__init__()
        self.directory = directory
        self._needs: dict[str, set[str]] = {}  # package id -> the ids it depends on
        self._subscription: Any = None

    def __str__(self) -> str:
        return "DependencyWatcherActor"

    def on_start(self) -> None:
        self._subscribe()

    def on_stop(self) -> None:
        self._unsubscribe()

    def on_exit(self, reason: Any) -> None:
        self._unsubscribe()  # also after a crash: the store drops the stream now, not at overflow

    def _subscribe(self) -> None:
        sub = self.directory.ask("store", DbSubscribe(pointer="/public/packageData", max_queue=_MAX_QUEUE))
        self._subscription = sub
        self._needs = _needs((sub.dump.value if sub.dump is not None else None) or {})
        self.spawn(self._read, sub)

    def _unsubscribe(self) -> None:
        sub, self._subscription = self._subscription, None
        if sub is None:
            return
        try:
            self.directory.tell("store", DbUnsubscribe(subscription_id=sub.id))
        except ActorNotFound:  # the store is stopping: the stream ends with it
            pass

    def _read(self, sub: Any) -> None:
        """The reader greenlet: each revision becomes a message to this actor, in order."""
        me = self.actor_ref
        try:
            while True:
                revision = sub.get()
                if revision is None:
                    me.tell(DependencyWatchEnded(reason=str(sub.closed or "closed")))
                    return
                me.tell(PackageDataChanged(patch=revision.patch))
        except pykka.ActorDeadError:
            return  # the actor stopped; its group kills this greenlet anyway

    # -- handlers -------------------------------------------------------------------------------

    @handles(PackageDataChanged)
    def changed(self, message: PackageDataChanged) -> None:
        """One revision of ``packageData``: tell the dependents of every package it touched."""
        changed: set[str] = set()
        reload = False
        for op in message.patch:
            parts = str(op.get("path", "")).split("/", 2)
            if len(parts) < 2 or not parts[1]:
                changed.update(self._needs)  # the whole map was replaced
                reload = True
                continue
            package_id = parts[1].replace("~1", "/").replace("~0", "~")
            rest = parts[2] if len(parts) > 2 else ""
            reload = reload or rest == "" or rest.startswith("currentDependencies")
            if rest == "" or rest.startswith(_RELEVANT):
                changed.add(package_id)
        if reload:  # once per revision, however many of its operations touched the map
            data = self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
            self._needs = _needs(data)
        for dependent, deps in self._needs.items():
            touched = deps & changed
            if touched:
                self._tell(dependent, DependencyChanged(package_id=min(touched)))

    @handles(DependencyWatchEnded)
    def ended(self, message: DependencyWatchEnded) -> None:
        """The store ended the stream: after an overflow, subscribe again; else crash (and restart)."""
        if self._subscription is None:
            return
        if message.reason != "overflow":
            raise DependencyWatchError(f"the store ended the dependency watch ({message.reason})")
        logger.warning("the dependency watcher fell behind the store; subscribing again")
        self._subscription = None
        self._subscribe()
        for dependent in self._needs:  # whatever changed meanwhile: every dependent re-checks
            deps = self._needs[dependent]
            if deps:
                self._tell(dependent, DependencyChanged(package_id=min(deps)))

    def _tell(self, dependent: str, message: DependencyChanged) -> None:
        ref = self.directory.get(service_name(dependent))
        if ref is None:
            return  # not running (restarting): it checks its dependencies when it starts
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            pass  # stopped between the lookup and the tell: the same


def _needs(data: dict[str, Any]) -> dict[str, set[str]]:
    return {package_id: set(entry.get("currentDependencies") or {}) for package_id, entry in data.items()}


def watcher_spec(directory: Directory) -> ChildSpec:
    """The watcher as a child of ``services-sup`` (restarted with backoff when it fails)."""
    return ChildSpec(
        id="dependency-watcher", start=lambda: DependencyWatcherActor.start(directory), backoff=WATCHER_BACKOFF
    )

"""What the services manager and its jobs share: where packages live and how services start.

:class:`ServicesContext` holds only what never changes while the ServicesActor lives (the
directory, the packages root, how services are sandboxed), never the actor's own state: a job
greenlet gets the context, not the actor, so it cannot change what the actor knows. Every store
write here is the ServicesActor's, made as owner ``services``, and touches only what
``startos.protocol.owners`` gives it: a package's entry as a whole, its ``stateInfo``, ``icon``,
``signer``, ``registry``, ``lastBackup``, and ``/private/packages``. What belongs to a package's
ServiceActor (``statusInfo``...) is changed by a message to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka
from jsonpointer import escape
from pykka import ActorRef

from startos.actors.patching import PatchError
from startos.actors.policies import SERVICE_BACKOFF
from startos.actors.services.service import ServiceActor, ServiceError, daemons_name, service_name
from startos.actors.store import NotOwnerError, StoreError
from startos.paths import check_id, safe_child
from startos.protocol.errors import ErrorKind
from startos.protocol.notifications import Notify
from startos.protocol.packages import RunHook, SetDesired
from startos.protocol.service_jobs import LifecycleChanged, LifecycleState
from startos.protocol.status import summarize
from startos.protocol.store import DbApply, DbDump
from startos.protocol.supervision import ChildSpec, DeleteChild, LookupChild, StartChild, TerminateChild
from startos.sandbox.base import Limits
from startos.supervision import (
    ActorNotFound,
    Backoff,
    Directory,
    Supervisor,
    SupervisorError,
    in_thread,
)

__all__ = ["OWNER", "PHASES", "ROLLBACK_ERRORS", "ServicesContext", "pointer", "progress"]

logger = logging.getLogger(__name__)

OWNER = "services"
"""The owner name of every store write of the services manager (``startos.protocol.owners``)."""

PHASES = ("verify", "unpack", "init")
DESIRED_WAIT = 10.0
"""Seconds a new desired state waits for the package's ServiceActor to be back (a restart)."""


def progress(done: set[str], current: str | None) -> dict[str, Any]:
    """``installingInfo.progress``: every phase, done (true), running (false) or to come (null)."""
    phases = [
        {"name": name, "progress": True if name in done else (None if name != current else False)} for name in PHASES
    ]
    return {"overall": {"done": len(done), "total": len(PHASES), "units": None}, "phases": phases}


def pointer(package_id: str) -> str:
    """``/public/packageData/<id>``, the id escaped (RFC 6901)."""
    return f"/public/packageData/{escape(package_id)}"


@dataclass(frozen=True)
class ServicesContext:
    """The services manager's fixed configuration, and the operations its jobs are made of."""

    directory: Directory
    root: Path  # <data>/packages
    boot: str
    sandbox_preference: str = "auto"
    daemon_backoff: Backoff | None = None
    listen_host: str = "127.0.0.1"

    # -- paths ---------------------------------------------------------------------------------

    def package_dir(self, package_id: str) -> Path:
        """``<packages root>/<id>``, through the path gate: every package path starts here."""
        return safe_child(self.root, package_id, kind="package id")

    # -- the state tree ------------------------------------------------------------------------

    def patch(self, ops: list[dict[str, Any]], *, missing_ok: bool = False) -> None:
        """Apply ``ops`` as the services manager; ``missing_ok``: a path already gone is no error.

        A refusal for ownership is never ``missing_ok``: it is a bug in this module.
        """
        try:
            self.directory.ask("store", DbApply(patch=ops, owner=OWNER))
        except NotOwnerError:
            raise
        except PatchError:
            if not missing_ok:
                raise

    def package_data(self) -> dict[str, Any]:
        """``/public/packageData`` as it is now."""
        return self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}

    def entry(self, package_id: str) -> dict[str, Any] | None:
        """One package's entry, or ``None``."""
        value = self.package_data().get(package_id)
        return value if isinstance(value, dict) else None

    def private(self, package_id: str) -> dict[str, Any] | None:
        """``/private/packages/<id>``: what is installed (version, signer, volumes, limits)."""
        packages = self.directory.ask("store", DbDump(pointer="/private")).value.get("packages") or {}
        value = packages.get(package_id)
        return value if isinstance(value, dict) else None

    def private_put(self, package_id: str, value: dict[str, Any]) -> None:
        self.patch([{"op": "add", "path": f"/private/packages/{escape(package_id)}", "value": value}])

    def private_remove(self, package_id: str) -> None:
        self.patch([{"op": "remove", "path": f"/private/packages/{escape(package_id)}"}], missing_ok=True)

    def require_installed(self, package_id: str) -> None:
        """Refuse an id that is not a package id, or names no installed package."""
        check_id(package_id, "package id")  # ids from requests also name tree pointers and paths
        if self.private(package_id) is None:
            raise ServiceError(f"{package_id} is not installed", kind=ErrorKind.NOT_FOUND)

    def desired(self, package_id: str) -> str:
        """What the package's ServiceActor was last asked to do (``stopped`` when unknown)."""
        entry = self.entry(package_id) or {}
        return str((entry.get("statusInfo") or {}).get("desired", "stopped"))

    # -- lifecycle -----------------------------------------------------------------------------

    def set_lifecycle(
        self, package_id: str, state: LifecycleState, ops: list[dict[str, Any]], *, missing_ok: bool = False
    ) -> None:
        """Apply ``ops`` (the manager's part: ``stateInfo``...) and have ``statusInfo.summary`` follow."""
        self.patch(ops, missing_ok=missing_ok)
        self.lifecycle_changed(package_id, state)

    def lifecycle_changed(self, package_id: str, state: LifecycleState) -> None:
        """Have ``statusInfo.summary`` follow a change of ``stateInfo.state``.

        The summary belongs to the package's ServiceActor: it is told ``LifecycleChanged`` and
        writes it. With no ServiceActor running (before its first start, after it stopped), the
        manager writes the whole entry, summary included, guarded by a ``test`` of what it read:
        if a ServiceActor wrote in between, it has written the summary itself.
        """
        if not self.tell_service(package_id, LifecycleChanged(state=state)):
            self.rewrite_summary(package_id)

    def rewrite_summary(self, package_id: str) -> None:
        """Write ``statusInfo.summary`` of a package no ServiceActor runs for (see :meth:`set_lifecycle`)."""
        entry = self.entry(package_id)
        if entry is None:
            return
        status = dict(entry.get("statusInfo") or {})
        summary = summarize(entry)
        if status.get("summary") == summary:
            return
        status["summary"] = summary
        base = pointer(package_id)
        try:
            self.patch(
                [
                    {"op": "test", "path": base, "value": entry},
                    {"op": "replace", "path": base, "value": {**entry, "statusInfo": status}},
                ]
            )
        except NotOwnerError:
            raise
        except PatchError:
            logger.debug("%s changed while its summary was rewritten; its ServiceActor wrote it", package_id)

    def tell_service(self, package_id: str, message: Any) -> bool:
        """Tell the package's ServiceActor; ``False`` when none is running to hear it."""
        ref = self.directory.get(service_name(package_id))
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def forward_desired(self, message: SetDesired) -> int:
        """Hand a new desired state to the package's ServiceActor (which owns ``statusInfo``).

        Replies with the revision that recorded it. A ServiceActor being restarted gets
        ``DESIRED_WAIT`` seconds to come back; if it does not, the request is refused (NOT_FOUND,
        "try again") and the recorded desired state stays as it was: only the ServiceActor writes
        it, and it acts on the recorded one when it starts.
        """
        try:
            return int(self.directory.ask(service_name(message.id), message, timeout=60, wait=DESIRED_WAIT))
        except ActorNotFound as exc:
            raise ServiceError(
                f"{message.id} is not loaded right now (restarting?); try again", kind=ErrorKind.NOT_FOUND
            ) from exc

    def notify(self, message: Notify) -> None:
        """Raise a notification; a NotificationActor being restarted misses it (logged)."""
        try:
            self.directory.tell("notifications", message)
        except ActorNotFound:
            logger.warning("notification lost (notifications restarting): %s", message.title)

    # -- hooks ---------------------------------------------------------------------------------

    def hook(self, package_id: str, hook: str, kind: str | None = None, other: str | None = None) -> None:
        """Run a hook in the service's runtime; ``migration-to`` migrates the installed code to ``other``."""
        if hook == "migration-to":
            message = RunHook(hook="migration-to", other_version=other)
        else:
            message = RunHook(hook=hook, kind=kind, other_version=other)  # type: ignore[arg-type]
        self.directory.ask(service_name(package_id), message, timeout=message.timeout + 30, wait=30)

    # -- service supervisors -------------------------------------------------------------------

    def start_supervisor(self, package_id: str, version: str | None = None) -> ActorRef[Any]:
        """Start the package's ``service-sup:<id>`` (its ServiceActor, then its daemons' supervisor)."""
        private = self.private(package_id)
        if version is None:
            if private is None:
                raise ServiceError(f"{package_id} is not installed", kind=ErrorKind.NOT_FOUND)
            version = str(private["version"])
        directory, package_dir, boot = self.directory, self.package_dir(package_id), self.boot
        preference, backoff, listen_host = self.sandbox_preference, self.daemon_backoff, self.listen_host
        volumes = tuple((private or {}).get("volumes") or ())
        raw_limits = (private or {}).get("limits") or {}
        limits = Limits(
            memory_bytes=raw_limits.get("memory"),
            cpu_cores=raw_limits.get("cpu"),
            max_processes=raw_limits.get("processes"),
        )
        start_version = version

        def start_service() -> ActorRef[Any]:
            return ServiceActor.start(
                directory,
                package_id,
                package_dir,
                start_version,
                boot=boot,
                sandbox_preference=preference,
                manifest_volumes=volumes,
                daemon_backoff=backoff,
                limits=limits,
                listen_host=listen_host,
            )

        def observer() -> ActorRef[Any] | None:
            return directory.get(service_name(package_id))

        children = [
            ChildSpec(id=service_name(package_id), start=start_service, backoff=SERVICE_BACKOFF, shutdown=60.0),
            ChildSpec(
                id=daemons_name(package_id),
                type="supervisor",
                shutdown=None,
                start=lambda: Supervisor.start(daemons_name(package_id), directory=directory, observer=observer),
            ),
        ]
        spec = ChildSpec(
            id=f"service-sup:{package_id}",
            type="supervisor",
            shutdown=None,
            restart="transient",
            start=lambda: Supervisor.start(
                f"service-sup:{package_id}", children, strategy="rest_for_one", directory=directory
            ),
        )
        ref: ActorRef[Any] = self.directory.ask("services-sup", StartChild(spec=spec), timeout=120)
        return ref

    def stop_supervisor(self, package_id: str) -> None:
        """Stop and forget the package's ``service-sup:<id>`` (nothing happens when there is none)."""
        child = f"service-sup:{package_id}"
        if self.directory.ask("services-sup", LookupChild(id=child)) is None:
            try:
                self.directory.ask("services-sup", DeleteChild(id=child))
            except SupervisorError:  # it simply does not exist
                pass
            return
        self.directory.ask("services-sup", TerminateChild(id=child), timeout=None)
        self.directory.ask("services-sup", DeleteChild(id=child))

    # -- blocking work -------------------------------------------------------------------------

    @staticmethod
    def pool(func: Any, *args: Any, **kwargs: Any) -> Any:
        """Blocking file and hashing work runs on gevent's thread pool, never on the hub."""
        return in_thread(func, *args, **kwargs)


ROLLBACK_ERRORS: tuple[type[BaseException], ...] = (
    ActorNotFound,
    pykka.ActorDeadError,
    pykka.Timeout,
    PatchError,
    StoreError,
    SupervisorError,  # ChildStartError included
    ServiceError,
    OSError,
)
"""What a rollback step can fail with and still let the next step try: an actor gone or slow, a
patch that no longer applies, the store's disk, a supervisor refusal, a package's failing hook,
the filesystem. Anything else is a bug and propagates."""

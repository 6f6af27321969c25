"""The services manager's long jobs: inspect, install (or update), remove, and recover at boot.

Each job runs on greenlets the ServicesActor owns (``GeventActor.spawn``: killed when it stops)
and holds a :class:`ServicesContext`, never the actor: it changes the disk, the state tree (as
owner ``services``) and other actors, and reports to the actor with the past-tense messages of
``startos.protocol.service_jobs``. Only the actor's handlers decide which job holds which id.

An install runs on two greenlets: :meth:`InstallJob.forward` does the steps (a cancel kills
it), :meth:`InstallJob.run` waits for it and then reports success, or rolls back and reports the
failure. A cancel therefore never cuts a rollback short.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import pykka
from gevent.greenlet import Greenlet

from startos.actors.services import dependents
from startos.actors.services import install as steps
from startos.actors.services.context import ROLLBACK_ERRORS, ServicesContext, pointer, progress
from startos.actors.services.service import ServiceError, service_name
from startos.paths import UnsafePathError, shown
from startos.protocol.errors import ErrorKind
from startos.protocol.notifications import Notify
from startos.protocol.packages import InstallPackage, InstallStarted, SetDesired
from startos.protocol.service_jobs import (
    InstallFailed,
    InstallFinished,
    InstallPhaseDone,
    InstallRefused,
    PackageInspected,
    PackageRecovered,
    RebuildFinished,
    UninstallFinished,
)

__all__ = [
    "InstallJob",
    "forget",
    "fresh_entry",
    "inspect",
    "publish_installed",
    "rebuild",
    "recover",
    "remove",
    "uninstall",
]

logger = logging.getLogger(__name__)

Reply = pykka.Future[Any] | None


def report(actor: pykka.ActorRef[Any], message: Any) -> None:
    """Tell the ServicesActor how a job went; nothing to do when it is already gone."""
    try:
        actor.tell(message)
    except pykka.ActorDeadError:
        logger.debug("the services manager stopped before hearing %s", type(message).__name__)


def answer(reply: Reply, value: Any = None, *, error: BaseException | None = None) -> None:
    """Answer the asker once (a ``tell`` has no reply; a second answer is dropped)."""
    if reply is None or _answered(reply):
        return
    if error is not None:
        reply.set_exception((type(error), error, error.__traceback__))
    else:
        reply.set(value)


def _answered(reply: pykka.Future[Any]) -> bool:
    ready = getattr(reply, "ready", None)
    return bool(ready()) if callable(ready) else False


# -- inspect ----------------------------------------------------------------------------------------


def inspect(ctx: ServicesContext, actor: pykka.ActorRef[Any], job: int, path: Path) -> None:
    """Read the file's header and manifest (signature checked) and report the package id."""
    try:
        inspected = ctx.pool(steps.inspect, path)
        ctx.package_dir(inspected.id)  # an unsafe id is refused here, before anything shows
    except Exception as exc:  # noqa: BLE001 (every failure of a client's file goes to the asker)
        report(actor, InstallRefused(job=job, error=exc))
        return
    report(actor, PackageInspected(job=job, inspected=inspected))


# -- install ----------------------------------------------------------------------------------------


class InstallJob:
    """One install or update of one package: its checks, phases, and rollback.

    The attributes are the job's own (written by its greenlets only, read by nobody else):
    what was installed before, the volume snapshot, and whether the install has shown yet.
    """

    def __init__(
        self,
        ctx: ServicesContext,
        actor: pykka.ActorRef[Any],
        job: int,
        request: InstallPackage,
        inspected: steps.Inspected,
        reply: Reply,
    ) -> None:
        self.ctx = ctx
        self.actor = actor
        self.job = job
        self.request = request
        self.inspected = inspected
        self.reply = reply
        self.id = inspected.id
        self.path = Path(request.path)
        self.current: dict[str, Any] | None = None
        self.kind = "install"
        self.snapshot: Path | None = None
        self.shown = False  # in the state tree: a failure from here on is rolled back
        self.completed = False
        self.failure: BaseException | None = None

    # -- the steps (a cancel kills this greenlet) ------------------------------------------------

    def forward(self) -> None:
        """Check, show the install, then verify, unpack and init it.

        A failure (a cancel's error, or the kill of a stopping manager) is kept for :meth:`run`,
        not raised: the hub would print it, with whatever client path its message quotes.
        """
        try:
            self._check()
            self._begin()
            self._steps()
        except BaseException as exc:  # noqa: BLE001 (kept for run(), which rolls back and reports it)
            self.failure = exc
            return
        self.completed = True

    def _check(self) -> None:
        ctx, inspected, package_id = self.ctx, self.inspected, self.id
        self.current = ctx.private(package_id)
        steps.check_signer(
            self.current.get("signer") if self.current else None, inspected, accept_new_key=self.request.accept_new_key
        )
        self.kind = steps.compare_versions(self.current.get("version") if self.current else None, inspected.version)
        installed = ctx.package_data()
        cycle = dependents.cycle_with(package_id, inspected.manifest_json, installed)
        if cycle is not None:
            raise ServiceError(
                f"{package_id} cannot be installed: its dependencies form a cycle ({' -> '.join(cycle)})",
                kind=ErrorKind.DEPENDENCY,
            )
        self._problems = dependents.install_problems(inspected.manifest_json, installed)

    def _begin(self) -> None:
        """Show the install (or update) with its phases; then the asker hears it started."""
        inspected, base = self.inspected, pointer(self.id)
        phases = progress(set(), "verify")
        if self.current is None:
            self.ctx.patch([{"op": "add", "path": base, "value": fresh_entry(inspected, phases)}])
            self.shown = True
        else:
            self.ctx.patch(
                [
                    {"op": "replace", "path": f"{base}/stateInfo/state", "value": "updating"},
                    {
                        "op": "add",
                        "path": f"{base}/stateInfo/installingInfo",
                        "value": {"progress": phases, "newVersion": inspected.version},
                    },
                ]
            )
            self.shown = True  # from here on, a failure is rolled back
            self.ctx.lifecycle_changed(self.id, "updating")
        alerts = inspected.manifest_json.get("alerts") or {}
        answer(
            self.reply,
            InstallStarted(
                id=self.id,
                version=inspected.version,
                title=str(inspected.manifest_json.get("title", self.id)),
                signer=inspected.signer_b64,
                update=self.kind != "install",
                alert=alerts.get("install") if self.kind == "install" else alerts.get("update"),
                dependency_problems=self._problems,
            ),
        )

    def _steps(self) -> None:
        ctx, inspected, package_id, path = self.ctx, self.inspected, self.id, self.path
        package_dir = ctx.package_dir(package_id)
        done: set[str] = set()
        ctx.pool(steps.verify, path)
        self._phase_done(done, "verify", "unpack")
        old_desired = ctx.desired(package_id) if self.current is not None else "stopped"
        if self.current is not None:
            ctx.hook(package_id, "stop")
            self.snapshot = ctx.pool(steps.snapshot_volumes, package_dir)
            ctx.hook(package_id, "uninit", "update", inspected.version)
            if self.kind == "downgrade":  # the newer code (the installed one) knows how to go back
                ctx.hook(package_id, "migration-to", None, inspected.version)
            ctx.stop_supervisor(package_id)
        ctx.pool(steps.unpack, path, package_dir, inspected.version)
        ctx.pool(steps.keep_archive, path, package_dir, move=self.request.remove_source)
        volumes = list(inspected.manifest_json.get("volumes") or [])
        ctx.pool(steps.create_volumes, package_dir, volumes)
        self._phase_done(done, "unpack", "init")
        limits = inspected.manifest_json.get("resourceLimits") or {}
        ctx.private_put(
            package_id,
            {"version": inspected.version, "signer": inspected.signer_b64, "volumes": volumes, "limits": limits},
        )
        ctx.start_supervisor(package_id, version=inspected.version)
        previous_version = self.current.get("version") if self.current else None
        if self.kind == "install":
            ctx.hook(package_id, "init", "install")
        else:
            if self.kind == "update":
                ctx.hook(package_id, "migration", None, previous_version)
            ctx.hook(package_id, "init", "update", previous_version)
        if old_desired == "running":
            ctx.forward_desired(SetDesired(id=package_id, desired="running"))
        done.add("init")
        ctx.pool(steps.drop_snapshot, self.snapshot)
        ctx.pool(steps.remove_other_versions, package_dir, inspected.version)
        report(self.actor, InstallPhaseDone(job=self.job, package_id=package_id, phase="init"))

    def _phase_done(self, done: set[str], phase: str, following: str) -> None:
        done.add(phase)
        self.ctx.patch(
            [
                {
                    "op": "replace",
                    "path": f"{pointer(self.id)}/stateInfo/installingInfo/progress",
                    "value": progress(done, following),
                }
            ]
        )
        report(self.actor, InstallPhaseDone(job=self.job, package_id=self.id, phase=phase))

    # -- the outcome (never killed by a cancel) ----------------------------------------------------

    def run(self, forward: Greenlet) -> None:
        """Wait for the steps; report success, or roll back and report the failure."""
        try:
            forward.join()
            if self.completed:
                # The handler publishes it as installed and frees the id, in one step: the next
                # install of this id is accepted as soon as this one shows as installed.
                report(self.actor, InstallFinished(job=self.job, inspected=self.inspected, kind=self.kind))
                return
            error = self.failure or ServiceError(f"the install of {self.id} was stopped", kind=ErrorKind.CANCELLED)
            if isinstance(error, gevent.GreenletExit):  # the manager is stopping
                error = ServiceError(f"the install of {self.id} was stopped", kind=ErrorKind.CANCELLED)
            if not self.shown:
                answer(self.reply, error=error)
                report(self.actor, InstallRefused(job=self.job, error=error))
                return
            answer(self.reply, error=error)  # when it failed before the asker heard it started
            reason = str(error) or type(error).__name__
            logger.error("install of %s failed: %s", self.id, reason)
            previous = self.current.get("version") if self.current else None
            try:
                self._roll_back()
            finally:  # whatever the rollback met, the id is freed
                failed = InstallFailed(job=self.job, package_id=self.id, reason=reason, previous_version=previous)
                report(self.actor, failed)
        finally:
            if self.request.remove_source:
                self.path.unlink(missing_ok=True)

    def _roll_back(self) -> None:
        """Leave what was there before: nothing (an install), or the old version with its data."""
        ctx, package_id, current = self.ctx, self.id, self.current
        package_dir = ctx.package_dir(package_id)
        base = pointer(package_id)
        try:
            ctx.stop_supervisor(package_id)
            if current is None:
                ctx.pool(steps.remove_package_dir, package_dir)
                ctx.patch([{"op": "remove", "path": base}], missing_ok=True)
                ctx.private_remove(package_id)
            else:
                ctx.pool(steps.restore_volumes, package_dir, self.snapshot)
                ctx.private_put(package_id, current)
                ctx.set_lifecycle(
                    package_id,
                    "installed",
                    [
                        {"op": "replace", "path": f"{base}/stateInfo/state", "value": "installed"},
                        {"op": "remove", "path": f"{base}/stateInfo/installingInfo"},
                    ],
                    missing_ok=True,
                )
                ctx.start_supervisor(package_id, version=str(current.get("version")))
        except ROLLBACK_ERRORS:
            logger.exception("rolling back the install of %s failed", package_id)


def fresh_entry(inspected: steps.Inspected, phases: dict[str, Any]) -> dict[str, Any]:
    """The ``packageData`` entry of a package being installed for the first time."""
    return {
        "stateInfo": {
            "state": "installing",
            "manifest": inspected.manifest_json,
            "installingInfo": {"progress": phases, "newVersion": inspected.version},
        },
        "statusInfo": {
            "desired": "stopped",
            "started": None,
            "error": None,
            "health": {},
            "daemons": {},
            "progress": {},
            "summary": "installing",
        },
        "icon": inspected.icon_data_url,
        "signer": inspected.signer_b64,
        "registry": None,
        "lastBackup": None,
        "currentDependencies": {},
        "actions": {},
        "tasks": {},
        "serviceInterfaces": {},
        "hosts": {},
        "outboundGateway": None,
    }


def publish_installed(ctx: ServicesContext, inspected: steps.Inspected, kind: str) -> None:
    """The last step of an install, made by the ServicesActor's handler: show it installed, notify."""
    package_id, base = inspected.id, pointer(inspected.id)
    title = inspected.manifest_json.get("title", package_id)
    ctx.set_lifecycle(
        package_id,
        "installed",
        [
            {
                "op": "replace",
                "path": f"{base}/stateInfo",
                "value": {"state": "installed", "manifest": inspected.manifest_json},
            },
            {"op": "replace", "path": f"{base}/icon", "value": inspected.icon_data_url},
            {"op": "replace", "path": f"{base}/signer", "value": inspected.signer_b64},
        ],
    )
    problems = dependents.install_problems(inspected.manifest_json, ctx.package_data())
    if problems:
        ctx.notify(
            Notify(
                level="warning",
                title=f"{title} needs other services",
                message=f"{package_id} will not start until: " + "; ".join(problems) + ".",
                package_id=package_id,
            ),
        )
    verb = {"install": "installed", "update": "updated", "downgrade": "downgraded"}.get(kind, "reinstalled")
    ctx.notify(
        Notify(
            level="success",
            title=f"{title} {verb}",
            message=f"{package_id} {inspected.version} is {verb}.",
            package_id=package_id,
        ),
    )


# -- remove -----------------------------------------------------------------------------------------


def remove(ctx: ServicesContext, package_id: str, on_marked: Callable[[], None] | None = None) -> None:
    """Stop the service, run its uninit hook, and delete its directory; :func:`forget` follows."""
    package_dir = ctx.package_dir(package_id)
    marked = [{"op": "replace", "path": f"{pointer(package_id)}/stateInfo/state", "value": "removing"}]
    ctx.set_lifecycle(package_id, "removing", marked)
    if on_marked is not None:
        on_marked()  # the client can follow the rest in the state tree
    if ctx.directory.get(service_name(package_id)) is not None:
        try:
            ctx.hook(package_id, "stop")
            ctx.hook(package_id, "uninit", "uninstall")
        except Exception as exc:  # noqa: BLE001 (a broken package must still be removable, whatever its hook did)
            logger.warning("uninit hook of %s failed; removing it anyway: %s", package_id, exc)
    ctx.stop_supervisor(package_id)
    ctx.pool(steps.remove_package_dir, package_dir)


def forget(ctx: ServicesContext, package_id: str) -> None:
    """The last step of a removal: the entry leaves the state tree, the record ``/private``."""
    ctx.patch([{"op": "remove", "path": pointer(package_id)}])
    ctx.private_remove(package_id)


def uninstall(ctx: ServicesContext, actor: pykka.ActorRef[Any], job: int, package_id: str, reply: Reply) -> None:
    """The uninstall job; answers ``reply`` once the removal began (the asker does not wait).

    The ServicesActor's handler of ``UninstallFinished`` makes the last step (:func:`forget`) and
    frees the id at once: whoever sees the package gone may install it again.
    """
    try:
        remove(ctx, package_id, on_marked=None if reply is None else lambda: answer(reply))
    except Exception as exc:  # noqa: BLE001 (handed to the asker; the removal stays half-done, shown as removing)
        report(actor, UninstallFinished(job=job, package_id=package_id, error=exc))
        return
    report(actor, UninstallFinished(job=job, package_id=package_id))


def rebuild(ctx: ServicesContext, actor: pykka.ActorRef[Any], job: int, package_id: str) -> None:
    """Tear the service's supervisor (sandbox, runtime, daemons) down and start it again."""
    try:
        ctx.stop_supervisor(package_id)
        ctx.start_supervisor(package_id)
    except Exception as exc:  # noqa: BLE001 (handed to the asker by the handler)
        report(actor, RebuildFinished(job=job, package_id=package_id, error=exc))
        return
    report(actor, RebuildFinished(job=job, package_id=package_id))


# -- recover at boot ----------------------------------------------------------------------------------


def recover(ctx: ServicesContext, actor: pykka.ActorRef[Any], job: int, data: dict[str, Any]) -> None:
    """At boot: start every installed service; finish or undo what a crash interrupted.

    ``data`` is ``packageData`` as the actor read it at start (it holds each id for this job).
    Each package is reported recovered as soon as it is, so it can be installed or removed.
    """
    for package_id, entry in data.items():
        try:
            recover_one(ctx, package_id, entry)
        except gevent.GreenletExit:
            raise
        except Exception:  # one broken package must not keep the others down (logged with its traceback)
            logger.exception("could not bring %s back at boot", shown(package_id))
        finally:
            report(actor, PackageRecovered(job=job, package_id=package_id))


def recover_one(ctx: ServicesContext, package_id: str, entry: dict[str, Any]) -> None:
    """Bring one package back, or clean up after the job a crash interrupted.

    The keys of ``packageData`` are outside data until checked: a key that is not a package id
    (an absolute path, ``..``, a NUL) or whose directory leads out of the packages root (a
    planted symbolic link) touches nothing on disk, and its entry leaves the tree.
    """
    try:
        package_dir = ctx.package_dir(package_id)
    except UnsafePathError as exc:
        logger.error("boot: dropped a packageData entry, nothing on disk touched: %s", exc)
        ctx.patch([{"op": "remove", "path": pointer(package_id)}], missing_ok=True)
        return
    state = (entry.get("stateInfo") or {}).get("state")
    private = ctx.private(package_id)
    if state == "installing" or private is None:
        ctx.pool(steps.remove_package_dir, package_dir)
        forget(ctx, package_id)
        return
    if state == "removing":
        remove(ctx, package_id)
        forget(ctx, package_id)
        return
    if state == "updating":
        snapshot = package_dir / "volumes.before-update"
        ctx.pool(steps.restore_volumes, package_dir, snapshot if snapshot.exists() else None)
        base = pointer(package_id)
        ctx.set_lifecycle(
            package_id,
            "installed",
            [
                {"op": "replace", "path": f"{base}/stateInfo/state", "value": "installed"},
                {"op": "remove", "path": f"{base}/stateInfo/installingInfo"},
            ],
            missing_ok=True,
        )
    ctx.start_supervisor(package_id, version=private["version"])

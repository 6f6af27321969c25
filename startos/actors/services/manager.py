"""ServicesActor: installs, updates and removes services, and finds each one's actors.

Every installed service runs under its own ``ServiceSupervisor`` (rest_for_one: the
ServiceActor, then the ``daemons:<id>`` supervisor), a dynamic child of the ``services-sup``
supervisor. Long jobs (inspect, install, uninstall, recovery at boot) run on greenlets the actor
owns (``startos.actors.services.jobs``), at most one per package id, and publish their phases in
``packageData[id].stateInfo``; the actor stays responsive.

Actor discipline: which job holds which id (``_jobs``) is changed by handlers only, and the check
that an id is free and its registration happen with no yield in between. A job reports with a
past-tense message (``PackageInspected``, ``InstallFinished``...); the token it carries tells a
report from a job the actor has already forgotten.

Ownership: every store write is made as owner ``services`` and touches only the manager's part
of the tree (see ``startos.protocol.owners``); a new desired state and a lifecycle change go to
the package's ServiceActor as messages, since it owns ``statusInfo``.

A package that is half-installed when startd dies (killed mid-install) is cleaned up at the next
start: an install is removed, an update falls back to the version that was running, a removal is
finished. Nothing half-done survives.
"""

from __future__ import annotations

import base64
import itertools
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pykka
from gevent.greenlet import Greenlet

from startos.actors.services import dependents, jobs, offers
from startos.actors.services.context import OWNER, ROLLBACK_ERRORS, ServicesContext
from startos.actors.services.service import ServiceError, service_name
from startos.paths import check_id
from startos.protocol.errors import ErrorKind
from startos.protocol.notifications import Notify
from startos.protocol.packages import (
    Attach,
    CancelInstall,
    FollowLogs,
    GetLogs,
    GetStats,
    InstallPackage,
    ListPackages,
    PackageSummary,
    RebuildPackage,
    SetDesired,
    UninstallPackage,
)
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
from startos.protocol.status import summarize
from startos.protocol.store import DbApply, DbDump
from startos.supervision import Actor, Backoff, Directory, handles

__all__ = ["ServicesActor"]

logger = logging.getLogger(__name__)

STOP_GRACE = 10.0
"""Seconds a stopping manager gives its install jobs to roll back."""

JobKind = Literal["install", "uninstall", "rebuild", "recover"]

_BUSY = {
    "install": "being installed",
    "uninstall": "being removed",
    "rebuild": "being rebuilt",
    "recover": "being brought back after a restart",
}


@dataclass
class _Job:
    """The one job that holds a package id (handlers only create, change and drop these)."""

    token: int
    kind: JobKind
    work: Greenlet | None = None  # what a cancel kills (an install's steps)
    runner: Greenlet | None = None  # the greenlet that reports the outcome
    phase: str = "checking"
    reply: pykka.Future[Any] | None = None  # the asker of an uninstall or a rebuild, answered by a handler


@dataclass
class _Inspection:
    """An install whose file is being inspected: its package id is not known yet."""

    request: InstallPackage
    reply: pykka.Future[Any] | None
    greenlet: Greenlet | None = field(default=None)


class ServicesActor(Actor):
    """The services manager: install jobs, service supervisors, routing by package id."""

    def __init__(
        self,
        directory: Directory,
        data_dir: Path,
        *,
        sandbox_preference: str = "auto",
        daemon_backoff: Backoff | None = None,
        listen_host: str = "127.0.0.1",
    ) -> None:
        super().__init__()
        self.directory = directory
        self.ctx = ServicesContext(
            directory=directory,
            root=data_dir / "packages",
            boot=uuid.uuid4().hex[:12],
            sandbox_preference=sandbox_preference,
            daemon_backoff=daemon_backoff,
            listen_host=listen_host,
        )
        self._tokens = itertools.count(1)
        self._jobs: dict[str, _Job] = {}
        self._inspections: dict[int, _Inspection] = {}

    def __str__(self) -> str:
        return "ServicesActor"

    def on_start(self) -> None:
        self.ctx.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = self.directory.ask("store", DbDump(pointer="/private")).value
        if "packages" not in private:  # created once here, so concurrent installs never race to create it
            self.directory.ask(
                "store", DbApply(patch=[{"op": "add", "path": "/private/packages", "value": {}}], owner=OWNER)
            )
        # Every package found at boot is held by the recovery job until it is back: an install
        # or a removal of it waits for that (and is refused meanwhile, with a reason).
        data = self.ctx.package_data()
        token = next(self._tokens)
        runner = self.spawn(jobs.recover, self.ctx, self.actor_ref, token, data)
        for package_id in data:
            self._jobs[package_id] = _Job(token=token, kind="recover", runner=runner)

    def on_stop(self) -> None:
        """Cancel every install (each rolls back, within ``STOP_GRACE`` s) and every inspection."""
        for job in self._jobs.values():
            if job.work is not None:
                job.work.kill(block=False)
        inspections, self._inspections = self._inspections, {}
        for inspection in inspections.values():
            if inspection.greenlet is not None:
                inspection.greenlet.kill(block=False)
            self._refuse(inspection, ServiceError("the services manager stopped before the install began"))
        for job in list(self._jobs.values()):
            if job.kind == "install" and job.runner is not None:
                job.runner.join(timeout=STOP_GRACE)

    def _claim(self, package_id: str, kind: JobKind) -> _Job:
        """Hold ``package_id`` for a new job, or refuse if another job holds it.

        The check and the registration never yield in between: two requests for one id can
        never both pass.
        """
        held = self._jobs.get(package_id)
        if held is not None:
            raise ServiceError(
                f"{package_id} is busy: it is {_BUSY[held.kind]}; try again when that is done",
                kind=ErrorKind.INVALID_REQUEST,
            )
        job = self._jobs[package_id] = _Job(token=next(self._tokens), kind=kind)
        return job

    def _release(self, package_id: str, token: int) -> _Job | None:
        """Drop the job that holds ``package_id`` if it is the one with ``token``."""
        job = self._jobs.get(package_id)
        if job is None or job.token != token:
            return None
        del self._jobs[package_id]
        return job

    # -- install -------------------------------------------------------------------------------

    @handles(InstallPackage)
    def install(self, message: InstallPackage) -> None:
        """Inspect the file, then install it on a job; replies with ``InstallStarted`` once it shows."""
        token = next(self._tokens)
        inspection = self._inspections[token] = _Inspection(request=message, reply=self.defer_reply())
        inspection.greenlet = self.spawn(jobs.inspect, self.ctx, self.actor_ref, token, Path(message.path))

    @handles(PackageInspected)
    def inspected(self, message: PackageInspected) -> None:
        """The file names its package: hold the id for this install (or refuse), then run it."""
        inspection = self._inspections.pop(message.job, None)
        if inspection is None:
            return  # the manager is stopping: the asker already heard
        try:
            job = self._claim(message.inspected.id, "install")
        except ServiceError as exc:
            self._refuse(inspection, exc)
            return
        install = jobs.InstallJob(
            self.ctx, self.actor_ref, job.token, inspection.request, message.inspected, inspection.reply
        )
        job.work = self.spawn(install.forward)
        job.runner = self.spawn(install.run, job.work)

    @handles(InstallRefused)
    def refused(self, message: InstallRefused) -> None:
        """An install ended before it showed: the asker hears why (the file was not installed)."""
        inspection = self._inspections.pop(message.job, None)
        if inspection is not None:  # refused at inspection: the id was never held
            self._refuse(inspection, message.error)
            return
        for package_id, job in list(self._jobs.items()):
            if job.token == message.job:  # refused by its checks (the job answered the asker)
                self._release(package_id, job.token)

    def _refuse(self, inspection: _Inspection, error: BaseException) -> None:
        if inspection.request.remove_source:
            Path(inspection.request.path).unlink(missing_ok=True)
        jobs.answer(inspection.reply, error=error)

    @handles(InstallPhaseDone)
    def phase_done(self, message: InstallPhaseDone) -> None:
        """Remember how far an install got (a cancel after its last phase is refused)."""
        job = self._jobs.get(message.package_id)
        if job is not None and job.token == message.job:
            job.phase = message.phase

    @handles(InstallFinished)
    def install_finished(self, message: InstallFinished) -> None:
        """Publish the package as installed and free its id, in one step.

        Done here rather than in the job so no other request for the id is handled between the
        two: whoever sees it installed may install (or remove) it again at once.
        """
        package_id = message.inspected.id
        if self._jobs.get(package_id) is None or self._jobs[package_id].token != message.job:
            return
        try:
            jobs.publish_installed(self.ctx, message.inspected, message.kind)
        except ROLLBACK_ERRORS:
            # It stays shown as installing (updating): the next boot finishes or undoes it.
            logger.exception("could not publish %s as installed", package_id)
        finally:
            self._release(package_id, message.job)

    @handles(InstallFailed)
    def install_failed(self, message: InstallFailed) -> None:
        """An install was rolled back: free the id and say what was kept."""
        if self._release(message.package_id, message.job) is None:
            return
        kept = (
            "Nothing was installed."
            if message.previous_version is None
            else f"Version {message.previous_version} was kept, with its data."
        )
        self.ctx.notify(
            Notify(
                level="error",
                title=f"Install of {message.package_id} failed",
                message=f"{message.reason}. {kept}",
                package_id=message.package_id,
            ),
        )

    @handles(CancelInstall)
    def cancel(self, message: CancelInstall) -> None:
        """Stop an install or update job; it rolls back as if it had failed."""
        check_id(message.id, "package id")  # refused in one line, whatever the id holds
        job = self._jobs.get(message.id)
        if job is None or job.kind != "install":
            raise ServiceError(f"nothing is being installed for {message.id}", kind=ErrorKind.NOT_FOUND)
        if job.work is None or job.work.dead or job.phase == "init":
            raise ServiceError(
                f"the install of {message.id} is already finishing or rolling back; it cannot be cancelled now",
                kind=ErrorKind.INVALID_REQUEST,
            )
        # The job rolls back on its own greenlet; the client follows it in the state tree.
        job.work.kill(ServiceError(f"the install of {message.id} was cancelled", kind=ErrorKind.CANCELLED), block=False)

    # -- uninstall -----------------------------------------------------------------------------

    @handles(UninstallPackage)
    def uninstall(self, message: UninstallPackage) -> None:
        """Remove a service and its volumes (on a job; replies when done, or once begun)."""
        self.ctx.require_installed(message.id)
        needed_by = dependents.dependents_of(message.id, self.ctx.package_data())
        if needed_by and not message.force:
            raise ServiceError(
                f"{message.id} is required by {', '.join(needed_by)}; they stop working without it "
                "(uninstall anyway with force)",
                kind=ErrorKind.DEPENDENCY,
            )
        job = self._claim(message.id, "uninstall")
        job.reply = self.defer_reply()
        early = None if message.wait else job.reply  # answered once the removal shows
        job.runner = self.spawn(jobs.uninstall, self.ctx, self.actor_ref, job.token, message.id, early)

    @handles(UninstallFinished)
    def uninstall_finished(self, message: UninstallFinished) -> None:
        """A removal's job ended: remove the entry and free the id in one step, then answer.

        A failed removal stays shown as removing (the next boot finishes it).
        """
        job = self._release(message.package_id, message.job)
        if job is None:
            return
        error = message.error
        if error is None:
            try:
                jobs.forget(self.ctx, message.package_id)
            except ROLLBACK_ERRORS as exc:
                error = exc
        if error is not None:
            logger.error("removing %s failed: %s", message.package_id, error)
        jobs.answer(job.reply, error=error)

    @handles(PackageRecovered)
    def recovered(self, message: PackageRecovered) -> None:
        """The boot job is done with one package: it may be installed or removed again."""
        self._release(message.package_id, message.job)

    # -- lifecycle -----------------------------------------------------------------------------

    @handles(SetDesired)
    def set_desired(self, message: SetDesired) -> None:
        """Check the request, then hand it to the package's ServiceActor (the owner of ``statusInfo``).

        Replies with the revision that recorded it. When the package has no ServiceActor right
        now (it is being restarted after a crash), the request waits a little for it and is then
        refused: see ``ServicesContext.forward_desired``.
        """
        self.ctx.require_installed(message.id)
        if message.desired != "stopped":
            self._check_startable(message.id)
        self.answer_later(self.ctx.forward_desired, message)

    @handles(RebuildPackage)
    def rebuild(self, message: RebuildPackage) -> None:
        """Tear the service's sandbox down and build it again (on a job); its desired state is kept."""
        self.ctx.require_installed(message.id)
        job = self._claim(message.id, "rebuild")
        job.reply = self.defer_reply()
        job.runner = self.spawn(jobs.rebuild, self.ctx, self.actor_ref, job.token, message.id)

    @handles(RebuildFinished)
    def rebuild_finished(self, message: RebuildFinished) -> None:
        """A rebuild ended: free the id, then answer."""
        job = self._release(message.package_id, message.job)
        if job is not None:
            jobs.answer(job.reply, error=message.error)

    @handles(ListPackages)
    def list_packages(self, _message: ListPackages) -> list[PackageSummary]:
        """Installed packages with their one status word, ``statusInfo.summary``."""
        data = self.ctx.package_data()
        out = []
        for package_id, entry in sorted(data.items()):
            summary = (entry.get("statusInfo") or {}).get("summary")
            manifest = entry["stateInfo"].get("manifest") or {}
            out.append(
                PackageSummary(
                    id=package_id,
                    version=str(manifest.get("version", "")),
                    title=str(manifest.get("title", package_id)),
                    state=entry["stateInfo"]["state"],
                    status=str(summary) if summary else summarize(entry),
                )
            )
        return out

    @handles(GetLogs, FollowLogs, GetStats, Attach)
    def route(self, message: GetLogs | FollowLogs | GetStats | Attach) -> Any:
        """Ask the service's own actor."""
        self.ctx.require_installed(message.id)
        ref = self.directory.get(service_name(message.id))
        if ref is None:
            raise ServiceError(
                f"{message.id} is not loaded right now (restarting?); try again", kind=ErrorKind.NOT_FOUND
            )
        return ref.ask(message, timeout=30)

    def _check_startable(self, package_id: str) -> None:
        """Refuse to start a service with a required task open or a required dependency missing.

        A dependency that is installed but stopped or unhealthy is no reason to refuse: the
        service waits for it (``statusInfo.blocked`` says so) and starts once it is healthy.
        """
        data = self.ctx.package_data()
        entry = data.get(package_id) or {}
        reason = offers.critical_task(entry)
        if reason is not None:
            raise ServiceError(f"{package_id} cannot start: a required task is open: {reason}", kind=ErrorKind.ACTION)
        for dep_id, req in (entry.get("currentDependencies") or {}).items():
            if req.get("optional"):
                continue
            why = offers.dependency_state(dep_id, {**req, "kind": "exists"}, data.get(dep_id))
            if why is not None:
                raise ServiceError(f"{package_id} cannot start: {why}", kind=ErrorKind.DEPENDENCY)


def signer_fingerprint(signer_b64: str) -> str:
    from startos.s9pk.signing import fingerprint

    return fingerprint(base64.b64decode(signer_b64))

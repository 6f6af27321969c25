"""ServicesActor: installs, updates and removes services, and finds each one's actors.

Every installed service runs under its own ``ServiceSupervisor`` (rest_for_one: the
ServiceActor, then the ``daemons:<id>`` supervisor), a dynamic child of the ``services-sup``
supervisor. Long jobs (install, uninstall) run on greenlets of their own, one per package at a
time, and publish their phases in ``packageData[id].stateInfo``; the actor stays responsive.

A package that is half-installed when startd dies (killed mid-install) is cleaned up at the next
start: an install is removed, an update falls back to the version that was running, a removal is
finished. Nothing half-done survives.
"""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path
from typing import Any

import gevent
from jsonpointer import escape
from pykka import ActorRef

from startos.actors.services import dependents, offers
from startos.actors.services import install as steps
from startos.actors.services.service import ServiceActor, ServiceError, daemons_name, service_name
from startos.paths import UnsafePathError, check_id, safe_child, shown
from startos.protocol.errors import ErrorKind
from startos.protocol.notifications import Notify
from startos.protocol.packages import (
    Attach,
    CancelInstall,
    FollowLogs,
    GetLogs,
    GetStats,
    InstallPackage,
    InstallStarted,
    ListPackages,
    PackageSummary,
    RebuildPackage,
    Reconcile,
    RunHook,
    SetDesired,
    UninstallPackage,
)
from startos.protocol.store import DbApply, DbDump
from startos.protocol.supervision import ChildSpec, DeleteChild, LookupChild, StartChild, TerminateChild
from startos.sandbox.base import Limits
from startos.supervision import Actor, Backoff, Directory, Supervisor, handles, in_thread

__all__ = ["ServicesActor"]

logger = logging.getLogger(__name__)

PHASES = ("verify", "unpack", "init")
SERVICE_BACKOFF = Backoff(
    base=1.0, factor=2.0, cap=30.0, jitter=0.2, reset_after=60.0, crash_loop_after=5, cooldown=300.0
)


def _progress(done: set[str], current: str | None) -> dict[str, Any]:
    phases = [
        {"name": name, "progress": True if name in done else (None if name != current else False)} for name in PHASES
    ]
    return {"overall": {"done": len(done), "total": len(PHASES), "units": None}, "phases": phases}


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
        self.listen_host = listen_host  # where the proxy serves interfaces (the web server's host)
        self.directory = directory
        self.root = data_dir / "packages"
        self.sandbox_preference = sandbox_preference
        self.daemon_backoff = daemon_backoff
        self.boot = uuid.uuid4().hex[:12]
        self._jobs: dict[str, gevent.Greenlet] = {}

    def __str__(self) -> str:
        return "ServicesActor"

    def on_start(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = self.directory.ask("store", DbDump(pointer="/private")).value
        if "packages" not in private:  # created once here, so concurrent installs never race to create it
            self._patch([{"op": "add", "path": "/private/packages", "value": {}}])
        self._jobs["(boot)"] = gevent.spawn(self._recover)
        self._jobs["(dependencies)"] = gevent.spawn(dependents.watch, self.directory)

    def on_stop(self) -> None:
        for job in list(self._jobs.values()):  # a killed job removes itself from the dict
            job.kill(block=True, timeout=10)

    # -- requests ------------------------------------------------------------------------------

    @handles(InstallPackage)
    def install(self, message: InstallPackage) -> None:
        """Inspect the file, then install it on a job greenlet; replies with ``InstallStarted``."""
        reply = self.defer_reply()

        def job() -> None:
            path = Path(message.path)
            try:
                inspected = self._pool(steps.inspect, path)
                package_id = inspected.id
                self._package_dir(package_id)  # refused here, before anything shows, if unsafe
                if package_id in self._jobs and not self._jobs[package_id].dead:
                    raise ServiceError(
                        f"{package_id} is already being installed or removed", kind=ErrorKind.INVALID_REQUEST
                    )
                current = self._private(package_id)
                steps.check_signer(
                    current.get("signer") if current else None, inspected, accept_new_key=message.accept_new_key
                )
                kind = steps.compare_versions(current.get("version") if current else None, inspected.version)
                installed = self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
                cycle = dependents.cycle_with(package_id, inspected.manifest_json, installed)
                if cycle is not None:
                    raise ServiceError(
                        f"{package_id} cannot be installed: its dependencies form a cycle ({' -> '.join(cycle)})",
                        kind=ErrorKind.DEPENDENCY,
                    )
                problems = dependents.install_problems(inspected.manifest_json, installed)
            except BaseException as exc:  # noqa: BLE001 (handed to the asker)
                if message.remove_source:
                    Path(message.path).unlink(missing_ok=True)
                if reply is not None:
                    reply.set_exception((type(exc), exc, exc.__traceback__))
                return
            self._jobs[package_id] = gevent.getcurrent()
            try:
                self._begin(inspected, current)  # visible before the client hears "started"
            except BaseException as exc:  # noqa: BLE001 (handed to the asker)
                del self._jobs[package_id]
                if message.remove_source:
                    Path(message.path).unlink(missing_ok=True)
                if reply is not None:
                    reply.set_exception((type(exc), exc, exc.__traceback__))
                return
            alerts = inspected.manifest_json.get("alerts") or {}
            started = InstallStarted(
                id=package_id,
                version=inspected.version,
                title=str(inspected.manifest_json.get("title", package_id)),
                signer=inspected.signer_b64,
                update=kind != "install",
                alert=alerts.get("install") if kind == "install" else alerts.get("update"),
                dependency_problems=problems,
            )
            if reply is not None:
                reply.set(started)
            self._run_install(path, inspected, kind, current, remove_source=message.remove_source)

        gevent.spawn(job)

    @handles(CancelInstall)
    def cancel(self, message: CancelInstall) -> None:
        """Stop an install or update job; it rolls back as if it had failed."""
        check_id(message.id, "package id")  # refused in one line, whatever the id holds
        job = self._jobs.get(message.id)
        if job is None or job.dead:
            raise ServiceError(f"nothing is being installed for {message.id}", kind=ErrorKind.NOT_FOUND)
        # The job rolls back on its own greenlet; the client follows it in the state tree.
        job.kill(ServiceError(f"the install of {message.id} was cancelled", kind=ErrorKind.CANCELLED), block=False)

    @handles(UninstallPackage)
    def uninstall(self, message: UninstallPackage) -> None:
        """Remove a service and its volumes (runs on a job greenlet; replies when done)."""
        self._require_installed(message.id)
        if message.id in self._jobs and not self._jobs[message.id].dead:
            raise ServiceError(f"{message.id} is busy installing or removing", kind=ErrorKind.INVALID_REQUEST)
        installed = self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
        needed_by = dependents.dependents_of(message.id, installed)
        if needed_by and not message.force:
            raise ServiceError(
                f"{message.id} is required by {', '.join(needed_by)}; they stop working without it "
                "(uninstall anyway with force)",
                kind=ErrorKind.DEPENDENCY,
            )
        reply = self.defer_reply()

        def answer() -> None:
            if reply is not None and not _answered(reply):
                reply.set(None)

        def job() -> None:
            try:
                self._remove(message.id, on_marked=None if message.wait else answer)
            except BaseException as exc:  # noqa: BLE001 (handed to the asker)
                if reply is not None and not _answered(reply):
                    reply.set_exception((type(exc), exc, exc.__traceback__))
                return
            answer()

        self._jobs[message.id] = gevent.spawn(job)

    @handles(SetDesired)
    def set_desired(self, message: SetDesired) -> int:
        """Record what a service should be doing and let it reconcile."""
        self._require_installed(message.id)
        if message.desired != "stopped":
            self._check_startable(message.id)
        revision = int(
            self.directory.ask(
                "store",
                DbApply(
                    patch=[
                        {
                            "op": "replace",
                            "path": f"/public/packageData/{message.id}/statusInfo/desired",
                            "value": message.desired,
                        }
                    ]
                ),
            )
        )
        ref = self.directory.get(service_name(message.id))
        if ref is not None:
            ref.tell(Reconcile())
        return revision

    @handles(RebuildPackage)
    def rebuild(self, message: RebuildPackage) -> None:
        """Tear the service's sandbox down and build it again; its desired state is kept."""
        self._require_installed(message.id)
        self._stop_supervisor(message.id)
        self._start_supervisor(message.id)

    @handles(ListPackages)
    def list_packages(self, _message: ListPackages) -> list[PackageSummary]:
        """Installed packages with a one-word status each."""
        data = self.directory.ask("store", DbDump(pointer="/public/packageData")).value
        out = []
        for package_id, entry in sorted(data.items()):
            state = entry["stateInfo"]["state"]
            status = entry["statusInfo"]
            running = status.get("started") is not None
            shown = "error" if status.get("error") else ("running" if running else status.get("desired", "stopped"))
            if status.get("desired") == "running" and not running and not status.get("error"):
                shown = "waiting" if status.get("blocked") else "starting"
            required = {d for d, r in (entry.get("currentDependencies") or {}).items() if not r.get("optional")}
            unmet = [d for d, s in (status.get("dependencies") or {}).items() if d in required and not s["satisfied"]]
            if shown == "running" and unmet:
                shown = "degraded"
            if not running and any(
                t.get("active") and (t.get("task") or {}).get("severity") == "critical"
                for t in (entry.get("tasks") or {}).values()
            ):
                shown = "task required"
            manifest = entry["stateInfo"].get("manifest") or {}
            out.append(
                PackageSummary(
                    id=package_id,
                    version=str(manifest.get("version", "")),
                    title=str(manifest.get("title", package_id)),
                    state=state,
                    status=shown,
                )
            )
        return out

    @handles(GetLogs, FollowLogs, GetStats, Attach)
    def route(self, message: GetLogs | FollowLogs | GetStats | Attach) -> Any:
        """Ask the service's own actor."""
        self._require_installed(message.id)
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
        data = self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
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

    # -- jobs ----------------------------------------------------------------------------------

    def _run_install(
        self, path: Path, inspected: steps.Inspected, kind: str, current: dict[str, Any] | None, *, remove_source: bool
    ) -> None:
        package_id = inspected.id
        package_dir = self._package_dir(package_id)
        base = f"/public/packageData/{package_id}"
        previous_version = current.get("version") if current else None
        done: set[str] = set()
        snapshot = None
        try:
            self._pool(steps.verify, path)
            done.add("verify")
            self._phase(base, done, "unpack")
            old_desired = self._desired(package_id) if current is not None else "stopped"
            if current is not None:
                old = service_name(package_id)
                self._hook(old, "stop")
                snapshot = self._pool(steps.snapshot_volumes, package_dir)
                self._hook(old, "uninit", "update", inspected.version)
                if kind == "downgrade":  # the newer code (the installed one) knows how to go back
                    self._hook(old, "migration-to", None, inspected.version)
                self._stop_supervisor(package_id)
            self._pool(steps.unpack, path, package_dir, inspected.version)
            self._pool(steps.keep_archive, path, package_dir, move=remove_source)
            volumes = list(inspected.manifest_json.get("volumes") or [])
            self._pool(steps.create_volumes, package_dir, volumes)
            done.add("unpack")
            self._phase(base, done, "init")
            limits = inspected.manifest_json.get("resourceLimits") or {}
            self._private_put(
                package_id,
                {"version": inspected.version, "signer": inspected.signer_b64, "volumes": volumes, "limits": limits},
            )
            self._start_supervisor(package_id, version=inspected.version)
            new = service_name(package_id)
            if kind == "install":
                self._hook(new, "init", "install")
            else:
                if kind == "update":
                    self._hook(new, "migration", None, previous_version)
                self._hook(new, "init", "update", previous_version)
            if old_desired == "running":
                self.set_desired(SetDesired(id=package_id, desired="running"))
            done.add("init")
            self._pool(steps.drop_snapshot, snapshot)
            self._pool(steps.remove_other_versions, package_dir, inspected.version)
            if self._jobs.get(package_id) is gevent.getcurrent():
                del self._jobs[package_id]  # done: the next install may begin as soon as this one shows
            self._patch(
                [
                    {
                        "op": "replace",
                        "path": f"{base}/stateInfo",
                        "value": {"state": "installed", "manifest": inspected.manifest_json},
                    },
                    {"op": "replace", "path": f"{base}/icon", "value": inspected.icon_data_url},
                    {"op": "replace", "path": f"{base}/signer", "value": inspected.signer_b64},
                ]
            )
            problems = dependents.install_problems(inspected.manifest_json, self._package_data())
            if problems:
                self.directory.tell(
                    "notifications",
                    Notify(
                        level="warning",
                        title=f"{inspected.manifest_json.get('title', package_id)} needs other services",
                        message=f"{package_id} will not start until: " + "; ".join(problems) + ".",
                        package_id=package_id,
                    ),
                )
            verb = {"install": "installed", "update": "updated", "downgrade": "downgraded"}.get(kind, "reinstalled")
            self.directory.tell(
                "notifications",
                Notify(
                    level="success",
                    title=f"{inspected.manifest_json.get('title', package_id)} {verb}",
                    message=f"{package_id} {inspected.version} is {verb}.",
                    package_id=package_id,
                ),
            )
        except BaseException as exc:
            self._install_failed(package_id, package_dir, current, previous_version, snapshot, exc)
            if not isinstance(exc, Exception | gevent.GreenletExit):
                raise
        finally:
            if remove_source:
                path.unlink(missing_ok=True)
            if self._jobs.get(package_id) is gevent.getcurrent():
                del self._jobs[package_id]

    def _begin(self, inspected: steps.Inspected, current: dict[str, Any] | None) -> None:
        """Show the install (or update) in the state tree with its phases."""
        base = f"/public/packageData/{inspected.id}"
        progress = _progress(set(), "verify")
        if current is None:
            self._patch([{"op": "add", "path": base, "value": self._fresh_entry(inspected, progress)}])
        else:
            self._patch(
                [
                    {"op": "replace", "path": f"{base}/stateInfo/state", "value": "updating"},
                    {
                        "op": "add",
                        "path": f"{base}/stateInfo/installingInfo",
                        "value": {"progress": progress, "newVersion": inspected.version},
                    },
                ]
            )

    def _install_failed(
        self,
        package_id: str,
        package_dir: Path,
        current: dict[str, Any] | None,
        previous_version: str | None,
        snapshot: Path | None,
        exc: BaseException,
    ) -> None:
        reason = str(exc) or type(exc).__name__
        logger.error("install of %s failed: %s", package_id, reason)
        base = f"/public/packageData/{package_id}"
        try:
            self._stop_supervisor(package_id)
            if current is None:
                self._pool(steps.remove_package_dir, package_dir)
                self._patch([{"op": "remove", "path": base}], missing_ok=True)
                self._private_remove(package_id)
            else:
                self._pool(steps.restore_volumes, package_dir, snapshot)
                self._private_put(package_id, current)
                self._patch(
                    [
                        {"op": "replace", "path": f"{base}/stateInfo/state", "value": "installed"},
                        {"op": "remove", "path": f"{base}/stateInfo/installingInfo"},
                    ],
                    missing_ok=True,
                )
                self._start_supervisor(package_id, version=previous_version)
        except Exception:
            logger.exception("rolling back the install of %s failed", package_id)
        self.directory.tell(
            "notifications",
            Notify(
                level="error",
                title=f"Install of {package_id} failed",
                message=f"{reason}. "
                + (
                    "Nothing was installed."
                    if current is None
                    else f"Version {previous_version} was kept, with its data."
                ),
                package_id=package_id,
            ),
        )

    def _remove(self, package_id: str, on_marked: Any = None) -> None:
        package_dir = self._package_dir(package_id)
        base = f"/public/packageData/{package_id}"
        self._patch([{"op": "replace", "path": f"{base}/stateInfo/state", "value": "removing"}])
        if on_marked is not None:
            on_marked()  # the client can follow the rest in the state tree
        if self.directory.get(service_name(package_id)) is not None:
            try:
                self._hook(service_name(package_id), "stop")
                self._hook(service_name(package_id), "uninit", "uninstall")
            except Exception as exc:  # noqa: BLE001 (a broken package must still be removable)
                logger.warning("uninit hook of %s failed; removing it anyway: %s", package_id, exc)
        self._stop_supervisor(package_id)
        self._pool(steps.remove_package_dir, package_dir)
        self._patch([{"op": "remove", "path": base}])
        self._private_remove(package_id)

    def _recover(self) -> None:
        """At boot: start every installed service; finish or undo what a crash interrupted.

        The keys of ``packageData`` are outside data until checked: a key that is not a package
        id (an absolute path, ``..``, a NUL) or whose directory leads out of the packages root (a
        planted symbolic link) touches nothing on disk, and its entry leaves the tree.
        """
        data = self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
        for package_id, entry in data.items():
            try:
                package_dir = self._package_dir(package_id)
            except UnsafePathError as exc:
                logger.error("boot: dropped a packageData entry, nothing on disk touched: %s", exc)
                self._patch([{"op": "remove", "path": f"/public/packageData/{escape(package_id)}"}], missing_ok=True)
                continue
            try:
                state = entry["stateInfo"]["state"]
                private = self._private(package_id)
                if state == "installing" or private is None:
                    self._pool(steps.remove_package_dir, package_dir)
                    self._patch([{"op": "remove", "path": f"/public/packageData/{package_id}"}])
                    self._private_remove(package_id)
                    continue
                if state == "removing":
                    self._remove(package_id)
                    continue
                if state == "updating":
                    snapshot = package_dir / "volumes.before-update"
                    self._pool(steps.restore_volumes, package_dir, snapshot if snapshot.exists() else None)
                    self._patch(
                        [
                            {
                                "op": "replace",
                                "path": f"/public/packageData/{package_id}/stateInfo/state",
                                "value": "installed",
                            },
                            {"op": "remove", "path": f"/public/packageData/{package_id}/stateInfo/installingInfo"},
                        ],
                        missing_ok=True,
                    )
                self._start_supervisor(package_id, version=private["version"])
            except Exception:
                logger.exception("could not bring %s back at boot", shown(package_id))
        self._jobs.pop("(boot)", None)

    def _hook(self, name: str, hook: str, kind: str | None = None, other: str | None = None) -> None:
        """Run a hook in the service's runtime; ``migration-to`` migrates the installed code to ``other``."""
        if hook == "migration-to":
            message = RunHook(hook="migration-to", other_version=other)
        else:
            message = RunHook(hook=hook, kind=kind, other_version=other)  # type: ignore[arg-type]
        self.directory.ask(name, message, timeout=message.timeout + 30, wait=30)

    def _desired(self, package_id: str) -> str:
        status = self.directory.ask("store", DbDump(pointer=f"/public/packageData/{package_id}/statusInfo")).value
        return str(status.get("desired", "stopped"))

    # -- service supervisors -------------------------------------------------------------------

    def _start_supervisor(self, package_id: str, version: str | None = None) -> ActorRef[Any]:
        if version is None:
            private = self._private(package_id)
            if private is None:
                raise ServiceError(f"{package_id} is not installed", kind=ErrorKind.NOT_FOUND)
            version = str(private["version"])
        directory, package_dir, boot = self.directory, self._package_dir(package_id), self.boot
        preference, backoff, listen_host = self.sandbox_preference, self.daemon_backoff, self.listen_host
        private = self._private(package_id) or {}
        volumes = tuple(private.get("volumes") or ())
        raw_limits = private.get("limits") or {}
        limits = Limits(
            memory_bytes=raw_limits.get("memory"),
            cpu_cores=raw_limits.get("cpu"),
            max_processes=raw_limits.get("processes"),
        )

        def start_service() -> ActorRef[Any]:
            return ServiceActor.start(
                directory,
                package_id,
                package_dir,
                version,
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

    def _stop_supervisor(self, package_id: str) -> None:
        child = f"service-sup:{package_id}"
        if self.directory.ask("services-sup", LookupChild(id=child)) is None:
            try:
                self.directory.ask("services-sup", DeleteChild(id=child))
            except Exception:  # noqa: BLE001 (it may simply not exist)
                pass
            return
        self.directory.ask("services-sup", TerminateChild(id=child), timeout=None)
        self.directory.ask("services-sup", DeleteChild(id=child))

    # -- state ---------------------------------------------------------------------------------

    def _fresh_entry(self, inspected: steps.Inspected, progress: dict[str, Any]) -> dict[str, Any]:
        return {
            "stateInfo": {
                "state": "installing",
                "manifest": inspected.manifest_json,
                "installingInfo": {"progress": progress, "newVersion": inspected.version},
            },
            "statusInfo": {
                "desired": "stopped",
                "started": None,
                "error": None,
                "health": {},
                "daemons": {},
                "progress": {},
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

    def _phase(self, base: str, done: set[str], current: str) -> None:
        self._patch(
            [{"op": "replace", "path": f"{base}/stateInfo/installingInfo/progress", "value": _progress(done, current)}]
        )

    def _package_dir(self, package_id: str) -> Path:
        """``<packages root>/<id>``, through the path gate: every package path starts here."""
        return safe_child(self.root, package_id, kind="package id")

    def _require_installed(self, package_id: str) -> None:
        check_id(package_id, "package id")  # ids from requests also name tree pointers and paths
        if self._private(package_id) is None:
            raise ServiceError(f"{package_id} is not installed", kind=ErrorKind.NOT_FOUND)

    def _package_data(self) -> dict[str, Any]:
        return self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}

    def _private(self, package_id: str) -> dict[str, Any] | None:
        packages = self.directory.ask("store", DbDump(pointer="/private")).value.get("packages") or {}
        value = packages.get(package_id)
        return value if isinstance(value, dict) else None

    def _private_put(self, package_id: str, value: dict[str, Any]) -> None:
        self._patch([{"op": "add", "path": f"/private/packages/{package_id}", "value": value}])

    def _private_remove(self, package_id: str) -> None:
        self._patch([{"op": "remove", "path": f"/private/packages/{package_id}"}], missing_ok=True)

    def _patch(self, ops: list[dict[str, Any]], *, missing_ok: bool = False) -> None:
        try:
            self.directory.ask("store", DbApply(patch=ops))
        except Exception:
            if not missing_ok:
                raise

    @staticmethod
    def _pool(func: Any, *args: Any, **kwargs: Any) -> Any:
        """Blocking file and hashing work runs on gevent's thread pool, never on the hub."""
        return in_thread(func, *args, **kwargs)


def _answered(reply: Any) -> bool:
    ready = getattr(reply, "ready", None)
    return bool(ready()) if callable(ready) else False


def signer_fingerprint(signer_b64: str) -> str:
    from startos.s9pk.signing import fingerprint

    return fingerprint(base64.b64decode(signer_b64))

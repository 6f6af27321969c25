"""ServiceActor: one installed service, reconciling what it should do with what it does.

It owns the service's sandbox, journal and runtime connection. Its desired state (stopped,
running, restarting) lives in the state tree, so it survives restarts of startd; whenever the
desired or the actual state changes, ``Reconcile`` compares them and acts:

* desired running, not running: run the oneshots and start the daemons, each once the daemons it
  ``requires`` are ready; the service counts as started when every daemon is ready;
* desired stopped, running: stop the daemons in reverse order;
* desired restarting: stop, then behave as running.

Daemons are DaemonActors, dynamic children of the service's ``daemons:<id>`` supervisor, which
restarts them with backoff and tells this actor every state change (``ChildStateChanged``): that
is how a crash-looping daemon becomes visible in ``statusInfo`` and raises a notification.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import psutil

from startos.actors.services.attach import start_attached
from startos.actors.services.daemon import DaemonActor, DaemonLaunch, describe_status
from startos.actors.services.install import version_dir
from startos.actors.services.journal import Journal
from startos.actors.services.offers import critical_task
from startos.actors.services.service_offers import OffersMixin
from startos.errors import StartOSError
from startos.paths import is_valid_id, shown
from startos.protocol import runtime as wire
from startos.protocol.notifications import Notify
from startos.protocol.packages import (
    Attach,
    DaemonReady,
    FollowLogs,
    GetLogs,
    GetStats,
    Reconcile,
    RunHook,
    ServiceEvent,
    Stats,
)
from startos.protocol.service_items import ClearTask, CreateTask
from startos.protocol.store import DbApply, DbDump
from startos.protocol.supervision import (
    ChildSpec,
    ChildStateChanged,
    DeleteChild,
    StartChild,
    TerminateChild,
)
from startos.runtime.host import RuntimeConnection, check_description, start_runtime
from startos.sandbox import choose_sandbox, close_now
from startos.sandbox.base import Limits, Sandbox, SandboxProcess, SandboxSpec
from startos.supervision import Actor, Backoff, Directory, handles

__all__ = ["ServiceActor", "ServiceError", "daemons_name", "service_name"]

logger = logging.getLogger(__name__)

DAEMON_BACKOFF = Backoff(
    base=0.5, factor=2.0, cap=30.0, jitter=0.2, reset_after=60.0, crash_loop_after=5, cooldown=300.0
)


class ServiceError(StartOSError):
    """Raised when a service operation fails; the message names the service."""


def service_name(package_id: str) -> str:
    return f"service:{package_id}"


def daemons_name(package_id: str) -> str:
    return f"daemons:{package_id}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ServiceActor(OffersMixin, Actor):
    """Reconciles one service's desired and actual state."""

    def __init__(
        self,
        directory: Directory,
        package_id: str,
        package_dir: Path,
        version: str,
        *,
        boot: str,
        sandbox_preference: str = "auto",
        manifest_volumes: tuple[str, ...] = (),
        daemon_backoff: Backoff | None = None,
        limits: Limits | None = None,
        listen_host: str = "127.0.0.1",
    ) -> None:
        super().__init__()
        self.listen_host = listen_host
        self._init_offers()
        self._blocked: str | None = None
        self.directory = directory
        self.id = package_id
        self.dir = package_dir
        self.version = version
        self.boot = boot
        self.sandbox_preference = sandbox_preference
        self.manifest_volumes = manifest_volumes
        self.daemon_backoff = daemon_backoff or DAEMON_BACKOFF
        self.limits = limits or Limits()
        self.sandbox: Sandbox | None = None
        self.runtime: RuntimeConnection | None = None
        self._runtime_process: SandboxProcess | None = None
        self._oneshots: dict[str, wire.OneshotSpec] = {}
        self._watch_runtime: gevent.Greenlet | None = None
        self._pids_pending = False
        self.journal: Journal | None = None
        self.pointer = f"/public/packageData/{package_id}"
        self._launches: dict[str, DaemonLaunch] = {}
        self._requires: dict[str, list[str]] = {}
        self._running: set[str] = set()
        self._ready: set[str] = set()
        self._generation = 0
        self._started_at: str | None = None
        self._reconciling = False

    def __str__(self) -> str:
        return f"ServiceActor[{self.id}]"

    # -- lifecycle -----------------------------------------------------------------------------

    def on_start(self) -> None:
        self.journal = Journal(self.dir / "logs.sqlite3", boot=self.boot)
        spec = SandboxSpec(
            package_id=self.id,
            code_dir=version_dir(self.dir, self.version),
            volumes_dir=self.dir / "volumes",
            volume_ids=self._volume_ids(),
            run_dir=self.dir / "run",
            tmp_dir=self.dir / "tmp",
            limits=self.limits,
        )
        self._sweep_orphans()
        self.sandbox = choose_sandbox(spec, self.sandbox_preference)
        self.sandbox.create()
        self.journal.append("startos", f"sandbox ready ({self.sandbox.kind}) for {self.id} {self.version}")
        self._start_runtime()
        # A new actor runs nothing yet, whatever the tree still says from before (a rebuild, a crash).
        status = f"{self.pointer}/statusInfo"
        self._patch(
            [
                {"op": "add", "path": f"{status}/started", "value": None},
                {"op": "add", "path": f"{status}/daemons", "value": {}},
                {"op": "add", "path": f"{status}/health", "value": {}},
                {"op": "add", "path": f"{status}/progress", "value": {}},
            ]
        )
        self._publish_offers()
        self.actor_ref.tell(Reconcile())

    def _volume_ids(self) -> tuple[str, ...]:
        """The volumes on disk that are volume ids; anything else there is never mounted."""
        volumes = self.dir / "volumes"
        if not volumes.exists():
            return ()
        names = sorted(p.name for p in volumes.iterdir())
        strangers = [name for name in names if not is_valid_id(name, "volume id")]
        if strangers:
            listed = ", ".join(map(shown, strangers))
            logger.warning("%s: not mounting %s in volumes/ (not volume ids)", self.id, listed)
        return tuple(name for name in names if name not in strangers)

    def _start_runtime(self) -> None:
        assert self.sandbox is not None and self.journal is not None
        out_r, out_w = os.pipe()
        try:
            process, conn = start_runtime(self.sandbox, self.id, on_effect=self._effect, stdout=out_w, stderr=out_w)
        finally:
            close_now(out_w)  # the runtime holds the only write end: its output ends with it
        from gevent.fileobject import FileObject

        self.journal.reader(FileObject(out_r, "rb", close=True), "runtime")
        self._runtime_process, self.runtime = process, conn
        conn.ping(timeout=30)
        me = self.actor_ref

        def watch() -> None:
            status = process.wait()
            try:
                me.tell(ServiceEvent(kind="runtime-exited", data=status))
            except Exception:  # noqa: BLE001 (the actor is already gone)
                pass

        self._watch_runtime = gevent.spawn(watch)

    def _effect(self, effect: Any) -> Any:
        """Effects from the package: progress notices, container address."""
        if isinstance(effect, wire.ReportProgress):
            data = {
                "daemon": effect.daemon or "main",
                "done": effect.done,
                "total": effect.total,
                "message": effect.message,
            }
            self.actor_ref.tell(ServiceEvent(kind="progress", data=data))
            return None
        if isinstance(effect, wire.GetContainerIp):
            address = getattr(self.sandbox, "address", lambda: None)() or "127.0.0.1"
            return wire.ContainerIp(ip=address)
        if isinstance(effect, CreateTask):
            return self._create_task(effect)
        if isinstance(effect, ClearTask):
            self._clear_task(effect)
            return wire.Done()
        raise ServiceError(f"{self.id} asked for an effect this server does not offer: {type(effect).__name__}")

    def on_stop(self) -> None:
        self._teardown()

    def on_exit(self, reason: Any) -> None:
        self._teardown()

    def _teardown(self) -> None:
        self._unexpose_interfaces()
        if self._watch_runtime is not None:
            self._watch_runtime.kill(block=False)
            self._watch_runtime = None
        conn, self.runtime = self.runtime, None
        if conn is not None:
            try:
                conn.shutdown(timeout=5)
            except Exception:  # noqa: BLE001 (a dead runtime cannot be shut down; destroy below kills it)
                pass
            conn.close()
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None:
            try:
                sandbox.destroy()
            except Exception:
                logger.exception("destroying the sandbox of %s failed", self.id)
        journal, self.journal = self.journal, None
        if journal is not None:
            journal.close()
        self._pidfile().unlink(missing_ok=True)

    # -- reconciling ---------------------------------------------------------------------------

    @handles(Reconcile)
    def reconcile(self, _message: Reconcile) -> None:
        """Compare desired and actual; start or stop daemons to close the gap."""
        # One read serves every question below: desired state, own tasks, dependencies' states.
        data = self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
        mine = data.get(self.id) or {}
        desired = (mine.get("statusInfo") or {}).get("desired", "stopped")
        if desired == "restarting":
            self._stop_daemons()
            self._patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/desired", "value": "running"}])
            desired = "running"
        blocker = self._dependency_blocker(data)  # published whatever the desired state
        critical = critical_task(mine)
        if critical is not None and self._running:
            # A required task: the service cannot safely run until it is done.
            assert self.journal is not None
            self.journal.append("startos", f"stopping {self.id}: a required task appeared: {critical}")
            self._stop_daemons()
            self._patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/desired", "value": "stopped"}])
            desired = "stopped"
        if desired == "running" and critical is not None:
            blocker = f"Task required: {critical}"
        self._set_blocked(blocker if desired == "running" and not self._running else None)
        if desired == "running" and not self._running and blocker is None:
            self._start_daemons()
        elif desired == "stopped" and self._running:
            self._stop_daemons()

    def _set_blocked(self, reason: str | None) -> None:
        if reason == self._blocked:
            return
        self._blocked = reason
        if reason is not None and self.journal is not None:
            self.journal.append("startos", f"not starting yet: {reason}")
        value = None if reason is None else {"reason": reason}
        self._patch([{"op": "add", "path": f"{self.pointer}/statusInfo/blocked", "value": value}])

    def _start_daemons(self) -> None:
        launches, checks = self._load_launches()
        self._generation += 1
        self._ready.clear()
        self._patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/error", "value": None}])
        self._start_checks(checks, daemons_name(self.id))
        for daemon_id in self._startable():
            self._start_daemon(daemon_id)
        if not launches and not self._oneshots:
            self._set_started()

    def _startable(self) -> list[str]:
        """Oneshots and daemons not yet started whose ``requires`` are all ready."""
        return [
            item
            for item in [*self._oneshots, *self._launches]
            if item not in self._running and all(r in self._ready for r in self._requires.get(item, []))
        ]

    def _start_daemon(self, daemon_id: str) -> None:
        if daemon_id in self._oneshots:
            self._start_oneshot(self._oneshots[daemon_id])
            return
        launch = self._launches[daemon_id]
        me, generation = self.actor_ref, self._generation
        sandbox, journal, package_id = self.sandbox, self.journal, self.id
        assert sandbox is not None and journal is not None
        spec = ChildSpec(
            id=daemon_id,
            start=lambda: DaemonActor.start(package_id, launch, sandbox, journal, me, generation),
            backoff=self.daemon_backoff,
            shutdown=launch.term_timeout + 10.0,
        )
        self._running.add(daemon_id)
        self.directory.ask(daemons_name(self.id), StartChild(spec=spec), timeout=60)
        self._record_pids()

    def _start_oneshot(self, oneshot: wire.OneshotSpec) -> None:
        """Run a oneshot to completion on a greenlet; exit 0 counts as ready for what requires it."""
        assert self.sandbox is not None and self.journal is not None
        sandbox, journal, generation, me = self.sandbox, self.journal, self._generation, self.actor_ref
        self._running.add(oneshot.id)
        journal.append("startos", f"oneshot {oneshot.id} started")

        def run() -> None:
            out_r, out_w = os.pipe()
            try:
                process = sandbox.spawn(
                    list(oneshot.argv),
                    env=dict(oneshot.env),
                    cwd=oneshot.cwd,
                    user=oneshot.user,
                    stdin=open(os.devnull, "rb"),  # noqa: SIM115
                    stdout=out_w,
                    stderr=out_w,
                    title=oneshot.id,
                )
            except Exception as exc:  # noqa: BLE001 (reported as the oneshot's failure)
                os.close(out_r)
                me.tell(ServiceEvent(kind="oneshot-done", data=(oneshot.id, generation, str(exc))))
                return
            finally:
                close_now(out_w)
            from gevent.fileobject import FileObject

            journal.reader(FileObject(out_r, "rb", close=True), f"{oneshot.id}/output")
            status = process.wait(timeout=oneshot.timeout)
            if status is None:
                process.signal_group(signal.SIGKILL)
                outcome: str | None = f"did not finish within {oneshot.timeout:g} s"
            else:
                outcome = None if status == 0 else describe_status(status)
            me.tell(ServiceEvent(kind="oneshot-done", data=(oneshot.id, generation, outcome)))

        gevent.spawn(run)

    def _stop_daemons(self) -> None:
        supervisor = daemons_name(self.id)
        self._stop_checks(supervisor)
        for oneshot in self._oneshots:
            self._running.discard(oneshot)
        for daemon_id in reversed(list(self._launches)):
            if daemon_id in self._running:
                self.directory.ask(supervisor, TerminateChild(id=daemon_id), timeout=None)
                self.directory.ask(supervisor, DeleteChild(id=daemon_id), timeout=30)
                self._running.discard(daemon_id)
        self._ready.clear()
        self._started_at = None
        self._patch(
            [
                {"op": "replace", "path": f"{self.pointer}/statusInfo/started", "value": None},
                {"op": "replace", "path": f"{self.pointer}/statusInfo/daemons", "value": {}},
                {"op": "replace", "path": f"{self.pointer}/statusInfo/progress", "value": {}},
                {"op": "replace", "path": f"{self.pointer}/statusInfo/health", "value": {}},
                {"op": "replace", "path": f"{self.pointer}/statusInfo/error", "value": None},
            ]
        )

    @handles(DaemonReady)
    def daemon_ready(self, message: DaemonReady) -> None:
        """A daemon's process is up: it is ready now, or once its ready check passes."""
        if message.generation != self._generation or message.daemon not in self._running:
            return
        self._spawned.add(message.daemon)
        self._record_pids()
        watching = {c.id for c in self._checks.values() if c.daemon == message.daemon}
        if watching:
            self._regate(restart_grace=watching)  # their grace periods start with the daemon
        if message.daemon not in self._checks:  # no ready check of its own: ready now
            self._item_became_ready(message.daemon)

    def _item_became_ready(self, item: str) -> None:
        """A daemon (its check passed), oneshot (exit 0) or health check is ready: start what waited."""
        if item in self._launches and item not in self._spawned:
            return  # a check result from before the daemon's restart
        if item in self._ready:
            return
        if item in self._launches and self.journal is not None:
            self.journal.append("startos", f"daemon {item} is ready")
        self._ready.add(item)
        for daemon_id in self._startable():
            self._start_daemon(daemon_id)
        if self._ready >= set(self._launches) | set(self._oneshots) and self._started_at is None:
            self._set_started()

    def _set_started(self) -> None:
        self._started_at = _now()
        self._patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/started", "value": self._started_at}])

    @handles(ChildStateChanged)
    def daemon_state(self, event: ChildStateChanged) -> None:
        """Mirror a daemon's supervision state into statusInfo; crash loops raise a notification."""
        if event.child not in self._running:
            return  # a daemon stopped on purpose: its entry was cleared with the others
        reason = event.reason[len("error: ") :] if event.reason and event.reason.startswith("error: ") else event.reason
        retry_at = None
        if event.retry_in is not None:
            retry_at = datetime.fromtimestamp(time.time() + event.retry_in, UTC).isoformat(timespec="seconds")
        entry = {
            "state": event.new,
            "reason": reason,
            "failures": event.failures,
            "retryIn": event.retry_in,
            "retryAt": retry_at,
        }
        ops: list[dict[str, Any]] = [
            {"op": "add", "path": f"{self.pointer}/statusInfo/daemons/{event.child}", "value": entry}
        ]
        if event.new == "starting":
            self._ready.discard(event.child)
            self._spawned.discard(event.child)
            if any(c.daemon == event.child for c in self._checks.values()):
                self._regate()
        if event.new == "crash-looping":
            message = (
                f"The daemon {event.child} of {self.id} keeps failing ({reason}). "
                f"It will be retried in {int(event.retry_in or 0)} s; see its logs."
            )
            ops.append({"op": "replace", "path": f"{self.pointer}/statusInfo/error", "value": {"message": message}})
            self.directory.tell(
                "notifications",
                Notify(level="error", title=f"{self.id} is crash-looping", message=message, package_id=self.id),
            )
        elif event.new == "running" and event.old == "starting" and event.failures == 0:
            ops.append({"op": "replace", "path": f"{self.pointer}/statusInfo/error", "value": None})
        self._patch(ops)  # one revision: a client never sees the state without its error
        if event.new == "running":
            self._record_pids()

    @handles(ServiceEvent)
    def service_event(self, event: ServiceEvent) -> None:
        """Progress reports, finished oneshots, and the runtime's exit."""
        if event.kind == "progress" and isinstance(event.data, dict):
            daemon = str(event.data.get("daemon", "main"))
            self._patch([{"op": "add", "path": f"{self.pointer}/statusInfo/progress/{daemon}", "value": event.data}])
        elif event.kind == "oneshot-done":
            oneshot_id, generation, failure = event.data
            if generation != self._generation or oneshot_id not in self._running:
                return
            if failure is None:
                self._item_became_ready(oneshot_id)
            else:
                message = f"oneshot {oneshot_id} of {self.id} failed: {failure}"
                if self.journal is not None:
                    self.journal.append("startos", message)
                self._patch(
                    [{"op": "replace", "path": f"{self.pointer}/statusInfo/error", "value": {"message": message}}]
                )
        elif event.kind == "runtime-exited":
            # Without its runtime the service cannot be trusted to behave: crash, and let the
            # supervisor rebuild it with backoff (never one try and then silence).
            raise ServiceError(f"the runtime of {self.id} {describe_status(int(event.data))}")

    @handles(RunHook)
    def run_hook(self, message: RunHook) -> None:
        """Run an init/uninit hook or a migration in the package's runtime.

        Hooks may take long: they run on their own greenlet, so the actor stays free to be
        stopped (cancelling an install stops the service, and with it the hook).
        """
        runtime = self.runtime
        assert runtime is not None
        if self.journal is not None:
            self.journal.append("startos", f"running {message.hook} {message.kind or ''}".rstrip())
        if message.hook == "stop":
            self._stop_daemons()
            return
        version = self.version

        def run() -> None:
            if message.hook == "init":
                runtime.run_init(message.kind, message.other_version, timeout=message.timeout)  # type: ignore[arg-type]
            elif message.hook == "uninit":
                runtime.run_uninit(message.kind, message.other_version, timeout=message.timeout)  # type: ignore[arg-type]
            elif message.hook == "migration":  # from the version that was installed to this one
                assert message.other_version is not None
                runtime.run_migration(message.other_version, version, timeout=message.timeout)
            elif message.hook == "migration-to":  # from this version to an older one (a downgrade)
                assert message.other_version is not None
                runtime.run_migration(version, message.other_version, timeout=message.timeout)
            else:
                raise ServiceError(f"unknown hook {message.hook!r}")

        self.answer_later(run)

    # -- logs and stats ------------------------------------------------------------------------

    @handles(GetLogs)
    def logs(self, message: GetLogs) -> list[Any]:
        """A page of the journal."""
        assert self.journal is not None
        return self.journal.read(limit=message.limit, cursor=message.cursor, before=message.before, boot=message.boot)

    @handles(FollowLogs)
    def follow(self, message: FollowLogs) -> Any:
        """A follower of the journal (and the last ``limit`` lines to show first)."""
        assert self.journal is not None
        recent = self.journal.read(limit=message.limit, boot=message.boot) if message.limit else []
        return recent, self.journal.follow()

    @handles(Attach)
    def attach(self, message: Attach) -> Any:
        """A shell or command in the sandbox, for ``package attach``."""
        assert self.sandbox is not None
        if self.journal is not None:
            shown = " ".join(message.command) if message.command else "a shell"
            self.journal.append("startos", f"attach: {shown}")
        return start_attached(self.sandbox, message.command, tty=message.tty, user=message.user)

    @handles(GetStats)
    def stats(self, _message: GetStats) -> Stats:
        """CPU, memory and processes of everything in the sandbox."""
        assert self.sandbox is not None
        raw = self.sandbox.stats()
        return Stats(
            cpu_percent=float(raw.get("cpu_percent", 0.0)),
            memory_bytes=int(raw.get("memory_bytes", 0)),
            processes=int(raw.get("processes", 0)),
            memory_limit_bytes=raw.get("memory_limit_bytes"),
        )

    # -- helpers -------------------------------------------------------------------------------

    def _daemons_supervisor(self) -> str:
        return daemons_name(self.id)

    def _load_launches(self) -> tuple[dict[str, DaemonLaunch], tuple[wire.HealthCheckDecl, ...]]:
        """Ask the package what to run (its main function) and turn it into launches and checks."""
        assert self.runtime is not None
        description = self.runtime.describe(main=True, timeout=60)
        check_description(description, self.manifest_volumes or description.volumes, self.id)
        launches: dict[str, DaemonLaunch] = {}
        requires: dict[str, list[str]] = {}
        for daemon in description.daemons:
            launches[daemon.id] = DaemonLaunch(
                daemon.id,
                list(daemon.argv),
                env=dict(daemon.env),
                cwd=daemon.cwd,
                user=daemon.user,
                term_timeout=daemon.stop_timeout,
                stop_signal=daemon.stop_signal,
            )
            requires[daemon.id] = list(daemon.requires)
        self._oneshots = {o.id: o for o in description.oneshots}
        for oneshot in description.oneshots:
            requires[oneshot.id] = list(oneshot.requires)
        self._launches, self._requires = launches, requires
        return launches, description.checks

    def _patch(self, ops: list[dict[str, Any]]) -> None:
        self.directory.ask("store", DbApply(patch=ops))

    def _pidfile(self) -> Path:
        return self.dir / "run" / "pids.json"

    def _record_pids(self) -> None:
        """Soon remember every process of the service (at most once a second: it scans /proc)."""
        if self._pids_pending:
            return
        self._pids_pending = True

        def later() -> None:
            self._pids_pending = False
            if self.sandbox is not None:
                # It reads /proc for every process on the machine: off the hub.
                gevent.get_hub().threadpool.apply(self._write_pids)

        gevent.spawn_later(1.0, later)

    def _write_pids(self) -> None:
        """Remember every process of the service, so a startd killed with -9 can sweep them."""
        pids = []
        members: set[int] = getattr(self.sandbox, "members", set)()
        for pid in members:
            try:
                pids.append([pid, psutil.Process(pid).create_time()])
            except psutil.Error:
                continue
        path = self._pidfile()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(pids))

    def _sweep_orphans(self) -> None:
        """Kill processes of this service left by a previous startd that died without stopping them."""
        path = self._pidfile()
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError):
            recorded = []
        killed = 0
        for pid, created in recorded:
            try:
                proc = psutil.Process(pid)
                if abs(proc.create_time() - created) > 0.01:
                    continue  # the pid now belongs to someone else
                os.killpg(os.getpgid(pid), signal.SIGKILL)
                killed += 1
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
        if killed and self.journal is not None:
            self.journal.append("startos", f"killed {killed} processes left over from a previous run")
        path.unlink(missing_ok=True)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status ``url`` answers with, or ``None`` when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def tcp_probe(host: str, port: int, timeout: float = 2.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

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

Its parts, each told or asked, never sharing state: the RuntimeActor (the sandboxed runtime's
connection, :mod:`.runtime_actor`), the health checks (:mod:`.checks`), the interfaces
(:mod:`.interfaces`), and its own part of the tree (:mod:`.entry`), which it alone writes, as
owner ``service:<id>``, with ``statusInfo.summary`` in every write. Its jobs (:mod:`.processes`,
:mod:`.tasks`) run on greenlets it owns and report back with past-tense messages. What concerns
another package (a task on its action) is a message to that package's ServiceActor.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from pykka import ActorDeadError, ActorRef, Timeout

from startos.actors.policies import DAEMON_BACKOFF
from startos.actors.services import offers, processes, tasks
from startos.actors.services.attach import start_attached
from startos.actors.services.checks import HealthChecks
from startos.actors.services.daemon import DaemonActor, DaemonLaunch, describe_status
from startos.actors.services.entry import OwnEntry
from startos.actors.services.interfaces import Interfaces
from startos.actors.services.journal import Journal
from startos.actors.services.runtime_actor import RuntimeActor
from startos.errors import StartOSError
from startos.protocol import runtime as wire
from startos.protocol import service_items as items
from startos.protocol.actions import (
    CheckReport,
    DependencyChanged,
    GetActionInput,
    RefreshHosts,
    RefreshTasks,
    RunActionRequest,
    SetAddressEnabled,
)
from startos.protocol.errors import ErrorKind
from startos.protocol.notifications import Notify
from startos.protocol.owners import service_owner
from startos.protocol.packages import (
    Attach,
    DaemonReady,
    DismissTask,
    Flush,
    FollowLogs,
    GetLogs,
    GetRuntimeConnection,
    GetStats,
    OneshotFinished,
    PidsDue,
    ProgressReported,
    Reconcile,
    RunHook,
    RuntimeExited,
    SetDesired,
    Stats,
    TaskRequested,
    TaskTargetChanged,
    TaskWithdrawn,
)
from startos.protocol.service_jobs import LifecycleChanged
from startos.protocol.store import DbDump
from startos.protocol.supervision import (
    ChildSpec,
    ChildStateChanged,
    DeleteChild,
    StartChild,
    TerminateChild,
)
from startos.runtime.host import RuntimeConnection
from startos.sandbox import choose_sandbox
from startos.sandbox.base import Limits, Sandbox
from startos.supervision import Actor, Backoff, Directory, handles, wait_started

__all__ = ["ServiceActor", "ServiceError", "daemons_name", "service_name"]

logger = logging.getLogger(__name__)

RUNTIME_START = 90.0
"""Seconds the RuntimeActor gets to start the runtime and hear its first ping."""
RUNTIME_STOP = 15.0
"""Seconds the RuntimeActor gets to shut the runtime down when the service stops."""


class ServiceError(StartOSError):
    """Raised when a service operation fails; the message names the service."""


def service_name(package_id: str) -> str:
    """The Directory name of a package's ServiceActor (also the owner of its part of the tree)."""
    return service_owner(package_id)


def daemons_name(package_id: str) -> str:
    return f"daemons:{package_id}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ServiceActor(Actor):
    """Reconciles one service's desired and actual state; the only writer of its part of the tree.

    Every write goes through :attr:`mine` (:class:`~startos.actors.services.entry.OwnEntry`) as
    owner ``service:<id>`` and carries ``statusInfo.summary`` as the write leaves the entry.
    """

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
        self.directory = directory
        self.id = package_id
        self.owner = service_owner(package_id)
        self.dir = package_dir
        self.version = version
        self.boot = boot
        self.sandbox_preference = sandbox_preference
        self.manifest_volumes = manifest_volumes
        self.daemon_backoff = daemon_backoff or DAEMON_BACKOFF
        self.limits = limits or Limits()
        self.sandbox: Sandbox | None = None
        self.runtime: RuntimeConnection | None = None
        self._runtime_actor: ActorRef[Any] | None = None
        self._pids_pending = False
        self.journal: Journal | None = None
        self.pointer = f"/public/packageData/{package_id}"
        self._launches: dict[str, DaemonLaunch] = {}
        self._oneshots: dict[str, wire.OneshotSpec] = {}
        self._requires: dict[str, list[str]] = {}
        self._running: set[str] = set()  # oneshots and daemons started in this run
        self._ready: set[str] = set()  # items whose dependents may start
        self._spawned: set[str] = set()  # daemons whose process is up (shared with the checks)
        self._generation = 0
        self._started_at: str | None = None
        self._blocked: str | None = None
        self._dependency_states: dict[str, str | None] = {}
        self._actions: dict[str, items.ActionDecl] = {}
        self.mine = OwnEntry(directory, package_id)  # this package's entry: read once, then written here
        self.checks = HealthChecks(package_id, directory, daemons_name(package_id), self._spawned)
        self.interfaces = Interfaces(package_id, directory, listen_host, self._log)

    def __str__(self) -> str:
        return f"ServiceActor[{self.id}]"

    # -- lifecycle -----------------------------------------------------------------------------

    def on_start(self) -> None:
        self.journal = Journal(self.dir / "logs.sqlite3", boot=self.boot)
        spec = processes.sandbox_spec(self.dir, self.id, self.version, self.limits)
        killed = processes.sweep_orphans(self._pidfile())
        if killed:
            self._log(f"killed {killed} processes left over from a previous run")
        self.sandbox = choose_sandbox(spec, self.sandbox_preference)
        self.sandbox.create()
        self.journal.append("startos", f"sandbox ready ({self.sandbox.kind}) for {self.id} {self.version}")
        self._start_runtime()
        # A new actor runs nothing yet, whatever the tree still says from before (a rebuild, a crash).
        self.mine.reload()
        status = f"{self.pointer}/statusInfo"
        self.mine.patch(
            [
                {"op": "add", "path": f"{status}/started", "value": None},
                {"op": "add", "path": f"{status}/daemons", "value": {}},
                {"op": "add", "path": f"{status}/health", "value": {}},
                {"op": "add", "path": f"{status}/progress", "value": {}},
            ]
        )
        self._publish_offers()
        self.actor_ref.tell(Reconcile())

    def _start_runtime(self) -> None:
        assert self.sandbox is not None and self.journal is not None
        self._runtime_actor = RuntimeActor.start(self.directory, self.id, self.sandbox, self.journal, self.actor_ref)
        wait_started(self._runtime_actor, timeout=RUNTIME_START)  # its failure (a ping timeout...) is ours
        connection = self._runtime_actor.ask(GetRuntimeConnection(), timeout=10)
        assert isinstance(connection, RuntimeConnection)
        self.runtime = connection

    def on_stop(self) -> None:
        self._teardown()

    def on_exit(self, reason: Any) -> None:
        self._teardown()

    def _teardown(self) -> None:
        self.interfaces.unexpose()
        runtime, self._runtime_actor, self.runtime = self._runtime_actor, None, None
        if runtime is not None:
            try:
                runtime.stop(timeout=RUNTIME_STOP)  # it shuts the runtime down
            except (ActorDeadError, Timeout):  # already gone, or stuck: destroying the sandbox kills it
                logger.debug("the runtime actor of %s was gone or stuck", self.id)
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

    def _log(self, text: str) -> None:
        if self.journal is not None:
            self.journal.append("startos", text)

    # -- commands ------------------------------------------------------------------------------

    @handles(SetDesired)
    def set_desired(self, message: SetDesired) -> int:
        """Record the desired state (asked by the ServicesActor); reconcile toward it. Replies
        with the revision that recorded it."""
        revision = self.mine.patch(
            [{"op": "add", "path": f"{self.pointer}/statusInfo/desired", "value": message.desired}]
        )
        self.actor_ref.tell(Reconcile())
        return revision

    @handles(LifecycleChanged)
    def lifecycle_changed(self, _message: LifecycleChanged) -> int:
        """The services manager changed ``stateInfo.state``: write the summary again."""
        self.mine.reload()
        return self.mine.patch([])

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
            self.mine.patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/desired", "value": "running"}])
            desired = "running"
        blocker = self._dependency_blocker(data)  # published whatever the desired state
        critical = offers.critical_task(mine)
        if critical is not None and self._running:
            # A required task: the service cannot safely run until it is done.
            self._log(f"stopping {self.id}: a required task appeared: {critical}")
            self._stop_daemons()
            self.mine.patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/desired", "value": "stopped"}])
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
        if reason is not None:
            self._log(f"not starting yet: {reason}")
        value = None if reason is None else {"reason": reason}
        self.mine.patch([{"op": "add", "path": f"{self.pointer}/statusInfo/blocked", "value": value}])

    def _start_daemons(self) -> None:
        launches, checks = self._load_launches()
        self._generation += 1
        self._ready.clear()
        self._spawned.clear()
        self.mine.patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/error", "value": None}])
        health = self.checks.start(checks, self.actor_ref, self.runtime, self._generation)
        # Every shown check appears at once, in one revision (their actors report changes later).
        self.mine.patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/health", "value": health}])
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
        """Run a oneshot to completion on a greenlet of this actor; exit 0 counts as ready."""
        assert self.sandbox is not None and self.journal is not None
        self._running.add(oneshot.id)
        self.journal.append("startos", f"oneshot {oneshot.id} started")
        self.spawn(processes.run_oneshot, self.actor_ref, self.sandbox, self.journal, oneshot, self._generation)

    def _stop_daemons(self) -> None:
        supervisor = daemons_name(self.id)
        self.checks.stop()
        self._spawned.clear()
        for oneshot in self._oneshots:
            self._running.discard(oneshot)
        for daemon_id in reversed(list(self._launches)):
            if daemon_id in self._running:
                self.directory.ask(supervisor, TerminateChild(id=daemon_id), timeout=None)
                self.directory.ask(supervisor, DeleteChild(id=daemon_id), timeout=30)
                self._running.discard(daemon_id)
        self._ready.clear()
        self._started_at = None
        self.mine.patch(
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
        watching = self.checks.watches(message.daemon)
        if watching:
            self.checks.regate(restart_grace=watching)  # their grace periods start with the daemon
        if message.daemon not in self.checks.decls:  # no ready check of its own: ready now
            self._item_became_ready(message.daemon)

    def _item_became_ready(self, item: str) -> None:
        """A daemon (its check passed), oneshot (exit 0) or health check is ready: start what waited."""
        if item in self._launches and item not in self._spawned:
            return  # a check result from before the daemon's restart
        if item in self._ready:
            return
        if item in self._launches:
            self._log(f"daemon {item} is ready")
        self._ready.add(item)
        for daemon_id in self._startable():
            self._start_daemon(daemon_id)
        if self._ready >= set(self._launches) | set(self._oneshots) and self._started_at is None:
            self._set_started()

    def _set_started(self) -> None:
        self._started_at = _now()
        self.mine.patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/started", "value": self._started_at}])

    @handles(ChildStateChanged)
    def daemon_state(self, event: ChildStateChanged) -> None:
        """Mirror a daemon's supervision state into statusInfo; crash loops raise a notification."""
        if event.child not in self._running:
            return  # a daemon stopped on purpose: its entry was cleared with the others
        entry = offers.daemon_entry(event.new, event.reason, event.failures, event.retry_in)
        reason = entry["reason"]
        ops: list[dict[str, Any]] = [
            {"op": "add", "path": f"{self.pointer}/statusInfo/daemons/{event.child}", "value": entry}
        ]
        if event.new == "starting":
            self._ready.discard(event.child)
            self._spawned.discard(event.child)
            if self.checks.watches(event.child):
                self.checks.regate()
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
        self.mine.patch(ops)  # one revision: a client never sees the state without its error
        if event.new == "running":
            self._record_pids()

    @handles(CheckReport)
    def check_report(self, report: CheckReport) -> None:
        """A check's new result: publish it, mark readiness, notify on success <-> failure."""
        if report.generation != self._generation or report.check not in self.checks.decls:
            return
        outcome = self.checks.report(report)
        if outcome.shown is not None:
            path = f"{self.pointer}/statusInfo/health/{report.check}"
            self.mine.patch([{"op": "add", "path": path, "value": outcome.shown}])
        if outcome.ready:
            self._item_became_ready(report.check)
        if outcome.regate:
            self.checks.regate()  # checks that wait on this one

    # -- what the service's parts report -------------------------------------------------------

    @handles(ProgressReported)
    def progress(self, report: ProgressReported) -> None:
        """A daemon's (or hook's) progress: publish it."""
        value = {"daemon": report.daemon, "done": report.done, "total": report.total, "message": report.message}
        self.mine.patch([{"op": "add", "path": f"{self.pointer}/statusInfo/progress/{report.daemon}", "value": value}])

    @handles(OneshotFinished)
    def oneshot_finished(self, event: OneshotFinished) -> None:
        """A oneshot ended: ready for what requires it, or the service is in error."""
        if event.generation != self._generation or event.oneshot not in self._running:
            return
        if event.failure is None:
            self._item_became_ready(event.oneshot)
            return
        message = f"oneshot {event.oneshot} of {self.id} failed: {event.failure}"
        self._log(message)
        self.mine.patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/error", "value": {"message": message}}])

    @handles(RuntimeExited)
    def runtime_exited(self, event: RuntimeExited) -> None:
        """Without its runtime the service cannot be trusted to behave: crash, and let the
        supervisor rebuild it with backoff (never one try and then silence)."""
        raise ServiceError(f"the runtime of {self.id} {describe_status(event.status)}")

    @handles(RunHook)
    def run_hook(self, message: RunHook) -> None:
        """Run an init/uninit hook or a migration in the package's runtime.

        Hooks may take long: they run on their own greenlet, so the actor stays free to be
        stopped (cancelling an install stops the service, and with it the hook).
        """
        runtime = self.runtime
        assert runtime is not None
        self._log(f"running {message.hook} {message.kind or ''}".rstrip())
        if message.hook == "stop":
            self._stop_daemons()
            return
        me, version = self.actor_ref, self.version

        def run() -> None:
            processes.run_hook(runtime, message, version)
            me.ask(Flush(), timeout=30)  # the tasks the hook created are in the tree when it answers

        self.answer_later(run)

    @handles(Flush)
    def flush(self, _message: Flush) -> None:
        """Nothing to do: every message told before this one has been handled."""

    # -- actions and tasks ---------------------------------------------------------------------

    def _publish_offers(self) -> None:
        """Describe the package without running main: actions and interfaces go to the tree."""
        assert self.runtime is not None
        try:
            description = self.runtime.describe(main=False, timeout=60)
        except StartOSError as exc:  # a broken package still gets its logs and uninstall
            self._log(f"could not read the package's actions and interfaces: {exc}")
            return
        self._actions = {a.id: a for a in description.actions}
        self.interfaces.decls = {i.id: i for i in description.interfaces}
        entry = self.mine.value
        hosts = self.interfaces.expose(entry.get("hosts") or {}, self._target_host())
        manifest = (entry.get("stateInfo") or {}).get("manifest") or {}
        actions = {a.id: offers.action_entry(a) for a in description.actions}
        interfaces = {i.id: offers.interface_entry(i) for i in description.interfaces}
        self.mine.patch(
            [
                {"op": "add", "path": f"{self.pointer}/actions", "value": actions},
                {"op": "add", "path": f"{self.pointer}/serviceInterfaces", "value": interfaces},
                {"op": "add", "path": f"{self.pointer}/hosts", "value": hosts},
                {
                    "op": "add",
                    "path": f"{self.pointer}/currentDependencies",
                    "value": offers.current_dependencies(manifest),
                },
            ],
        )
        # Tasks on this package's actions follow their current inputs; so do this package's
        # tasks on others' actions (each target re-evaluates, if it runs).
        self.actor_ref.tell(RefreshTasks(action_id=None))
        for target in offers.task_targets(entry, self.id):
            tasks.tell(self.directory, service_name(target), RefreshTasks(action_id=None))

    def _action_decl(self, action_id: str) -> items.ActionDecl:
        decl = self._actions.get(action_id)
        if decl is None:
            raise ServiceError(f"{self.id} has no action {action_id!r}", kind=ErrorKind.NOT_FOUND)
        return decl

    @handles(GetActionInput)
    def action_input(self, message: GetActionInput) -> None:
        """The action's form: spec, prefilled values, metadata (answered when the package replies)."""
        decl = self._action_decl(message.action_id)
        self.answer_later(tasks.action_form, self.runtime, decl)

    @handles(RunActionRequest)
    def run_action(self, message: RunActionRequest) -> None:
        """Check status and input against the declaration, then run the action in the runtime."""
        from startos.protocol.inputspec import decode_spec, validate_input

        decl = self._action_decl(message.action_id)
        refusal = offers.status_refusal(decl.id, offers.action_entry(decl), bool(self._running))
        if refusal is not None:
            raise ServiceError(refusal, kind=ErrorKind.ACTION)
        value = None
        if decl.input_spec is not None:
            value = validate_input(decode_spec(decl.input_spec), message.input or {})
        elif message.input:
            raise ServiceError(f"the action {decl.name!r} takes no input", kind=ErrorKind.INVALID_REQUEST)
        assert self.runtime is not None and self.journal is not None
        self.journal.append("startos", f"running action {decl.id}")
        self.answer_later(tasks.run_action, self.actor_ref, self.directory, self.runtime, self.journal, decl.id, value)

    @handles(RefreshTasks)
    def refresh_tasks(self, message: RefreshTasks) -> None:
        """Have every package holding tasks on this package's actions re-evaluate them (a job)."""
        self.spawn(tasks.tell_task_holders, self.directory, self.runtime, self.id, message.action_id)

    @handles(TaskRequested)
    def task_requested(self, message: TaskRequested) -> None:
        """The package created (or replaced) a task: record it, notify, stop for a critical one."""
        task = message.task
        entry = self.mine.value
        was_active = ((entry.get("tasks") or {}).get(task.replay_id) or {}).get("active")
        value = offers.task_entry(task, self.id, message.active)
        self.mine.patch([{"op": "add", "path": f"{self.pointer}/tasks/{task.replay_id}", "value": value}])
        if message.active and not was_active and task.severity in ("critical", "important"):
            self.directory.tell("notifications", tasks.task_notice(self.id, task))
        if task.severity == "critical" and message.active:
            self.actor_ref.tell(Reconcile())

    @handles(TaskWithdrawn)
    def task_withdrawn(self, message: TaskWithdrawn) -> None:
        """The package cleared its task (a missing one is no error)."""
        entry = self.mine.value
        if message.replay_id in (entry.get("tasks") or {}):
            self.mine.patch([{"op": "remove", "path": f"{self.pointer}/tasks/{message.replay_id}"}])
            self.actor_ref.tell(Reconcile())

    @handles(TaskTargetChanged)
    def task_target_changed(self, message: TaskTargetChanged) -> None:
        """An action this package's tasks point at ran, or its target started: update the tasks."""
        entry = self.mine.value
        ops = offers.retarget_tasks(
            self.pointer, entry.get("tasks") or {}, message.package_id, message.ran, message.inputs
        )
        if ops:
            self.mine.patch(ops)
            self.actor_ref.tell(Reconcile())

    @handles(DismissTask)
    def dismiss_task(self, message: DismissTask) -> int:
        """Dismiss a task (the user's ``clear-task``; a critical one only with ``force``); replies
        with the revision that removed it."""
        refusal = offers.dismiss_refusal(self.id, self.mine.value.get("tasks") or {}, message.replay_id, message.force)
        if refusal is not None:
            raise ServiceError(refusal[1], kind=refusal[0])
        from jsonpointer import escape

        revision = self.mine.patch([{"op": "remove", "path": f"{self.pointer}/tasks/{escape(message.replay_id)}"}])
        self.actor_ref.tell(Reconcile())
        return revision

    # -- interfaces and dependencies -----------------------------------------------------------

    def _target_host(self) -> str:
        return (getattr(self.sandbox, "address", lambda: None)() or "127.0.0.1") if self.sandbox else "127.0.0.1"

    @handles(RefreshHosts)
    def refresh_hosts(self, _message: RefreshHosts) -> None:
        """The hostname changed: the ``.local`` addresses and URLs change with it (ports stay)."""
        entry = self.mine.value
        self.interfaces.exposed = []
        hosts = self.interfaces.expose(entry.get("hosts") or {}, self._target_host())
        self.mine.patch([{"op": "add", "path": f"{self.pointer}/hosts", "value": hosts}])

    @handles(SetAddressEnabled)
    def set_address_enabled(self, message: SetAddressEnabled) -> int:
        """Turn one address of a binding on or off; replies with the revision that recorded it."""
        entry = self.mine.value
        ops = self.interfaces.set_address_enabled(self.pointer, entry.get("hosts") or {}, message)
        return self.mine.patch(ops)

    @handles(DependencyChanged)
    def dependency_changed(self, _message: DependencyChanged) -> None:
        """A package this one depends on changed: re-evaluate, maybe start (it may have waited)."""
        self.actor_ref.tell(Reconcile())

    def _dependency_blocker(self, data: dict[str, Any]) -> str | None:
        """Evaluate every dependency (``data``: all of packageData), publish their states, and say
        why starting must wait (or None)."""
        mine = data.get(self.id) or {}
        states, blocker = offers.dependency_states(mine.get("currentDependencies") or {}, data)
        if states != self._dependency_states or "dependencies" not in (mine.get("statusInfo") or {}):
            self._dependency_states = states
            value = {dep: {"satisfied": why is None, "message": why} for dep, why in states.items()}
            self.mine.patch([{"op": "add", "path": f"{self.pointer}/statusInfo/dependencies", "value": value}])
        return blocker

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
        self._log(f"attach: {' '.join(message.command) if message.command else 'a shell'}")
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

    # -- processes -----------------------------------------------------------------------------

    def _load_launches(self) -> tuple[dict[str, DaemonLaunch], tuple[wire.HealthCheckDecl, ...]]:
        """Ask the package what to run (its main function): launches and checks."""
        assert self.runtime is not None
        plan = processes.describe_main(self.runtime, self.manifest_volumes, self.id)
        self._launches, self._requires, self._oneshots = plan.launches, plan.requires, plan.oneshots
        return plan.launches, plan.checks

    def _pidfile(self) -> Path:
        return self.dir / "run" / "pids.json"

    def _record_pids(self) -> None:
        """Soon remember every process of the service (at most once a second: it scans /proc)."""
        if self._pids_pending:
            return
        self._pids_pending = True
        self.spawn_later(1.0, processes.tell_quietly, self.actor_ref, PidsDue())

    @handles(PidsDue)
    def pids_due(self, _message: PidsDue) -> None:
        """Remember every process of the service now, off the hub (it reads /proc)."""
        self._pids_pending = False
        if self.sandbox is not None:
            self.spawn(gevent.get_hub().threadpool.apply, processes.write_pids, (self.sandbox, self._pidfile()))

"""The ServiceActor's health checks, actions, tasks, dependencies and interfaces.

A mixin of :class:`~startos.actors.services.service.ServiceActor`, kept apart so each file stays
readable. Everything here runs on the ServiceActor's loop, except package calls (actions, input
functions), which run on greenlets so a long action never blocks a stop.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import gevent
import msgspec

from startos.actors.services import offers
from startos.actors.services.health import HealthCheckActor, check_child_id
from startos.errors import StartOSError
from startos.protocol import runtime as wire
from startos.protocol import service_items as items
from startos.protocol.actions import (
    CheckGate,
    CheckReport,
    DependencyChanged,
    GetActionInput,
    RefreshHosts,
    RefreshTasks,
    RunActionRequest,
)
from startos.protocol.errors import ErrorKind
from startos.protocol.notifications import Notify
from startos.protocol.packages import Reconcile
from startos.protocol.store import DbApply, DbDump
from startos.protocol.supervision import ChildSpec, DeleteChild, StartChild, TerminateChild
from startos.supervision import Backoff, handles

__all__ = ["CHECK_BACKOFF", "OffersMixin"]

logger = logging.getLogger(__name__)

CHECK_BACKOFF = Backoff(
    base=0.5, factor=2.0, cap=30.0, jitter=0.2, reset_after=60.0, crash_loop_after=20, cooldown=60.0
)


class OffersError(StartOSError):
    """An action, task or interface request that cannot be done; the message says why."""


class OffersMixin:
    """Health checks, actions, tasks, dependencies and interfaces of one service."""

    # Provided by ServiceActor:
    id: str
    directory: Any
    pointer: str
    runtime: Any
    sandbox: Any
    journal: Any
    actor_ref: Any
    _running: set[str]
    _ready: set[str]
    _generation: int
    listen_host: str

    if TYPE_CHECKING:  # given by ServiceActor and Actor (defining them here would shadow Actor's)

        def _patch(self, ops: list[dict[str, Any]]) -> None: ...
        def answer_later(self, func: Any, *args: Any) -> None: ...
        def _daemons_supervisor(self) -> str: ...
        def _item_became_ready(self, item: str) -> None: ...

    def _init_offers(self) -> None:
        self._actions: dict[str, items.ActionDecl] = {}
        self._interfaces: dict[str, items.InterfaceDecl] = {}
        self._checks: dict[str, wire.HealthCheckDecl] = {}
        self._check_results: dict[str, tuple[str, str | None]] = {}
        self._settled: dict[str, str] = {}  # each check's last success or failure
        self._spawned: set[str] = set()
        self._failing_notified: set[str] = set()
        self._exposed: list[str] = []
        self._dependency_states: dict[str, str | None] = {}

    # -- what the package offers (published at every start of the actor) -------------------------

    def _publish_offers(self) -> None:
        """Describe the package without running main: actions and interfaces go to the tree."""
        assert self.runtime is not None
        try:
            description = self.runtime.describe(main=False, timeout=60)
        except Exception as exc:  # noqa: BLE001 (a broken package still gets its logs and uninstall)
            self.journal.append("startos", f"could not read the package's actions and interfaces: {exc}")
            return
        self._actions = {a.id: a for a in description.actions}
        self._interfaces = {i.id: i for i in description.interfaces}
        entry = self.directory.ask("store", DbDump(pointer=self.pointer)).value or {}
        hosts = self._expose_interfaces(entry.get("hosts") or {})
        self._patch(
            [
                {
                    "op": "add",
                    "path": f"{self.pointer}/actions",
                    "value": {a.id: offers.action_entry(a) for a in description.actions},
                },
                {
                    "op": "add",
                    "path": f"{self.pointer}/serviceInterfaces",
                    "value": {i.id: offers.interface_entry(i) for i in description.interfaces},
                },
                {"op": "add", "path": f"{self.pointer}/hosts", "value": hosts},
                {
                    "op": "add",
                    "path": f"{self.pointer}/currentDependencies",
                    "value": offers.current_dependencies(((entry.get("stateInfo") or {}).get("manifest")) or {}),
                },
            ]
        )
        gevent.spawn(self._refresh_tasks_pointing_here, None)

    # -- interfaces ------------------------------------------------------------------------------

    def _expose_interfaces(self, old_hosts: dict[str, Any]) -> dict[str, Any]:
        from startos.net.certs import machine_addresses
        from startos.protocol.proxy import Expose

        proxy = self.directory.get("proxy")
        info = self.directory.ask("store", DbDump(pointer="/public/serverInfo")).value or {}
        hostname = info.get("hostname")
        target_host = (getattr(self.sandbox, "address", lambda: None)() or "127.0.0.1") if self.sandbox else "127.0.0.1"
        hosts: dict[str, Any] = {}
        for decl in self._interfaces.values():
            key = f"{self.id}/{decl.id}/{decl.port}"
            old = ((old_hosts.get(decl.id) or {}).get("bindings") or {}).get(str(decl.port)) or {}
            disabled = list(((old.get("addresses") or {}).get("disabled")) or [])
            wanted = int((old.get("net") or {}).get("assignedPort") or 0)
            port: int | None = None
            if proxy is not None:
                message = Expose(
                    key=key,
                    target_host=target_host,
                    target_port=decl.port,
                    tls=decl.ssl,
                    listen_port=wanted,
                    http=decl.scheme == "http",
                    hostnames=(f"{hostname}.local",) if hostname else (),
                )
                try:
                    port = self.directory.ask("proxy", message, timeout=30).port
                except StartOSError:
                    if wanted == 0:
                        raise
                    # The port it had is taken now: take another one (the address changes).
                    port = self.directory.ask("proxy", _replace(message, listen_port=0), timeout=30).port
                    self.journal.append("startos", f"interface {decl.id}: port {wanted} is taken, now on {port}")
                self._exposed.append(key)
                if disabled:
                    from startos.protocol.proxy import SetDisabled

                    self.directory.ask("proxy", SetDisabled(key=key, disabled=tuple(disabled)), timeout=30)
            ips = offers.listen_addresses(self.listen_host, machine_addresses()) if proxy is not None else []
            hosts[decl.id] = {
                "bindings": {
                    str(decl.port): {
                        "enabled": True,
                        "net": {"assignedPort": port, "ssl": decl.ssl},
                        "addresses": {
                            "available": offers.binding_addresses(decl, port, ips, hostname, disabled) if port else [],
                            "disabled": disabled,
                        },
                    }
                },
                "publicDomains": {},
                "privateDomains": [],
            }
        return hosts

    @handles(RefreshHosts)
    def refresh_hosts(self, _message: RefreshHosts) -> None:
        """The hostname changed: the ``.local`` addresses and URLs change with it (ports stay)."""
        entry = self.directory.ask("store", DbDump(pointer=self.pointer)).value or {}
        self._exposed = []
        hosts = self._expose_interfaces(entry.get("hosts") or {})
        self._patch([{"op": "add", "path": f"{self.pointer}/hosts", "value": hosts}])

    def _unexpose_interfaces(self) -> None:
        from startos.protocol.proxy import Unexpose

        keys, self._exposed = self._exposed, []
        for key in keys:
            try:
                self.directory.ask("proxy", Unexpose(key=key), timeout=10)
            except Exception:  # noqa: BLE001 (the proxy may be stopping too)
                logger.debug("could not unexpose %s", key)

    # -- health checks ---------------------------------------------------------------------------

    def _start_checks(self, decls: tuple[wire.HealthCheckDecl, ...], supervisor: str) -> None:
        """One HealthCheckActor per check; each waits until what it needs is up."""
        self._checks = {c.id: c for c in decls}
        self._check_results.clear()
        self._settled.clear()
        self._spawned.clear()
        me, runtime, generation = self.actor_ref, self.runtime, self._generation
        for decl in decls:
            waiting_for = self._check_waits_for(decl)

            def start(decl: wire.HealthCheckDecl = decl, waiting_for: str | None = waiting_for) -> Any:
                return HealthCheckActor.start(me, runtime, decl, generation, waiting_for=waiting_for)

            spec = ChildSpec(id=check_child_id(decl.id), start=start, backoff=CHECK_BACKOFF, shutdown=5.0)
            self.directory.ask(supervisor, StartChild(spec=spec), timeout=60)
            if not decl.enabled:
                first: tuple[str, str | None] = ("disabled", "This check is turned off")
            elif waiting_for is not None:
                first = ("waiting", f"Waiting for {waiting_for}")
            else:
                first = ("starting", None)
            self._check_results[decl.id] = first
        # Every shown check appears at once, in one revision (their actors report changes later).
        health = {
            d.id: {"name": d.name, "result": self._check_results[d.id][0], "message": self._check_results[d.id][1]}
            for d in decls
            if d.name is not None
        }
        self._patch([{"op": "replace", "path": f"{self.pointer}/statusInfo/health", "value": health}])

    def _stop_checks(self, supervisor: str) -> None:
        for check_id in list(self._checks):
            child = check_child_id(check_id)
            try:
                self.directory.ask(supervisor, TerminateChild(id=child), timeout=None)
                self.directory.ask(supervisor, DeleteChild(id=child), timeout=30)
            except Exception:  # noqa: BLE001 (already gone with its supervisor)
                logger.debug("check %s of %s was already gone", check_id, self.id)
        self._checks = {}
        self._check_results.clear()
        self._settled.clear()
        self._spawned.clear()

    def _check_waits_for(self, decl: wire.HealthCheckDecl) -> str | None:
        """What the check is waiting for (a name to show), or None when it may run."""
        if decl.daemon is not None and decl.daemon not in self._spawned:
            return f"daemon {decl.daemon} to start"
        for needed in decl.requires:
            if self._check_results.get(needed, ("",))[0] != "success":
                other = self._checks.get(needed)
                return other.name if other is not None and other.name else needed
        return None

    def _tell_check(self, check_id: str, gate: CheckGate) -> None:
        ref = self._check_ref(check_id)
        if ref is not None:
            try:
                ref.tell(gate)
            except Exception:  # noqa: BLE001 (restarting: it starts with the right gate next time)
                pass

    def _check_ref(self, check_id: str) -> Any:
        from startos.protocol.supervision import LookupChild

        try:
            return self.directory.ask(self._daemons_supervisor(), LookupChild(id=check_child_id(check_id)), timeout=10)
        except Exception:  # noqa: BLE001
            return None

    def _regate(self, restart_grace: set[str] | None = None) -> None:
        """Tell every check whether it may run now."""
        for decl in self._checks.values():
            waiting_for = self._check_waits_for(decl)
            fresh = restart_grace is not None and decl.id in restart_grace
            self._tell_check(decl.id, CheckGate(waiting_for=waiting_for, restart_grace=fresh))

    @handles(CheckReport)
    def check_report(self, report: CheckReport) -> None:
        """A check's new result: publish it, mark readiness, notify on success <-> failure."""
        if report.generation != self._generation or report.check not in self._checks:
            return
        decl = self._checks[report.check]
        previous, previous_message = self._check_results.get(report.check, ("", None))
        self._check_results[report.check] = (report.result, report.message)
        logger.debug("%s: check %s %s -> %s (%s)", self.id, report.check, previous, report.result, report.message)
        if decl.name is not None and (previous, previous_message) != (report.result, report.message):
            entry = {"name": decl.name, "result": report.result, "message": report.message}
            self._patch([{"op": "add", "path": f"{self.pointer}/statusInfo/health/{report.check}", "value": entry}])
            self._notify_transition(decl, self._settled.get(report.check, ""), report)
        if report.result in ("success", "failure"):
            self._settled[report.check] = report.result
        if report.result == "success":
            self._item_became_ready(report.check)
        if previous == "success" or report.result == "success":
            self._regate()  # checks that wait on this one

    def _notify_transition(self, decl: wire.HealthCheckDecl, settled: str, report: CheckReport) -> None:
        """One notification when the check falls from success to failure, one when it recovers.

        ``settled`` is its last success or failure: waiting, starting or loading in between (a
        check it needs failed for a moment, the daemon restarted) neither hides nor repeats a fall.
        """
        if report.result == "failure" and settled == "success" and decl.id not in self._failing_notified:
            self._failing_notified.add(decl.id)
            self.directory.tell(
                "notifications",
                Notify(
                    level="warning",
                    title=f"{self.id}: {decl.name} is failing",
                    message=f"The health check {decl.name} of {self.id} failed: {report.message}",
                    package_id=self.id,
                ),
            )
        elif report.result == "success" and decl.id in self._failing_notified:
            self._failing_notified.discard(decl.id)
            self.directory.tell(
                "notifications",
                Notify(
                    level="success",
                    title=f"{self.id}: {decl.name} recovered",
                    message=f"The health check {decl.name} of {self.id} passes again.",
                    package_id=self.id,
                ),
            )

    # -- actions ---------------------------------------------------------------------------------

    def _action_decl(self, action_id: str) -> items.ActionDecl:
        decl = self._actions.get(action_id)
        if decl is None:
            raise OffersError(f"{self.id} has no action {action_id!r}", kind=ErrorKind.NOT_FOUND)
        return decl

    @handles(GetActionInput)
    def action_input(self, message: GetActionInput) -> None:
        """The action's form: spec, prefilled values, metadata (answered when the package replies)."""
        decl = self._action_decl(message.action_id)
        runtime = self.runtime

        def get() -> dict[str, Any]:
            if decl.input_spec is None:
                return {"spec": None, "value": None, "action": offers.action_entry(decl)}
            answer = runtime.get_action_input(decl.id, timeout=60)
            return {"spec": answer.spec, "value": answer.value, "action": offers.action_entry(decl)}

        self.answer_later(get)

    @handles(RunActionRequest)
    def run_action(self, message: RunActionRequest) -> None:
        """Check status and input against the declaration, then run the action in the runtime."""
        from startos.protocol.inputspec import decode_spec, validate_input

        decl = self._action_decl(message.action_id)
        refusal = offers.status_refusal(decl.id, offers.action_entry(decl), bool(self._running))
        if refusal is not None:
            raise OffersError(refusal, kind=ErrorKind.ACTION)
        value = None
        if decl.input_spec is not None:
            value = validate_input(decode_spec(decl.input_spec), message.input or {})
        elif message.input:
            raise OffersError(f"the action {decl.name!r} takes no input", kind=ErrorKind.INVALID_REQUEST)
        runtime, journal = self.runtime, self.journal
        journal.append("startos", f"running action {decl.id}")

        def run() -> dict[str, Any] | None:
            outcome = runtime.run_action(decl.id, value, timeout=600)
            journal.append("startos", f"action {decl.id} finished")
            self._refresh_tasks_pointing_here(decl.id)
            if outcome.title is None and outcome.message is None and not outcome.values:
                return None
            return {
                "title": outcome.title,
                "message": outcome.message,
                "values": [msgspec.structs.asdict(value) for value in outcome.values],
            }

        self.answer_later(run)

    # -- tasks -----------------------------------------------------------------------------------

    def _create_task(self, task: items.CreateTask) -> items.TaskCreated:
        """The CreateTask effect (runs on the connection's greenlet, never on the actor's loop)."""
        target = task.package_id or self.id
        active = True
        if task.when is not None and task.input is not None:
            current = self._current_input(target, task.action_id)
            if current is not None:
                active = not _matches(current, task.input)
        entry = offers.task_entry(task, self.id, active)
        existing = self.directory.ask("store", DbDump(pointer=f"{self.pointer}/tasks")).value or {}
        self.directory.ask(
            "store", DbApply(patch=[{"op": "add", "path": f"{self.pointer}/tasks/{task.replay_id}", "value": entry}])
        )
        was_active = (existing.get(task.replay_id) or {}).get("active")
        if active and not was_active and task.severity in ("critical", "important"):
            word = offers.SEVERITY_WORDS[task.severity]
            where = "" if target == self.id else f" on {target}"
            self.directory.tell(
                "notifications",
                Notify(
                    level="warning",
                    title=f"{self.id}: {word.lower()} task",
                    message=(task.reason or f"Run the action {task.action_id}{where}."),
                    package_id=self.id,
                    data={"replayId": task.replay_id, "packageId": self.id, "link": f"#/services/{self.id}"},
                ),
            )
        if task.severity == "critical" and active:
            self.actor_ref.tell(Reconcile())
        return items.TaskCreated(active=active)

    def _clear_task(self, task: items.ClearTask) -> None:
        path = f"{self.pointer}/tasks/{task.replay_id}"
        tasks = self.directory.ask("store", DbDump(pointer=f"{self.pointer}/tasks")).value or {}
        if task.replay_id in tasks:
            self.directory.ask("store", DbApply(patch=[{"op": "remove", "path": path}]))
            self.actor_ref.tell(Reconcile())

    def _current_input(self, target: str, action_id: str) -> dict[str, Any] | None:
        """The target action's current values, or None when they cannot be known now."""
        try:
            if target == self.id:
                if self.runtime is None:
                    return None
                return self.runtime.get_action_input(action_id, timeout=60).value or {}
            from startos.actors.services.service import service_name

            ref = self.directory.get(service_name(target))
            if ref is None:
                return None
            answer = ref.ask(GetActionInput(action_id=action_id), timeout=70)
            return answer.get("value") or {}
        except Exception as exc:  # noqa: BLE001 (unknown now: the task stays as it was)
            logger.info("could not read the input of %s/%s: %s", target, action_id, exc)
            return None

    @handles(RefreshTasks)
    def refresh_tasks(self, message: RefreshTasks) -> None:
        """Re-evaluate tasks (of every package) that point at this package's action."""
        gevent.spawn(self._refresh_tasks_pointing_here, message.action_id)

    def _refresh_tasks_pointing_here(self, action_id: str | None) -> None:
        """After ``action_id`` ran (None: at start), clear or re-activate the tasks pointing at it."""
        try:
            data = self.directory.ask("store", DbDump(pointer="/public/packageData")).value or {}
        except Exception:  # noqa: BLE001 (stopping)
            return
        ops: list[dict[str, Any]] = []
        owners: set[str] = set()
        inputs: dict[str, dict[str, Any] | None] = {}
        for owner, entry in data.items():
            for replay_id, task_entry in (entry.get("tasks") or {}).items():
                task = task_entry.get("task") or {}
                if task.get("packageId") != self.id:
                    continue
                if action_id is not None and task.get("actionId") != action_id:
                    continue
                path = f"/public/packageData/{owner}/tasks/{replay_id}"
                when, prefill = task.get("when"), (task.get("input") or {}).get("value")
                if when is None or prefill is None:
                    if action_id is not None:  # it ran: done
                        ops.append({"op": "remove", "path": path})
                        owners.add(owner)
                    continue
                act = task["actionId"]
                if act not in inputs:
                    inputs[act] = self._current_input(self.id, act)
                current = inputs[act]
                if current is None:
                    continue
                active = not _matches(current, prefill)
                if not active and when.get("once"):
                    ops.append({"op": "remove", "path": path})
                    owners.add(owner)
                elif active != bool(task_entry.get("active")):
                    ops.append({"op": "replace", "path": f"{path}/active", "value": active})
                    owners.add(owner)
        if not ops:
            return
        try:
            self.directory.ask("store", DbApply(patch=ops))
        except Exception as exc:  # noqa: BLE001 (a task vanished meanwhile: next refresh fixes it)
            logger.info("refreshing tasks pointing at %s: %s", self.id, exc)
        from startos.actors.services.service import service_name

        for owner in owners:
            _tell(self.directory, service_name(owner), Reconcile())

    # -- dependencies ----------------------------------------------------------------------------

    @handles(DependencyChanged)
    def dependency_changed(self, _message: DependencyChanged) -> None:
        """A package this one depends on changed: re-evaluate, maybe start (it may have waited)."""
        self.actor_ref.tell(Reconcile())

    def _dependency_blocker(self, data: dict[str, Any]) -> str | None:
        """Evaluate every dependency (``data``: all of packageData), publish their states, and say
        why starting must wait (or None)."""
        mine = data.get(self.id) or {}
        requirements = mine.get("currentDependencies") or {}
        states: dict[str, str | None] = {}
        blocker = None
        for dep_id, requirement in requirements.items():
            why = offers.dependency_state(dep_id, requirement, data.get(dep_id))
            states[dep_id] = why
            if why is not None and not requirement.get("optional") and blocker is None:
                blocker = why
        if states != self._dependency_states or "dependencies" not in (mine.get("statusInfo") or {}):
            self._dependency_states = states
            value = {dep: {"satisfied": why is None, "message": why} for dep, why in states.items()}
            self._patch([{"op": "add", "path": f"{self.pointer}/statusInfo/dependencies", "value": value}])
        return blocker


def _matches(current: dict[str, Any], partial: dict[str, Any]) -> bool:
    from startos.protocol.inputspec import matches_partial

    return matches_partial(current, partial)


def _replace(message: Any, **changes: Any) -> Any:
    import msgspec

    return msgspec.structs.replace(message, **changes)


def _tell(directory: Any, name: str, message: Any) -> None:
    try:
        directory.tell(name, message)
    except Exception:  # noqa: BLE001 (not running: it reconciles when it starts)
        pass

"""The health checks of one service run: their actors, their results, and what each waits for.

A plain helper the ServiceActor holds and calls from its handlers only (never from a greenlet):
it starts one :class:`~startos.actors.services.health.HealthCheckActor` per declared check under
the service's ``daemons:<id>`` supervisor, gates each until what it needs is up, and turns each
:class:`~startos.protocol.actions.CheckReport` into what the ServiceActor writes and does next.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pykka import ActorDeadError, ActorRef

from startos.actors.policies import CHECK_BACKOFF
from startos.actors.services.health import HealthCheckActor, check_child_id
from startos.protocol import runtime as wire
from startos.protocol.actions import CheckGate, CheckReport
from startos.protocol.notifications import Notify
from startos.protocol.supervision import ChildSpec, DeleteChild, LookupChild, StartChild, TerminateChild
from startos.runtime.host import RuntimeConnection
from startos.supervision import ActorNotFound, Directory, SupervisorError

GONE = (ActorNotFound, ActorDeadError, SupervisorError)
"""What asking a supervisor about a child that is already gone (or stopping with it) raises."""

__all__ = ["GONE", "CheckOutcome", "HealthChecks"]

logger = logging.getLogger(__name__)

Result = tuple[str, str | None]


@dataclass(frozen=True)
class CheckOutcome:
    """What one report means for the ServiceActor."""

    shown: dict[str, Any] | None = None  # the new ``statusInfo.health[check]`` entry, if it changed
    ready: bool = False  # the check passed: what requires it may start
    regate: bool = False  # checks that wait on this one may change: regate them (after ``ready``)


@dataclass
class HealthChecks:
    """Health checks of one service; ``spawned`` (shared with the ServiceActor) are the daemons whose
    process is up."""

    package_id: str
    directory: Directory
    supervisor: str
    spawned: set[str]
    decls: dict[str, wire.HealthCheckDecl] = field(default_factory=dict)
    results: dict[str, Result] = field(default_factory=dict)
    settled: dict[str, str] = field(default_factory=dict)  # each check's last success or failure
    failing_notified: set[str] = field(default_factory=set)

    def watches(self, daemon: str) -> set[str]:
        """The checks that watch ``daemon``."""
        return {c.id for c in self.decls.values() if c.daemon == daemon}

    def start(
        self,
        decls: tuple[wire.HealthCheckDecl, ...],
        owner: ActorRef[Any],
        runtime: RuntimeConnection | None,
        generation: int,
    ) -> dict[str, Any]:
        """One HealthCheckActor per check; returns ``statusInfo.health`` as it starts (one revision)."""
        self.decls = {c.id: c for c in decls}
        self.results.clear()
        self.settled.clear()
        for decl in decls:
            waiting_for = self.waits_for(decl)

            def start(decl: wire.HealthCheckDecl = decl, waiting_for: str | None = waiting_for) -> Any:
                return HealthCheckActor.start(owner, runtime, decl, generation, waiting_for=waiting_for)

            spec = ChildSpec(id=check_child_id(decl.id), start=start, backoff=CHECK_BACKOFF, shutdown=5.0)
            self.directory.ask(self.supervisor, StartChild(spec=spec), timeout=60)
            if not decl.enabled:
                first: Result = ("disabled", "This check is turned off")
            elif waiting_for is not None:
                first = ("waiting", f"Waiting for {waiting_for}")
            else:
                first = ("starting", None)
            self.results[decl.id] = first
        return {
            d.id: {"name": d.name, "result": self.results[d.id][0], "message": self.results[d.id][1]}
            for d in decls
            if d.name is not None
        }

    def stop(self) -> None:
        """Stop every check's actor and forget the results."""
        for check_id in list(self.decls):
            child = check_child_id(check_id)
            try:
                self.directory.ask(self.supervisor, TerminateChild(id=child), timeout=None)
                self.directory.ask(self.supervisor, DeleteChild(id=child), timeout=30)
            except GONE:
                logger.debug("check %s of %s was already gone", check_id, self.package_id)
        self.decls = {}
        self.results.clear()
        self.settled.clear()

    def waits_for(self, decl: wire.HealthCheckDecl) -> str | None:
        """What the check is waiting for (a name to show), or None when it may run."""
        if decl.daemon is not None and decl.daemon not in self.spawned:
            return f"daemon {decl.daemon} to start"
        for needed in decl.requires:
            if self.results.get(needed, ("", None))[0] != "success":
                other = self.decls.get(needed)
                return other.name if other is not None and other.name else needed
        return None

    def regate(self, restart_grace: set[str] | None = None) -> None:
        """Tell every check whether it may run now (``restart_grace``: their grace periods restart)."""
        for decl in self.decls.values():
            fresh = restart_grace is not None and decl.id in restart_grace
            self._tell(decl.id, CheckGate(waiting_for=self.waits_for(decl), restart_grace=fresh))

    def report(self, report: CheckReport) -> CheckOutcome:
        """A check's new result: what to show, and notifications on success <-> failure."""
        decl = self.decls[report.check]
        previous = self.results.get(report.check, ("", None))
        self.results[report.check] = (report.result, report.message)
        logger.debug(
            "%s: check %s %s -> %s (%s)", self.package_id, report.check, previous, report.result, report.message
        )
        shown = None
        if decl.name is not None and previous != (report.result, report.message):
            shown = {"name": decl.name, "result": report.result, "message": report.message}
            self._notify_transition(decl, self.settled.get(report.check, ""), report)
        if report.result in ("success", "failure"):
            self.settled[report.check] = report.result
        regate = previous[0] == "success" or report.result == "success"
        return CheckOutcome(shown=shown, ready=report.result == "success", regate=regate)

    def _tell(self, check_id: str, gate: CheckGate) -> None:
        try:
            ref = self.directory.ask(self.supervisor, LookupChild(id=check_child_id(check_id)), timeout=10)
        except GONE:
            return
        if ref is not None:
            try:
                ref.tell(gate)
            except ActorDeadError:  # restarting: it starts with the right gate next time
                pass

    def _notify_transition(self, decl: wire.HealthCheckDecl, settled: str, report: CheckReport) -> None:
        """One notification when the check falls from success to failure, one when it recovers.

        ``settled`` is its last success or failure: waiting, starting or loading in between (a
        check it needs failed for a moment, the daemon restarted) neither hides nor repeats a fall.
        """
        if report.result == "failure" and settled == "success" and decl.id not in self.failing_notified:
            self.failing_notified.add(decl.id)
            self.directory.tell(
                "notifications",
                Notify(
                    level="warning",
                    title=f"{self.package_id}: {decl.name} is failing",
                    message=f"The health check {decl.name} of {self.package_id} failed: {report.message}",
                    package_id=self.package_id,
                ),
            )
        elif report.result == "success" and decl.id in self.failing_notified:
            self.failing_notified.discard(decl.id)
            self.directory.tell(
                "notifications",
                Notify(
                    level="success",
                    title=f"{self.package_id}: {decl.name} recovered",
                    message=f"The health check {decl.name} of {self.package_id} passes again.",
                    package_id=self.package_id,
                ),
            )

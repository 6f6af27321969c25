"""HealthCheckActor: one health check of a running service, on its own schedule.

Each check the package declares (a daemon's ``ready`` check or a stand-alone
:class:`startos.sdk.HealthCheck`) gets an actor, a dynamic child of the service's
``daemons:<id>`` supervisor. It asks the service's runtime to run the check (inside the sandbox,
where 127.0.0.1 is the service's own), turns the answer into a StartOS health result, and tells
the ServiceActor every result; the ServiceActor publishes changes and decides readiness.

* *waiting* while the ServiceActor holds its gate closed (a check or daemon it needs is not up);
* *starting* for a failure within the grace period (which restarts whenever its daemon starts);
* *loading* / *success* / *failure* / *disabled* as the check says; a failure always has a message,
  a timeout too ("... did not answer within 5 s").

Runs come every ``fast_interval`` seconds until the result settles (success, or failure after the
grace period), then every ``interval`` seconds. The check's crash or hang never reaches the
service: a hang is a failure after the time limit (the runtime also refuses to pile up runs of a
check still running), and this actor crashing is restarted by its supervisor with backoff.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gevent.event import Event

from startos.protocol import runtime as wire
from startos.protocol.actions import CheckGate, CheckReport
from startos.runtime.errors import PackageCodeError, RuntimeCallError, RuntimeTimeout
from startos.supervision import Actor, handles

__all__ = ["CHECK_LAG", "HealthCheckActor", "check_child_id"]

logger = logging.getLogger(__name__)

#: Seconds between a run's scheduled time and its start, newest last (the benchmark turns it on).
RECORD_LAG = False
CHECK_LAG: list[float] = []
_LAG_KEEP = 100_000


def check_child_id(check_id: str) -> str:
    """The supervisor child id of a check (daemons and checks share the supervisor)."""
    return f"check:{check_id}"


class HealthCheckActor(Actor):
    """Runs one check on its schedule and reports each result to the service."""

    def __init__(
        self,
        owner: Any,
        runtime: Any,
        decl: wire.HealthCheckDecl,
        generation: int,
        *,
        waiting_for: str | None = None,
    ) -> None:
        super().__init__()
        self.owner = owner
        self.runtime = runtime
        self.decl = decl
        self.generation = generation
        self.waiting_for = waiting_for
        self.grace_from = time.monotonic()
        self._wake = Event()
        self._last: tuple[str, str | None] | None = None

    def __str__(self) -> str:
        return f"HealthCheckActor[{self.decl.id}]"

    def on_start(self) -> None:
        self.spawn(self._run_forever)  # ended with the actor

    @handles(CheckGate)
    def gate(self, message: CheckGate) -> None:
        """Hold the check (``waiting_for`` set) or let it run now; maybe restart the grace period."""
        self.waiting_for = message.waiting_for
        if message.restart_grace:
            self.grace_from = time.monotonic()
            self._last = None
        self._wake.set()

    # -- the schedule ----------------------------------------------------------------------------

    def _run_forever(self) -> None:
        decl = self.decl
        if not decl.enabled:
            self._report("disabled", "This check is turned off")
            return
        due = time.monotonic()
        while True:
            if self.waiting_for is not None:
                self._report("waiting", f"Waiting for {self.waiting_for}")
                self._wake.clear()
                self._wake.wait()
                due = time.monotonic()
                continue
            started = time.monotonic()
            if RECORD_LAG:
                CHECK_LAG.append(max(0.0, started - due))
                if len(CHECK_LAG) > _LAG_KEEP:
                    del CHECK_LAG[: _LAG_KEEP // 2]
            result, message = self._run_once()
            if self.waiting_for is not None:
                continue  # the gate closed while the check ran: its answer is stale
            settled = result == "success" or result == "failure"
            self._report(result, message)
            due = started + (decl.interval if settled else decl.fast_interval)
            self._wake.clear()
            self._wake.wait(max(0.0, due - time.monotonic()))
            if self._wake.is_set():
                due = time.monotonic()  # a gate change: run now

    def _run_once(self) -> tuple[str, str | None]:
        decl = self.decl
        limit = decl.check.timeout
        try:
            answer = self.runtime.run_health_check(decl.id, timeout=limit + 5.0)
            result, message = answer.result, answer.message
        except RuntimeTimeout:
            result, message = "failure", f"the check did not answer within {limit + 5.0:g} s"
        except PackageCodeError as exc:
            result, message = "failure", _after_colon(str(exc))
        except RuntimeCallError as exc:
            result, message = "failure", f"the check could not run: {_after_colon(str(exc))}"
        if result == "failure" and time.monotonic() - self.grace_from < decl.check.grace_period:
            return "starting", message
        if result == "failure" and not message:
            message = "the check failed without saying why"
        return result, message

    def _report(self, result: str, message: str | None) -> None:
        # Only changes go up, so 600 checks a second cost the state tree nothing; a restarted
        # grace period forgets the last result, so the service hears the next one again.
        current = (result, message)
        if current == self._last:
            return
        self._last = current
        try:
            self.owner.tell(CheckReport(check=self.decl.id, generation=self.generation, result=result, message=message))
        except Exception:  # noqa: BLE001 (the service is stopping; it stops us next)
            logger.debug("%s: the service is gone", self)


def _after_colon(text: str) -> str:
    """``package x: health check 'y' failed: why`` -> ``why`` (the UI shows it next to the check)."""
    _, sep, tail = text.rpartition("failed: ")
    return tail if sep else text

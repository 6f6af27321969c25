"""HealthCheckActor alone, against a scripted runtime: grace, waiting, loading, timeouts, changes only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gevent.event import Event
from gevent.queue import Queue

from startos.actors.services.health import HealthCheckActor
from startos.protocol import runtime as wire
from startos.protocol.actions import CheckGate, CheckReport
from startos.runtime.errors import PackageCodeError, RuntimeTimeout
from startos.supervision import Actor, handles


class Owner(Actor):
    """Stands in for the ServiceActor: records every report."""

    def __init__(self, reports: Queue) -> None:
        super().__init__()
        self.reports = reports

    @handles(CheckReport)
    def report(self, message: CheckReport) -> None:
        self.reports.put(message)


class ScriptedRuntime:
    """Answers run_health_check from a list of outcomes (the last one repeats)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.called = Event()

    def run_health_check(self, check: str, *, timeout: float) -> wire.CheckResult:
        self.calls += 1
        self.called.set()
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def decl(grace: float = 0.0, **changes: Any) -> wire.HealthCheckDecl:
    check = wire.TcpReady(port=1, timeout=0.5, grace_period=grace)
    return wire.HealthCheckDecl(id="db", name="Database", check=check, interval=0.02, fast_interval=0.01, **changes)


REPORTS: dict[int, Queue] = {}


@pytest.fixture
def owner() -> Iterator[Any]:
    reports: Queue = Queue()
    ref = Owner.start(reports)
    REPORTS[id(ref)] = reports
    yield ref
    ref.stop()
    del REPORTS[id(ref)]


def next_report(owner: Any) -> CheckReport:
    report: CheckReport = REPORTS[id(owner)].get(timeout=10)
    return report


def reports_until(owner: Any, result: str) -> list[CheckReport]:
    seen = []
    while not seen or seen[-1].result != result:
        seen.append(next_report(owner))
    return seen


FAIL = wire.CheckResult(result="failure", message="port 1 is not accepting connections")
OK = wire.CheckResult(result="success")


def test_failures_inside_the_grace_period_show_as_starting(owner: Any) -> None:
    runtime = ScriptedRuntime(FAIL)
    check = HealthCheckActor.start(owner, runtime, decl(grace=3600.0), 1)
    try:
        report = next_report(owner)
        assert (report.check, report.generation, report.result) == ("db", 1, "starting")
        assert report.message == FAIL.message
    finally:
        check.stop()


def test_only_changes_are_reported_and_a_restarted_grace_reports_again(owner: Any) -> None:
    runtime = ScriptedRuntime(FAIL, FAIL, FAIL, OK)
    check = HealthCheckActor.start(owner, runtime, decl(), 1)
    try:
        assert [r.result for r in reports_until(owner, "success")] == ["failure", "success"]
        calls = runtime.calls
        runtime.called.clear()
        runtime.called.wait(10)
        assert runtime.calls > calls and REPORTS[id(owner)].empty()  # runs, but no news
        check.tell(CheckGate(restart_grace=True))  # its daemon restarted: the service hears it again
        assert next_report(owner).result == "success"
    finally:
        check.stop()


def test_waiting_until_the_gate_opens(owner: Any) -> None:
    runtime = ScriptedRuntime(OK)
    check = HealthCheckActor.start(owner, runtime, decl(), 1, waiting_for="the database")
    try:
        report = next_report(owner)
        assert (report.result, report.message) == ("waiting", "Waiting for the database")
        assert runtime.calls == 0
        check.tell(CheckGate(waiting_for=None))
        assert next_report(owner).result == "success"
    finally:
        check.stop()


def test_timeouts_and_package_errors_are_failures_with_a_message(owner: Any) -> None:
    timeout = RuntimeTimeout("package x: health check 'db' did not answer within 5.5 s", package="x", what="check")
    broken = PackageCodeError(
        "package x: health check 'db' failed: KeyError: 'port'",
        package="x",
        what="health check 'db'",
        reason="hook-failed",
        hook="check db",
        debug=None,
    )
    runtime = ScriptedRuntime(timeout, broken, wire.CheckResult(result="loading", message="Synced 3 of 30"))
    check = HealthCheckActor.start(owner, runtime, decl(), 1)
    try:
        first, second, third = next_report(owner), next_report(owner), next_report(owner)
        assert (first.result, first.message) == ("failure", "the check did not answer within 5.5 s")
        assert (second.result, second.message) == ("failure", "KeyError: 'port'")
        assert (third.result, third.message) == ("loading", "Synced 3 of 30")
    finally:
        check.stop()


def test_a_disabled_check_never_runs(owner: Any) -> None:
    runtime = ScriptedRuntime(OK)
    check = HealthCheckActor.start(owner, runtime, decl(enabled=False), 1)
    try:
        report = next_report(owner)
        assert (report.result, report.message) == ("disabled", "This check is turned off")
        assert runtime.calls == 0
    finally:
        check.stop()

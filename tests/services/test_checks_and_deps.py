"""Health checks (waiting, internal, hanging, disabled, notifications) and dependency bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from startos.actors.tree import TreeConfig, start_tree
from startos.s9pk import generate_signing_key, pack_package
from startos.s9pk.package import find_sources

from ..helpers import wait_until
from .conftest import EXAMPLES, Services

CHECKED = """
import json
import sys

from startos.sdk import CheckResult, Daemon, FunctionCheck, HealthCheck, MainContext, Service

service = Service(volumes=["main"])
SLEEP = [sys.executable, "-c", "import signal; signal.pause()"]


def from_file(name):
    def check(ctx):
        with ctx.volume_path("main", f"runs-{name}").open("a") as runs:
            runs.write("x")
        wanted = json.loads(ctx.volume_path("main", "checks.json").read_text()).get(name, "failure")
        if wanted == "hang":
            import threading
            threading.Event().wait()
        return CheckResult(result=wanted, message=None if wanted == "success" else f"{name} says {wanted}")
    return check


@service.main
def main(ctx: MainContext) -> list:
    return [
        Daemon("base", argv=SLEEP),
        HealthCheck("db", FunctionCheck(from_file("db"), grace_period=0, interval=0.2), daemon="base"),
        HealthCheck("api", FunctionCheck(from_file("api"), grace_period=0, interval=0.2), name="API", requires=["db"]),
        HealthCheck(
            "stuck", FunctionCheck(from_file("stuck"), timeout=0.5, grace_period=0, interval=0.2), name="Stuck"
        ),
        HealthCheck("feature", FunctionCheck(from_file("feature")), name="Feature", enabled=False),
        Daemon("app", argv=SLEEP, requires=["db"]),
    ]
"""


def package(tmp_path: Path, package_id: str, code: str | None = None, **manifest_changes: Any) -> Path:
    folder = tmp_path / f"src-{package_id}"
    shutil.copytree(EXAMPLES / "crashy", folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(id=package_id, **manifest_changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if code is not None:
        shutil.rmtree(folder / "python")
        (folder / "python").mkdir()
        (folder / "python" / "startos_service.py").write_text(code)
    return pack_package(find_sources(folder), generate_signing_key(), output=tmp_path / f"{package_id}.s9pk")


@pytest.fixture
def services(tmp_path: Path) -> Any:
    harness = Services(start_tree(TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox="process")))
    harness.call("setup.execute", serverName="Checks", password="a long enough password")
    yield harness
    harness.close()


def wait_entry(services: Services, package_id: str, predicate: Any, timeout: float = 60.0) -> Any:
    watch = services.watch("/public/packageData")
    return watch.wait_for(lambda v: v.get(package_id) is not None and predicate(v[package_id]), timeout=timeout)[
        package_id
    ]


def write(path: Path, value: Any) -> None:
    """Replace the checks' control file at once (a check must never read it half written)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(path)


def notes(services: Services, text: str) -> list[Any]:
    return [n for n in services.call("notification.list") if text in n.title]


def test_checks_wait_gate_hang_disable_and_notify_once(services: Services, tmp_path: Path) -> None:
    services.call("package.install", path=str(package(tmp_path, "checked", CHECKED)))
    wait_entry(services, "checked", lambda p: p["stateInfo"]["state"] == "installed")
    control = services.tree.config.data_dir / "packages" / "checked" / "volumes" / "main" / "checks.json"
    write(control, {"db": "failure", "api": "success", "stuck": "hang"})
    services.call("package.start", id="checked")

    # The internal check "db" is not shown, but "api" waits for it and "app" does not start.
    entry = wait_entry(
        services, "checked", lambda p: p["statusInfo"]["health"].get("api", {}).get("result") == "waiting"
    )
    health = entry["statusInfo"]["health"]
    assert "db" not in health
    assert health["api"]["message"] == "Waiting for db"
    assert health["feature"] == {"name": "Feature", "result": "disabled", "message": "This check is turned off"}
    assert "app" not in entry["statusInfo"]["daemons"] and entry["statusInfo"]["started"] is None

    # A check that hangs is a failure that says what timed out, and the service runs on.
    entry = wait_entry(
        services, "checked", lambda p: p["statusInfo"]["health"].get("stuck", {}).get("result") == "failure"
    )
    assert "did not finish within 0.5 s" in entry["statusInfo"]["health"]["stuck"]["message"]

    # db passes: api runs, app starts, the service is started.
    write(control, {"db": "success", "api": "success", "stuck": "hang"})
    entry = wait_entry(
        services,
        "checked",
        lambda p: p["statusInfo"]["started"] is not None and p["statusInfo"]["health"]["api"]["result"] == "success",
    )
    assert entry["statusInfo"]["daemons"]["app"]["state"] == "running"

    # db fails for a moment (api waits for it), then api fails for a while: one notification for
    # the fall (waiting in between neither hides nor repeats it), one for the recovery.
    write(control, {"db": "failure", "api": "failure", "stuck": "hang"})
    wait_entry(services, "checked", lambda p: p["statusInfo"]["health"]["api"]["result"] == "waiting")
    write(control, {"db": "success", "api": "failure", "stuck": "hang"})
    wait_entry(services, "checked", lambda p: p["statusInfo"]["health"]["api"]["result"] == "failure")
    runs = control.parent / "runs-api"
    before = len(runs.read_text())
    wait_until(lambda: len(runs.read_text()) >= before + 5, timeout=30, what="five more runs of api, all failing")
    assert len(notes(services, "API is failing")) == 1
    write(control, {"db": "success", "api": "success", "stuck": "hang"})
    wait_entry(services, "checked", lambda p: p["statusInfo"]["health"]["api"]["result"] == "success")
    assert len(notes(services, "API recovered")) == 1
    assert len(notes(services, "API is failing")) == 1
    assert services.package("checked")["statusInfo"]["started"] is not None


def test_a_dependency_cycle_is_refused_at_install(services: Services, tmp_path: Path) -> None:
    needs = {"description": "needed", "optional": False}
    services.call("package.install", path=str(package(tmp_path, "alpha", dependencies={"beta": needs})))
    wait_entry(services, "alpha", lambda p: p["stateInfo"]["state"] == "installed")
    with pytest.raises(
        Exception, match=r"dependencies form a cycle \\(beta -> alpha -> beta\\)|alpha -> beta -> alpha"
    ):
        services.call("package.install", path=str(package(tmp_path, "beta", dependencies={"alpha": needs})))
    assert services.package("beta") is None


def test_two_interfaces_on_one_port_fail_the_install_clearly(services: Services, tmp_path: Path) -> None:
    code = (
        "from startos.sdk import Interface, Service\n"
        "service = Service(volumes=['main'], interfaces=[Interface('a', 'A', port=80), Interface('b', 'B', port=80)])\n"
    )
    services.call("package.install", path=str(package(tmp_path, "ports", code)))

    def failure_note() -> Any:
        found = [n for n in services.call("notification.list") if n.level == "error" and "ports" in n.title]
        return found[0] if found else None

    wait_until(failure_note, timeout=60, what="the install's failure notification")
    assert "interfaces 'a' and 'b' both use port 80" in failure_note().message
    assert services.package("ports") is None


RUNTIME_TASKS = """
import sys

from startos.sdk import ActionContext, Daemon, FunctionCheck, HealthCheck, MainContext, Service

service = Service(volumes=["main"])


@service.action("break", "Break it", allowed_statuses="only-running")
def break_it(ctx: ActionContext, _input: None) -> str:
    ctx.create_task("fix", replay_id="must-fix", severity="critical", reason="Something needs fixing")
    return "broken"


@service.action("fix", "Fix it")
def fix_it(ctx: ActionContext, _input: None) -> str:
    return "fixed"


@service.main
def main(ctx: MainContext) -> list:
    return [
        Daemon("base", argv=[sys.executable, "-c", "import signal; signal.pause()"]),
        HealthCheck("ok", FunctionCheck(lambda ctx: True, grace_period=0, interval=0.2), name="OK"),
    ]
"""


def test_a_critical_task_at_run_time_stops_the_service(services: Services, tmp_path: Path) -> None:
    services.call("package.install", path=str(package(tmp_path, "fragile", RUNTIME_TASKS)))
    wait_entry(services, "fragile", lambda p: p["stateInfo"]["state"] == "installed")
    services.call("package.start", id="fragile")
    wait_entry(services, "fragile", lambda p: p["statusInfo"]["started"] is not None)

    # The check's own actor crashing is restarted; the service does not notice.
    from startos.actors.services.health import check_child_id
    from startos.protocol.supervision import LookupChild
    from startos.supervision import kill

    before = services.ask("daemons:fragile", LookupChild(id=check_child_id("ok")))
    kill(before)
    wait_until(
        lambda: (services.ask("daemons:fragile", LookupChild(id=check_child_id("ok"))) or before) is not before,
        timeout=30,
        what="the check's actor restarted",
    )
    assert services.package("fragile")["statusInfo"]["started"] is not None

    assert services.call("package.action.run", packageId="fragile", actionId="break").message == "broken"
    entry = wait_entry(services, "fragile", lambda p: p["statusInfo"]["desired"] == "stopped")
    entry = wait_entry(services, "fragile", lambda p: p["statusInfo"]["started"] is None)
    assert entry["tasks"]["must-fix"]["task"]["severity"] == "critical"
    logs = services.call("package.logs", id="fragile", limit=100).entries
    assert any("a required task appeared: Something needs fixing" in e.message for e in logs)

    # Dismissing a required task takes force; then it may start again.
    services.call("package.action.clear-task", packageId="fragile", replayId="must-fix", force=True)
    wait_entry(services, "fragile", lambda p: p["tasks"] == {})
    services.call("package.start", id="fragile")
    wait_entry(services, "fragile", lambda p: p["statusInfo"]["started"] is not None)

"""Jobs of the services manager: one job per package id at a time, however requests interleave.

Two installs of one id issued together through the facade: exactly one runs, the other is
refused with a reason, round after round (the id's check and its registration never yield in
between). Also: a removal frees the id as the package leaves the tree, and the dependency
watcher is a supervised actor that comes back after a crash.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import jsonpatch
import pytest

from startos.actors.services import context
from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.packages import InstallStarted
from startos.protocol.service_jobs import DependencyWatchEnded
from startos.protocol.supervision import RestartChild, TerminateChild
from startos.s9pk import generate_signing_key, pack_package
from startos.s9pk.package import find_sources

from ..helpers import wait_until
from .conftest import EXAMPLES, Services

ROUNDS = 20

QUIET = """
from startos.sdk import Service

service = Service(volumes=["main"])
"""


def quiet_package(tmp_path: Path, key: Any, name: str, *, package_id: str = "racer", title: str = "Racer") -> Path:
    """A package with nothing to run (quick to install), signed by ``key``."""
    folder = tmp_path / f"src-{name}"
    shutil.copytree(EXAMPLES / "crashy", folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["id"], manifest["title"] = package_id, title
    (folder / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(folder / "python")
    (folder / "python").mkdir()
    (folder / "python" / "startos_service.py").write_text(QUIET)
    return pack_package(find_sources(folder), key, output=tmp_path / f"{name}.s9pk")


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    harness = Services(start_tree(TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox="process")))
    harness.call("setup.execute", serverName="Races", password="a long enough password")
    yield harness
    harness.close()


def race(services: Services, paths: list[Path]) -> tuple[list[InstallStarted], list[RpcError]]:
    """Issue one ``package.install`` per path at the same time; collect answers and refusals."""

    def install(path: Path) -> Any:
        try:
            return services.call("package.install", path=str(path))
        except RpcError as exc:
            return exc

    calls = [gevent.spawn(install, path) for path in paths]
    gevent.joinall(calls, timeout=120, raise_error=True)
    assert all(call.ready() for call in calls), "an install call did not answer"
    answers = [call.value for call in calls]
    return (
        [a for a in answers if isinstance(a, InstallStarted)],
        [a for a in answers if isinstance(a, RpcError)],
    )


def installed_and_free(services: Services, package_id: str) -> None:
    """Wait until the package shows as installed (its id is free again from then on)."""
    services.watch("/public/packageData").wait_for(
        lambda v: (v.get(package_id) or {}).get("stateInfo", {}).get("state") == "installed", timeout=60
    )


def summary_of(package_data: Any) -> Any:
    return ((package_data.get("racer") or {}).get("statusInfo") or {}).get("summary")


def assert_one_ran(started: list[InstallStarted], refused: list[RpcError]) -> None:
    assert len(started) == 1, f"{len(started)} installs of one id ran at once"
    assert len(refused) == 1
    (error,) = refused
    assert error.kind == ErrorKind.INVALID_REQUEST
    assert "racer is busy: it is being installed" in error.message


def test_two_installs_of_one_file_issued_together_never_both_run(services: Services, tmp_path: Path) -> None:
    path = quiet_package(tmp_path, generate_signing_key(), "racer")
    watch = services.watch("/public/packageData")
    for round_ in range(ROUNDS):  # the first round installs, the others reinstall (an update job)
        started, refused = race(services, [path, path])
        assert_one_ran(started, refused)
        assert started[0].update is (round_ > 0)
        installed_and_free(services, "racer")
    # The one status word followed every lifecycle change, and `package list` shows it.
    watch.wait_for(lambda v: summary_of(v) == "stopped" and len(watch.revisions) > 1, timeout=10)
    summaries = []
    value: Any = {}
    for revision in watch.revisions:
        value = jsonpatch.apply_patch(value, revision.patch)
        summary = summary_of(value)
        if summary is not None and (not summaries or summaries[-1] != summary):
            summaries.append(summary)
    assert summaries[:2] == ["installing", "stopped"]
    assert summaries[2:] == ["updating", "stopped"] * (ROUNDS - 1)
    wait_until(lambda: services.call("package.list")[0].status == "stopped", timeout=10, what="listed as stopped")


def test_two_files_with_one_id_issued_together_never_both_run(services: Services, tmp_path: Path) -> None:
    key = generate_signing_key()
    first = quiet_package(tmp_path, key, "racer-a", title="Racer A")
    second = quiet_package(tmp_path, key, "racer-b", title="Racer B")
    for _ in range(ROUNDS // 2):
        started, refused = race(services, [first, second])
        assert_one_ran(started, refused)
        installed_and_free(services, "racer")
        services.call("package.uninstall", id="racer")
        # The id is free as soon as the package is gone from the tree.
        services.watch("/public/packageData").wait_for(lambda v: "racer" not in v, timeout=60)
        assert not (services.tree.config.data_dir / "packages" / "racer").exists()


def test_a_removal_holds_the_id_until_the_package_is_gone(services: Services, tmp_path: Path) -> None:
    path = quiet_package(tmp_path, generate_signing_key(), "racer")
    services.call("package.install", path=str(path))
    installed_and_free(services, "racer")
    services.call("package.uninstall", id="racer")  # answers once the removal shows
    try:
        services.call("package.install", path=str(path))
    except RpcError as exc:  # still being removed: refused with the reason
        assert exc.kind == ErrorKind.INVALID_REQUEST and "being removed" in exc.message
        services.watch("/public/packageData").wait_for(lambda v: "racer" not in v, timeout=60)
        services.call("package.install", path=str(path))
    installed_and_free(services, "racer")


def test_the_dependency_watcher_is_restarted_after_a_crash(services: Services, quiet_crashes: None) -> None:
    before = wait_until(lambda: services.directory.get("dependency-watcher"), timeout=10, what="the watcher")
    before.tell(DependencyWatchEnded(reason="store-stopped"))  # what it hears when the store goes away
    after = wait_until(
        lambda: (ref := services.directory.get("dependency-watcher")) is not None and ref is not before and ref,
        timeout=10,
        what="the watcher restarted",
    )
    assert after.is_alive() and not before.is_alive()


def test_a_new_desired_state_waits_for_the_service_actor_then_is_refused(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = quiet_package(tmp_path, generate_signing_key(), "racer")
    services.call("package.install", path=str(path))
    installed_and_free(services, "racer")
    # statusInfo is the ServiceActor's: with none running, nobody records the request.
    monkeypatch.setattr(context, "DESIRED_WAIT", 0.2)
    services.ask("services-sup", TerminateChild(id="service-sup:racer"), timeout=60)
    with pytest.raises(RpcError) as refused:
        services.call("package.start", id="racer")
    assert refused.value.kind == ErrorKind.NOT_FOUND and "not loaded right now" in refused.value.message
    assert services.package("racer")["statusInfo"]["desired"] == "stopped"
    services.ask("services-sup", RestartChild(id="service-sup:racer"), timeout=60)
    services.call("package.stop", id="racer")  # back: it records the request and replies

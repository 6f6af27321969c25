"""Daemons under supervision: crash loops made visible, progress, restarts of startd."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import psutil
import pytest

from startos.actors.tree import TreeConfig, start_tree
from startos.supervision import Backoff

from ..helpers import alive, wait_until
from .conftest import Services

FAST = Backoff(base=0.05, factor=2.0, cap=0.2, jitter=0.0, reset_after=60.0, crash_loop_after=3, cooldown=0.5)


@pytest.fixture
def fast_services(tmp_path: Path, sandbox_kind: str) -> Any:
    config = TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox=sandbox_kind, daemon_backoff=FAST)
    harness = Services(start_tree(config))
    harness.call("setup.execute", serverName="Supervised", password="a long enough password")
    yield harness
    harness.close()


def install(services: Services, packed: dict[str, Path], name: str, tmp_path: Path) -> None:
    source = tmp_path / f"{name}.s9pk"
    shutil.copy(packed[name], source)
    services.call("package.install", path=str(source))
    services.watch("/public/packageData").wait_for(
        lambda v: v.get(name) is not None and v[name]["stateInfo"]["state"] == "installed", timeout=60
    )


def volume(services: Services, package_id: str) -> Path:
    return services.tree.config.data_dir / "packages" / package_id / "volumes" / "main"


def test_a_crashing_daemon_backs_off_then_shows_crash_looping_and_notifies(
    fast_services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    install(fast_services, packed, "crashy", tmp_path)
    (volume(fast_services, "crashy") / "crashy.json").write_text(json.dumps({"exit_after": 0.1, "exit_code": 3}))
    fast_services.call("package.start", id="crashy")
    watch = fast_services.watch("/public")
    watch.wait_for(
        lambda v: v["packageData"]["crashy"]["statusInfo"]["daemons"].get("crashy", {}).get("state") == "crash-looping",
        timeout=60,
    )
    daemon = watch.value["packageData"]["crashy"]["statusInfo"]["daemons"]["crashy"]
    assert "exited with status 3" in daemon["reason"] and daemon["failures"] >= 3
    assert "keeps failing" in watch.value["packageData"]["crashy"]["statusInfo"]["error"]["message"]
    notes = fast_services.call("notification.list")
    assert any(n.level == "error" and "crash-looping" in n.title for n in notes)
    # Never silently down: after the cooldown it is tried again.
    watch.wait_for(
        lambda v: v["packageData"]["crashy"]["statusInfo"]["daemons"]["crashy"]["state"] in ("starting", "running"),
        timeout=30,
    )
    starts = volume(fast_services, "crashy") / "starts.txt"
    wait_until(lambda: int(starts.read_text() or 0) >= 4, timeout=30, what="a fourth start after the cooldown")


def test_long_running_progress_is_reported_live(
    fast_services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    install(fast_services, packed, "slow-sync", tmp_path)
    config = volume(fast_services, "slow-sync") / "sync.json"
    config.write_text(json.dumps({"blocks": 5, "interval": 0.1}))
    fast_services.call("package.start", id="slow-sync")
    watch = fast_services.watch("/public/packageData/slow-sync/statusInfo")
    watch.wait_for(lambda v: any(p.get("done") == 5 for p in v.get("progress", {}).values()), timeout=60)
    progress = next(iter(watch.value["progress"].values()))
    assert progress["total"] == 5 and "5" in (progress["message"] or "")
    watch.wait_for(lambda v: v["started"] is not None, timeout=30)  # ready once synced


def service_pids(package_id: str) -> set[int]:
    """Processes of ``package_id`` started by this test's tree (not by anything else on the machine)."""
    found = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if package_id in " ".join(proc.cmdline()):
                found.add(proc.pid)
        except psutil.Error:
            continue
    return found


def test_services_come_back_as_they_were_after_a_restart(
    tmp_path: Path, packed: dict[str, Path], sandbox_kind: str
) -> None:
    config = TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox=sandbox_kind)
    first = Services(start_tree(config))
    first.call("setup.execute", serverName="Restarts", password="a long enough password")
    install(first, packed, "hello-world", tmp_path)
    install(first, packed, "crashy", tmp_path)
    (volume(first, "crashy") / "crashy.json").write_text(json.dumps({"exit_after": 3600}))
    first.call("package.action.run", packageId="hello-world", actionId="show-credentials")  # the setup task
    first.call("package.start", id="hello-world")
    first.watch("/public/packageData/hello-world/statusInfo").wait_for(lambda v: v["started"] is not None, 60)
    running = service_pids("hello-world")
    assert running
    first.close()
    assert not [pid for pid in running if alive(pid)], "stopping startd stops every service process"
    second = Services(start_tree(config))
    try:
        second.watch("/public/packageData/hello-world/statusInfo").wait_for(lambda v: v["started"] is not None, 60)
        crashy = second.package("crashy")["statusInfo"]
        assert crashy["desired"] == "stopped" and crashy["started"] is None
    finally:
        second.close()

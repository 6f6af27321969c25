"""The public tree a real server writes validates against its schema at every revision.

Each test follows ``/public`` from the first revision, drives services through their lives, then
replays every revision it saw and checks the tree after each one: with the structs
(``validate_public`` and ``validate_at`` on the paths the revision wrote, as the store does) and
with the JSON Schema that ``state`` publishes.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.openrpc import openrpc_document
from startos.protocol.public_tree import validate_at, validate_public
from startos.protocol.rpc import METHODS
from startos.supervision import Backoff

from ..conftest import Watch
from ..test_public_tree import check_against_published
from .conftest import Services

HW = "hello-world"
FAST = Backoff(base=0.05, factor=2.0, cap=0.2, jitter=0.0, reset_after=60.0, crash_loop_after=3, cooldown=0.5)


class Recorder:
    """Follows ``/public`` from its first value; ``check`` replays and validates every revision."""

    def __init__(self, services: Services) -> None:
        self.watch: Watch = services.watch("/public")
        self.first = copy.deepcopy(self.watch.value)

    def wait(self, predicate: Callable[[dict[str, Any]], Any], timeout: float = 90.0) -> dict[str, Any]:
        value: dict[str, Any] = self.watch.wait_for(predicate, timeout=timeout)
        return value

    def entry(self, package_id: str, predicate: Callable[[dict[str, Any]], Any], timeout: float = 90.0) -> Any:
        def ready(public: dict[str, Any]) -> Any:
            entry = public["packageData"].get(package_id)
            return entry is not None and predicate(entry)

        return self.wait(ready, timeout)["packageData"][package_id]

    def check(self) -> list[dict[str, Any]]:
        """Validate the tree after every revision seen; return the trees."""
        self.watch.pump()
        document = openrpc_document(METHODS)
        value, trees = self.first, [self.first]
        validate_public(value)
        for revision in self.watch.revisions:
            value = jsonpatch.apply_patch(value, revision.patch)
            paths = ["/public" + op["path"] for op in revision.patch]  # the watch's patches are relative
            try:
                validate_at(value, paths)
                validate_public(value)
            except Exception as exc:
                raise AssertionError(f"revision {revision.id} {json.dumps(revision.patch)[:2000]}: {exc}") from exc
            errors = check_against_published(value, document)
            assert errors == [], (revision.id, errors)
            trees.append(value)
        return trees


def install(services: Services, packed: dict[str, Path], tmp_path: Path, name: str) -> None:
    source = tmp_path / f"{name}.s9pk"
    shutil.copy(packed[name], source)
    services.call("package.install", path=str(source))


def volume(services: Services, package_id: str) -> Path:
    return services.tree.config.data_dir / "packages" / package_id / "volumes" / "main"


def seen(trees: list[dict[str, Any]], package_id: str, pick: Callable[[dict[str, Any]], Any]) -> set[Any]:
    """Every value ``pick`` gave for the package's entry across the trees (hashable values)."""
    found = set()
    for tree in trees:
        entry = tree["packageData"].get(package_id)
        if entry is not None:
            found.add(pick(entry))
    return found


@pytest.mark.parametrize("sandbox_kind", ["process"])
def test_a_service_s_whole_life_validates_at_every_revision(
    services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    recorder = Recorder(services)
    install(services, packed, tmp_path, HW)
    recorder.entry(HW, lambda e: e["stateInfo"]["state"] == "installed" and e["tasks"] and e["actions"])
    services.call("package.action.run", packageId=HW, actionId="set-greeting", input={"greeting": "Hi"})
    services.call("package.action.run", packageId=HW, actionId="show-credentials")
    recorder.entry(HW, lambda e: e["tasks"] == {})
    services.call("package.start", id=HW)
    recorder.entry(HW, lambda e: (e["statusInfo"]["health"].get("web") or {}).get("result") == "success")
    services.call(
        "package.host.binding.set-address-enabled",
        package=HW,
        host="main",
        internalPort=8080,
        address="127.0.0.1",
        enabled=False,
    )
    services.call("package.restart", id=HW)
    recorder.entry(HW, lambda e: e["statusInfo"]["desired"] == "running" and e["statusInfo"]["started"] is not None)
    services.call("package.stop", id=HW)
    recorder.entry(HW, lambda e: e["statusInfo"]["started"] is None and e["statusInfo"]["desired"] == "stopped")
    services.call("package.uninstall", id=HW)
    recorder.wait(lambda public: HW not in public["packageData"])

    trees = recorder.check()
    assert len(trees) > 20
    assert {"installing", "installed", "removing"} <= seen(trees, HW, lambda e: e["stateInfo"]["state"])
    assert {"stopped", "running"} <= seen(trees, HW, lambda e: e["statusInfo"]["desired"])
    assert "success" in seen(trees, HW, lambda e: (e["statusInfo"]["health"].get("web") or {}).get("result"))
    assert True in seen(trees, HW, lambda e: bool(e["tasks"]))


@pytest.fixture
def fast_services(tmp_path: Path) -> Iterator[Services]:
    config = TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox="process", daemon_backoff=FAST)
    harness = Services(start_tree(config))
    harness.call("setup.execute", serverName="Schema Box", password="a long enough password")
    yield harness
    harness.close()


def test_dependencies_tasks_progress_and_crash_loops_validate_at_every_revision(
    fast_services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    services = fast_services
    recorder = Recorder(services)
    # Wallet: a dependency not installed, a task on another package, waiting with a reason.
    install(services, packed, tmp_path, "wallet")
    recorder.entry("wallet", lambda e: e["stateInfo"]["state"] == "installed" and e["tasks"])
    install(services, packed, tmp_path, "slow-sync")
    recorder.entry("slow-sync", lambda e: e["stateInfo"]["state"] == "installed")
    (volume(services, "slow-sync") / "sync.json").write_text('{"blocks": 4, "interval": 0.2}')
    services.call("package.start", id="wallet")
    recorder.entry("wallet", lambda e: (e["statusInfo"].get("blocked") or {}).get("reason"))
    services.call("package.action.run", packageId="slow-sync", actionId="wallet-access", input={"walletAccess": True})
    services.call("package.start", id="slow-sync")
    recorder.entry("wallet", lambda e: e["statusInfo"]["started"] is not None)
    # Crashy: a daemon that keeps exiting ends crash-looping, with its error.
    install(services, packed, tmp_path, "crashy")
    recorder.entry("crashy", lambda e: e["stateInfo"]["state"] == "installed")
    (volume(services, "crashy") / "crashy.json").write_text(json.dumps({"exit_after": 0.1, "exit_code": 3}))
    services.call("package.start", id="crashy")
    recorder.entry("crashy", lambda e: (e["statusInfo"]["daemons"].get("crashy") or {}).get("state") == "crash-looping")
    services.call("package.stop", id="crashy")
    services.call("package.stop", id="wallet")
    services.call("package.stop", id="slow-sync")
    recorder.entry("slow-sync", lambda e: e["statusInfo"]["started"] is None)

    trees = recorder.check()
    assert any(seen(trees, "slow-sync", lambda e: bool(e["statusInfo"]["progress"])))
    assert False in seen(
        trees, "wallet", lambda e: (e["statusInfo"].get("dependencies") or {}).get("slow-sync", {}).get("satisfied")
    )
    assert "crash-looping" in seen(
        trees, "crashy", lambda e: (e["statusInfo"]["daemons"].get("crashy") or {}).get("state")
    )
    assert any(seen(trees, "crashy", lambda e: e["statusInfo"]["error"] is not None))

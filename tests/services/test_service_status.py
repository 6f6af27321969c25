"""The ServiceActor's part of the tree: the one status summary, its commands, and its owner."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from startos.actors.store import NotOwnerError
from startos.errors import StartOSError
from startos.protocol.actions import SetAddressEnabled
from startos.protocol.errors import ErrorKind
from startos.protocol.owners import service_owner
from startos.protocol.packages import DismissTask
from startos.protocol.status import summarize
from startos.protocol.store import DbApply

from .conftest import Services

HW = "hello-world"


@pytest.fixture(params=["process"])
def sandbox_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def wait_package(services: Services, package_id: str, predicate: Any, timeout: float = 60.0) -> Any:
    watch = services.watch("/public/packageData")
    return watch.wait_for(lambda v: v.get(package_id) is not None and predicate(v[package_id]), timeout=timeout)[
        package_id
    ]


def summary(entry: dict[str, Any]) -> str | None:
    return (entry.get("statusInfo") or {}).get("summary")


def listed(services: Services, package_id: str) -> str:
    return str({p.id: p.status for p in services.call("package.list")}[package_id])


def install(services: Services, packed: dict[str, Path], tmp_path: Path, name: str) -> None:
    source = tmp_path / f"{name}.s9pk"
    shutil.copy(packed[name], source)
    services.call("package.install", path=str(source))
    wait_package(services, name, lambda p: p["stateInfo"]["state"] == "installed")


def test_the_summary_follows_the_service_and_the_cli_shows_it(
    services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    watch = services.watch("/public/packageData")
    seen: list[str] = []

    def until(word: str) -> dict[str, Any]:
        """Follow every revision until the summary is ``word``, noting each summary on the way."""

        def reached(value: dict[str, Any]) -> bool:
            current = summary(value.get(HW) or {})
            if current is not None and (not seen or seen[-1] != current):
                seen.append(current)
            return current == word

        return dict(watch.wait_for(reached, timeout=60)[HW])

    install(services, packed, tmp_path, HW)
    # hello-world's install asks for a required task: it may not start.
    entry = until("task-required")
    assert summarize(entry) == "task-required" and listed(services, HW) == "task-required"

    services.call("package.action.run", packageId=HW, actionId="show-credentials")
    entry = until("stopped")
    assert entry["tasks"] == {} and listed(services, HW) == "stopped"

    services.call("package.start", id=HW)
    entry = until("running")
    assert summarize(entry) == "running" and listed(services, HW) == "running"
    assert entry["statusInfo"]["started"] is not None
    assert seen[-2] == "starting", seen  # the way up shows as starting, never as running too early

    services.call("package.stop", id=HW)
    entry = until("stopped")
    assert entry["statusInfo"]["started"] is None and listed(services, HW) == "stopped"
    assert "installing" in seen, seen


def test_dismiss_task_and_set_address_enabled_are_the_owners_commands(
    services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    install(services, packed, tmp_path, HW)
    wait_package(services, HW, lambda p: p["tasks"] and p["hosts"])
    name = service_owner(HW)

    with pytest.raises(StartOSError, match="is required: run its action") as refused:
        services.ask(name, DismissTask(replay_id="hello-world-setup"))
    assert refused.value.kind == ErrorKind.ACTION
    with pytest.raises(StartOSError, match="has no task 'nope'") as missing:
        services.ask(name, DismissTask(replay_id="nope"))
    assert missing.value.kind == ErrorKind.NOT_FOUND
    revision = services.ask(name, DismissTask(replay_id="hello-world-setup", force=True))
    assert isinstance(revision, int) and revision > 0
    entry = services.package(HW)
    assert entry["tasks"] == {} and entry["statusInfo"]["summary"] == "stopped"

    binding = entry["hosts"]["main"]["bindings"]["8080"]
    address = binding["addresses"]["available"][0]["hostname"]
    message = SetAddressEnabled(host="main", internal_port=8080, address=address, enabled=False)
    assert services.ask(name, message) > revision
    addresses = services.package(HW)["hosts"]["main"]["bindings"]["8080"]["addresses"]
    assert addresses["disabled"] == [address]
    assert [a["enabled"] for a in addresses["available"] if a["hostname"] == address] == [False]
    with pytest.raises(StartOSError, match="is not an address of this binding") as unknown:
        services.ask(name, SetAddressEnabled(host="main", internal_port=8080, address="10.9.9.9", enabled=False))
    assert unknown.value.kind == ErrorKind.NOT_FOUND
    with pytest.raises(StartOSError, match="has no binding for port 9999"):
        services.ask(name, SetAddressEnabled(host="main", internal_port=9999, address=address, enabled=True))


def test_a_service_owns_only_its_own_entry(services: Services, packed: dict[str, Path], tmp_path: Path) -> None:
    install(services, packed, tmp_path, HW)
    install(services, packed, tmp_path, "crashy")
    other = "/public/packageData/crashy/tasks/planted"
    with pytest.raises(NotOwnerError):
        services.ask("store", DbApply(patch=[{"op": "add", "path": other, "value": {}}], owner=service_owner(HW)))
    with pytest.raises(NotOwnerError):
        path = "/public/packageData/hello-world/stateInfo/state"
        services.ask("store", DbApply(patch=[{"op": "replace", "path": path, "value": "x"}], owner=service_owner(HW)))

"""The plain functions behind actions, tasks, dependencies and interfaces (no actors)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from startos.actors.services import offers
from startos.protocol.service_items import InterfaceDecl

REQUIREMENT = {"kind": "running", "versionRange": ">=1.0.0:0 <2.0.0:0", "healthChecks": ["sync"], "title": "Slow Sync"}


def entry(version: str = "1.2.0:0", state: str = "installed", **status: Any) -> dict[str, Any]:
    base = {"desired": "running", "started": "2026-01-01T00:00:00Z", "error": None, "health": {}}
    return {"stateInfo": {"state": state, "manifest": {"version": version}}, "statusInfo": {**base, **status}}


SYNCED = {"sync": {"name": "Sync", "result": "success", "message": None}}


@pytest.mark.parametrize(
    ("dep", "requirement", "why"),
    [
        (None, REQUIREMENT, "Slow Sync is not installed"),
        (entry(state="installing"), REQUIREMENT, "Slow Sync is installing"),
        (
            entry("2.0.0:0", health=SYNCED),
            REQUIREMENT,
            "Slow Sync 2.0.0:0 is installed, but a version in >=1.0.0:0 <2.0.0:0 is needed",
        ),
        (
            entry("0.9.0:0"),
            {**REQUIREMENT, "kind": "exists"},
            "Slow Sync 0.9.0:0 is installed, but a version in >=1.0.0:0 <2.0.0:0 is needed",
        ),
        (entry(started=None, desired="stopped"), {**REQUIREMENT, "kind": "exists"}, None),
        (entry(started=None, desired="stopped"), REQUIREMENT, "Slow Sync is not running"),
        (entry(started=None), REQUIREMENT, "Slow Sync is starting"),
        (entry(error={"message": "boom"}), REQUIREMENT, "Slow Sync has an error: boom"),
        (entry(), REQUIREMENT, "Slow Sync: health check sync has not reported yet"),
        (
            entry(health={"sync": {"name": "Sync", "result": "loading", "message": "Synced 3 of 30 blocks"}}),
            REQUIREMENT,
            "Slow Sync: Sync is loading (Synced 3 of 30 blocks)",
        ),
        (entry(health=SYNCED), REQUIREMENT, None),
        # No checks named: every shown check must pass.
        (
            entry(health={"web": {"name": "Web", "result": "failure", "message": "down"}}),
            {**REQUIREMENT, "healthChecks": []},
            "Slow Sync: Web is failure (down)",
        ),
    ],
)
def test_dependency_state(dep: Any, requirement: dict[str, Any], why: str | None) -> None:
    assert offers.dependency_state("slow-sync", requirement, dep) == why


def test_current_dependencies_from_the_manifest() -> None:
    manifest = {
        "dependencies": {
            "a": {"description": "needed", "optional": False, "versionRange": "^1.0.0:0", "healthChecks": ["x"]},
            "b": {"optional": True, "metadata": {"title": "Bee", "icon": "b.png"}, "kind": "exists"},
        }
    }
    assert offers.current_dependencies(manifest) == {
        "a": {
            "kind": "running",
            "versionRange": "^1.0.0:0",
            "healthChecks": ["x"],
            "optional": False,
            "title": "a",
            "description": "needed",
        },
        "b": {
            "kind": "exists",
            "versionRange": "*",
            "healthChecks": [],
            "optional": True,
            "title": "Bee",
            "description": None,
        },
    }


def test_dependency_cycles() -> None:
    assert offers.dependency_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert offers.dependency_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert offers.dependency_cycle({"a": ["a"]}) == ["a", "a"]


def test_status_refusals() -> None:
    running_only = {"name": "Sync now", "allowedStatuses": "only-running", "visibility": "enabled"}
    assert offers.status_refusal("s", running_only, running=True) is None
    assert "only run while the service is running" in (offers.status_refusal("s", running_only, running=False) or "")
    disabled = {"name": "Old", "allowedStatuses": "any", "visibility": {"disabled": "Not in this version"}}
    assert offers.status_refusal("o", disabled, running=True) == "the action 'Old' is disabled: Not in this version"


def test_addresses_and_urls() -> None:
    machine = [ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "192.168.1.5", "fe80::1", "2001:db8::5")]
    assert offers.listen_addresses("0.0.0.0", machine) == ["192.168.1.5"]
    assert offers.listen_addresses("::", machine) == ["192.168.1.5", "2001:db8::5"]
    assert offers.listen_addresses("127.0.0.1", machine) == ["127.0.0.1"]
    ui = InterfaceDecl(id="main", name="Web", port=8080)
    rows = offers.binding_addresses(ui, 49200, ["192.168.1.5", "2001:db8::5"], "my-server", ["192.168.1.5"])
    assert [(r["kind"], r["url"], r["enabled"]) for r in rows] == [
        ("mdns", "https://my-server.local:49200/", True),
        ("ipv4", "https://192.168.1.5:49200/", False),
        ("ipv6", "https://[2001:db8::5]:49200/", True),
    ]
    p2p = InterfaceDecl(id="peers", name="Peers", type="p2p", port=8333, scheme=None, ssl=False)
    (row,) = offers.binding_addresses(p2p, 40000, ["10.0.0.2"], None, [])
    assert row["url"] == "10.0.0.2:40000" and row["ssl"] is False
    assert offers.interface_entry(ui)["addressInfo"] == {
        "hostId": "main",
        "internalPort": 8080,
        "scheme": None,
        "sslScheme": "https",
        "path": "/",
    }

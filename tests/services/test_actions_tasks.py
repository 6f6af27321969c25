"""Actions, tasks, health checks and interfaces of a real service (hello-world) through the API."""

from __future__ import annotations

import shutil
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from startos.protocol.jsonrpc import RpcError

from .conftest import Services

HW = "hello-world"


def wait_package(services: Services, package_id: str, predicate: Any, timeout: float = 60.0) -> Any:
    watch = services.watch("/public/packageData")
    return watch.wait_for(lambda v: predicate(v.get(package_id)), timeout=timeout).get(package_id)


def install(services: Services, packed: dict[str, Path], tmp_path: Path, name: str) -> Any:
    source = tmp_path / f"{name}.s9pk"
    shutil.copy(packed[name], source)
    started = services.call("package.install", path=str(source))
    wait_package(services, name, lambda p: p is not None and p["stateInfo"]["state"] == "installed")
    return started


def test_hello_world_setup_task_action_health_and_interface(
    services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    install(services, packed, tmp_path, HW)
    entry = wait_package(services, HW, lambda p: p["actions"] and p["tasks"])
    assert entry["actions"]["show-credentials"] == {
        "name": "Show credentials",
        "description": "The admin user name and its generated password.",
        "warning": None,
        "visibility": "enabled",
        "allowedStatuses": "any",
        "hasInput": False,
        "group": "Setup",
    }
    assert entry["actions"]["set-greeting"]["hasInput"] is True
    task = entry["tasks"]["hello-world-setup"]
    assert task["active"] is True
    assert task["task"]["severity"] == "critical" and task["task"]["actionId"] == "show-credentials"

    # A required task: the service cannot start, and says why; it was announced with a link.
    with pytest.raises(RpcError, match="required task"):
        services.call("package.start", id=HW)
    note = next(n for n in services.call("notification.list") if n.title == "hello-world: required task")
    assert note.data["replayId"] == "hello-world-setup" and note.data["link"] == "#/services/hello-world"
    with pytest.raises(RpcError, match="is required: run its action, or dismiss it with force"):
        services.call("package.action.clear-task", packageId=HW, replayId="hello-world-setup")
    with pytest.raises(RpcError, match="has no task 'nope'"):
        services.call("package.action.clear-task", packageId=HW, replayId="nope")
    with pytest.raises(RpcError, match="hello-world has no action 'nope'"):
        services.call("package.action.run", packageId=HW, actionId="nope")
    with pytest.raises(RpcError, match="takes no input"):
        services.call("package.action.run", packageId=HW, actionId="show-credentials", input={"x": 1})

    # The server validates input against the spec, whatever the client did.
    with pytest.raises(RpcError, match="Greeting: No angle brackets") as refused:
        services.call("package.action.run", packageId=HW, actionId="set-greeting", input={"greeting": "<b>hi</b>"})
    assert refused.value.kind == -32602
    form = services.call("package.action.get-input", packageId=HW, actionId="set-greeting")
    assert form.spec["greeting"]["type"] == "text" and form.value == {
        "greeting": "Hello from startos-py",
        "excited": True,
    }
    result = services.call("package.action.run", packageId=HW, actionId="set-greeting", input={"greeting": "Hi there"})
    assert result.message == "The greeting is now: Hi there"

    result = services.call("package.action.run", packageId=HW, actionId="show-credentials")
    values = {v.name: v for v in result.values}
    assert values["Username"].value == "admin" and values["Password"].masked is True
    wait_package(services, HW, lambda p: p["tasks"] == {})

    services.call("package.start", id=HW)
    entry = wait_package(services, HW, lambda p: p["statusInfo"]["started"] is not None, timeout=90)
    entry = wait_package(
        services, HW, lambda p: (p["statusInfo"]["health"].get("web") or {}).get("result") == "success"
    )
    assert entry["statusInfo"]["health"]["web"]["name"] == "Web interface"

    # An action allowed only while stopped is refused while running, and says so.
    with pytest.raises(RpcError, match="can only run while the service is stopped"):
        services.call("package.action.run", packageId=HW, actionId="reset-visits")

    iface = entry["serviceInterfaces"]["main"]
    assert iface["type"] == "ui" and iface["addressInfo"]["internalPort"] == 8080
    binding = entry["hosts"]["main"]["bindings"]["8080"]
    port = binding["net"]["assignedPort"]
    assert isinstance(port, int) and port > 0
    rows = services.call("package.host.address.list", package=HW)
    urls = {row.hostname: row.url for row in rows}
    assert urls["127.0.0.1"] == f"https://127.0.0.1:{port}/"
    ca = services.tree.config.data_dir / "ca.crt"
    ctx = ssl.create_default_context(cafile=str(ca)) if ca.exists() else ssl._create_unverified_context()
    ctx.check_hostname = False
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=ctx, timeout=10) as answer:
        assert b"Hi there" in answer.read()


def volume(services: Services, package_id: str) -> Path:
    return services.tree.config.data_dir / "packages" / package_id / "volumes" / "main"


def test_wallet_waits_for_slow_sync_and_its_dependency_task(
    services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    # Installing without the dependency works, but says what is missing; starting is refused.
    started = install(services, packed, tmp_path, "wallet")
    assert started.dependency_problems == ["Slow Sync is not installed"]
    entry = wait_package(services, "wallet", lambda p: p["tasks"] and p["currentDependencies"])
    assert entry["currentDependencies"]["slow-sync"]["versionRange"] == ">=1.0.0:0 <2.0.0:0"
    task = entry["tasks"]["wallet-slow-sync-access"]
    assert task["active"] is True and task["task"]["packageId"] == "slow-sync"
    assert task["task"]["input"] == {"kind": "partial", "value": {"walletAccess": True}}
    with pytest.raises(RpcError, match="wallet cannot start: Slow Sync is not installed"):
        services.call("package.start", id="wallet")

    install(services, packed, tmp_path, "slow-sync")
    (volume(services, "slow-sync") / "sync.json").write_text('{"blocks": 4, "interval": 0.2}')
    # Slow Sync is installed but stopped: Wallet may be started, and waits, saying why.
    services.call("package.start", id="wallet")
    entry = wait_package(services, "wallet", lambda p: (p["statusInfo"].get("blocked") or {}).get("reason"))
    assert entry["statusInfo"]["blocked"]["reason"] == "Slow Sync is not running"
    assert {p.id: p.status for p in services.call("package.list")}["wallet"] == "waiting"
    assert entry["statusInfo"]["dependencies"]["slow-sync"] == {
        "satisfied": False,
        "message": "Slow Sync is not running",
    }
    assert entry["statusInfo"]["started"] is None

    # The dependency task: run Slow Sync's action with the prefilled input; the task clears.
    form = services.call("package.action.get-input", packageId="slow-sync", actionId="wallet-access")
    assert form.value == {"walletAccess": False}
    services.call("package.action.run", packageId="slow-sync", actionId="wallet-access", input={"walletAccess": True})
    wait_package(services, "wallet", lambda p: p["tasks"]["wallet-slow-sync-access"]["active"] is False)

    # Wallet starts by itself once Slow Sync's sync check passes (readiness-gated).
    services.call("package.start", id="slow-sync")
    entry = wait_package(services, "wallet", lambda p: p["statusInfo"]["started"] is not None, timeout=90)
    sync = services.package("slow-sync")["statusInfo"]["health"]["sync"]
    assert sync["result"] == "success"
    assert entry["statusInfo"]["blocked"] is None
    assert entry["statusInfo"]["dependencies"]["slow-sync"]["satisfied"] is True

    # Changing the setting back brings the task back.
    services.call("package.action.run", packageId="slow-sync", actionId="wallet-access", input={"walletAccess": False})
    wait_package(services, "wallet", lambda p: p["tasks"]["wallet-slow-sync-access"]["active"] is True)

    # Slow Sync stops: Wallet keeps running, degraded, and says why.
    services.call("package.stop", id="slow-sync")
    entry = wait_package(services, "wallet", lambda p: not p["statusInfo"]["dependencies"]["slow-sync"]["satisfied"])
    assert entry["statusInfo"]["started"] is not None
    assert "Slow Sync" in entry["statusInfo"]["dependencies"]["slow-sync"]["message"]
    assert {p.id: p.status for p in services.call("package.list")}["wallet"] == "degraded"

    # Uninstalling what others need is refused with the list, unless forced.
    with pytest.raises(RpcError, match="slow-sync is required by wallet"):
        services.call("package.uninstall", id="slow-sync")


def test_a_disabled_address_stops_answering(services: Services, packed: dict[str, Path], tmp_path: Path) -> None:
    install(services, packed, tmp_path, HW)
    services.call("package.action.run", packageId=HW, actionId="show-credentials")
    services.call("package.start", id=HW)
    entry = wait_package(
        services, HW, lambda p: (p["statusInfo"]["health"].get("web") or {}).get("result") == "success"
    )
    port = entry["hosts"]["main"]["bindings"]["8080"]["net"]["assignedPort"]
    ctx = ssl._create_unverified_context()

    def fetch() -> bytes:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/health", context=ctx, timeout=10) as answer:
            return bytes(answer.read())

    assert fetch() == b"ok\n"
    services.call(
        "package.host.binding.set-address-enabled",
        package=HW,
        host="main",
        internalPort=8080,
        address="127.0.0.1",
        enabled=False,
    )
    with pytest.raises(OSError):
        fetch()
    rows = services.call("package.host.binding.list", package=HW)
    assert [(r.host, r.internal_port, r.assigned_port, r.disabled) for r in rows] == [
        ("main", 8080, port, ["127.0.0.1"])
    ]
    listed = {r.hostname: r.enabled for r in services.call("package.host.address.list", package=HW, host="main")}
    assert listed["127.0.0.1"] is False
    with pytest.raises(RpcError, match="not an address of this binding"):
        services.call(
            "package.host.binding.set-address-enabled",
            package=HW,
            host="main",
            internalPort=8080,
            address="10.9.8.7",
            enabled=False,
        )
    row = next(
        r
        for r in services.call("db.dump", pointer=f"/public/packageData/{HW}/hosts/main/bindings/8080").value[
            "addresses"
        ]["available"]
        if r["hostname"] == "127.0.0.1"
    )
    services.call(  # the row itself, as a client that lists addresses sends it back
        "package.host.binding.set-address-enabled",
        package=HW,
        host="main",
        internalPort=8080,
        address=row,
        enabled=True,
    )
    assert fetch()
    # A rebuild (a new ServiceActor and sandbox) keeps the port and the disabled list.
    services.call(
        "package.host.binding.set-address-enabled",
        package=HW,
        host="main",
        internalPort=8080,
        address=f"{services.call('db.dump', pointer='/public/serverInfo/hostname').value}.local",
        enabled=False,
    )
    services.call("package.rebuild", id=HW)  # answers once the new ServiceActor has started
    entry = wait_package(services, HW, lambda p: p["statusInfo"]["started"] is not None, timeout=90)
    binding = entry["hosts"]["main"]["bindings"]["8080"]
    assert binding["net"]["assignedPort"] == port and len(binding["addresses"]["disabled"]) == 1
    wait_package(services, HW, lambda p: (p["statusInfo"]["health"].get("web") or {}).get("result") == "success")
    assert fetch() == b"ok\n"
    qr = services.call("util.qr", text=f"https://127.0.0.1:{port}/")
    assert qr.svg.startswith("<svg") and "</svg>" in qr.svg


def test_uninstall_closes_the_interfaces_port(services: Services, packed: dict[str, Path], tmp_path: Path) -> None:
    from startos.protocol.proxy import ListExposed

    install(services, packed, tmp_path, HW)
    entry = wait_package(services, HW, lambda p: p["hosts"])
    port = entry["hosts"]["main"]["bindings"]["8080"]["net"]["assignedPort"]
    assert [(e.key, e.port) for e in services.ask("proxy", ListExposed())] == [("hello-world/main/8080", port)]
    services.call("package.uninstall", id=HW)
    wait_package(services, HW, lambda p: p is None)
    assert services.ask("proxy", ListExposed()) == []


def test_a_new_hostname_changes_the_local_addresses(
    services: Services, packed: dict[str, Path], tmp_path: Path
) -> None:
    install(services, packed, tmp_path, HW)
    entry = wait_package(services, HW, lambda p: p["hosts"])
    port = entry["hosts"]["main"]["bindings"]["8080"]["net"]["assignedPort"]
    services.call("server.set-hostname", name="Renamed Box")
    entry = wait_package(
        services,
        HW,
        lambda p: any(
            a["hostname"] == "renamed-box.local"
            for a in p["hosts"]["main"]["bindings"]["8080"]["addresses"]["available"]
        ),
    )
    urls = [a["url"] for a in entry["hosts"]["main"]["bindings"]["8080"]["addresses"]["available"]]
    assert f"https://renamed-box.local:{port}/" in urls

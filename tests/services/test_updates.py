"""Updates and downgrades: hooks and migrations run, failures roll back, keys stay continuous."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.jsonrpc import RpcError
from startos.s9pk import generate_signing_key, pack_package
from startos.s9pk.package import find_sources

from ..helpers import wait_until
from .conftest import EXAMPLES, Services


def variant(tmp_path: Path, version: str, key: Any, *, init_update_raises: bool = False) -> Path:
    """hello-world at another version (optionally with an update hook that breaks), packed and signed."""
    folder = tmp_path / f"hello-{version}"
    shutil.copytree(EXAMPLES / "hello-world", folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = version
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if init_update_raises:
        code = folder / "python" / "startos_service.py"
        code.write_text(
            code.read_text()
            + """

@service.migrate_up("2.0.0:0")
def break_on_update(ctx: MigrationContext) -> None:
    ctx.volume_path("main", "half-migrated.txt").write_text("oops")
    raise RuntimeError("the new version cannot read this data")
"""
        )
    return pack_package(find_sources(folder), key, output=tmp_path / f"hello-{version}.s9pk")


@pytest.fixture
def services(tmp_path: Path) -> Any:
    config = TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox="process")
    harness = Services(start_tree(config))
    harness.call("setup.execute", serverName="Updates", password="a long enough password")
    yield harness
    harness.close()


def wait_version(services: Services, version: str, *, running: bool | None = None) -> dict[str, Any]:
    watch = services.watch("/public/packageData")

    def ok(value: dict[str, Any]) -> bool:
        entry = value.get("hello-world")
        if entry is None or entry["stateInfo"]["state"] != "installed":
            return False
        if entry["stateInfo"]["manifest"]["version"] != version:
            return False
        return running is None or (entry["statusInfo"]["started"] is not None) == running

    return dict(watch.wait_for(ok, timeout=90)["hello-world"])


def main_volume(services: Services) -> Path:
    return services.tree.config.data_dir / "packages" / "hello-world" / "volumes" / "main"


def test_update_keeps_it_running_and_runs_the_hooks(services: Services, tmp_path: Path) -> None:
    key = generate_signing_key()
    services.call("package.install", path=str(variant(tmp_path, "1.0.0:0", key)))
    wait_version(services, "1.0.0:0")
    services.call("package.action.run", packageId="hello-world", actionId="show-credentials")  # the setup task
    services.call("package.start", id="hello-world")
    wait_version(services, "1.0.0:0", running=True)
    started = services.call("package.install", path=str(variant(tmp_path, "1.1.0:0", key)))
    assert started.update is True
    wait_version(services, "1.1.0:0", running=True)
    assert "updating to 1.1.0:0" in (main_volume(services) / "updates.log").read_text()
    versions = list((services.tree.config.data_dir / "packages" / "hello-world" / "versions").iterdir())
    assert [v.name for v in versions] == ["1.1.0_0"]  # the old version is gone once the update held


def test_a_failed_update_rolls_back_to_the_old_version_and_data(services: Services, tmp_path: Path) -> None:
    key = generate_signing_key()
    services.call("package.install", path=str(variant(tmp_path, "1.0.0:0", key)))
    wait_version(services, "1.0.0:0")
    services.call("package.action.run", packageId="hello-world", actionId="show-credentials")  # the setup task
    services.call("package.start", id="hello-world")
    wait_version(services, "1.0.0:0", running=True)
    before = sorted(p.name for p in main_volume(services).iterdir())
    services.call("package.install", path=str(variant(tmp_path, "2.0.0:0", key, init_update_raises=True)))

    def failure_notice() -> Any:
        notes = services.call("notification.list")
        return next((n for n in notes if n.level == "error" and "hello-world" in n.title), None)

    failed = wait_until(failure_notice, timeout=90, what="the failed update's notification")
    assert "cannot read this data" in failed.message and "1.0.0:0 was kept" in failed.message
    entry = wait_version(services, "1.0.0:0", running=True)
    assert entry["stateInfo"].get("installingInfo") is None
    assert sorted(p.name for p in main_volume(services).iterdir()) == before  # half-migrated.txt is gone


def test_an_update_signed_by_another_key_needs_consent(services: Services, tmp_path: Path) -> None:
    services.call("package.install", path=str(variant(tmp_path, "1.0.0:0", generate_signing_key())))
    wait_version(services, "1.0.0:0")
    stranger = variant(tmp_path, "1.1.0:0", generate_signing_key())
    with pytest.raises(RpcError) as refused:
        services.call("package.install", path=str(stranger))
    assert refused.value.kind == 31 and "different key" in refused.value.message
    assert services.call("package.installed-version", id="hello-world") == "1.0.0:0"
    services.ask("facade", _install_call(stranger, accept=True))
    wait_version(services, "1.1.0:0")


def _install_call(path: Path, *, accept: bool) -> Any:
    from startos.protocol.calls import RpcCall

    from .conftest import ROOT

    return RpcCall(method="package.install", params={"path": str(path), "acceptNewKey": accept}, context=ROOT)


def test_downgrade_runs_the_newer_codes_down_migration(services: Services, tmp_path: Path) -> None:
    key = generate_signing_key()
    services.call("package.install", path=str(variant(tmp_path, "1.0.0:0", key)))
    wait_version(services, "1.0.0:0")
    (main_volume(services) / "visits.json").write_text(json.dumps({"visits": 7}))
    services.call("package.install", path=str(variant(tmp_path, "0.9.0:0", key)))
    wait_version(services, "0.9.0:0")
    assert (main_volume(services) / "counter.txt").read_text().strip() == "7"


def test_a_tampered_package_leaves_nothing_behind(services: Services, tmp_path: Path) -> None:
    path = variant(tmp_path, "1.0.0:0", generate_signing_key())
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    try:
        services.call("package.install", path=str(path))
    except RpcError as exc:  # caught at the header already
        assert exc.kind in (18, 24, 31)
    services.watch("/public/packageData").wait_for(lambda v: "hello-world" not in v, timeout=60)
    assert not (services.tree.config.data_dir / "packages" / "hello-world").exists()
    assert services.call("package.list") == []

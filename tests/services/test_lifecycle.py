"""A service's life through the API: install, start, logs, stats, stop, uninstall."""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil

from .conftest import Services


def wait_package(services: Services, package_id: str, predicate, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    watch = services.watch("/public/packageData")
    return watch.wait_for(lambda v: predicate(v.get(package_id)), timeout=timeout).get(package_id)


def test_install_start_stop_uninstall(services: Services, packed: dict[str, Path], tmp_path: Path) -> None:
    source = tmp_path / "hello.s9pk"
    shutil.copy(packed["hello-world"], source)
    started = services.call("package.install", path=str(source))
    assert (started.id, started.update) == ("hello-world", False)
    entry = wait_package(services, "hello-world", lambda p: p is not None and p["stateInfo"]["state"] == "installed")
    assert entry["statusInfo"]["desired"] == "stopped"
    volume = services.tree.config.data_dir / "packages" / "hello-world" / "volumes" / "main"
    assert any(volume.iterdir()), "the install init hook wrote its defaults"
    assert services.call("package.installed-version", id="hello-world") == started.version

    services.call("package.action.run", packageId="hello-world", actionId="show-credentials")  # the setup task
    services.call("package.start", id="hello-world")
    entry = wait_package(services, "hello-world", lambda p: p["statusInfo"]["started"] is not None)
    assert entry["statusInfo"]["daemons"]["web"]["state"] == "running"
    logs = services.call("package.logs", id="hello-world", limit=200)
    messages = [e.message for e in logs.entries]
    assert any("daemon web started" in m for m in messages) and any("oneshot prepare" in m for m in messages)
    stats = services.call("package.stats", id="hello-world")
    assert stats.processes >= 2 and stats.memory_bytes > 0
    titled = [p for p in psutil.process_iter(["cmdline"]) if "hello-world" in " ".join(p.info["cmdline"] or [])]
    assert titled, "every process of the service shows its package id in ps"

    services.call("package.stop", id="hello-world")
    wait_package(services, "hello-world", lambda p: p["statusInfo"]["started"] is None)
    listed = services.call("package.list")
    assert [(p.id, p.status) for p in listed] == [("hello-world", "stopped")]

    services.call("package.uninstall", id="hello-world")  # answers once the removal has begun
    services.watch("/public/packageData").wait_for(lambda v: "hello-world" not in v, timeout=60)
    assert not (services.tree.config.data_dir / "packages" / "hello-world").exists()

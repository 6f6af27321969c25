"""Misbehaving packages and hostile conditions: the server and other services carry on."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.jsonrpc import RpcError
from startos.s9pk import generate_signing_key, pack_package
from startos.s9pk.package import find_sources

from ..helpers import tmpfs, wait_until
from .conftest import EXAMPLES, Services

STUBBORN = """
import sys

from startos.sdk import Daemon, MainContext, Service

service = Service(volumes=["main"])


@service.main
def main(ctx: MainContext) -> list[Daemon]:
    code = (
        "import signal, time\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "print('ignoring SIGTERM', flush=True)\\n"
        "while True: signal.pause()\\n"
    )
    return [Daemon("stubborn", argv=[sys.executable, "-c", code], stop_timeout=1)]
"""


def custom_package(tmp_path: Path, package_id: str, service_code: str, limits: dict[str, int] | None = None) -> Path:
    folder = tmp_path / package_id
    shutil.copytree(EXAMPLES / "crashy", folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["id"] = package_id
    if limits is not None:
        manifest["resourceLimits"] = limits
    (folder / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(folder / "python")
    (folder / "python").mkdir()
    (folder / "python" / "startos_service.py").write_text(service_code)
    return pack_package(find_sources(folder), generate_signing_key(), output=tmp_path / f"{package_id}.s9pk")


@pytest.fixture
def services(tmp_path: Path) -> Any:
    harness = Services(start_tree(TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox="process")))
    harness.call("setup.execute", serverName="Bad", password="a long enough password")
    yield harness
    harness.close()


def installed(services: Services, package_id: str) -> None:
    services.watch("/public/packageData").wait_for(
        lambda v: v.get(package_id) is not None and v[package_id]["stateInfo"]["state"] == "installed", timeout=60
    )


def test_a_daemon_that_ignores_sigterm_is_killed_after_its_timeout(services: Services, tmp_path: Path) -> None:
    services.call("package.install", path=str(custom_package(tmp_path, "stubborn", STUBBORN)))
    installed(services, "stubborn")
    services.call("package.start", id="stubborn")
    services.watch("/public/packageData/stubborn/statusInfo").wait_for(lambda v: v["started"] is not None, 60)

    def said(text: str) -> bool:
        return any(text in e.message for e in services.call("package.logs", id="stubborn", limit=100).entries)

    wait_until(lambda: said("ignoring SIGTERM"), timeout=30, what="the daemon's handler in place")
    services.call("package.stop", id="stubborn")
    services.watch("/public/packageData/stubborn/statusInfo").wait_for(lambda v: v["started"] is None, 30)
    lines = [e.message for e in services.call("package.logs", id="stubborn", limit=100).entries]
    assert any("ignored SIGTERM for 1 s: killing it" in line for line in lines), lines
    stats = services.call("package.stats", id="stubborn")
    assert stats.processes <= 1  # only the runtime is left


def test_package_code_that_does_not_load_fails_the_install_and_leaves_nothing(
    services: Services, tmp_path: Path
) -> None:
    broken = custom_package(tmp_path, "broken", "raise SystemExit('this package is broken on purpose')\n")
    services.call("package.install", path=str(broken))
    services.watch("/public/packageData").wait_for(lambda v: "broken" not in v, timeout=60)
    wait_until(
        lambda: any(n.level == "error" and "broken" in n.title for n in services.call("notification.list")),
        timeout=30,
        what="the failed install's notification",
    )
    assert not (services.tree.config.data_dir / "packages" / "broken").exists()
    assert services.call("echo", message="still fine") == "still fine"


@pytest.fixture
def tiny_data(tmp_path: Path) -> Any:
    """A data directory on a real 3 MiB filesystem."""
    with tmpfs(tmp_path / "tiny", "3m") as mount:
        yield mount


def test_a_disk_that_fills_during_install_leaves_no_half_installed_package(tiny_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "big"
    shutil.copytree(EXAMPLES / "hello-world", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "blob.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    path = pack_package(find_sources(folder), generate_signing_key(), output=tmp_path / "big.s9pk")
    harness = Services(start_tree(TreeConfig(data_dir=tiny_data / "data", port=None, mdns=False, sandbox="process")))
    try:
        harness.call("setup.execute", serverName="Full", password="a long enough password")
        try:
            harness.call("package.install", path=str(path))
        except RpcError:
            pass  # refused at once is fine too
        harness.watch("/public/packageData").wait_for(lambda v: "hello-world" not in v, timeout=60)
        wait_until(
            lambda: not (tiny_data / "data" / "packages" / "hello-world").exists(),
            timeout=30,
            what="the partial install removed",
        )
        assert harness.call("echo", message="alive") == "alive"
    finally:
        harness.close()


HUNGRY = """
import sys

from startos.sdk import Daemon, MainContext, Service

service = Service(volumes=["main"])


@service.main
def main(ctx: MainContext) -> list[Daemon]:
    code = "blob = bytearray(200 * 1024 * 1024)\\nimport time\\ntime.sleep(3600)\\n"
    return [Daemon("hungry", argv=[sys.executable, "-c", code], stop_timeout=1)]
"""


def test_the_manifests_memory_limit_is_enforced_in_the_namespace_sandbox(tmp_path: Path) -> None:
    from startos.sandbox import namespace_support

    usable, reason = namespace_support()
    if not usable:
        pytest.skip(f"namespace sandbox unavailable here: {reason}")
    path = custom_package(tmp_path, "hungry", HUNGRY, limits={"memory": 64 * 1024 * 1024, "processes": 64})
    config = TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox="namespace")
    harness = Services(start_tree(config))
    try:
        harness.call("setup.execute", serverName="Limits", password="a long enough password")
        harness.call("package.install", path=str(path))
        installed(harness, "hungry")
        harness.call("package.start", id="hungry")
        stats = harness.call("package.stats", id="hungry")
        assert stats.memory_limit_bytes == 64 * 1024 * 1024
        # The daemon allocates 200 MiB under a 64 MiB limit: the kernel kills it, again and again.
        harness.watch("/public/packageData/hungry/statusInfo").wait_for(
            lambda v: "SIGKILL" in str((v.get("daemons") or {}).get("hungry", {}).get("reason")), timeout=60
        )
    finally:
        harness.close()


SLOW_INIT = """
import threading

from startos.sdk import InitContext, Service

service = Service(volumes=["main"])


@service.init("install")
def take_forever(ctx: InitContext) -> None:
    ctx.volume_path("main", "started.txt").write_text("init began")
    threading.Event().wait(3600)  # an install hook that never ends
"""


def test_cancel_install_stops_a_running_install_and_removes_it(services: Services, tmp_path: Path) -> None:
    services.call("package.install", path=str(custom_package(tmp_path, "slowpoke", SLOW_INIT)))
    marker = services.tree.config.data_dir / "packages" / "slowpoke" / "volumes" / "main" / "started.txt"
    wait_until(marker.exists, timeout=60, what="the install hook running")
    services.call("package.cancel-install", id="slowpoke")
    services.watch("/public/packageData").wait_for(lambda v: "slowpoke" not in v, timeout=60)
    assert not (services.tree.config.data_dir / "packages" / "slowpoke").exists()

    def nothing_left_to_cancel() -> bool:
        try:
            services.call("package.cancel-install", id="slowpoke")
        except RpcError as exc:
            return exc.kind == 6
        return False  # the rollback was still finishing

    wait_until(nothing_left_to_cancel, timeout=30, what="nothing left to cancel")


def test_rebuild_keeps_data_and_desired_state(services: Services, tmp_path: Path) -> None:
    path = custom_package(tmp_path, "rebuilt", STUBBORN.replace("stubborn", "rebuilt"))
    services.call("package.install", path=str(path))
    installed(services, "rebuilt")
    volume = services.tree.config.data_dir / "packages" / "rebuilt" / "volumes" / "main"
    (volume / "keep.txt").write_text("data")
    services.call("package.start", id="rebuilt")
    services.watch("/public/packageData/rebuilt/statusInfo").wait_for(lambda v: v["started"] is not None, 60)
    services.call("package.rebuild", id="rebuilt")
    services.watch("/public/packageData/rebuilt/statusInfo").wait_for(lambda v: v["started"] is not None, 60)
    assert (volume / "keep.txt").read_text() == "data"
    lines = [e.message for e in services.call("package.logs", id="rebuilt", limit=200).entries]
    assert sum("sandbox ready" in line for line in lines) == 2

"""hello-world's service code, unit-tested with startos.sdk.testing (no server)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from startos.protocol import runtime as wire
from startos.sdk.testing import ServiceCallError, ServiceTester

from ..helpers import wait_until
from .conftest import EXAMPLES, free_port, get, write_json

FOLDER = EXAMPLES / "hello-world"


@pytest.fixture
def t(tmp_path: Path) -> Iterator[ServiceTester]:
    with ServiceTester(FOLDER, tmp_path) as tester:
        yield tester


def test_install_writes_defaults(t: ServiceTester) -> None:
    t.run_init("install")
    config = json.loads(t.volume("main", "config.json").read_text())
    assert config == {"port": 8080, "greeting": "Hello from startos-py!"}
    assert json.loads(t.volume("main", "visits.json").read_text()) == {"visits": 0}


def test_init_keeps_existing_settings_and_visits(t: ServiceTester) -> None:
    write_json(t.volume("main", "config.json"), {"port": 9999})
    write_json(t.volume("main", "visits.json"), {"visits": 7})
    for kind in ("install", "restore"):
        t.run_init(kind)
    t.run_init("update", previous_version="0.9.0:0")
    assert json.loads(t.volume("main", "config.json").read_text()) == {"port": 9999}
    assert json.loads(t.volume("main", "visits.json").read_text()) == {"visits": 7}


def test_description(t: ServiceTester) -> None:
    t.run_init("install")
    description = t.describe()
    assert description.volumes == ("main",)
    assert [d.id for d in description.daemons] == ["web"] and [o.id for o in description.oneshots] == ["prepare"]
    assert description.start_order() == ["prepare", "web"]
    web = t.daemon("web")
    assert web.requires == ("prepare",)
    assert web.ready == wire.HttpReady(port=8080, path="/health", display="Web interface")
    assert web.argv[-2:] == ("-m", "hello_world.server")
    assert web.env["STARTOS_DAEMON"] == "web"
    assert web.env["PYTHONPATH"] == str(FOLDER / "python")
    assert "STARTOS_DAEMON" not in t.oneshot("prepare").env
    assert description.backup == wire.BackupSpec(volumes=(wire.BackupVolume(id="main", exclude=("*.tmp",)),))
    assert description.init == ("install", "update", "restore") and description.uninit == ("update",)
    assert description.migrations == (wire.MigrationStep(version="1.0.0:0", up=True, down=True),)


def test_description_without_main_lists_no_daemons(t: ServiceTester) -> None:
    write_json(t.volume("main", "config.json"), {"port": "not a port"})
    description = t.describe(main=False)
    assert description.daemons == () and not description.main_ran
    assert description.volumes == ("main",)


def test_port_setting_moves_the_check(t: ServiceTester) -> None:
    write_json(t.volume("main", "config.json"), {"port": 8181})
    ready = t.daemon("web").ready
    assert isinstance(ready, wire.HttpReady) and ready.port == 8181


def test_bad_port_fails_main_with_the_reason(t: ServiceTester) -> None:
    write_json(t.volume("main", "config.json"), {"port": 70000})
    with pytest.raises(ServiceCallError) as caught:
        t.describe()
    assert caught.value.error.reason == "hook-failed" and caught.value.error.hook == "main"
    assert "port must be a number from 1 to 65535, got 70000" in caught.value.error.message
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.error.debug is not None and "settings.py" in caught.value.error.debug


def test_prepare_oneshot(t: ServiceTester) -> None:
    prepare = t.oneshot("prepare")
    done = t.run_oneshot(prepare)
    assert done.returncode == 0, done.stderr
    assert t.volume("main", "config.json").exists()  # it creates missing files too
    write_json(t.volume("main", "config.json"), {"port": 0})  # settings broken after the service started
    done = t.run_oneshot(prepare)
    assert done.returncode == 1 and b"port must be a number" in done.stderr


def test_web_daemon_counts_visits_across_restarts(t: ServiceTester) -> None:
    port = free_port()
    t.run_init("install")
    write_json(t.volume("main", "config.json"), {"port": port, "greeting": "Hi!"})
    assert t.run_check("web").result == "failure"
    for expected in (1, 2):
        process = t.start_daemon("web", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: t.run_check("web").result == "success", timeout=15, what="web ready")
            assert get(f"http://127.0.0.1:{port}/") == f"Hi! You are visitor number {expected}.\n"
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0  # SIGTERM stops it cleanly
    assert json.loads(t.volume("main", "visits.json").read_text()) == {"visits": 2}


def test_migration_up_then_down(t: ServiceTester) -> None:
    t.volume("main", "counter.txt").write_text("41\n")
    done = t.run_migration("0.9.0:0", "1.0.0:0")
    assert (done.direction, done.steps) == ("up", ("1.0.0:0",))
    assert json.loads(t.volume("main", "visits.json").read_text()) == {"visits": 41}
    assert not t.volume("main", "counter.txt").exists()
    done = t.run_migration("1.0.0:0", "0.9.0:0")
    assert (done.direction, done.steps) == ("down", ("1.0.0:0",))
    assert t.volume("main", "counter.txt").read_text() == "41\n"
    assert not t.volume("main", "visits.json").exists()


@pytest.mark.parametrize(
    ("source", "target", "direction", "steps"),
    [
        ("0.9.0:0", "1.0.0:0", "up", ("1.0.0:0",)),
        ("1.0.0:0", "1.0:0", "none", ()),  # exver: 1.0 == 1.0.0
        ("1.0.0:0", "1.2.0:0", "up", ()),  # no data change after 1.0.0
        ("1.2.0:0", "0.1.0:0", "down", ("1.0.0:0",)),
        ("1.0.0:0", "1.0.0:1", "up", ()),
    ],
)
def test_migration_plans(t: ServiceTester, source: str, target: str, direction: str, steps: tuple[str, ...]) -> None:
    plan = t.run_migration(source, target, dry_run=True)
    assert (plan.direction, plan.steps) == (direction, steps)


def test_no_migration_between_flavors(t: ServiceTester) -> None:
    with pytest.raises(ServiceCallError) as caught:
        t.run_migration("#knots:1.0.0:0", "1.0.0:0", dry_run=True)
    assert caught.value.error.reason == "no-migration-path"
    assert "different flavors" in caught.value.error.message


def test_uninit_update_names_the_next_version(t: ServiceTester) -> None:
    t.run_uninit("update", next_version="1.1.0:0")
    t.run_uninit("uninstall")  # no hook: nothing to do
    assert t.volume("main", "updates.log").read_text() == "updating to 1.1.0:0\n"

"""Actions, tasks and interfaces of the example packages, unit-tested with startos.sdk.testing."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from startos.protocol.inputspec import InputError
from startos.sdk.testing import ServiceTester

from .conftest import EXAMPLES


def test_hello_world_setup_task_and_credentials(tmp_path: Path) -> None:
    with ServiceTester(EXAMPLES / "hello-world", tmp_path) as t:
        t.run_init("install")
        task = t.tasks["hello-world-setup"]
        assert (task.action_id, task.severity) == ("show-credentials", "critical")
        credentials = t.volume("main", "credentials.json")
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600  # a secret
        password = json.loads(credentials.read_text())["password"]
        result = t.run_action("show-credentials")
        values = {v.name: v for v in result.values}
        assert values["Password"].value == password and values["Password"].masked
        assert values["Username"].value == "admin" and not values["Username"].masked
        t.tasks.clear()
        t.run_init("update", previous_version="0.9.0:0")
        assert t.tasks == {}, "an update keeps the password and asks nothing"


def test_hello_world_greeting_is_validated_and_prefilled(tmp_path: Path) -> None:
    with ServiceTester(EXAMPLES / "hello-world", tmp_path) as t:
        t.run_init("install")
        assert t.action_input("set-greeting").value == {"greeting": "Hello from startos-py", "excited": True}
        with pytest.raises(InputError, match="Greeting: No angle brackets"):
            t.run_action("set-greeting", {"greeting": "<script>"})
        with pytest.raises(InputError, match="Greeting"):
            t.run_action("set-greeting", {"excited": False})
        assert t.run_action("set-greeting", {"greeting": "Howdy", "excited": False}).message == (
            "The greeting is now: Howdy"
        )
        assert t.action_input("set-greeting").value == {"greeting": "Howdy", "excited": False}
        description = t.describe(main=False)
        assert [(i.id, i.type, i.port) for i in description.interfaces] == [("main", "ui", 8080)]
        assert {a.id: a.allowed_statuses for a in description.actions}["reset-visits"] == "only-stopped"


def test_wallet_asks_slow_sync_for_access(tmp_path: Path) -> None:
    with ServiceTester(EXAMPLES / "wallet", tmp_path) as t:
        t.run_init("install")
        task = t.tasks["wallet-slow-sync-access"]
        assert (task.package_id, task.action_id, task.severity) == ("slow-sync", "wallet-access", "important")
        assert task.input == {"walletAccess": True} and task.when is not None
        manifest = json.loads((EXAMPLES / "wallet" / "manifest.json").read_text())
        assert manifest["dependencies"]["slow-sync"]["versionRange"] == ">=1.0.0:0 <2.0.0:0"


def test_slow_sync_wallet_access_action(tmp_path: Path) -> None:
    with ServiceTester(EXAMPLES / "slow-sync", tmp_path) as t:
        t.run_init("install")
        assert t.action_input("wallet-access").value == {"walletAccess": False}
        t.run_action("wallet-access", {"walletAccess": True})
        assert t.action_input("wallet-access").value == {"walletAccess": True}
        config = json.loads(t.volume("main", "sync.json").read_text())
        assert config["walletAccess"] is True and config["blocks"] == 30

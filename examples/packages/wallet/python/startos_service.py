"""Wallet's service code: a web page, and a dependency on Slow Sync configured through a task."""

from __future__ import annotations

import json

from startos.sdk import Daemon, HttpCheck, InitContext, Interface, MainContext, Service, python_module

service = Service(
    volumes=["main"],
    interfaces=[Interface("main", "Wallet", port=8090, type="ui", description="Your balance.")],
)

ACCESS_TASK = "wallet-slow-sync-access"


@service.init("install", "update", "restore")
def set_up(ctx: InitContext) -> None:
    """An empty wallet, and a task asking to allow wallets in Slow Sync (prefilled)."""
    wallet = ctx.volume_path("main", "wallet.json")
    if not wallet.exists():
        wallet.write_text(json.dumps({"balance": 0}))
    ctx.create_task(
        "wallet-access",
        package_id="slow-sync",
        replay_id=ACCESS_TASK,
        severity="important",
        reason="Allow wallets in Slow Sync, so Wallet can read its blocks.",
        input={"walletAccess": True},
        when_input_not_matches=True,
    )


@service.main
def main(ctx: MainContext) -> list[Daemon]:
    return [
        Daemon(
            "web",
            argv=python_module("wallet.server"),
            ready=HttpCheck(8090, "/health", display="Wallet page"),
        )
    ]

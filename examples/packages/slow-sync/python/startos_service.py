"""Slow Sync's service code: one daemon that syncs slowly and a check that shows how far it is."""

from __future__ import annotations

from slow_sync import state

from startos.sdk import (
    ActionContext,
    Backup,
    CheckContext,
    CheckResult,
    Daemon,
    FunctionCheck,
    InitContext,
    MainContext,
    Service,
    python_module,
)
from startos.sdk.input import Toggle

# The synced blocks can be fetched again, so backups leave them out.
service = Service(volumes=["main"], backup=Backup(volumes=["main"], exclude=["blocks/**"]))


@service.init("install", "restore")
def write_config(ctx: InitContext) -> None:
    """Default settings: 30 blocks, one per second."""
    state.ensure_config(ctx.volume_path("main"))


def sync_status(ctx: CheckContext) -> CheckResult:
    """Loading with the block count while syncing, success once every block is there."""
    volume = ctx.volume_path("main")
    done, total = state.load_progress(volume), state.load_config(volume)["blocks"]
    if done >= total:
        return CheckResult(result="success", message=f"Synced all {total} blocks")
    return CheckResult(result="loading", message=f"Synced {done} of {total} blocks")


@service.main
def main(ctx: MainContext) -> list[Daemon]:
    return [
        Daemon(
            "sync",
            argv=python_module("slow_sync.daemon"),
            ready=FunctionCheck(sync_status, display="Sync", grace_period=0),
        )
    ]


@service.action(
    "wallet-access",
    "Wallet access",
    description="Let wallets on this server read the synced blocks.",
    input={"walletAccess": Toggle("Allow wallets", description="Wallets may read blocks from Slow Sync.")},
)
def set_wallet_access(ctx: ActionContext, values: dict[str, object]) -> str:
    """Store whether wallets may read blocks."""
    state.update_config(ctx.volume_path("main"), walletAccess=bool(values["walletAccess"]))
    return "Wallets may now read blocks." if values["walletAccess"] else "Wallets may no longer read blocks."


@service.action_input("wallet-access")
def current_wallet_access(ctx: ActionContext) -> dict[str, object]:
    return {"walletAccess": bool(state.load_config(ctx.volume_path("main")).get("walletAccess", False))}

"""Slow Sync's service code: one daemon that syncs slowly and a check that shows how far it is."""

from __future__ import annotations

from slow_sync import state

from startos.sdk import (
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

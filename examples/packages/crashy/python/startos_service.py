"""Crashy's service code: one daemon that exits on a schedule, watched by a command check."""

from __future__ import annotations

from crashy import schedule

from startos.sdk import CommandCheck, Daemon, InitContext, MainContext, Service, python_module

service = Service(volumes=["main"])


@service.init("install")
def write_config(ctx: InitContext) -> None:
    schedule.ensure_config(ctx.volume_path("main"))


@service.main
def main(ctx: MainContext) -> list[Daemon]:
    return [
        Daemon(
            "crashy",
            argv=python_module("crashy.daemon"),
            ready=CommandCheck(python_module("crashy.check"), display="Heartbeat", timeout=5),
            stop_timeout=5,
        )
    ]

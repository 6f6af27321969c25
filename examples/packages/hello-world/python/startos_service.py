"""Hello World's service code: what StartOS runs for it (written against startos.sdk)."""

from __future__ import annotations

import json

from hello_world import settings

from startos.sdk import (
    Backup,
    Daemon,
    HttpCheck,
    InitContext,
    MainContext,
    MigrationContext,
    Oneshot,
    Service,
    UninitContext,
    python_module,
)

service = Service(volumes=["main"], backup=Backup(volumes=["main"], exclude=["*.tmp"]))


@service.init("install", "update", "restore")
def create_defaults(ctx: InitContext) -> None:
    """Write the default settings and an empty visit counter where they are missing."""
    settings.ensure_defaults(ctx.volume_path("main"))


@service.uninit("update")
def note_update(ctx: UninitContext) -> None:
    """Leave a line in the volume saying which version is taking over."""
    with ctx.volume_path("main", "updates.log").open("a") as log:
        log.write(f"updating to {ctx.next_version}\n")


@service.main
def main(ctx: MainContext) -> list[Daemon | Oneshot]:
    """A oneshot checks the settings, then the web server starts; it is ready when /health answers."""
    port = settings.load(ctx.volume_path("main"))["port"]
    return [
        Oneshot("prepare", argv=python_module("hello_world.prepare")),
        Daemon(
            "web",
            argv=python_module("hello_world.server"),
            ready=HttpCheck(port, "/health", display="Web interface"),
            requires=["prepare"],
        ),
    ]


@service.migrate_up("1.0.0:0")
def counter_to_json(ctx: MigrationContext) -> None:
    """Before 1.0.0 the visit count was a bare number in counter.txt; it is now visits.json."""
    old = ctx.volume_path("main", "counter.txt")
    if old.exists():
        count = int(old.read_text().strip() or 0)
        settings.write_atomically(ctx.volume_path("main", settings.VISITS), json.dumps({"visits": count}))
        old.unlink()


@service.migrate_down("1.0.0:0")
def json_to_counter(ctx: MigrationContext) -> None:
    """Going back below 1.0.0: write counter.txt again."""
    new = ctx.volume_path("main", settings.VISITS)
    if new.exists():
        count = json.loads(new.read_text())["visits"]
        ctx.volume_path("main", "counter.txt").write_text(f"{count}\n")
        new.unlink()

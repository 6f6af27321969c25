"""Hello World's service code: what StartOS runs for it (written against startos.sdk)."""

from __future__ import annotations

import json

from hello_world import settings

from startos.sdk import (
    ActionContext,
    ActionResult,
    Backup,
    Daemon,
    HttpCheck,
    InitContext,
    Interface,
    MainContext,
    MigrationContext,
    Oneshot,
    Service,
    UninitContext,
    Value,
    python_module,
)
from startos.sdk.input import Pattern, Text, Toggle

service = Service(
    volumes=["main"],
    backup=Backup(volumes=["main"], exclude=["*.tmp"]),
    interfaces=[
        Interface(
            "main",
            "Web interface",
            port=settings.DEFAULTS["port"],
            type="ui",
            description="The greeting page, with its visitor counter.",
        )
    ],
)

SETUP_TASK = "hello-world-setup"


@service.init("install", "update", "restore")
def create_defaults(ctx: InitContext) -> None:
    """Write the default settings, an empty visit counter and the admin password where missing.

    A fresh install asks the user to look at the generated password first (a required task).
    """
    created = settings.ensure_credentials(ctx.volume_path("main"))
    settings.ensure_defaults(ctx.volume_path("main"))
    if created:
        ctx.create_task(
            "show-credentials",
            replay_id=SETUP_TASK,
            severity="critical",
            reason="Note the generated admin password before you start Hello World.",
        )


@service.action(
    "show-credentials",
    "Show credentials",
    description="The admin user name and its generated password.",
    group="Setup",
)
def show_credentials(ctx: ActionContext, _input: None) -> ActionResult:
    """The generated credentials; the password is masked until revealed."""
    credentials = settings.load_credentials(ctx.volume_path("main"))
    return ActionResult(
        message="Keep the password somewhere safe: it is not shown anywhere else.",
        values=[
            Value("Username", credentials["username"]),
            Value("Password", credentials["password"], masked=True, description="Generated at install"),
        ],
    )


@service.action(
    "reset-visits",
    "Reset visits",
    description="Set the visitor counter back to zero.",
    warning="The visit count is lost for good.",
    group="Settings",
    allowed_statuses="only-stopped",
)
def reset_visits(ctx: ActionContext, _input: None) -> str:
    """Only while stopped: the server writes the counter while it runs."""
    settings.write_atomically(ctx.volume_path("main", settings.VISITS), json.dumps({"visits": 0}))
    return "The visitor counter is back to zero."


GREETING_INPUT = {
    "greeting": Text(
        "Greeting",
        required=True,
        max_length=200,
        patterns=[Pattern(r"^[^<>]*$", "No angle brackets")],
        description="What the page says before the visitor count.",
    ),
    "excited": Toggle("Excited", description="End the greeting with an exclamation mark."),
}


@service.action(
    "set-greeting",
    "Set greeting",
    description="Change what the page says (takes effect at the next start).",
    group="Settings",
    input=GREETING_INPUT,
)
def set_greeting(ctx: ActionContext, values: dict[str, object]) -> str:
    """Store the new greeting in the settings."""
    greeting = str(values["greeting"]).rstrip("!") + ("!" if values["excited"] else "")
    settings.update(ctx.volume_path("main"), greeting=greeting)
    return f"The greeting is now: {greeting}"


@service.action_input("set-greeting")
def current_greeting(ctx: ActionContext) -> dict[str, object]:
    """Prefill the form with the greeting in use."""
    greeting = str(settings.load(ctx.volume_path("main"))["greeting"])
    return {"greeting": greeting.rstrip("!"), "excited": greeting.endswith("!")}


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

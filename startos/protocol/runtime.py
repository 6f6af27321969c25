"""The host <-> service-runtime protocol: every frame, as strict MessagePack records.

One ``python -m startos.runtime`` process runs inside each service's sandbox, imports the package's
Python code (untrusted) and talks to the host over one stream socket of length-prefixed MessagePack
frames (:mod:`startos.protocol.framing`). Both sides send *calls* and answer them with *replies*:

* host -> runtime: :class:`RuntimeCall` ``{id, request}`` (``request`` is one of
  :data:`RuntimeRequest`), answered by :class:`RuntimeReply` ``{id, result | error}``; and
  :class:`EffectReply`, the host's answer to an effect call.
* runtime -> host: :class:`EffectCall` ``{id, effect}`` for effects that need an answer
  (:data:`EffectRequest`), :class:`EffectNotice` ``{effect}`` for one-way reports
  (:data:`EffectNotification`), and :class:`RuntimeReply`.

Each direction decodes into its own union (:data:`ToRuntime`, :data:`ToHost`), so a frame of the
wrong direction, an unknown tag or an unknown field is a decode error, never a silent default.
Call ids are positive integers chosen by the caller, unique per direction and connection.

A daemon of the service reports progress to the runtime over ``$STARTOS_RUN/effects.sock`` with
frames of :data:`DaemonFrame` (see :mod:`startos.sdk`); the runtime forwards them as notices.

Lifecycle order the host follows (the *newer* package code always runs a migration, because it is
the one that knows both data formats):

* install: ``RunInit(kind="install")``; restore: ``RunInit(kind="restore")``;
  start: ``Describe()``, then the daemons; uninstall: ``RunUninit(kind="uninstall")``.
* update A -> B (B newer): old runtime ``RunUninit(kind="update", next_version=B)``; new runtime
  ``RunMigration(from_version=A, to_version=B)`` then ``RunInit(kind="update", previous_version=A)``.
* downgrade A -> B (B older): old runtime ``RunUninit(kind="update", next_version=B)`` then
  ``RunMigration(from_version=A, to_version=B)`` (its ``down`` steps); new runtime
  ``RunInit(kind="update", previous_version=A)``. ``dry_run=True`` plans a migration without
  running it, so an impossible downgrade is refused before anything is stopped.

Versions travel as exver text (``1.2.0:0``); the side that uses one parses it with
:class:`startos.s9pk.ExtendedVersion` (this module stays free of the s9pk package so the
runtime starts fast).
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from startos.protocol.base import Message
from startos.protocol.service_items import (
    ActionDecl,
    ActionInput,
    ActionOutcome,
    ClearTask,
    CreateTask,
    GetActionInput,
    InterfaceDecl,
    RunAction,
    TaskCreated,
    items_problem,
)

__all__ = [
    "EFFECT_REPLY_TYPES",
    "PROTOCOL_VERSION",
    "REPLY_TYPES",
    "BackupSpec",
    "BackupVolume",
    "CheckResult",
    "CommandReady",
    "ContainerIp",
    "DaemonFrame",
    "DaemonSpec",
    "Describe",
    "Done",
    "EffectCall",
    "EffectNotice",
    "EffectNotification",
    "EffectReply",
    "EffectRequest",
    "EffectResult",
    "FunctionReady",
    "GetContainerIp",
    "HealthCheckDecl",
    "HttpReady",
    "InitKind",
    "MigrationDone",
    "MigrationStep",
    "OneshotSpec",
    "Ping",
    "ReadyCheck",
    "RemoteError",
    "ReportProgress",
    "RunCheck",
    "RunHealthCheck",
    "RunInit",
    "RunMigration",
    "RunUninit",
    "RuntimeCall",
    "RuntimeReply",
    "RuntimeRequest",
    "RuntimeResult",
    "ServiceDescription",
    "Shutdown",
    "TcpReady",
    "ToHost",
    "ToRuntime",
    "UninitKind",
    "description_problem",
    "find_cycle",
    "reply_type",
]

#: Bumped when a message changes incompatibly; the runtime reports its own in ``Describe``.
PROTOCOL_VERSION = 1

ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
VOLUME_ID_PATTERN = r"^(BACKUP|[a-z0-9]+(-[a-z0-9]+)*)$"

#: Daemon, oneshot and check ids (same rule as package and volume ids).
ItemId = Annotated[str, Meta(pattern=ID_PATTERN, max_length=63)]
VolumeId = Annotated[str, Meta(pattern=VOLUME_ID_PATTERN, max_length=63)]
CallId = Annotated[int, Meta(ge=1, le=2**53)]
Port = Annotated[int, Meta(ge=1, le=65535)]
Seconds = Annotated[float, Meta(gt=0, le=7 * 24 * 3600)]
GraceSeconds = Annotated[float, Meta(ge=0, le=24 * 3600)]
HttpStatus = Annotated[int, Meta(ge=100, le=599)]
VersionText = Annotated[str, Meta(min_length=1, max_length=256)]
Line = Annotated[str, Meta(max_length=1024)]  # one readable line
Arg = Annotated[str, Meta(max_length=65536)]
Argv = Annotated[tuple[Arg, ...], Meta(min_length=1, max_length=4096)]
EnvName = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256)]
Env = Annotated[dict[EnvName, Arg], Meta(max_length=1024)]
Glob = Annotated[str, Meta(min_length=1, max_length=4096)]
Debug = Annotated[str, Meta(max_length=65536)]  # a traceback, for the logs
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]

InitKind = Literal["install", "update", "restore"]
UninitKind = Literal["uninstall", "update"]
HealthResult = Literal["success", "failure", "starting", "loading", "waiting", "disabled"]


# -- readiness checks ---------------------------------------------------------------------------
# The runtime runs every check (it lives inside the service's network, so 127.0.0.1 always
# reaches the daemon, whatever the sandbox backend); the host asks with RunCheck. ``display`` is
# the name the UI shows for the check (None: not shown as a health check); a failure within
# ``grace_period`` seconds of the daemon's start counts as "starting" (StartOS: 10 s).


class HttpReady(Message, frozen=True, kw_only=True, tag="http"):
    """Ready when ``GET http://host:port/path`` answers one of ``expected_status``."""

    port: Port
    path: Annotated[str, Meta(pattern=r"^/", max_length=2048)] = "/"
    expected_status: Annotated[tuple[HttpStatus, ...], Meta(min_length=1, max_length=64)] = (200,)
    host: Annotated[str, Meta(min_length=1, max_length=255)] = "127.0.0.1"
    timeout: Seconds = 5.0
    grace_period: GraceSeconds = 10.0
    display: Line | None = None


class TcpReady(Message, frozen=True, kw_only=True, tag="tcp"):
    """Ready when a TCP connection to ``host:port`` succeeds."""

    port: Port
    host: Annotated[str, Meta(min_length=1, max_length=255)] = "127.0.0.1"
    timeout: Seconds = 5.0
    grace_period: GraceSeconds = 10.0
    display: Line | None = None


class CommandReady(Message, frozen=True, kw_only=True, tag="command"):
    """Ready when ``argv`` exits with status 0 (its last output line is the failure message)."""

    argv: Argv
    env: Env = {}
    timeout: Seconds = 10.0
    grace_period: GraceSeconds = 10.0
    display: Line | None = None


class FunctionReady(Message, frozen=True, kw_only=True, tag="function"):
    """A Python function of the package decides (it may report ``loading`` with a message)."""

    timeout: Seconds = 10.0
    grace_period: GraceSeconds = 10.0
    display: Line | None = None


ReadyCheck = HttpReady | TcpReady | CommandReady | FunctionReady


class HealthCheckDecl(Message, frozen=True, kw_only=True):
    """One scheduled check; the host runs each in its own HealthCheckActor.

    A daemon's ``ready`` check is one of them, with the daemon's id and ``daemon`` set to it;
    stand-alone checks come from :class:`startos.sdk.HealthCheck`. ``name`` None means internal:
    never shown, but daemons and oneshots may ``require`` it, so it gates what starts after it.
    ``requires`` names checks that must succeed first (until then this one is *waiting*).
    ``daemon`` is the daemon the check watches: its grace period restarts with the daemon, and
    while the daemon is not running the check waits. Checks run every ``fast_interval`` seconds
    until the first settled result (success, or failure after the grace period), then every
    ``interval`` seconds. ``enabled`` False shows the check as *disabled* and never runs it.
    """

    id: ItemId
    name: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    check: ReadyCheck
    daemon: ItemId | None = None
    requires: Annotated[tuple[ItemId, ...], Meta(max_length=64)] = ()
    interval: Seconds = 30.0
    fast_interval: Seconds = 1.0
    enabled: bool = True


# -- the service description --------------------------------------------------------------------


class DaemonSpec(Message, frozen=True, kw_only=True):
    """A long-running process of the service; ``requires`` are ids started (ready) before it.

    ``env`` holds only the package's own variables; the host adds the sandbox's ``STARTOS_*``
    environment when it spawns the daemon. ``cwd`` is a sandbox path; ``user`` a user name.
    """

    id: ItemId
    argv: Argv
    env: Env = {}
    cwd: Annotated[str, Meta(max_length=4096)] | None = None
    user: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    ready: ReadyCheck | None = None
    requires: Annotated[tuple[ItemId, ...], Meta(max_length=256)] = ()
    stop_signal: Literal["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"] = "SIGTERM"
    stop_timeout: Seconds = 30.0


class OneshotSpec(Message, frozen=True, kw_only=True):
    """A process that must exit with status 0 before anything that ``requires`` it starts."""

    id: ItemId
    argv: Argv
    env: Env = {}
    cwd: Annotated[str, Meta(max_length=4096)] | None = None
    user: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    requires: Annotated[tuple[ItemId, ...], Meta(max_length=256)] = ()
    timeout: Seconds | None = None  # None: no limit


class BackupVolume(Message, frozen=True, kw_only=True):
    """A volume to back up, without the paths matching ``exclude`` (globs relative to the volume)."""

    id: VolumeId
    exclude: Annotated[tuple[Glob, ...], Meta(max_length=1024)] = ()


class BackupSpec(Message, frozen=True, kw_only=True):
    """What a backup of this service holds (used by the backup issue)."""

    volumes: Annotated[tuple[BackupVolume, ...], Meta(max_length=256)] = ()


class MigrationStep(Message, frozen=True, kw_only=True):
    """A data migration to ``version``: ``up`` from the previous version, ``down`` back from it."""

    version: VersionText
    up: bool
    down: bool


class ServiceDescription(Message, frozen=True, kw_only=True, tag="description"):
    """Everything the host needs to run the service (the answer to :class:`Describe`).

    Validated on decode: item ids are unique across daemons and oneshots, ``requires`` names
    known items and has no cycles, backed-up volumes are declared volumes.
    """

    protocol: Annotated[int, Meta(ge=1)]
    sdk_version: Line
    volumes: Annotated[tuple[VolumeId, ...], Meta(max_length=256)]
    daemons: Annotated[tuple[DaemonSpec, ...], Meta(max_length=256)] = ()
    oneshots: Annotated[tuple[OneshotSpec, ...], Meta(max_length=256)] = ()
    backup: BackupSpec = BackupSpec()
    migrations: Annotated[tuple[MigrationStep, ...], Meta(max_length=4096)] = ()
    init: tuple[InitKind, ...] = ()  # the init kinds the package has a hook for
    uninit: tuple[UninitKind, ...] = ()
    main_ran: bool = True  # False when described with Describe(main=False): no daemons listed
    checks: Annotated[tuple[HealthCheckDecl, ...], Meta(max_length=256)] = ()  # only when main ran
    actions: Annotated[tuple[ActionDecl, ...], Meta(max_length=256)] = ()
    interfaces: Annotated[tuple[InterfaceDecl, ...], Meta(max_length=64)] = ()

    def __post_init__(self) -> None:
        problem = description_problem(self)
        if problem is not None:
            raise ValueError(problem)

    def item_ids(self) -> list[str]:
        """Daemon and oneshot ids, daemons first."""
        return [d.id for d in self.daemons] + [o.id for o in self.oneshots]

    def start_order(self) -> list[str]:
        """Item ids in an order that starts every item after everything it requires."""
        items: list[DaemonSpec | OneshotSpec] = [*self.daemons, *self.oneshots]
        requires = {item.id: item.requires for item in items}
        order: list[str] = []
        done: set[str] = set()

        def visit(item: str) -> None:
            if item in done:
                return
            done.add(item)
            for needed in requires[item]:
                if needed in requires:  # a health check id: not started, just waited for
                    visit(needed)
            order.append(item)

        for item in requires:
            visit(item)
        return order


def description_problem(description: ServiceDescription) -> str | None:
    """The first rule ``description`` breaks, as one line, or None."""
    items: list[DaemonSpec | OneshotSpec] = [*description.daemons, *description.oneshots]
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            return f"item id {item.id!r} is used twice (daemon and oneshot ids share one namespace)"
        seen.add(item.id)
    problem = items_problem(description.checks, description.actions, description.interfaces, seen)
    if problem is not None:
        return problem
    check_ids = {check.id for check in description.checks}
    for item in items:
        for needed in item.requires:
            if needed == item.id:
                return f"{item.id!r} requires itself"
            if needed not in seen and needed not in check_ids:
                return f"{item.id!r} requires {needed!r}, which is not a daemon, oneshot or health check"
    graph = {item.id: tuple(r for r in item.requires if r in seen) for item in items}
    cycle = find_cycle(graph)
    if cycle:
        return "requires form a cycle: " + " -> ".join(cycle)
    if len(set(description.volumes)) != len(description.volumes):
        return "a volume is listed twice"
    for backed in description.backup.volumes:
        if backed.id not in description.volumes:
            return f"backup names volume {backed.id!r}, which the service does not declare"
    versions = [step.version for step in description.migrations]
    if len(set(versions)) != len(versions):
        return "a migration version is listed twice"
    return None


def find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# -- host -> runtime requests -------------------------------------------------------------------


class Describe(Message, frozen=True, kw_only=True, tag="describe"):
    """Describe the service; with ``main=False`` the package's main function is not run (no daemons)."""

    main: bool = True


class RunInit(Message, frozen=True, kw_only=True, tag="run-init"):
    """Run the package's init hook of ``kind`` (install, update, restore); a missing hook is a no-op."""

    kind: InitKind
    previous_version: VersionText | None = None  # required for "update"

    def __post_init__(self) -> None:
        if self.kind == "update" and self.previous_version is None:
            raise ValueError("an update init needs previous_version")


class RunUninit(Message, frozen=True, kw_only=True, tag="run-uninit"):
    """Run the package's uninit hook of ``kind`` (uninstall, update); a missing hook is a no-op."""

    kind: UninitKind
    next_version: VersionText | None = None  # required for "update"

    def __post_init__(self) -> None:
        if self.kind == "update" and self.next_version is None:
            raise ValueError("an update uninit needs next_version")


class RunMigration(Message, frozen=True, kw_only=True, tag="run-migration"):
    """Migrate the data from ``from_version`` to ``to_version`` (see the module docstring)."""

    from_version: VersionText
    to_version: VersionText
    dry_run: bool = False


class RunCheck(Message, frozen=True, kw_only=True, tag="run-check"):
    """Run the readiness check of ``daemon`` once."""

    daemon: ItemId


class RunHealthCheck(Message, frozen=True, kw_only=True, tag="run-health-check"):
    """Run the health check ``check`` once (answered with :class:`CheckResult`)."""

    check: ItemId


class Ping(Message, frozen=True, kw_only=True, tag="ping"):
    """Answered with :class:`Done` as soon as the runtime reads it, even if the code failed to load."""


class Shutdown(Message, frozen=True, kw_only=True, tag="shutdown"):
    """Answered with :class:`Done`; then the runtime exits."""


RuntimeRequest = (
    Describe
    | RunInit
    | RunUninit
    | RunMigration
    | RunCheck
    | RunHealthCheck
    | GetActionInput
    | RunAction
    | Ping
    | Shutdown
)


# -- runtime -> host results --------------------------------------------------------------------


class Done(Message, frozen=True, kw_only=True, tag="done"):
    """The request succeeded and has nothing to report."""


class MigrationDone(Message, frozen=True, kw_only=True, tag="migration-done"):
    """The migration steps run (or, for a dry run, planned), in order."""

    direction: Literal["up", "down", "none"]
    steps: Annotated[tuple[VersionText, ...], Meta(max_length=4096)] = ()


class CheckResult(Message, frozen=True, kw_only=True, tag="check-result"):
    """One run of a check: a StartOS health result and a message (always given for failure/loading)."""

    result: HealthResult
    message: Line | None = None


RuntimeResult = ServiceDescription | Done | MigrationDone | CheckResult | ActionInput | ActionOutcome

REPLY_TYPES: dict[type, type] = {
    Describe: ServiceDescription,
    RunInit: Done,
    RunUninit: Done,
    RunMigration: MigrationDone,
    RunCheck: CheckResult,
    RunHealthCheck: CheckResult,
    GetActionInput: ActionInput,
    RunAction: ActionOutcome,
    Ping: Done,
    Shutdown: Done,
}


def reply_type(request: object) -> type:
    """The result type a request must be answered with."""
    return REPLY_TYPES[type(request)]


class RemoteError(Message, frozen=True, kw_only=True):
    """Why a call failed; ``message`` is one line, ``debug`` a traceback for the logs.

    ``reason``: ``hook-failed`` (package code raised), ``load-failed`` (the package code could not
    be imported), ``invalid`` (the package declared or returned something the SDK refuses),
    ``no-migration-path`` (no chain of steps joins the versions), ``bad-request`` (the call names
    something the package does not have), ``internal`` (a bug on the answering side). The host
    picks the error kind shown to users itself; it never trusts a kind sent by the runtime.
    """

    reason: Literal["hook-failed", "load-failed", "invalid", "no-migration-path", "bad-request", "internal"]
    message: Line
    hook: Line | None = None  # e.g. "init install", "main", "check web", "migration up 1.1.0:0"
    debug: Debug | None = None


# -- runtime -> host effects --------------------------------------------------------------------


class ReportProgress(Message, frozen=True, kw_only=True, tag="report-progress"):
    """Long-running progress of a daemon (``daemon`` None: reported by a hook in the runtime)."""

    daemon: ItemId | None = None
    done: Count
    total: Count | None = None
    message: Line | None = None

    def __post_init__(self) -> None:
        if self.total is not None and self.done > self.total:
            raise ValueError(f"done ({self.done}) is more than total ({self.total})")


class GetContainerIp(Message, frozen=True, kw_only=True, tag="get-container-ip"):
    """The service's IP address as other services and the host reach it."""


class ContainerIp(Message, frozen=True, kw_only=True, tag="container-ip"):
    ip: Annotated[str, Meta(min_length=1, max_length=64)]


EffectRequest = GetContainerIp | CreateTask | ClearTask
EffectNotification = ReportProgress
EffectResult = ContainerIp | TaskCreated | Done

EFFECT_REPLY_TYPES: dict[type, type] = {GetContainerIp: ContainerIp, CreateTask: TaskCreated, ClearTask: Done}

#: What a daemon sends the runtime over ``$STARTOS_RUN/effects.sock``.
DaemonFrame = ReportProgress


# -- envelopes ----------------------------------------------------------------------------------


class RuntimeCall(Message, frozen=True, kw_only=True, tag="call"):
    """host -> runtime: run ``request``; answered by a :class:`RuntimeReply` with the same id."""

    id: CallId
    request: RuntimeRequest


class RuntimeReply(Message, frozen=True, kw_only=True, tag="reply"):
    """runtime -> host: the answer to call ``id``: exactly one of ``result`` and ``error``."""

    id: CallId
    result: RuntimeResult | None = None
    error: RemoteError | None = None

    def __post_init__(self) -> None:
        if (self.result is None) == (self.error is None):
            raise ValueError("a reply carries exactly one of result and error")


class EffectCall(Message, frozen=True, kw_only=True, tag="effect"):
    """runtime -> host: perform ``effect``; answered by an :class:`EffectReply` with the same id."""

    id: CallId
    effect: EffectRequest


class EffectNotice(Message, frozen=True, kw_only=True, tag="notice"):
    """runtime -> host: a one-way report; nothing answers it."""

    effect: EffectNotification


class EffectReply(Message, frozen=True, kw_only=True, tag="effect-reply"):
    """host -> runtime: the answer to effect call ``id``: exactly one of ``result`` and ``error``."""

    id: CallId
    result: EffectResult | None = None
    error: RemoteError | None = None

    def __post_init__(self) -> None:
        if (self.result is None) == (self.error is None):
            raise ValueError("a reply carries exactly one of result and error")


#: Every frame the runtime may receive.
ToRuntime = RuntimeCall | EffectReply
#: Every frame the host may receive.
ToHost = RuntimeReply | EffectCall | EffectNotice

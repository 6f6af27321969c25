"""Services: install, lifecycle, logs and stats — RPC methods and actor messages."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from startos.protocol.base import Message, Params, Result
from startos.protocol.rpc import NoParams, method
from startos.protocol.service_items import CreateTask

Desired = Literal["stopped", "running", "restarting"]

# -- RPC params and results ----------------------------------------------------------------------


class PackageIdParams(Params, frozen=True):
    id: str


class UninstallParams(Params, frozen=True):
    id: str
    force: bool = False  # even though other services require it


class InstallParams(Params, frozen=True):
    """Install (or update to) the package file at ``path`` on the server."""

    path: str
    accept_new_key: bool = False


class SideloadParams(Params, frozen=True):
    accept_new_key: bool = False


class SideloadResult(Result, frozen=True):
    upload: str  # PUT the .s9pk's bytes to /rest/upload/{upload} within 60 s


class InstallStarted(Result, frozen=True):
    id: str
    version: str
    title: str
    signer: str  # the developer key that signed it (base64 of the raw Ed25519 key)
    update: bool
    alert: str | None = None
    dependency_problems: list[str] = []  # required dependencies missing or out of range (it waits for them)


class PackageSummary(Result, frozen=True):
    id: str
    version: str
    title: str
    state: str
    status: str


class LogsParams(Params, frozen=True):
    id: str
    limit: int | None = msgspec.field(default=None)
    cursor: int | None = None
    before: bool = False
    boot: str | None = None


class LogEntry(msgspec.Struct, frozen=True, rename="camel"):
    cursor: int
    timestamp: float
    boot: str
    source: str
    message: str


class LogsResult(Result, frozen=True):
    entries: list[LogEntry]
    start_cursor: int | None
    end_cursor: int | None


class LogsFollowParams(Params, frozen=True):
    id: str
    limit: int | None = None
    boot: str | None = None


class LogsFollowResult(Result, frozen=True):
    start_cursor: int | None
    guid: str


class AttachParams(Params, frozen=True):
    id: str
    command: list[str] | None = None  # default: an interactive shell
    tty: bool = True
    user: str | None = None


class AttachResult(Result, frozen=True):
    guid: str  # open /ws/rpc/{guid} within 30 s: binary frames carry bytes both ways


class Stats(Result, frozen=True):
    cpu_percent: float
    memory_bytes: int
    processes: int
    memory_limit_bytes: int | None = None


method("package.list", "Installed packages with version, state and status.", NoParams, list[PackageSummary])
method("package.installed-version", "The installed version of a package, or null.", PackageIdParams, str | None)
method(
    "package.install",
    "Install or update from an .s9pk file on the server; progress shows in the state tree.",
    InstallParams,
    InstallStarted,
    mutating=True,
)
method(
    "package.sideload", "Start a sideload: upload the .s9pk to /rest/upload/{upload}.", SideloadParams, SideloadResult
)
method(
    "package.cancel-install", "Cancel an install or update that has not finished.", PackageIdParams, None, mutating=True
)
method(
    "package.uninstall",
    "Stop a service and remove it with its volumes; answers once the removal has begun (state `removing`). "
    "Refused when other services require it, unless `force`.",
    UninstallParams,
    None,
    mutating=True,
)
method("package.start", "Start a service (its desired state becomes running).", PackageIdParams, None, mutating=True)
method("package.stop", "Stop a service.", PackageIdParams, None, mutating=True)
method("package.restart", "Restart a running service.", PackageIdParams, None, mutating=True)
method(
    "package.rebuild",
    "Tear down and rebuild a service's sandbox, keeping its data.",
    PackageIdParams,
    None,
    mutating=True,
)
method("package.logs", "A page of a service's log lines (newest first page by default).", LogsParams, LogsResult)
method(
    "package.logs.follow",
    "Stream a service's new log lines: connect to /ws/rpc/{guid} within 30 s.",
    LogsFollowParams,
    LogsFollowResult,
)
method("package.stats", "CPU, memory and process count of a running service.", PackageIdParams, Stats)
method(
    "package.attach",
    "Run a shell or a command inside a service's sandbox: connect to /ws/rpc/{guid} within 30 s. Binary frames "
    "are the terminal's bytes both ways; text frames are JSON: {resize: [rows, cols]} from the client, "
    "{exit: status} from the server before it closes.",
    AttachParams,
    AttachResult,
)

# -- actor messages ------------------------------------------------------------------------------


class InstallPackage(Message, frozen=True):
    """Install or update from a verified-on-the-way file; replies with ``InstallStarted``."""

    path: str
    accept_new_key: bool = False
    remove_source: bool = False  # an uploaded temp file: delete it when done


class CancelInstall(Message, frozen=True):
    id: str


class UninstallPackage(Message, frozen=True):
    """Remove a service; replies when it is gone (``wait``) or once the removal has begun."""

    id: str
    wait: bool = True
    force: bool = False  # uninstall even though other services require it


class SetDesired(Message, frozen=True):
    """Ask a service to reach ``desired``; replies once the request is recorded (not when reached)."""

    id: str
    desired: Desired


class RebuildPackage(Message, frozen=True):
    id: str


class ListPackages(Message, frozen=True):
    pass


class GetLogs(Message, frozen=True):
    id: str
    limit: int = 50
    cursor: int | None = None
    before: bool = False
    boot: str | None = None


class FollowLogs(Message, frozen=True):
    id: str
    limit: int = 0
    boot: str | None = None


class GetStats(Message, frozen=True):
    id: str


class Attach(Message, frozen=True):
    """Start a process in the service's sandbox for ``package attach``; replies with an ``Attached``."""

    id: str
    command: list[str] | None = None
    tty: bool = True
    user: str | None = None


class DaemonExited(Message, frozen=True):
    """Told by a daemon's watcher greenlet to its own actor: the process is gone."""

    status: int


class DaemonReady(Message, frozen=True):
    """Told upward by a DaemonActor once its readiness check passed."""

    daemon: str
    generation: int


class Reconcile(Message, frozen=True):
    """Told by a ServiceActor to itself: compare desired and actual, act on the difference."""


class RunHook(Message, frozen=True):
    """Asked of a ServiceActor by the installer: an init/uninit hook, a migration, or ``stop``."""

    hook: Literal["init", "uninit", "migration", "migration-to", "stop"]
    kind: str | None = None
    other_version: str | None = None
    timeout: float = 300.0


# -- what a ServiceActor's parts report to it (past tense, told; never leave the process) ----------


class ProgressReported(Message, frozen=True):
    """Told by the runtime's effect handler: a daemon (``main``: a hook) reported its progress."""

    daemon: str
    done: int
    total: int | None = None
    message: str | None = None


class OneshotFinished(Message, frozen=True):
    """Told by a oneshot's job greenlet: it exited 0 (``failure`` None) or failed, saying how."""

    oneshot: str
    generation: int
    failure: str | None = None


class RuntimeExited(Message, frozen=True):
    """Told by the runtime's watcher greenlet: the sandboxed runtime process is gone."""

    status: int


class GetRuntimeConnection(Message, frozen=True):
    """Asked by a ServiceActor of its RuntimeActor: the connection to call the package through."""


class Flush(Message, frozen=True):
    """Asked by a ServiceActor's job of its own actor: answered once every message told to it
    before (the package's effects during a hook or an action) has been handled."""


class PidsDue(Message, frozen=True):
    """Told by the ServiceActor's timer to itself: remember the service's processes now."""


class TaskRequested(Message, frozen=True):
    """Told by the runtime's effect handler: the package created (or replaced) a task.

    ``active`` was worked out off the actor's loop (it may ask the target's current input).
    """

    task: CreateTask
    active: bool


class TaskWithdrawn(Message, frozen=True):
    """Told by the runtime's effect handler: the package cleared its task ``replay_id``."""

    replay_id: str


class TaskTargetChanged(Message, frozen=True):
    """Told by package ``package_id``'s ServiceActor to each package holding tasks on its actions.

    ``ran``: the action that just ran (its tasks without a ``when`` are done), or None (the target
    started, or was asked to re-evaluate). ``inputs``: the current input of each action the tasks
    point at, where known; a task whose action is missing here keeps its state.
    """

    package_id: str
    ran: str | None = None
    inputs: dict[str, dict[str, Any]] = {}


# -- commands to a ServiceActor (asked; each replies with the store revision that recorded it) ----


class DismissTask(Message, frozen=True):
    """Asked of a package's ServiceActor: remove its task ``replay_id`` (a critical one only with ``force``)."""

    replay_id: str
    force: bool = False

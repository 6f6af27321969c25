"""Services over RPC: install, sideload, lifecycle, logs and stats."""

from __future__ import annotations

from typing import Any

from startos.actors.facade import FacadeActor
from startos.actors.registry import rpc
from startos.actors.services.install import not_a_package_file
from startos.protocol.calls import CallContext
from startos.protocol.claims import AttachClaim, StreamClaim, UploadClaim
from startos.protocol.packages import (
    Attach,
    AttachParams,
    AttachResult,
    CancelInstall,
    FollowLogs,
    GetLogs,
    GetStats,
    InstallPackage,
    InstallParams,
    InstallStarted,
    ListPackages,
    LogsFollowParams,
    LogsFollowResult,
    LogsParams,
    LogsResult,
    PackageIdParams,
    PackageSummary,
    RebuildPackage,
    SetDesired,
    SideloadParams,
    SideloadResult,
    Stats,
    UninstallPackage,
    UninstallParams,
)
from startos.protocol.rpc import NoParams
from startos.s9pk.errors import NotAnS9pkError

INSTALL_TIMEOUT = 600.0


@rpc("package.list")
def _list(facade: FacadeActor, _params: NoParams, _ctx: CallContext) -> list[PackageSummary]:
    result: list[PackageSummary] = facade.ask("services", ListPackages())
    return result


@rpc("package.installed-version")
def _installed_version(facade: FacadeActor, params: PackageIdParams, _ctx: CallContext) -> str | None:
    packages: list[PackageSummary] = facade.ask("services", ListPackages())
    for package in packages:
        if package.id == params.id and package.state != "installing":
            return package.version or None
    return None


@rpc("package.install")
def _install(facade: FacadeActor, params: InstallParams, _ctx: CallContext) -> InstallStarted:
    """Install from a path on the server: a regular file (or a link to one) that is an s9pk.

    Whatever keeps the path from being opened or recognised as an s9pk (missing, unreadable, a
    directory, a FIFO, a device, other bytes) gets one and the same answer, so a client cannot
    probe which files exist on the server. The archive reader opens without blocking and checks
    the opened descriptor, so a FIFO answers at once.
    """
    try:
        started: InstallStarted = facade.directory.ask(
            "services", InstallPackage(path=params.path, accept_new_key=params.accept_new_key), timeout=INSTALL_TIMEOUT
        )
    except NotAnS9pkError:
        raise not_a_package_file(params.path) from None
    return started


@rpc("package.sideload")
def _sideload(facade: FacadeActor, params: SideloadParams, _ctx: CallContext) -> SideloadResult:
    return SideloadResult(upload=facade.hold_claim(UploadClaim(accept_new_key=params.accept_new_key), window=60.0))


@rpc("package.cancel-install")
def _cancel(facade: FacadeActor, params: PackageIdParams, _ctx: CallContext) -> None:
    facade.ask("services", CancelInstall(id=params.id))


@rpc("package.uninstall")
def _uninstall(facade: FacadeActor, params: UninstallParams, _ctx: CallContext) -> None:
    facade.ask("services", UninstallPackage(id=params.id, wait=False, force=params.force))


@rpc("package.start")
def _start(facade: FacadeActor, params: PackageIdParams, _ctx: CallContext) -> int:
    return int(facade.ask("services", SetDesired(id=params.id, desired="running")))


@rpc("package.stop")
def _stop(facade: FacadeActor, params: PackageIdParams, _ctx: CallContext) -> int:
    return int(facade.ask("services", SetDesired(id=params.id, desired="stopped")))


@rpc("package.restart")
def _restart(facade: FacadeActor, params: PackageIdParams, _ctx: CallContext) -> int:
    return int(facade.ask("services", SetDesired(id=params.id, desired="restarting")))


@rpc("package.rebuild")
def _rebuild(facade: FacadeActor, params: PackageIdParams, _ctx: CallContext) -> None:
    facade.directory.ask("services", RebuildPackage(id=params.id), timeout=INSTALL_TIMEOUT)


def _cursors(entries: list[Any]) -> tuple[int | None, int | None]:
    return (entries[0].cursor, entries[-1].cursor) if entries else (None, None)


@rpc("package.logs")
def _logs(facade: FacadeActor, params: LogsParams, _ctx: CallContext) -> LogsResult:
    limit = 50 if params.limit is None else max(1, min(params.limit, 10_000))
    entries = facade.ask(
        "services", GetLogs(id=params.id, limit=limit, cursor=params.cursor, before=params.before, boot=params.boot)
    )
    start, end = _cursors(entries)
    return LogsResult(entries=entries, start_cursor=start, end_cursor=end)


@rpc("package.logs.follow")
def _logs_follow(facade: FacadeActor, params: LogsFollowParams, _ctx: CallContext) -> LogsFollowResult:
    limit = 0 if params.limit is None else max(0, min(params.limit, 10_000))
    recent, follower = facade.ask("services", FollowLogs(id=params.id, limit=limit, boot=params.boot))
    guid = facade.hold_claim(StreamClaim(source=follower, initial=tuple(recent)), window=30.0)
    return LogsFollowResult(start_cursor=recent[0].cursor if recent else None, guid=guid)


@rpc("package.stats")
def _stats(facade: FacadeActor, params: PackageIdParams, _ctx: CallContext) -> Stats:
    result: Stats = facade.ask("services", GetStats(id=params.id))
    return result


@rpc("package.attach")
def _attach(facade: FacadeActor, params: AttachParams, _ctx: CallContext) -> AttachResult:
    session = facade.ask("services", Attach(id=params.id, command=params.command, tty=params.tty, user=params.user))
    return AttachResult(guid=facade.hold_claim(AttachClaim(session=session), window=30.0))

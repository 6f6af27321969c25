"""The ServiceActor's jobs: what runs on its greenlets (or threads) and reports back with a message.

None of these functions touches the actor: each gets what it needs as arguments and tells the
actor how it ended (``OneshotFinished``, ``RuntimeExited``...), so only the actor's handlers change
what it knows.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from gevent.fileobject import FileObject

from startos.actors.services.checks import GONE
from startos.actors.services.daemon import DaemonLaunch, describe_status
from startos.actors.services.journal import Journal
from startos.errors import StartOSError
from startos.paths import is_valid_id, shown
from startos.protocol import runtime as wire
from startos.protocol.errors import ErrorKind
from startos.protocol.packages import OneshotFinished, RunHook
from startos.runtime.host import RuntimeConnection, check_description
from startos.sandbox import close_now
from startos.sandbox.base import Limits, Sandbox, SandboxSpec

__all__ = [
    "MainPlan",
    "describe_main",
    "kill_orphans",
    "read_pids",
    "run_hook",
    "run_oneshot",
    "sandbox_spec",
    "sweep_orphans",
    "tell_quietly",
    "volume_ids",
    "write_pids",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MainPlan:
    """What the package's main function says to run: daemons, oneshots, and health checks."""

    launches: dict[str, DaemonLaunch]
    oneshots: dict[str, wire.OneshotSpec]
    requires: dict[str, list[str]]  # item id -> the items (and checks) it waits for
    checks: tuple[wire.HealthCheckDecl, ...]


def describe_main(runtime: RuntimeConnection, manifest_volumes: tuple[str, ...], package_id: str) -> MainPlan:
    """Ask the package what to run (its main function), checked against its manifest."""
    description = runtime.describe(main=True, timeout=60)
    check_description(description, manifest_volumes or description.volumes, package_id)
    launches: dict[str, DaemonLaunch] = {}
    requires: dict[str, list[str]] = {}
    for daemon in description.daemons:
        launches[daemon.id] = DaemonLaunch(
            daemon.id,
            list(daemon.argv),
            env=dict(daemon.env),
            cwd=daemon.cwd,
            user=daemon.user,
            term_timeout=daemon.stop_timeout,
            stop_signal=daemon.stop_signal,
        )
        requires[daemon.id] = list(daemon.requires)
    for oneshot in description.oneshots:
        requires[oneshot.id] = list(oneshot.requires)
    oneshots = {o.id: o for o in description.oneshots}
    return MainPlan(launches=launches, oneshots=oneshots, requires=requires, checks=description.checks)


def sandbox_spec(package_dir: Path, package_id: str, version: str, limits: Limits) -> SandboxSpec:
    """The sandbox of one installed version: its code, its volumes, its run and tmp directories."""
    from startos.actors.services.install import version_dir

    return SandboxSpec(
        package_id=package_id,
        code_dir=version_dir(package_dir, version),
        volumes_dir=package_dir / "volumes",
        volume_ids=volume_ids(package_dir / "volumes", package_id),
        run_dir=package_dir / "run",
        tmp_dir=package_dir / "tmp",
        limits=limits,
    )


def sweep_orphans(pidfile: Path) -> int:
    """Kill the processes a previous startd recorded in ``pidfile`` and died without stopping;
    the file goes. Returns how many were killed."""
    killed = kill_orphans(read_pids(pidfile))
    pidfile.unlink(missing_ok=True)
    return killed


def volume_ids(volumes: Path, package_id: str) -> tuple[str, ...]:
    """The volumes on disk that are volume ids; anything else there is never mounted."""
    if not volumes.exists():
        return ()
    names = sorted(p.name for p in volumes.iterdir())
    strangers = [name for name in names if not is_valid_id(name, "volume id")]
    if strangers:
        listed = ", ".join(map(shown, strangers))
        logger.warning("%s: not mounting %s in volumes/ (not volume ids)", package_id, listed)
    return tuple(name for name in names if name not in strangers)


def tell_quietly(ref: Any, message: Any) -> None:
    """Tell ``ref``; an actor already gone hears nothing (it is stopping)."""
    try:
        ref.tell(message)
    except GONE:
        pass


def run_oneshot(owner: Any, sandbox: Sandbox, journal: Journal, oneshot: wire.OneshotSpec, generation: int) -> None:
    """Run a oneshot to its end and tell ``owner`` how it ended (``OneshotFinished``)."""
    out_r, out_w = os.pipe()
    try:
        process = sandbox.spawn(
            list(oneshot.argv),
            env=dict(oneshot.env),
            cwd=oneshot.cwd,
            user=oneshot.user,
            stdin=open(os.devnull, "rb"),  # noqa: SIM115
            stdout=out_w,
            stderr=out_w,
            title=oneshot.id,
        )
    except Exception as exc:  # noqa: BLE001 (reported as the oneshot's failure)
        os.close(out_r)
        tell_quietly(owner, OneshotFinished(oneshot=oneshot.id, generation=generation, failure=str(exc)))
        return
    finally:
        close_now(out_w)
    journal.reader(FileObject(out_r, "rb", close=True), f"{oneshot.id}/output")
    status = process.wait(timeout=oneshot.timeout)
    if status is None:
        process.signal_group(signal.SIGKILL)
        failure: str | None = f"did not finish within {oneshot.timeout:g} s"
    else:
        failure = None if status == 0 else describe_status(status)
    tell_quietly(owner, OneshotFinished(oneshot=oneshot.id, generation=generation, failure=failure))


def run_hook(runtime: RuntimeConnection, message: RunHook, version: str) -> None:
    """Run an init/uninit hook or a migration in the runtime (the ServiceActor answers with it)."""
    if message.hook == "init":
        runtime.run_init(message.kind, message.other_version, timeout=message.timeout)  # type: ignore[arg-type]
    elif message.hook == "uninit":
        runtime.run_uninit(message.kind, message.other_version, timeout=message.timeout)  # type: ignore[arg-type]
    elif message.hook == "migration":  # from the version that was installed to this one
        assert message.other_version is not None
        runtime.run_migration(message.other_version, version, timeout=message.timeout)
    elif message.hook == "migration-to":  # from this version to an older one (a downgrade)
        assert message.other_version is not None
        runtime.run_migration(version, message.other_version, timeout=message.timeout)
    else:
        raise StartOSError(f"unknown hook {message.hook!r}", kind=ErrorKind.INVALID_REQUEST)


def write_pids(sandbox: Sandbox, path: Path) -> None:
    """Remember every process of the service, so a startd killed with -9 can sweep them."""
    pids = []
    members: set[int] = getattr(sandbox, "members", set)()
    for pid in members:
        try:
            pids.append([pid, psutil.Process(pid).create_time()])
        except psutil.Error:
            continue
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pids))


def read_pids(path: Path) -> list[tuple[int, float]]:
    """The processes a previous startd recorded for the service (pid, creation time)."""
    try:
        return [(int(pid), float(created)) for pid, created in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []


def kill_orphans(recorded: list[tuple[int, float]]) -> int:
    """Kill the process groups of recorded processes still alive (and still the same process)."""
    killed = 0
    for pid, created in recorded:
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) > 0.01:
                continue  # the pid now belongs to someone else
            os.killpg(os.getpgid(pid), signal.SIGKILL)
            killed += 1
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed

"""DaemonActor: one daemon process of a service, inside the service's sandbox.

The actor lives exactly as long as its process. gevent's child watcher reports the exit the
moment it happens; an exit the actor did not ask for makes the actor crash with the exit status
as its reason, and the service's supervisor restarts it with backoff (first restart immediate,
then growing with jitter up to a cap, then crash-looping with a cooldown — see
``startos.supervision.backoff``). Stopping sends SIGTERM to the daemon's whole process group,
waits ``term_timeout``, then SIGKILLs the group.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.fileobject import FileObject
from pykka import ActorDeadError, ActorRef

from startos.actors.services.journal import Journal
from startos.errors import StartOSError
from startos.protocol.packages import DaemonExited, DaemonReady
from startos.sandbox import close_now
from startos.sandbox.base import Sandbox, SandboxProcess
from startos.supervision import Actor, handles

__all__ = ["DaemonActor", "DaemonDied", "DaemonLaunch", "describe_status"]

logger = logging.getLogger(__name__)

READY_EVERY = 0.25  # seconds between readiness probes until the first success


class DaemonDied(StartOSError):
    """Raised inside a DaemonActor when its process exited without being asked to."""


def describe_status(status: int) -> str:
    """``exited with status 3`` / ``killed by SIGKILL``."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"killed by {name}"
    return f"exited with status {status}"


class DaemonLaunch:
    """How to start one daemon (built by the ServiceActor from the package's description)."""

    def __init__(
        self,
        daemon_id: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        term_timeout: float = 30.0,
        ready: Callable[[], bool] | None = None,
        stop_signal: str = "SIGTERM",
    ) -> None:
        self.id = daemon_id
        self.argv = argv
        self.env = env or {}
        self.cwd = cwd
        self.user = user
        self.term_timeout = term_timeout
        self.ready = ready
        self.stop_signal = signal.Signals[stop_signal]


class DaemonActor(Actor):
    """Runs one daemon process and dies with it."""

    def __init__(
        self,
        package_id: str,
        launch: DaemonLaunch,
        sandbox: Sandbox,
        journal: Journal,
        owner: ActorRef[Any] | None,
        generation: int = 0,
    ) -> None:
        super().__init__()
        self.package_id = package_id
        self.launch = launch
        self.sandbox = sandbox
        self.journal = journal
        self.owner = owner
        self.generation = generation
        self.process: SandboxProcess | None = None
        self._stopping = False
        self.started_at = 0.0

    def __str__(self) -> str:
        return f"DaemonActor[{self.package_id}/{self.launch.id}]"

    def on_start(self) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.process = self.sandbox.spawn(
                self.launch.argv,
                env=self.launch.env,
                cwd=self.launch.cwd,
                user=self.launch.user,
                stdin=open(os.devnull, "rb"),  # noqa: SIM115 (the child gets its own copy)
                stdout=out_w,
                stderr=err_w,
                title=f"startos[{self.package_id}] {self.launch.id}",
            )
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            close_now(out_w, err_w)  # the daemon holds the only write ends: its output ends with it
        self.started_at = time.monotonic()
        daemon = self.launch.id
        self.journal.append("startos", f"daemon {daemon} started (pid {self.process.pid})")
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            # The readers end by themselves at EOF, after the last line the process wrote.
            self.journal.reader(FileObject(fd, "rb", close=True), f"{daemon}/{stream}")
        self.spawn(self._watch)
        if self.launch.ready is not None and self.owner is not None:
            self.spawn(self._probe_until_ready)
        elif self.owner is not None:
            self._tell_owner(DaemonReady(daemon=daemon, generation=self.generation))

    def _watch(self) -> None:
        assert self.process is not None
        status = self.process.wait()
        try:
            self.actor_ref.tell(DaemonExited(status=status if status is not None else -9))
        except ActorDeadError:
            pass

    def _probe_until_ready(self) -> None:
        probe = self.launch.ready
        assert probe is not None
        while True:
            try:
                if probe():
                    break
            except Exception as exc:  # noqa: BLE001 (a failing probe just means "not ready yet")
                logger.debug("readiness probe of %s failed: %s", self, exc)
            gevent.sleep(READY_EVERY)
        self.journal.append("startos", f"daemon {self.launch.id} is ready")
        self._tell_owner(DaemonReady(daemon=self.launch.id, generation=self.generation))

    def _tell_owner(self, message: object) -> None:
        if self.owner is None:
            return
        try:
            self.owner.tell(message)
        except ActorDeadError:
            pass

    @handles(DaemonExited)
    def exited(self, message: DaemonExited) -> None:
        """The process is gone: crash unless we were stopping it (the supervisor restarts us)."""
        what = describe_status(message.status)
        uptime = time.monotonic() - self.started_at
        self.journal.append("startos", f"daemon {self.launch.id} {what} after {uptime:.1f} s")
        if not self._stopping:
            raise DaemonDied(f"daemon {self.launch.id} of {self.package_id} {what}")

    def on_stop(self) -> None:
        self._stopping = True
        self._terminate(graceful=True)

    def on_exit(self, reason: Any) -> None:
        self._stopping = True
        self._terminate(graceful=False)

    def _terminate(self, *, graceful: bool) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        if graceful:
            process.signal_group(self.launch.stop_signal)
            status = process.wait(timeout=self.launch.term_timeout)
            if status is not None:
                self.journal.append("startos", f"daemon {self.launch.id} stopped ({describe_status(status)})")
                return
            self.journal.append(
                "startos",
                f"daemon {self.launch.id} ignored {self.launch.stop_signal.name} for "
                f"{self.launch.term_timeout:g} s: killing it",
            )
        process.signal_group(signal.SIGKILL)
        if graceful:
            process.wait(timeout=5)

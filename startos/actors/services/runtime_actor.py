"""RuntimeActor: the connection to one service's sandboxed runtime (DESIGN.md's service tree).

It starts ``python -m startos.runtime`` in the service's sandbox, copies its output to the
journal, answers the package's effects and reports them to its ServiceActor as typed messages
(``ProgressReported``, ``TaskRequested``, ``TaskWithdrawn``), and tells it ``RuntimeExited`` when
the runtime process is gone. The ServiceActor starts it in its ``on_start`` and stops it when it
stops (which shuts the runtime down); calls into the package go through the
:class:`~startos.runtime.host.RuntimeConnection` it hands out (``GetRuntimeConnection``), each on
the caller's greenlet, so a long hook never blocks this actor.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from gevent.fileobject import FileObject
from pykka import ActorRef

from startos.actors.services import tasks
from startos.actors.services.journal import Journal
from startos.actors.services.processes import tell_quietly
from startos.errors import StartOSError
from startos.protocol import runtime as wire
from startos.protocol import service_items as items
from startos.protocol.errors import ErrorKind
from startos.protocol.packages import (
    GetRuntimeConnection,
    ProgressReported,
    RuntimeExited,
    TaskRequested,
    TaskWithdrawn,
)
from startos.runtime.host import RuntimeConnection, start_runtime
from startos.sandbox import close_now
from startos.sandbox.base import Sandbox, SandboxProcess
from startos.supervision import Actor, Directory, handles

__all__ = ["RuntimeActor"]

logger = logging.getLogger(__name__)

PING_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 5.0


class RuntimeActor(Actor):
    """Owns one runtime process and its connection; reports what the package does to ``owner``."""

    def __init__(
        self, directory: Directory, package_id: str, sandbox: Sandbox, journal: Journal, owner: ActorRef[Any]
    ) -> None:
        super().__init__()
        self.directory = directory
        self.package_id = package_id
        self.sandbox = sandbox
        self.journal = journal
        self.owner = owner
        self.process: SandboxProcess | None = None
        self.connection: RuntimeConnection | None = None

    def __str__(self) -> str:
        return f"RuntimeActor[{self.package_id}]"

    def on_start(self) -> None:
        out_r, out_w = os.pipe()
        try:
            self.process, self.connection = start_runtime(
                self.sandbox, self.package_id, on_effect=self._effect, stdout=out_w, stderr=out_w
            )
        except BaseException:
            os.close(out_r)
            raise
        finally:
            close_now(out_w)  # the runtime holds the only write end: its output ends with it
        self.journal.reader(FileObject(out_r, "rb", close=True), "runtime")
        self.connection.ping(timeout=PING_TIMEOUT)
        self.spawn(self._watch, self.process)

    def _watch(self, process: SandboxProcess) -> None:
        status = process.wait()
        tell_quietly(self.owner, RuntimeExited(status=int(status if status is not None else -9)))

    @handles(GetRuntimeConnection)
    def get_connection(self, _message: GetRuntimeConnection) -> RuntimeConnection:
        """The connection to call the package through."""
        assert self.connection is not None
        return self.connection

    def on_stop(self) -> None:
        self._close()

    def on_exit(self, reason: Any) -> None:
        self._close()

    def _close(self) -> None:
        conn, self.connection = self.connection, None
        if conn is None:
            return
        try:
            conn.shutdown(timeout=SHUTDOWN_TIMEOUT)
        except StartOSError:  # a dead runtime cannot be shut down; the sandbox's end kills it
            pass
        conn.close()

    # -- effects: on the connection's greenlets; they tell the ServiceActor, never change it ----

    def _effect(self, effect: Any) -> Any:
        """Answer one effect of the package (progress, container address, tasks)."""
        if isinstance(effect, wire.ReportProgress):
            report = ProgressReported(
                daemon=effect.daemon or "main", done=effect.done, total=effect.total, message=effect.message
            )
            tell_quietly(self.owner, report)
            return None
        if isinstance(effect, wire.GetContainerIp):
            address = getattr(self.sandbox, "address", lambda: None)() or "127.0.0.1"
            return wire.ContainerIp(ip=address)
        if isinstance(effect, items.CreateTask):
            active = True
            if effect.when is not None and effect.input is not None:
                target = effect.package_id or self.package_id
                current = tasks.current_input(
                    self.directory, self.connection, self.package_id, target, effect.action_id
                )
                if current is not None:
                    from startos.protocol.inputspec import matches_partial

                    active = not matches_partial(current, effect.input)
            tell_quietly(self.owner, TaskRequested(task=effect, active=active))
            return items.TaskCreated(active=active)
        if isinstance(effect, items.ClearTask):
            tell_quietly(self.owner, TaskWithdrawn(replay_id=effect.replay_id))
            return wire.Done()
        raise StartOSError(
            f"{self.package_id} asked for an effect this server does not offer: {type(effect).__name__}",
            kind=ErrorKind.INVALID_REQUEST,
        )

"""Diagnostic mode: what ``startd`` serves when its state tree cannot be loaded.

A damaged database, a revision that does not apply or a newer schema used to make ``startd``
exit, leaving the user with nothing to look at. Instead ``startd`` now starts a diagnostic tree
(this facade and the web server) that answers only ``echo``, ``state`` and ``diagnostic.*``,
as StartOS's diagnostic mode does; every other method says why it cannot run.

Access: the password hash and the sessions live in the tree that did not load, so no login can
be checked. ``diagnostic.error`` (and ``echo``, ``state``) stay anonymous like StartOS's
diagnostic page; ``diagnostic.logs`` and ``diagnostic.restart`` need the root-only local cookie
(``<data dir>/rpc.authcookie``, presented by ``start-cli`` on the server), the same proof as
``auth.reset-password``. Loopback alone would not do: any local user, or a proxy forwarding the
LAN to 127.0.0.1, would then be able to read the log and restart the server.

In normal mode the ``diagnostic.*`` methods exist too: ``diagnostic.error`` answers ``null``
and the others say there is nothing to diagnose.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from startos.actors.facade import FacadeActor
from startos.actors.registry import rpc
from startos.errors import StartOSError
from startos.protocol.calls import (
    CallContext,
    CheckCaller,
    CheckSetUp,
    GetRootCa,
    GetServerHostname,
    GetWebCertificate,
    InstallUpload,
    RpcCall,
    RpcReply,
    TakeClaim,
)
from startos.protocol.errors import ErrorKind, kind_title
from startos.protocol.jsonrpc import RpcError
from startos.protocol.openrpc import openrpc_document
from startos.protocol.rpc import (
    METHODS,
    DiagnosticError,
    DiagnosticErrorData,
    DiagnosticLogEntry,
    DiagnosticLogsParams,
    DiagnosticLogsResult,
    EchoParams,
    MethodSpec,
    NoParams,
)
from startos.supervision import Actor, handles

__all__ = ["DIAGNOSTIC_METHODS", "DiagnosticFacadeActor", "LogRing", "diagnostic_error", "one_line"]

logger = logging.getLogger(__name__)

DIAGNOSTIC_METHODS = ("echo", "state", "diagnostic.error", "diagnostic.logs", "diagnostic.restart")
DEFAULT_LOG_LIMIT = 50
MAX_LINE = 2000  # characters of one error line or log message: enough to read, bounded to keep


def one_line(exc: BaseException) -> str:
    """``exc`` as one readable line: our errors by their message, others prefixed by their type."""
    text = str(exc) if isinstance(exc, StartOSError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())  # a message from SQLite or a decoder may hold newlines
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def diagnostic_error(exc: BaseException) -> DiagnosticError:
    """The error object ``diagnostic.error`` answers for ``exc`` (StartOS's shape, no traceback)."""
    code = int(exc.kind) if isinstance(exc, StartOSError) else int(ErrorKind.UNKNOWN)
    return DiagnosticError(code=code, message=kind_title(code), data=DiagnosticErrorData(details=one_line(exc)))


# Attributes every LogRecord has; the others were passed with ``extra=`` (as in startos.logs).
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class LogRing(logging.Handler):
    """The newest ``capacity`` log records of this process, kept in memory for ``diagnostic.logs``.

    There is no server journal to read when the state tree did not load, so ``startd`` attaches
    one at boot and keeps it only in diagnostic mode. Cursors increase by one per record.
    """

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__()
        self._entries: deque[DiagnosticLogEntry] = deque(maxlen=capacity)
        self._next = 1
        self._guard = threading.Lock()  # emit may run on a worker thread; read on the hub

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and k[:1] != "_")
            if extras:
                message = f"{message} {extras}"
            if record.exc_info and record.exc_info[1] is not None:
                # The exception's line, not its traceback: a deeply nested value can make one
                # thousands of frames long, and the line is what a reader needs here.
                failure = one_line(record.exc_info[1])
                if failure not in message:
                    message = f"{message}: {failure}"
            if len(message) > MAX_LINE:
                message = message[: MAX_LINE - 1] + "…"
            with self._guard:
                entry = DiagnosticLogEntry(
                    cursor=self._next,
                    timestamp=record.created,
                    level=record.levelname.lower(),
                    logger=record.name,
                    message=message,
                )
                self._next += 1
                self._entries.append(entry)
        except Exception:  # noqa: BLE001 (logging.Handler's contract: report, never raise)
            self.handleError(record)

    def read(
        self, *, limit: int = DEFAULT_LOG_LIMIT, cursor: int | None = None, before: bool = False
    ) -> list[DiagnosticLogEntry]:
        """Entries in cursor order: the newest ``limit``, those after ``cursor``, or before it."""
        with self._guard:
            entries = list(self._entries)
        if cursor is None:
            return entries[-limit:]
        if before:
            return [e for e in entries if e.cursor < cursor][-limit:]
        return [e for e in entries if e.cursor > cursor][:limit]


class DiagnosticFacadeActor(Actor):
    """Registered as ``facade`` in diagnostic mode: the web app talks to it as to ``FacadeActor``.

    ``on_restart`` is called once ``diagnostic.restart`` has been answered; ``startd`` then
    stops this tree (the web server finishes the reply) and re-executes itself.
    """

    def __init__(
        self,
        error: DiagnosticError,
        *,
        logs: LogRing | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.error = error
        self.logs = logs
        self.on_restart = on_restart
        self.methods: dict[str, MethodSpec] = {name: METHODS[name] for name in DIAGNOSTIC_METHODS}
        self._answers: dict[str, Callable[[Any], Any]] = {
            "echo": self._echo,
            "state": self._state,
            "diagnostic.error": self._error,
            "diagnostic.logs": self._logs,
            "diagnostic.restart": self._restart,
        }
        self._spec: dict[str, Any] | None = None
        self._restarting = False

    def __str__(self) -> str:
        return "DiagnosticFacadeActor"

    @property
    def details(self) -> str:
        return self.error.data.details if self.error.data is not None else self.error.message

    @handles(RpcCall)
    def call(self, message: RpcCall) -> RpcReply:
        """Answer a diagnostic method; refuse every other one with the reason startd is here."""
        spec = self.methods.get(message.method)
        if spec is None:
            if message.method in METHODS:
                raise RpcError(
                    ErrorKind.DIAGNOSTIC_MODE,
                    f"startd is in diagnostic mode: {self.details}; see `start-cli diagnostic error`",
                )
            raise RpcError(ErrorKind.METHOD_NOT_FOUND, f"there is no method {message.method!r}")
        if spec.local_only and not message.context.local_root:
            command = spec.name.replace(".", " ")
            raise RpcError(
                ErrorKind.AUTHORIZATION,
                f"{spec.name} works only on the server itself: run `start-cli {command}` there as root",
            )
        params = FacadeActor.parse_params(spec, message.params)
        return RpcReply(result=self._answers[spec.name](params))

    @handles(TakeClaim)
    def claim(self, message: TakeClaim) -> None:
        """Nothing is ever waiting for a WebSocket or an upload in diagnostic mode."""
        raise RpcError(ErrorKind.NOT_FOUND, f"nothing is waiting for {message.guid!r}: startd is in diagnostic mode")

    @handles(CheckSetUp, CheckCaller)
    def web_access(self, _message: CheckSetUp | CheckCaller) -> bool:
        """No tree, no password: the web layer serves the diagnostic page as before setup, trusting nobody."""
        return False

    @handles(GetRootCa, GetServerHostname, GetWebCertificate)
    def web_lookup(self, _message: GetRootCa | GetServerHostname | GetWebCertificate) -> None:
        """The CA, the hostname and the certificate live in the tree that did not load: ``None``."""

    @handles(InstallUpload)
    def install_upload(self, _message: InstallUpload) -> None:
        """Nothing installs in diagnostic mode."""
        raise RpcError(ErrorKind.DIAGNOSTIC_MODE, f"startd is in diagnostic mode: {self.details}")

    def _echo(self, params: EchoParams) -> str:
        return params.message

    def _state(self, _params: NoParams) -> dict[str, Any]:
        if self._spec is None:
            doc = openrpc_document(self.methods)
            doc["info"] = {**doc["info"], "description": "startd is in diagnostic mode: only these methods answer."}
            self._spec = doc
        return self._spec

    def _error(self, _params: NoParams) -> DiagnosticError:
        return self.error

    def _logs(self, params: DiagnosticLogsParams) -> DiagnosticLogsResult:
        limit = DEFAULT_LOG_LIMIT if params.limit is None else params.limit
        entries = [] if self.logs is None else self.logs.read(limit=limit, cursor=params.cursor, before=params.before)
        start, end = (entries[0].cursor, entries[-1].cursor) if entries else (None, None)
        return DiagnosticLogsResult(entries=entries, start_cursor=start, end_cursor=end)

    def _restart(self, _params: NoParams) -> None:
        if self.on_restart is None:
            raise RpcError(ErrorKind.UNKNOWN, "this diagnostic server cannot restart itself; restart startd")
        if not self._restarting:  # a second call while stopping changes nothing
            self._restarting = True
            logger.info("restart requested from diagnostic mode")
            # Only a signal to startd's main greenlet: the reply still goes out first, and the
            # web server's graceful stop lets the response finish before the process re-executes.
            self.on_restart()


# -- the same methods in normal mode (the regular facade): nothing to diagnose ------------------


def _not_diagnostic(name: str) -> RpcError:
    return RpcError(ErrorKind.INVALID_REQUEST, f"{name}: startd is not in diagnostic mode (it runs normally)")


@rpc("diagnostic.error")
def _normal_error(_facade: FacadeActor, _params: NoParams, _ctx: CallContext) -> None:
    return None


@rpc("diagnostic.logs")
def _normal_logs(_facade: FacadeActor, _params: DiagnosticLogsParams, _ctx: CallContext) -> None:
    raise _not_diagnostic("diagnostic.logs")


@rpc("diagnostic.restart")
def _normal_restart(_facade: FacadeActor, _params: NoParams, _ctx: CallContext) -> None:
    raise _not_diagnostic("diagnostic.restart")

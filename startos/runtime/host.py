"""The host side of a service runtime: one connection, every frame treated as untrusted input.

::

    process, conn = start_runtime(sandbox, "hello-world", on_effect=handle_effect, stdout=log_fd, stderr=log_fd)
    description = conn.describe(timeout=30)          # ServiceDescription
    conn.run_init("install", timeout=300)
    result = conn.run_check("web", timeout=10)       # CheckResult
    conn.shutdown(timeout=5)

Frames from the runtime are decoded strictly into :data:`~startos.protocol.runtime.ToHost`, with a
size limit checked before the body is read. Anything the protocol forbids (an undecodable or
oversized frame, a reply to a call never made, a result of the wrong type) closes the connection
and fails every pending call with :class:`~startos.runtime.errors.RuntimeProtocolError`: after a
bad frame nothing else the peer says can be trusted. The runtime exiting fails pending calls at
once with :class:`~startos.runtime.errors.RuntimeBroken`. A call that outlives its timeout fails
with :class:`~startos.runtime.errors.RuntimeTimeout` and the connection stays usable (the late
reply is dropped); whether to kill a runtime whose hook hangs is the caller's decision.

Effects: ``on_effect(effect)`` is called for each effect the package sends. Notices
(:class:`~startos.protocol.runtime.ReportProgress`) are delivered on the reader greenlet, in
order, and must not block (``tell`` an actor); calls (:class:`~startos.protocol.runtime.GetContainerIp`)
each get their own greenlet and must return the matching result
(:class:`~startos.protocol.runtime.ContainerIp`); at most ``max_effects`` run at once.

Needs gevent (it runs inside ``startd``, which is monkey-patched).
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any, TypeVar, cast

import gevent
import gevent.event
import gevent.lock
import gevent.pool

from startos.protocol import runtime as wire
from startos.protocol import service_items as items
from startos.protocol.errors import ErrorKind
from startos.protocol.framing import FrameError, PeerClosed, read_frame, write_frame
from startos.runtime.errors import (
    PackageCodeError,
    RuntimeBroken,
    RuntimeCallError,
    RuntimeClosed,
    RuntimeProtocolError,
    RuntimeTimeout,
)
from startos.sandbox.base import Sandbox, SandboxProcess

__all__ = [
    "DEFAULT_MAX_FRAME",
    "EffectHandler",
    "RuntimeConnection",
    "check_description",
    "describe_request",
    "start_runtime",
]

logger = logging.getLogger(__name__)

#: Largest frame accepted from a runtime; descriptions are a few KiB.
DEFAULT_MAX_FRAME = 1024 * 1024

EffectHandler = Callable[[Any], Any]
_TO_HOST: Any = wire.ToHost  # a union, which read_frame's type[T] cannot spell
R = TypeVar("R")


def describe_request(request: wire.RuntimeRequest) -> str:
    """What a request is, in words for error messages (``init hook 'install'``)."""
    if isinstance(request, wire.Describe):
        return "describe" if request.main else "describe (without main)"
    if isinstance(request, wire.RunInit):
        return f"init hook '{request.kind}'"
    if isinstance(request, wire.RunUninit):
        return f"uninit hook '{request.kind}'"
    if isinstance(request, wire.RunMigration):
        plan = " (dry run)" if request.dry_run else ""
        return f"migration {request.from_version} -> {request.to_version}{plan}"
    if isinstance(request, wire.RunCheck):
        return f"readiness check of daemon '{request.daemon}'"
    if isinstance(request, wire.RunHealthCheck):
        return f"health check '{request.check}'"
    if isinstance(request, items.GetActionInput):
        return f"input of action '{request.action}'"
    if isinstance(request, items.RunAction):
        return f"action '{request.action}'"
    if isinstance(request, wire.Shutdown):
        return "shutdown"
    return "ping"


def _kind_for(request: wire.RuntimeRequest) -> int:
    # The host picks the user-facing error kind from what it asked; a kind sent by the runtime
    # could be anything (34 would log the dashboard out).
    if isinstance(request, wire.RunInit):
        return {"install": ErrorKind.INSTALL_FAILED, "update": ErrorKind.UPDATE_FAILED}.get(
            request.kind, ErrorKind.RESTORE
        )
    if isinstance(request, wire.RunUninit) and request.kind == "update":
        return ErrorKind.UPDATE_FAILED
    if isinstance(request, wire.RunMigration):
        return ErrorKind.MIGRATION_FAILED
    return ErrorKind.UNKNOWN


def _clean(text: str, cap: int = 500) -> str:
    """Untrusted text made one printable line (no terminal escapes, no newlines)."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return line if len(line) <= cap else line[: cap - 1] + "…"


class _Pending:
    __slots__ = ("request", "result", "what")

    def __init__(self, request: wire.RuntimeRequest) -> None:
        self.request = request
        self.what = describe_request(request)
        self.result: gevent.event.AsyncResult = gevent.event.AsyncResult()


class RuntimeConnection:
    """The host's end of one runtime's socket: calls with timeouts, effects, strict frames."""

    def __init__(
        self,
        sock: socket.socket,
        on_effect: EffectHandler | None = None,
        *,
        package_id: str,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_effects: int = 32,
    ) -> None:
        self.package_id = package_id
        self.max_frame = max_frame
        self.max_effects = max_effects
        self._sock = sock
        self._on_effect = on_effect
        self._ids = itertools.count(1)
        self._last_id = 0
        self._pending: dict[int, _Pending] = {}
        self._write_lock = gevent.lock.Semaphore()
        self._effects_running = 0
        self._close_cause: tuple[type[RuntimeCallError], str] | None = None
        self._closed = gevent.event.Event()
        self._effects = gevent.pool.Group()  # one greenlet per effect call under way
        # The connection's own greenlet, not an actor's: close() kills it with the effects.
        self._reader = gevent.spawn(self._read_loop)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<RuntimeConnection {self.package_id} {state}>"

    # -- state ------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (by us, by the runtime, or over a bad frame)."""
        return self._close_cause is not None

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the connection is closed; False on timeout."""
        return self._closed.wait(timeout)

    def close(self) -> None:
        """Close the connection; pending calls fail with :class:`RuntimeClosed`. Idempotent.

        The reader and every effect still running end with it (their greenlets are killed).
        """
        self._fail(RuntimeClosed, "the host closed the connection")
        current = gevent.getcurrent()
        if self._reader is not current and not self._reader.dead:
            self._reader.kill(block=False)
        for greenlet in list(self._effects):
            if greenlet is not current:
                greenlet.kill(block=False)

    # -- calls ------------------------------------------------------------------------------------

    def call(self, request: wire.RuntimeRequest, *, timeout: float) -> wire.RuntimeResult:
        """Send ``request`` and wait up to ``timeout`` seconds for its result.

        Raises :class:`PackageCodeError` when the package's code failed, :class:`RuntimeTimeout`,
        :class:`RuntimeBroken`/:class:`RuntimeProtocolError` when the connection broke, and
        :class:`RuntimeClosed` after :meth:`close`.
        """
        pending = _Pending(request)
        if self._close_cause is not None:
            raise self._closed_error(pending)
        call_id = next(self._ids)
        self._last_id = call_id
        self._pending[call_id] = pending
        try:
            try:
                with self._write_lock:
                    write_frame(self._sock, wire.RuntimeCall(id=call_id, request=request))
            except OSError as exc:
                self._fail(RuntimeBroken, f"cannot write to the runtime: {exc.strerror or exc}")
            try:
                reply: wire.RuntimeReply = pending.result.get(timeout=timeout)
            except gevent.Timeout:
                raise RuntimeTimeout(
                    f"package {self.package_id}: {pending.what} did not answer within {timeout:g} s",
                    package=self.package_id,
                    what=pending.what,
                ) from None
        finally:
            self._pending.pop(call_id, None)
        if reply.error is not None:
            raise self._package_error(pending, reply.error)
        assert reply.result is not None
        return reply.result

    def _typed(self, request: wire.RuntimeRequest, result_type: type[R], timeout: float) -> R:
        result = self.call(request, timeout=timeout)
        assert isinstance(result, result_type)  # the reader checked it against REPLY_TYPES
        return result

    def describe(self, *, main: bool = True, timeout: float = 30.0) -> wire.ServiceDescription:
        """The service's description (``main=False``: without running its main function)."""
        description = self._typed(wire.Describe(main=main), wire.ServiceDescription, timeout)
        _check_migration_versions(description, self.package_id)
        return description

    def run_init(self, kind: wire.InitKind, previous_version: str | None = None, *, timeout: float = 300.0) -> None:
        """Run the init hook of ``kind`` (a package without one succeeds at once)."""
        self._typed(wire.RunInit(kind=kind, previous_version=previous_version), wire.Done, timeout)

    def run_uninit(self, kind: wire.UninitKind, next_version: str | None = None, *, timeout: float = 300.0) -> None:
        """Run the uninit hook of ``kind``."""
        self._typed(wire.RunUninit(kind=kind, next_version=next_version), wire.Done, timeout)

    def run_migration(
        self, from_version: str, to_version: str, *, dry_run: bool = False, timeout: float = 600.0
    ) -> wire.MigrationDone:
        """Migrate the data (or, with ``dry_run``, only plan it); the steps in order."""
        request = wire.RunMigration(from_version=str(from_version), to_version=str(to_version), dry_run=dry_run)
        return self._typed(request, wire.MigrationDone, timeout)

    def run_check(self, daemon: str, *, timeout: float = 30.0) -> wire.CheckResult:
        """Run the readiness check of ``daemon`` once."""
        return self._typed(wire.RunCheck(daemon=daemon), wire.CheckResult, timeout)

    def run_health_check(self, check: str, *, timeout: float = 30.0) -> wire.CheckResult:
        """Run the health check ``check`` once."""
        return self._typed(wire.RunHealthCheck(check=check), wire.CheckResult, timeout)

    def get_action_input(self, action: str, *, timeout: float = 30.0) -> items.ActionInput:
        """The action's input spec and the values to prefill it with."""
        return self._typed(items.GetActionInput(action=action), items.ActionInput, timeout)

    def run_action(self, action: str, input: dict[str, Any] | None, *, timeout: float = 300.0) -> items.ActionOutcome:
        """Run an action with validated input."""
        return self._typed(items.RunAction(action=action, input=input), items.ActionOutcome, timeout)

    def ping(self, *, timeout: float = 5.0) -> None:
        """Round trip; answered even while the package's code is still loading."""
        self._typed(wire.Ping(), wire.Done, timeout)

    def shutdown(self, *, timeout: float = 5.0) -> bool:
        """Ask the runtime to exit, then close; False if it did not confirm in time (kill it then)."""
        try:
            self.call(wire.Shutdown(), timeout=timeout)
            confirmed = True
        except RuntimeCallError:
            confirmed = False
        self.close()
        return confirmed

    # -- errors -----------------------------------------------------------------------------------

    def _closed_error(self, pending: _Pending) -> RuntimeCallError:
        assert self._close_cause is not None
        cls, cause = self._close_cause
        return cls(
            f"package {self.package_id}: {pending.what} failed: {cause}", package=self.package_id, what=pending.what
        )

    def _package_error(self, pending: _Pending, error: wire.RemoteError) -> PackageCodeError:
        message = _clean(error.message)
        hook = _clean(error.hook, 200) if error.hook else None
        pkg, what = self.package_id, pending.what
        if error.reason == "load-failed":
            text = f"package {pkg}: its code did not load, so {what} failed: {message}"
        elif error.reason == "no-migration-path":
            text = f"package {pkg}: {what}: {message}"
        elif error.reason == "internal":
            text = f"package {pkg}: {what} failed inside the runtime: {message}"
        elif error.reason in ("invalid", "bad-request"):
            text = f"package {pkg}: {what} refused: {message}"
        else:
            where = f" in {hook}" if hook and isinstance(pending.request, wire.RunMigration) else ""
            text = f"package {pkg}: {what} failed{where}: {message}"
        return PackageCodeError(
            text,
            package=pkg,
            what=what,
            reason=error.reason,
            hook=hook,
            debug=error.debug,
            kind=_kind_for(pending.request),
        )

    def _fail(self, cls: type[RuntimeCallError], cause: str) -> None:
        if self._close_cause is not None:
            return
        self._close_cause = (cls, cause)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for pending in list(self._pending.values()):
            if not pending.result.ready():
                pending.result.set_exception(self._closed_error(pending))
        self._closed.set()

    # -- reading ----------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        try:
            while self._close_cause is None:
                frame: wire.RuntimeReply | wire.EffectCall | wire.EffectNotice = read_frame(
                    self._sock, _TO_HOST, max_frame=self.max_frame
                )
                self._dispatch(frame)
        except (PeerClosed, ConnectionResetError):  # reset: it died with our bytes unread
            self._fail(RuntimeBroken, "the runtime closed the connection (it exited or crashed)")
        except FrameError as exc:
            self._fail(RuntimeProtocolError, f"the runtime sent an invalid frame: {_clean(str(exc), 300)}")
        except RuntimeProtocolError as exc:
            self._fail(RuntimeProtocolError, exc.message)
        except OSError as exc:
            self._fail(RuntimeBroken, f"the connection broke: {exc.strerror or exc}")
        except gevent.GreenletExit:
            self._fail(RuntimeClosed, "the host closed the connection")
        except Exception as exc:  # a bug here must not leave callers waiting forever
            logger.exception("reader of the %s runtime failed", self.package_id)
            self._fail(RuntimeBroken, f"the host's reader failed: {type(exc).__name__}: {exc}")

    def _dispatch(self, frame: wire.RuntimeReply | wire.EffectCall | wire.EffectNotice) -> None:
        if isinstance(frame, wire.RuntimeReply):
            pending = self._pending.get(frame.id)
            if pending is None:
                if frame.id > self._last_id:
                    raise RuntimeProtocolError(
                        f"the runtime answered call {frame.id}, which was never made", package=self.package_id
                    )
                return  # a late reply to a call that timed out
            expected = wire.reply_type(pending.request)
            if frame.result is not None and not isinstance(frame.result, expected):
                raise RuntimeProtocolError(
                    f"the runtime answered {pending.what} with {type(frame.result).__name__}, "
                    f"expected {expected.__name__}",
                    package=self.package_id,
                )
            if not pending.result.ready():
                pending.result.set(frame)
        elif isinstance(frame, wire.EffectNotice):
            self._notice(frame.effect)
        else:
            self._start_effect(frame)

    def _notice(self, effect: wire.EffectNotification) -> None:
        if self._on_effect is None:
            return
        try:
            self._on_effect(effect)
        except Exception:
            logger.exception("effect handler of %s failed on %s", self.package_id, type(effect).__name__)

    def _start_effect(self, call: wire.EffectCall) -> None:
        if self._effects_running >= self.max_effects:
            self._reply_effect(call.id, error=f"too many effects at once (at most {self.max_effects})")
            return
        self._effects_running += 1
        self._effects.spawn(self._run_effect, call)

    def _run_effect(self, call: wire.EffectCall) -> None:
        name = call.effect.__struct_config__.tag
        try:
            if self._on_effect is None:
                self._reply_effect(call.id, error=f"the host does not offer {name}")
                return
            result = self._on_effect(call.effect)
            expected = wire.EFFECT_REPLY_TYPES[type(call.effect)]
            if not isinstance(result, expected):
                logger.error("effect handler of %s answered %s with %r", self.package_id, name, result)
                self._reply_effect(call.id, error=f"the host has no answer for {name}")
                return
            self._reply_effect(call.id, result=cast(wire.EffectResult, result))
        except Exception as exc:
            logger.exception("effect handler of %s failed on %s", self.package_id, name)
            self._reply_effect(call.id, error=f"{name} failed on the host: {type(exc).__name__}: {exc}")
        finally:
            self._effects_running -= 1

    def _reply_effect(self, call_id: int, *, result: wire.EffectResult | None = None, error: str | None = None) -> None:
        reply = (
            wire.EffectReply(id=call_id, result=result)
            if error is None
            else wire.EffectReply(id=call_id, error=wire.RemoteError(reason="internal", message=error[:1024]))
        )
        if self._close_cause is not None:
            return
        try:
            with self._write_lock:
                write_frame(self._sock, reply)
        except OSError as exc:
            self._fail(RuntimeBroken, f"cannot write to the runtime: {exc.strerror or exc}")


def _check_migration_versions(description: wire.ServiceDescription, package_id: str) -> None:
    from startos.s9pk.errors import VersionParseError
    from startos.s9pk.exver import ExtendedVersion

    seen: dict[ExtendedVersion, str] = {}
    for step in description.migrations:
        try:
            version = ExtendedVersion.parse(step.version)
        except VersionParseError as exc:
            raise PackageCodeError(
                f"package {package_id}: describe refused: migration {_clean(step.version, 80)!r}: {_clean(str(exc))}",
                package=package_id,
                what="describe",
                reason="invalid",
                hook="migrations",
                debug=None,
            ) from None
        if version in seen:
            raise PackageCodeError(
                f"package {package_id}: describe refused: migrations {seen[version]!r} and {step.version!r} "
                "name the same version",
                package=package_id,
                what="describe",
                reason="invalid",
                hook="migrations",
                debug=None,
            )
        seen[version] = step.version


def check_description(description: wire.ServiceDescription, manifest_volumes: Iterable[str], package_id: str) -> None:
    """Raise :class:`PackageCodeError` unless the service declares exactly the manifest's volumes
    and every action's input spec is well formed."""
    from startos.protocol.inputspec import decode_spec, spec_problem

    for action in description.actions:
        if action.input_spec is None:
            continue
        try:
            problem = spec_problem(decode_spec(action.input_spec))
        except Exception as exc:  # noqa: BLE001 (untrusted input: any failure is the package's)
            problem = str(exc)
        if problem is not None:
            raise _invalid_description(package_id, f"action {action.id}: input spec: {_clean(problem)}")
    declared, manifest = set(description.volumes), set(manifest_volumes)
    if declared != manifest:
        missing = ", ".join(sorted(manifest - declared)) or "none"
        extra = ", ".join(sorted(declared - manifest)) or "none"
        raise _invalid_description(
            package_id,
            f"the service's volumes differ from the manifest's (missing: {missing}; not in the manifest: {extra})",
        )


def _invalid_description(package_id: str, why: str) -> PackageCodeError:
    return PackageCodeError(
        f"package {package_id}: {why}",
        package=package_id,
        what="describe",
        reason="invalid",
        hook=None,
        debug=None,
        kind=ErrorKind.VALIDATE_S9PK,
    )


def start_runtime(
    sandbox: Sandbox,
    package_id: str,
    *,
    on_effect: EffectHandler | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    env: dict[str, str] | None = None,
    max_frame: int = DEFAULT_MAX_FRAME,
    python: str | None = None,
) -> tuple[SandboxProcess, RuntimeConnection]:
    """Spawn ``python -m startos.runtime`` in ``sandbox`` and connect to it.

    The runtime gets one end of a socketpair (``pass_fds``); its stdout and stderr (the package's
    prints) go to ``stdout``/``stderr`` (the caller's log pipe; default: inherited). ``env`` adds to
    the sandbox's environment. The process title names the package. The caller owns both results:
    ``conn.shutdown()`` then ``process.wait()``, or ``process.signal_group(SIGKILL)``.
    """
    host_end, runtime_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        fd = runtime_end.fileno()
        # -P: the working directory stays off sys.path; in the namespace sandbox it is "/", whose
        # /startos mount point would otherwise shadow the startos package as a namespace package.
        # normpath: a "../" in the interpreter's path names a directory the namespace sandbox does not mount
        interpreter = os.path.normpath(python or sys.executable)
        argv = [interpreter, "-P", "-m", "startos.runtime", "--fd", str(fd), "--package-id", package_id]
        process = sandbox.spawn(
            argv,
            env=env,
            stdin=devnull,
            stdout=stdout,
            stderr=stderr,
            title="runtime",
            pass_fds=(fd,),
        )
    except BaseException:
        host_end.close()
        raise
    finally:
        runtime_end.close()
        os.close(devnull)
    return process, RuntimeConnection(host_end, on_effect, package_id=package_id, max_frame=max_frame)

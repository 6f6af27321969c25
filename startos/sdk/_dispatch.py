"""Answering the host's requests with the package's code: the core of the runtime.

:class:`Dispatcher` turns one :data:`~startos.protocol.runtime.RuntimeRequest` into its result by
calling the package's hooks. It is transport-free: the runtime (``python -m startos.runtime``) runs
it behind the socket, one thread per call, and :mod:`startos.sdk.testing` calls it directly, so a
package's unit tests exercise exactly what the server will run.

Every failure leaves as :class:`CallFailed` carrying a :class:`~startos.protocol.runtime.RemoteError`
that names the hook; package exceptions (``sys.exit`` included) never escape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from startos import __version__
from startos.protocol import runtime as wire
from startos.protocol import service_items as items
from startos.sdk import _env
from startos.sdk._actions import outcome_of
from startos.sdk._checks import run_check, run_function_check
from startos.sdk._context import (
    ActionContext,
    CheckContext,
    Effects,
    InitContext,
    MainContext,
    MigrationContext,
    UninitContext,
)
from startos.sdk._items import Check, Daemon, FunctionCheck, HealthCheck, Oneshot
from startos.sdk._loader import LoadFailure, describe_exception, format_debug
from startos.sdk._migrations import plan_migration
from startos.sdk._service import Service
from startos.sdk.errors import DescriptionError, MigrationPathError

__all__ = ["CallFailed", "Dispatcher"]

R = TypeVar("R")


class CallFailed(Exception):
    """A request could not be answered; ``error`` is what goes back to the host."""

    def __init__(self, error: wire.RemoteError, original: BaseException | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.original = original  # the package's exception, for in-process tests


def _error(
    reason: Any, message: str, hook: str | None = None, debug: str | None = None, original: BaseException | None = None
) -> CallFailed:
    line = " ".join(message.split())
    return CallFailed(wire.RemoteError(reason=reason, message=line[:1024], hook=hook, debug=debug), original)


def _with_pythonpath(env: Mapping[str, str], python_dir: str, extra: Mapping[str, str] = {}) -> dict[str, str]:
    merged = {**env, **extra}
    existing = env.get("PYTHONPATH")
    merged["PYTHONPATH"] = f"{python_dir}:{existing}" if existing else python_dir
    return merged


class Dispatcher:
    """Runs requests against one loaded service (or answers every one with its load failure)."""

    def __init__(
        self,
        service: Service | None,
        effects: Effects,
        *,
        load_failure: LoadFailure | None = None,
        check_env: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        if service is None and load_failure is None:
            raise ValueError("a dispatcher needs a service or the reason it failed to load")
        self.service = service
        self.effects = effects
        self.load_failure = load_failure
        # The environment command checks start from (the runtime's own, which the sandbox set).
        self._check_env = check_env or (lambda: dict(_env.current_env()))
        self._checks: dict[str, tuple[wire.ReadyCheck, Check, str]] = {}  # id -> (wire, sdk, ctx daemon)
        self._described = False  # the main function has run at least once
        self._busy: dict[str, threading.Thread] = {}  # function checks still running

    # -- entry point ------------------------------------------------------------------------------

    def handle(self, request: wire.RuntimeRequest) -> wire.RuntimeResult:
        """The result of ``request``; raise :class:`CallFailed` with the reason otherwise."""
        if isinstance(request, wire.Ping | wire.Shutdown):
            return wire.Done()
        service = self._service()
        if isinstance(request, wire.Describe):
            result: wire.RuntimeResult = self.describe(service, main=request.main)
        elif isinstance(request, wire.RunInit):
            result = self.run_init(service, request)
        elif isinstance(request, wire.RunUninit):
            result = self.run_uninit(service, request)
        elif isinstance(request, wire.RunMigration):
            result = self.run_migration(service, request)
        elif isinstance(request, wire.RunCheck):
            result = self.run_check(service, request.daemon)
        elif isinstance(request, wire.RunHealthCheck):
            result = self.run_check(service, request.check)
        elif isinstance(request, items.GetActionInput):
            result = self.get_action_input(service, request.action)
        elif isinstance(request, items.RunAction):
            result = self.run_action(service, request)
        else:  # pragma: no cover (the decoder only admits the requests above)
            raise _error("bad-request", f"unknown request {type(request).__name__}")
        return self._validated(result)

    def _service(self) -> Service:
        if self.service is None:
            failure = self.load_failure
            assert failure is not None
            raise _error("load-failed", failure.message, "load", failure.debug)
        return self.service

    def _validated(self, result: R) -> R:
        # Struct constructors do not check lengths and ranges; the host's decoder does. Check here
        # too, so a package that returns something out of bounds gets a clear "invalid" error
        # instead of the host dropping the connection over a bad frame.
        try:
            return msgspec.msgpack.decode(msgspec.msgpack.encode(result), type=type(result))
        except (msgspec.DecodeError, TypeError, ValueError) as exc:
            raise _error("invalid", f"the answer breaks a protocol rule: {exc}") from None

    def _call(self, hook: str, fn: Callable[[Any], R], ctx: Any) -> R:
        try:
            return fn(ctx)
        except BaseException as exc:  # noqa: BLE001 (package code: report every failure, sys.exit too)
            raise _error("hook-failed", describe_exception(exc), hook, format_debug(exc), exc) from None

    # -- requests ---------------------------------------------------------------------------------

    def describe(self, service: Service, *, main: bool) -> wire.ServiceDescription:
        """The service's description; with ``main`` its main function runs and lists the daemons."""
        daemons: list[wire.DaemonSpec] = []
        oneshots: list[wire.OneshotSpec] = []
        checks: dict[str, tuple[wire.ReadyCheck, Check, str]] = {}
        check_decls: list[wire.HealthCheckDecl] = []
        main_function = service.main_function
        if main and main_function is not None:
            items = self._call("main", lambda ctx: list(main_function(ctx)), MainContext(service, self.effects))
            python_dir = str(_env.code_path("python"))
            for item in items:
                if isinstance(item, Daemon):
                    spec = item.to_wire()
                    ready = spec.ready
                    if isinstance(ready, wire.CommandReady):
                        ready = msgspec.structs.replace(ready, env=_with_pythonpath({}, python_dir, ready.env))
                    env = _with_pythonpath(spec.env, python_dir, {_env.ENV_DAEMON: spec.id})
                    daemons.append(msgspec.structs.replace(spec, env=env, ready=ready))
                    if ready is not None and item.ready is not None:
                        checks[item.id] = (ready, item.ready, item.id)
                        check_decls.append(
                            wire.HealthCheckDecl(
                                id=item.id,
                                name=item.ready.display,
                                check=ready,
                                daemon=item.id,
                                interval=item.ready.interval,
                            )
                        )
                elif isinstance(item, HealthCheck):
                    decl = item.to_wire()
                    check = decl.check
                    if isinstance(check, wire.CommandReady):
                        check = msgspec.structs.replace(check, env=_with_pythonpath({}, python_dir, check.env))
                        decl = msgspec.structs.replace(decl, check=check)
                    checks[item.id] = (check, item.check, item.daemon or item.id)
                    check_decls.append(decl)
                elif isinstance(item, Oneshot):
                    spec1 = item.to_wire()
                    oneshots.append(msgspec.structs.replace(spec1, env=_with_pythonpath(spec1.env, python_dir)))
                else:
                    raise _error(
                        "invalid",
                        f"main returned {type(item).__name__}; return Daemon, Oneshot and HealthCheck items",
                        "main",
                    )
        try:
            description = wire.ServiceDescription(
                protocol=wire.PROTOCOL_VERSION,
                sdk_version=__version__,
                volumes=service.volumes,
                daemons=tuple(daemons),
                oneshots=tuple(oneshots),
                backup=service.backup.to_wire(),
                migrations=tuple(service.migration_steps()),
                init=tuple(k for k in ("install", "update", "restore") if k in service.init_hooks),
                uninit=tuple(k for k in ("uninstall", "update") if k in service.uninit_hooks),
                main_ran=main,
                checks=tuple(check_decls),
                actions=tuple(action.to_wire() for action in service.actions.values()),
                interfaces=tuple(interface.to_wire() for interface in service.interfaces),
            )
        except (ValueError, DescriptionError) as exc:
            raise _error("invalid", str(exc), "main") from None
        if main:
            self._checks = checks
            self._described = True
        return description

    def run_init(self, service: Service, request: wire.RunInit) -> wire.Done:
        hook = service.init_hooks.get(request.kind)
        if hook is not None:
            ctx = InitContext(service, self.effects, request.kind, request.previous_version)
            self._call(f"init {request.kind}", hook, ctx)
        return wire.Done()

    def run_uninit(self, service: Service, request: wire.RunUninit) -> wire.Done:
        hook = service.uninit_hooks.get(request.kind)
        if hook is not None:
            ctx = UninitContext(service, self.effects, request.kind, request.next_version)
            self._call(f"uninit {request.kind}", hook, ctx)
        return wire.Done()

    def run_migration(self, service: Service, request: wire.RunMigration) -> wire.MigrationDone:
        try:
            plan = plan_migration(service, request.from_version, request.to_version)
        except MigrationPathError as exc:
            raise _error("no-migration-path", str(exc), "migration") from None
        except DescriptionError as exc:
            raise _error("invalid", str(exc), "migration") from None
        steps = tuple(step.text for step in plan.steps)
        if request.dry_run or plan.direction == "none":
            return wire.MigrationDone(direction=plan.direction, steps=steps)
        assert plan.direction in ("up", "down")
        finished: list[str] = []
        for step in plan.steps:
            ctx = MigrationContext(
                service,
                self.effects,
                direction=plan.direction,
                from_version=request.from_version,
                to_version=request.to_version,
                step=step.text,
            )
            try:
                self._call(f"migration {plan.direction} {step.text}", step.fn, ctx)
            except CallFailed as failed:
                if finished:
                    done = ", ".join(finished)
                    error = failed.error
                    raise _error(
                        error.reason,
                        f"{error.message} (steps already run: {done})",
                        error.hook,
                        error.debug,
                        failed.original,
                    ) from None
                raise
            finished.append(step.text)
        return wire.MigrationDone(direction=plan.direction, steps=steps)

    def run_check(self, service: Service, check_id: str) -> wire.CheckResult:
        if not self._described:  # asked before any Describe (e.g. the runtime was restarted)
            self.describe(service, main=True)
        found = self._checks.get(check_id)
        if found is None:
            raise _error("bad-request", f"there is no health check {check_id!r}", f"check {check_id}")
        spec, check, daemon = found
        if isinstance(check, FunctionCheck):
            ctx = CheckContext(service, self.effects, daemon)
            return run_function_check(check.fn, ctx, spec.timeout, busy=self._busy, key=check_id)
        return run_check(spec, self._check_env())

    def _action(self, service: Service, action_id: str) -> Any:
        action = service.actions.get(action_id)
        if action is None:
            raise _error("bad-request", f"there is no action {action_id!r}", f"action {action_id}")
        return action

    def get_action_input(self, service: Service, action_id: str) -> items.ActionInput:
        """The action's input spec and the current values to prefill its form with."""
        action = self._action(service, action_id)
        if action.input_spec is None:
            return items.ActionInput()
        value = None
        if action.input_fn is not None:
            ctx = ActionContext(service, self.effects, action_id)
            returned = self._call(f"input {action_id}", action.input_fn, ctx)
            if returned is not None and not isinstance(returned, Mapping):
                raise _error("invalid", f"the input function returned {type(returned).__name__}, not a dict")
            value = msgspec.to_builtins(dict(returned)) if returned is not None else None
        return items.ActionInput(spec=msgspec.to_builtins(dict(action.input_spec)), value=value)

    def run_action(self, service: Service, request: items.RunAction) -> items.ActionOutcome:
        """Run an action with input the host has validated."""
        action = self._action(service, request.action)
        ctx = ActionContext(service, self.effects, request.action)
        returned = self._call(f"action {request.action}", lambda c: action.fn(c, request.input), ctx)
        try:
            return outcome_of(request.action, returned)
        except DescriptionError as exc:
            raise _error("invalid", str(exc), f"action {request.action}") from None

"""Unit-testing a package's service code with plain pytest, no server needed.

:class:`ServiceTester` loads a package source folder's ``python/startos_service.py`` in the test
process and answers the same requests the runtime answers, through the same code, against
temporary directories (each volume, the run and tmp directories)::

    from startos.sdk.testing import ServiceTester

    def test_install_writes_the_greeting(tmp_path):
        with ServiceTester("examples/packages/hello-world", tmp_path) as t:
            t.run_init("install")
            assert t.volume("main", "greeting.txt").read_text().startswith("Hello")
            web = t.daemon("web")
            assert web.ready.path == "/health"

Results are round-tripped through MessagePack and decoded strictly, as the host would decode
them, so a description the server would refuse fails the test too. A hook that raises makes the
call raise :class:`ServiceCallError` chained to the package's own exception. Progress reports
(:func:`startos.sdk.report_progress` and ``ctx.report_progress``) made in the test process are
collected in :attr:`ServiceTester.progress`. :meth:`ServiceTester.start_daemon` runs a daemon's
real process with the environment the server would give it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from startos.protocol import runtime as wire
from startos.protocol.service_items import (
    ActionInput,
    ActionOutcome,
    ClearTask,
    CreateTask,
    GetActionInput,
    RunAction,
)
from startos.sdk import _env, _progress
from startos.sdk._dispatch import CallFailed, Dispatcher
from startos.sdk._migrations import validate_steps
from startos.sdk._service import Service
from startos.sdk.errors import DescriptionError, SdkError

__all__ = ["FakeEffects", "ServiceCallError", "ServiceTester"]


class ServiceCallError(SdkError):
    """Raised when a request fails; ``error`` is what the host would receive, ``__cause__`` the
    package's own exception (when one was raised)."""

    def __init__(self, error: wire.RemoteError) -> None:
        hook = f" ({error.hook})" if error.hook else ""
        super().__init__(f"{error.reason}{hook}: {error.message}")
        self.error = error


class FakeEffects:
    """The host's side of effects, recorded: ``progress`` and every effect in ``calls``."""

    def __init__(self, container_ip: str = "127.0.0.1") -> None:
        self.ip = container_ip
        self.progress: list[wire.ReportProgress] = []
        self.calls: list[object] = []
        self.tasks: dict[str, CreateTask] = {}  # replay id -> the task, as the host would keep it

    def create_task(self, task: CreateTask) -> bool:
        self.calls.append(task)
        self.tasks[task.replay_id] = task
        return True

    def clear_task(self, task: ClearTask) -> None:
        self.calls.append(task)
        self.tasks.pop(task.replay_id, None)

    def container_ip(self) -> str:
        self.calls.append(wire.GetContainerIp())
        return self.ip

    def report_progress(self, report: wire.ReportProgress) -> None:
        self.calls.append(report)
        self.progress.append(report)


class ServiceTester:
    """A package's service code loaded in-process with a fake sandbox under ``tmp``.

    ``folder`` is the package source folder (``manifest.json``, ``python/``). The package id and
    volumes come from its manifest when it has one (the service's volumes must equal the
    manifest's), else from ``package_id`` and the service itself. Use it as a context manager:
    leaving restores ``sys.path``, ``sys.modules`` and the SDK's environment.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        tmp: str | os.PathLike[str],
        *,
        package_id: str | None = None,
        container_ip: str = "127.0.0.1",
    ) -> None:
        self.folder = Path(folder).resolve()
        self.tmp = Path(tmp)
        self.effects = FakeEffects(container_ip)
        self.manifest: dict[str, Any] | None = None
        manifest_path = self.folder / "manifest.json"
        if manifest_path.is_file():
            self.manifest = json.loads(manifest_path.read_text())
        self.package_id = package_id or (self.manifest or {}).get("id") or self.folder.name
        self.volumes_dir = self.tmp / "volumes"
        self.env: dict[str, str] = {
            _env.ENV_CODE: str(self.folder),
            _env.ENV_VOLUMES: str(self.volumes_dir),
            _env.ENV_RUN: str(self.tmp / "run"),
            _env.ENV_TMP: str(self.tmp / "tmp"),
            _env.ENV_PACKAGE_ID: self.package_id,
        }
        self._service: Service | None = None
        self._dispatcher: Dispatcher | None = None
        self._saved_path: list[str] = []
        self._saved_modules: set[str] = set()
        self._saved_bytecode = sys.dont_write_bytecode
        self._env_cm: Any = None

    # -- setup and teardown -----------------------------------------------------------------------

    def __enter__(self) -> ServiceTester:
        from startos.sdk._loader import load_service

        for name in ("run", "tmp"):
            (self.tmp / name).mkdir(parents=True, exist_ok=True)
        self._saved_path = list(sys.path)
        self._saved_modules = set(sys.modules)
        # Tests must not write __pycache__ into the package's source folder.
        self._saved_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        self._env_cm = _env.override_env(self.env)
        self._env_cm.__enter__()
        _progress.set_sink(self.effects.report_progress)
        try:
            self._service = load_service(self.folder / "python")
            validate_steps(self._service)
            self._check_manifest(self._service)
            for volume in self._service.volumes:
                (self.volumes_dir / volume).mkdir(parents=True, exist_ok=True)
            self._dispatcher = Dispatcher(self._service, self.effects, check_env=self._subprocess_env)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _progress.set_sink(None)
        if self._env_cm is not None:
            self._env_cm.__exit__(None, None, None)
            self._env_cm = None
        sys.path[:] = self._saved_path
        sys.dont_write_bytecode = self._saved_bytecode
        python_dir = str(self.folder / "python")
        for name in set(sys.modules) - self._saved_modules:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(python_dir):
                del sys.modules[name]  # the next tester may load another package's modules

    def _check_manifest(self, service: Service) -> None:
        if self.manifest is None:
            return
        declared, listed = set(service.volumes), set(self.manifest.get("volumes") or [])
        if declared != listed:
            raise DescriptionError(
                f"the service declares volumes {sorted(declared)} but manifest.json lists {sorted(listed)}"
            )

    # -- what the test looks at -------------------------------------------------------------------

    @property
    def service(self) -> Service:
        """The loaded ``service`` object."""
        if self._service is None:
            raise SdkError("use ServiceTester as a context manager: with ServiceTester(...) as t")
        return self._service

    @property
    def progress(self) -> list[wire.ReportProgress]:
        """Progress reports made in this process, oldest first."""
        return self.effects.progress

    def volume(self, volume: str, *parts: str) -> Path:
        """A path inside a volume of the fake sandbox."""
        if volume not in self.service.volumes:
            raise SdkError(f"volume {volume!r} is not declared by the service")
        return self.volumes_dir.joinpath(volume, *parts)

    # -- requests, as the runtime answers them ----------------------------------------------------

    def _call(self, request: wire.RuntimeRequest) -> Any:
        if self._dispatcher is None:
            raise SdkError("use ServiceTester as a context manager: with ServiceTester(...) as t")
        import msgspec

        # The request goes through the wire too: a bad version or kind fails as on the server.
        request = msgspec.msgpack.decode(msgspec.msgpack.encode(request), type=type(request))
        try:
            result = self._dispatcher.handle(request)
        except CallFailed as failed:
            raise ServiceCallError(failed.error) from failed.original
        expected = wire.reply_type(request)
        return msgspec.msgpack.decode(msgspec.msgpack.encode(result), type=expected)

    def describe(self, *, main: bool = True) -> wire.ServiceDescription:
        """The description the host would get at start (``main=False``: without running main)."""
        result: wire.ServiceDescription = self._call(wire.Describe(main=main))
        return result

    def daemon(self, daemon_id: str) -> wire.DaemonSpec:
        """One daemon of the description."""
        for spec in self.describe().daemons:
            if spec.id == daemon_id:
                return spec
        raise SdkError(f"the service has no daemon {daemon_id!r}")

    def oneshot(self, oneshot_id: str) -> wire.OneshotSpec:
        """One oneshot of the description."""
        for spec in self.describe().oneshots:
            if spec.id == oneshot_id:
                return spec
        raise SdkError(f"the service has no oneshot {oneshot_id!r}")

    def run_init(self, kind: wire.InitKind, previous_version: str | None = None) -> None:
        """Run the init hook of ``kind`` as the server would."""
        self._call(wire.RunInit(kind=kind, previous_version=previous_version))

    def run_uninit(self, kind: wire.UninitKind, next_version: str | None = None) -> None:
        """Run the uninit hook of ``kind`` as the server would."""
        self._call(wire.RunUninit(kind=kind, next_version=next_version))

    def run_migration(self, from_version: str, to_version: str, *, dry_run: bool = False) -> wire.MigrationDone:
        """Migrate the fake volumes' data between versions (or plan it, with ``dry_run``)."""
        result: wire.MigrationDone = self._call(
            wire.RunMigration(from_version=from_version, to_version=to_version, dry_run=dry_run)
        )
        return result

    def run_check(self, check_id: str) -> wire.CheckResult:
        """Run a health check once: a daemon's ready check by the daemon's id, or a HealthCheck's id."""
        result: wire.CheckResult = self._call(wire.RunHealthCheck(check=check_id))
        return result

    @property
    def tasks(self) -> dict[str, CreateTask]:
        """Tasks the package created (and did not clear) in this test, by replay id."""
        return self.effects.tasks

    def action_input(self, action_id: str) -> ActionInput:
        """The action's input spec and prefilled values, as the server's form would get them."""
        result: ActionInput = self._call(GetActionInput(action=action_id))
        return result

    def run_action(self, action_id: str, input: dict[str, Any] | None = None) -> ActionOutcome:
        """Run an action; ``input`` is validated against its spec first, as the server does."""
        spec = self.action_input(action_id).spec
        if spec is not None:
            from startos.protocol.inputspec import decode_spec, validate_input

            input = validate_input(decode_spec(spec), input or {})
        elif input is not None:
            raise SdkError(f"action {action_id!r} takes no input")
        result: ActionOutcome = self._call(RunAction(action=action_id, input=input))
        return result

    # -- real processes ---------------------------------------------------------------------------

    def _subprocess_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, **self.env, "PYTHONDONTWRITEBYTECODE": "1", **(extra or {})}

    def start_daemon(self, daemon: str | wire.DaemonSpec, **popen: Any) -> subprocess.Popen[bytes]:
        """Start a daemon's real process with the environment the server gives it; stop it yourself.

        ``daemon`` is an id (described now) or a spec described earlier. Output is inherited
        unless ``stdout``/``stderr`` are passed (as to ``subprocess.Popen``).
        """
        spec = self.daemon(daemon) if isinstance(daemon, str) else daemon
        return subprocess.Popen(list(spec.argv), env=self._subprocess_env(spec.env), cwd=spec.cwd, **popen)

    def run_oneshot(
        self, oneshot: str | wire.OneshotSpec, *, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a oneshot's real process to the end (output captured); ``oneshot`` as for start_daemon."""
        spec = self.oneshot(oneshot) if isinstance(oneshot, str) else oneshot
        return subprocess.run(
            list(spec.argv),
            env=self._subprocess_env(spec.env),
            cwd=spec.cwd,
            capture_output=True,
            timeout=spec.timeout or timeout,
            check=False,
        )

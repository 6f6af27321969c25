"""The context a package's hooks receive: paths, versions and the effects they may call."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from startos.protocol import runtime as wire
from startos.protocol.service_items import ClearTask, CreateTask, Severity, TaskTrigger
from startos.sdk import _env
from startos.sdk._progress import make_report
from startos.sdk.errors import SdkError

if TYPE_CHECKING:
    from startos.s9pk.exver import ExtendedVersion
    from startos.sdk._service import Service

__all__ = [
    "ActionContext",
    "CheckContext",
    "Context",
    "Effects",
    "InitContext",
    "MainContext",
    "MigrationContext",
    "UninitContext",
]


class Effects(Protocol):
    """What package code may ask of the host (the runtime forwards these; tests fake them)."""

    def container_ip(self) -> str: ...

    def report_progress(self, report: wire.ReportProgress) -> None: ...

    def create_task(self, task: CreateTask) -> bool: ...

    def clear_task(self, task: ClearTask) -> None: ...


def _parse(text: str | None) -> ExtendedVersion | None:
    if text is None:
        return None
    # Imported here: the s9pk package is large and most runtime starts never need a version.
    from startos.s9pk.exver import ExtendedVersion

    return ExtendedVersion.parse(text)


class Context:
    """Paths of this service and the effects package code may call."""

    def __init__(self, service: Service, effects: Effects) -> None:
        self._service = service
        self._effects = effects

    @property
    def package_id(self) -> str:
        """The id of this package."""
        return _env.package_id()

    def volume_path(self, volume: str, *parts: str) -> Path:
        """A path inside one of the service's declared volumes."""
        if volume not in self._service.volumes:
            declared = ", ".join(self._service.volumes) or "none"
            raise SdkError(f"volume {volume!r} is not declared by the service (declared: {declared})")
        return _env.volume_path(volume, *parts)

    def code_path(self, *parts: str) -> Path:
        """A path inside the package's (read-only) code folder."""
        return _env.code_path(*parts)

    def tmp_path(self, *parts: str) -> Path:
        """A path inside the service's private temporary directory."""
        return _env.tmp_path(*parts)

    def container_ip(self) -> str:
        """The service's IP address as the host and other services reach it."""
        return self._effects.container_ip()

    def report_progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Report progress of a long hook (``daemon`` is None in the report)."""
        self._effects.report_progress(make_report(None, done, total, message))

    def create_task(
        self,
        action_id: str,
        *,
        replay_id: str | None = None,
        package_id: str | None = None,
        severity: Severity = "important",
        reason: str | None = None,
        input: dict[str, Any] | None = None,
        when_input_not_matches: bool = False,
        once: bool = False,
    ) -> bool:
        """Ask the user to run ``action_id`` (of ``package_id``, default this package).

        ``severity`` critical means the service cannot start until the task is done; ``input``
        prefills the action's form. With ``when_input_not_matches`` the task is active only
        while the action's current input differs from ``input``, and comes back when it does
        again (unless ``once``). Without it, the task clears when the action has run. The same
        ``replay_id`` (default: ``<package>-<action>``) replaces the task. Returns whether the
        task is active now.
        """
        target = package_id or self.package_id
        try:
            task = CreateTask(
                replay_id=replay_id or f"{target}-{action_id}",
                action_id=action_id,
                package_id=package_id,
                severity=severity,
                reason=reason,
                input=input,
                when=TaskTrigger(once=once) if when_input_not_matches else None,
            )
            task = msgspec.msgpack.decode(msgspec.msgpack.encode(task), type=CreateTask)  # enforce the limits now
        except (msgspec.ValidationError, ValueError) as exc:
            raise SdkError(f"create_task: {exc}") from None
        return self._effects.create_task(task)

    def clear_task(self, replay_id: str) -> None:
        """Withdraw a task this package created (nothing happens if it does not exist)."""
        self._effects.clear_task(ClearTask(replay_id=replay_id))


class ActionContext(Context):
    """Given to an action and to its input function: ``action_id`` is the action's id."""

    def __init__(self, service: Service, effects: Effects, action_id: str) -> None:
        super().__init__(service, effects)
        self.action_id = action_id


class MainContext(Context):
    """Given to the main function, which returns the daemons and oneshots to run."""


class CheckContext(Context):
    """Given to a function check; ``daemon`` is the id of the daemon it checks."""

    def __init__(self, service: Service, effects: Effects, daemon: str) -> None:
        super().__init__(service, effects)
        self.daemon = daemon


class InitContext(Context):
    """Given to an init hook: ``kind`` is install, update or restore."""

    def __init__(self, service: Service, effects: Effects, kind: wire.InitKind, previous_version: str | None) -> None:
        super().__init__(service, effects)
        self.kind: wire.InitKind = kind
        self.previous_version_text = previous_version

    @property
    def previous_version(self) -> ExtendedVersion | None:
        """On update, the version that was installed before; otherwise None (or the backup's version)."""
        return _parse(self.previous_version_text)


class UninitContext(Context):
    """Given to an uninit hook: ``kind`` is uninstall or update."""

    def __init__(self, service: Service, effects: Effects, kind: wire.UninitKind, next_version: str | None) -> None:
        super().__init__(service, effects)
        self.kind: wire.UninitKind = kind
        self.next_version_text = next_version

    @property
    def next_version(self) -> ExtendedVersion | None:
        """On update, the version about to be installed; on uninstall None."""
        return _parse(self.next_version_text)


class MigrationContext(Context):
    """Given to one migration step: the whole migration's ends and this step's version."""

    def __init__(
        self,
        service: Service,
        effects: Effects,
        *,
        direction: Literal["up", "down"],
        from_version: str,
        to_version: str,
        step: str,
    ) -> None:
        super().__init__(service, effects)
        self.direction = direction
        self.from_version_text = from_version
        self.to_version_text = to_version
        self.step_text = step

    @property
    def from_version(self) -> ExtendedVersion:
        """The version whose data the whole migration starts from."""
        version = _parse(self.from_version_text)
        assert version is not None
        return version

    @property
    def to_version(self) -> ExtendedVersion:
        """The version whose data the whole migration ends with."""
        version = _parse(self.to_version_text)
        assert version is not None
        return version

    @property
    def step(self) -> ExtendedVersion:
        """The version of this step (``up`` migrates to it, ``down`` migrates away from it)."""
        version = _parse(self.step_text)
        assert version is not None
        return version

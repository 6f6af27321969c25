"""What a service runs: daemons, oneshots, their readiness checks, and its backup description.

These are the package author's records. Each validates on construction (a mistake fails at the
line that made it, with the daemon's id in the message) and turns into the wire record of
:mod:`startos.protocol.runtime` when the service is described.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from startos.protocol import runtime as wire
from startos.sdk.errors import DescriptionError

if TYPE_CHECKING:
    from startos.sdk._context import CheckContext

__all__ = [
    "Backup",
    "Check",
    "CommandCheck",
    "Daemon",
    "FunctionCheck",
    "HealthCheck",
    "HttpCheck",
    "Oneshot",
    "TcpCheck",
]

T = TypeVar("T")

#: What a function check may return: a result, or True (success) / False (failure).
CheckOutcome = wire.CheckResult | bool


def _convert(what: str, data: dict[str, Any], kind: type[T]) -> T:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise DescriptionError(f"{what}: {exc}") from None


def _check_fields(**fields: Any) -> dict[str, Any]:
    data = {k: v for k, v in fields.items() if v is not None}
    for key in ("argv", "expected_status"):
        if key in data and isinstance(data[key], str | bytes):
            raise DescriptionError(f"{key} must be a list, not a single string")
    return data


@dataclass(frozen=True)
class HttpCheck:
    """Ready when ``GET http://host:port/path`` answers ``status`` (one code or several)."""

    port: int
    path: str = "/"
    _: KW_ONLY
    status: int | Sequence[int] = 200
    host: str = "127.0.0.1"
    timeout: float = 5.0
    grace_period: float = 10.0
    display: str | None = None
    interval: float = 30.0  # seconds between runs once the check has settled

    def to_wire(self, what: str) -> wire.HttpReady:
        statuses = (self.status,) if isinstance(self.status, int) else tuple(self.status)
        data = _check_fields(
            port=self.port,
            path=self.path,
            expected_status=statuses,
            host=self.host,
            timeout=self.timeout,
            grace_period=self.grace_period,
            display=self.display,
        )
        return _convert(f"{what}: HTTP check", data, wire.HttpReady)


@dataclass(frozen=True)
class TcpCheck:
    """Ready when a TCP connection to ``host:port`` succeeds."""

    port: int
    _: KW_ONLY
    host: str = "127.0.0.1"
    timeout: float = 5.0
    grace_period: float = 10.0
    display: str | None = None
    interval: float = 30.0  # seconds between runs once the check has settled

    def to_wire(self, what: str) -> wire.TcpReady:
        data = _check_fields(
            port=self.port, host=self.host, timeout=self.timeout, grace_period=self.grace_period, display=self.display
        )
        return _convert(f"{what}: TCP check", data, wire.TcpReady)


@dataclass(frozen=True)
class CommandCheck:
    """Ready when ``argv`` exits with status 0; its last output line explains a failure."""

    argv: Sequence[str]
    _: KW_ONLY
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    grace_period: float = 10.0
    display: str | None = None
    interval: float = 30.0  # seconds between runs once the check has settled

    def to_wire(self, what: str) -> wire.CommandReady:
        data = _check_fields(
            argv=self.argv,
            env=dict(self.env),
            timeout=self.timeout,
            grace_period=self.grace_period,
            display=self.display,
        )
        return _convert(f"{what}: command check", data, wire.CommandReady)


@dataclass(frozen=True)
class FunctionCheck:
    """A Python function of the package decides: ``fn(ctx) -> CheckResult | bool``.

    Return ``CheckResult(result="loading", message="Synced 40%")`` to show progress; raising
    counts as a failure with the exception's message. It runs in the runtime, inside the sandbox.
    """

    fn: Callable[[CheckContext], CheckOutcome]
    _: KW_ONLY
    timeout: float = 10.0
    grace_period: float = 10.0
    display: str | None = None
    interval: float = 30.0  # seconds between runs once the check has settled

    def to_wire(self, what: str) -> wire.FunctionReady:
        if not callable(self.fn):
            raise DescriptionError(f"{what}: a function check needs a callable")
        data = _check_fields(timeout=self.timeout, grace_period=self.grace_period, display=self.display)
        return _convert(f"{what}: function check", data, wire.FunctionReady)


Check = HttpCheck | TcpCheck | CommandCheck | FunctionCheck
_CHECK_TYPES = (HttpCheck, TcpCheck, CommandCheck, FunctionCheck)


@dataclass(frozen=True)
class HealthCheck:
    """A health check of its own, shown with ``name`` (None: internal, hidden but gating).

    Return it from the main function next to the daemons; a daemon or oneshot that lists its id
    in ``requires`` starts only once it succeeds. ``requires`` here names other checks this one
    waits for (shown as *waiting*); ``daemon`` ties it to a daemon (its grace period restarts with
    the daemon). Conditional checks are plain Python: return the check only when the feature is
    on, or with ``enabled=False`` to show it as *disabled*.
    """

    id: str
    check: Check
    _: KW_ONLY
    name: str | None = None
    daemon: str | None = None
    requires: Sequence[str] = ()
    enabled: bool = True

    @property
    def what(self) -> str:
        return f"health check {self.id!r}"

    def __post_init__(self) -> None:
        self.to_wire()

    def to_wire(self) -> wire.HealthCheckDecl:
        if not isinstance(self.check, _CHECK_TYPES):
            raise DescriptionError(f"{self.what}: check must be an HttpCheck, TcpCheck, CommandCheck or FunctionCheck")
        if isinstance(self.requires, str):
            raise DescriptionError(f"{self.what}: requires must be a list of ids, not one string")
        data = {
            "id": self.id,
            "name": self.name if self.name is not None else self.check.display,
            "check": msgspec.to_builtins(self.check.to_wire(self.what)),
            "daemon": self.daemon,
            "requires": list(self.requires),
            "interval": self.check.interval,
            "enabled": self.enabled,
        }
        return _convert(self.what, {k: v for k, v in data.items() if v is not None}, wire.HealthCheckDecl)


def _common(item: Daemon | Oneshot) -> dict[str, Any]:
    if isinstance(item.argv, str | bytes):
        raise DescriptionError(f"{item.what}: argv must be a list of strings, not one string")
    if isinstance(item.requires, str):
        raise DescriptionError(f"{item.what}: requires must be a list of ids, not one string")
    try:
        argv, requires, env = list(item.argv), list(item.requires), dict(item.env)
    except TypeError as exc:
        raise DescriptionError(f"{item.what}: {exc}") from None
    return {"id": item.id, "argv": argv, "env": env, "requires": requires, "cwd": item.cwd, "user": item.user}


@dataclass(frozen=True)
class Daemon:
    """A long-running process; the host restarts it if it exits.

    ``requires`` names daemons (started and ready) and oneshots (finished with status 0) that
    must come first. ``ready`` tells when the daemon is up; without one it is ready once started.
    """

    id: str
    _: KW_ONLY
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    user: str | None = None
    ready: Check | None = None
    requires: Sequence[str] = ()
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 30.0

    @property
    def what(self) -> str:
        return f"daemon {self.id!r}"

    def __post_init__(self) -> None:
        self.to_wire()  # validate now, so the error points at the line that built it

    def to_wire(self) -> wire.DaemonSpec:
        data = _common(self)
        if self.ready is not None:
            if not isinstance(self.ready, HttpCheck | TcpCheck | CommandCheck | FunctionCheck):
                raise DescriptionError(
                    f"{self.what}: ready must be an HttpCheck, TcpCheck, CommandCheck or FunctionCheck"
                )
            data["ready"] = msgspec.to_builtins(self.ready.to_wire(self.what))
        data.update(stop_signal=self.stop_signal, stop_timeout=self.stop_timeout)
        return _convert(self.what, {k: v for k, v in data.items() if v is not None}, wire.DaemonSpec)


@dataclass(frozen=True)
class Oneshot:
    """A process that must exit with status 0 before anything that ``requires`` it starts."""

    id: str
    _: KW_ONLY
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    user: str | None = None
    requires: Sequence[str] = ()
    timeout: float | None = None

    @property
    def what(self) -> str:
        return f"oneshot {self.id!r}"

    def __post_init__(self) -> None:
        self.to_wire()

    def to_wire(self) -> wire.OneshotSpec:
        data = _common(self)
        data["timeout"] = self.timeout
        return _convert(self.what, {k: v for k, v in data.items() if v is not None}, wire.OneshotSpec)


@dataclass(frozen=True)
class Backup:
    """Which volumes a backup holds, without paths matching ``exclude`` (globs, relative to a volume).

    ``Backup(volumes=["main"], exclude=["cache/**", "*.tmp"])``; ``per_volume`` adds exclusions
    for one volume only: ``per_volume={"main": ["blocks/**"]}``.
    """

    volumes: Sequence[str]
    _: KW_ONLY
    exclude: Sequence[str] = ()
    per_volume: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.to_wire()

    def to_wire(self) -> wire.BackupSpec:
        singles = [self.volumes, self.exclude, *self.per_volume.values()]
        if any(isinstance(value, str) for value in singles):
            raise DescriptionError("backup: volumes and exclusions must be lists, not single strings")
        unknown = set(self.per_volume) - set(self.volumes)
        if unknown:
            raise DescriptionError(f"backup: per_volume names volumes not backed up: {', '.join(sorted(unknown))}")
        volumes = [
            {"id": volume, "exclude": [*self.exclude, *self.per_volume.get(volume, ())]} for volume in self.volumes
        ]
        return _convert("backup", {"volumes": volumes}, wire.BackupSpec)

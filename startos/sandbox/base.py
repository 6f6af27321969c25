"""The one interface every sandbox backend implements (DESIGN.md "Sandboxes").

A *sandbox* is one service's isolated world: its code (read-only), its volumes (read-write), a
private /tmp, and, with the ``namespace`` backend, its own mount/PID/IPC/UTS/network namespaces
and cgroup limits. Every process of the service (the runtime that loads its Python code, each
daemon, each oneshot, ``package attach`` shells) is started *in* the sandbox through ``spawn``.

Paths a service sees are fixed, whatever the backend:

* ``/startos/code``            the unpacked package (the ``python/`` code and ``assets/``), read-only
* ``/startos/volumes/<id>``    each volume, read-write
* ``/startos/run``             the runtime's socket directory (host <-> runtime)
* ``/tmp``                     private to the service

The ``process`` backend (no isolation, any user) cannot remap paths, so it passes the real host
paths in the environment instead (``STARTOS_CODE``, ``STARTOS_VOLUMES``, ``STARTOS_RUN``,
``STARTOS_TMP``); every backend sets those variables (to the ``/startos/...`` paths when it can
remap), so package code uses ``startos.sdk`` helpers (or those variables), never hard-coded paths.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import IO, Any

import msgspec

from startos.errors import StartOSError
from startos.paths import check_id


class SandboxError(StartOSError):
    """Raised when a sandbox cannot be created, entered or torn down; the message names the service."""


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Resource limits from the manifest; ``None`` means unlimited."""

    memory_bytes: int | None = None
    cpu_cores: float | None = None
    max_processes: int | None = None


class SandboxSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a backend needs to build one service's sandbox."""

    package_id: str
    code_dir: Path  # host path of the unpacked package, shown read-only
    volumes_dir: Path  # host directory holding one sub-directory per volume, shown read-write
    volume_ids: tuple[str, ...] = ()
    run_dir: Path  # host directory for the runtime socket
    tmp_dir: Path  # host directory backing the private /tmp
    limits: Limits = Limits()
    network: bool = True

    def __post_init__(self) -> None:
        # The package id names directories, the namespace, veth pair and cgroup, and each volume
        # id a directory and a mount point: all of them go through the one id rule first.
        check_id(self.package_id, "package id")
        for volume in self.volume_ids:
            check_id(volume, "volume id")


class SandboxProcess(abc.ABC):
    """A process started inside a sandbox (wraps a gevent ``Popen``).

    ``pid`` is the host pid of the process-group leader (``signal_group`` targets that group).
    ``stdin``/``stdout``/``stderr`` are the pipes asked for with ``subprocess.PIPE``, else None.
    """

    pid: int
    stdin: IO[Any] | None = None
    stdout: IO[Any] | None = None
    stderr: IO[Any] | None = None

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> int | None:
        """Exit status once it has exited (negative: killed by that signal); ``None`` on timeout."""

    @abc.abstractmethod
    def poll(self) -> int | None: ...

    @abc.abstractmethod
    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the process's whole process group (it leads its own group)."""


class Sandbox(abc.ABC):
    """One service's sandbox; ``create`` before ``spawn``, ``destroy`` when the service stops."""

    kind: str  # "process" | "namespace"

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec

    @abc.abstractmethod
    def create(self) -> None:
        """Build the sandbox (directories, namespaces, cgroup, veth); idempotent."""

    @abc.abstractmethod
    def spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        stdin: int | IO[Any] | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        title: str | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> SandboxProcess:
        """Start ``argv`` inside the sandbox in a new process group.

        ``cwd`` and paths in ``argv`` are sandbox paths (``/startos/...``); ``title`` makes the
        process recognizable by its package id in ``ps``/``top``.
        """

    @abc.abstractmethod
    def host_path(self, sandbox_path: str) -> Path:
        """The host path behind a sandbox path (for the host's own reads, e.g. health scripts)."""

    @abc.abstractmethod
    def env(self) -> dict[str, str]:
        """Environment every process of the service gets (``STARTOS_*`` paths, package id)."""

    @abc.abstractmethod
    def destroy(self) -> None:
        """Kill every process still inside and remove namespaces/cgroups; idempotent."""

    def address(self) -> str | None:
        """The service's own IP address, as the host reaches it; None when it shares the host's network."""
        return None

    def members(self) -> set[int]:
        """Host pids of every live process of the service (the backend's helpers excluded)."""
        return set()

    def stats(self) -> dict[str, Any]:
        """CPU, memory and process counts of everything inside (backends may do better).

        Keys: ``cpu_percent`` (float, since the previous call; 100 = one core), ``memory_bytes``
        (int), ``processes`` (int), and ``memory_limit_bytes`` (int) where a memory limit is
        enforced. Reads ``/proc`` or the cgroup: cheap, but not free.
        """
        return {}

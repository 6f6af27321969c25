"""The ``process`` sandbox: no isolation, any Linux, any user; the embedded default for development.

It cannot remap paths, so the sandbox paths are translated to host paths instead: ``cwd`` and every
argument that starts with ``/startos/`` (whole arguments only, not ``--opt=/startos/...``), and the
``STARTOS_*`` variables and ``TMPDIR`` hold host paths. Resource limits are not enforced (a warning
says so). Each process leads its own session and process group; processes that leave their group
are still found on ``destroy`` by a token every process of the sandbox inherits in its environment.

What ``ps``/``top`` show: argv[0] becomes ``startos[<package id>] <argv[0]>`` (with a title:
``startos[<id>:<title>] <argv[0]>``), so ``ps -eo pid,args`` and ``top -c`` show the package id
for the process and everything it forks; ``comm`` (``ps -o comm``, plain ``top``) is the kernel's
name of the executable file, 15 characters, unchanged. A program the service execs later shows its
own argv.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import signal
import uuid
from pathlib import Path
from typing import IO, Any

import gevent.subprocess
import psutil

from startos.paths import safe_child

from . import _linux
from ._common import (
    PopenProcess,
    kill_pids,
    map_sandbox_path,
    pid_alive,
    process_title,
    resolve_user,
    wait_gone,
)
from .base import Limits, Sandbox, SandboxError, SandboxProcess, SandboxSpec

log = logging.getLogger(__name__)

TOKEN_VARIABLE = "STARTOS_SANDBOX_TOKEN"


class ProcessSandbox(Sandbox):
    """Runs a service's processes as plain host processes (see the module docstring)."""

    kind = "process"

    def __init__(self, spec: SandboxSpec, *, stop_grace: float = 2.0) -> None:
        super().__init__(spec)
        self.stop_grace = stop_grace
        self.token = uuid.uuid4().hex
        self._created = False
        self._processes: list[PopenProcess] = []
        self._usage: dict[int, psutil.Process] = {}

    def create(self) -> None:
        spec = self.spec
        directories = [spec.code_dir, spec.volumes_dir, spec.run_dir, spec.tmp_dir]
        try:
            directories += [safe_child(spec.volumes_dir, volume, kind="volume id") for volume in spec.volume_ids]
            for directory in directories:
                Path(directory).mkdir(parents=True, exist_ok=True)
            os.chmod(spec.tmp_dir, 0o1777)  # like any /tmp: a daemon running as another user writes there too
        except OSError as exc:
            raise SandboxError(f"cannot create the sandbox of {spec.package_id}: {exc}") from exc
        if not self._created and spec.limits != Limits():
            log.warning("the process sandbox does not enforce the resource limits of %s", spec.package_id)
        self._created = True

    def env(self) -> dict[str, str]:
        spec = self.spec
        return {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(spec.tmp_dir),
            "LANG": "C.UTF-8",
            "TMPDIR": str(spec.tmp_dir),
            "STARTOS_PACKAGE_ID": spec.package_id,
            "STARTOS_SANDBOX": self.kind,
            "STARTOS_CODE": str(spec.code_dir),
            "STARTOS_VOLUMES": str(spec.volumes_dir),
            "STARTOS_RUN": str(spec.run_dir),
            "STARTOS_TMP": str(spec.tmp_dir),
            TOKEN_VARIABLE: self.token,
        }

    def host_path(self, sandbox_path: str) -> Path:
        mapped = map_sandbox_path(self.spec, sandbox_path)
        return mapped if mapped is not None else Path(posixpath.normpath(sandbox_path))

    def _translate(self, argument: str) -> str:
        if not argument.startswith("/startos/"):
            return argument
        mapped = map_sandbox_path(self.spec, argument)
        return argument if mapped is None else str(mapped)

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
        package_id = self.spec.package_id
        if not self._created:
            raise SandboxError(f"the sandbox of {package_id} is not created (or was destroyed)")
        if not argv:
            raise SandboxError(f"cannot start a process of {package_id}: empty command")
        full_env = {**self.env(), **(env or {})}
        host_cwd = str(self.host_path(cwd or "/"))
        args = [self._translate(argument) for argument in argv]
        program = args[0]
        exe = shutil.which(program, path=full_env.get("PATH", os.defpath)) if "/" not in program else program
        if exe is None or not os.access(os.path.join(host_cwd, exe), os.X_OK):
            raise SandboxError(f"cannot run {argv[0]!r} in the sandbox of {package_id}: no such program")
        if _linux.is_venv_python(exe):
            full_env.setdefault("PYTHONEXECUTABLE", os.path.join(host_cwd, exe))
        identity: dict[str, Any] = {}
        ids = resolve_user(package_id, user)
        if ids is not None and (ids[0], ids[1]) != (os.geteuid(), os.getegid()):
            if os.geteuid() != 0:
                raise SandboxError(f"cannot run a process of {package_id} as {user!r}: only root can switch users")
            identity = {"user": ids[0], "group": ids[1], "extra_groups": ids[2]}
        try:
            popen = gevent.subprocess.Popen(
                [process_title(package_id, argv[0], title), *args[1:]],
                executable=exe,
                env=full_env,
                cwd=host_cwd,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                pass_fds=pass_fds,
                close_fds=True,
                start_new_session=True,
                **identity,
            )
        except OSError as exc:
            raise SandboxError(f"cannot run {argv[0]!r} in the sandbox of {package_id}: {exc}") from exc
        process = PopenProcess(popen, package_id)
        self._processes = [p for p in self._processes if p.poll() is None or p.group_alive()]
        self._processes.append(process)
        return process

    def members(self) -> set[int]:
        """Host pids of every live process of the sandbox: its groups, and whatever carries its token."""
        groups = {p.pid for p in self._processes}
        token = f"{TOKEN_VARIABLE}={self.token}".encode()
        found = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    stat = f.read()
                fields = stat[stat.rfind(b")") + 2 :].split()
                if fields[0] in (b"Z", b"X"):
                    continue
                if int(fields[2]) in groups:
                    found.add(pid)
                    continue
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if token in f.read().split(b"\0"):
                        found.add(pid)
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile, or not ours to read
        return found

    def destroy(self) -> None:
        """SIGTERM every process of the sandbox, SIGKILL what is left after ``stop_grace``; keep the files."""
        processes = list(self._processes)
        pids = self.members()
        for process in processes:
            process.signal_group(signal.SIGTERM)
        kill_pids(pids, signal.SIGTERM)
        if not wait_gone(lambda: any(pid_alive(pid) for pid in pids), self.stop_grace):
            for process in processes:
                process.signal_group(signal.SIGKILL)
            kill_pids(pids | self.members(), signal.SIGKILL)
            wait_gone(lambda: any(pid_alive(pid) for pid in pids), 5.0)
        for process in processes:
            process.wait(timeout=1.0)  # let gevent's child watcher reap the leaders
        left = self.members()
        if left:
            log.warning("processes of %s outlived its sandbox: %s", self.spec.package_id, sorted(left))
        self._processes = []
        self._usage = {}
        self._created = False

    def stats(self) -> dict[str, Any]:
        """``cpu_percent`` (since the previous call; 100 = one core), ``memory_bytes`` (RSS), ``processes``."""
        cpu = 0.0
        rss = 0
        pids = self.members()
        for pid in pids:
            process = self._usage.get(pid)
            try:
                if process is None:
                    process = self._usage[pid] = psutil.Process(pid)
                cpu += process.cpu_percent(interval=None)
                rss += process.memory_info().rss
            except psutil.Error:
                continue
        self._usage = {pid: p for pid, p in self._usage.items() if pid in pids}
        return {"cpu_percent": round(cpu, 1), "memory_bytes": rss, "processes": len(pids)}

    def __repr__(self) -> str:
        return f"<ProcessSandbox {self.spec.package_id} processes={len(self._processes)}>"

"""One service's cgroup: limits (memory, CPU, process count) and accounting, on cgroup v2 or v1.

cgroup v2 is used where its root (``/sys/fs/cgroup/cgroup.controllers``) offers the controllers the
limits need, as on a stock Debian 12; otherwise the v1 hierarchies ``/sys/fs/cgroup/<controller>``
(REFERENCE.md §10: some hosts mount only v1 for memory/pids/cpu, their v2 mount has none of them).
A service's group is ``<parent>/<package id>`` (parent ``startos``) in each hierarchy used.
Requested limits that neither version can enforce are an error, never silently dropped; without
limits a group is still made where possible, for usage figures and a reliable "kill everything".
"""

from __future__ import annotations

import errno
import logging
import os
import time
from pathlib import Path

import gevent

from .base import Limits, SandboxError

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000
V1_ACCOUNTING = ("memory", "pids", "cpu", "cpuacct")


def needed_controllers(limits: Limits) -> set[str]:
    """The controllers ``limits`` need (v1 and v2 share these names)."""
    needed = set()
    if limits.memory_bytes is not None:
        needed.add("memory")
    if limits.cpu_cores is not None:
        needed.add("cpu")
    if limits.max_processes is not None:
        needed.add("pids")
    return needed


def _read(path: Path) -> str:
    return path.read_text().strip()


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def v2_controllers(root: Path = CGROUP_ROOT) -> set[str]:
    """Controllers of a cgroup v2 hierarchy mounted at ``root`` (empty when ``root`` is not v2)."""
    try:
        return set(_read(root / "cgroup.controllers").split())
    except OSError:
        return set()


def v1_controllers(root: Path = CGROUP_ROOT) -> set[str]:
    """v1 controllers mounted as ``root/<name>`` that this process may write to."""
    found = set()
    for name in V1_ACCOUNTING:
        directory = root / name
        if (directory / "cgroup.procs").exists() and os.access(directory, os.W_OK):
            found.add(name)
    return found


class Cgroup:
    """The cgroup directories of one service (one on v2; one per controller hierarchy on v1)."""

    def __init__(self, package_id: str, version: int, directories: list[Path]) -> None:
        self.package_id = package_id
        self.version = version
        self.directories = directories
        self._last_cpu: tuple[float, int] | None = None

    def __repr__(self) -> str:
        return f"<Cgroup v{self.version} {', '.join(map(str, self.directories))}>"

    def procs_files(self) -> list[str]:
        """Files a process writes "0" to, to join the group in every hierarchy."""
        return [str(d / "cgroup.procs") for d in self.directories]

    def _dir(self, controller: str) -> Path | None:
        if self.version == 2:
            return self.directories[0]
        for directory in self.directories:
            hierarchy = directory.parent.parent  # <root>/<controller>/<parent>/<package id>
            names = {*hierarchy.name.split(","), *hierarchy.resolve().name.split(",")}
            if controller in names:
                return directory
        return None

    def apply(self, limits: Limits) -> None:
        """Write the limits; a refused write is an error naming the file."""
        try:
            if limits.memory_bytes is not None:
                self._set_memory(limits.memory_bytes)
            if limits.cpu_cores is not None:
                quota = max(1000, int(limits.cpu_cores * CPU_PERIOD_US))
                if self.version == 2:
                    _write(self.directories[0] / "cpu.max", f"{quota} {CPU_PERIOD_US}")
                else:
                    cpu = self._require("cpu")
                    _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                    _write(cpu / "cpu.cfs_quota_us", str(quota))
            if limits.max_processes is not None:
                directory = self.directories[0] if self.version == 2 else self._require("pids")
                _write(directory / "pids.max", str(limits.max_processes))
        except OSError as exc:
            raise SandboxError(f"cannot set the resource limits of {self.package_id}: {exc}") from exc

    def _require(self, controller: str) -> Path:
        directory = self._dir(controller)
        if directory is None:
            raise SandboxError(f"cannot limit {self.package_id}: no {controller} cgroup")
        return directory

    def _set_memory(self, limit: int) -> None:
        if self.version == 2:
            directory = self.directories[0]
            _write(directory / "memory.max", str(limit))
            if (directory / "memory.swap.max").exists():
                _write(directory / "memory.swap.max", "0")  # the limit is on memory, not memory + swap
            return
        directory = self._require("memory")
        memsw = directory / "memory.memsw.limit_in_bytes"
        if memsw.exists() and int(_read(memsw)) < limit:
            _write(memsw, str(limit))  # memory+swap may never be below memory alone
        _write(directory / "memory.limit_in_bytes", str(limit))
        if memsw.exists():
            _write(memsw, str(limit))

    def pids(self) -> set[int]:
        """Host pids of every process in the group."""
        found: set[int] = set()
        for directory in self.directories:
            try:
                found.update(int(line) for line in _read(directory / "cgroup.procs").split())
            except OSError:
                continue
        return found

    def stats(self) -> dict[str, float | int]:
        """Memory in use, CPU percent since the previous call (100 = one core), process count."""
        result: dict[str, float | int] = {}
        memory = self._dir("memory")
        if memory is not None:
            name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
            try:
                result["memory_bytes"] = int(_read(memory / name))
            except (OSError, ValueError):
                pass
        usage_ns = self._cpu_usage_ns()
        if usage_ns is not None:
            now = time.monotonic()
            percent = 0.0
            if self._last_cpu is not None and now > self._last_cpu[0]:
                percent = (usage_ns - self._last_cpu[1]) / 1e9 / (now - self._last_cpu[0]) * 100
            self._last_cpu = (now, usage_ns)
            result["cpu_percent"] = round(max(percent, 0.0), 1)
        result["processes"] = len(self.pids())
        return result

    def _cpu_usage_ns(self) -> int | None:
        try:
            if self.version == 2:
                for line in _read(self.directories[0] / "cpu.stat").splitlines():
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        return int(value) * 1000
                return None
            cpuacct = self._dir("cpuacct")
            return None if cpuacct is None else int(_read(cpuacct / "cpuacct.usage"))
        except (OSError, ValueError):
            return None

    def remove(self, timeout: float = 5.0) -> None:
        """Remove the directories once the processes have gone (the kernel refuses before)."""
        deadline = time.monotonic() + timeout
        for directory in self.directories:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        log.warning("cgroup %s of %s left behind: %s", directory, self.package_id, exc)
                        break
                    gevent.sleep(0.01)


def create(package_id: str, limits: Limits, parent: str = "startos", root: Path = CGROUP_ROOT) -> Cgroup | None:
    """Make (or reuse) the service's cgroup and apply ``limits``; None when no cgroup is usable.

    Raises ``SandboxError`` when limits are requested and neither cgroup v2 nor v1 offers the
    controllers they need.
    """
    needed = needed_controllers(limits)
    v2 = v2_controllers(root)
    v1 = v1_controllers(root)
    if needed and not needed <= v2 and not needed <= v1:
        missing = sorted(needed - v2) if v2 else sorted(needed - v1)
        raise SandboxError(
            f"cannot enforce the resource limits of {package_id}: this host offers no usable cgroup "
            f"controller for {', '.join(missing)} (cgroup v2 at {root} has {', '.join(sorted(v2)) or 'none'}; "
            f"cgroup v1 has {', '.join(sorted(v1)) or 'none'}). Enable them, or remove the limits."
        )
    wanted_v2 = {"memory", "pids", "cpu"} & v2
    use_v2 = needed <= v2 if needed else bool(wanted_v2)
    try:
        if use_v2:
            group = _create_v2(package_id, needed | wanted_v2, parent, root)
        elif v1:
            group = _create_v1(package_id, v1, parent, root)
        else:
            return None
    except OSError as exc:
        if needed:
            raise SandboxError(f"cannot create the cgroup of {package_id}: {exc}") from exc
        log.info("no cgroup for %s (%s): no usage figures from the kernel", package_id, exc)
        return None
    try:
        group.apply(limits)
    except SandboxError:
        group.remove(timeout=0)
        raise
    return group


def _create_v2(package_id: str, controllers: set[str], parent: str, root: Path) -> Cgroup:
    enable = " ".join(f"+{name}" for name in sorted(controllers))
    top = root / parent
    top.mkdir(exist_ok=True)
    for directory in (root, top):
        try:
            enabled = set(_read(directory / "cgroup.subtree_control").split())
        except FileNotFoundError:
            enabled = set()
        if not controllers <= enabled:
            _write(directory / "cgroup.subtree_control", enable)
    group = top / package_id
    group.mkdir(exist_ok=True)
    return Cgroup(package_id, 2, [group])


def _create_v1(package_id: str, controllers: set[str], parent: str, root: Path) -> Cgroup:
    directories: list[Path] = []
    seen: set[str] = set()
    for name in sorted(controllers):
        hierarchy = (root / name).resolve()  # "cpu" and "cpuacct" may be links to one "cpu,cpuacct"
        if str(hierarchy) in seen:
            continue
        seen.add(str(hierarchy))
        group = root / name / parent / package_id
        group.mkdir(parents=True, exist_ok=True)
        directories.append(group)
    return Cgroup(package_id, 1, directories)


def existing(package_id: str, parent: str = "startos", root: Path = CGROUP_ROOT) -> Cgroup | None:
    """The service's cgroup left by an earlier run, if any (to clean it up)."""
    v2_group = root / parent / package_id
    if v2_controllers(root) and v2_group.is_dir():
        return Cgroup(package_id, 2, [v2_group])
    directories = [root / name / parent / package_id for name in V1_ACCOUNTING]
    found = [d for d in directories if d.is_dir()]
    return Cgroup(package_id, 1, found) if found else None

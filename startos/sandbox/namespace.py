"""The ``namespace`` sandbox: Linux, as root; own mount, PID, IPC, UTS and network namespaces.

Inside, a service sees:

* ``/startos/code`` (read-only), ``/startos/volumes/<id>`` (read-write), ``/startos/run`` (read-write)
  and ``/tmp`` (read-write, the spec's ``tmp_dir``): bind mounts, all ``nosuid,nodev``;
* ``/usr``, ``/etc``, ``/bin``... of the host and the Python installation startd runs from (so the
  runtime can import ``startos``), read-only; nothing else of the host (no ``/home``, ``/root``,
  ``/var``, ``/srv``, ``/tmp``, ``/run``, nor other services' volumes, wherever they live), and the
  host's secrets in ``/etc`` (shadow, ssh host keys, sudoers) are masked;
* a read-only root, a private ``/run`` and ``/dev/shm`` (tmpfs), a minimal ``/dev``, its own
  ``/proc`` (only its own processes) and a read-only ``/sys``;
* hostname = the package id; ``lo`` and ``eth0`` with an address from the sandbox subnet
  (``address()``), reachable from the host (see ``_netns``).

Root inside keeps only Docker's default capabilities without CAP_MKNOD (no CAP_SYS_ADMIN, so it
cannot remount or unmount anything). There is no user namespace: uid 0 inside is uid 0 outside.

Process model: ``create`` starts a small Python init (``_init.py``) that makes the namespaces, builds
the root with ``pivot_root`` and stays as PID 1, reaping orphans; it dies with startd. ``spawn``
starts ``_enter.py``, which joins the init's namespaces and forks the program into the cgroup, in a
session of its own, as the requested user, with the titled argv[0]; it stays as the program's
transparent parent (outside the program's group; it ends the way the program ends). ``destroy``
sends SIGTERM to every process of the PID namespace, SIGKILL to the init after ``stop_grace`` (the
kernel then kills everything inside), and removes the network namespace, the veth pair and the
cgroup. Limits: see ``_cgroups``.

What ``ps``/``top`` show on the host: the program's argv[0] is ``startos[<id>] <argv[0]>`` (or
``startos[<id>:<title>] <argv[0]>``), the enter wrapper's is ``startos[<id>] (enter)``, the init's
(two processes: outside and PID 1 inside) is ``startos[<id>] init``; children the program forks
inherit its argv. ``comm`` (``ps -o comm``, plain ``top``) stays the executable's file name (15
characters). Inside the sandbox ``ps`` shows the same, with PID 1 the init.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

import gevent
import gevent.os
import gevent.subprocess
import psutil
from gevent import monkey

import startos
from startos.paths import safe_child

from . import _cgroups, _netns
from ._common import (
    CODE,
    DEFAULT_PATH,
    RUN,
    TMP,
    VOLUMES,
    PopenProcess,
    kill_pids,
    map_sandbox_path,
    pid_alive,
    process_title,
    resolve_user,
    wait_gone,
)
from .base import Sandbox, SandboxError, SandboxProcess, SandboxSpec

HERE = Path(__file__).resolve().parent
INIT_SCRIPT = str(HERE / "_init.py")
ENTER_SCRIPT = str(HERE / "_enter.py")
# The helpers run with -I -S (standard library only), on the real interpreter behind any virtualenv.
HELPER_PYTHON = os.path.realpath(sys.executable)
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
SHADOWED_TOPS = ("/tmp", "/run", "/dev", "/proc", "/sys")  # mounted anew inside every sandbox
HIDDEN_PATHS = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssh",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssl/private",
)
NAMESPACE_KINDS = ("ipc", "uts", "net", "pid", "mnt")
logger = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path("/run/startos/sandboxes")
START_TIMEOUT = 30.0


def runtime_paths() -> list[str]:
    """Host paths the service runtime needs: the Python installation and the ``startos`` package."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates.add(str(Path(startos.__file__).resolve().parent))
    candidates.add(str(Path(HELPER_PYTHON).parent.parent))
    return sorted(candidates | {os.path.realpath(c) for c in candidates})


def _native_thread_is_main() -> bool:
    get_native_id = monkey.get_original("threading", "get_native_id")
    return bool(get_native_id() == os.getpid())


_SUPPORT: tuple[bool, str] | None = None


def support() -> tuple[bool, str]:
    """(usable, reason): can this process make namespace sandboxes? Probed once, then cached."""
    global _SUPPORT
    if _SUPPORT is None:
        _SUPPORT = _probe()
    return _SUPPORT


def _probe() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, "namespace sandboxes need Linux"
    if os.geteuid() != 0:
        return False, f"namespace sandboxes need root (this is uid {os.geteuid()})"
    if _netns.ip_binary() is None:
        return False, "namespace sandboxes need iproute2's `ip` (apt install iproute2)"
    # Inside, /tmp, /run and /dev are the service's own: a Python or startos package living under
    # one of them would be hidden by that mount, so the runtime could not start there.
    for path in runtime_paths():
        shadowed = next((top for top in SHADOWED_TOPS if path == top or path.startswith(top + "/")), None)
        if shadowed is not None:
            return (
                False,
                f"startos-py runs from {path}, under {shadowed}, which each sandbox replaces: install it elsewhere",
            )
    code = (
        f"import sys; sys.path.append({str(HERE)!r}); import _linux as L; "
        "L.unshare(L.CLONE_NEWNS | L.CLONE_NEWPID | L.CLONE_NEWUTS | L.CLONE_NEWIPC | L.CLONE_NEWNET); "
        f"L.mount(None, '/', None, L.MS_REC | L.MS_PRIVATE); L.mount('tmpfs', {str(HERE)!r}, 'tmpfs', 0, 'size=4k')"
    )
    try:
        result = gevent.subprocess.run(
            [HELPER_PYTHON, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, gevent.subprocess.TimeoutExpired) as exc:
        return False, f"cannot create namespaces here: {exc}"
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        return False, f"cannot create namespaces here: {lines[-1]}"
    return True, "namespaces, mounts and iproute2 are usable"


def sandbox_name(spec: SandboxSpec) -> str:
    """``<package id>-<8 hex>``: unique per package *and* server (its run directory), so two startd
    on one host (or two test runs) never take each other's namespace, veth pair, cgroup or root,
    while a restarted startd finds its own leftovers under the same name."""
    where = str(Path(spec.run_dir).resolve()).encode()
    return f"{spec.package_id}-{hashlib.sha256(where).hexdigest()[:8]}"


class NamespaceSandbox(Sandbox):
    """One service's namespaces, cgroup and veth pair (see the module docstring)."""

    kind = "namespace"

    def __init__(
        self,
        spec: SandboxSpec,
        *,
        state_dir: Path = DEFAULT_STATE_DIR,
        subnet: str = _netns.DEFAULT_SUBNET,
        cgroup_parent: str = "startos",
        stop_grace: float = 2.0,
        extra_ro_paths: tuple[str, ...] = (),
        hidden_paths: tuple[str, ...] = (),
    ) -> None:
        super().__init__(spec)
        self.name = sandbox_name(spec)
        self.state_dir = Path(state_dir)
        self.subnet = subnet
        self.cgroup_parent = cgroup_parent
        self.stop_grace = stop_grace
        self.extra_ro_paths = tuple(extra_ro_paths)
        self.hidden_paths = tuple(hidden_paths)
        self._init: gevent.subprocess.Popen | None = None
        self._init_pid: int | None = None
        self._ns_inodes: dict[str, int] = {}
        self._cgroup: _cgroups.Cgroup | None = None
        self._network: _netns.Network | None = None
        self._processes: list[PopenProcess] = []
        self._usage: dict[int, psutil.Process] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def init_pid(self) -> int | None:
        """Host pid of the sandbox's PID 1, while it runs."""
        return self._init_pid if self.running() else None

    @property
    def cgroup(self) -> _cgroups.Cgroup | None:
        return self._cgroup

    @property
    def network(self) -> _netns.Network | None:
        return self._network

    def running(self) -> bool:
        """True while the init (and so the sandbox) is alive."""
        return self._init is not None and self._init.poll() is None and self._init_pid is not None

    def create(self) -> None:
        if self.running():
            return
        ok, reason = support()
        if not ok:
            raise SandboxError(f"cannot create the namespace sandbox of {self.spec.package_id}: {reason}")
        spec = self.spec
        self.destroy()  # a dead init, or leftovers of a crashed startd under the same name
        sweep_stale(self.state_dir, self.cgroup_parent, keep=self.name)
        try:
            for directory in [spec.code_dir, spec.volumes_dir, spec.run_dir, spec.tmp_dir, self._root_dir()]:
                Path(directory).mkdir(parents=True, exist_ok=True)
            for volume in spec.volume_ids:
                safe_child(spec.volumes_dir, volume, kind="volume id").mkdir(exist_ok=True)
            os.chmod(spec.tmp_dir, 0o1777)  # like any /tmp: a daemon running as another user writes there too
            self._cgroup = _cgroups.create(self.name, spec.limits, parent=self.cgroup_parent)
            self._network = _netns.create(
                self.name, connect=spec.network, subnet=self.subnet, lock_path=self.state_dir / ".network.lock"
            )
            self._start_init()
        except BaseException as exc:
            self.destroy()
            if isinstance(exc, OSError):
                raise SandboxError(f"cannot create the namespace sandbox of {spec.package_id}: {exc}") from exc
            raise

    def _root_dir(self) -> Path:
        return self.state_dir / self.name / "root"

    def _etc_dir(self) -> Path:
        return self.state_dir / self.name / "etc"

    def _write_etc(self) -> None:
        """/etc/hosts and /etc/hostname of the sandbox: its name resolves to its own address."""
        package_id = self.spec.package_id
        own = self.address() or "127.0.1.1"
        hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{own}\t{package_id}\n"
        if self._network is not None and self._network.host_address:
            hosts += f"{self._network.host_address}\tstartos-host\n"
        etc = self._etc_dir()
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts)
        (etc / "hostname").write_text(package_id + "\n")

    def plan(self) -> list[dict[str, Any]]:
        """The mount plan the init carries out, in order (see ``_init.build``)."""
        spec = self.spec
        steps: list[dict[str, Any]] = []
        binds: list[str] = []
        for path in sorted({*SYSTEM_PATHS, *runtime_paths(), *self.extra_ro_paths}):
            if not os.path.lexists(path) or any(path.startswith(top + "/") for top in binds):
                continue
            if os.path.islink(path) and posixpath.dirname(path) == "/":
                steps.append({"op": "symlink", "dst": path, "target": os.readlink(path)})  # /bin -> usr/bin
                continue
            steps.append({"op": "bind", "src": os.path.realpath(path), "dst": path, "ro": True})
            binds.append(path)
        if "/etc" in binds:
            for name in ("hosts", "hostname"):
                if os.path.isfile(f"/etc/{name}"):
                    steps.append({"op": "bind", "src": str(self._etc_dir() / name), "dst": f"/etc/{name}", "ro": True})
        steps.append({"op": "bind", "src": str(spec.code_dir), "dst": CODE, "ro": True})
        steps.append({"op": "dir", "dst": VOLUMES})
        for volume in spec.volume_ids:
            # safe_child: a link planted in volumes/ must not bind a host directory into the sandbox.
            source = str(safe_child(spec.volumes_dir, volume, kind="volume id"))
            steps.append({"op": "bind", "src": source, "dst": f"{VOLUMES}/{volume}", "ro": False})
        steps.append({"op": "bind", "src": str(spec.run_dir), "dst": RUN, "ro": False})
        steps.append({"op": "bind", "src": str(spec.tmp_dir), "dst": TMP, "ro": False})
        steps.append({"op": "tmpfs", "dst": "/run", "options": "mode=0755"})
        steps.append({"op": "dev"})
        for directory in ("/proc", "/sys", "/var", "/root"):
            steps.append({"op": "dir", "dst": directory})
        steps.append({"op": "symlink", "dst": "/var/tmp", "target": "/tmp"})
        # Mask host secrets, startd's state, and the service's own host directories should they
        # lie inside a read-only path (then the service would also see its neighbours').
        own = [str(spec.code_dir), str(spec.volumes_dir), str(spec.run_dir), str(spec.tmp_dir), str(self.state_dir)]
        hidden = [*HIDDEN_PATHS, *self.hidden_paths, *own]
        for path in hidden:
            if any(path == top or path.startswith(top + "/") for top in binds):
                steps.append({"op": "hide", "dst": path})
        return steps

    def _start_init(self) -> None:
        spec = self.spec
        assert self._network is not None
        self._write_etc()
        config = {
            "root": str(self._root_dir()),
            "hostname": spec.package_id,
            "netns": self._network.path,
            "plan": self.plan(),
            # The parent-death signal follows the forking *thread*: only tie the sandbox to startd
            # when forking from the main thread, which lives as long as startd.
            "die_with_parent": _native_thread_is_main(),
            "parent": os.getpid(),
        }
        self._init = gevent.subprocess.Popen(
            [process_title(spec.package_id, "init", None), "-I", "-S", INIT_SCRIPT],
            executable=HELPER_PYTHON,
            env={"STARTOS_INIT": json.dumps(config)},
            stdin=gevent.subprocess.DEVNULL,
            stdout=gevent.subprocess.PIPE,
            stderr=gevent.subprocess.STDOUT,
            close_fds=True,
            start_new_session=True,
        )
        assert self._init.stdout is not None
        pid: int | None = None
        outcome: str | None = None
        said: list[str] = []
        with gevent.Timeout(START_TIMEOUT, SandboxError(f"the sandbox of {spec.package_id} did not start in time")):
            for raw in self._init.stdout:
                line = raw.decode(errors="replace").strip()
                if line.startswith("pid "):
                    pid = int(line[4:])
                elif line == "ready" or line.startswith("error: "):
                    outcome = line
                else:
                    said.append(line)
                if pid is not None and outcome is not None:
                    break
        self._init.stdout.close()
        if pid is None or outcome != "ready":
            why = outcome[len("error: ") :] if outcome else " | ".join(said[-5:]) or "it exited"
            raise SandboxError(f"cannot create the namespace sandbox of {spec.package_id}: {why}")
        self._init_pid = pid
        self._ns_inodes = {kind: os.stat(f"/proc/{pid}/ns/{kind}").st_ino for kind in NAMESPACE_KINDS}

    def destroy(self) -> None:
        """Stop every process inside (SIGTERM, then SIGKILL after ``stop_grace``) and remove it all."""
        if self.running():
            pids = self.members()
            kill_pids(pids, signal.SIGTERM)
            wait_gone(lambda: any(pid_alive(pid) for pid in pids), self.stop_grace)
        if self._init_pid is not None:
            kill_pids({self._init_pid}, signal.SIGKILL)  # the kernel kills the whole PID namespace
        if self._init is not None:
            if self._init.stdout is not None and not self._init.stdout.closed:
                self._init.stdout.close()
            if self._init.poll() is None and self._init_pid is None:
                self._init.kill()  # it never reported its PID 1: stop it outright
            self._init.wait(timeout=5.0)
        for process in self._processes:  # their programs are gone: the enter helpers end too
            if process.wait(timeout=2.0) is None:
                process.popen.kill()
                process.wait(timeout=2.0)
        self._kill_leftovers()
        cgroup = self._cgroup or _cgroups.existing(self.name, self.cgroup_parent)
        if cgroup is not None:
            kill_pids(cgroup.pids(), signal.SIGKILL)
            cgroup.remove()
        if self._network is not None or _netns.exists(self.name):
            _netns.remove(self.name)
        # Only our files and empty mount points: the mounts live in the sandbox's own namespace.
        shutil.rmtree(self.state_dir / self.name, ignore_errors=True)
        self._init = None
        self._init_pid = None
        self._ns_inodes = {}
        self._cgroup = None
        self._network = None
        self._processes = []
        self._usage = {}

    def _kill_leftovers(self) -> None:
        """SIGKILL any process still in this sandbox's network namespace (e.g. from a crashed startd)."""
        netns = _netns.NETNS_DIR / _netns.names(self.name)[0]
        try:
            inode = os.stat(netns).st_ino
        except OSError:
            return
        stale = {pid for pid in _pids_in_namespace("net", inode) if pid != os.getpid()}
        if stale:
            kill_pids(stale, signal.SIGKILL)
            wait_gone(lambda: any(pid_alive(pid) for pid in stale), 5.0)

    # -- processes -------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            "PATH": DEFAULT_PATH,
            "HOME": TMP,
            "LANG": "C.UTF-8",
            "TMPDIR": TMP,
            "STARTOS_PACKAGE_ID": self.spec.package_id,
            "STARTOS_SANDBOX": self.kind,
            "STARTOS_CODE": CODE,
            "STARTOS_VOLUMES": VOLUMES,
            "STARTOS_RUN": RUN,
            "STARTOS_TMP": TMP,
        }

    def host_path(self, sandbox_path: str) -> Path:
        """The fixed paths map to the spec's directories; others to ``/proc/<init>/root/...`` while running."""
        mapped = map_sandbox_path(self.spec, sandbox_path)
        if mapped is not None:
            return mapped
        path = posixpath.normpath(sandbox_path)
        return Path(f"/proc/{self._init_pid}/root{path}") if self.running() else Path(path)

    def address(self) -> str | None:
        """The service's IPv4 address on its veth pair (None without network)."""
        return self._network.address if self._network is not None else None

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
        spec = self.spec
        if not self.running():
            raise SandboxError(f"the sandbox of {spec.package_id} is not running (create it first)")
        if not argv:
            raise SandboxError(f"cannot start a process of {spec.package_id}: empty command")
        ids = resolve_user(spec.package_id, user)
        config: dict[str, Any] = {
            "init_pid": self._init_pid,
            "ns_inodes": self._ns_inodes,
            "cgroup_procs": self._cgroup.procs_files() if self._cgroup is not None else [],
            "cwd": posixpath.normpath(cwd or "/"),
            "env": {**self.env(), **(env or {})},
            "argv": list(argv),
            "title": process_title(spec.package_id, argv[0], title),
        }
        if ids is not None:
            config.update(uid=ids[0], gid=ids[1], groups=ids[2])
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        config["status_fd"] = write_end
        try:
            popen = gevent.subprocess.Popen(
                [process_title(spec.package_id, "(enter)", title), "-I", "-S", ENTER_SCRIPT],
                executable=HELPER_PYTHON,
                env={"STARTOS_ENTER": json.dumps(config)},
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                pass_fds=(*pass_fds, write_end),
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_end)
            raise SandboxError(f"cannot start a process in the sandbox of {spec.package_id}: {exc}") from exc
        finally:
            os.close(write_end)
        try:
            status = _read_status(read_end)
        finally:
            os.close(read_end)
        word, _, value = status.partition(" ")
        if word != "ok" or not value.isdigit():
            helper = PopenProcess(popen, spec.package_id)
            code = helper.wait(timeout=5.0)
            if code is None:
                helper.signal_group(signal.SIGKILL)
                helper.wait(timeout=5.0)
            why = status[len("error: ") :] if status.startswith("error: ") else f"the helper ended ({code})"
            raise SandboxError(f"cannot run {argv[0]!r} in the sandbox of {spec.package_id}: {why}")
        process = PopenProcess(popen, spec.package_id, pid=int(value))
        self._processes = [p for p in self._processes if p.poll() is None]
        self._processes.append(process)
        return process

    def members(self) -> set[int]:
        """Host pids of every live process inside (its PID namespace, init excluded)."""
        inode = self._ns_inodes.get("pid")
        if inode is None:
            return set()
        return {pid for pid in _pids_in_namespace("pid", inode) if pid != self._init_pid and pid_alive(pid)}

    def stats(self) -> dict[str, Any]:
        """``cpu_percent`` (since the previous call; 100 = one core), ``memory_bytes``, ``processes``.

        From the cgroup when there is one (memory as the kernel charges it, page cache included),
        else summed over the processes (RSS). With a memory limit, also ``memory_limit_bytes``.
        """
        figures: dict[str, Any] = self._cgroup.stats() if self._cgroup is not None else {}
        if not {"cpu_percent", "memory_bytes"} <= figures.keys():
            figures = self._process_stats()
        if self._cgroup is not None and self.spec.limits.memory_bytes is not None:
            figures["memory_limit_bytes"] = self.spec.limits.memory_bytes
        return figures

    def _process_stats(self) -> dict[str, Any]:
        cpu = 0.0
        rss = 0
        pids = self.members()
        for pid in pids:
            try:
                process = self._usage.get(pid) or psutil.Process(pid)
                self._usage[pid] = process
                cpu += process.cpu_percent(interval=None)
                rss += process.memory_info().rss
            except psutil.Error:
                continue
        self._usage = {pid: p for pid, p in self._usage.items() if pid in pids}
        return {"cpu_percent": round(cpu, 1), "memory_bytes": rss, "processes": len(pids)}

    def __repr__(self) -> str:
        return f"<NamespaceSandbox {self.spec.package_id} init={self._init_pid} address={self.address()}>"


STALE_AFTER = 60.0  # s: a sandbox directory younger than this may be another server's, being created


def sweep_stale(state_dir: Path, cgroup_parent: str = "startos", *, keep: str | None = None) -> list[str]:
    """Remove the kernel objects of sandboxes whose init is gone (a startd killed with -9 whose
    data directory is not used again); return their names.

    Each sandbox has a directory under ``state_dir`` while it exists. One whose network namespace
    holds no process any more is dead, whoever made it: its namespace, veth pair, cgroup and
    directory go. A live sandbox (of this or another server) always holds its init there.
    """
    removed: list[str] = []
    try:
        entries = sorted(os.listdir(state_dir))
    except OSError:
        return removed
    now = time.time()
    for name in entries:
        path = Path(state_dir, name)
        if name == keep or name.startswith(".") or not path.is_dir():
            continue
        try:
            if now - path.stat().st_mtime < STALE_AFTER:
                continue
        except OSError:
            continue
        netns = _netns.NETNS_DIR / _netns.names(name)[0]
        try:
            inode = os.stat(netns).st_ino
        except OSError:
            inode = None
        if inode is not None and _pids_in_namespace("net", inode):
            continue  # alive
        cgroup = _cgroups.existing(name, cgroup_parent)
        if cgroup is not None:
            if cgroup.pids():
                continue  # something still runs in it: not ours to judge
            cgroup.remove()
        if _netns.exists(name):
            _netns.remove(name)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(name)
    if removed:
        logger.info("removed the remains of stopped sandboxes: %s", ", ".join(removed))
    return removed


def _pids_in_namespace(kind: str, inode: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/{kind}").st_ino == inode:
                    found.add(int(entry))
            except OSError:
                continue  # ended meanwhile
    return found


def _read_status(fd: int) -> str:
    """The enter helper's one-line report, read without blocking the hub."""
    os.set_blocking(fd, False)
    data = b""
    timer = gevent.Timeout(START_TIMEOUT)
    try:
        with timer:
            while not data.endswith(b"\n"):
                chunk = gevent.os.nb_read(fd, 4096)
                if not chunk:
                    break
                data += chunk
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        return f"error: no word from the helper within {START_TIMEOUT:.0f} s"
    return data.decode(errors="replace").strip() or "error: the helper ended without a word"

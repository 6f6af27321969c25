"""What both backends share: the sandbox paths, users, process titles and the process handle."""

from __future__ import annotations

import os
import posixpath
import pwd
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import gevent
import gevent.monkey
import gevent.subprocess

from .base import SandboxError, SandboxProcess, SandboxSpec

# gevent (>= 25.8) defers os.close of a pipe until its loop next turns, which in an idle startd can
# be many seconds; meanwhile a process would not see its input end, nor a reader its output end.
_os_close = gevent.monkey.get_original("os", "close")


def close_now(*fds: int) -> None:
    """Close the host's copies of pipe ends a sandboxed process was given (or whose far end it
    holds) at once. They are never registered with the event loop when this is called."""
    for fd in fds:
        _os_close(fd)


CODE = "/startos/code"
VOLUMES = "/startos/volumes"
RUN = "/startos/run"
TMP = "/tmp"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _under(path: str, top: str) -> str | None:
    """The part of ``path`` below ``top`` ("" for ``top`` itself), or None when outside it."""
    if path == top:
        return ""
    if path.startswith(top + "/"):
        return path[len(top) + 1 :]
    return None


def map_sandbox_path(spec: SandboxSpec, sandbox_path: str) -> Path | None:
    """The host path behind one of the fixed sandbox paths; None for any other path.

    ``..`` is resolved lexically first, so ``/startos/code/../../etc`` is ``/etc`` (not mapped).
    """
    if not sandbox_path.startswith("/"):
        raise SandboxError(f"sandbox of {spec.package_id}: {sandbox_path!r} is not an absolute path")
    path = posixpath.normpath(sandbox_path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    for top, host in ((CODE, spec.code_dir), (RUN, spec.run_dir), (TMP, spec.tmp_dir)):
        rest = _under(path, top)
        if rest is not None:
            return Path(host, rest) if rest else Path(host)
    rest = _under(path, VOLUMES)
    if rest is None:
        return None
    if not rest:
        return Path(spec.volumes_dir)
    volume = rest.split("/", 1)[0]
    if volume not in spec.volume_ids:
        known = ", ".join(spec.volume_ids) or "none"
        raise SandboxError(f"{spec.package_id} has no volume {volume!r} (it has: {known})")
    return Path(spec.volumes_dir, rest)


def process_title(package_id: str, argv0: str, title: str | None) -> str:
    """argv[0] as ``ps`` shows it: ``startos[<id>] <argv0>``, or ``startos[<id>:<title>] <argv0>``."""
    tag = f"{package_id}:{title}" if title else package_id
    return f"startos[{tag}] {argv0}"


def resolve_user(package_id: str, user: str | None) -> tuple[int, int, list[int]] | None:
    """(uid, gid, supplementary groups) for a user name, ``uid`` or ``uid:gid``; None for "as is"."""
    if user is None:
        return None
    name, _, group = user.partition(":")
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        if not name.isdigit():
            raise SandboxError(f"cannot run a process of {package_id} as {user!r}: no such user") from None
        uid = int(name)
        gid = int(group) if group.isdigit() else uid
        return uid, gid, [gid]
    gid = int(group) if group.isdigit() else entry.pw_gid
    return entry.pw_uid, gid, sorted(set(os.getgrouplist(entry.pw_name, gid)))


class PopenProcess(SandboxProcess):
    """A sandboxed program that leads its own session and process group, watched through a gevent ``Popen``.

    ``pid`` is the program's host pid, its group's id. The ``Popen`` is the program itself with the
    ``process`` backend; with ``namespace`` it is the enter helper, the program's parent, which ends
    the way the program ends. ``stdin``/``stdout``/``stderr`` are the pipes asked for with ``PIPE``.
    """

    def __init__(self, popen: gevent.subprocess.Popen, package_id: str, pid: int | None = None) -> None:
        self.popen = popen
        self.pid = popen.pid if pid is None else pid
        self.package_id = package_id
        self.stdin: IO[Any] | None = popen.stdin
        self.stdout: IO[Any] | None = popen.stdout
        self.stderr: IO[Any] | None = popen.stderr

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return int(self.popen.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            return None

    def poll(self) -> int | None:
        code = self.popen.poll()
        return None if code is None else int(code)

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass  # the whole group has ended already

    def group_alive(self) -> bool:
        """True while any process is left in the group (the leader or anything it started)."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.package_id} pid={self.pid} returncode={self.popen.returncode}>"


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


def wait_gone(check: Any, timeout: float) -> bool:
    """Poll ``check()`` (true while something is left) until false or ``timeout``; True when all gone."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while check():
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def kill_pids(pids: set[int], signum: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

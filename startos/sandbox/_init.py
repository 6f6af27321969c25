"""PID 1 of a namespace sandbox: builds the sandbox's filesystem, then only reaps orphans.

Run by ``NamespaceSandbox.create`` as ``python -I -S _init.py`` with its plan as JSON in the
environment variable ``STARTOS_INIT``. The process startd starts (the *outer* one) unshares the
mount, UTS, IPC and PID namespaces, joins the sandbox's network namespace and forks: the child is
PID 1 of the new PID namespace (the *inner* init). The outer one stays as its parent so that startd
learns at once (child watcher) if the sandbox dies. Protocol on stdout, one line each:
``pid <host pid of the inner init>`` from the outer, ``ready`` or ``error: <why>`` from the inner.

Both die with startd: the outer gets SIGKILL when startd's main thread ends (parent-death
signal), the inner when the outer ends, and every process of the PID namespace with the inner.
Neither acts on SIGTERM: the kernel drops signals to a namespace's PID 1 that has no handler,
so a service cannot stop its own sandbox; ``destroy`` uses SIGKILL from the host.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sys
from typing import Any

if __package__:
    from . import _linux
else:  # run as a script with -I -S: import the sibling module by path
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))
    import _linux  # type: ignore[import-not-found,no-redef]

NOSUID_NODEV = _linux.MS_NOSUID | _linux.MS_NODEV
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def _say(line: str) -> None:
    os.write(1, (line.rstrip("\n").replace("\n", " | ") + "\n").encode())


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _mountpoint(path: str, is_dir: bool, binds: list[str] | None = None) -> None:
    """Make ``path`` to mount on, unless it exists; never inside a bind mount (that is the host's tree)."""
    if os.path.lexists(path):
        return
    if binds and any(path.startswith(top + "/") for top in binds):
        raise OSError(errno.EPERM, f"refusing to create {path} in a directory of the host")
    _mkdirs(os.path.dirname(path))
    if is_dir:
        os.mkdir(path, 0o755)
    else:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))


def _remount_bind(path: str, flags: int) -> None:
    _linux.mount(None, path, None, _linux.MS_REMOUNT | _linux.MS_BIND | flags)


def _bind(root: str, op: dict[str, Any], binds: list[str]) -> None:
    src, dst = op["src"], root + op["dst"]
    _mountpoint(dst, os.path.isdir(src), binds)
    _linux.mount(src, dst, None, _linux.MS_BIND | _linux.MS_REC)
    binds.append(dst)
    if not op["ro"]:
        _remount_bind(dst, NOSUID_NODEV)


def _dev(root: str) -> None:
    dev = root + "/dev"
    _mkdirs(dev)
    _linux.mount("tmpfs", dev, "tmpfs", _linux.MS_NOSUID | _linux.MS_NOEXEC, "mode=0755,size=64k")
    for name in DEVICES:
        _mountpoint(f"{dev}/{name}", False)
        _linux.mount(f"/dev/{name}", f"{dev}/{name}", None, _linux.MS_BIND)
        _remount_bind(f"{dev}/{name}", _linux.MS_NOSUID | _linux.MS_NOEXEC)
    os.mkdir(dev + "/pts")
    for options in ("newinstance,ptmxmode=0666,mode=620,gid=5", "newinstance,ptmxmode=0666,mode=620"):
        try:
            _linux.mount("devpts", dev + "/pts", "devpts", _linux.MS_NOSUID | _linux.MS_NOEXEC, options)
            os.symlink("pts/ptmx", dev + "/ptmx")
            break
        except OSError:
            continue
    os.mkdir(dev + "/shm")
    _linux.mount("tmpfs", dev + "/shm", "tmpfs", NOSUID_NODEV, "mode=1777")
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
    _linux.mount(None, dev, None, _linux.MS_REMOUNT | _linux.MS_RDONLY | _linux.MS_NOSUID | _linux.MS_NOEXEC)


def _hide(root: str, path: str) -> None:
    target = root + path
    if not os.path.lexists(target) or os.path.islink(target):
        return
    if os.path.isdir(target):
        _linux.mount("tmpfs", target, "tmpfs", _linux.MS_RDONLY | NOSUID_NODEV | _linux.MS_NOEXEC, "mode=0755,size=4k")
    else:
        _linux.mount("/dev/null", target, None, _linux.MS_BIND)
        _remount_bind(target, _linux.MS_RDONLY | NOSUID_NODEV | _linux.MS_NOEXEC)


def _make_read_only(root: str, plan: list[dict[str, Any]]) -> None:
    """Remount every read-only bind, and every mount the host had below it, read-only."""
    tops = [root + op["dst"] for op in plan if op["op"] == "bind" and op["ro"]]
    for point, flags in _linux.mount_table():
        if any(point == top or point.startswith(top + "/") for top in tops):
            _remount_bind(point, flags | _linux.MS_RDONLY | NOSUID_NODEV)


def build(config: dict[str, Any]) -> None:
    """Build the sandbox's root from the plan, switch to it and mount /proc and /sys."""
    root = config["root"]
    plan: list[dict[str, Any]] = config["plan"]
    # Nothing done here may reach the host's mount table.
    _linux.mount(None, "/", None, _linux.MS_REC | _linux.MS_PRIVATE)
    socket.sethostname(config["hostname"])
    _mkdirs(root)
    _linux.mount("tmpfs", root, "tmpfs", NOSUID_NODEV, "mode=0755,size=1m")
    binds: list[str] = []
    for op in plan:
        kind, dst = op["op"], op.get("dst", "")
        if kind == "bind":
            _bind(root, op, binds)
        elif kind == "tmpfs":
            _mountpoint(root + dst, True, binds)
            _linux.mount("tmpfs", root + dst, "tmpfs", NOSUID_NODEV, op.get("options", "mode=0755"))
        elif kind == "dir":
            _mountpoint(root + dst, True, binds)
        elif kind == "symlink":
            if not os.path.lexists(root + dst):
                _mountpoint(os.path.dirname(root + dst), True, binds)
                os.symlink(op["target"], root + dst)
        elif kind == "dev":
            _dev(root)
        elif kind == "hide":
            _hide(root, dst)
        else:
            raise ValueError(f"unknown plan step {kind!r}")
    _make_read_only(root, plan)
    # pivot_root(".", "."): the old root ends up on top of the new one and is detached at once,
    # so no path inside leads back to the host's tree.
    os.chdir(root)
    _linux.pivot_root(".", ".")
    _linux.umount(".", _linux.MNT_DETACH)
    os.chdir("/")
    _mountpoint("/proc", True)
    _linux.mount("proc", "/proc", "proc", NOSUID_NODEV | _linux.MS_NOEXEC)
    try:
        _linux.mount("sysfs", "/sys", "sysfs", _linux.MS_RDONLY | NOSUID_NODEV | _linux.MS_NOEXEC)
    except OSError:
        pass  # /sys is a convenience; a kernel that refuses it still gives a working sandbox
    _guard_proc_and_sys()
    _linux.mount(None, "/", None, _linux.MS_REMOUNT | _linux.MS_RDONLY | NOSUID_NODEV)


# Parts of /proc and /sys that act on the whole host or leak it, checked by file mode only (uid 0
# inside may write /proc/sysrq-trigger and reboot the host): Docker's masked and read-only paths.
READ_ONLY_PROC = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
MASKED = (
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/acpi",
    "/proc/scsi",
    "/proc/asound",
    "/sys/firmware",
)


def _guard_proc_and_sys() -> None:
    for path in READ_ONLY_PROC:
        if os.path.exists(path):
            _linux.mount(path, path, None, _linux.MS_BIND | _linux.MS_REC)
            _remount_bind(path, _linux.MS_RDONLY | NOSUID_NODEV | _linux.MS_NOEXEC)
    for path in MASKED:
        _hide("", path)


def _to_devnull() -> None:
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def reap_forever() -> None:
    """PID 1's only job once the sandbox stands: collect orphans so no zombie piles up."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        signal.sigwait({signal.SIGCHLD})


def main() -> None:
    config = json.loads(os.environ.pop("STARTOS_INIT"))
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    if config.get("die_with_parent"):
        _linux.set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != config["parent"]:
            sys.exit(1)  # startd is already gone
    netns = os.open(config["netns"], os.O_RDONLY) if config.get("netns") else None
    flags = _linux.CLONE_NEWNS | _linux.CLONE_NEWUTS | _linux.CLONE_NEWIPC | _linux.CLONE_NEWPID
    _linux.unshare(flags)
    if netns is not None:
        _linux.setns(netns, _linux.CLONE_NEWNET)
        os.close(netns)
    outer = os.getpid()
    child = os.fork()
    if child == 0:
        try:
            _linux.set_parent_death_signal(signal.SIGKILL)
            if os.getppid() != 0 and os.getppid() != outer:
                os._exit(1)
            build(config)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported to startd, then PID 1 exits
            _say(f"error: {exc}")
            os._exit(1)
        _say("ready")
        _to_devnull()
        reap_forever()
    _say(f"pid {child}")
    _to_devnull()
    while True:
        _, status = os.waitpid(child, 0)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            break
    sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


if __name__ == "__main__":
    main()

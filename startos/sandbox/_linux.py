"""Linux system calls Python 3.11's standard library lacks (unshare, setns, mount, pivot_root), and kin.

Standard library only: besides being imported as ``startos.sandbox._linux``, this module is loaded by
the two helper scripts ``_init.py`` and ``_enter.py``, which run as ``python -I -S`` (no site-packages,
no ``startos``) so that they start fast and trust nothing from the environment.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24

# Capabilities a sandboxed root keeps: Docker's default set without CAP_MKNOD. Everything else
# (CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH, CAP_SYS_MODULE, CAP_NET_ADMIN, ...) would let root inside
# undo the sandbox (remount, open_by_handle_at, load modules, readdress its own interface).
KEPT_CAPABILITIES = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 29, 31})

# pivot_root(2) has no glibc wrapper; its number differs by architecture.
_PIVOT_ROOT_NR = {
    "x86_64": 155,
    "aarch64": 41,
    "riscv64": 41,
    "loongarch64": 41,
    "armv7l": 218,
    "armv6l": 218,
    "i386": 217,
    "i686": 217,
    "ppc64le": 203,
    "ppc64": 203,
    "s390x": 217,
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (for PID: its future children)."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace behind ``fd`` (an open ``/proc/<pid>/ns/<kind>``)."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    number = _PIVOT_ROOT_NR.get(platform.machine())
    if number is None:
        raise OSError(0, f"pivot_root: unknown system call number on {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(number), _b(new_root), _b(put_old)), "pivot_root")


def set_parent_death_signal(signum: int) -> None:
    """Have the kernel send ``signum`` to this process when the thread that forked it ends."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def drop_capabilities(keep: frozenset[int] = KEPT_CAPABILITIES) -> None:
    """Remove every capability not in ``keep`` from the bounding set (effective from the next exec)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except OSError:
        last = 40
    for cap in range(last + 1):
        if cap not in keep:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")


_MOUNT_OPTION_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}


def mount_table() -> list[tuple[str, int]]:
    """(mount point, flags to keep on a remount) for every mount this process sees."""
    table = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # "\040" is a space
            flags = 0
            for option in fields[5].split(","):
                flags |= _MOUNT_OPTION_FLAGS.get(option, 0)
            table.append((point, flags))
    return table


def is_venv_python(exe: str) -> bool:
    """True for a virtualenv's Python, which finds its environment from argv[0].

    A titled argv[0] hides the virtualenv from it (no site-packages); ``PYTHONEXECUTABLE`` set to the
    real path restores it.
    """
    if not os.path.basename(exe).startswith("python"):
        return False
    here = os.path.dirname(exe)
    return os.path.exists(os.path.join(here, "pyvenv.cfg")) or os.path.exists(
        os.path.join(os.path.dirname(here), "pyvenv.cfg")
    )

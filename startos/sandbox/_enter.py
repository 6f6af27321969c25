"""Start one process inside a running namespace sandbox; stay as its transparent parent.

Run by ``NamespaceSandbox.spawn`` as ``python -I -S _enter.py`` (its argv[0] shows the package id),
in a new session, with its instructions as JSON in the environment variable ``STARTOS_ENTER``.
It joins the sandbox's namespaces (the PID namespace needs a fork to take effect), and its child
joins the cgroup, starts a session of its own, drops capabilities and the user, and execs the
program with the titled argv[0]. It reports on the ``status_fd`` pipe: ``ok <host pid>`` once the
program is exec'd, or ``error: <why>`` if it could not be started.

Why not ``nsenter``: nsenter stays as the program's parent *in its process group*, so a SIGTERM to
the group ended nsenter at once while the program was still shutting down (startd would have seen an
exit that had not happened), and a SIGKILL to the group orphaned the program to the host's init.
Here the program leads its own group (the one ``signal_group`` signals) and the wrapper, outside it,
waits and then ends the same way the program did (same exit code, or the same signal), so startd's
child watcher sees the program's own status. The program gets SIGKILL should the wrapper die.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
from typing import Any

if __package__:
    from . import _linux
else:  # run as a script with -I -S: import the sibling module by path
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))
    import _linux  # type: ignore[import-not-found,no-redef]

NAMESPACES = (
    ("ipc", _linux.CLONE_NEWIPC),
    ("uts", _linux.CLONE_NEWUTS),
    ("net", _linux.CLONE_NEWNET),
    ("pid", _linux.CLONE_NEWPID),
    ("mnt", _linux.CLONE_NEWNS),  # last: it changes what the /proc paths above would mean
)
IGNORED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGWINCH,
)
# Python itself ignores these two; a program must start with the default disposition.
PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)


def _resolve(program: str, path: str) -> str:
    if "/" in program:
        return program
    found = shutil.which(program, path=path)
    if found is None:
        raise FileNotFoundError(2, f"{program}: not found in PATH {path}")
    return found


def _child(config: dict[str, Any], cgroup_fds: list[int], report: int) -> None:
    """In the sandbox's namespaces already: join the cgroup, become the user, exec. Never returns."""
    step = "join cgroup"
    try:
        for fd in cgroup_fds:
            os.write(fd, b"0")  # "0": the writing process
            os.close(fd)
        os.setsid()  # its own session and process group, which signal_group targets
        step = "drop capabilities"
        _linux.drop_capabilities()
        step = f"change directory to {config['cwd']}"
        os.chdir(config["cwd"])
        if config.get("uid") is not None:
            step = f"switch to uid {config['uid']}"
            os.setgroups(config["groups"])
            os.setgid(config["gid"])
            os.setuid(config["uid"])
        _linux.set_parent_death_signal(signal.SIGKILL)  # after setuid, which clears it
        for signum in (*IGNORED, *PYTHON_IGNORED):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        env: dict[str, str] = config["env"]
        argv: list[str] = config["argv"]
        step = f"run {argv[0]}"
        exe = _resolve(argv[0], env.get("PATH", os.defpath))
        if _linux.is_venv_python(exe):
            env = {**env, "PYTHONEXECUTABLE": exe}
        os.execve(exe, [config["title"], *argv[1:]], env)
    except OSError as exc:
        os.write(report, f"{step}: {exc.strerror or exc}".encode())
    except BaseException as exc:  # noqa: BLE001 - reported to startd, whatever it is
        os.write(report, f"{step}: {exc}".encode())
    os._exit(127)


def _end_like(status: int) -> None:
    """Exit with the program's own status: its exit code, or death by the same signal."""
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    signum = os.WTERMSIG(status)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the program dumped core already, if at all
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (OSError, ValueError):
        pass  # SIGKILL and SIGSTOP cannot be handled, so they already act by default
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)


def main() -> None:
    config = json.loads(os.environ.pop("STARTOS_ENTER"))
    for signum in IGNORED:
        signal.signal(signum, signal.SIG_IGN)
    status_fd: int = config["status_fd"]
    os.set_inheritable(status_fd, False)
    try:
        init = config["init_pid"]
        fds = []
        for name, flag in NAMESPACES:
            fd = os.open(f"/proc/{init}/ns/{name}", os.O_RDONLY)
            fds.append((fd, flag))
            if os.fstat(fd).st_ino != config["ns_inodes"][name]:  # the init died, its pid was reused
                raise RuntimeError(f"the sandbox's init (pid {init}) is gone")
        cgroup_fds = [os.open(path, os.O_WRONLY) for path in config["cgroup_procs"]]
        for fd, flag in fds:
            _linux.setns(fd, flag)
            os.close(fd)
    except (OSError, RuntimeError) as exc:
        os.write(status_fd, f"error: cannot enter the sandbox: {exc}\n".encode())
        os._exit(126)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(read_end)
        _child(config, cgroup_fds, write_end)
    os.close(write_end)
    for fd in cgroup_fds:
        os.close(fd)
    failure = b""
    while chunk := os.read(read_end, 4096):  # EOF: exec succeeded (the pipe is close-on-exec)
        failure += chunk
    os.close(read_end)
    message = f"error: {failure.decode(errors='replace')}" if failure else f"ok {child}"
    os.write(status_fd, (message + "\n").encode())
    os.close(status_fd)
    # Hold nothing the program's readers could wait on (pipes, the runtime socket).
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    while True:
        _, status = os.waitpid(child, 0)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            _end_like(status)


if __name__ == "__main__":
    main()

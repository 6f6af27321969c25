"""``package attach``: a process in a service's sandbox, wired to a WebSocket.

With ``tty`` the process gets a pseudo-terminal (``pty.openpty``) so shells and editors work;
without, plain pipes (stdout and stderr merged), for ``start-cli package attach ID -- cmd`` in
scripts. Bytes travel as binary frames; the client may send ``{"resize": [rows, cols]}`` as a
text frame, and the server ends with ``{"exit": status}``.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import termios
from typing import Any

import gevent
import msgspec
from gevent import os as gos

from startos.protocol.limits import decode_json
from startos.sandbox import close_now
from startos.sandbox.base import Sandbox, SandboxProcess

DEFAULT_SHELL = ["/bin/sh", "-i"]


class Attached:
    """A running attach session: the process and the host end of its terminal or pipes."""

    def __init__(self, process: SandboxProcess, read_fd: int, write_fd: int, tty: bool) -> None:
        self.process = process
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.tty = tty
        self.closed: str | None = None

    def close(self) -> None:
        """End the session: hang up the process group, release the descriptors."""
        if self.closed is not None:
            return
        self.closed = "closed"
        if self.process.poll() is None:
            self.process.signal_group(1)  # SIGHUP, as a terminal hanging up
            if self.process.wait(timeout=2) is None:
                self.process.signal_group(9)
        for fd in {self.read_fd, self.write_fd} - {-1}:
            try:
                os.close(fd)
            except OSError:
                pass

    def resize(self, rows: int, cols: int) -> None:
        if self.tty:
            fcntl.ioctl(self.read_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def serve(self, ws: Any) -> None:
        """Relay until the process ends or the client leaves; then send the exit status."""
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

        def pump_out() -> None:
            while True:
                try:
                    data = gos.nb_read(self.read_fd, 65536)
                except OSError:  # EIO: the terminal's other side is gone
                    break
                if not data:
                    break
                ws.send(data)

        # Not an actor's greenlets: both pumps belong to this request (a web server actor's
        # greenlet), whose finally below kills them, so none outlives its WebSocket.
        out = gevent.spawn(pump_out)

        def pump_in() -> None:
            while True:
                message = ws.receive(timeout=None)
                if message is None:
                    break
                if isinstance(message, str):
                    try:
                        control = decode_json(message, limit=4, what="a control message")
                        if control.get("eof") and not self.tty:
                            close_now(self.write_fd)  # the command's stdin ends
                            self.write_fd = -1
                        elif "resize" in control:
                            rows, cols = control["resize"]
                            self.resize(int(rows), int(cols))
                    except (msgspec.DecodeError, ValueError, KeyError, TypeError, AttributeError, OSError):
                        pass
                    continue
                try:
                    gos.nb_write(self.write_fd, message)
                except OSError:  # the process closed its input
                    break

        inbound = gevent.spawn(pump_in)
        try:
            status = self.process.wait()
            out.join(timeout=2)
            ws.send(json.dumps({"exit": status}))
        finally:
            inbound.kill(block=False)
            out.kill(block=False)
            self.close()


def start_attached(sandbox: Sandbox, command: list[str] | None, *, tty: bool, user: str | None) -> Attached:
    """Spawn ``command`` (default: an interactive shell) in ``sandbox`` with a terminal or pipes."""
    argv = command or DEFAULT_SHELL
    env = {"TERM": os.environ.get("TERM", "xterm-256color")} if tty else {}
    if tty:
        master, slave = pty.openpty()
        try:
            process = sandbox.spawn(argv, env=env, user=user, stdin=slave, stdout=slave, stderr=slave, title="attach")
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return Attached(process, master, master, tty=True)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        process = sandbox.spawn(argv, env=env, user=user, stdin=in_r, stdout=out_w, stderr=out_w, title="attach")
    except BaseException:
        for fd in (in_w, out_r):
            os.close(fd)
        raise
    finally:
        close_now(in_r, out_w)
    return Attached(process, out_r, in_w, tty=False)

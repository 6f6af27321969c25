"""``report_progress``: a daemon tells the host how far a long job has come.

Path of a report: the daemon process calls :func:`report_progress`; the SDK sends a
:class:`~startos.protocol.runtime.ReportProgress` frame over the Unix socket
``$STARTOS_RUN/effects.sock``, which the service's runtime listens on; the runtime forwards it to
the host as an :class:`~startos.protocol.runtime.EffectNotice` (keeping only the latest report
per daemon when they come faster than the host needs them). The daemon's id comes from
``$STARTOS_DAEMON``, which the description gives every daemon.

Reporting never raises because the runtime is unreachable: progress is advisory, and a daemon
must not crash over it. It returns False instead (and warns once on stderr).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable

from startos.protocol import runtime as wire
from startos.protocol.framing import encode_frame
from startos.sdk import _env
from startos.sdk.errors import SdkError

__all__ = ["make_report", "report_progress", "set_sink"]

MESSAGE_MAX = 1024
# AF_UNIX paths are limited to 108 bytes; a longer one is reached through /proc/self/fd.
_SUN_PATH_MAX = 100

# Where reports go instead of the socket: the runtime's own hooks forward straight to the host,
# and startos.sdk.testing records them.
_sink: list[Callable[[wire.ReportProgress], None]] = []


def set_sink(sink: Callable[[wire.ReportProgress], None] | None) -> None:
    """Route reports of this process to ``sink`` (None: back to the runtime's socket)."""
    _sink.clear()
    if sink is not None:
        _sink.append(sink)


def make_report(daemon: str | None, done: int, total: int | None, message: str | None) -> wire.ReportProgress:
    """A validated report; a message is cut to one line of at most 1024 characters."""
    if isinstance(done, bool) or not isinstance(done, int) or done < 0:
        raise SdkError(f"progress: done must be a whole number >= 0, got {done!r}")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise SdkError(f"progress: total must be a whole number >= 0 or None, got {total!r}")
    if total is not None and done > total:
        raise SdkError(f"progress: done ({done}) is more than total ({total})")
    if message is not None:
        if not isinstance(message, str):
            raise SdkError(f"progress: message must be a string, got {type(message).__name__}")
        message = " ".join(message.split())[:MESSAGE_MAX]
    return wire.ReportProgress(daemon=daemon, done=done, total=total, message=message)


class _Client:
    """One connection to the runtime's effects socket per process, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._pid = 0
        self._warned = False

    def send(self, frame: bytes) -> bool:
        error: OSError | None = None
        with self._lock:
            for _attempt in range(2):  # a stale connection (runtime restarted) gets one reconnect
                try:
                    if self._sock is None or self._pid != os.getpid():
                        self._sock = self._connect()
                        self._pid = os.getpid()
                    self._sock.sendall(frame)
                    return True
                except OSError as exc:
                    self._close()
                    error = exc
            if not self._warned:
                self._warned = True
                print(f"startos.sdk: cannot report progress to the runtime: {error}", file=sys.stderr, flush=True)
            return False

    def _connect(self) -> socket.socket:
        path = str(_env.run_path(_env.EFFECTS_SOCKET))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        try:
            if len(path.encode()) <= _SUN_PATH_MAX:
                sock.connect(path)
            else:
                dirfd = os.open(os.path.dirname(path), os.O_PATH)
                try:
                    sock.connect(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
                finally:
                    os.close(dirfd)
        except BaseException:
            sock.close()
            raise
        return sock

    def _close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None


_client = _Client()


def report_progress(done: int, total: int | None = None, message: str | None = None) -> bool:
    """Report that ``done`` of ``total`` units of a long job are finished (``total`` None: unknown).

    Call it from a daemon (or a hook) as often as you like; the runtime passes the latest report
    on. Returns whether the report reached the runtime.
    """
    report = make_report(_env.daemon_id(), done, total, message)
    if _sink:
        _sink[-1](report)
        return True
    try:
        frame = encode_frame(report)
    except (TypeError, ValueError) as exc:  # cannot happen with a validated report; be safe
        raise SdkError(f"progress: cannot encode the report: {exc}") from exc
    try:
        return _client.send(frame)
    except SdkError:  # not in a sandbox: no STARTOS_RUN
        if not _client._warned:
            _client._warned = True
            print("startos.sdk: cannot report progress: not running in a sandbox", file=sys.stderr, flush=True)
        return False

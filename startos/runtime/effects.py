"""The runtime's socket for daemons: ``$STARTOS_RUN/effects.sock``.

Daemons of the service connect here (through :func:`startos.sdk.report_progress`) and send
:class:`~startos.protocol.runtime.ReportProgress` frames. Reports are decoded strictly (a bad
frame closes that daemon's connection, nothing more) and forwarded to the host with the latest
report per daemon winning, at most one batch every ``interval`` seconds: a daemon that reports in
a tight loop cannot flood the host.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from startos.protocol import runtime as wire
from startos.protocol.framing import FrameError, PeerClosed, read_frame

__all__ = ["EffectsServer", "short_path"]

MAX_FRAME = 64 * 1024
_SUN_PATH_MAX = 100


@contextlib.contextmanager
def short_path(path: Path) -> Iterator[str]:
    """A path for bind/connect within AF_UNIX's 108-byte limit (through /proc/self/fd if needed)."""
    text = str(path)
    if len(text.encode()) <= _SUN_PATH_MAX:
        yield text
        return
    dirfd = os.open(path.parent, os.O_PATH)
    try:
        yield f"/proc/self/fd/{dirfd}/{path.name}"
    finally:
        os.close(dirfd)


class EffectsServer:
    """Accepts daemon connections and forwards their progress reports through ``forward``."""

    def __init__(
        self,
        path: Path,
        forward: Callable[[wire.ReportProgress], None],
        *,
        max_connections: int = 64,
        interval: float = 0.05,
    ) -> None:
        self.path = path
        self.forward = forward
        self.max_connections = max_connections
        self.interval = interval
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._latest: dict[str | None, wire.ReportProgress] = {}
        self._pending = threading.Event()
        self._connections = threading.BoundedSemaphore(max_connections)
        self._closed = False

    def start(self) -> None:
        """Bind the socket (replacing a stale one) and start serving in daemon threads."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            with short_path(self.path) as address:
                listener.bind(address)
            # Daemons may run as another user than the runtime; the run directory's own
            # permissions are what keep other services out.
            os.chmod(self.path, 0o666)
            listener.listen(16)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="startos-effects-accept", daemon=True).start()
        threading.Thread(target=self._forward_loop, name="startos-effects-forward", daemon=True).start()

    def close(self) -> None:
        """Stop accepting and remove the socket file."""
        self._closed = True
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                if self._closed:
                    return
                time.sleep(0.1)  # EMFILE and the like: do not spin
                continue
            if not self._connections.acquire(blocking=False):
                conn.close()  # too many daemons connected at once; they retry on their next report
                continue
            threading.Thread(target=self._serve, args=(conn,), name="startos-effects-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                report = read_frame(conn, wire.ReportProgress, max_frame=MAX_FRAME)
                with self._lock:
                    self._latest[report.daemon] = report
                self._pending.set()
        except PeerClosed:
            pass
        except FrameError as exc:
            print(f"startos-runtime: refused a daemon's progress frame: {exc}", file=sys.stderr, flush=True)
        except OSError:
            pass
        finally:
            conn.close()
            self._connections.release()

    def _forward_loop(self) -> None:
        while not self._closed:
            self._pending.wait()
            self._pending.clear()
            with self._lock:
                batch = list(self._latest.values())
                self._latest.clear()
            for report in batch:
                try:
                    self.forward(report)
                except Exception as exc:  # noqa: BLE001 (a lost progress report must not stop the others)
                    print(f"startos-runtime: cannot forward progress: {exc}", file=sys.stderr, flush=True)
            time.sleep(self.interval)

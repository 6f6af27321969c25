"""``python -m startos.runtime``: the service runtime, run inside the service's sandbox.

It speaks to the host over one stream socket (an inherited fd, ``--fd N``, or a Unix socket path,
``--socket PATH``) and nothing else: the package's prints go to stdout/stderr, which the host
collects as logs, so nothing the package writes can corrupt the protocol. The protocol fd is not
inheritable, so processes the package starts do not hold the connection open.

Threads: the main thread reads frames; each call runs on its own thread, so a hook that hangs
does not stop the runtime from answering others (the host times the hung one out); the package
code loads on a thread too, so ``Ping`` and ``Shutdown`` are answered even while an import hangs.
Writes are serialized by a lock. ``sys.exit`` in package code is caught like any exception; the
runtime ends with ``os._exit`` so threads the package left behind cannot keep it alive.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from startos.protocol import runtime as wire
from startos.protocol.framing import DEFAULT_MAX_FRAME, FrameError, PeerClosed, read_frame, write_frame
from startos.protocol.service_items import ClearTask, CreateTask, TaskCreated
from startos.sdk import _env, _progress
from startos.sdk._dispatch import CallFailed, Dispatcher
from startos.sdk._loader import LoadFailure, describe_exception, format_debug, load_service
from startos.sdk.errors import SdkError

__all__ = ["RuntimeServer", "main"]

_TO_RUNTIME: Any = wire.ToRuntime  # a union, which read_frame's type[T] cannot spell
EFFECT_TIMEOUT = 30.0  # seconds a hook waits for the host to answer an effect


class _Waiter:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: wire.EffectReply | None = None


class RuntimeServer:
    """One runtime: the host connection, the loaded package, the daemons' effects socket."""

    def __init__(self, sock: socket.socket, package_id: str, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.sock = sock
        self.package_id = package_id
        self.max_frame = max_frame
        self._write_lock = threading.Lock()
        self._effect_ids = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        self._waiters_lock = threading.Lock()
        self._loaded = threading.Event()
        self.dispatcher: Dispatcher | None = None
        self.effects_server: Any = None

    # -- effects (the package's calls to the host) ------------------------------------------------

    def container_ip(self) -> str:
        result = self._effect_call(wire.GetContainerIp())
        assert isinstance(result, wire.ContainerIp)
        return result.ip

    def report_progress(self, report: wire.ReportProgress) -> None:
        self._send(wire.EffectNotice(effect=report))

    def create_task(self, task: CreateTask) -> bool:
        result = self._effect_call(task)
        assert isinstance(result, TaskCreated)
        return result.active

    def clear_task(self, task: ClearTask) -> None:
        self._effect_call(task)

    def _effect_call(self, effect: wire.EffectRequest, timeout: float = EFFECT_TIMEOUT) -> wire.EffectResult:
        waiter = _Waiter()
        with self._waiters_lock:
            call_id = next(self._effect_ids)
            self._waiters[call_id] = waiter
        try:
            self._send(wire.EffectCall(id=call_id, effect=effect))
            if not waiter.event.wait(timeout):
                raise SdkError(f"the host did not answer {effect.__struct_config__.tag} within {timeout:g} s")
        finally:
            with self._waiters_lock:
                self._waiters.pop(call_id, None)
        reply = waiter.reply
        assert reply is not None
        if reply.error is not None:
            raise SdkError(f"the host refused {effect.__struct_config__.tag}: {reply.error.message}")
        assert reply.result is not None
        return reply.result

    def _send(self, frame: Any) -> None:
        with self._write_lock:
            write_frame(self.sock, frame)

    # -- loading ----------------------------------------------------------------------------------

    def load(self, python_dir: Path | None) -> None:
        """Import the package (on the loader thread); requests wait until it is done."""
        try:
            if python_dir is None:
                raise LoadFailure(f"{_env.ENV_CODE} is not set and no --code was given: no package code to load")
            service = load_service(python_dir)
            self.dispatcher = Dispatcher(service, self)
        except LoadFailure as failure:
            print(f"startos-runtime: {self.package_id}: {failure.message}", file=sys.stderr, flush=True)
            self.dispatcher = Dispatcher(None, self, load_failure=failure)
        except BaseException as exc:  # noqa: BLE001 (a bug here must still answer the host)
            bug = LoadFailure(describe_exception(exc), format_debug(exc))
            self.dispatcher = Dispatcher(None, self, load_failure=bug)
        finally:
            self._loaded.set()

    def start_effects_server(self) -> None:
        """Listen on ``$STARTOS_RUN/effects.sock`` for daemons' progress reports (best effort)."""
        from startos.runtime.effects import EffectsServer

        try:
            server = EffectsServer(_env.run_path(_env.EFFECTS_SOCKET), self._forward_progress)
            server.start()
        except (OSError, SdkError) as exc:
            print(
                f"startos-runtime: {self.package_id}: daemons cannot report progress: {exc}",
                file=sys.stderr,
                flush=True,
            )
            return
        self.effects_server = server

    def _forward_progress(self, report: wire.ReportProgress) -> None:
        try:
            self.report_progress(report)
        except OSError:
            pass  # the host is gone; the read loop is about to end the runtime

    # -- serving ----------------------------------------------------------------------------------

    def serve(self) -> int:
        """Read and dispatch frames until the host closes the connection; the exit status."""
        while True:
            try:
                frame: wire.RuntimeCall | wire.EffectReply = read_frame(
                    self.sock, _TO_RUNTIME, max_frame=self.max_frame
                )
            except PeerClosed:
                return 0
            except FrameError as exc:
                print(
                    f"startos-runtime: {self.package_id}: bad frame from the host: {exc}", file=sys.stderr, flush=True
                )
                return 3
            except OSError:
                return 0
            if isinstance(frame, wire.EffectReply):
                with self._waiters_lock:
                    waiter = self._waiters.get(frame.id)
                if waiter is not None:  # else: the hook gave up waiting already
                    waiter.reply = frame
                    waiter.event.set()
                continue
            threading.Thread(target=self._handle, args=(frame,), name=f"startos-call-{frame.id}", daemon=True).start()

    def _handle(self, call: wire.RuntimeCall) -> None:
        request = call.request
        reply: wire.RuntimeReply
        if isinstance(request, wire.Ping | wire.Shutdown):
            reply = wire.RuntimeReply(id=call.id, result=wire.Done())
        else:
            self._loaded.wait()
            assert self.dispatcher is not None
            try:
                reply = wire.RuntimeReply(id=call.id, result=self.dispatcher.handle(request))
            except CallFailed as failed:
                reply = wire.RuntimeReply(id=call.id, error=failed.error)
            except BaseException as exc:  # noqa: BLE001 (a runtime bug still gets an answer)
                error = wire.RemoteError(
                    reason="internal", message=describe_exception(exc)[:1024], debug=format_debug(exc)
                )
                reply = wire.RuntimeReply(id=call.id, error=error)
        try:
            self._send(reply)
        except OSError:
            return  # the host is gone
        if isinstance(request, wire.Shutdown):
            self.exit(0)

    def exit(self, status: int) -> None:
        """Remove the effects socket, flush the package's output and leave at once."""
        if self.effects_server is not None:
            self.effects_server.close()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)


def _connect(args: Any) -> socket.socket:
    if args.fd is not None:
        # The host end lives on a gevent hub, which may have made the pair non-blocking before
        # the fork; this end is read with plain blocking calls.
        os.set_blocking(args.fd, True)
        sock = socket.socket(fileno=args.fd)
    else:
        from startos.runtime.effects import short_path

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with short_path(Path(args.socket)) as address:
            sock.connect(address)
    os.set_inheritable(sock.fileno(), False)
    return sock


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m startos.runtime``; never returns."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m startos.runtime", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="an inherited, connected stream socket to the host")
    where.add_argument("--socket", help="the path of the host's Unix socket")
    parser.add_argument("--package-id", required=True, help="the package id (for messages)")
    parser.add_argument("--code", help="the package's code folder (default: $STARTOS_CODE)")
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        sock = _connect(args)
    except OSError as exc:
        print(f"startos-runtime: cannot reach the host: {exc}", file=sys.stderr, flush=True)
        os._exit(2)
    server = RuntimeServer(sock, args.package_id)
    # Hooks that report progress in the runtime itself go straight to the host.
    _progress.set_sink(server.report_progress)
    if args.code:
        os.environ[_env.ENV_CODE] = args.code  # so code_path() agrees with what was loaded
    code = os.environ.get(_env.ENV_CODE)
    python_dir = Path(code) / "python" if code else None
    threading.Thread(target=server.load, args=(python_dir,), name="startos-load", daemon=True).start()
    server.start_effects_server()
    server.exit(server.serve())

"""Running readiness checks, inside the sandbox (the runtime) or in a unit test.

Every outcome is a :class:`~startos.protocol.runtime.CheckResult`; nothing here raises because a
daemon is not up yet. Messages say what was tried and what happened, so a failing check is
explained in the UI (StartOS issue #997: a check timeout showed no message).
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from startos.protocol import runtime as wire
from startos.sdk._items import CheckOutcome

__all__ = ["run_check", "run_function_check"]

_OUTPUT_CAP = 64 * 1024


def _line(text: str, cap: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= cap else text[: cap - 1] + "…"


def _failure(message: str) -> wire.CheckResult:
    return wire.CheckResult(result="failure", message=_line(message))


def _http(spec: wire.HttpReady) -> wire.CheckResult:
    import http.client  # only services with HTTP checks pay for it

    url = f"http://{spec.host}:{spec.port}{spec.path}"
    connection = http.client.HTTPConnection(spec.host, spec.port, timeout=spec.timeout)
    try:
        connection.request("GET", spec.path, headers={"User-Agent": "startos-health-check"})
        status = connection.getresponse().status
    except TimeoutError:
        return _failure(f"{url} did not answer within {spec.timeout:g} s")
    except (OSError, http.client.HTTPException) as exc:
        return _failure(f"{url} is not answering: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}")
    finally:
        connection.close()
    if status in spec.expected_status:
        return wire.CheckResult(result="success")
    expected = " or ".join(str(s) for s in spec.expected_status)
    return _failure(f"{url} answered HTTP {status}, expected {expected}")


def _tcp(spec: wire.TcpReady) -> wire.CheckResult:
    try:
        with socket.create_connection((spec.host, spec.port), timeout=spec.timeout):
            return wire.CheckResult(result="success")
    except TimeoutError:
        return _failure(f"port {spec.port} on {spec.host} did not accept within {spec.timeout:g} s")
    except OSError as exc:
        return _failure(f"port {spec.port} on {spec.host} is not accepting connections: {exc.strerror or exc}")


def _command(spec: wire.CommandReady, env: Mapping[str, str]) -> wire.CheckResult:
    try:
        done = subprocess.run(
            list(spec.argv),
            env={**env, **spec.env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=spec.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _failure(f"{spec.argv[0]} did not finish within {spec.timeout:g} s")
    except OSError as exc:
        return _failure(f"cannot run {spec.argv[0]}: {exc.strerror or exc}")
    if done.returncode == 0:
        return wire.CheckResult(result="success")
    output = (done.stdout[-_OUTPUT_CAP:] + b"\n" + done.stderr[-_OUTPUT_CAP:]).decode("utf-8", "replace")
    lines = [line for line in output.splitlines() if line.strip()]
    why = lines[-1] if lines else f"exited with status {done.returncode}"
    return _failure(why)


def run_check(spec: wire.ReadyCheck, env: Mapping[str, str]) -> wire.CheckResult:
    """Run an HTTP, TCP or command check once (function checks: :func:`run_function_check`)."""
    if isinstance(spec, wire.HttpReady):
        return _http(spec)
    if isinstance(spec, wire.TcpReady):
        return _tcp(spec)
    if isinstance(spec, wire.CommandReady):
        return _command(spec, env)
    raise TypeError(f"run_check cannot run {type(spec).__name__}")


def run_function_check(
    fn: Callable[[Any], CheckOutcome],
    ctx: Any,
    timeout: float,
    *,
    busy: dict[str, threading.Thread] | None = None,
    key: str = "",
) -> wire.CheckResult:
    """Call a package's check function with a time limit; exceptions and odd returns are failures.

    A function that overruns keeps running in its (daemon) thread; the check reports a failure
    now rather than hang the caller. With ``busy``, a check whose previous run is still going is
    not started again (a check that hangs forever costs one thread, not one per run).
    """
    if busy is not None:
        previous = busy.get(key)
        if previous is not None and previous.is_alive():
            return _failure(f"the check's previous run has not finished (time limit {timeout:g} s)")
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(ctx)
        except BaseException as exc:  # noqa: BLE001 (package code: every failure is a check failure)
            box["error"] = exc

    worker = threading.Thread(target=target, name="startos-check", daemon=True)
    worker.start()
    if busy is not None:
        busy[key] = worker
    worker.join(timeout)
    if worker.is_alive():
        return _failure(f"the check did not finish within {timeout:g} s")
    if "error" in box:
        exc = box["error"]
        return _failure(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    value = box.get("value")
    if value is True:
        return wire.CheckResult(result="success")
    if value is False:
        return _failure("the check reported failure")
    if not isinstance(value, wire.CheckResult):
        return _failure(f"the check returned {type(value).__name__}; return a CheckResult or a bool")
    message = value.message
    if message is None and value.result in ("failure", "loading"):
        message = f"the check reported {value.result}"
    try:  # built by package code, so not validated yet
        return msgspec.convert(
            {"result": value.result, "message": _line(message, 1024) if isinstance(message, str) else message},
            wire.CheckResult,
        )
    except msgspec.ValidationError as exc:
        return _failure(f"the check returned an invalid result: {exc}")

"""Every RPC method of the facade: its params, its result, and whether it needs a session.

This table is the single source of the API: the facade validates against it, the CLI and the
dashboard call by its names, and ``state`` turns it into an OpenRPC document.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from startos.protocol.base import Params, Result
from startos.protocol.store import PatchOp


class EchoParams(Params, frozen=True):
    message: str


class NoParams(Params, frozen=True):
    pass


class DbDumpParams(Params, frozen=True):
    pointer: str = "/public"


class DbPutParams(Params, frozen=True):
    pointer: str
    value: Any


class DbPutUiParams(Params, frozen=True):
    pointer: str
    value: Any


class DbApplyParams(Params, frozen=True):
    patch: list[PatchOp]


class DbSubscribeParams(Params, frozen=True):
    pointer: str = "/public"
    since: int | None = None


class DumpResult(Result, frozen=True):
    id: int
    value: Any


class SubscribeResult(Result, frozen=True):
    dump: DumpResult | None
    guid: str


class MethodSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the API promises about one method."""

    name: str
    summary: str
    params: type
    result: Any
    auth: bool = True
    mutating: bool = False
    local_only: bool = False
    before_setup: bool = False


METHODS: dict[str, MethodSpec] = {}


def method(
    name: str,
    summary: str,
    params: type,
    result: Any,
    *,
    auth: bool = True,
    mutating: bool = False,
    local_only: bool = False,
    before_setup: bool = False,
) -> MethodSpec:
    """Declare a method.

    ``auth``: needs a session (or the local root cookie). ``local_only``: only from the machine
    itself (the root-only cookie file). ``before_setup``: answers before setup is complete;
    every other method then answers Uninitialized (40).
    """
    if name in METHODS:
        raise ValueError(f"method {name!r} declared twice")
    spec = MethodSpec(
        name=name,
        summary=summary,
        params=params,
        result=result,
        auth=auth,
        mutating=mutating,
        local_only=local_only,
        before_setup=before_setup,
    )
    METHODS[name] = spec
    return spec


method("echo", "Return the message unchanged (a liveness check).", EchoParams, str, auth=False, before_setup=True)
method(
    "state", "The API specification as an OpenRPC document.", NoParams, dict[str, Any], auth=False, before_setup=True
)
method("git-info", "The git commit this server was built from.", NoParams, str | None)
method("db.dump", "The public state tree (or the part at `pointer`) with its revision id.", DbDumpParams, DumpResult)
method("db.put", "Set the value at `pointer` under /public.", DbPutParams, None, mutating=True)
method(
    "db.put.ui",
    'Set the value at `pointer` inside the UI\'s own settings (/public/ui); "" replaces them all.',
    DbPutUiParams,
    None,
    mutating=True,
)
method("db.apply", "Apply an RFC 6902 patch under /public atomically.", DbApplyParams, None, mutating=True)
method(
    "db.subscribe",
    "Dump `pointer` and open a live patch stream: connect to /ws/rpc/{guid} within 30 s.",
    DbSubscribeParams,
    SubscribeResult,
)


# -- diagnostic mode: startd runs these (and echo, state) when the state tree cannot load ------


class DiagnosticErrorData(Result, frozen=True):
    details: str


class DiagnosticError(Result, frozen=True, omit_defaults=True):
    """StartOS's error object: ``code`` an error kind, ``message`` its title, ``data.details`` what went wrong."""

    code: int
    message: str
    data: DiagnosticErrorData | None = None


class DiagnosticLogsParams(Params, frozen=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    cursor: int | None = None
    before: bool = False


class DiagnosticLogEntry(Result, frozen=True):
    cursor: int
    timestamp: float
    level: str
    logger: str
    message: str


class DiagnosticLogsResult(Result, frozen=True):
    entries: list[DiagnosticLogEntry]
    start_cursor: int | None
    end_cursor: int | None


method(
    "diagnostic.error",
    "Why startd is in diagnostic mode (its state tree could not be loaded); null when it runs normally.",
    NoParams,
    DiagnosticError | None,
    auth=False,
    before_setup=True,
)
method(
    "diagnostic.logs",
    "Diagnostic mode: startd's own recent log lines (the newest `limit`, or those after/before `cursor`).",
    DiagnosticLogsParams,
    DiagnosticLogsResult,
    local_only=True,
    before_setup=True,
)
method(
    "diagnostic.restart",
    "Diagnostic mode: answer, stop, and start startd again with the same arguments (e.g. once the data "
    "directory is repaired).",
    NoParams,
    None,
    local_only=True,
    before_setup=True,
)

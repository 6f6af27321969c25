"""The state tree over RPC: dump, put, apply, subscribe. ``/private`` stays on the server.

Clients read all of ``/public`` but write only ``/public/ui``, the one subtree users own: every
other subtree has an owning actor, and a client's write there once let a session holder make
startd delete directories (a package id built from a planted key) or forget it was set up.
"""

from __future__ import annotations

import msgspec

from startos.actors.facade import FacadeActor
from startos.actors.patching import is_under
from startos.actors.registry import rpc
from startos.protocol.calls import CallContext
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.owners import CLIENT
from startos.protocol.rpc import (
    DbApplyParams,
    DbDumpParams,
    DbPutParams,
    DbPutUiParams,
    DbSubscribeParams,
    DumpResult,
    SubscribeResult,
)
from startos.protocol.store import (
    AddOp,
    CopyOp,
    DbApply,
    DbDump,
    DbPut,
    DbSubscribe,
    MoveOp,
    PatchOp,
    ReplaceOp,
    TestOp,
)

PUBLIC = "/public"
UI = "/public/ui"


def _public_pointer(pointer: str, *, writable: bool) -> str:
    """Refuse pointers outside ``/public``: ``/private`` never leaves the server."""
    allowed = is_under(pointer, PUBLIC) and (not writable or pointer != PUBLIC)
    if not allowed:
        where = "below /public" if writable else "under /public"
        raise RpcError(ErrorKind.AUTHORIZATION, f"pointer {pointer!r} is not allowed: use one {where}")
    return pointer


def _ui_pointer(pointer: str) -> str:
    """Refuse writes outside ``/public/ui`` (the one client-owned subtree)."""
    _public_pointer(pointer, writable=True)
    if not is_under(pointer, UI):
        raise RpcError(
            ErrorKind.AUTHORIZATION,
            f"pointer {pointer!r} is not writable by clients: only {UI} is (e.g. `start-cli db put-ui`)",
        )
    return pointer


def _ui_op(op: PatchOp) -> None:
    """Check one operation of a client patch: it may read ``/public`` but change only ``/public/ui``."""
    if isinstance(op, TestOp):
        _public_pointer(op.path, writable=False)
        return
    _ui_pointer(op.path)
    if isinstance(op, CopyOp):
        _public_pointer(op.from_, writable=False)
    elif isinstance(op, MoveOp):
        _ui_pointer(op.from_)
    if op.path == UI and not (isinstance(op, AddOp | ReplaceOp) and isinstance(op.value, dict)):
        raise RpcError(ErrorKind.INVALID_PARAMS, f"{UI} itself can only be replaced by an object")


@rpc("db.dump")
def _db_dump(facade: FacadeActor, params: DbDumpParams, _ctx: CallContext) -> DumpResult:
    dump = facade.ask("store", DbDump(pointer=_public_pointer(params.pointer, writable=False)))
    return DumpResult(id=dump.id, value=dump.value)


@rpc("db.put")
def _db_put(facade: FacadeActor, params: DbPutParams, _ctx: CallContext) -> int:
    _ui_op(AddOp(path=params.pointer, value=params.value))
    return int(facade.ask("store", DbPut(pointer=params.pointer, value=params.value, owner=CLIENT)))


@rpc("db.put.ui")
def _db_put_ui(facade: FacadeActor, params: DbPutUiParams, _ctx: CallContext) -> int:
    if params.pointer and not params.pointer.startswith("/"):
        raise RpcError(ErrorKind.INVALID_PARAMS, f"pointer {params.pointer!r} must be empty or start with '/'")
    pointer = f"{UI}{params.pointer}"
    _ui_op(AddOp(path=pointer, value=params.value))
    return int(facade.ask("store", DbPut(pointer=pointer, value=params.value, owner=CLIENT)))


@rpc("db.apply")
def _db_apply(facade: FacadeActor, params: DbApplyParams, _ctx: CallContext) -> int:
    for op in params.patch:
        _ui_op(op)
    patch = msgspec.to_builtins(params.patch)
    return int(facade.ask("store", DbApply(patch=patch, owner=CLIENT)))


@rpc("db.subscribe")
def _db_subscribe(facade: FacadeActor, params: DbSubscribeParams, _ctx: CallContext) -> SubscribeResult:
    pointer = _public_pointer(params.pointer, writable=False)
    sub = facade.ask("store", DbSubscribe(pointer=pointer, since=params.since))
    guid = facade.hold_subscription(sub)
    dump = None if sub.dump is None else DumpResult(id=sub.dump.id, value=sub.dump.value)
    return SubscribeResult(dump=dump, guid=guid)

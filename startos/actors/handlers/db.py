"""The state tree over RPC: dump, put, apply, subscribe. ``/private`` stays on the server."""

from __future__ import annotations

import msgspec

from startos.actors.facade import CallContext, FacadeActor
from startos.actors.patching import is_under
from startos.actors.registry import rpc
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.rpc import (
    DbApplyParams,
    DbDumpParams,
    DbPutParams,
    DbPutUiParams,
    DbSubscribeParams,
    DumpResult,
    SubscribeResult,
)
from startos.protocol.store import DbApply, DbDump, DbPut, DbSubscribe

PUBLIC = "/public"


def _public_pointer(pointer: str, *, writable: bool) -> str:
    """Refuse pointers outside ``/public``: ``/private`` never leaves the server."""
    allowed = is_under(pointer, PUBLIC) and (not writable or pointer != PUBLIC)
    if not allowed:
        where = "below /public" if writable else "under /public"
        raise RpcError(ErrorKind.AUTHORIZATION, f"pointer {pointer!r} is not allowed: use one {where}")
    return pointer


@rpc("db.dump")
def _db_dump(facade: FacadeActor, params: DbDumpParams, _ctx: CallContext) -> DumpResult:
    dump = facade.ask("store", DbDump(pointer=_public_pointer(params.pointer, writable=False)))
    return DumpResult(id=dump.id, value=dump.value)


@rpc("db.put")
def _db_put(facade: FacadeActor, params: DbPutParams, _ctx: CallContext) -> int:
    pointer = _public_pointer(params.pointer, writable=True)
    return int(facade.ask("store", DbPut(pointer=pointer, value=params.value)))


@rpc("db.put.ui")
def _db_put_ui(facade: FacadeActor, params: DbPutUiParams, _ctx: CallContext) -> int:
    if params.pointer and not params.pointer.startswith("/"):
        raise RpcError(ErrorKind.INVALID_PARAMS, f"pointer {params.pointer!r} must be empty or start with '/'")
    return int(facade.ask("store", DbPut(pointer=f"{PUBLIC}/ui{params.pointer}", value=params.value)))


@rpc("db.apply")
def _db_apply(facade: FacadeActor, params: DbApplyParams, _ctx: CallContext) -> int:
    for op in params.patch:
        _public_pointer(op.path, writable=True)
        source = getattr(op, "from_", None)
        if source is not None:
            _public_pointer(source, writable=True)
    patch = msgspec.to_builtins(params.patch)
    return int(facade.ask("store", DbApply(patch=patch)))


@rpc("db.subscribe")
def _db_subscribe(facade: FacadeActor, params: DbSubscribeParams, _ctx: CallContext) -> SubscribeResult:
    pointer = _public_pointer(params.pointer, writable=False)
    sub = facade.ask("store", DbSubscribe(pointer=pointer, since=params.since))
    guid = facade.hold_subscription(sub)
    dump = None if sub.dump is None else DumpResult(id=sub.dump.id, value=sub.dump.value)
    return SubscribeResult(dump=dump, guid=guid)

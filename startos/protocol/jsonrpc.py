"""The JSON-RPC 2.0 envelope: requests, responses, batches, and typed errors."""

from __future__ import annotations

from typing import Any

import msgspec

from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind, kind_title
from startos.protocol.limits import DepthError, decode_json

JsonId = int | str | None


class ErrorData(msgspec.Struct, frozen=True, omit_defaults=True):
    details: str
    debug: str | None = None


class ErrorObject(msgspec.Struct, frozen=True, omit_defaults=True):
    code: int
    message: str
    data: ErrorData | None = None


class Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One call. ``id`` absent (``UNSET``) makes it a notification: it gets no response."""

    jsonrpc: str
    method: str
    params: dict[str, Any] | list[Any] | None = None
    id: int | str | msgspec.UnsetType | None = msgspec.UNSET

    @property
    def is_notification(self) -> bool:
        return self.id is msgspec.UNSET


class Response(msgspec.Struct, frozen=True):
    """A reply; ``result`` or ``error`` is present, never both (unset fields are not encoded)."""

    jsonrpc: str
    id: JsonId
    result: Any = msgspec.UNSET
    error: ErrorObject | msgspec.UnsetType = msgspec.UNSET


class RpcError(StartOSError):
    """Raised to answer a call with a JSON-RPC error; ``kind`` is the wire code."""

    def __init__(self, kind: int, details: str, *, debug: str | None = None) -> None:
        super().__init__(details, kind=int(kind))
        self.debug = debug

    def to_object(self) -> ErrorObject:
        return ErrorObject(
            code=self.kind,
            message=kind_title(self.kind),
            data=ErrorData(details=self.message, debug=self.debug),
        )


def error_response(request_id: JsonId, error: RpcError) -> Response:
    return Response(jsonrpc="2.0", id=request_id, error=error.to_object())


def result_response(request_id: JsonId, result: Any) -> Response:
    return Response(jsonrpc="2.0", id=request_id, result=result)


def parse_error(details: str) -> RpcError:
    return RpcError(ErrorKind.PARSE_ERROR, details)


def invalid_request(details: str) -> RpcError:
    return RpcError(ErrorKind.INVALID_REQUEST_JSONRPC, details)


def parse_body(body: bytes, *, max_batch: int = 1000) -> tuple[bool, list[Request | tuple[JsonId, RpcError]]]:
    """Parse an HTTP body into calls.

    Returns ``(is_batch, items)``; an item is a valid ``Request`` or ``(id, error)`` for an
    element that is not a valid request (its id salvaged when possible). Raises ``RpcError``
    when the body as a whole is not JSON, nests too deep (``limits.MAX_DEPTH``), is an empty batch
    or a batch of more than ``max_batch`` calls.
    """
    try:
        raw = decode_json(body, what="the request")
    except DepthError as exc:
        raise invalid_request(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise parse_error(f"body is not valid JSON: {exc}") from None
    if isinstance(raw, list):
        if not raw:
            raise invalid_request("empty batch")
        if len(raw) > max_batch:
            raise invalid_request(f"a batch may hold at most {max_batch} calls (this one has {len(raw)})")
        return True, [_to_request(item) for item in raw]
    return False, [_to_request(raw)]


def _to_request(raw: Any) -> Request | tuple[JsonId, RpcError]:
    salvaged: JsonId = None
    if isinstance(raw, dict):
        candidate = raw.get("id")
        if isinstance(candidate, int | str) and not isinstance(candidate, bool):
            salvaged = candidate
    else:
        return salvaged, invalid_request("a request must be a JSON object")
    try:
        request = msgspec.convert(raw, Request)
    except msgspec.ValidationError as exc:
        return salvaged, invalid_request(f"not a JSON-RPC 2.0 request: {exc}")
    if request.jsonrpc != "2.0":
        return salvaged, invalid_request(f'"jsonrpc" must be "2.0", not {request.jsonrpc!r}')
    return request

"""FacadeActor: the one RPC surface for the dashboard, start-cli and tests.

It validates params against ``protocol.rpc.METHODS``, checks access, routes each call to the
actor that owns the answer, and turns every failure into a typed JSON-RPC error. Each call runs
on its own greenlet (the facade defers its reply), so one slow call never queues the others
behind it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import gevent
import msgspec
import pykka
from gevent.lock import Semaphore

from startos.actors.registry import HANDLERS
from startos.errors import StartOSError
from startos.protocol.base import Message
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.openrpc import openrpc_document
from startos.protocol.rpc import METHODS, MethodSpec
from startos.protocol.store import DbRevision
from startos.supervision import Actor, ActorNotFound, Directory, handles

__all__ = ["CallContext", "ClaimSubscription", "FacadeActor", "RpcCall", "RpcReply"]

logger = logging.getLogger(__name__)

SUBSCRIBE_CLAIM_WINDOW = 30.0


class CallContext(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the transport fills it in; handlers may read it.

    ``session`` is the caller's session token (from the cookie), ``session_id`` the session it
    belongs to once the facade has checked it. ``local_root`` is set when the caller proved it
    is root on this machine (the cookie file only root can read).
    """

    peer: str = ""
    local: bool = False
    secure: bool = False
    session: str | None = None
    session_id: str | None = None
    user_agent: str | None = None
    local_root: bool = False


class RpcCall(Message, frozen=True):
    """One JSON-RPC call to route: reply is an ``RpcReply`` or an ``RpcError`` is raised."""

    method: str
    params: dict[str, Any] | list[Any] | None = None
    context: CallContext = CallContext()


class RpcReply(msgspec.Struct, frozen=True):
    """A method's result; ``revision`` is set for mutating methods (``X-Patch-Sequence``).

    ``set_session`` (a token, with ``persistent``) or ``clear_session`` ask the transport to set or
    clear the ``session`` cookie.
    """

    result: Any
    revision: int | None = None
    set_session: str | None = None
    persistent: bool = True
    clear_session: bool = False


class WithCookie(msgspec.Struct, frozen=True):
    """Returned by a handler that also sets (``token``) or clears the session cookie."""

    result: Any
    token: str | None = None
    persistent: bool = True
    clear: bool = False


class ClaimSubscription(Message, frozen=True):
    """Hand the subscription opened by ``db.subscribe`` to the WebSocket that names its guid."""

    guid: str


class FacadeActor(Actor):
    """Routes RPC calls to the actors of the tree."""

    def __init__(self, directory: Directory, *, call_timeout: float = 60.0) -> None:
        super().__init__()
        self.directory = directory
        self.call_timeout = call_timeout
        self._claims: dict[str, Any] = {}
        self._spec_cache: dict[str, Any] | None = None
        self._set_up = False  # cached once true: setup is never undone
        self._locks: dict[str, Semaphore] = {}

    def __str__(self) -> str:
        return "FacadeActor"

    def on_stop(self) -> None:
        for item in self._claims.values():
            _close_claim(item)
        self._claims.clear()

    @handles(RpcCall)
    def call(self, message: RpcCall) -> None:
        """Validate and run one call on its own greenlet; the reply comes from there."""
        reply = self.defer_reply()
        gevent.spawn(self._run, message, reply)

    @handles(ClaimSubscription)
    def claim(self, message: ClaimSubscription) -> Any:
        """What is waiting for this guid (a stream or an upload); each guid can be claimed once."""
        item = self._claims.pop(message.guid, None)
        if item is None:
            raise RpcError(ErrorKind.NOT_FOUND, f"nothing is waiting for {message.guid!r} (expired or used)")
        return item

    def _run(self, message: RpcCall, reply: pykka.Future[Any] | None) -> None:
        try:
            outcome = self.dispatch(message.method, message.params, message.context)
        except RpcError:
            if reply is not None:
                reply.set_exception()
            return
        except BaseException as exc:
            if reply is not None:
                reply.set_exception((type(exc), exc, exc.__traceback__))
            if not isinstance(exc, Exception):
                raise
            return
        if reply is not None:
            reply.set(outcome)

    def dispatch(self, method: str, params: Any, context: CallContext) -> RpcReply:
        """Run one call in the caller's greenlet; failures become ``RpcError``."""
        spec = METHODS.get(method)
        handler = HANDLERS.get(method)
        if spec is None or handler is None:
            raise RpcError(ErrorKind.METHOD_NOT_FOUND, f"there is no method {method!r}")
        try:
            # Access first: an anonymous caller learns nothing, not even whether its params were valid.
            context = self._admit(spec, context)
            parsed = self.parse_params(spec, params)
            result = handler(self, parsed, context)
            cookie = None
            if isinstance(result, WithCookie):
                cookie, result = result, result.result
            revision = None
            if spec.mutating:
                revision = result if isinstance(result, int) else self.ask("store", DbRevision())
                result = None if isinstance(result, int) else result
            if cookie is None:
                return RpcReply(result=result, revision=revision)
            return RpcReply(
                result=result,
                revision=revision,
                set_session=cookie.token,
                persistent=cookie.persistent,
                clear_session=cookie.clear,
            )
        except RpcError:
            raise
        except StartOSError as exc:
            raise RpcError(exc.kind, exc.message) from exc
        except pykka.Timeout as exc:
            raise RpcError(ErrorKind.TIMEOUT, f"{method} did not finish within {self.call_timeout:g} s") from exc
        except Exception as exc:
            logger.exception("method %s failed", method)
            raise RpcError(
                ErrorKind.INTERNAL_ERROR, f"{method} failed unexpectedly; see the server log", debug=repr(exc)
            ) from exc

    def _admit(self, spec: MethodSpec, context: CallContext) -> CallContext:
        """Refuse the call unless setup, locality and session allow it; fill in ``session_id``."""
        from startos.protocol.auth import CheckSession, IsSetUp

        if spec.local_only and not context.local_root:
            raise RpcError(
                ErrorKind.AUTHORIZATION,
                f"{spec.name} works only on the server itself: run start-cli there as root",
            )
        if not spec.before_setup and not self._set_up:
            self._set_up = bool(self.ask("auth", IsSetUp()))
            if not self._set_up:
                raise RpcError(ErrorKind.UNINITIALIZED, "the server is not set up yet: complete setup first")
        if not spec.auth or context.local_root:
            return context
        session_id = self.ask("auth", CheckSession(token=context.session)) if context.session else None
        if session_id is None:
            raise RpcError(ErrorKind.AUTHORIZATION, "you are not logged in (or your session ended): log in first")
        return msgspec.structs.replace(context, session_id=session_id)

    def lock(self, name: str) -> Semaphore:
        """A lock shared by every call of the facade (e.g. one setup at a time)."""
        return self._locks.setdefault(name, Semaphore())

    @staticmethod
    def parse_params(spec: MethodSpec, params: Any) -> Any:
        """``params`` as the method's typed params struct, or ``RpcError`` (INVALID_PARAMS)."""
        if params is None or params == []:
            params = {}
        if not isinstance(params, dict):
            raise RpcError(ErrorKind.INVALID_PARAMS, f"{spec.name} takes named params (a JSON object)")
        try:
            return msgspec.convert(params, spec.params)
        except msgspec.ValidationError as exc:
            raise RpcError(ErrorKind.INVALID_PARAMS, f"{spec.name}: {exc}") from exc

    def ask(self, name: str, message: object) -> Any:
        """Ask another actor of the tree, with the facade's call timeout."""
        try:
            return self.directory.ask(name, message, timeout=self.call_timeout)
        except ActorNotFound as exc:
            raise RpcError(ErrorKind.UNKNOWN, f"the {name} service is restarting; try again") from exc

    def api_spec(self) -> dict[str, Any]:
        if self._spec_cache is None:
            self._spec_cache = openrpc_document(METHODS)
        return self._spec_cache

    def hold_claim(self, item: Any, window: float = SUBSCRIBE_CLAIM_WINDOW) -> str:
        """Keep ``item`` for whoever presents the returned guid within ``window`` seconds.

        Items are ``("stream", source, initial)`` (a patch or log stream for ``/ws/rpc/{guid}``)
        or ``("upload", params)`` (a sideload for ``/rest/upload/{guid}``).
        """
        guid = uuid.uuid4().hex
        self._claims[guid] = item
        gevent.spawn_later(window, self._expire, guid)
        return guid

    def hold_subscription(self, sub: Any) -> str:
        return self.hold_claim(("stream", sub, []))

    def _expire(self, guid: str) -> None:
        item = self._claims.pop(guid, None)
        if item is not None:
            _close_claim(item)


def _close_claim(item: Any) -> None:
    if isinstance(item, tuple) and item and item[0] in ("stream", "attach"):
        item[1].close()


def _load_handlers() -> None:
    # Imported here, not at the top: the handler modules import this one.
    import startos.actors.handlers  # noqa: F401


_load_handlers()

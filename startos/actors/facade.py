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

import msgspec
import pykka
from gevent.lock import Semaphore
from greenlet import GreenletExit

from startos.actors.registry import HANDLERS
from startos.errors import StartOSError
from startos.protocol.auth import CheckSession, IsSetUp
from startos.protocol.base import Message
from startos.protocol.calls import (
    CallContext,
    CheckCaller,
    CheckSetUp,
    GetRootCa,
    GetServerHostname,
    GetWebCertificate,
    InstallUpload,
    RpcCall,
    RpcReply,
    TakeClaim,
    WithCookie,
)
from startos.protocol.certs import GetAuthority, GetServerCert
from startos.protocol.claims import Claim, StreamClaim, release
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.openrpc import openrpc_document
from startos.protocol.packages import InstallPackage
from startos.protocol.rpc import METHODS, MethodSpec
from startos.protocol.store import DbDump, DbRevision
from startos.supervision import Actor, ActorNotFound, Directory, handles

__all__ = ["FacadeActor"]

logger = logging.getLogger(__name__)

SUBSCRIBE_CLAIM_WINDOW = 30.0
INSTALL_TIMEOUT = 600.0  # reading, verifying and unpacking a large package
WEB_ASK_TIMEOUT = 10.0  # what the web layer asks besides RPC answers fast or not at all
LOCKS = ("setup",)  # the locks calls share (made up front: a call's greenlet changes no field)


class _SetUpSeen(Message, frozen=True):
    """Told by a call's greenlet to its facade: setup is complete (cached from then on)."""


class FacadeActor(Actor):
    """Routes RPC calls to the actors of the tree."""

    def __init__(self, directory: Directory, *, call_timeout: float = 60.0) -> None:
        super().__init__()
        self.directory = directory
        self.call_timeout = call_timeout
        self._claims: dict[str, Claim] = {}
        self._spec_cache: dict[str, Any] | None = None
        self._set_up = False  # cached once true: setup is never undone
        self._locks: dict[str, Semaphore] = {name: Semaphore() for name in LOCKS}

    def __str__(self) -> str:
        return "FacadeActor"

    def on_stop(self) -> None:
        for claim in self._claims.values():
            release(claim)
        self._claims.clear()

    @handles(RpcCall)
    def call(self, message: RpcCall) -> None:
        """Validate and run one call on its own greenlet; the reply comes from there."""
        reply = self.defer_reply()
        job = self.spawn(self._run, message, reply)
        if reply is not None:  # killed with the facade, even before it ran: the caller hears so
            self.answer_if_dropped(job, reply, _cut_short(message.method))

    @handles(TakeClaim)
    def claim(self, message: TakeClaim) -> Claim:
        """What is waiting for this guid (a stream, a session or an upload); each guid can be claimed once."""
        claim = self._claims.pop(message.guid, None)
        if claim is None:
            raise RpcError(ErrorKind.NOT_FOUND, f"nothing is waiting for {message.guid!r} (expired or used)")
        return claim

    # -- what the web layer asks besides RPC: it talks to the facade only -----------------------

    @handles(CheckSetUp)
    def check_set_up(self, _message: CheckSetUp) -> bool | None:
        """Whether initial setup is complete (cached once true: setup is never undone)."""
        if self._set_up:
            return True
        self.answer_later(self._ask_set_up, WEB_ASK_TIMEOUT)
        return None

    @handles(_SetUpSeen)
    def _set_up_seen(self, _message: _SetUpSeen) -> None:
        """A call's greenlet learned that setup is complete: remember it here, on the actor."""
        self._set_up = True

    def _ask_set_up(self, timeout: float) -> bool:
        """Ask the AuthActor whether setup is complete (from a call's greenlet); tell the actor if so."""
        set_up = bool(self.directory.ask("auth", IsSetUp(), timeout=timeout))
        if set_up:
            self.actor_ref.tell(_SetUpSeen())
        return set_up

    @handles(CheckCaller)
    def check_caller(self, message: CheckCaller) -> bool | None:
        """Whether the caller holds a live session (or proved it is root on this machine)."""
        context = message.context
        if context.local_root:
            return True
        if not context.session:
            return False
        token = context.session
        self.answer_later(
            lambda: self.directory.ask("auth", CheckSession(token=token), timeout=WEB_ASK_TIMEOUT) is not None
        )
        return None

    @handles(GetRootCa)
    def root_ca(self, _message: GetRootCa) -> str | None:
        """The root CA's PEM for ``/static/local-root-ca.crt`` (``None`` before setup)."""
        if self.directory.get("certs") is None:
            return None

        def pem() -> str | None:
            ca = self.directory.ask("certs", GetAuthority(), timeout=WEB_ASK_TIMEOUT)
            return None if ca is None else str(ca.pem)

        self.answer_later(pem)
        return None

    @handles(GetWebCertificate)
    def web_certificate(self, _message: GetWebCertificate) -> Any:
        """The HTTPS server's certificate (``ServerCertInfo``), or ``None`` before one was issued."""
        if self.directory.get("certs") is None:
            return None
        self.answer_later(lambda: self.directory.ask("certs", GetServerCert(), timeout=WEB_ASK_TIMEOUT))
        return None

    @handles(GetServerHostname)
    def server_hostname(self, _message: GetServerHostname) -> str | None:
        """The server's hostname label (its ``.local`` name), read from the state tree."""

        def hostname() -> str | None:
            value = self.directory.ask("store", DbDump(pointer="/public/serverInfo/hostname"), timeout=WEB_ASK_TIMEOUT)
            return value.value if isinstance(value.value, str) and value.value else None

        self.answer_later(hostname)
        return None

    @handles(InstallUpload)
    def install_upload(self, message: InstallUpload) -> Any:
        """Install a sideloaded file the web layer received; replies with ``InstallStarted``."""
        install = InstallPackage(path=message.path, accept_new_key=message.accept_new_key, remove_source=True)
        self.answer_later(lambda: self.directory.ask("services", install, timeout=INSTALL_TIMEOUT))
        return None

    def _run(self, message: RpcCall, reply: pykka.Future[Any] | None) -> None:
        try:
            outcome = self.dispatch(message.method, message.params, message.context)
        except RpcError:
            if reply is not None:
                reply.set_exception()
            return
        except GreenletExit:
            raise  # the facade stopped mid-call: answered by the link set in call()
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
        if spec.local_only and not context.local_root:
            raise RpcError(
                ErrorKind.AUTHORIZATION,
                f"{spec.name} works only on the server itself: run start-cli there as root",
            )
        if not spec.before_setup and not self._set_up:
            try:
                set_up = self._ask_set_up(self.call_timeout)
            except ActorNotFound as exc:
                raise RpcError(ErrorKind.UNKNOWN, "the auth service is restarting; try again") from exc
            if not set_up:
                raise RpcError(ErrorKind.UNINITIALIZED, "the server is not set up yet: complete setup first")
        if not spec.auth or context.local_root:
            return context
        session_id = self.ask("auth", CheckSession(token=context.session)) if context.session else None
        if session_id is None:
            raise RpcError(ErrorKind.AUTHORIZATION, "you are not logged in (or your session ended): log in first")
        return msgspec.structs.replace(context, session_id=session_id)

    def lock(self, name: str) -> Semaphore:
        """A lock shared by every call of the facade, one of :data:`LOCKS` (e.g. one setup at a time)."""
        return self._locks[name]

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

    def hold_claim(self, claim: Claim, window: float = SUBSCRIBE_CLAIM_WINDOW) -> str:
        """Keep ``claim`` for whoever presents the returned guid within ``window`` seconds.

        A ``StreamClaim`` or ``AttachClaim`` is for ``/ws/rpc/{guid}``, an ``UploadClaim`` for
        ``/rest/upload/{guid}`` (``startos.protocol.claims``).
        """
        guid = uuid.uuid4().hex
        self._claims[guid] = claim
        self.spawn_later(window, self._expire, guid)
        return guid

    def hold_subscription(self, sub: Any) -> str:
        """Hold a state subscription for the patch socket (see :meth:`hold_claim`)."""
        return self.hold_claim(StreamClaim(source=sub))

    def _expire(self, guid: str) -> None:
        claim = self._claims.pop(guid, None)
        if claim is not None:
            release(claim)


def _cut_short(method: str) -> RpcError:
    return RpcError(ErrorKind.UNKNOWN, f"{method} was cut short: the server is stopping or restarting; try again")


def _load_handlers() -> None:
    # Imported here, not at the top: the handler modules import this one.
    import startos.actors.handlers  # noqa: F401


_load_handlers()

"""The bottle app: ``POST /rpc/v1``, the live patch socket, and the dashboard's files.

A thin client of the facade: it decodes HTTP, hands each call to ``FacadeActor`` and encodes
what comes back. It never answers HTTP 500 to an RPC: every failure is a JSON-RPC error.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import bottle
import msgspec
import simple_websocket

from startos.errors import StartOSError
from startos.protocol.calls import (
    CallContext,
    CheckCaller,
    CheckSetUp,
    GetRootCa,
    InstallUpload,
    RpcCall,
    RpcReply,
    TakeClaim,
)
from startos.protocol.claims import AttachClaim, StreamClaim, UploadClaim
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import (
    Request,
    Response,
    RpcError,
    error_response,
    invalid_request,
    parse_body,
    result_response,
)
from startos.supervision import ActorNotFound, Directory
from startos.webui.hardening import HostAllowlist, install_host_check
from startos.webui.policy import (
    ALWAYS_OPEN,
    LOCAL_COOKIE,
    LocalCookie,
    csrf_problem,
    https_url,
    is_loopback,
    is_secure,
)
from startos.webui.uploads import receive_upload

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "session"
SESSION_MAX_AGE = 365 * 24 * 3600
MAX_BATCH = 1000
ANONYMOUS_BATCH = 20
MAX_BATCH_RESPONSE = 32 * 1024 * 1024
INSTALL_TIMEOUT = 660.0  # the facade's own install timeout (600 s) plus a margin
_json = msgspec.json.Encoder()


def build_app(
    directory: Directory,
    *,
    max_body: int = 4 * 1024 * 1024,
    call_timeout: float = 120.0,
    local_cookie: LocalCookie | None = None,
    tls_port: int | None = None,
    upload_dir: Path | None = None,
    max_upload: int = 16 * 1024**3,
    max_batch: int = MAX_BATCH,
    anonymous_batch: int = ANONYMOUS_BATCH,
    max_response: int = MAX_BATCH_RESPONSE,
    allowed_hosts: Iterable[str] | HostAllowlist = (),
    index_page: str = "index.html",
) -> bottle.Bottle:
    """The WSGI app for one tree, addressing its facade through ``directory``.

    The app talks to the facade only (and, for the HTTPS port, to the HTTPS server beside it):
    RPC calls, claims, and the few questions of ``protocol.calls`` (setup, sessions, the CA).

    ``local_cookie`` enables the root-only cookie file for the local start-cli; ``tls_port``
    is where plain-HTTP visitors from the LAN are sent. A batch holds at most ``max_batch``
    calls (``anonymous_batch`` without a session); once its responses pass ``max_response``
    bytes, the calls left are answered with an error instead of being run. ``allowed_hosts``: Host
    names served besides IP literals, localhost and ``<hostname>.local`` (``hardening.HostAllowlist``).
    ``index_page``: the file of ``static/`` served at ``/`` (diagnostic mode serves its own page).
    """
    app = bottle.Bottle(catchall=True)
    app.config["json.enable"] = False
    install_host_check(app, directory, allowed_hosts)  # first hook: refuse rebound Host names (421)
    set_up = {"done": False}

    def server_is_set_up() -> bool:
        if not set_up["done"]:
            try:
                set_up["done"] = bool(directory.ask("facade", CheckSetUp(), timeout=10))
            except ActorNotFound:
                return False
        return set_up["done"]

    def context() -> CallContext:
        environ = bottle.request.environ
        peer = environ.get("REMOTE_ADDR", "") or ""
        presented = bottle.request.get_cookie(LOCAL_COOKIE)
        return CallContext(
            peer=peer,
            local=is_loopback(peer),
            secure=is_secure(environ),
            session=bottle.request.get_cookie(SESSION_COOKIE) or None,
            user_agent=environ.get("HTTP_USER_AGENT"),
            local_root=local_cookie is not None and local_cookie.matches(presented),
        )

    def current_tls_port() -> int | None:
        if tls_port != 0:
            return tls_port
        if directory.get("web-tls") is None:  # port 0: ask the HTTPS server which one it got
            return None
        from startos.protocol.certs import GetTlsAddress

        port: int = directory.ask("web-tls", GetTlsAddress(), timeout=10).port
        return port

    @app.hook("before_request")
    def lan_http_policy() -> None:
        environ = bottle.request.environ
        if is_secure(environ) or is_loopback(environ.get("REMOTE_ADDR", "") or ""):
            return
        path = bottle.request.path
        if path in ALWAYS_OPEN:
            return
        if not server_is_set_up() and not path.startswith("/ws/"):
            return  # the setup wizard is served over HTTP to whoever sets the server up
        target = https_url(environ, current_tls_port())
        if bottle.request.method == "GET" and target is not None:
            raise bottle.HTTPResponse(status=301, headers={"Location": target})
        where = f": use {target}" if target else ""
        raise bottle.HTTPResponse(
            status=403,
            body=_json.encode(
                error_response(None, RpcError(ErrorKind.AUTHORIZATION, f"plain HTTP is only for this machine{where}"))
            ),
            headers={"Content-Type": "application/json"},
        )

    def call(method: str, params: Any, ctx: CallContext) -> RpcReply:
        try:
            facade = directory.ref("facade")
            reply: Any = facade.ask(RpcCall(method=method, params=params, context=ctx), timeout=call_timeout)
            return reply
        except RpcError:
            raise
        except ActorNotFound as exc:
            raise RpcError(ErrorKind.UNKNOWN, "the server is restarting; try again") from exc
        except Exception as exc:
            logger.exception("RPC %s failed in transport", method)
            raise RpcError(ErrorKind.INTERNAL_ERROR, f"{method} failed unexpectedly; see the server log") from exc

    def respond(payload: Any, revision: int | None) -> bytes:
        bottle.response.content_type = "application/json"
        if revision is not None:
            bottle.response.set_header("X-Patch-Sequence", str(revision))
        return _json.encode(payload)

    def apply_cookie(reply: RpcReply, secure: bool) -> None:
        if reply.set_session:
            options: dict[str, Any] = {"path": "/", "httponly": True, "samesite": "strict", "secure": secure}
            if reply.persistent:
                options["max_age"] = SESSION_MAX_AGE
            bottle.response.set_cookie(SESSION_COOKIE, reply.set_session, **options)
        elif reply.clear_session:
            bottle.response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure)

    def trusted(ctx: CallContext) -> bool:
        """Whether the caller holds a live session (or is root on this machine)."""
        if ctx.local_root:
            return True
        if not ctx.session:
            return False
        try:
            return bool(directory.ask("facade", CheckCaller(context=ctx), timeout=10))
        except ActorNotFound:
            return False

    def run_item(item: Request | tuple[Any, RpcError], ctx: CallContext, revisions: list[int]) -> Response | None:
        """Run one call of a body; its response, or ``None`` for a notification."""
        if isinstance(item, tuple):
            return error_response(item[0], item[1])
        request_id = None if item.is_notification else item.id
        try:
            reply = call(item.method, item.params, ctx)
        except RpcError as exc:
            return None if item.is_notification else error_response(request_id, exc)  # type: ignore[arg-type]
        apply_cookie(reply, ctx.secure)
        if reply.revision is not None:
            revisions.append(reply.revision)
        return None if item.is_notification else result_response(request_id, reply.result)  # type: ignore[arg-type]

    def finish(body: bytes | None, revisions: list[int]) -> bytes:
        if revisions:
            bottle.response.set_header("X-Patch-Sequence", str(max(revisions)))
        if body is None:
            bottle.response.status = 204
            return b""
        bottle.response.content_type = "application/json"
        return body

    @app.post("/rpc/v1")
    def rpc() -> bytes:
        problem = csrf_problem(bottle.request.environ)
        if problem is not None:
            bottle.response.status = 403
            return respond(error_response(None, RpcError(ErrorKind.AUTHORIZATION, problem)), None)
        body = _read_body(bottle.request.environ, bottle.request.content_length, max_body)
        if body is None:
            too_big = invalid_request(f"request body exceeds the {max_body}-byte limit")
            return respond(error_response(None, too_big), None)
        try:
            is_batch, items = parse_body(body, max_batch=max_batch)
        except RpcError as exc:
            return respond(error_response(None, exc), None)
        ctx = context()
        revisions: list[int] = []
        if not is_batch:
            response = run_item(items[0], ctx, revisions)
            return finish(None if response is None else _json.encode(response), revisions)
        if len(items) > anonymous_batch and not trusted(ctx):
            # Before login a batch is no lever: 99,000 calls of `state` in one body once made
            # startd allocate gigabytes.
            refused = invalid_request(f"a batch may hold at most {anonymous_batch} calls before you log in")
            return respond(error_response(None, refused), None)
        parts: list[bytes] = []
        size = 0
        for item in items:
            if size > max_response:
                # The rest are not run; each says so, and the client can send them again.
                if isinstance(item, Request) and item.is_notification:
                    continue
                request_id = item[0] if isinstance(item, tuple) else item.id
                not_run = invalid_request(
                    f"not run: the batch's responses passed {max_response} bytes; send fewer calls per batch"
                )
                parts.append(_json.encode(error_response(request_id, not_run)))  # type: ignore[arg-type]
                continue
            response = run_item(item, ctx, revisions)
            if response is not None:
                part = _json.encode(response)
                parts.append(part)
                size += len(part)
        return finish(b"[" + b",".join(parts) + b"]" if parts else None, revisions)

    @app.get("/ws/rpc/<guid>")
    def patch_socket(guid: str) -> Any:
        try:
            claimed: Any = directory.ref("facade").ask(TakeClaim(guid=guid), timeout=10)
        except (RpcError, ActorNotFound) as exc:
            bottle.response.status = 404
            bottle.response.content_type = "application/json"
            return _json.encode({"error": str(exc)})
        if isinstance(claimed, AttachClaim):
            session = claimed.session
            try:
                ws = simple_websocket.Server.accept(bottle.request.environ, max_message_size=1 << 20)
            except Exception:
                session.close()
                raise
            try:
                session.serve(ws)
            except simple_websocket.ConnectionClosed:
                pass
            finally:
                session.close()
                _end_websocket(ws)
            return bottle.HTTPResponse(status=200)
        if not isinstance(claimed, StreamClaim):
            bottle.response.status = 404
            bottle.response.content_type = "application/json"
            return _json.encode({"error": f"{guid} is not a stream"})
        source, initial = claimed.source, claimed.initial
        try:
            # The client sends nothing a stream needs: a small cap keeps it from buffering much.
            ws = simple_websocket.Server.accept(bottle.request.environ, max_message_size=4096)
        except Exception:
            source.close()
            raise
        try:
            _stream(ws, source, initial)
        finally:
            source.close()
            _end_websocket(ws)
        return bottle.HTTPResponse(status=200)  # the connection is already hijacked

    @app.route("/rest/upload/<guid>", method=["PUT", "POST"])
    def upload(guid: str) -> bytes:
        """Receive a sideloaded .s9pk (streamed to disk, never whole in memory), then install it."""
        bottle.response.content_type = "application/json"
        try:
            claimed: Any = directory.ref("facade").ask(TakeClaim(guid=guid), timeout=10)
        except (RpcError, ActorNotFound) as exc:
            bottle.response.status = 404
            return _json.encode(error_response(None, RpcError(ErrorKind.NOT_FOUND, str(exc))))
        if not isinstance(claimed, UploadClaim) or upload_dir is None:
            bottle.response.status = 404
            return _json.encode(error_response(None, RpcError(ErrorKind.NOT_FOUND, f"{guid} is not an upload")))
        try:
            path = receive_upload(bottle.request.environ, upload_dir, guid, max_upload)
            started = directory.ask(
                "facade", InstallUpload(path=str(path), accept_new_key=claimed.accept_new_key), timeout=INSTALL_TIMEOUT
            )
        except RpcError as exc:
            bottle.response.status = 400
            return _json.encode(error_response(None, exc))
        except StartOSError as exc:
            bottle.response.status = 400
            return _json.encode(error_response(None, RpcError(exc.kind, exc.message)))
        return _json.encode(result_response(None, started))

    @app.get("/static/local-root-ca.crt")
    def root_ca() -> Any:
        pem = _root_ca_pem(directory)
        if pem is None:
            bottle.response.status = 404
            bottle.response.content_type = "application/json"
            return _json.encode({"error": "there is no root CA yet: it is created at setup"})
        bottle.response.content_type = "application/x-x509-ca-cert"
        bottle.response.set_header("Content-Disposition", 'attachment; filename="local-root-ca.crt"')
        return pem

    @app.get("/")
    def index() -> Any:
        return bottle.static_file(index_page, root=str(STATIC))

    @app.get("/static/<path:path>")
    def static(path: str) -> Any:
        return bottle.static_file(path, root=str(STATIC))

    @app.error(404)
    def not_found(_err: Any) -> bytes:
        bottle.response.content_type = "application/json"
        return _json.encode({"error": f"no such path: {bottle.request.path}"})

    @app.error(405)
    def not_allowed(_err: Any) -> bytes:
        bottle.response.content_type = "application/json"
        return _json.encode({"error": f"{bottle.request.method} is not allowed on {bottle.request.path}"})

    @app.error(500)
    def internal(err: Any) -> bytes:
        logger.error("HTTP 500 on %s: %s", bottle.request.path, getattr(err, "exception", err))
        bottle.response.content_type = "application/json"
        return _json.encode({"error": "internal error; see the server log"})

    return app


def _root_ca_pem(directory: Directory) -> str | None:
    try:
        pem: str | None = directory.ask("facade", GetRootCa(), timeout=10)
    except ActorNotFound:
        return None
    return pem


def _read_body(environ: dict[str, Any], length: int, limit: int) -> bytes | None:
    """The request body, or ``None`` when it is over ``limit`` (never reading more than limit+1)."""
    if length > limit:
        return None
    stream = environ["wsgi.input"]
    if length >= 0:
        return stream.read(length) if length else b""
    body = stream.read(limit + 1)  # chunked: no length announced
    return None if len(body) > limit else body


WEBSOCKET_CLOSE_WAIT = 1.0  # seconds a WebSocket client gets to answer the close, then to hang up


def _end_websocket(ws: simple_websocket.Server) -> None:
    """Close ``ws`` and end its reader thread (a greenlet under gevent) with the request.

    simple_websocket reads on a thread of its own until the peer answers the close. A live
    client does so at once; one that vanished never does, so after a moment the connection is
    shut down, which ends the read (not at once: a client could then lose what was sent last,
    such as an attached command's exit status).
    """
    try:
        ws.close()
    except Exception:  # noqa: BLE001 (the client may be gone already)
        pass
    ws.thread.join(timeout=WEBSOCKET_CLOSE_WAIT)
    if ws.thread.is_alive():
        try:
            ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return  # closed by the reader meanwhile: it has ended
        ws.thread.join(timeout=WEBSOCKET_CLOSE_WAIT)


def _stream(ws: simple_websocket.Server, sub: Any, initial: tuple[Any, ...]) -> None:
    """Send ``initial`` items, then forward the source's items until either side ends.

    Items are msgspec structs (a state revision ``{id, patch}``, a log line ``{cursor, ...}``).
    """
    import gevent

    def watch_client() -> None:
        # The client sends nothing we need; reading notices when it goes away.
        try:
            while ws.connected:
                ws.receive(timeout=None)
        except simple_websocket.ConnectionClosed:
            pass
        finally:
            sub.close()

    # Not an actor's greenlet: it belongs to this request, whose greenlet ends it in the finally
    # below (and waits until it is dead), so no watcher outlives its WebSocket.
    reader = gevent.spawn(watch_client)
    try:
        for item in initial:
            ws.send(_json.encode(item).decode())
        while True:
            item = sub.get()
            if item is None:
                if sub.closed == "overflow":
                    ws.close(reason=1013, message="subscriber fell behind; subscribe again")
                break
            ws.send(_json.encode(item).decode())
    except simple_websocket.ConnectionClosed:
        pass
    finally:
        reader.kill(block=True, timeout=5.0)

"""Setup, login and sessions, password changes, and the server's name and language."""

from __future__ import annotations

import base64
import importlib
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from startos.actors.facade import CallContext, FacadeActor, WithCookie
from startos.actors.patching import PatchError
from startos.actors.registry import rpc
from startos.identity import check_password, check_server_name, hostname_label, new_id
from startos.protocol.auth import (
    ChangePassword,
    ChangePasswordParams,
    HashPassword,
    IsSetUp,
    KillSessions,
    ListSessions,
    Login,
    LoginParams,
    Logout,
    NewSession,
    ResetPassword,
    ResetPasswordParams,
    SessionKillParams,
    SessionList,
    SetHostnameParams,
    SetLanguageParams,
    SetupCompleted,
    SetupExecuteParams,
    SetupResult,
    SetupStatus,
)
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.rpc import NoParams
from startos.protocol.store import DbApply, DbDump, DbPut
from startos.webui.info import info_html


@rpc("setup.status")
def _setup_status(facade: FacadeActor, _params: NoParams, _ctx: CallContext) -> SetupStatus:
    return SetupStatus(status="complete" if facade.ask("auth", IsSetUp()) else "needs-setup")


def _server_key() -> tuple[str, dict[str, str]]:
    """A new Ed25519 identity key: its PEM (kept in /private) and its public JWK."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    return pem, jwk


@rpc("setup.execute")
def _setup_execute(facade: FacadeActor, params: SetupExecuteParams, _ctx: CallContext) -> SetupResult:
    name = check_server_name(params.server_name)
    check_password(params.password)
    label = hostname_label(name)
    address = f"{label}.local"
    with facade.lock("setup"):
        if facade.ask("auth", IsSetUp()):
            raise RpcError(ErrorKind.INVALID_REQUEST, "setup is already complete: log in instead")
        password_hash = facade.ask("auth", HashPassword(password=params.password))
        ca = _if_present(facade, "certs", lambda: _certs().CreateAuthority(name=name))
        key_pem, jwk = _server_key()
        server_id = new_id(8)
        try:
            facade.ask(
                "store",
                DbApply(
                    patch=[
                        # Compare-and-set on /private (AuthActor writes the null at boot): setup
                        # happens once even if two wizards race, and no public field, whoever
                        # wrote it, can make it run again over an existing password (issue #10).
                        {"op": "test", "path": "/private/auth/passwordHash", "value": None},
                        {"op": "replace", "path": "/private/auth/passwordHash", "value": password_hash},
                        {"op": "add", "path": "/private/auth/sessions", "value": {}},
                        {"op": "add", "path": "/public/serverInfo/id", "value": server_id},
                        {"op": "replace", "path": "/public/serverInfo/name", "value": name},
                        {"op": "replace", "path": "/public/serverInfo/hostname", "value": label},
                        {"op": "replace", "path": "/public/serverInfo/pubkey", "value": jwk},
                        {"op": "add", "path": "/private/serverKey", "value": key_pem},
                    ]
                ),
            )
        except PatchError as exc:
            if _password_stored(facade):
                raise RpcError(ErrorKind.INVALID_REQUEST, "setup is already complete: log in instead") from None
            raise RpcError(exc.kind, f"setup could not be saved: {exc}") from None
        facade.directory.tell("auth", SetupCompleted())
        _if_present(facade, "certs", lambda: _certs().IssueServerCert(hostname=address))
        _if_present(facade, "mdns", lambda: _mdns().Advertise(hostname=label), tell=True)
    root_ca = getattr(ca, "pem", None)
    fingerprint = getattr(ca, "fingerprint", None)
    return SetupResult(
        server_id=server_id,
        name=name,
        hostname=label,
        mdns_address=address,
        root_ca=root_ca,
        ca_fingerprint=fingerprint,
        info_html=info_html(name=name, mdns_address=address, root_ca=root_ca, fingerprint=fingerprint),
    )


def _password_stored(facade: FacadeActor) -> bool:
    """Whether ``/private`` holds a password hash: the one source of "setup is done"."""
    auth = facade.ask("store", DbDump(pointer="/private")).value.get("auth")
    stored = auth.get("passwordHash") if isinstance(auth, dict) else None
    return isinstance(stored, str) and bool(stored)


@rpc("auth.login")
def _login(facade: FacadeActor, params: LoginParams, ctx: CallContext) -> WithCookie:
    # The caller's address keys the rate limit: a guesser locks out only itself.
    session: NewSession = facade.ask(
        "auth", Login(password=params.password, ephemeral=params.ephemeral, user_agent=ctx.user_agent, peer=ctx.peer)
    )
    return WithCookie(result=None, token=session.token, persistent=not params.ephemeral)


@rpc("auth.logout")
def _logout(facade: FacadeActor, _params: NoParams, ctx: CallContext) -> WithCookie:
    if ctx.session:
        facade.ask("auth", Logout(token=ctx.session))
    return WithCookie(result=None, clear=True)


@rpc("auth.session.list")
def _session_list(facade: FacadeActor, _params: NoParams, ctx: CallContext) -> SessionList:
    result: SessionList = facade.ask("auth", ListSessions(current_token=ctx.session))
    return result


@rpc("auth.session.kill")
def _session_kill(facade: FacadeActor, params: SessionKillParams, _ctx: CallContext) -> None:
    facade.ask("auth", KillSessions(ids=params.ids))


@rpc("auth.change-password")
def _change_password(facade: FacadeActor, params: ChangePasswordParams, ctx: CallContext) -> None:
    facade.ask(
        "auth",
        ChangePassword(
            old_password=params.old_password, new_password=params.new_password, keep_token=ctx.session, peer=ctx.peer
        ),
    )


@rpc("auth.reset-password")
def _reset_password(facade: FacadeActor, params: ResetPasswordParams, _ctx: CallContext) -> None:
    facade.ask("auth", ResetPassword(new_password=params.new_password))


@rpc("auth.get-pubkey")
def _get_pubkey(facade: FacadeActor, _params: NoParams, _ctx: CallContext) -> dict[str, str]:
    jwk: dict[str, str] = facade.ask("store", DbDump(pointer="/public/serverInfo/pubkey")).value
    return jwk


@rpc("server.set-language")
def _set_language(facade: FacadeActor, params: SetLanguageParams, _ctx: CallContext) -> int:
    return int(facade.ask("store", DbPut(pointer="/public/serverInfo/language", value=params.language)))


@rpc("server.set-hostname")
def _set_hostname(facade: FacadeActor, params: SetHostnameParams, _ctx: CallContext) -> int:
    name = check_server_name(params.name)
    label = hostname_label(name)
    revision = int(
        facade.ask(
            "store",
            DbApply(
                patch=[
                    {"op": "replace", "path": "/public/serverInfo/name", "value": name},
                    {"op": "replace", "path": "/public/serverInfo/hostname", "value": label},
                ]
            ),
        )
    )
    _if_present(facade, "certs", lambda: _certs().IssueServerCert(hostname=f"{label}.local"))
    _if_present(facade, "mdns", lambda: _mdns().Advertise(hostname=label), tell=True)
    from startos.protocol.actions import RefreshHosts

    for service in (n for n in facade.directory.names() if n.startswith("service:")):
        try:
            facade.directory.tell(service, RefreshHosts())  # their <hostname>.local addresses change
        except Exception:  # noqa: BLE001 (restarting: it lists its addresses anew when it starts)
            pass
    return revision


def _if_present(facade: FacadeActor, name: str, build: Callable[[], object], *, tell: bool = False) -> Any:
    """Message ``name`` if that actor is part of this tree (a tree may be built without it)."""
    if name not in facade.directory.names():
        return None
    if tell:
        facade.directory.tell(name, build())
        return None
    return facade.ask(name, build())


def _certs() -> Any:
    """The certificate messages (imported when a tree has that actor)."""
    return importlib.import_module("startos.protocol.certs")


def _mdns() -> Any:
    return importlib.import_module("startos.protocol.mdns")

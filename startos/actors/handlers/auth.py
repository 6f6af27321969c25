"""Setup, login and sessions, password changes, and the server's name and language.

Each handler checks its params and forwards one command to the actor that owns the answer:
the AuthActor owns the password, the sessions and the server's identity (``protocol.owners``);
the certificates and the mDNS name follow the server's name by their own actors' commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pykka import ActorDeadError

from startos.actors.facade import FacadeActor
from startos.actors.handlers.info_page import info_html
from startos.actors.registry import rpc
from startos.identity import check_password, check_server_name, hostname_label
from startos.protocol.auth import (
    ChangePassword,
    ChangePasswordParams,
    GetPubkey,
    IsSetUp,
    KillSessions,
    ListSessions,
    Login,
    LoginParams,
    Logout,
    NewSession,
    RenameServer,
    ResetPassword,
    ResetPasswordParams,
    ServerIdentity,
    SessionKillParams,
    SessionList,
    SetHostnameParams,
    SetLanguage,
    SetLanguageParams,
    SetupExecuteParams,
    SetupResult,
    SetUpServer,
    SetupStatus,
)
from startos.protocol.calls import CallContext, WithCookie
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.rpc import NoParams
from startos.supervision import ActorNotFound


@rpc("setup.status")
def _setup_status(facade: FacadeActor, _params: NoParams, _ctx: CallContext) -> SetupStatus:
    return SetupStatus(status="complete" if facade.ask("auth", IsSetUp()) else "needs-setup")


@rpc("setup.execute")
def _setup_execute(facade: FacadeActor, params: SetupExecuteParams, _ctx: CallContext) -> SetupResult:
    name = check_server_name(params.server_name)
    check_password(params.password)
    label = hostname_label(name)
    address = f"{label}.local"
    with facade.lock("setup"):  # one wizard at a time: the second learns setup is done
        if facade.ask("auth", IsSetUp()):
            raise RpcError(ErrorKind.INVALID_REQUEST, "setup is already complete: log in instead")
        # The CA first (kept if saving fails: the next try reuses it), then the AuthActor's
        # compare-and-set, which lets setup happen once whatever races it.
        ca = _if_present(facade, "certs", lambda: _certs().CreateAuthority(name=name))
        identity: ServerIdentity = facade.ask("auth", SetUpServer(name=name, hostname=label, password=params.password))
        _if_present(facade, "certs", lambda: _certs().IssueServerCert(hostname=address))
        _if_present(facade, "mdns", lambda: _mdns().Advertise(hostname=label), tell=True)
    root_ca = getattr(ca, "pem", None)
    fingerprint = getattr(ca, "fingerprint", None)
    return SetupResult(
        server_id=identity.server_id,
        name=name,
        hostname=label,
        mdns_address=address,
        root_ca=root_ca,
        ca_fingerprint=fingerprint,
        info_html=info_html(name=name, mdns_address=address, root_ca=root_ca, fingerprint=fingerprint),
    )


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
    jwk: dict[str, str] = facade.ask("auth", GetPubkey())
    return jwk


@rpc("server.set-language")
def _set_language(facade: FacadeActor, params: SetLanguageParams, _ctx: CallContext) -> int:
    return int(facade.ask("auth", SetLanguage(language=params.language)))


@rpc("server.set-hostname")
def _set_hostname(facade: FacadeActor, params: SetHostnameParams, _ctx: CallContext) -> int:
    name = check_server_name(params.name)
    label = hostname_label(name)
    revision = int(facade.ask("auth", RenameServer(name=name, hostname=label)))
    _if_present(facade, "certs", lambda: _certs().IssueServerCert(hostname=f"{label}.local"))
    _if_present(facade, "mdns", lambda: _mdns().Advertise(hostname=label), tell=True)
    from startos.protocol.actions import RefreshHosts

    for service in (n for n in facade.directory.names() if n.startswith("service:")):
        try:
            facade.directory.tell(service, RefreshHosts())  # their <hostname>.local addresses change
        except (ActorNotFound, ActorDeadError):
            pass  # restarting: it lists its addresses anew when it starts
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

"""What the transports ask the facade (``protocol.calls``), its claims, and the AuthActor's commands.

The web layer talks to the facade only: these are the questions it asks besides RPC. The
server's identity, name and language are the AuthActor's to write: a handler forwards one
command, and no one else may write those fields.
"""

from __future__ import annotations

from typing import Any

import gevent
import pytest

from startos.actors.patching import PatchError
from startos.errors import StartOSError
from startos.protocol.auth import GetPubkey, RenameServer, ServerIdentity, SetLanguage, SetUpServer
from startos.protocol.calls import (
    CallContext,
    CheckCaller,
    CheckSetUp,
    GetRootCa,
    GetServerHostname,
    GetWebCertificate,
    RpcCall,
    RpcReply,
    TakeClaim,
)
from startos.protocol.claims import AttachClaim, StreamClaim, UploadClaim, release
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.store import DbApply, DbDump
from tests.conftest import PASSWORD, TreeHarness

ROOT = CallContext(local_root=True)


def rpc(tree: TreeHarness, method: str, params: dict[str, Any] | None = None, ctx: CallContext = ROOT) -> RpcReply:
    reply: RpcReply = tree.ask("facade", RpcCall(method=method, params=params, context=ctx), timeout=30)
    return reply


def set_up(tree: TreeHarness) -> Any:
    return rpc(tree, "setup.execute", {"serverName": "My Cool Server", "password": PASSWORD}).result


# -- the web layer's questions ------------------------------------------------------------------


def test_before_setup_the_facade_says_so_and_has_no_ca_hostname_or_certificate(tree: TreeHarness) -> None:
    assert tree.ask("facade", CheckSetUp()) is False
    assert tree.ask("facade", GetRootCa()) is None
    assert tree.ask("facade", GetServerHostname()) is None
    assert tree.ask("facade", GetWebCertificate()) is None
    assert tree.ask("facade", CheckCaller(context=CallContext(session="not-a-token"))) is False
    assert tree.ask("facade", CheckCaller(context=CallContext())) is False
    assert tree.ask("facade", CheckCaller(context=ROOT)) is True


def test_after_setup_the_facade_answers_from_the_owners(tree: TreeHarness) -> None:
    result = set_up(tree)
    assert tree.ask("facade", CheckSetUp()) is True
    assert tree.ask("facade", GetServerHostname()) == "my-cool-server"
    assert tree.ask("facade", GetRootCa()) == result.root_ca
    assert tree.ask("facade", GetWebCertificate()).hostname == "my-cool-server.local"
    token = rpc(tree, "auth.login", {"password": PASSWORD}, CallContext()).set_session
    assert tree.ask("facade", CheckCaller(context=CallContext(session=token))) is True


# -- claims: a tagged union, each taken once ----------------------------------------------------


class FakeStream:
    closed: str | None = None

    def get(self, timeout: float | None = None) -> Any:
        return None

    def close(self) -> None:
        self.closed = "closed"


def test_a_subscription_is_claimed_once_as_a_stream(tree: TreeHarness) -> None:
    set_up(tree)
    guid = rpc(tree, "db.subscribe", {"pointer": "/public/ui"}).result.guid
    claim = tree.ask("facade", TakeClaim(guid=guid))
    try:
        assert isinstance(claim, StreamClaim) and claim.initial == ()
    finally:
        release(claim)
    assert claim.source.closed == "closed"
    with pytest.raises(RpcError) as caught:
        tree.ask("facade", TakeClaim(guid=guid))
    assert caught.value.kind == ErrorKind.NOT_FOUND


def test_a_sideload_ticket_is_an_upload_claim(tree: TreeHarness) -> None:
    set_up(tree)
    guid = rpc(tree, "package.sideload", {"acceptNewKey": True}).result.upload
    assert tree.ask("facade", TakeClaim(guid=guid)) == UploadClaim(accept_new_key=True)


def test_release_closes_what_a_claim_holds() -> None:
    stream = FakeStream()
    release(StreamClaim(source=stream))
    assert stream.closed == "closed"
    session = FakeStream()
    release(AttachClaim(session=session))  # type: ignore[arg-type]  # only close() is used
    assert session.closed == "closed"
    release(UploadClaim())  # holds nothing


# -- the AuthActor owns the server's identity, name and language --------------------------------


def test_setup_happens_once_even_when_the_auth_actor_is_asked_twice_at_once(tree: TreeHarness) -> None:
    asks = [
        gevent.spawn(tree.ask, "auth", SetUpServer(name=f"Box {i}", hostname=f"box-{i}", password=PASSWORD))
        for i in range(2)
    ]
    gevent.joinall(asks, timeout=30)
    won = [a.value for a in asks if a.successful()]
    lost = [a.exception for a in asks if not a.successful()]
    assert len(won) == 1 and isinstance(won[0], ServerIdentity)
    assert len(lost) == 1 and isinstance(lost[0], StartOSError) and lost[0].kind == ErrorKind.INVALID_REQUEST
    info = tree.ask("store", DbDump(pointer="/public/serverInfo")).value
    assert (info["id"], info["name"], info["hostname"]) == (won[0].server_id, won[0].name, won[0].hostname)
    assert tree.ask("auth", GetPubkey())["crv"] == "Ed25519"


def test_rename_and_language_are_written_by_the_auth_actor(tree: TreeHarness) -> None:
    set_up(tree)
    watch = tree.watch("/public/serverInfo")
    revision = tree.ask("auth", RenameServer(name="Kitchen", hostname="kitchen"))
    assert isinstance(revision, int)
    assert tree.ask("auth", SetLanguage(language="fr")) > revision
    value = watch.wait_for(lambda v: v.get("language") == "fr")
    assert (value["name"], value["hostname"]) == ("Kitchen", "kitchen")
    assert rpc(tree, "server.set-language", {"language": "de"}).revision is not None
    assert watch.wait_for(lambda v: v.get("language") == "de")


def test_only_the_auth_actor_writes_the_servers_name(tree: TreeHarness) -> None:
    set_up(tree)
    for owner in ("client", "services", "certs"):
        with pytest.raises(PatchError):
            tree.ask(
                "store",
                DbApply(patch=[{"op": "replace", "path": "/public/serverInfo/name", "value": "Pwned"}], owner=owner),
            )
    assert tree.ask("store", DbDump(pointer="/public/serverInfo/name")).value == "My Cool Server"


def test_the_info_page_escapes_what_it_shows() -> None:
    """The setup result's info page (built by the handlers now, not the web layer) escapes the name."""
    from startos.actors.handlers.info_page import info_html

    page = info_html(name="<b>x</b>", mdns_address="x.local", root_ca=None, fingerprint=None)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page

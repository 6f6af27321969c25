"""Setup, login, sessions, rate limit, CSRF and the LAN HTTP policy, over real HTTP."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.certs import GetTlsAddress
from startos.protocol.store import DbDump
from startos.webui.server import GetAddress

from .conftest import PASSWORD, TreeHarness, set_up_server
from .rpc_client import Http

# Answered without a session before setup; diagnostic.error answers null unless in diagnostic mode.
ANONYMOUS = {"echo", "state", "setup.status", "setup.execute", "diagnostic.error"}


def code_of(body: Any) -> int:
    return int(body["error"]["code"])


@pytest.fixture
def http(web_tree: TreeHarness) -> Iterator[Http]:
    client = Http(web_tree.url)  # type: ignore[attr-defined]
    yield client
    client.close()


def anonymous_calls(http: Http) -> list[tuple[str, Any]]:
    spec = http.call("state")["result"]
    calls = []
    for method in spec["methods"]:
        params = {p["name"]: _dummy(p["schema"]) for p in method["params"] if p["required"]}
        calls.append((method, params))
    return calls


def _dummy(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    return {"string": "x", "integer": 1, "boolean": False, "array": [], "object": {}}.get(kind, "x")


def test_before_setup_only_setup_echo_and_state_answer(http: Http) -> None:
    assert http.call("setup.status")["result"] == {"status": "needs-setup"}
    for method, params in anonymous_calls(http):
        body = http.call(method["name"], params)
        if method["name"] in ANONYMOUS:
            assert "result" in body or code_of(body) != 40, method["name"]
        else:
            assert code_of(body) in (40, 34), (method["name"], body)
    assert code_of(http.call("auth.login", {"password": PASSWORD})) == 40


def test_every_method_but_the_open_ones_refuses_an_anonymous_call(web_tree: TreeHarness, http: Http) -> None:
    set_up_server(Http(web_tree.url))  # type: ignore[attr-defined]
    open_methods = ANONYMOUS | {"auth.login"}
    checked = 0
    for method, params in anonymous_calls(http):
        if method["name"] in open_methods:
            assert method["x-authenticated"] is False
            continue
        assert method["x-authenticated"] is True, method["name"]
        body = http.call(method["name"], params)
        assert code_of(body) == 34, (method["name"], body)
        checked += 1
    assert checked >= 10


def test_setup_derives_the_hostname_and_refuses_a_second_run(web_tree: TreeHarness, http: Http) -> None:
    result = http.call("setup.execute", {"serverName": "My Cool Server", "password": PASSWORD})["result"]
    assert result["hostname"] == "my-cool-server" and result["mdnsAddress"] == "my-cool-server.local"
    assert "my-cool-server.local" in result["infoHtml"]
    if result["rootCa"]:
        assert "BEGIN CERTIFICATE" in result["rootCa"] and result["caFingerprint"] in result["infoHtml"]
    again = http.call("setup.execute", {"serverName": "Other", "password": PASSWORD})
    assert code_of(again) == 38 and "already complete" in again["error"]["data"]["details"]
    info = web_tree.ask("store", DbDump(pointer="/public/serverInfo")).value
    assert (info["name"], info["hostname"]) == ("My Cool Server", "my-cool-server")
    auth = web_tree.ask("store", DbDump(pointer="/private/auth")).value
    assert auth["passwordHash"].startswith("$argon2id$") and PASSWORD not in json.dumps(auth)


@pytest.mark.parametrize(
    ("name", "password", "fragment"),
    [
        ("Box", "", "empty"),
        ("Box", "short", "at least 12"),
        ("Box", "x" * 65, "at most 64"),
        ("", PASSWORD, "server name is empty"),
        ("   ", PASSWORD, "server name is empty"),
        ("x" * 65, PASSWORD, "too long"),
        ("!!!", PASSWORD, "letter or digit"),
    ],
)
def test_bad_setup_input_is_refused_and_changes_nothing(http: Http, name: str, password: str, fragment: str) -> None:
    body = http.call("setup.execute", {"serverName": name, "password": password})
    assert code_of(body) == 38 and fragment in body["error"]["data"]["details"]
    assert http.call("setup.status")["result"] == {"status": "needs-setup"}


def test_login_sets_a_strict_httponly_cookie_and_stores_only_its_hash(web_tree: TreeHarness, http: Http) -> None:
    http.call("setup.execute", {"serverName": "Box", "password": PASSWORD})
    _status, headers, body = http.post(
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "auth.login", "params": {"password": PASSWORD}})
    )
    assert body["result"] is None
    cookie = headers["set-cookie"]
    assert (
        cookie.startswith("session=")
        and "HttpOnly" in cookie
        and "SameSite=Strict" in cookie.replace("strict", "Strict")
    )
    assert "Secure" not in cookie  # plain HTTP on loopback
    token = http.cookies["session"]
    assert len(token) == 26 and token == token.lower()  # 16 bytes as base32, like StartOS
    stored = json.dumps(web_tree.ask("store", DbDump(pointer="/private/auth/sessions")).value)
    assert token not in stored
    sessions = http.call("auth.session.list")["result"]
    assert sessions["current"] in sessions["sessions"]


def test_wrong_password_then_rate_limit(web_tree: TreeHarness, http: Http) -> None:
    http.call("setup.execute", {"serverName": "Box", "password": PASSWORD})
    codes = [code_of(http.call("auth.login", {"password": "not the password"})) for _ in range(3)]
    assert codes == [7, 7, 7]
    limited = http.call("auth.login", {"password": PASSWORD})  # even the right one: too soon
    assert code_of(limited) == 37 and "wait 20 seconds" in limited["error"]["data"]["details"]
    assert "session" not in http.cookies


def test_forged_killed_and_logged_out_sessions_get_nothing(web_tree: TreeHarness, http: Http) -> None:
    set_up_server(http)
    other = Http(web_tree.url)  # type: ignore[attr-defined]
    other.call("auth.login", {"password": PASSWORD})
    assert "result" in other.call("db.dump")
    forged = Http(web_tree.url)  # type: ignore[attr-defined]
    forged.cookies["session"] = "a" * 26
    assert code_of(forged.call("db.dump")) == 34
    other_id = other.call("auth.session.list")["result"]["current"]
    http.call("auth.session.kill", {"ids": [other_id]})
    assert code_of(other.call("db.dump")) == 34  # a killed session is like an expired one
    unknown = http.call("auth.session.kill", {"ids": ["nope"]})
    assert code_of(unknown) == 6 and "nope" in unknown["error"]["data"]["details"]
    old_token = http.cookies["session"]
    http.call("auth.logout")
    assert "session" not in http.cookies
    http.cookies["session"] = old_token  # replaying the cookie after logout
    assert code_of(http.call("db.dump")) == 34
    for client in (other, forged):
        client.close()


def test_change_password_keeps_this_session_and_ends_the_others(web_tree: TreeHarness, http: Http) -> None:
    set_up_server(http)
    other = Http(web_tree.url)  # type: ignore[attr-defined]
    other.call("auth.login", {"password": PASSWORD})
    wrong = http.call("auth.change-password", {"oldPassword": "not it at all", "newPassword": "a new long password"})
    assert code_of(wrong) == 7
    weak = http.call("auth.change-password", {"oldPassword": PASSWORD, "newPassword": "short"})
    assert code_of(weak) == 38 and "at least 12" in weak["error"]["data"]["details"]
    ok = http.call("auth.change-password", {"oldPassword": PASSWORD, "newPassword": "a new long password"})
    assert "error" not in ok, ok
    assert "result" in http.call("db.dump") and code_of(other.call("db.dump")) == 34
    other.close()


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Content-Type": "text/plain"}, "Content-Type: application/json"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type: application/json"),
        ({"Origin": "http://evil.example"}, "cross-origin"),
        ({"Origin": "null"}, "opaque origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
    ],
)
def test_csrf_shaped_requests_are_refused(
    web_tree: TreeHarness, http: Http, headers: dict[str, str], fragment: str
) -> None:
    set_up_server(http)
    before = web_tree.ask("store", DbDump(pointer="/public")).value
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "db.put", "params": {"pointer": "/public/ui/pwned", "value": True}}
    )
    status, _, answer = http.post(body, headers=headers)
    assert status == 403 and code_of(answer) == 34 and fragment in answer["error"]["data"]["details"]
    assert web_tree.ask("store", DbDump(pointer="/public")).value == before
    same_origin = {"Origin": web_tree.url}  # type: ignore[attr-defined]
    assert http.post(body, headers=same_origin)[0] == 200


def lan_address() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


@pytest.fixture
def lan_tree(tmp_path: Path) -> Iterator[tuple[TreeHarness, str]]:
    """The server on all interfaces, reached through this machine's LAN address (not loopback)."""
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    config = TreeConfig(data_dir=tmp_path / "data", host="0.0.0.0", port=0, tls_port=0, mdns=False)
    harness = TreeHarness(start_tree(config))
    port = harness.ask("web", GetAddress()).port
    yield harness, f"http://{address}:{port}"
    harness.close()


def test_plain_http_from_the_lan_serves_only_the_wizard_then_redirects(lan_tree: tuple[TreeHarness, str]) -> None:
    harness, url = lan_tree
    lan = Http(url)
    status, _body = lan.get("/")
    assert status == 200  # the setup wizard, before setup
    set_up_server(Http(url.replace(url.split("//")[1].split(":")[0], "127.0.0.1")))
    status, _ = lan.get("/static/local-root-ca.crt")
    assert status in (200, 404)
    lan.conn.request("GET", "/some/page?x=1")
    response = lan.conn.getresponse()
    response.read()
    location = response.getheader("Location", "")
    tls_port = harness.ask("web-tls", GetTlsAddress()).port
    assert response.status == 301 and location.startswith("https://") and tls_port != 0
    assert location.endswith(f":{tls_port}/some/page?x=1")
    status, _, answer = lan.post(
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "auth.login", "params": {"password": PASSWORD}})
    )
    assert status == 403 and code_of(answer) == 34 and "https://" in answer["error"]["data"]["details"]
    lan.close()


def test_the_session_cookie_is_secure_over_https(tmp_path: Path) -> None:
    import http.client
    import ssl

    harness = TreeHarness(start_tree(TreeConfig(data_dir=tmp_path / "data", port=0, tls_port=0, mdns=False)))
    try:
        port = harness.ask("web", GetAddress()).port
        result = set_up_server(Http(f"http://127.0.0.1:{port}"))
        context = ssl.create_default_context(cadata=result["rootCa"])
        tls_port = harness.ask("web-tls", GetTlsAddress()).port
        conn = http.client.HTTPSConnection("localhost", tls_port, context=context, timeout=30)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "auth.login", "params": {"password": PASSWORD}})
        conn.request("POST", "/rpc/v1", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie", "")
        assert cookie.startswith("session=") and "Secure" in cookie and "HttpOnly" in cookie
        conn.close()
    finally:
        harness.close()

"""Hostile input at every boundary, sent the way an attacker would (issue #10).

"An actor must never die of bad input": every RPC method gets hostile params over HTTP, from an
anonymous caller and from a logged-in one, and the body itself gets hostile bytes. Every answer
must be HTTP 200 (204 for notifications) with a JSON-RPC response whose errors carry an integer
code and a one-line ``data.details`` without a traceback. After each call (or each method) every
actor of the tree still answers and is the very actor that started (nothing was restarted), the
server's identity is unchanged and the password still logs in.

Runtime frames and the JSON depth scanner get arbitrary bytes too: only their documented errors
may come out, never ``RecursionError``.

The classic cases always run (fixed lists); hypothesis then explores around them. Everything is
deterministic (``derandomize=True``) and bounded for CI.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
import websocket
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import startos.actors.facade  # noqa: F401 (loads every handler: METHODS is complete)
from startos.actors.tree import TreeConfig, start_tree
from startos.identity import check_server_name, hostname_label
from startos.protocol.auth import CheckSession, IsSetUp
from startos.protocol.calls import CallContext, RpcCall, RpcReply
from startos.protocol.errors import ErrorKind
from startos.protocol.limits import decode_json
from startos.protocol.rpc import METHODS, MethodSpec
from startos.protocol.store import DbDump
from startos.protocol.supervision import WhichChildren
from startos.supervision.actor import UnknownMessage
from startos.webui.server import GetAddress

from .conftest import PASSWORD, SERVER_NAME, TreeHarness, set_up_server
from .rpc_client import Http

REQUEST_TIMEOUT = 20.0  # seconds per HTTP request: a hang fails the test instead of stalling CI
MAX_BODY = 4 * 1024 * 1024  # startd's default body limit, which the tree here keeps
HUGE = MAX_BODY - 64 * 1024  # a string that still fits in a request body
DEPTHS = (65, 500, 900, 5000)  # past the limit, past msgspec's own recursion limit, far past
LOGIN_PEER = "192.0.2.1"  # TEST-NET-1: the test's own logins, kept apart from 127.0.0.1's rate limit
CALLERS = ("anonymous", "session")
SPECS: tuple[MethodSpec, ...] = tuple(sorted(METHODS.values(), key=lambda spec: spec.name))

# A valid call of these ends the caller's session: the test logs in again afterwards.
SESSION_ENDERS = frozenset({"auth.logout", "auth.session.kill", "auth.change-password", "auth.reset-password"})

JSONRPC_CODES = frozenset({-32700, -32600, -32601, -32602})
# -32603 (Internal error) is not here on purpose: it means a handler failed on input it should refuse.
ALLOWED_CODES = JSONRPC_CODES | {int(kind) for kind in ErrorKind if kind > 0}

HOSTILE = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI never flakes on a new one
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- JSON text, including what json.dumps cannot write -------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text sent as is: nesting deeper than Python's recursion limit, numbers past a double."""

    text: str
    label: str

    def __repr__(self) -> str:
        return f"Raw({self.label})"


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # no "params" member at all


def to_json(value: Any) -> str:
    """``value`` as JSON text; ``Raw`` parts verbatim, lone surrogates as ``\\ud800`` escapes."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    return json.dumps(value)


def deep_array(levels: int) -> Raw:
    return Raw("[" * levels + "1" + "]" * levels, f"array nested {levels} deep")


def deep_object(levels: int) -> Raw:
    return Raw('{"a":' * levels + "1" + "}" * levels, f"object nested {levels} deep")


def request_body(method: str, params: Any = ABSENT, request_id: Any = 1) -> bytes:
    members = ['"jsonrpc":"2.0"', f'"method":{json.dumps(method)}']
    if request_id is not ABSENT:
        members.append(f'"id":{to_json(request_id)}')
    if params is not ABSENT:
        members.append(f'"params":{to_json(params)}')
    return ("{" + ",".join(members) + "}").encode()


def shown(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


# -- the hostile values --------------------------------------------------------------------------

NON_STRINGS: list[tuple[str, Any]] = [
    ("null", None),
    ("true", True),
    ("0", 0),
    ("-0", Raw("-0", "-0")),
    ("-0.0", -0.0),
    ("1e308", 1e308),
    ("-1e308", -1e308),
    ("5e-324", 5e-324),
    ("1e400", Raw("1e400", "1e400 (past a double)")),
    ("-1", -1),
    ("2**63", 2**63),
    ("2**64", 2**64),
    ("-2**64", -(2**64)),
    ("5000 digits", Raw("9" * 5000, "an integer of 5000 digits")),
    ("[]", []),
    ("{}", {}),
    ("[null]", [None]),
    ("__proto__", {"__proto__": {"admin": True}, "constructor": {"prototype": {}}}),
    # Request object + params + this = 64 levels: the most a value may nest and still be read.
    ("array 62 deep", deep_array(62)),
    ("object 62 deep", deep_object(62)),
    ("array 63 deep", deep_array(63)),  # one level past the limit
    *[(f"array {n} deep", deep_array(n)) for n in DEPTHS],
    *[(f"object {n} deep", deep_object(n)) for n in DEPTHS],
]

NASTY_STRINGS: list[str] = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: not a Unicode character at all
    "\udfff\ud800x",
    "x" * 300,
    "..",
    "../../etc",
    "victim/../../etc",
    "a/b",
    "/",
    "victim\x00.s9pk",
    "\n",
    "a\nb\r\n\x1b[31mred",
    "\u202etxt.exe",
    "%s%n%x{0}",
    "service:victim",
    "\U0001f600" * 20,
]

POINTERS: list[str] = [
    "/public/packageData/~1tmp~1victim",
    "/public/packageData/..",
    "/private",
    "/private/auth/passwordHash",
    "/public/ui/../../private",
    "/public",
    "/public/ui",
    "/public/ui/~2",
    "/public/ui/~",
    "/public/ui/",
    "~1",
    "public/ui",
    "/public/serverInfo/name",
    "/public/ui" + "/a" * 200,
]


def path_values(scratch: Path) -> list[str]:
    """Server paths for ``package.install``: devices, FIFOs, loops, junk, names the OS refuses."""
    fifo = scratch / "fifo.s9pk"
    if not fifo.exists():
        os.mkfifo(fifo)
    junk = scratch / "junk.s9pk"
    junk.write_bytes(b"S9PK" + b"\x00" * 1024)
    loop = scratch / "loop.s9pk"
    if not loop.is_symlink():
        loop.symlink_to(loop)
    return [
        str(fifo),
        str(junk),
        str(loop),
        str(scratch),
        "/dev/zero",
        "/dev/urandom",
        "/proc/self/mem",
        "/etc/shadow",
        "../../etc/passwd",
        "/" + "a" * 5000,
        str(scratch / "missing" / "x.s9pk"),
    ]


PATCHES: list[tuple[str, Any]] = [
    ("copy public to ui", [{"op": "copy", "from": "/public/serverInfo", "path": "/public/ui/copied"}]),
    ("move serverInfo", [{"op": "move", "from": "/public/serverInfo", "path": "/public/ui/stolen"}]),
    ("remove serverInfo", [{"op": "remove", "path": "/public/serverInfo"}]),
    ("replace ui by a scalar", [{"op": "replace", "path": "/public/ui", "value": 1}]),
    ("test private", [{"op": "test", "path": "/private/auth/passwordHash", "value": None}]),
    ("unknown op", [{"op": "merge", "path": "/public/ui", "value": {}}]),
    ("op without path", [{"op": "add", "value": 1}]),
    ("deep value", [{"op": "add", "path": "/public/ui/deep", "value": deep_array(60)}]),
    ("too deep value", [{"op": "add", "path": "/public/ui/deep", "value": deep_array(500)}]),
    ("1000 ops", [{"op": "add", "path": f"/public/ui/k{i}", "value": i} for i in range(1000)]),
    ("traversal", [{"op": "add", "path": "/public/ui/../serverInfo/name", "value": "pwned"}]),
]

# Product bugs these cases ran into, each now a regression test at the end of this file:
# package.cancel-install checks the id; package.install answers an unreadable file such as
# /proc/self/mem with the one 'not a readable .s9pk file' answer; a refused install prints no
# traceback; a MessagePack string that is not UTF-8 is a FrameError (issue #10).

# Values of the required fields that make a call valid but harmless, so that the hostile value
# in one field is what the server has to deal with. The rest come from the field's type.
SAFE_VALUES: dict[tuple[str, str], Any] = {
    ("setup.execute", "serverName"): SERVER_NAME,
    ("setup.execute", "password"): "another password entirely",
    ("auth.login", "password"): "not the password",
    ("auth.change-password", "oldPassword"): "not the password",
    ("auth.change-password", "newPassword"): "a new password nobody chose",
    ("auth.reset-password", "newPassword"): "a new password nobody chose",
    ("server.set-hostname", "name"): SERVER_NAME,  # renaming to the same name changes nothing
    ("package.install", "path"): "/nonexistent/victim.s9pk",
    ("db.put", "pointer"): "/public/ui/hostile",
    ("db.put.ui", "pointer"): "/hostile",
    ("db.dump", "pointer"): "/public/serverInfo",
    ("db.subscribe", "pointer"): "/public/serverInfo",
}


def plausible(info: msgspec.inspect.Type) -> Any:
    """A valid value of a params field's type (ids match the id pattern, ints their bounds)."""
    mi = msgspec.inspect
    if isinstance(info, mi.StrType):
        return "victim"  # lowercase, 6 characters: fits every id pattern and length of the API
    if isinstance(info, mi.BoolType):
        return False
    if isinstance(info, mi.IntType):
        value = 1
        if info.ge is not None:
            value = max(value, info.ge)
        if info.gt is not None:
            value = max(value, info.gt + 1)
        return value
    if isinstance(info, mi.FloatType):
        return 1.0
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    if isinstance(info, mi.NoneType):
        return None
    if isinstance(info, mi.UnionType):
        return plausible(next(t for t in info.types if not isinstance(t, mi.NoneType)))
    if isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return []
    if isinstance(info, mi.DictType):
        return {}
    if isinstance(info, mi.StructType):
        return {f.encode_name: plausible(f.type) for f in info.fields if f.required}
    return "victim"


def field_names(spec: MethodSpec) -> list[str]:
    return [f.encode_name for f in msgspec.structs.fields(spec.params)]


def baseline(spec: MethodSpec) -> dict[str, Any]:
    """Valid, harmless params of ``spec``: its required fields only."""
    info = msgspec.inspect.type_info(spec.params)
    assert isinstance(info, msgspec.inspect.StructType)
    return {
        f.encode_name: SAFE_VALUES.get((spec.name, f.encode_name), plausible(f.type)) for f in info.fields if f.required
    }


@dataclass(frozen=True)
class Case:
    label: str
    params: Any


def classic_cases(spec: MethodSpec, caller: str, scratch: Path) -> list[Case]:
    """The fixed hostile params for ``spec``: whole params of every wrong shape, then each field.

    An anonymous caller of a method that needs a session is refused before its params are read
    ("an anonymous caller learns nothing"), so it gets the whole-params cases and a few per field.
    """
    base = baseline(spec)
    cases = [
        Case("no params", ABSENT),
        Case("params null", None),
        Case("params []", []),
        Case("params positional", list(base.values()) or [1, "x"]),
        Case("params a string", Raw('"params"', "string")),
        Case("params a number", Raw("42", "number")),
        Case("params true", Raw("true", "true")),
        Case("params {}", {}),
        Case("baseline", base),
        Case("unknown field", {**base, "unknownField": 1}),
        Case("unknown field, deep", {**base, "zz": deep_object(62)}),
        Case("python attributes", {**base, "__class__": "x", "__dict__": {}}),
        Case("params 63 deep", deep_array(63)),
        Case("params object 63 deep", deep_object(63)),
        *[Case(f"params {n} deep", deep_array(n)) for n in DEPTHS],
        *[Case(f"params object {n} deep", deep_object(n)) for n in DEPTHS],
    ]
    refused_unread = caller == "anonymous" and spec.auth
    for index, name in enumerate(field_names(spec)):
        values: list[tuple[str, Any]]
        if refused_unread:
            values = [("null", None), ("'\\x00'", "\x00"), ("array 63 deep", deep_array(63))]
        else:
            values = [*NON_STRINGS, *((shown(s), s) for s in NASTY_STRINGS)]
            values.append(("a list of nasty strings", NASTY_STRINGS))
            values.append(("a list of huge ints", [2**64, -1, Raw("9" * 400, "400 digits")]))
            if name in ("pointer", "from"):
                values += [(p, p) for p in POINTERS]
            if name == "path":
                values += [(p, p) for p in path_values(scratch)]
            if name == "patch":
                values += PATCHES
        if index == 0:
            values.append(("a string of 4 MiB", "h" * HUGE))
        cases += [Case(f"{name} = {label}", {**base, name: value}) for label, value in values]
    return cases


# -- the tree under attack -----------------------------------------------------------------------


class HostileHttp(Http):
    """``Http`` with a short timeout, a fresh connection per request, and the raw answer.

    A hostile request may make the server drop its connection; a fresh one keeps that from
    failing the next request. The timeout turns a hang into a failure naming the request.
    """

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        self.conn.close()
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)

    def send(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        self.conn.close()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request("POST", "/rpc/v1", body=body, headers=sent)
        response = self.conn.getresponse()
        raw = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                self._remember(value)
        self.conn.close()
        return response.status, raw


class _Probe(msgspec.Struct, frozen=True):
    """A message no actor handles: an actor that answers it (with ``UnknownMessage``) is alive."""


def check_response(item: Any, where: str) -> None:
    """``item`` is one JSON-RPC 2.0 response; an error has a known code and a one-line detail."""
    assert isinstance(item, dict), f"{where}: not a JSON-RPC response: {shown(item)}"
    assert item.get("jsonrpc") == "2.0", f"{where}: {shown(item)}"
    assert "id" in item, f"{where}: no id: {shown(item)}"
    assert ("result" in item) != ("error" in item), f"{where}: {shown(item)}"
    if "result" in item:
        return
    error = item["error"]
    assert isinstance(error, dict), f"{where}: {shown(item)}"
    code = error.get("code")
    assert type(code) is int, f"{where}: the code is not an integer: {shown(error)}"
    assert code in ALLOWED_CODES, f"{where}: unexpected error code {code}: {shown(error, 400)}"
    assert isinstance(error.get("message"), str), f"{where}: {shown(error)}"
    data = error.get("data")
    assert isinstance(data, dict) and isinstance(data.get("details"), str), f"{where}: no details: {shown(error)}"
    for text in (error["message"], data["details"], data.get("debug") or ""):
        assert "Traceback" not in text, f"{where}: a traceback in the error: {shown(error, 400)}"
        assert "\n" not in text and "\r" not in text, f"{where}: a multi-line error: {shown(error, 400)}"


def check_answer(status: int, raw: bytes, where: str, *, notification: bool = False) -> Any:
    """The HTTP answer to one body is a JSON-RPC response (or nothing, for notifications)."""
    assert status != 500, f"{where}: HTTP 500: {shown(raw)}"
    if notification:
        assert (status, raw) == (204, b""), f"{where}: a notification was answered: {status} {shown(raw)}"
        return None
    assert status == 200, f"{where}: HTTP {status}: {shown(raw)}"
    try:
        body = json.loads(raw)
    except ValueError:
        raise AssertionError(f"{where}: the answer is not JSON: {shown(raw)}") from None
    for item in body if isinstance(body, list) else [body]:
        check_response(item, where)
    return body


class Target:
    """A set-up tree with its web server, two callers, and what must not change under attack."""

    def __init__(self, harness: TreeHarness, url: str, scratch: Path) -> None:
        self.harness = harness
        self.url = url
        self.scratch = scratch
        self.clients = {"anonymous": HostileHttp(url), "session": HostileHttp(url)}
        self.last_call = ""
        set_up_server(self.clients["session"])
        self.refs = {name: harness.directory.get(name) for name in harness.directory.names()}
        for name in ("root", "store", "auth", "facade", "web"):
            assert self.refs.get(name) is not None, f"the tree has no live {name!r} actor"
        self.identity = self.server_info()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def send(self, caller: str, body: bytes, where: str, *, notification: bool = False) -> Any:
        started = time.monotonic()
        try:
            status, raw = self.clients[caller].send(body)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            elapsed = time.monotonic() - started
            raise AssertionError(f"{where}: no answer after {elapsed:.1f} s: {exc!r}") from exc
        return check_answer(status, raw, where, notification=notification)

    def call(self, caller: str, method: str, params: Any, label: str) -> Any:
        """Send one hostile call and check its answer; keeps the session caller logged in."""
        where = f"{method} as {caller} with {label}"
        self.last_call = where
        body = self.send(caller, request_body(method, params), where)
        spec = METHODS.get(method)
        if spec is not None and (spec.local_only or (spec.auth and caller == "anonymous")):
            # Access is checked first: a caller without it learns nothing, not even about its params.
            code = body.get("error", {}).get("code")
            assert code in (-32700, -32600, ErrorKind.AUTHORIZATION), f"{where}: not refused: {shown(body, 400)}"
        if method == "server.set-hostname" and "result" in body:
            self.identity = {**self.identity, **self.names_of(params)}
        if caller == "session":
            self.keep_session(method, where)
        return body

    @staticmethod
    def names_of(params: Any) -> dict[str, str]:
        """The name and hostname a successful ``server.set-hostname`` must have stored."""
        name = check_server_name(params["name"])
        return {"name": name, "hostname": hostname_label(name)}

    def keep_session(self, method: str, where: str) -> None:
        token = self.clients["session"].cookies.get("session")
        alive = token is not None and self.harness.ask("auth", CheckSession(token=token)) is not None
        if alive:
            return
        assert method in SESSION_ENDERS, f"{where}: the caller's session ended"
        self.clients["session"].cookies["session"] = self.login()

    def login(self) -> str:
        """Log in with the password through the facade, from an address of its own.

        Hostile ``auth.login`` calls from 127.0.0.1 lock that address out for a while (as they
        should); the facade, asked directly, checks the very same password and rate limit.
        """
        call = RpcCall(method="auth.login", params={"password": PASSWORD}, context=CallContext(peer=LOGIN_PEER))
        reply = self.harness.ask("facade", call, timeout=30)
        assert isinstance(reply, RpcReply) and reply.set_session, f"the password no longer logs in: {reply!r}"
        return reply.set_session

    def server_info(self) -> dict[str, Any]:
        """What setup made of the server, read over HTTP: id, name, hostname, public key."""
        where = f"db.dump /public after {self.last_call}"
        body = self.send("session", request_body("db.dump", {"pointer": "/public"}), where)
        assert "result" in body, f"{where}: {shown(body)}"
        info = body["result"]["value"]["serverInfo"]
        return {key: info.get(key) for key in ("id", "name", "hostname", "pubkey")}

    def check_alive(self) -> None:
        """Every actor still answers and is the one that started; the server is still itself."""
        after = self.last_call or "setup"
        harness = self.harness
        assert harness.tree.root.is_alive(), f"the tree's root died after {after}"
        assert harness.directory.names() == sorted(self.refs), f"actors came or went after {after}"
        for name, ref in self.refs.items():
            assert harness.directory.get(name) is ref, f"{name} died or was restarted after {after}"
            try:
                harness.ask(name, _Probe(), timeout=10)
            except UnknownMessage:
                pass  # it read its mailbox and answered: alive
        assert "serverInfo" in harness.ask("store", DbDump(pointer="/public")).value
        assert harness.ask("auth", IsSetUp()) is True, f"the server forgot it was set up after {after}"
        echo = harness.ask("facade", RpcCall(method="echo", params={"message": "alive"}))
        assert echo.result == "alive"
        assert harness.ask("root", WhichChildren())
        assert self.server_info() == self.identity, f"the server's identity changed after {after}"

    def reset_ui(self) -> None:
        """Drop what the calls wrote under /public/ui, so later dumps stay small."""
        body = self.send("session", request_body("db.put.ui", {"pointer": "", "value": {}}), "resetting /public/ui")
        assert "result" in body, shown(body)


@pytest.fixture
def target(data_dir: Path, tmp_path: Path) -> Iterator[Target]:
    """A tree with its web server on a free port and startd's 4 MiB body limit, set up, logged in."""
    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=0, mdns=False)))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    try:
        url = f"http://127.0.0.1:{harness.ask('web', GetAddress()).port}"
        attacked = Target(harness, url, scratch)
        try:
            yield attacked
            attacked.check_alive()
            attacked.login()  # the password still logs in
        finally:
            attacked.close()
    finally:
        harness.close()


# -- RPC params ----------------------------------------------------------------------------------


def test_every_method_answers_the_classic_hostile_params(target: Target) -> None:
    for spec in SPECS:
        for caller in CALLERS:
            for case in classic_cases(spec, caller, target.scratch):
                target.call(caller, spec.name, case.params, case.label)
        target.check_alive()
        target.reset_ui()


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(POINTERS),
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
hostile_values = st.one_of(json_values, st.sampled_from([value for _label, value in NON_STRINGS]))


@dataclass(frozen=True)
class HostileCall:
    method: str
    caller: str
    params: Any


@st.composite
def hostile_calls(draw: st.DrawFn) -> HostileCall:
    spec = draw(st.sampled_from(SPECS))
    caller = draw(st.sampled_from(CALLERS))
    base = baseline(spec)
    names = field_names(spec)
    shape = draw(st.sampled_from(["whole", "fields", "fields", "extra"]))
    params: Any
    if shape == "whole" or not names:
        params = draw(st.one_of(st.just(ABSENT), hostile_values))
    elif shape == "fields":
        # Each field keeps its harmless value or gets a hostile one; required ones may go missing.
        params = dict(base)
        for name in names:
            choice = draw(st.sampled_from(["keep", "hostile", "hostile", "drop"]))
            if choice == "hostile":
                params[name] = draw(hostile_values)
            elif choice == "drop":
                params.pop(name, None)
    else:
        params = {**base, draw(st.text(max_size=12)): draw(hostile_values)}
    return HostileCall(spec.name, caller, params)


@settings(HOSTILE, max_examples=600)
@given(call=hostile_calls())
@example(call=HostileCall("db.put.ui", "session", {"pointer": "/x", "value": deep_object(62)}))
@example(call=HostileCall("auth.session.kill", "session", {"ids": ["\ud800", "x" * 300]}))
@example(call=HostileCall("package.install", "session", {"path": "/dev/zero"}))
def test_hostile_params_never_kill_an_actor(target: Target, call: HostileCall) -> None:
    target.call(call.caller, call.method, call.params, f"params {shown(call.params)}")
    target.check_alive()


# -- raw bodies and batches ----------------------------------------------------------------------

VALID = request_body("echo", {"message": "x"})

RAW_BODIES: list[tuple[str, bytes, frozenset[int] | None]] = [
    # (label, body, the error codes it may get; None: any answer that is a proper response)
    ("an empty body", b"", frozenset({-32700})),
    ("whitespace", b" \n\t ", frozenset({-32700})),
    ("invalid UTF-8", b"\xff\xfe\xfd", frozenset({-32700})),
    ("invalid UTF-8 in a string", VALID.replace(b'"x"', b'"\xc3\x28"'), frozenset({-32700})),
    ("overlong NUL", VALID.replace(b'"x"', b'"\xc0\x80"'), frozenset({-32700})),
    ("an encoded surrogate", VALID.replace(b'"x"', b'"\xed\xa0\x80"'), frozenset({-32700})),
    ("a lone surrogate escape", VALID.replace(b'"x"', b'"\\ud800"'), None),
    ("a byte-order mark", b"\xef\xbb\xbf" + VALID, None),
    ("truncated", VALID[:-2], frozenset({-32700})),
    ("truncated in a string", VALID[:40], frozenset({-32700})),
    ("trailing garbage", VALID + b"xyz", frozenset({-32700})),
    ("two documents", VALID + VALID, frozenset({-32700})),
    ("NaN", VALID.replace(b'"x"', b"NaN"), frozenset({-32700})),
    ("Infinity", VALID.replace(b'"x"', b"-Infinity"), frozenset({-32700})),
    ("a comment", VALID.replace(b"{", b"{/* hi */", 1), frozenset({-32700})),
    ("arrays nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, frozenset({-32600})),
    ("objects nested 100,000 deep", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, frozenset({-32600})),
    ("100,000 openers", b"[" * 100_000, frozenset({-32600, -32700})),
    ("100,000 closers", b"]" * 100_000, frozenset({-32700})),
    ("params nested 100,000 deep", request_body("echo", deep_array(100_000)), frozenset({-32600})),
    ("an empty batch", b"[]", frozenset({-32600})),
    ("null", b"null", frozenset({-32600})),
    ("a number", b"1", frozenset({-32600})),
    ("a string", b'"echo"', frozenset({-32600})),
    ("a batch of junk", b'[1, "x", null, {}, [], true]', frozenset({-32600})),
    ('"jsonrpc": "1.0"', VALID.replace(b'"2.0"', b'"1.0"'), frozenset({-32600})),
    ('"jsonrpc": 2', VALID.replace(b'"2.0"', b"2"), frozenset({-32600})),
    ("no method", b'{"jsonrpc":"2.0","id":1}', frozenset({-32600})),
    ("a method that is a number", b'{"jsonrpc":"2.0","id":1,"method":7}', frozenset({-32600})),
    ("a method with NUL", request_body("echo\x00"), frozenset({-32601})),
    ("a method of 1 MiB", request_body("m" * 2**20), frozenset({-32601})),
    ("a method with a lone surrogate", request_body("\ud800"), None),
    ("an unknown member", VALID[:-1] + b',"extra":1}', frozenset({-32600})),
    ("duplicate members", VALID[:-1] + b',"method":"state"}', None),
    ("an id that is an object", request_body("echo", {"message": "x"}, {"a": 1}), frozenset({-32600})),
    ("an id that is a float", request_body("echo", {"message": "x"}, 1.5), frozenset({-32600})),
    ("an id of 2**64", request_body("echo", {"message": "x"}, 2**64), None),
    ("an id of 5000 digits", request_body("echo", {"message": "x"}, Raw("9" * 5000, "5000 digits")), None),
    ("an id of -0", request_body("echo", {"message": "x"}, Raw("-0", "-0")), None),
    ("an id of 1 MiB", request_body("echo", {"message": "x"}, "i" * 2**20), None),
    ("an id with NUL", request_body("echo", {"message": "x"}, "\x00"), None),
    (
        "a body over the limit",
        b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"message":"' + b"x" * MAX_BODY + b'"}}',
        frozenset({-32600}),
    ),
]


def test_hostile_bodies_are_answered_as_json_rpc(target: Target) -> None:
    for label, body, codes in RAW_BODIES:
        for caller in CALLERS:
            answer = target.send(caller, body, f"a body with {label} from {caller}")
            if codes is not None:
                items = answer if isinstance(answer, list) else [answer]
                got = {item["error"]["code"] for item in items if "error" in item}
                assert got and got <= codes, f"{label} from {caller}: codes {got}, expected {set(codes)}"
        target.check_alive()


def test_hostile_notifications_get_no_answer(target: Target) -> None:
    for method in ("echo", "no.such.method", "db.put.ui", "auth.logout", "package.install"):
        for params in (ABSENT, None, {"message": deep_object(62)}, [1], {"path": "/dev/zero"}):
            for caller in ("anonymous",):  # a notification of auth.logout would end the session
                body = request_body(method, params, request_id=ABSENT)
                target.send(caller, body, f"a notification of {method} with {shown(params)}", notification=True)
    target.send(
        "session",
        b"[" + b",".join([request_body("echo", {"message": "n"}, ABSENT)] * 1000) + b"]",
        "a batch of 1000 notifications",
        notification=True,
    )
    target.check_alive()


def test_hostile_batches_are_bounded(target: Target) -> None:
    state = request_body("state")
    answer = target.send("anonymous", b"[" + b",".join([state] * 21) + b"]", "21 anonymous calls")
    assert answer["error"]["code"] == -32600, shown(answer)
    answer = target.send("anonymous", b"[" + b",".join([VALID] * 20) + b"]", "20 anonymous calls")
    assert [item.get("result") for item in answer] == ["x"] * 20
    answer = target.send("session", b"[" + b",".join([VALID] * 1001) + b"]", "1001 calls")
    assert answer["error"]["code"] == -32600, shown(answer)
    answer = target.send(
        "session",
        b"[" + b",".join([VALID, request_body("echo", deep_array(63))]) + b"]",
        "a batch with one call too deep",
    )
    assert answer["error"]["code"] == -32600, shown(answer)
    # Responses are capped: 100 dumps of a 4 MiB state would be 400 MiB.
    target.send("session", request_body("db.put.ui", {"pointer": "/big", "value": "b" * HUGE}), "a 4 MiB value")
    answer = target.send("session", b"[" + b",".join([request_body("db.dump")] * 100) + b"]", "100 dumps of 4 MiB")
    assert len(answer) == 100
    not_run = [item for item in answer if item.get("error", {}).get("code") == -32600]
    assert 50 < len(not_run) < 100, f"the response cap did not apply ({len(not_run)} calls not run)"
    target.reset_ui()
    target.check_alive()


def parses(body: bytes) -> bool:
    """Whether the body is read at all (one call too deep, or a bad number, refuses a whole batch)."""
    try:
        decode_json(body)
    except msgspec.DecodeError:
        return False
    return True


def test_a_batch_of_hostile_calls_to_every_method(target: Target) -> None:
    """1000 calls in one body, each with its own id; each gets its own answer."""
    calls: list[tuple[str, Any]] = []
    for spec in SPECS:
        if spec.name in SESSION_ENDERS:
            continue  # the rest of the batch would run without a session
        calls += [
            (spec.name, case.params)
            for case in classic_cases(spec, "session", target.scratch)
            if "4 MiB" not in case.label and parses(b"[" + request_body(spec.name, case.params) + b"]")
        ]
    step = max(1, len(calls) // 1000)
    chosen = calls[::step][:1000]
    body = b"[" + b",".join(request_body(m, p, i) for i, (m, p) in enumerate(chosen)) + b"]"
    answer = target.send("session", body, "a batch of 1000 hostile calls")
    assert sorted(item["id"] for item in answer) == list(range(len(chosen)))
    target.check_alive()


WS_MESSAGES: list[tuple[str, str | bytes]] = [
    ("arrays nested 100,000 deep", "[" * 100_000 + "]" * 100_000),
    ("1 MiB of text", "x" * 2**20),
    ("binary that is not UTF-8", b"\xff\xfe\xfd" * 1000),
    ("a call", request_body("db.put.ui", {"pointer": "/ws", "value": 1}).decode()),
    ("a lone surrogate escape", '"\\ud800"'),
]


def test_hostile_websocket_messages(target: Target) -> None:
    """The live patch socket reads nothing it needs; whatever a client sends there, actors live on."""
    base = target.url.replace("http://", "ws://")
    for label, message in WS_MESSAGES:
        answer = target.call("session", "db.subscribe", {"pointer": "/public/ui"}, f"subscribing for {label}")
        ws = websocket.create_connection(f"{base}/ws/rpc/{answer['result']['guid']}", timeout=REQUEST_TIMEOUT)
        try:
            if isinstance(message, bytes):
                ws.send_binary(message)
            else:
                ws.send(message)
            target.call("session", "db.put.ui", {"pointer": "/after", "value": label}, f"a write after {label}")
            ws.recv()  # the patch of that write, or the server's close
        except (websocket.WebSocketException, OSError):
            pass  # the server may close a socket that sent it junk
        finally:
            ws.close()
        target.check_alive()
    # The socket still streams for a well-behaved client.
    answer = target.call("session", "db.subscribe", {"pointer": "/public/ui"}, "a last subscription")
    ws = websocket.create_connection(f"{base}/ws/rpc/{answer['result']['guid']}", timeout=REQUEST_TIMEOUT)
    try:
        target.call("session", "db.put.ui", {"pointer": "/last", "value": 1}, "a last write")
        assert json.loads(ws.recv())["patch"] == [{"op": "add", "path": "/last", "value": 1}]
    finally:
        ws.close()


def test_hostile_guids_in_paths(target: Target) -> None:
    client = target.clients["session"]
    for guid in ["..%2f..%2fetc%2fpasswd", "%00", "x" * 300, "%ED%A0%80", "%FF", "a%0Ab", "state"]:
        for method, path in [("GET", f"/ws/rpc/{guid}"), ("PUT", f"/rest/upload/{guid}")]:
            client.conn.close()
            client.conn.request(method, path, body=b"" if method == "PUT" else None)
            response = client.conn.getresponse()
            raw = response.read()
            assert response.status in (400, 404), f"{method} {path}: HTTP {response.status}: {shown(raw)}"
    target.check_alive()


_request_mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate"]),
        st.integers(min_value=0, max_value=len(VALID) - 1),
        st.binary(min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    out = bytearray(data)
    for op, at, payload in ops:
        at = min(at, len(out))
        if op == "flip" and at < len(out):
            out[at] ^= payload[0] or 0xFF
        elif op == "insert":
            out[at:at] = payload
        elif op == "delete":
            del out[at : at + len(payload)]
        else:
            del out[at:]
    return bytes(out)


@HOSTILE
@given(body=st.one_of(st.binary(max_size=200), _request_mutations.map(lambda ops: mutate(VALID, ops))))
@example(body=b"[" * 100_000)
@example(body=b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"message":"\\ud800"}}')
def test_mutated_bodies_are_answered_as_json_rpc(target: Target, body: bytes) -> None:
    status, raw = target.clients["anonymous"].send(body)
    if status == 204:
        assert raw == b"", shown(raw)  # the mutation made it a notification
    else:
        check_answer(status, raw, f"the body {shown(body)}")
    target.check_alive()


# -- product bugs: regressions, and strict xfails for the open ones (they fail once fixed) --------


def test_cancel_install_error_is_one_line(target: Target) -> None:
    target.call("session", "package.cancel-install", {"id": "a\nb"}, "an id with a newline")


def test_install_of_an_unreadable_file_gets_the_one_answer(target: Target) -> None:
    answer = target.call("session", "package.install", {"path": "/proc/self/mem"}, "path /proc/self/mem")
    assert answer["error"]["code"] == ErrorKind.INSTALL_FAILED


def test_a_refused_install_prints_no_traceback(target: Target, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    answer = target.call("session", "package.install", {"path": "/nonexistent/victim.s9pk"}, "a missing file")
    assert answer["error"]["code"] == ErrorKind.INSTALL_FAILED
    assert "Traceback" not in capfd.readouterr().err

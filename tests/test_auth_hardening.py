"""Issue #10, authentication holes: setup known from /private only, a per-address login rate
limit with a global backstop, and sessions that expire on the server.

Lifetimes are tested with small values and a clock the test moves; nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import argon2
import gevent
import pytest
from pykka import ActorRef

from startos.actors.auth import AuthActor, AuthError, LoginLimiter, client_key
from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.auth import (
    ChangePassword,
    CheckSession,
    ListSessions,
    Login,
    NewSession,
    SweepSessions,
)
from startos.protocol.calls import CallContext, RpcCall, RpcReply
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.store import DbDump, DbPut
from startos.webui.server import GetAddress

from .conftest import PASSWORD, TreeHarness, set_up_server, wait_until
from .rpc_client import Http
from .test_cli import make_runner

WRONG = "not the password at all"

StartAuth = Callable[..., ActorRef[Any]]
Sessions = tuple[TreeHarness, StartAuth, "FakeClock"]


def code_of(body: Any) -> int:
    return int(body["error"]["code"])


class FakeClock:
    """A clock the test moves by hand; starts on a whole second so ISO times compare exactly."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(datetime.now(UTC).timestamp())) if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- 1. whether setup is done comes from /private ----------------------------------------------


def test_a_tampered_public_id_does_not_reopen_setup_after_a_restart(tmp_path: Path) -> None:
    """The reported attack: null /public/serverInfo/id, restart, anonymous setup.execute."""
    config = TreeConfig(data_dir=tmp_path / "data", port=0, mdns=False)
    harness = TreeHarness(start_tree(config))
    try:
        owner = Http(f"http://127.0.0.1:{harness.ask('web', GetAddress()).port}")
        set_up_server(owner)
        owner.close()
        stored_hash = harness.ask("store", DbDump(pointer="/private/auth/passwordHash")).value
        # A buggy internal writer (clients can no longer write there) blanks the public field.
        harness.ask("store", DbPut(pointer="/public/serverInfo/id", value=None, owner="auth"))
    finally:
        harness.close()

    harness = TreeHarness(start_tree(config))
    try:
        anonymous = Http(f"http://127.0.0.1:{harness.ask('web', GetAddress()).port}")
        assert anonymous.call("setup.status")["result"] == {"status": "complete"}
        taken = anonymous.call("setup.execute", {"serverName": "Pwned", "password": "the attacker's password"})
        assert code_of(taken) == ErrorKind.INVALID_REQUEST and "already complete" in taken["error"]["data"]["details"]
        assert harness.ask("store", DbDump(pointer="/private/auth/passwordHash")).value == stored_hash
        assert code_of(anonymous.call("auth.login", {"password": "the attacker's password"})) == 7
        assert "error" not in anonymous.call("auth.login", {"password": PASSWORD})
        assert "result" in anonymous.call("db.dump")
        anonymous.close()
    finally:
        harness.close()


def rpc(tree: TreeHarness, method: str, params: Any = None, **context: Any) -> RpcReply:
    reply: RpcReply = tree.ask("facade", RpcCall(method=method, params=params, context=CallContext(**context)))
    return reply


def rpc_error(tree: TreeHarness, method: str, params: Any = None, **context: Any) -> RpcError:
    with pytest.raises(RpcError) as caught:
        rpc(tree, method, params, **context)
    return caught.value


def test_setup_refuses_whenever_a_password_hash_exists_even_if_nothing_public_says_so(tree: TreeHarness) -> None:
    # The hash appears behind the auth actor's back: only the patch's test on /private stops setup.
    existing = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    tree.ask("store", DbPut(pointer="/private/auth/passwordHash", value=existing, owner="auth"))
    error = rpc_error(tree, "setup.execute", {"serverName": "Pwned", "password": "the attacker's password"})
    assert error.kind == ErrorKind.INVALID_REQUEST and "already complete" in error.message
    assert tree.ask("store", DbDump(pointer="/private/auth/passwordHash")).value == existing
    assert tree.ask("store", DbDump(pointer="/public/serverInfo/id")).value is None


def test_two_racing_setups_set_one_password(tree: TreeHarness) -> None:
    passwords = ["first wizard's password", "second wizard's password"]
    calls = [
        gevent.spawn(rpc, tree, "setup.execute", {"serverName": f"Box {i}", "password": p})
        for i, p in enumerate(passwords)
    ]
    gevent.joinall(calls, timeout=30)
    won = [p for call, p in zip(calls, passwords, strict=True) if call.successful()]
    lost = [call.exception for call in calls if not call.successful()]
    assert len(won) == 1 and len(lost) == 1
    assert isinstance(lost[0], RpcError) and "already complete" in lost[0].message
    assert rpc(tree, "auth.login", {"password": won[0]}).set_session


# -- 2. the login rate limit is per address, with a global backstop -----------------------------


@pytest.fixture
def ready(tree: TreeHarness) -> TreeHarness:
    """A set-up tree (no web server): calls go to the facade with a chosen peer address."""
    rpc(tree, "setup.execute", {"serverName": "Box", "password": PASSWORD})
    return tree


def test_an_address_locked_out_does_not_lock_out_another(ready: TreeHarness) -> None:
    attacker, owner = "203.0.113.66", "192.0.2.10"
    for _ in range(3):
        assert rpc_error(ready, "auth.login", {"password": WRONG}, peer=attacker).kind == ErrorKind.INCORRECT_PASSWORD
    locked = rpc_error(ready, "auth.login", {"password": PASSWORD}, peer=attacker)
    assert locked.kind == ErrorKind.RATE_LIMITED and "wait 20 seconds" in locked.message
    assert rpc(ready, "auth.login", {"password": PASSWORD}, peer=owner).set_session
    # The attacker's hammering keeps only its own lock on.
    assert rpc_error(ready, "auth.login", {"password": PASSWORD}, peer=attacker).kind == ErrorKind.RATE_LIMITED
    assert rpc(ready, "auth.login", {"password": PASSWORD}, peer=owner).set_session


def test_change_password_attempts_count_per_address_too(ready: TreeHarness) -> None:
    attacker, owner = "203.0.113.66", "192.0.2.10"
    token = rpc(ready, "auth.login", {"password": PASSWORD}, peer=attacker).set_session
    params = {"oldPassword": WRONG, "newPassword": "a brand new long password"}
    for _ in range(3):
        error = rpc_error(ready, "auth.change-password", params, peer=attacker, session=token)
        assert error.kind == ErrorKind.INCORRECT_PASSWORD
    good = {"oldPassword": PASSWORD, "newPassword": "a brand new long password"}
    assert rpc_error(ready, "auth.change-password", good, peer=attacker, session=token).kind == ErrorKind.RATE_LIMITED
    assert rpc_error(ready, "auth.login", {"password": PASSWORD}, peer=attacker).kind == ErrorKind.RATE_LIMITED
    assert rpc(ready, "auth.login", {"password": PASSWORD}, peer=owner).set_session


def test_the_global_backstop_slows_a_guesser_with_many_addresses(sessions: Sessions) -> None:
    harness, start, _clock = sessions
    window = FakeClock(1000.0)
    start(limiter=LoginLimiter(global_cap=5, clock=window))
    for i in range(5):  # one guess from each of five addresses: no address reaches its own limit
        with pytest.raises(AuthError) as wrong:
            harness.ask("auth", Login(password=WRONG, peer=f"198.51.100.{i}"))
        assert wrong.value.kind == ErrorKind.INCORRECT_PASSWORD
    with pytest.raises(AuthError) as capped:
        harness.ask("auth", Login(password=PASSWORD, peer="192.0.2.10"))
    assert capped.value.kind == ErrorKind.RATE_LIMITED
    assert "too many login attempts on this server right now: wait 20 seconds" in str(capped.value)
    window.advance(20.0)  # the window slides past the guesses
    assert isinstance(harness.ask("auth", Login(password=PASSWORD, peer="192.0.2.10")), NewSession)


def test_global_backstop_rules() -> None:
    clock = FakeClock(1000.0)
    limiter = LoginLimiter(global_cap=3, clock=clock)
    admitted = [limiter.admit(f"198.51.100.{i}") for i in range(3)]
    for _ in range(5):
        with pytest.raises(AuthError) as capped:
            limiter.admit("192.0.2.10")
        assert capped.value.kind == ErrorKind.RATE_LIMITED
    assert len(limiter) == 3  # attempts the cap refused checked nothing: they do not count per address
    limiter.succeeded(*admitted[0])  # a right password gives its slot back at once
    limiter.admit("192.0.2.10")
    with pytest.raises(AuthError):
        limiter.admit("192.0.2.11")
    clock.advance(20.0)  # a sliding window: the old checks leave it
    for i in range(3):
        limiter.admit(f"192.0.2.{20 + i}")


def test_the_address_table_stays_bounded() -> None:
    clock = FakeClock(1000.0)
    limiter = LoginLimiter(global_cap=10**9, max_addresses=100, clock=clock)
    for i in range(5000):  # spoofed addresses, all within one window
        limiter.admit(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(limiter) == 100
    clock.advance(20.1)
    limiter.admit("192.0.2.10")
    assert len(limiter) == 1  # idle addresses are forgotten
    # With the real global cap, a flood refused globally leaves no entries behind either.
    default = LoginLimiter(clock=clock)
    refused = 0
    for i in range(1000):
        try:
            default.admit(f"10.0.{i // 256}.{i % 256}")
        except AuthError:
            refused += 1
    assert refused == 1000 - 30 and len(default) == 30


def test_ipv6_clients_count_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("") == ""
    limiter = LoginLimiter(clock=FakeClock(1000.0))
    for host in range(3):
        limiter.admit(f"2001:db8:1:2::{host + 1}")
    with pytest.raises(AuthError):
        limiter.admit("2001:db8:1:2::99")
    limiter.admit("2001:db8:1:3::1")


# -- 3. sessions expire on the server ---------------------------------------------------------

IDLE, ABSOLUTE, EPHEMERAL_IDLE = 1000.0, 5000.0, 300.0


@pytest.fixture
def store_tree(data_dir: Path) -> Iterator[TreeHarness]:
    """Only the store: the test starts its own AuthActor with small lifetimes and its clock."""
    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=None, mdns=False, only=frozenset({"store"}))))
    yield harness
    harness.close()


@pytest.fixture
def sessions(store_tree: TreeHarness) -> Iterator[Sessions]:
    """A store with a password set, and ``start(**options)``: (re)start "auth" on a shared fake clock."""
    cheap = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    store_tree.ask(
        "store",
        DbPut(pointer="/private/auth", value={"passwordHash": cheap.hash(PASSWORD), "sessions": {}}, owner="auth"),
    )
    clock = FakeClock()
    started: list[ActorRef[Any]] = []

    def start(**options: Any) -> ActorRef[Any]:
        for ref in started:
            if ref.is_alive():
                ref.stop()
        defaults = {
            "idle_lifetime": IDLE,
            "absolute_lifetime": ABSOLUTE,
            "ephemeral_idle_lifetime": EPHEMERAL_IDLE,
            "clock": clock,
        }
        ref = AuthActor.start(store_tree.directory, **{**defaults, **options})
        started.append(ref)
        store_tree.directory.register("auth", ref)
        return ref

    yield store_tree, start, clock
    for ref in started:
        if ref.is_alive():
            ref.stop()


def stored_sessions(harness: TreeHarness) -> dict[str, Any]:
    value: dict[str, Any] = harness.ask("store", DbDump(pointer="/private/auth/sessions")).value
    return value


def log_in(harness: TreeHarness, *, ephemeral: bool = False) -> NewSession:
    session: NewSession = harness.ask("auth", Login(password=PASSWORD, ephemeral=ephemeral, peer="192.0.2.10"))
    return session


def test_an_idle_session_expires_and_is_forgotten(sessions: Sessions) -> None:
    harness, start, clock = sessions
    start()
    session = log_in(harness)
    assert session.id in stored_sessions(harness)
    clock.advance(IDLE - 1)
    assert harness.ask("auth", CheckSession(token=session.token)) == session.id  # use restarts the idle clock
    clock.advance(IDLE - 1)
    assert harness.ask("auth", CheckSession(token=session.token)) == session.id
    clock.advance(IDLE)
    assert harness.ask("auth", CheckSession(token=session.token)) is None
    wait_until(lambda: session.id not in stored_sessions(harness), what="the expired session's entry is removed")
    assert harness.ask("auth", ListSessions()).sessions == {}


def test_a_session_ends_at_its_absolute_lifetime_however_busy(sessions: Sessions) -> None:
    harness, start, clock = sessions
    start()
    session = log_in(harness)
    logged_in = clock.now
    while clock.now + IDLE / 2 < logged_in + ABSOLUTE:
        clock.advance(IDLE / 2)
        assert harness.ask("auth", CheckSession(token=session.token)) == session.id
    assert harness.ask("auth", ListSessions()).sessions[session.id].expires_at == iso(logged_in + ABSOLUTE)
    clock.advance(IDLE / 2)
    assert harness.ask("auth", CheckSession(token=session.token)) is None
    wait_until(lambda: session.id not in stored_sessions(harness), what="the expired session's entry is removed")


def test_an_ephemeral_session_has_a_shorter_idle_lifetime(sessions: Sessions) -> None:
    harness, start, clock = sessions
    start()
    kept, ephemeral = log_in(harness), log_in(harness, ephemeral=True)
    listed = harness.ask("auth", ListSessions()).sessions
    assert listed[ephemeral.id].expires_at == iso(clock.now + EPHEMERAL_IDLE)
    assert listed[kept.id].expires_at == iso(clock.now + IDLE)
    clock.advance(EPHEMERAL_IDLE)
    assert harness.ask("auth", CheckSession(token=ephemeral.token)) is None
    assert harness.ask("auth", CheckSession(token=kept.token)) == kept.id


def test_a_restart_keeps_expiry_counting_from_what_was_stored(
    sessions: Sessions,
) -> None:
    harness, start, clock = sessions
    start()
    session = log_in(harness)
    logged_in = clock.now
    clock.advance(100)
    assert harness.ask("auth", CheckSession(token=session.token)) == session.id  # stored: >60 s since the last write
    stored_at = clock.now
    wait_until(lambda: stored_sessions(harness)[session.id]["lastActive"] == iso(stored_at), what="lastActive stored")
    clock.advance(30)
    assert harness.ask("auth", CheckSession(token=session.token)) == session.id  # not stored: too soon

    start()  # a new AuthActor reads the sessions back from the store
    info = harness.ask("auth", ListSessions()).sessions[session.id]
    assert (info.logged_in, info.last_active) == (iso(logged_in), iso(stored_at))
    # Conservative: the idle clock runs from the stored activity, not the later unstored one.
    assert info.expires_at == iso(stored_at + IDLE)
    clock.now = stored_at + IDLE
    start()  # expired while the server was down: dropped at load
    assert harness.ask("auth", CheckSession(token=session.token)) is None
    assert session.id not in stored_sessions(harness)


def test_expired_sessions_are_swept_without_being_used(sessions: Sessions) -> None:
    harness, start, clock = sessions
    start()
    unused, used = log_in(harness), log_in(harness)
    clock.advance(IDLE - 10)
    harness.ask("auth", CheckSession(token=used.token))
    clock.advance(10)
    assert harness.ask("auth", SweepSessions()) == 1
    wait_until(lambda: unused.id not in stored_sessions(harness), what="the swept session's entry is removed")
    assert used.id in stored_sessions(harness)
    # The actor's own timer sends the sweep too.
    start(sweep_every=0.01)
    clock.advance(IDLE)
    wait_until(lambda: stored_sessions(harness) == {}, what="the timer sweeps the last session")


def test_the_session_list_shows_when_each_session_expires(web_tree: TreeHarness, tmp_path: Path) -> None:
    client = Http(web_tree.url)  # type: ignore[attr-defined]
    set_up_server(client)
    info = next(iter(client.call("auth.session.list")["result"]["sessions"].values()))
    assert {"loggedIn", "lastActive", "expiresAt"} <= set(info)
    day = 86400
    logged_in = datetime.fromisoformat(info["loggedIn"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(info["expiresAt"].replace("Z", "+00:00"))
    assert abs((expires - logged_in).total_seconds() - 14 * day) <= 2  # idle 14 days comes before absolute 90
    client.close()

    cli = make_runner(web_tree, tmp_path, local=True)
    code, out, err = cli("auth", "session", "list")
    assert code == 0, err
    assert "EXPIRES" in out.splitlines()[0] and info["expiresAt"] in out
    code, out, _ = cli("state", fmt="json")
    spec = json.loads(out)
    listed = next(m for m in spec["methods"] if m["name"] == "auth.session.list")
    assert listed["result"]["schema"]["$ref"].endswith("/SessionList")
    assert "expiresAt" in spec["components"]["schemas"]["SessionInfo"]["required"]


def test_change_password_keeps_the_caller_and_ends_a_session_opened_meanwhile(
    sessions: Sessions,
) -> None:
    harness, start, _clock = sessions
    start()
    mine, other = log_in(harness), log_in(harness)
    harness.ask(
        "auth",
        ChangePassword(old_password=PASSWORD, new_password="a brand new long password", keep_token=mine.token),
    )
    assert harness.ask("auth", CheckSession(token=mine.token)) == mine.id
    assert harness.ask("auth", CheckSession(token=other.token)) is None
    assert set(stored_sessions(harness)) == {mine.id}

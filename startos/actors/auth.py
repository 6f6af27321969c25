"""AuthActor: the master password, sessions and the login rate limit.

The password is kept only as an Argon2id hash (argon2-cffi) under ``/private/auth``; a session
is known by the SHA-256 of its token, never the token. Hashing costs ~0.2 s of CPU, so it runs
on gevent's thread pool and the actor keeps answering session checks (every RPC makes one)
meanwhile. The work off the actor (hashing, verifying) only computes; whatever it learns comes
back as a message, so the actor's fields change on the actor's own greenlet only.

Whether setup is done is whether ``/private/auth/passwordHash`` holds a hash: ``/private`` never
leaves the server and no client can write it, so no public field can make the server forget it
has an owner (issue #10).

Rate limit as StartOS, but per client address (see :class:`LoginLimiter`). Sessions expire
after an idle and an absolute lifetime; a timer sweeps expired ones out of the store.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import argon2
import gevent
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gevent.greenlet import Greenlet
from pykka import ActorDeadError

from startos.actors.patching import PatchError
from startos.errors import StartOSError
from startos.identity import check_password, new_id, new_token, token_hash
from startos.protocol.auth import (
    ChangePassword,
    CheckSession,
    GetPubkey,
    IsSetUp,
    KillSessions,
    ListSessions,
    Login,
    Logout,
    NewSession,
    RenameServer,
    ResetPassword,
    ServerIdentity,
    SessionInfo,
    SessionList,
    SetLanguage,
    SetUpServer,
    SweepSessions,
)
from startos.protocol.base import Message
from startos.protocol.errors import ErrorKind
from startos.protocol.store import DbApply, DbDump, DbPut
from startos.supervision import Actor, Directory, handles, in_thread

__all__ = ["AuthActor", "AuthError", "LoginLimiter"]

logger = logging.getLogger(__name__)

RATE_WINDOW = 20.0  # StartOS: an address's counter resets after this many seconds without attempts
RATE_ATTEMPTS = 3  # StartOS: while the counter is at this many, further attempts are refused
GLOBAL_ATTEMPTS = 30  # password checks per RATE_WINDOW from all addresses together (a backstop)
RATE_TABLE_MAX = 4096  # addresses remembered at once; idle ones are forgotten first
ACTIVITY_WRITE_EVERY = 60.0  # lastActive reaches the store at most this often per session

DAY = 86400.0
IDLE_LIFETIME = 14 * DAY  # a session unused this long ends
ABSOLUTE_LIFETIME = 90 * DAY  # and every session ends this long after its login
EPHEMERAL_IDLE_LIFETIME = 1 * DAY  # `auth.login {ephemeral: true}`: a shared or borrowed device
SWEEP_EVERY = 3600.0  # how often expired sessions are removed from the store

Clock = Callable[[], float]


class AuthError(StartOSError):
    """Raised when a password is wrong, attempts are rate limited, or setup is missing."""


def _iso(timestamp: float) -> str:
    """ISO-8601 UTC to the second, rounded down (a persisted time is never later than the truth)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_iso(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def client_key(peer: str) -> str:
    """The rate-limit key of a client address: the IP itself, or an IPv6 address's /64.

    One host usually holds a whole IPv6 /64, so counting single addresses there would give it
    2^64 counters. An unparsable peer (e.g. an in-process caller's empty one) is its own key.
    """
    try:
        address = ipaddress.ip_address(peer.strip("[]").split("%", 1)[0])
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _Counter:
    __slots__ = ("attempts", "last")

    def __init__(self, now: float) -> None:
        self.attempts = 0
        self.last = now


class LoginLimiter:
    """StartOS's login rate limit, kept per client address, with a global backstop.

    Per address, as StartOS does globally: every attempt counts, the count resets after
    ``window`` seconds without attempts, and while it is at ``per_address`` further attempts are
    refused without checking the password. So a guesser locks out only its own address.

    Globally, at most ``global_cap`` password checks run per ``window`` (a sliding window), so a
    guesser spread over many addresses is slowed too. A successful check gives its slot back
    and resets its address. An attempt the global cap refuses does not count against its
    address: it checked nothing, and the owner caught in a flood should not be locked out on top.

    Memory stays bounded: addresses idle for ``window`` are forgotten (they would start from
    zero anyway), and beyond ``max_addresses`` the least recently seen one is dropped. Dropping
    a busy address only helps a guesser that controls that many addresses, and the global cap
    still holds it.
    """

    def __init__(
        self,
        *,
        window: float = RATE_WINDOW,
        per_address: int = RATE_ATTEMPTS,
        global_cap: int = GLOBAL_ATTEMPTS,
        max_addresses: int = RATE_TABLE_MAX,
        clock: Clock = time.monotonic,
    ) -> None:
        self.window = window
        self.per_address = per_address
        self.global_cap = global_cap
        self.max_addresses = max_addresses
        self._clock = clock
        self._by_address: OrderedDict[str, _Counter] = OrderedDict()  # oldest last attempt first
        self._checks: deque[float] = deque()  # start times of the password checks in the window

    def __len__(self) -> int:
        return len(self._by_address)

    def admit(self, peer: str) -> tuple[str, float]:
        """Count an attempt from ``peer``; raise ``AuthError`` (RateLimited) if it must wait.

        Returns the attempt's key and time, to hand back to :meth:`succeeded`.
        """
        now = self._clock()
        key = client_key(peer)
        self._forget_idle(now)
        counter = self._by_address.get(key)
        if counter is not None and counter.attempts >= self.per_address:
            self._count(key, counter, now)  # StartOS: trying while locked keeps the lock on
            raise AuthError(
                f"too many attempts: wait {self.window:g} seconds without trying, then try again",
                kind=ErrorKind.RATE_LIMITED,
            )
        while self._checks and now - self._checks[0] >= self.window:
            self._checks.popleft()
        if len(self._checks) >= self.global_cap:
            wait = self.window - (now - self._checks[0])
            raise AuthError(
                f"too many login attempts on this server right now: wait {max(wait, 1):.0f} seconds, then try again",
                kind=ErrorKind.RATE_LIMITED,
            )
        self._checks.append(now)
        self._count(key, counter or _Counter(now), now)
        return key, now

    def succeeded(self, key: str, at: float) -> None:
        """The password checked at ``at`` was right: reset its address and free its global slot."""
        self._by_address.pop(key, None)
        try:
            self._checks.remove(at)
        except ValueError:
            pass  # already out of the window

    def _count(self, key: str, counter: _Counter, now: float) -> None:
        counter.attempts += 1
        counter.last = now
        self._by_address[key] = counter
        self._by_address.move_to_end(key)
        while len(self._by_address) > self.max_addresses:
            self._by_address.popitem(last=False)

    def _forget_idle(self, now: float) -> None:
        # Ordered by last attempt: the idle ones are at the front.
        while self._by_address:
            key, counter = next(iter(self._by_address.items()))
            if now - counter.last <= self.window:
                return
            del self._by_address[key]


class _Session:
    """An open session; times are seconds since the epoch (the actor's clock)."""

    __slots__ = ("ephemeral", "id", "last_active", "logged_in", "persisted_active", "user_agent")

    def __init__(self, sid: str, logged_in: float, last_active: float, user_agent: str | None, ephemeral: bool) -> None:
        self.id = sid
        self.logged_in = logged_in
        self.last_active = last_active
        self.persisted_active = last_active  # what /private/auth/sessions holds as lastActive
        self.user_agent = user_agent
        self.ephemeral = ephemeral


# -- messages from the actor's own work greenlets (not part of the protocol) ------------------


class _OpenSession(Message, frozen=True):
    """The password was right: open the session (and reset the caller's rate limit)."""

    ephemeral: bool
    user_agent: str | None
    client: str
    admitted_at: float


class _CommitSetup(Message, frozen=True):
    """The password is hashed and the server's key made: store them with the identity, once."""

    digest: str
    key_pem: str
    jwk: dict[str, str]
    server_id: str
    name: str
    hostname: str


class _CommitPassword(Message, frozen=True):
    """The new password is hashed (and the old one was right): store it, end other sessions."""

    digest: str
    keep_id: str | None = None
    client: str | None = None
    admitted_at: float = 0.0


class AuthActor(Actor):
    """Owns ``/private/auth``: checks passwords, opens, expires and closes sessions.

    Also the server's identity as setup makes it (``serverInfo`` id, name, hostname, pubkey,
    language, and ``/private/serverKey``): see ``startos.protocol.owners``.

    Lifetimes are in seconds; ``clock`` gives the wall time (sessions are stored with ISO
    timestamps, so they outlive a restart), ``limiter`` the login rate limit. Tests pass small
    lifetimes, a controllable clock and their own limiter.
    """

    def __init__(
        self,
        directory: Directory,
        *,
        idle_lifetime: float = IDLE_LIFETIME,
        absolute_lifetime: float = ABSOLUTE_LIFETIME,
        ephemeral_idle_lifetime: float = EPHEMERAL_IDLE_LIFETIME,
        sweep_every: float = SWEEP_EVERY,
        clock: Clock = time.time,
        limiter: LoginLimiter | None = None,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.idle_lifetime = idle_lifetime
        self.absolute_lifetime = absolute_lifetime
        self.ephemeral_idle_lifetime = ephemeral_idle_lifetime
        self.sweep_every = sweep_every
        self._clock = clock
        self._limiter = limiter if limiter is not None else LoginLimiter()
        self._hasher = argon2.PasswordHasher()  # argon2id, RFC 9106 low-memory defaults
        self._sessions: dict[str, _Session] = {}  # token hash -> session
        self._set_up = False
        self._sweeper: Greenlet | None = None

    def __str__(self) -> str:
        return "AuthActor"

    def on_start(self) -> None:
        private = self.directory.ask("store", DbDump(pointer="/private"), timeout=30).value
        auth = private.get("auth")
        patch: list[dict[str, Any]] = []
        if not isinstance(auth, dict):
            # An explicit "no password yet" that setup tests and replaces in one patch: the
            # compare-and-set that makes setup happen once, however many wizards race.
            auth = {"passwordHash": None, "sessions": {}}
            patch.append({"op": "add", "path": "/private/auth", "value": auth})
        else:
            for key, empty in (("passwordHash", None), ("sessions", {})):
                if key not in auth:
                    patch.append({"op": "add", "path": f"/private/auth/{key}", "value": empty})
        self._set_up = _has_hash(auth.get("passwordHash"))
        now = self._clock()
        stale = []
        for sid, entry in (auth.get("sessions") or {}).items():
            session = self._restore(sid, entry, now)
            if session is None:
                stale.append(sid)
            else:
                self._sessions[entry["tokenHash"]] = session
        patch += [{"op": "remove", "path": f"/private/auth/sessions/{sid}"} for sid in stale]
        if patch:
            self.directory.ask("store", DbApply(patch=patch, owner="auth"), timeout=30)
        if stale:
            logger.info("ended expired sessions", extra={"sessions_ended": len(stale)})
        self._sweeper = self.spawn(self._sweep_forever)

    def on_stop(self) -> None:
        self._stop_sweeper()

    def on_exit(self, reason: Any) -> None:
        self._stop_sweeper()

    def _restore(self, sid: str, entry: Any, now: float) -> _Session | None:
        """A stored session, or ``None`` if it is expired or unreadable.

        Its idle clock runs from the stored ``lastActive``, which lags the real last activity
        by up to ``ACTIVITY_WRITE_EVERY``: a restart can only shorten a session, never extend
        it. Times in the future (a clock set back) count as now, for the same reason.
        """
        if not isinstance(entry, dict) or not isinstance(entry.get("tokenHash"), str):
            return None
        logged_in = _parse_iso(entry.get("loggedIn"))
        if logged_in is None:
            return None
        logged_in = min(logged_in, now)
        last_active = _parse_iso(entry.get("lastActive"))
        last_active = logged_in if last_active is None else min(max(last_active, logged_in), now)
        user_agent = entry.get("userAgent")
        session = _Session(
            sid, logged_in, last_active, user_agent if isinstance(user_agent, str) else None, ephemeral=False
        )
        return None if now >= self._expires_at(session) else session

    # -- setup ---------------------------------------------------------------------------------

    @handles(IsSetUp)
    def is_set_up(self, _message: IsSetUp) -> bool:
        """True once initial setup is complete (a password hash exists in ``/private``)."""
        return self._set_up

    @handles(SetUpServer)
    def set_up_server(self, message: SetUpServer) -> None:
        """Initial setup: hash the password off the hub, then commit it with a new identity (``ServerIdentity``)."""
        if self._set_up:
            raise _already_set_up()
        check_password(message.password)

        def hash_then_commit() -> ServerIdentity:
            key_pem, jwk = _server_key()
            commit = _CommitSetup(
                digest=self._hash(message.password),
                key_pem=key_pem,
                jwk=jwk,
                server_id=new_id(8),
                name=message.name,
                hostname=message.hostname,
            )
            identity: ServerIdentity = self.actor_ref.ask(commit, block=True, timeout=30)
            return identity

        self.answer_later(hash_then_commit)

    @handles(_CommitSetup)
    def _commit_setup(self, message: _CommitSetup) -> ServerIdentity:
        """Store what setup made, unless another setup got here first (sent by ``set_up_server``'s greenlet)."""
        if self._set_up:
            raise _already_set_up()
        patch: list[dict[str, Any]] = [
            # Compare-and-set on /private (written as null at start): setup happens once, and no
            # public field, whoever wrote it, can make it run again over a password (issue #10).
            {"op": "test", "path": "/private/auth/passwordHash", "value": None},
            {"op": "replace", "path": "/private/auth/passwordHash", "value": message.digest},
            {"op": "add", "path": "/private/auth/sessions", "value": {}},
            {"op": "add", "path": "/public/serverInfo/id", "value": message.server_id},
            {"op": "replace", "path": "/public/serverInfo/name", "value": message.name},
            {"op": "replace", "path": "/public/serverInfo/hostname", "value": message.hostname},
            {"op": "replace", "path": "/public/serverInfo/pubkey", "value": message.jwk},
            {"op": "add", "path": "/private/serverKey", "value": message.key_pem},
        ]
        try:
            self.directory.ask("store", DbApply(patch=patch, owner="auth"))
        except PatchError as exc:
            stored = self.directory.ask("store", DbDump(pointer="/private/auth/passwordHash")).value
            if _has_hash(stored):  # a hash got there behind this actor's back: /private says it is set up
                self._set_up = True
                raise _already_set_up() from None
            raise AuthError(f"setup could not be saved: {exc}", kind=exc.kind) from None
        self._set_up = True
        logger.info("setup complete", extra={"server_id": message.server_id})
        return ServerIdentity(server_id=message.server_id, name=message.name, hostname=message.hostname)

    # -- the server's name, language and key ----------------------------------------------------

    @handles(RenameServer)
    def rename_server(self, message: RenameServer) -> int:
        """Set the server's name and hostname label; replies with the revision id."""
        patch = [
            {"op": "replace", "path": "/public/serverInfo/name", "value": message.name},
            {"op": "replace", "path": "/public/serverInfo/hostname", "value": message.hostname},
        ]
        return int(self.directory.ask("store", DbApply(patch=patch, owner="auth")))

    @handles(SetLanguage)
    def set_language(self, message: SetLanguage) -> int:
        """Set the interface language; replies with the revision id."""
        put = DbPut(pointer="/public/serverInfo/language", value=message.language, owner="auth")
        return int(self.directory.ask("store", put))

    @handles(GetPubkey)
    def get_pubkey(self, _message: GetPubkey) -> Any:
        """The server's public key (a JWK), ``None`` before setup."""
        return self.directory.ask("store", DbDump(pointer="/public/serverInfo/pubkey")).value

    # -- sessions ------------------------------------------------------------------------------

    @handles(Login)
    def login(self, message: Login) -> None:
        """Verify the password (rate limited per address) and open a session; replies with ``NewSession``."""
        if not self._set_up:
            raise AuthError("the server is not set up yet: complete setup first", kind=ErrorKind.UNINITIALIZED)
        client, admitted_at = self._limiter.admit(message.peer)
        opened = _OpenSession(
            ephemeral=message.ephemeral, user_agent=message.user_agent, client=client, admitted_at=admitted_at
        )

        def verify_then_open() -> NewSession:
            self._verify(message.password)
            session: NewSession = self.actor_ref.ask(opened, block=True, timeout=30)
            return session

        self.answer_later(verify_then_open)

    @handles(_OpenSession)
    def _open_session(self, message: _OpenSession) -> NewSession:
        """Open a session for a caller whose password was right (sent by ``login``'s greenlet)."""
        self._limiter.succeeded(message.client, message.admitted_at)
        token = new_token()
        now = self._clock()
        session = _Session(new_id(), now, now, message.user_agent, message.ephemeral)
        digest = token_hash(token)
        if not message.ephemeral:
            stamp = _iso(now)
            entry = {"tokenHash": digest, "loggedIn": stamp, "lastActive": stamp, "userAgent": message.user_agent}
            self.directory.ask(
                "store",
                DbApply(
                    patch=[{"op": "add", "path": f"/private/auth/sessions/{session.id}", "value": entry}], owner="auth"
                ),
            )
        self._sessions[digest] = session
        return NewSession(id=session.id, token=token)

    @handles(CheckSession)
    def check_session(self, message: CheckSession) -> str | None:
        """The session id of ``token``, or ``None`` (also once it has expired); notes the activity."""
        if not message.token:
            return None
        digest = token_hash(message.token)
        session = self._sessions.get(digest)
        if session is None:
            return None
        now = self._clock()
        if now >= self._expires_at(session):
            self._end([session], wait=False)
            return None
        session.last_active = now
        if not session.ephemeral and now - session.persisted_active > ACTIVITY_WRITE_EVERY:
            session.persisted_active = now
            self.directory.tell(
                "store",
                DbApply(
                    patch=[
                        {"op": "replace", "path": f"/private/auth/sessions/{session.id}/lastActive", "value": _iso(now)}
                    ],
                    owner="auth",
                ),
            )
        return session.id

    @handles(SweepSessions)
    def sweep_sessions(self, _message: SweepSessions) -> int:
        """End every expired session; replies with how many ended."""
        now = self._clock()
        expired = [s for s in self._sessions.values() if now >= self._expires_at(s)]
        self._end(expired, wait=False)
        return len(expired)

    @handles(Logout)
    def logout(self, message: Logout) -> None:
        """End the session of ``token`` (nothing happens if it has already ended)."""
        session = self._sessions.get(token_hash(message.token))
        if session is not None:
            self._end([session], wait=True)

    @handles(ListSessions)
    def list_sessions(self, message: ListSessions) -> SessionList:
        """Every open session with when it expires, the caller's marked as current."""
        self.sweep_sessions(SweepSessions())
        current = self._sessions.get(token_hash(message.current_token)) if message.current_token else None
        return SessionList(
            current=current.id if current else None,
            sessions={
                s.id: SessionInfo(
                    logged_in=_iso(s.logged_in),
                    last_active=_iso(s.last_active),
                    expires_at=_iso(self._expires_at(s)),
                    user_agent=s.user_agent,
                )
                for s in self._sessions.values()
            },
        )

    @handles(KillSessions)
    def kill_sessions(self, message: KillSessions) -> None:
        """End the sessions with these ids; unknown ids are an error naming them."""
        by_id = {s.id: s for s in self._sessions.values()}
        unknown = [i for i in message.ids if i not in by_id]
        if unknown:
            raise AuthError(f"no such session: {', '.join(unknown)}", kind=ErrorKind.NOT_FOUND)
        self._end([by_id[i] for i in message.ids], wait=True)

    # -- passwords -----------------------------------------------------------------------------

    @handles(ChangePassword)
    def change_password(self, message: ChangePassword) -> None:
        """Replace the password after checking the old one (rate limited like login); other sessions end."""
        check_password(message.new_password, "new password")
        client, admitted_at = self._limiter.admit(message.peer)
        keep = self._sessions.get(token_hash(message.keep_token)) if message.keep_token else None
        keep_id = keep.id if keep is not None else None

        def verify_then_replace() -> None:
            self._verify(message.old_password)
            digest = self._hash(message.new_password)
            commit = _CommitPassword(digest=digest, keep_id=keep_id, client=client, admitted_at=admitted_at)
            self.actor_ref.ask(commit, block=True, timeout=30)

        self.answer_later(verify_then_replace)

    @handles(ResetPassword)
    def reset_password(self, message: ResetPassword) -> None:
        """Replace the password without the old one (local root only); every session ends."""
        if not self._set_up:
            raise AuthError("the server is not set up yet: complete setup first", kind=ErrorKind.UNINITIALIZED)
        check_password(message.new_password, "new password")

        def replace() -> None:
            self.actor_ref.ask(_CommitPassword(digest=self._hash(message.new_password)), block=True, timeout=30)

        self.answer_later(replace)

    @handles(_CommitPassword)
    def _commit_password(self, message: _CommitPassword) -> None:
        """Store a new password hash and end the other sessions (sent by the password greenlets)."""
        if message.client is not None:
            self._limiter.succeeded(message.client, message.admitted_at)
        # The sessions to end are chosen now, on the actor: one opened while hashing ends too.
        others = {h: s for h, s in self._sessions.items() if s.id != message.keep_id}
        patch: list[dict[str, Any]] = [{"op": "replace", "path": "/private/auth/passwordHash", "value": message.digest}]
        patch += [
            {"op": "remove", "path": f"/private/auth/sessions/{s.id}"} for s in others.values() if not s.ephemeral
        ]
        self.directory.ask("store", DbApply(patch=patch, owner="auth"))
        for digest in others:
            del self._sessions[digest]
        logger.info("master password changed", extra={"sessions_ended": len(others)})

    # -- mechanics -----------------------------------------------------------------------------

    def _expires_at(self, session: _Session) -> float:
        idle = self.ephemeral_idle_lifetime if session.ephemeral else self.idle_lifetime
        return min(session.last_active + idle, session.logged_in + self.absolute_lifetime)

    def _hash(self, password: str) -> str:
        result: str = in_thread(self._hasher.hash, password)
        return result

    def _verify(self, password: str) -> None:
        """Raise ``AuthError`` unless ``password`` matches the stored hash (runs off the actor)."""
        stored = self.directory.ask("store", DbDump(pointer="/private/auth/passwordHash")).value

        def verify() -> bool:
            try:
                return bool(self._hasher.verify(stored, password))
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False

        if not _has_hash(stored) or not in_thread(verify):
            raise AuthError("the password is incorrect", kind=ErrorKind.INCORRECT_PASSWORD)

    def _end(self, sessions: list[_Session], *, wait: bool) -> None:
        """Forget ``sessions`` and remove the stored ones.

        On request (logout, kill) ``wait``: durable before the caller hears back. On expiry the
        removal is told, not asked: an entry a crash leaves behind expires again at load.
        """
        ended = {id(s) for s in sessions}
        self._sessions = {h: s for h, s in self._sessions.items() if id(s) not in ended}
        patch = [{"op": "remove", "path": f"/private/auth/sessions/{s.id}"} for s in sessions if not s.ephemeral]
        if not patch:
            return
        if wait:
            self.directory.ask("store", DbApply(patch=patch, owner="auth"))
        else:
            self.directory.tell("store", DbApply(patch=patch, owner="auth"))

    def _sweep_forever(self) -> None:
        # The timer only sends a message: the sweep itself runs on the actor, like every change.
        while True:
            gevent.sleep(self.sweep_every)
            try:
                self.actor_ref.tell(SweepSessions())
            except ActorDeadError:
                return

    def _stop_sweeper(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.kill(block=False)


def _has_hash(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _already_set_up() -> AuthError:
    return AuthError("setup is already complete: log in instead", kind=ErrorKind.INVALID_REQUEST)


def _server_key() -> tuple[str, dict[str, str]]:
    """A new Ed25519 identity key: its PEM (kept in /private) and its public JWK."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    return pem, jwk

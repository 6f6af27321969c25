"""AuthActor: the master password, sessions and the login rate limit.

The password is kept only as an Argon2id hash (argon2-cffi) under ``/private/auth``; a session
is known by the SHA-256 of its token, never the token. Hashing costs ~0.2 s of CPU, so it runs
on gevent's thread pool and the actor keeps answering session checks (every RPC makes one)
meanwhile.

Rate limit as StartOS: a counter that resets after 20 s without attempts; while it is at 3 or
more, further attempts are refused (RateLimited) without even checking the password.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import argon2
import gevent

from startos.errors import StartOSError
from startos.identity import check_password, new_id, new_token, token_hash
from startos.protocol.auth import (
    ChangePassword,
    CheckSession,
    HashPassword,
    IsSetUp,
    KillSessions,
    ListSessions,
    Login,
    Logout,
    NewSession,
    ResetPassword,
    SessionInfo,
    SessionList,
    SetupCompleted,
)
from startos.protocol.errors import ErrorKind
from startos.protocol.store import DbApply, DbDump
from startos.supervision import Actor, Directory, handles

__all__ = ["AuthActor", "AuthError"]

logger = logging.getLogger(__name__)

RATE_WINDOW = 20.0
RATE_ATTEMPTS = 3
ACTIVITY_WRITE_EVERY = 60.0


class AuthError(StartOSError):
    """Raised when a password is wrong, attempts are rate limited, or setup is missing."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Session:
    __slots__ = ("ephemeral", "id", "last_active", "last_written", "logged_in", "user_agent")

    def __init__(self, sid: str, logged_in: str, last_active: str, user_agent: str | None, ephemeral: bool) -> None:
        self.id = sid
        self.logged_in = logged_in
        self.last_active = last_active
        self.user_agent = user_agent
        self.ephemeral = ephemeral
        self.last_written = time.monotonic()


class AuthActor(Actor):
    """Owns ``/private/auth``: checks passwords, opens and closes sessions."""

    def __init__(self, directory: Directory) -> None:
        super().__init__()
        self.directory = directory
        self._hasher = argon2.PasswordHasher()  # argon2id, RFC 9106 low-memory defaults
        self._sessions: dict[str, _Session] = {}  # token hash -> session
        self._set_up = False
        self._attempts = 0
        self._last_attempt = -RATE_WINDOW

    def __str__(self) -> str:
        return "AuthActor"

    def on_start(self) -> None:
        root = self.directory.ask("store", DbDump(pointer=""), timeout=30).value
        self._set_up = root["public"]["serverInfo"].get("id") is not None
        for sid, entry in (root["private"].get("auth") or {}).get("sessions", {}).items():
            self._sessions[entry["tokenHash"]] = _Session(
                sid, entry["loggedIn"], entry["lastActive"], entry.get("userAgent"), ephemeral=False
            )

    # -- setup ---------------------------------------------------------------------------------

    @handles(IsSetUp)
    def is_set_up(self, _message: IsSetUp) -> bool:
        """True once initial setup is complete."""
        return self._set_up

    @handles(SetupCompleted)
    def setup_completed(self, _message: SetupCompleted) -> None:
        """Setup committed its patch: logins are possible from now on."""
        self._set_up = True

    @handles(HashPassword)
    def hash_password(self, message: HashPassword) -> None:
        """Hash a password off the hub; the reply comes from the thread pool's result."""
        check_password(message.password)
        self.answer_later(self._hash, message.password)

    # -- sessions ------------------------------------------------------------------------------

    @handles(Login)
    def login(self, message: Login) -> None:
        """Verify the password (rate limited) and open a session; replies with ``NewSession``."""
        if not self._set_up:
            raise AuthError("the server is not set up yet: complete setup first", kind=ErrorKind.UNINITIALIZED)
        self._count_attempt()

        def verify_and_open() -> NewSession:
            self._verify(message.password)
            return self._open(message.ephemeral, message.user_agent)

        self.answer_later(verify_and_open)

    @handles(CheckSession)
    def check_session(self, message: CheckSession) -> str | None:
        """The session id of ``token``, or ``None``; notes the activity."""
        if not message.token:
            return None
        session = self._sessions.get(token_hash(message.token))
        if session is None:
            return None
        session.last_active = _now_iso()
        if not session.ephemeral and time.monotonic() - session.last_written > ACTIVITY_WRITE_EVERY:
            session.last_written = time.monotonic()
            self.directory.tell(
                "store",
                DbApply(
                    patch=[
                        {
                            "op": "replace",
                            "path": f"/private/auth/sessions/{session.id}/lastActive",
                            "value": session.last_active,
                        }
                    ]
                ),
            )
        return session.id

    @handles(Logout)
    def logout(self, message: Logout) -> None:
        """End the session of ``token`` (nothing happens if it has already ended)."""
        session = self._sessions.get(token_hash(message.token))
        if session is not None:
            self._close([session])

    @handles(ListSessions)
    def list_sessions(self, message: ListSessions) -> SessionList:
        """Every open session, with the caller's marked as current."""
        current = self._sessions.get(token_hash(message.current_token)) if message.current_token else None
        return SessionList(
            current=current.id if current else None,
            sessions={
                s.id: SessionInfo(logged_in=s.logged_in, last_active=s.last_active, user_agent=s.user_agent)
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
        self._close([by_id[i] for i in message.ids])

    # -- passwords -----------------------------------------------------------------------------

    @handles(ChangePassword)
    def change_password(self, message: ChangePassword) -> None:
        """Replace the password after checking the old one; other sessions end."""
        check_password(message.new_password, "new password")
        self._count_attempt()
        keep = self._sessions.get(token_hash(message.keep_token)) if message.keep_token else None
        self.answer_later(self._replace_password, message.new_password, message.old_password, keep)

    @handles(ResetPassword)
    def reset_password(self, message: ResetPassword) -> None:
        """Replace the password without the old one (local root only); every session ends."""
        if not self._set_up:
            raise AuthError("the server is not set up yet: complete setup first", kind=ErrorKind.UNINITIALIZED)
        check_password(message.new_password, "new password")
        self.answer_later(self._replace_password, message.new_password, None, None)

    # -- mechanics -----------------------------------------------------------------------------

    def _count_attempt(self) -> None:
        now = time.monotonic()
        if now - self._last_attempt > RATE_WINDOW:
            self._attempts = 0
        self._last_attempt = now
        self._attempts += 1
        if self._attempts > RATE_ATTEMPTS:
            raise AuthError(
                f"too many attempts: wait {RATE_WINDOW:g} seconds without trying, then try again",
                kind=ErrorKind.RATE_LIMITED,
            )

    def _hash(self, password: str) -> str:
        result: str = gevent.get_hub().threadpool.apply(self._hasher.hash, (password,))
        return result

    def _verify(self, password: str) -> None:
        stored = self.directory.ask("store", DbDump(pointer="/private/auth/passwordHash")).value

        def verify() -> bool:
            try:
                return bool(self._hasher.verify(stored, password))
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False

        if not gevent.get_hub().threadpool.apply(verify):
            raise AuthError("the password is incorrect", kind=ErrorKind.INCORRECT_PASSWORD)
        self._attempts = 0

    def _open(self, ephemeral: bool, user_agent: str | None) -> NewSession:
        token = new_token()
        now = _now_iso()
        session = _Session(new_id(), now, now, user_agent, ephemeral)
        digest = token_hash(token)
        if not ephemeral:
            entry = {"tokenHash": digest, "loggedIn": now, "lastActive": now, "userAgent": user_agent}
            self.directory.ask(
                "store", DbApply(patch=[{"op": "add", "path": f"/private/auth/sessions/{session.id}", "value": entry}])
            )
        self._sessions[digest] = session
        return NewSession(id=session.id, token=token)

    def _close(self, sessions: list[_Session]) -> None:
        for session in sessions:
            self._sessions = {h: s for h, s in self._sessions.items() if s is not session}
        stored = [s for s in sessions if not s.ephemeral]
        if stored:
            self.directory.ask(
                "store", DbApply(patch=[{"op": "remove", "path": f"/private/auth/sessions/{s.id}"} for s in stored])
            )

    def _replace_password(self, new: str, old: str | None, keep: _Session | None) -> None:
        if old is not None:
            self._verify(old)
        digest = self._hash(new)
        others = [s for s in self._sessions.values() if s is not keep]
        patch: list[dict[str, Any]] = [{"op": "replace", "path": "/private/auth/passwordHash", "value": digest}]
        patch += [{"op": "remove", "path": f"/private/auth/sessions/{s.id}"} for s in others if not s.ephemeral]
        self.directory.ask("store", DbApply(patch=patch))
        for session in others:
            self._sessions = {h: s for h, s in self._sessions.items() if s is not session}
        logger.info("master password changed", extra={"sessions_ended": len(others)})

"""Setup, the master password and sessions: messages and RPC methods."""

from __future__ import annotations

from typing import Literal

import msgspec

from startos.protocol.base import Message, Params, Result
from startos.protocol.rpc import NoParams, method

PASSWORD_MIN = 12
PASSWORD_MAX = 64
NAME_MAX = 64
LANGUAGES = ("en", "fr", "de", "pl", "es")
Language = Literal["en", "fr", "de", "pl", "es"]

# -- RPC params and results ----------------------------------------------------------------------


class SetupStatus(Result, frozen=True):
    status: Literal["needs-setup", "complete"]


class SetupExecuteParams(Params, frozen=True):
    server_name: str
    password: str


class SetupResult(Result, frozen=True):
    server_id: str
    name: str
    hostname: str
    mdns_address: str
    root_ca: str | None
    ca_fingerprint: str | None
    info_html: str


class LoginParams(Params, frozen=True):
    password: str
    ephemeral: bool = False


class SessionInfo(Result, frozen=True):
    """One open session; times are ISO-8601 UTC.

    ``expires_at`` is when the server ends it unless it is used again: the earlier of its idle
    expiry (last activity plus the idle lifetime) and its absolute expiry (login plus the
    absolute lifetime).
    """

    logged_in: str
    last_active: str
    expires_at: str
    user_agent: str | None = None


class SessionList(Result, frozen=True):
    current: str | None
    sessions: dict[str, SessionInfo]


class SessionKillParams(Params, frozen=True):
    ids: list[str]


class ChangePasswordParams(Params, frozen=True):
    old_password: str
    new_password: str


class ResetPasswordParams(Params, frozen=True):
    new_password: str


class SetLanguageParams(Params, frozen=True):
    language: Language


class SetHostnameParams(Params, frozen=True):
    name: str


method(
    "setup.status",
    "Whether the server still needs its initial setup.",
    NoParams,
    SetupStatus,
    auth=False,
    before_setup=True,
)
method(
    "setup.execute",
    "Initial setup: server name and master password; creates the root CA.",
    SetupExecuteParams,
    SetupResult,
    auth=False,
    before_setup=True,
    mutating=True,
)
method("auth.login", "Log in with the master password; sets the `session` cookie.", LoginParams, None, auth=False)
method("auth.logout", "End the current session.", NoParams, None)
method(
    "auth.session.list",
    "Every active session and when it expires; `current` is the caller's.",
    NoParams,
    SessionList,
)
method("auth.session.kill", "End the given sessions.", SessionKillParams, None)
method(
    "auth.change-password",
    "Change the master password (needs the old one); ends other sessions.",
    ChangePasswordParams,
    None,
    mutating=True,
)
method(
    "auth.reset-password",
    "Set a new master password without the old one; only from the machine itself.",
    ResetPasswordParams,
    None,
    local_only=True,
    mutating=True,
)
method("auth.get-pubkey", "The server's public key (a JWK).", NoParams, dict[str, str])
method(
    "server.set-language", "Set the interface language (en, fr, de, pl, es).", SetLanguageParams, None, mutating=True
)
method(
    "server.set-hostname",
    "Rename the server; its mDNS address and certificate follow.",
    SetHostnameParams,
    None,
    mutating=True,
)

# -- actor messages ------------------------------------------------------------------------------


class Login(Message, frozen=True):
    """Check the password (rate limited per ``peer``, the client's address); reply with a ``NewSession``."""

    password: str
    ephemeral: bool = False
    user_agent: str | None = None
    peer: str = ""


class NewSession(msgspec.Struct, frozen=True):
    id: str
    token: str


class CheckSession(Message, frozen=True):
    """Reply with the session id for ``token``, or ``None``; records activity."""

    token: str | None


class Logout(Message, frozen=True):
    token: str


class ListSessions(Message, frozen=True):
    current_token: str | None = None


class KillSessions(Message, frozen=True):
    ids: list[str]


class ChangePassword(Message, frozen=True):
    """Check the old password (rate limited per ``peer``, like ``Login``), then set the new one."""

    old_password: str
    new_password: str
    keep_token: str | None = None
    peer: str = ""


class ResetPassword(Message, frozen=True):
    new_password: str


class SweepSessions(Message, frozen=True):
    """End every session past its idle or absolute lifetime (AuthActor's own timer sends it)."""


class IsSetUp(Message, frozen=True):
    """Reply ``True`` once initial setup has completed (a password hash exists in ``/private``)."""


# -- the server's identity, name and language (AuthActor owns them: ``protocol.owners``) --------


class SetUpServer(Message, frozen=True):
    """Initial setup, once: store the password's hash, a new server id and key, and the name.

    ``name`` is checked (``identity.check_server_name``) and ``hostname`` its ``.local`` label.
    Replies with a ``ServerIdentity``; fails with InvalidRequest when setup is already complete
    (also when another setup won a race).
    """

    name: str
    hostname: str
    password: str


class ServerIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """What setup created: the server's id, its name and its hostname label."""

    server_id: str
    name: str
    hostname: str


class RenameServer(Message, frozen=True):
    """Set the server's name and hostname label (already checked); reply with the revision id."""

    name: str
    hostname: str


class SetLanguage(Message, frozen=True):
    """Set the interface language; reply with the revision id."""

    language: Language


class GetPubkey(Message, frozen=True):
    """Reply with the server's public key as a JWK (``None`` before setup)."""

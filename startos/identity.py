"""Plain rules about the server's identity: names, hostnames, passwords, session tokens."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import unicodedata

from startos.errors import StartOSError
from startos.protocol.auth import NAME_MAX, PASSWORD_MAX, PASSWORD_MIN
from startos.protocol.errors import ErrorKind


class InvalidInput(StartOSError):
    """Raised when a user-supplied value breaks a rule; the message states the rule."""

    kind = ErrorKind.INVALID_REQUEST


def check_password(password: str, what: str = "password") -> str:
    """Return ``password`` if it meets the master-password rules, else raise ``InvalidInput``."""
    if not password or not password.strip():
        raise InvalidInput(f"the {what} is empty: use {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"the {what} is too short: use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"the {what} is too long: use at most {PASSWORD_MAX} characters")
    return password


def check_server_name(name: str) -> str:
    """The trimmed server name, or ``InvalidInput`` if empty, overlong or without a letter/digit."""
    name = name.strip()
    if not name:
        raise InvalidInput("the server name is empty: give it 1 to 64 characters")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"the server name is too long: use at most {NAME_MAX} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidInput("the server name contains control characters")
    hostname_label(name)  # must yield a usable mDNS name
    return name


def hostname_label(name: str) -> str:
    """The DNS label a server name becomes: "My Cool Server" -> "my-cool-server".

    Letters lose their accents, everything that is not a-z or 0-9 becomes one hyphen, and the
    result is trimmed to 63 characters (a DNS label's limit).
    """
    folded = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c)).encode("ascii", "ignore").decode()
    label = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
    label = label[:63].rstrip("-")
    if not label:
        raise InvalidInput("the server name needs at least one letter or digit (a-z, 0-9) for its .local address")
    return label


def mdns_address(name: str) -> str:
    return f"{hostname_label(name)}.local"


def new_token() -> str:
    """A session token as StartOS makes them: 16 random bytes, lowercase base32, no padding."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def token_hash(token: str) -> str:
    """What the database keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)

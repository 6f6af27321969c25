"""Who may write which part of the state tree: one owner per subtree (DESIGN.md, "State").

Every ``DbApply``/``DbPut`` names its ``owner``; the StoreActor refuses an operation whose path
(or, for ``move``, whose source) is not owned by that owner. ``test`` and the source of a ``copy``
only read, so anyone may use them. The owner of a path is the entry of :data:`OWNERS` with the
longest matching pattern; ``*`` matches exactly one reference token (a package id). A path with
no owner (the root, ``/public`` itself, ``/public/packageData`` as a whole) is written by nobody.

Owner names are the names actors are registered under in the ``Directory`` (``service:<id>`` for
a package's ServiceActor), so a refusal names the actor to send a message to instead.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["CLIENT", "OWNERS", "owner_of", "service_owner"]

CLIENT = "client"
"""Clients (the dashboard, ``start-cli``) through ``db.put``/``db.apply``: ``/public/ui`` only."""

OWNERS: tuple[tuple[str, str], ...] = (
    # serverInfo: each concern writes its own field.
    ("/public/serverInfo/id", "auth"),
    ("/public/serverInfo/name", "auth"),
    ("/public/serverInfo/hostname", "auth"),
    ("/public/serverInfo/pubkey", "auth"),
    ("/public/serverInfo/language", "auth"),
    ("/public/serverInfo/caFingerprint", "certs"),
    ("/public/serverInfo/network", "mdns"),
    ("/public/serverInfo/unreadNotificationCount", "notifications"),
    ("/public/serverInfo/statusInfo", "services"),
    # packageData: the services manager creates and removes an entry and owns its lifecycle
    # (stateInfo: installing, updating, removing); the package's ServiceActor owns the rest.
    ("/public/packageData/*", "services"),
    ("/public/packageData/*/statusInfo", "service:*"),
    ("/public/packageData/*/currentDependencies", "service:*"),
    ("/public/packageData/*/actions", "service:*"),
    ("/public/packageData/*/tasks", "service:*"),
    ("/public/packageData/*/serviceInterfaces", "service:*"),
    ("/public/packageData/*/hosts", "service:*"),
    ("/public/packageData/*/outboundGateway", "service:*"),
    ("/public/ui", CLIENT),
    # /private never leaves the process, but has owners all the same.
    ("/private/auth", "auth"),
    ("/private/serverKey", "auth"),
    ("/private/certs", "certs"),
    ("/private/notifications", "notifications"),
    ("/private/packages", "services"),
)


def service_owner(package_id: str) -> str:
    """The owner name of a package's own part of ``packageData`` (its ServiceActor)."""
    return f"service:{package_id}"


def _tokens(pointer: str) -> list[str]:
    return pointer.split("/")[1:] if pointer else []


_TABLE: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    sorted(((tuple(_tokens(pattern)), owner) for pattern, owner in OWNERS), key=lambda row: -len(row[0]))
)
_ESCAPE = re.compile("~[01]")


@lru_cache(maxsize=4096)
def owner_of(pointer: str) -> str | None:
    """The owner of the subtree that holds ``pointer`` (``None``: nobody may write there).

    ``pointer`` is an RFC 6901 pointer; package ids are unescaped before they name an owner.
    """
    tokens = _tokens(pointer)
    for pattern, owner in _TABLE:
        if len(tokens) < len(pattern):
            continue
        matched: str | None = None
        for want, got in zip(pattern, tokens, strict=False):
            if want == "*":
                matched = _ESCAPE.sub(lambda m: "~" if m.group() == "~0" else "/", got)
            elif want != got:
                break
        else:
            return owner.replace("*", matched) if matched is not None and "*" in owner else owner
    return None

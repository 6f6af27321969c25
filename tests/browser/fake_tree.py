"""Hand-made state trees for the browser tests, held to the server's schema.

The seeded tests write made-up package entries straight into the store, so the dashboard is
tested against trees no package produced. Every such write goes through :func:`seed` or
:func:`patch`, which first check the tree it would make with the server's own schema
(``startos.protocol.public_tree.validate_public``; a ``SchemaError`` names the pointer) and then
write it as the owner of those paths would (``startos.protocol.owners``). A fake tree therefore
holds only what the server writes, in the shape it writes it: ``statusInfo.summary`` included,
since the dashboard shows that word and computes nothing.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from startos.actors.patching import apply_patch
from startos.protocol.owners import owner_of
from startos.protocol.store import DbApply, DbDump

if TYPE_CHECKING:
    from .conftest import Server

__all__ = ["check_public", "entry", "patch", "schema_validator", "seed"]


def schema_validator() -> Callable[[Any], None] | None:
    """The server's ``validate_public``, or None while the schema module does not exist yet."""
    try:
        module = importlib.import_module("startos.protocol.public_tree")
    except ModuleNotFoundError as exc:
        if exc.name != "startos.protocol.public_tree":
            raise  # the module exists but is broken: that must fail, not skip the check
        return None
    validate: Callable[[Any], None] = module.validate_public
    return validate


def check_public(public: Any) -> None:
    """Raise the schema's ``SchemaError`` (naming the pointer) if ``public`` is not a tree the server could write."""
    validate = schema_validator()
    if validate is not None:
        validate(public)


def entry(title: str, **extra: Any) -> dict[str, Any]:
    """A packageData entry as the server publishes an installed, stopped package.

    ``statusInfo`` keys given in ``extra`` are laid over the defaults; other keys replace the
    entry's. ``summary`` is the server's status word: a fake that changes what it derives from
    (desired, started, tasks, blocked, dependencies) must change it too.
    """
    package_id = title.lower().replace(" ", "-")
    status: dict[str, Any] = {
        "desired": "stopped",
        "started": None,
        "error": None,
        "health": {},
        "daemons": {},
        "progress": {},
        "blocked": None,
        "dependencies": {},
        "summary": "stopped",
    }
    status.update(extra.pop("statusInfo", {}))
    value: dict[str, Any] = {
        "stateInfo": {
            "state": "installed",
            "manifest": {
                "id": package_id,
                "title": title,
                "version": "1.0.0:0",
                "description": {"short": f"{title} for tests", "long": f"{title} for tests."},
            },
        },
        "statusInfo": status,
        "icon": None,
        "signer": "ZmFrZSBzaWduZXIga2V5",  # base64, as the server writes the developer key
        "registry": None,
        "lastBackup": None,
        "currentDependencies": {},
        "actions": {},
        "tasks": {},
        "serviceInterfaces": {},
        "hosts": {},
        "outboundGateway": None,
    }
    value.update(extra)
    return value


def _write(server: Server, ops: list[dict[str, Any]]) -> None:
    """Check the tree ``ops`` would make, then apply them as their one owner."""
    owners = {owner_of(op["path"]) for op in ops if op.get("op") != "test"}
    assert len(owners) == 1 and None not in owners, f"a fake write must come from one owner, not {owners}"
    (owner,) = owners
    public = server.tree.ask("store", DbDump(pointer="/public")).value
    after = apply_patch({"public": copy.deepcopy(public)}, ops)
    check_public(after["public"])
    server.tree.ask("store", DbApply(patch=ops, owner=owner or ""))


def seed(server: Server, *entries: tuple[str, dict[str, Any]]) -> None:
    """Add whole package entries (as the services manager does when an install starts)."""
    _write(server, [{"op": "add", "path": f"/public/packageData/{pid}", "value": e} for pid, e in entries])


def patch(server: Server, *ops: dict[str, Any]) -> None:
    """Change a seeded tree: one owner's write (a package's own statusInfo, tasks, hosts...)."""
    _write(server, list(ops))

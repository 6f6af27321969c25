"""A package's own part of the state tree, as its ServiceActor writes it.

:class:`OwnEntry` is a plain helper the ServiceActor holds and calls from its handlers only. Every
write goes out as owner ``service:<id>`` (``startos.protocol.owners``) and carries
``statusInfo.summary`` (``startos.protocol.status.summarize``) as the entry will be after it, in
the same revision: a client never sees a status without its summary.

It mirrors the entry so a write costs no read: the ServiceActor is the only writer of everything
the summary reads (``statusInfo``, ``tasks``, ``currentDependencies``) but ``stateInfo``, which the
services manager writes and then tells the ServiceActor (``LifecycleChanged``): :meth:`reload`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from startos.actors.patching import PatchError, apply_patch
from startos.protocol.owners import service_owner
from startos.protocol.status import summarize
from startos.protocol.store import DbApply, DbDump
from startos.supervision import Directory

__all__ = ["OwnEntry"]


@dataclass
class OwnEntry:
    """``/public/packageData/<package_id>``: read once, then written (and mirrored) by its owner."""

    directory: Directory
    package_id: str
    value: dict[str, Any] = field(default_factory=dict)

    @property
    def pointer(self) -> str:
        return f"/public/packageData/{self.package_id}"

    @property
    def owner(self) -> str:
        return service_owner(self.package_id)

    def reload(self) -> dict[str, Any]:
        """Read the entry as committed now ({} when it is gone)."""
        value = self.directory.ask("store", DbDump(pointer=self.pointer)).value
        self.value = value if isinstance(value, dict) else {}
        return self.value

    def patch(self, ops: list[dict[str, Any]]) -> int:
        """Apply ``ops`` (paths in this entry) with the summary they lead to; the revision.

        A refused patch (``PatchError``, naming the path) changes nothing, and the mirror is read
        again.
        """
        after: dict[str, Any] | None
        try:
            doc = apply_patch({"public": {"packageData": {self.package_id: self.value}}}, ops)
            after = doc["public"]["packageData"][self.package_id]
        except (PatchError, KeyError, TypeError):
            after = None  # the mirror is behind: the store decides, and the mirror is read again
        if after is not None and isinstance(after.get("statusInfo"), dict):
            summary = summarize(after)
            if summary != after["statusInfo"].get("summary"):
                ops = [*ops, {"op": "add", "path": f"{self.pointer}/statusInfo/summary", "value": summary}]
                after = {**after, "statusInfo": {**after["statusInfo"], "summary": summary}}
        try:
            revision = int(self.directory.ask("store", DbApply(patch=ops, owner=self.owner)) or 0)
        except PatchError:
            self.reload()
            raise
        if after is None:
            self.reload()
        else:
            self.value = after
        return revision

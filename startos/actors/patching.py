"""RFC 6902 on an immutable tree, and per-subscriber views of a patch.

The store never mutates a committed document. Before each operation it shallow-copies only the
containers on the operation's path (path copying, as persistent data structures do), then lets
the ``jsonpatch`` library apply the operation in place on those fresh copies. So:

* a failing patch leaves the committed tree untouched: atomicity for free, no deep copy;
* a dump hands out the committed tree itself, and it stays valid while later patches land;
* the cost of a patch is its paths' depth, not the tree's size.

``jsonpatch`` does the standard's semantics; only the copying and the view filtering below are
ours, because no library offers them.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind
from startos.protocol.limits import value_depth_exceeds

_MISSING = object()


class PatchError(StartOSError):
    """Raised when a patch cannot apply (a failed test, a missing path, a malformed op)."""

    kind = ErrorKind.DATABASE


def _describe(index: int, op: dict[str, Any]) -> str:
    return f"operation {index} ({op.get('op')} {op.get('path')!r})"


def _safe(exc: Exception) -> str:
    """The library's message without the values it quotes.

    jsonpointer names the whole parent object ("member 'x' not found in {...}") and jsonpatch's
    test failure the value it found: either may hold a /private secret, and these messages reach
    logs and clients. ``raise ... from None`` below keeps the original out of tracebacks too.
    """
    text = str(exc)
    cut = text.find(" not found in ")
    if cut != -1:
        text = text[:cut] + " not found"
    return text if len(text) <= 200 else text[:199] + "…"


def apply_patch(doc: Any, ops: list[dict[str, Any]], *, max_depth: int | None = None) -> Any:
    """Return a new tree with ``ops`` applied; ``doc`` is never modified.

    With ``max_depth``, an operation that would nest the tree deeper than that many levels (the
    root container is level 1) is refused before it applies.
    """
    owned: set[int] = set()
    new = doc
    for index, op in enumerate(ops):
        if not isinstance(op, dict) or "path" not in op or "op" not in op:
            raise PatchError(f"{_describe(index, op if isinstance(op, dict) else {})} is malformed")
        try:
            if max_depth is not None:
                _check_depth(new, index, op, max_depth)
            new = _own_path(new, op["path"], owned)
            if "from" in op and op["op"] in ("move", "copy"):
                new = _own_path(new, op["from"], owned)
            new = jsonpatch.JsonPatch([op]).apply(new, in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            raise PatchError(f"{_describe(index, op)} failed its test: the value there differs") from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise PatchError(f"{_describe(index, op)} cannot apply: {_safe(exc)}") from None
        except (TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
            raise PatchError(f"{_describe(index, op)} is invalid: {_safe(exc)}") from None
        if isinstance(new, dict | list):
            owned.add(id(new))
    return new


def _check_depth(doc: Any, index: int, op: dict[str, Any], max_depth: int) -> None:
    kind = op["op"]
    if kind in ("add", "replace"):
        value = op.get("value")
    elif kind in ("copy", "move") and isinstance(op.get("from"), str):
        value = resolve_or_missing(doc, op["from"])
    else:
        return
    path = op["path"]
    segments = path.count("/") if isinstance(path, str) else 0
    if segments >= max_depth or value_depth_exceeds(value, max_depth - segments):
        raise PatchError(f"{_describe(index, op)} would nest the state tree deeper than {max_depth} levels")


def _own_path(root: Any, pointer: str, owned: set[int]) -> Any:
    """Copy every container from ``root`` down to the parent of ``pointer`` unless owned."""
    parts = jsonpointer.JsonPointer(pointer).parts
    if not parts:
        return root
    root = _own(root, owned)
    current = root
    for part in parts[:-1]:
        key: Any = part
        if isinstance(current, list):
            if not part.isdigit():
                return root  # let jsonpatch report the bad index
            key = int(part)
            if key >= len(current):
                return root
        elif not isinstance(current, dict) or part not in current:
            return root
        child = current[key]
        if not isinstance(child, dict | list):
            return root
        child = _own(child, owned)
        current[key] = child
        current = child
    return root


def _own(value: Any, owned: set[int]) -> Any:
    if id(value) in owned:
        return value
    fresh = dict(value) if isinstance(value, dict) else list(value)
    owned.add(id(fresh))
    return fresh


def resolve(doc: Any, pointer: str) -> Any:
    """The value at ``pointer``, or raise ``PatchError`` naming the pointer."""
    try:
        return jsonpointer.resolve_pointer(doc, pointer)
    except jsonpointer.JsonPointerException as exc:
        raise PatchError(f"nothing at {pointer!r}: {_safe(exc)}") from None


def resolve_or_missing(doc: Any, pointer: str) -> Any:
    return jsonpointer.resolve_pointer(doc, pointer, _MISSING)


def check_pointer(pointer: str) -> None:
    """Raise ``PatchError`` if ``pointer`` is not a valid RFC 6901 pointer."""
    try:
        jsonpointer.JsonPointer(pointer)
    except jsonpointer.JsonPointerException as exc:
        raise PatchError(f"invalid JSON pointer {pointer!r}: {_safe(exc)}") from None


def is_under(path: str, prefix: str) -> bool:
    """True if ``path`` is ``prefix`` or inside it (escaped pointers compare segment-wise)."""
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def view_patch(ops: list[dict[str, Any]], pointer: str, doc_after: Any) -> list[dict[str, Any]]:
    """The part of a revision that a subscriber of ``pointer`` sees, with relative paths.

    Operations inside the pointer are re-rooted; operations elsewhere are dropped; ``test``
    operations change nothing and are dropped. When an operation touches an ancestor of the
    pointer, or moves/copies across its edge, the view becomes one ``replace`` of the whole
    subscribed value as it stands after the revision.
    """
    if pointer == "":
        return [op for op in ops if op["op"] != "test"]
    cut = len(pointer)
    out: list[dict[str, Any]] = []
    for op in ops:
        kind = op["op"]
        if kind == "test":
            continue
        path = op["path"]
        source = op.get("from") if kind in ("move", "copy") else None
        inside = is_under(path, pointer)
        if inside and path != pointer and (source is None or is_under(source, pointer)):
            if source is not None and source == pointer:
                return _whole(pointer, doc_after)
            moved = dict(op)
            moved["path"] = path[cut:]
            if source is not None:
                moved["from"] = source[cut:]
            out.append(moved)
            continue
        touches_ancestor = is_under(pointer, path)
        source_inside = source is not None and is_under(source, pointer)
        if touches_ancestor or inside or (kind == "move" and source_inside):
            return _whole(pointer, doc_after)
    return out


def _whole(pointer: str, doc_after: Any) -> list[dict[str, Any]]:
    value = resolve_or_missing(doc_after, pointer)
    return [{"op": "replace", "path": "", "value": None if value is _MISSING else value}]

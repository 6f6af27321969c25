"""Turn msgspec validation errors into one-line :class:`ManifestError` messages.

msgspec reports ``Expected `str` of length <= 160 - at `$.description.short[...]```: the rule
in its own words, and a path where map keys are hidden behind ``[...]``. Users need the field
(``description.short.de``) and the rule in plain words. The key behind a ``[...]`` is found by
converting the document again with that map cut down to one key at a time: the key whose
entry alone reproduces the same error is the culprit. This runs only on the error path.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

from startos.s9pk.errors import ManifestError

__all__ = ["manifest_error"]

_LOCATED = re.compile(r"^(?P<message>.*?) - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`$", re.S)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[(\.\.\.)\]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HIDDEN = object()  # stands for a "[...]" segment until its key is found

# Human words for the patterns the manifest types use (keyed by the regex msgspec quotes).
_PATTERN_RULES = {
    r"^[a-z0-9]+(-[a-z0-9]+)*$": "must be lowercase letters and digits in groups joined by"
    " single hyphens (like my-service)",
    r"^(BACKUP|[a-z0-9]+(-[a-z0-9]+)*)$": "must be BACKUP or lowercase letters and digits in"
    " groups joined by single hyphens (like main)",
    r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$": "must be an absolute URL (like https://example.com)",
}
_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
    "object": "an object",
    "array": "an array",
}

Segment = str | int
Converter = Callable[[Any], object]


def manifest_error(
    error: msgspec.ValidationError, document: dict[str, Any], root: type, convert: Converter
) -> ManifestError:
    """A :class:`ManifestError` naming the field (as a JSON path) and the rule ``error`` reports.

    ``document`` is the decoded manifest that failed, ``root`` the type it was converted to and
    ``convert`` the conversion that failed (called again to find hidden map keys).
    """
    text = str(error)
    located = _LOCATED.match(text)
    message = located.group("message") if located else text
    about_key = bool(located and located.group("key"))
    hidden_path = _segments(located.group("path")) if located else []

    path: list[Segment] = []
    for segment in hidden_path:
        if segment is _HIDDEN:
            key = _culprit(document, path, text, convert)
            if key is None:  # cannot happen with msgspec's per-entry errors; stay truthful
                path.append("*")
                break
            document = _restricted(document, path, key)
            path.append(key)
        else:
            assert isinstance(segment, str | int)
            path.append(segment)
    bad_key = _culprit(document, path, text, convert) if about_key else None

    rule, field = _rule(message, root, document, path, bad_key)
    if field is not None:
        path.append(field)
    where = _render(path) or "manifest"
    return ManifestError(f"manifest: {where}: {rule}", details={"field": where, "rule": rule})


def _segments(path: str) -> list[object]:
    segments: list[object] = []
    for match in _SEGMENT.finditer(path):
        name, index, hidden = match.groups()
        if hidden:
            segments.append(_HIDDEN)
        elif index is not None:
            segments.append(int(index))
        else:
            segments.append(name)
    return segments


def _lookup(document: Any, path: list[Segment]) -> Any:
    value = document
    for segment in path:
        try:
            value = value[segment]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _restricted(document: Any, path: list[Segment], key: str) -> Any:
    # A copy of the document, shallow along ``path``, where the map at ``path`` holds only ``key``.
    if not path:
        return {key: document[key]}
    head, rest = path[0], path[1:]
    copy: Any = list(document) if isinstance(document, list) else dict(document)
    copy[head] = _restricted(document[head], rest, key)
    return copy


def _culprit(document: Any, path: list[Segment], text: str, convert: Converter) -> str | None:
    container = _lookup(document, path)
    if not isinstance(container, dict):
        return None
    for key in container:
        try:
            convert(_restricted(document, path, key))
        except msgspec.ValidationError as again:
            if str(again) == text:
                return str(key)
    return None


def _rule(message: str, root: type, document: Any, path: list[Segment], bad_key: str | None) -> tuple[str, str | None]:
    """The rule in plain words, and a field name to append to the path when msgspec gave one."""
    value = _lookup(document, path)
    if bad_key is not None:
        return f"key {bad_key!r} {_pattern_or(message, 'is not allowed: ' + message)}", None
    if match := re.match(r"Object missing required field `(.+)`$", message):
        return "is required but missing", match.group(1)
    if match := re.match(r"Object contains unknown field `(.+)`$", message):
        return _unknown_field(match.group(1), _known_fields(_type_at(root, path))), match.group(1)
    if match := re.match(r"Expected `str` of length <= (\d+)$", message):
        got = f", got {len(value)}" if isinstance(value, str) else ""
        return f"must be at most {match.group(1)} characters long{got}", None
    if message.startswith("Expected `str` matching regex"):
        return f"{_pattern_or(message, message)}, got {_short(value)}", None
    if match := re.match(r"Expected `(int|float)` (>=|<=|>|<) (-?\d+)$", message):
        return f"must be {match.group(2)} {match.group(3)}, got {_short(value)}", None
    if match := re.match(r"Expected `(.+)`, got `(.+)`$", message):
        return f"must be {_kind(match.group(1))}, got {_kind(match.group(2))}", None
    if message.startswith("Invalid enum value"):
        allowed = _literals(_type_at(root, path))
        return f"must be {allowed}, got {_short(value)}", None
    return message, None


def _unknown_field(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"is not a known field; did you mean {close[0]!r}?"
    if known:
        return f"is not a known field (known here: {', '.join(known)})"
    return "is not a known field"


def _pattern_or(message: str, fallback: str) -> str:
    match = re.match(r"Expected `str` matching regex '(.*)'$", message)
    if match is None:
        return fallback
    quoted = match.group(1)
    for pattern, rule in _PATTERN_RULES.items():
        # msgspec quotes the pattern with repr-style escapes (a backslash comes out doubled).
        if quoted in (pattern, repr(pattern)[1:-1]):
            return rule
    return f"must match {quoted}"


def _kind(spec: str) -> str:
    return " or ".join(_KINDS.get(part.strip(), part.strip()) for part in spec.split("|"))


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if value is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


def _render(path: list[Segment]) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif _PLAIN_KEY.fullmatch(segment):
            out += f".{segment}" if out else segment
        else:
            out += f"[{json.dumps(segment, ensure_ascii=False)}]"
    return out


def _members(kind: Any) -> list[Any]:
    # A type's alternatives with Annotated constraints stripped: X | Y | None -> [X, Y, None].
    origin = get_origin(kind)
    if origin is Annotated:
        return _members(get_args(kind)[0])
    if origin is Union or isinstance(kind, types.UnionType):
        return [member for arg in get_args(kind) for member in _members(arg)]
    return [kind]


def _type_at(root: Any, path: list[Segment]) -> Any:
    kind = root
    for segment in path:
        kind = _step(kind, segment)
        if kind is None:
            return None
    return kind


def _step(kind: Any, segment: Segment) -> Any:
    members = _members(kind)
    if isinstance(segment, str):
        for member in members:
            if isinstance(member, type) and issubclass(member, msgspec.Struct):
                for info in msgspec.structs.fields(member):
                    if info.encode_name == segment:
                        return info.type
        for member in members:
            if get_origin(member) is dict:
                return get_args(member)[1]
        return None
    for member in members:
        if get_origin(member) in (tuple, list, frozenset, set):
            return get_args(member)[0]
    return None


def _known_fields(kind: Any) -> list[str]:
    for member in _members(kind):
        if isinstance(member, type) and issubclass(member, msgspec.Struct):
            return [info.encode_name for info in msgspec.structs.fields(member)]
    return []


def _literals(kind: Any) -> str:
    options: list[str] = []
    for member in _members(kind):
        if get_origin(member) is Literal:
            options.extend(json.dumps(arg) for arg in get_args(member))
        elif isinstance(member, type) and issubclass(member, msgspec.Struct):
            options.append("an object")
    return " or ".join(options) if options else "one of the allowed values"

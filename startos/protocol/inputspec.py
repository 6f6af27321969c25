"""Action input specs: the form a package declares for an action, and the rules its values follow.

An :data:`InputSpec` maps field ids to :data:`ValueSpec` records (insertion order = form order).
``ValueSpec`` is a union tagged on ``"type"`` with camelCase keys, the shape StartOS sends to its
dashboard, so ``msgspec.json.encode(spec)`` is what a form renderer reads and :func:`decode_spec`
turns that JSON (or the same builtins from package code) back into records.

The functions are pure: :func:`spec_problem` finds a declaration mistake, :func:`default_input`
builds a form's starting value, :func:`validate_input` checks and normalizes a submitted value
(raising :class:`InputError`), and :func:`matches_partial` tells whether a task's prefilled input is
already in place. Validation lives in :mod:`startos.protocol._inputspec_validate`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind
from startos.protocol.limits import decode_json

__all__ = [
    "FIELD_ID_PATTERN",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_TEXT",
    "ColorSpec",
    "DatetimeSpec",
    "Generate",
    "InputError",
    "InputSpec",
    "ListSpec",
    "MultiselectSpec",
    "NumberSpec",
    "ObjectSpec",
    "Pattern",
    "SelectSpec",
    "SpecError",
    "TextSpec",
    "TextareaSpec",
    "ToggleSpec",
    "UnionSpec",
    "ValueSpec",
    "Variant",
    "decode_spec",
    "default_input",
    "generate_text",
    "matches_partial",
    "missing_value",
    "parse_charset",
    "shape_problem",
    "spec_problem",
    "validate_input",
]

#: A field id (a key of an :data:`InputSpec` or a union variant).
FIELD_ID_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_-]*$"
FIELD_ID_MAX = 64
#: Longest text accepted, even when the spec sets no ``maxLength`` (keeps a form post small).
MAX_TEXT = 65536
#: Deepest nesting of objects, unions and lists in a spec.
MAX_DEPTH = 16
#: Most list and multiselect items in one whole input value.
MAX_ITEMS = 10_000

FieldId = Annotated[str, msgspec.Meta(pattern=FIELD_ID_PATTERN, max_length=FIELD_ID_MAX)]
_Num = int | float


class InputError(StartOSError):
    """Raised when a submitted input value breaks its spec; nothing was changed.

    ``path`` locates the value in the data (``smtp.port``, ``peers[2].host``); ``field_name`` is the
    same place in the form's words (``SMTP \u203a Port``); ``problem`` is what is wrong. ``str()`` is the
    one line ``"<field_name>: <problem>"``. Values of masked fields never appear in it.
    """

    # The JSON-RPC "Invalid params" code: the issue-6 contract answers a bad action input with -32602.
    kind = ErrorKind.INVALID_PARAMS

    def __init__(self, path: str, problem: str, *, field_name: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.field_name = field_name or path or "Input"
        super().__init__(f"{self.field_name}: {problem}")


class SpecError(StartOSError):
    """Raised when an input spec is malformed: it does not decode, or :func:`spec_problem` finds a mistake.

    The package declared it, so the package is at fault (StartOS's ValidateS9pk kind, like the SDK's
    ``DescriptionError``).
    """

    kind = ErrorKind.VALIDATE_S9PK


class Pattern(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A rule a text must match as a whole (``re.fullmatch``); ``description`` is the error shown otherwise.

    ``regex`` is Python ``re`` syntax (StartOS packages write JavaScript regexes; the common subset is the same).
    """

    regex: str
    description: str


class Generate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to make a random starting text: ``len`` characters from ``charset``.

    ``charset`` uses StartOS's syntax: comma-separated single characters or ``x-y`` ranges, e.g. ``"a-z,A-Z,0-9"``.
    """

    charset: str
    len: int


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel", tag_field="type"):
    """What every field has: a label, and optional help and warning texts."""

    name: str
    description: str | None = None
    warning: str | None = None


class _TextLike(_Spec, frozen=True, kw_only=True):
    """What both kinds of text fields have."""

    required: bool = False
    default: str | None = None
    placeholder: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    patterns: list[Pattern] = []
    masked: bool = False


class TextSpec(_TextLike, frozen=True, kw_only=True, tag="text"):
    """One line of text; the value is a string or null (an empty string counts as null)."""

    inputmode: Literal["text", "email", "tel", "url"] = "text"
    generate: Generate | None = None


class TextareaSpec(_TextLike, frozen=True, kw_only=True, tag="textarea"):
    """Several lines of text; the value is a string or null."""


class NumberSpec(_Spec, frozen=True, kw_only=True, tag="number"):
    """A number or null; ``step`` counts from ``min`` (or 0); ``integer`` makes the value an int."""

    required: bool = False
    default: _Num | None = None
    placeholder: str | None = None
    min: _Num | None = None
    max: _Num | None = None
    step: _Num | None = None
    integer: bool = False
    units: str | None = None


class ToggleSpec(_Spec, frozen=True, kw_only=True, tag="toggle"):
    """A switch; the value is true or false."""

    default: bool = False


class SelectSpec(_Spec, frozen=True, kw_only=True, tag="select"):
    """One choice among ``values`` (key -> label); the value is a key or null."""

    values: dict[str, str]
    default: str | None = None
    required: bool = True


class MultiselectSpec(_Spec, frozen=True, kw_only=True, tag="multiselect"):
    """Several distinct choices among ``values``; the value is a list of keys."""

    values: dict[str, str]
    default: list[str] = []
    min_length: int | None = None
    max_length: int | None = None


class ObjectSpec(_Spec, frozen=True, kw_only=True, tag="object"):
    """A group of fields; the value is an object of their values."""

    spec: dict[FieldId, ValueSpec]


class ListSpec(_Spec, frozen=True, kw_only=True, tag="list"):
    """A list of texts or of objects, each item following ``spec`` (whose ``name`` labels one item)."""

    spec: TextSpec | ObjectSpec
    default: list[Any] = []
    min_length: int | None = None
    max_length: int | None = None


class Variant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One branch of a union: its label and its fields."""

    name: str
    spec: dict[FieldId, ValueSpec]


class UnionSpec(_Spec, frozen=True, kw_only=True, tag="union"):
    """A choice of one variant plus that variant's fields: ``{"selection": key, "value": {...}}`` or null."""

    variants: dict[FieldId, Variant]
    default: str | None = None
    required: bool = True


class ColorSpec(_Spec, frozen=True, kw_only=True, tag="color"):
    """A color ``"#rrggbb"`` (stored lowercase) or null."""

    required: bool = False
    default: str | None = None


class DatetimeSpec(_Spec, frozen=True, kw_only=True, tag="datetime"):
    """A date, a time or a local date-time as ISO text, per ``inputmode``, or null; ``min``/``max`` in the same mode."""

    required: bool = False
    default: str | None = None
    inputmode: Literal["date", "time", "datetime-local"] = "datetime-local"
    min: str | None = None
    max: str | None = None


ValueSpec = (
    TextSpec
    | TextareaSpec
    | NumberSpec
    | ToggleSpec
    | SelectSpec
    | MultiselectSpec
    | ListSpec
    | ObjectSpec
    | UnionSpec
    | ColorSpec
    | DatetimeSpec
)
"""One field of a form, told apart by its ``type``."""

InputSpec = dict[FieldId, ValueSpec]
"""A form: field id -> field spec, in display order."""


_FIELD_ID = re.compile(FIELD_ID_PATTERN)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _nested_specs(item: dict[Any, Any], where: str) -> list[tuple[str, object]]:
    """The field maps inside one field's builtins (object, union variants, list of objects), with their paths."""
    kind, inner = item.get("type"), item.get("spec")
    if kind == "object":
        return [(where, inner)]
    if kind == "list" and isinstance(inner, dict) and inner.get("type") == "object":
        return [(f"{where}[]", inner.get("spec"))]
    if kind == "union" and isinstance(item.get("variants"), dict):
        return [(f"{where}.{k}", v.get("spec")) for k, v in item["variants"].items() if isinstance(v, dict)]
    return []


def shape_problem(obj: object, path: str = "") -> str | None:
    """Why builtins do not decode into an :data:`InputSpec`, as one line naming the field, or None.

    msgspec alone says ``at `$[...]``` for dict values; this walks down to the field at fault.
    """
    if not isinstance(obj, dict):
        try:
            msgspec.convert(obj, InputSpec)
        except msgspec.ValidationError as exc:
            return f"{path or 'spec'}: {_one_line(str(exc))}"
        return None
    for key, item in obj.items():
        where = f"{path}.{key}" if path else str(key)
        if not isinstance(key, str) or len(key) > FIELD_ID_MAX or _FIELD_ID.match(key) is None:
            return f"{where}: a field id starts with a letter and has only letters, digits, _ and - (at most 64)"
        try:
            msgspec.convert(item, ValueSpec)
        except msgspec.ValidationError as exc:
            if isinstance(item, dict):
                for inner_path, inner in _nested_specs(item, where):
                    if (problem := shape_problem(inner, inner_path)) is not None:
                        return problem
            text = _one_line(str(exc)).replace(" - at `$`", "").replace("`$.", "`")
            return f"{where}: {text}"
    return None


def decode_spec(obj: object, *, check: bool = True) -> InputSpec:
    """Turn builtins (decoded JSON or MessagePack, or dicts from package code) into an :data:`InputSpec`.

    JSON text (``str``/``bytes``) is decoded first. Raises :class:`SpecError` with one line naming the
    field when the shape is wrong, or (with ``check``) when :func:`spec_problem` finds a declaration mistake.
    """
    if isinstance(obj, (bytes, bytearray, memoryview, str)):
        try:
            obj = decode_json(obj, what="the input spec")
        except msgspec.DecodeError as exc:
            raise SpecError(f"invalid input spec: {_one_line(str(exc))}") from exc
    try:
        spec = msgspec.convert(obj, InputSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(f"invalid input spec: {shape_problem(obj) or _one_line(str(exc))}") from exc
    if check and (problem := spec_problem(spec)) is not None:
        raise SpecError(f"invalid input spec: {problem}")
    return spec


# ---------------------------------------------------------------------------------------------------------------------
# Random text (StartOS's charset syntax)


def parse_charset(charset: str) -> list[tuple[str, str]]:
    """Parse StartOS's charset syntax into inclusive ``(first, last)`` ranges; raises ``ValueError``.

    Items are separated by commas; an item is one character or ``x-y``. A comma or a dash where an item
    starts is taken literally (``"a-z,-,,"`` is letters, dash and comma), as in StartOS's parser.
    """
    ranges: list[tuple[str, str]] = []
    start: str | None = None
    end: str | None = None
    in_range = False

    def push(first: str, last: str) -> None:
        if ord(first) > ord(last):
            raise ValueError(f"range {first}-{last} is backwards")
        ranges.append((first, last))

    for ch in charset:
        if ch == ",":
            if start is not None and end is not None:
                push(start, end)
                start, end, in_range = None, None, False
            elif start is not None and not in_range:
                push(start, start)
                start = None
            elif start is not None:
                end = ","
            else:
                start = ","
        elif ch == "-" and start is not None and not in_range:
            in_range = True
        elif start is None:
            start = ch
        elif in_range and end is None:
            end = ch
        else:
            raise ValueError(f"unexpected {ch!r} in charset {charset!r} (separate items with commas)")
    if start is not None:
        if in_range and end is None:
            raise ValueError(f"charset {charset!r} ends inside a range")
        push(start, end if end is not None else start)
    if not ranges:
        raise ValueError("charset is empty")
    return ranges


def generate_text(gen: Generate) -> str:
    """A random text for ``gen`` from the ``secrets`` module; raises ``ValueError`` for a bad charset."""
    ranges = parse_charset(gen.charset)
    sizes = [ord(last) - ord(first) + 1 for first, last in ranges]
    total = sum(sizes)
    out = []
    for _ in range(gen.len):
        n = secrets.randbelow(total)
        for (first, _last), size in zip(ranges, sizes, strict=True):
            if n < size:
                out.append(chr(ord(first) + n))
                break
            n -= size
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------------------
# Starting values and partial matches


def _default_value(vs: ValueSpec, generate: bool) -> Any:
    if isinstance(vs, TextSpec):
        if vs.default is None and vs.generate is not None and generate:
            return generate_text(vs.generate)
        return vs.default
    if isinstance(vs, NumberSpec):
        if vs.default is not None and vs.integer and float(vs.default).is_integer():
            return int(vs.default)
        return vs.default
    if isinstance(vs, ColorSpec):
        return vs.default.lower() if vs.default is not None else None
    if isinstance(vs, (MultiselectSpec, ListSpec)):
        return msgspec.convert(msgspec.to_builtins(vs.default), list)  # a deep copy the caller may change
    if isinstance(vs, ObjectSpec):
        return _defaults(vs.spec, generate)
    if isinstance(vs, UnionSpec):
        if vs.default is None or vs.default not in vs.variants:
            return None
        return {"selection": vs.default, "value": _defaults(vs.variants[vs.default].spec, generate)}
    return vs.default  # textarea, toggle, select, datetime


def _defaults(spec: Mapping[str, ValueSpec], generate: bool) -> dict[str, Any]:
    return {key: _default_value(vs, generate) for key, vs in spec.items()}


def default_input(spec: InputSpec) -> dict[str, Any]:
    """The form's starting value: every field's default (random text where the spec says ``generate``)."""
    return _defaults(spec, True)


def missing_value(vs: ValueSpec) -> Any:
    """What a field absent from a submitted value stands for: its default, never a generated text."""
    return _default_value(vs, False)


def _same(a: Any, b: Any) -> bool:
    # Python says True == 1 and 1 == 1.0; a form value is a bool or a number, never both.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, list, tuple)) or isinstance(b, (dict, list, tuple)):
        return False
    return bool(a == b)


def matches_partial(current: Mapping[str, Any] | None, partial: Mapping[str, Any]) -> bool:
    """True when every key of ``partial`` has the same value in ``current``.

    Objects (and a union's ``{"selection", "value"}``) are compared key by key, recursively; lists and
    scalars as a whole. A task stays active while its prefilled ``partial`` does not match.
    """
    if not isinstance(current, Mapping):
        return False
    for key, want in partial.items():
        if key not in current:
            return False
        have = current[key]
        if isinstance(want, Mapping):
            if not matches_partial(have, want):
                return False
        elif not _same(have, want):
            return False
    return True


# ---------------------------------------------------------------------------------------------------------------------
# Checks (implemented in _inputspec_validate, imported on first use to keep this module small)


def spec_problem(spec: InputSpec) -> str | None:
    """The first declaration mistake in ``spec`` as one line naming the field path, or None when it is sound.

    Examples: a default that breaks its own rules or is not among the choices, ``min`` above ``max``, a
    regex that does not compile, a bad charset, a field id that breaks ``FIELD_ID_PATTERN``, nesting
    deeper than ``MAX_DEPTH``.
    """
    from startos.protocol._inputspec_validate import spec_problem as impl

    return impl(spec)


def validate_input(spec: InputSpec, value: object) -> dict[str, Any]:
    """Check a submitted value against ``spec`` and return it normalized, or raise :class:`InputError`.

    Normalized means: absent fields filled with their defaults, empty texts as null, integer numbers as
    ``int``, colors lowercase, dates and times in ISO form. Types are strict (``"5"`` is not a number,
    ``1`` is not a toggle) and unknown keys are refused.
    """
    from startos.protocol._inputspec_validate import validate_input as impl

    return impl(spec, value)

"""Building an action's input form in package code.

Each constructor returns the wire record of :mod:`startos.protocol.inputspec`; :func:`spec` assembles
them into an :data:`InputSpec` and checks it, so a mistake fails at the line that declared it::

    from startos.sdk.input import Number, Object, Pattern, Select, Text, spec

    smtp_input = spec(
        server=Text("Server", required=True, placeholder="smtp.example.com"),
        port=Number("Port", default=587, min=1, max=65535, integer=True),
        security=Select("Security", {"tls": "TLS", "starttls": "STARTTLS"}, default="starttls"),
        password=Text("Password", masked=True, generate=("a-z,A-Z,0-9", 22)),
        sender=Object("Sender", {"name": Text("Name"), "email": Text("Email", inputmode="email")}),
    )

Field ids are the keyword names (use a dict for ids with ``-``); values arrive as plain JSON types:
texts as ``str``, numbers as ``int`` (``integer=True``) or ``float``, unions as
``{"selection": key, "value": {...}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from startos.protocol.inputspec import (
    ColorSpec,
    DatetimeSpec,
    Generate,
    InputSpec,
    ListSpec,
    MultiselectSpec,
    NumberSpec,
    ObjectSpec,
    Pattern,
    SelectSpec,
    TextareaSpec,
    TextSpec,
    ToggleSpec,
    UnionSpec,
    ValueSpec,
    Variant,
    default_input,
    spec_problem,
    validate_input,
)
from startos.sdk.errors import DescriptionError

__all__ = [
    "Color",
    "DateTime",
    "Generate",
    "InputSpec",
    "List",
    "MultiSelect",
    "Number",
    "Object",
    "Pattern",
    "Select",
    "Text",
    "Textarea",
    "Toggle",
    "Union",
    "ValueSpec",
    "default_input",
    "spec",
    "validate_input",
]

PatternLike = Pattern | tuple[str, str]
"""A :class:`Pattern`, or ``(regex, description)``."""


def _patterns(patterns: Iterable[PatternLike]) -> list[Pattern]:
    return [p if isinstance(p, Pattern) else Pattern(*p) for p in patterns]


def Text(  # capitalized like the field kinds (and StartOS's Value.text), since they read as records
    name: str,
    *,
    required: bool = False,
    default: str | None = None,
    placeholder: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    patterns: Iterable[PatternLike] = (),
    masked: bool = False,
    inputmode: Literal["text", "email", "tel", "url"] = "text",
    description: str | None = None,
    warning: str | None = None,
    generate: Generate | tuple[str, int] | None = None,
) -> TextSpec:
    """A one-line text field. ``generate=("a-z,A-Z,0-9", 22)`` starts the form with a random text."""
    if isinstance(generate, tuple):
        generate = Generate(*generate)
    return TextSpec(
        name=name,
        description=description,
        warning=warning,
        required=required,
        default=default,
        placeholder=placeholder,
        min_length=min_length,
        max_length=max_length,
        patterns=_patterns(patterns),
        masked=masked,
        inputmode=inputmode,
        generate=generate,
    )


def Textarea(
    name: str,
    *,
    required: bool = False,
    default: str | None = None,
    placeholder: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    patterns: Iterable[PatternLike] = (),
    masked: bool = False,
    description: str | None = None,
    warning: str | None = None,
) -> TextareaSpec:
    """A multi-line text field."""
    return TextareaSpec(
        name=name,
        description=description,
        warning=warning,
        required=required,
        default=default,
        placeholder=placeholder,
        min_length=min_length,
        max_length=max_length,
        patterns=_patterns(patterns),
        masked=masked,
    )


def Number(
    name: str,
    *,
    required: bool = False,
    default: float | None = None,
    placeholder: str | None = None,
    min: float | None = None,
    max: float | None = None,
    step: float | None = None,
    integer: bool = False,
    units: str | None = None,
    description: str | None = None,
    warning: str | None = None,
) -> NumberSpec:
    """A number field; ``integer=True`` makes the value an ``int``; ``step`` counts from ``min`` (or 0)."""
    return NumberSpec(
        name=name,
        description=description,
        warning=warning,
        required=required,
        default=default,
        placeholder=placeholder,
        min=min,
        max=max,
        step=step,
        integer=integer,
        units=units,
    )


def Toggle(
    name: str, *, default: bool = False, description: str | None = None, warning: str | None = None
) -> ToggleSpec:
    """An on/off switch; the value is ``True`` or ``False``."""
    return ToggleSpec(name=name, description=description, warning=warning, default=default)


def Select(
    name: str,
    values: Mapping[str, str],
    *,
    default: str | None = None,
    required: bool = True,
    description: str | None = None,
    warning: str | None = None,
) -> SelectSpec:
    """One choice among ``values`` (key -> label, in display order); the value is the key."""
    return SelectSpec(
        name=name, description=description, warning=warning, values=dict(values), default=default, required=required
    )


def MultiSelect(
    name: str,
    values: Mapping[str, str],
    *,
    default: Iterable[str] = (),
    min_length: int | None = None,
    max_length: int | None = None,
    description: str | None = None,
    warning: str | None = None,
) -> MultiselectSpec:
    """Several distinct choices among ``values``; the value is a list of keys."""
    return MultiselectSpec(
        name=name,
        description=description,
        warning=warning,
        values=dict(values),
        default=list(default),
        min_length=min_length,
        max_length=max_length,
    )


def List(
    name: str,
    spec: TextSpec | ObjectSpec,
    *,
    default: Iterable[Any] = (),
    min_length: int | None = None,
    max_length: int | None = None,
    description: str | None = None,
    warning: str | None = None,
) -> ListSpec:
    """A list of texts (``spec=Text(...)``) or of objects (``spec=Object(...)``); ``spec``'s name labels one item."""
    return ListSpec(
        name=name,
        description=description,
        warning=warning,
        spec=spec,
        default=list(default),
        min_length=min_length,
        max_length=max_length,
    )


def Object(
    name: str, spec: Mapping[str, ValueSpec], *, description: str | None = None, warning: str | None = None
) -> ObjectSpec:
    """A group of fields; the value is a dict of their values."""
    return ObjectSpec(name=name, description=description, warning=warning, spec=dict(spec))


def Union(
    name: str,
    variants: Mapping[str, tuple[str, Mapping[str, ValueSpec]] | Variant],
    *,
    default: str | None = None,
    required: bool = True,
    description: str | None = None,
    warning: str | None = None,
) -> UnionSpec:
    """A choice of variants, each ``key: (label, fields)``; the value is ``{"selection": key, "value": {...}}``."""
    built = {key: v if isinstance(v, Variant) else Variant(name=v[0], spec=dict(v[1])) for key, v in variants.items()}
    return UnionSpec(
        name=name, description=description, warning=warning, variants=built, default=default, required=required
    )


def Color(
    name: str,
    *,
    required: bool = False,
    default: str | None = None,
    description: str | None = None,
    warning: str | None = None,
) -> ColorSpec:
    """A color picker; the value is ``"#rrggbb"`` in lowercase."""
    return ColorSpec(name=name, description=description, warning=warning, required=required, default=default)


def DateTime(
    name: str,
    mode: Literal["date", "time", "datetime-local"] = "datetime-local",
    *,
    required: bool = False,
    default: str | None = None,
    min: str | None = None,
    max: str | None = None,
    description: str | None = None,
    warning: str | None = None,
) -> DatetimeSpec:
    """A date (``"2024-12-31"``), time (``"13:45"``) or local date-time (``"2024-12-31T13:45"``) as ISO text."""
    return DatetimeSpec(
        name=name,
        description=description,
        warning=warning,
        required=required,
        default=default,
        inputmode=mode,
        min=min,
        max=max,
    )


def spec(fields: Mapping[str, ValueSpec] | None = None, /, **more: ValueSpec) -> InputSpec:
    """Assemble a form from ``fields`` and keyword fields (in order) and check it.

    Raises :class:`~startos.sdk.errors.DescriptionError` naming the field when the form has a mistake
    (a default that breaks its own rules, ``min`` above ``max``, a regex that does not compile...).
    """
    out: InputSpec = dict(fields or {})
    for key, value in more.items():
        if key in out:
            raise DescriptionError(f"input spec: field {key!r} is given twice")
        out[key] = value
    if (problem := spec_problem(out)) is not None:
        raise DescriptionError(f"input spec: {problem}")
    return out

"""Checking input values against their spec, and specs against their own rules.

The public names are :func:`startos.protocol.inputspec.validate_input` and
:func:`startos.protocol.inputspec.spec_problem`; this module keeps that one small.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any, NoReturn

import msgspec

from startos.protocol.inputspec import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_TEXT,
    ColorSpec,
    DatetimeSpec,
    InputError,
    InputSpec,
    ListSpec,
    MultiselectSpec,
    NumberSpec,
    ObjectSpec,
    SelectSpec,
    TextareaSpec,
    TextSpec,
    ToggleSpec,
    UnionSpec,
    ValueSpec,
    missing_value,
    parse_charset,
    shape_problem,
)

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_DT_EXAMPLE = {
    "date": "a date like 2024-12-31",
    "time": "a time like 13:45",
    "datetime-local": "a date and time like 2024-12-31T13:45",
}
_SEP = " \u203a "  # U+203A between the labels of a field's path, as the dashboard shows it
_DT_MAX_TEXT = 64  # far longer than any ISO date-time; refuses junk before parsing


@lru_cache(maxsize=512)
def _compile(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _fmt(n: float) -> str:
    if isinstance(n, float) and n.is_integer() and abs(n) < 1e15:
        return str(int(n))
    return repr(n)


def _show(value: object) -> str:
    """A short quoted rendering of a (non-secret) value for a message."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= 40 else text[:39] + "…")


def _choices(keys: Mapping[str, object]) -> str:
    shown = [_show(k) for k in list(keys)[:10]]
    more = len(keys) - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")


class _At:
    """Where a value sits: its data path and its form label path."""

    __slots__ = ("name", "path")

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name

    def key(self, key: str, label: str) -> _At:
        return _At(f"{self.path}.{key}" if self.path else key, f"{self.name}{_SEP}{label}" if self.name else label)

    def index(self, i: int, label: str) -> _At:
        return _At(f"{self.path}[{i}]", f"{self.name}{_SEP}{label}" if self.name else label)

    def fail(self, problem: str) -> NoReturn:
        raise InputError(self.path, problem, field_name=self.name or None)


class _Budget:
    """Items counted across one whole input, so a huge post is refused early."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items = 0

    def take(self, n: int, at: _At) -> None:
        self.items += n
        if self.items > MAX_ITEMS:
            at.fail(f"the input has more than {MAX_ITEMS} list items in total")


# ---------------------------------------------------------------------------------------------------------------------
# Values


def validate_input(spec: InputSpec, value: object) -> dict[str, Any]:
    return _object(spec, value, _At("", ""), _Budget(), 0)


def _object(spec: Mapping[str, ValueSpec], value: object, at: _At, budget: _Budget, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        at.fail(f"is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(value, dict):
        at.fail("must be an object")
    unknown = [k for k in value if k not in spec]
    if unknown:
        listed = ", ".join(_show(k) for k in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        at.fail(f"unknown field{'s' if len(unknown) > 1 else ''} {listed}")
    out: dict[str, Any] = {}
    for key, vs in spec.items():
        item = value[key] if key in value else missing_value(vs)
        out[key] = _value(vs, item, at.key(key, vs.name), budget, depth)
    return out


def _value(vs: ValueSpec, v: object, at: _At, budget: _Budget, depth: int) -> Any:
    if isinstance(vs, (TextSpec, TextareaSpec)):
        return _text(vs, v, at, item=False)
    if isinstance(vs, NumberSpec):
        return _number(vs, v, at)
    if isinstance(vs, ToggleSpec):
        if not isinstance(v, bool):
            at.fail("must be true or false")
        return v
    if isinstance(vs, SelectSpec):
        if v is None:
            if vs.required:
                at.fail("is required")
            return None
        if not isinstance(v, str) or v not in vs.values:
            at.fail(f"must be one of {_choices(vs.values)}")
        return v
    if isinstance(vs, MultiselectSpec):
        return _multiselect(vs, v, at, budget)
    if isinstance(vs, ListSpec):
        return _list(vs, v, at, budget, depth)
    if isinstance(vs, ObjectSpec):
        return _object(vs.spec, v, at, budget, depth + 1)
    if isinstance(vs, UnionSpec):
        return _union(vs, v, at, budget, depth)
    if isinstance(vs, ColorSpec):
        if v is None or v == "":
            if vs.required:
                at.fail("is required")
            return None
        if not isinstance(v, str) or _COLOR.fullmatch(v) is None:
            at.fail("must be a color like #ff8800")
        return v.lower()
    if isinstance(vs, DatetimeSpec):
        return _datetime(vs, v, at)
    at.fail(f"has an unknown kind of field ({type(vs).__name__})")
    return None  # not reached: fail() raises


def _text(vs: TextSpec | TextareaSpec, v: object, at: _At, *, item: bool) -> str | None:
    # The value itself is never put in a message: it may be a password (masked) or simply long.
    if v is None or v == "":
        if vs.required or item:
            at.fail("is required")
        return None
    if not isinstance(v, str):
        at.fail("must be a text")
    cap = min(vs.max_length, MAX_TEXT) if vs.max_length is not None else MAX_TEXT
    if len(v) > cap:
        at.fail(f"must be at most {_plural(cap, 'character')}")
    if vs.min_length is not None and len(v) < vs.min_length:
        at.fail(f"must be at least {_plural(vs.min_length, 'character')}")
    for pattern in vs.patterns:
        if _compile(pattern.regex).fullmatch(v) is None:
            at.fail(pattern.description)
    return v


def _number(vs: NumberSpec, v: object, at: _At) -> int | float | None:
    if v is None:
        if vs.required:
            at.fail("is required")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        at.fail("must be a number")
    if isinstance(v, float) and not math.isfinite(v):
        at.fail("must be a finite number")
    num: int | float = v
    if vs.integer and isinstance(num, float):
        if not num.is_integer():
            at.fail("must be a whole number")
        num = int(num)
    units = f" {vs.units}" if vs.units else ""
    if vs.min is not None and num < vs.min:
        at.fail(f"must be at least {_fmt(vs.min)}{units}")
    if vs.max is not None and num > vs.max:
        at.fail(f"must be at most {_fmt(vs.max)}{units}")
    if vs.step is not None and vs.step > 0 and not _on_step(num, vs.min or 0, vs.step):
        base = vs.min or 0
        where = f"{_fmt(base)} plus a multiple of" if base else "a multiple of"
        at.fail(f"must be {where} {_fmt(vs.step)}{units}")
    return num


def _on_step(num: float, base: float, step: float) -> bool:
    if isinstance(num, int) and isinstance(base, int) and isinstance(step, int):
        return (num - base) % step == 0  # exact, even for big integers
    try:
        k = (num - base) / step
    except OverflowError:
        return False
    return abs(k - round(k)) <= 1e-9 * max(1.0, abs(k))


def _multiselect(vs: MultiselectSpec, v: object, at: _At, budget: _Budget) -> list[str]:
    if not isinstance(v, list):
        at.fail("must be a list of choices")
    budget.take(len(v), at)
    seen: set[str] = set()
    for i, key in enumerate(v):
        if not isinstance(key, str) or key not in vs.values:
            at.index(i, f"#{i + 1}").fail(f"must be one of {_choices(vs.values)}")
        if key in seen:
            at.fail(f"lists {_show(key)} more than once")
        seen.add(key)
    if vs.min_length is not None and len(v) < vs.min_length:
        at.fail(f"must have at least {_plural(vs.min_length, 'choice')}")
    if vs.max_length is not None and len(v) > vs.max_length:
        at.fail(f"must have at most {_plural(vs.max_length, 'choice')}")
    return list(v)


def _list(vs: ListSpec, v: object, at: _At, budget: _Budget, depth: int) -> list[Any]:
    if depth + 1 > MAX_DEPTH:
        at.fail(f"is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(v, list):
        at.fail("must be a list")
    budget.take(len(v), at)
    if vs.max_length is not None and len(v) > vs.max_length:
        at.fail(f"must have at most {_plural(vs.max_length, 'item')}")
    if vs.min_length is not None and len(v) < vs.min_length:
        at.fail(f"must have at least {_plural(vs.min_length, 'item')}")
    inner = vs.spec
    out: list[Any] = []
    for i, item in enumerate(v):
        where = at.index(i, f"{inner.name} {i + 1}")
        if isinstance(inner, TextSpec):
            out.append(_text(inner, item, where, item=True))
        else:
            out.append(_object(inner.spec, item, where, budget, depth + 2))
    return out


def _union(vs: UnionSpec, v: object, at: _At, budget: _Budget, depth: int) -> dict[str, Any] | None:
    if v is None:
        if vs.required:
            at.fail("is required")
        return None
    if not isinstance(v, dict):
        at.fail('must be an object {"selection": ..., "value": {...}}')
    unknown = [k for k in v if k not in ("selection", "value")]
    if unknown:
        at.fail(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(_show(k) for k in unknown[:5])}")
    selection = v.get("selection")
    if not isinstance(selection, str) or selection not in vs.variants:
        _At(f"{at.path}.selection", at.name).fail(f"must be one of {_choices(vs.variants)}")
    variant = vs.variants[selection]
    value = v.get("value", {})
    return {
        "selection": selection,
        "value": _object(variant.spec, value, at.key("value", variant.name), budget, depth + 1),
    }


def _parse_dt(mode: str, text: str) -> date | time | datetime | None:
    """Parse ISO text of one ``inputmode``; None when it is not that (time zones are refused: the form is local)."""
    if len(text) > _DT_MAX_TEXT:
        return None
    try:
        if mode == "date":
            return date.fromisoformat(text)
        if mode == "time":
            t = time.fromisoformat(text)
            return t if t.tzinfo is None else None
        try:
            date.fromisoformat(text)
            return None  # a date alone is not a date and time
        except ValueError:
            pass
        dt = datetime.fromisoformat(text)
        return dt if dt.tzinfo is None else None
    except ValueError:
        return None


def _iso(x: date | time | datetime) -> str:
    if isinstance(x, (datetime, time)) and x.second == 0 and x.microsecond == 0:
        return x.isoformat(timespec="minutes")
    return x.isoformat()


def _datetime(vs: DatetimeSpec, v: object, at: _At) -> str | None:
    if v is None or v == "":
        if vs.required:
            at.fail("is required")
        return None
    parsed = _parse_dt(vs.inputmode, v) if isinstance(v, str) else None
    if parsed is None:
        at.fail(f"must be {_DT_EXAMPLE[vs.inputmode]}")
    low = _parse_dt(vs.inputmode, vs.min) if vs.min is not None else None
    high = _parse_dt(vs.inputmode, vs.max) if vs.max is not None else None
    if low is not None and parsed < low:  # type: ignore[operator]  # same mode, so the same type
        at.fail(f"must not be before {_iso(low)}")
    if high is not None and parsed > high:  # type: ignore[operator]
        at.fail(f"must not be after {_iso(high)}")
    return _iso(parsed)


# ---------------------------------------------------------------------------------------------------------------------
# Specs


class _Bad(Exception):
    """A spec mistake, already one line with its field path."""


def spec_problem(spec: InputSpec) -> str | None:
    # Round-trip through the wire shape first: it checks every type and field id, also for specs built in code.
    try:
        builtins = msgspec.to_builtins(spec)
    except TypeError as exc:
        return f"invalid shape: {' '.join(str(exc).split())}"
    try:
        checked = msgspec.convert(builtins, InputSpec)
    except msgspec.ValidationError as exc:
        return shape_problem(builtins) or f"invalid shape: {' '.join(str(exc).split())}"
    try:
        _check_fields(checked, "", 0)
    except _Bad as exc:
        return str(exc)
    return None


def _check_fields(spec: Mapping[str, ValueSpec], path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Bad(f"{path}: nested more than {MAX_DEPTH} levels deep")
    for key, vs in spec.items():
        where = f"{path}.{key}" if path else key
        if (problem := _value_problem(vs, where, depth)) is not None:
            raise _Bad(f"{where}: {problem}")


def _default_problem(vs: ValueSpec, value: object) -> str | None:
    # No default, or an empty list, is fine even where a value is required: the user fills the form in.
    if value is None or value == []:
        return None
    try:
        _value(vs, value, _At("", ""), _Budget(), 0)
    except InputError as exc:
        return f"default {exc.problem}"
    return None


def _lengths_problem(low: int | None, high: int | None) -> str | None:
    if low is not None and low < 0:
        return "minLength must not be negative"
    if high is not None and high < 0:
        return "maxLength must not be negative"
    if low is not None and high is not None and low > high:
        return f"minLength {low} is above maxLength {high}"
    return None


def _value_problem(vs: ValueSpec, where: str, depth: int) -> str | None:
    if not vs.name.strip():
        return "name is empty"
    if isinstance(vs, (TextSpec, TextareaSpec)):
        return _text_problem(vs)
    if isinstance(vs, NumberSpec):
        return _number_problem(vs)
    if isinstance(vs, (SelectSpec, MultiselectSpec)):
        if not vs.values:
            return "values is empty (give at least one choice)"
        if isinstance(vs, MultiselectSpec):
            if (problem := _lengths_problem(vs.min_length, vs.max_length)) is not None:
                return problem
            if vs.min_length is not None and vs.min_length > len(vs.values):
                return f"minLength {vs.min_length} is more than the {len(vs.values)} choices"
            return _default_problem(vs, vs.default)
        return _default_problem(vs, vs.default)
    if isinstance(vs, ListSpec):
        if (problem := _lengths_problem(vs.min_length, vs.max_length)) is not None:
            return problem
        inner = vs.spec
        if isinstance(inner, ObjectSpec):
            if not inner.name.strip():
                return "spec: name is empty"
            _check_fields(inner.spec, f"{where}[]", depth + 2)
        elif (problem := _value_problem(inner, f"{where}[]", depth + 1)) is not None:
            raise _Bad(f"{where}[]: {problem}")
        return _default_problem(vs, vs.default)
    if isinstance(vs, ObjectSpec):
        _check_fields(vs.spec, where, depth + 1)
        return None
    if isinstance(vs, UnionSpec):
        if not vs.variants:
            return "variants is empty (give at least one)"
        for key, variant in vs.variants.items():
            if not variant.name.strip():
                return f"variant {key!r} has an empty name"
            _check_fields(variant.spec, f"{where}.{key}", depth + 1)
        if vs.default is not None and vs.default not in vs.variants:
            return f"default {vs.default!r} is not one of the variants ({_choices(vs.variants)})"
        return None
    if isinstance(vs, ColorSpec):
        return _default_problem(vs, vs.default)
    if isinstance(vs, DatetimeSpec):
        bounds = []
        for label, text in (("min", vs.min), ("max", vs.max)):
            if text is not None:
                parsed = _parse_dt(vs.inputmode, text)
                if parsed is None:
                    return f"{label} {text!r} is not {_DT_EXAMPLE[vs.inputmode]}"
                bounds.append(parsed)
        if len(bounds) == 2 and bounds[0] > bounds[1]:  # type: ignore[operator]  # same mode, so the same type
            return f"min {vs.min} is after max {vs.max}"
        return _default_problem(vs, vs.default)
    return None  # toggle: nothing can be wrong


def _text_problem(vs: TextSpec | TextareaSpec) -> str | None:
    if (problem := _lengths_problem(vs.min_length, vs.max_length)) is not None:
        return problem
    for pattern in vs.patterns:
        try:
            _compile(pattern.regex)
        except re.error as exc:
            return f"pattern {pattern.regex!r} does not compile: {exc}"
        if not pattern.description.strip():
            return f"pattern {pattern.regex!r} has an empty description"
    if isinstance(vs, TextSpec) and vs.generate is not None:
        gen = vs.generate
        try:
            parse_charset(gen.charset)
        except ValueError as exc:
            return f"generate: {exc}"
        if not 1 <= gen.len <= MAX_TEXT:
            return f"generate: len must be between 1 and {MAX_TEXT}"
        if (vs.min_length is not None and gen.len < vs.min_length) or (
            vs.max_length is not None and gen.len > vs.max_length
        ):
            return f"generate: len {gen.len} is outside minLength/maxLength"
    return _default_problem(vs, vs.default)


def _number_problem(vs: NumberSpec) -> str | None:
    for label, n in (("min", vs.min), ("max", vs.max), ("step", vs.step)):
        if n is None:
            continue
        if isinstance(n, float) and not math.isfinite(n):
            return f"{label} must be a finite number"
        if vs.integer and not float(n).is_integer():
            return f"{label} {_fmt(n)} is not a whole number, but the field is integer"
    if vs.step is not None and vs.step <= 0:
        return f"step {_fmt(vs.step)} must be above 0"
    if vs.min is not None and vs.max is not None and vs.min > vs.max:
        return f"min {_fmt(vs.min)} is above max {_fmt(vs.max)}"
    return _default_problem(vs, vs.default)

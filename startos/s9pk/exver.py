"""Extended versions and version ranges, as StartOS writes them (REFERENCE.md §3).

Ranges are written as in StartOS: ``>=1.0:0 <2.0:0``, ``^1.2.3``, ``=1.2.3:1 || #knots``,
``!(>=2 <3)``. Atoms are ``(range)``, an anchor ``[op]version[:downstream]`` (no operator means
``^``, no downstream means ``:0``), ``!atom``, ``*`` (any), a bare ``!`` (none) and ``#flavor``
(every version of that flavor; a bare ``#`` means unflavored). ``||`` is OR, ``&&`` or mere
whitespace is AND, and there is **no precedence**: ``a || b c`` is ``(a || b) && c``, folded
strictly left to right. As in StartOS's grammar, ``!`` followed by an atom (whitespace
allowed) negates it: ``! =1`` is ``!=1``; the bare ``!`` is the empty range only when no atom
follows, as in ``! || =1`` or ``(!)``.

``^`` and ``~`` follow the StartOS ``exver`` crate: the "major" is the first non-zero number
(after dropping trailing zeros) and ``^v`` is ``>=v <(major+1)``, ``~v`` bumps the number after
the major instead; the upper bound keeps the upstream prerelease and its downstream is ``0``.
So ``^1.2.3`` is ``>=1.2.3:0 <2:0``, ``^0.2.3`` is ``>=0.2.3:0 <0.3:0``, ``~1.2.3`` is
``>=1.2.3:0 <1.3:0`` and ``~1`` is ``>=1:0 <1.1:0``.

An anchor never matches a version of another flavor, except ``!=`` which always does; ``!``
is plain negation, so ``!>=1:0`` *does* match other flavors. Ranges print in the StartOS form,
every anchor with its downstream (``>=1.0.0:0``), AND as a space, and every compound operand in
parentheses; one difference: a chain of the same operator prints flat (``a b c``, where StartOS
writes ``(a b) c``), which parses back to the same range.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar, NoReturn

from startos.s9pk._exver_sets import FlavorSets, Operator
from startos.s9pk._exver_version import (
    MAX_NUMBER,
    ZERO,
    ExtendedVersion,
    InvalidVersionText,
    PrereleaseSegment,
    Version,
    check_flavor,
    parse_version_text,
)
from startos.s9pk.errors import VersionParseError

__all__ = ["ExtendedVersion", "Operator", "PrereleaseSegment", "Version", "VersionRange"]

_OPERATORS: tuple[Operator, ...] = ("=", "!=", "<", "<=", ">", ">=")
# Longest first, so ">=" is not read as ">" followed by "=".
_PARSED_OPERATORS = (">=", "<=", "!=", ">", "<", "=", "^", "~")
_WHITESPACE = " \t\r\n"
_ATOM_START = frozenset("(*!#<>=^~0123456789")
_VERSION_TOKEN = re.compile(r"[0-9A-Za-z.\-]+")
_FLAVOR_TOKEN = re.compile(r"#([^\s:()|&!*#<>=^~]*)")
# Deep nesting would exhaust Python's recursion limit when a range is evaluated or printed;
# real ranges nest a few levels, so refuse absurd ones with a clear error instead.
MAX_DEPTH = 64


class VersionRange:
    """A set of extended versions, written as in StartOS (see the module docstring).

    Build one with :meth:`parse` or the constructors (:meth:`any`, :meth:`none`,
    :meth:`anchor`, :meth:`caret`, :meth:`tilde`, :meth:`flavor`, :meth:`and_`, :meth:`or_`,
    :meth:`not_`, or the operators ``&``, ``|``, ``~``). Ranges are immutable; ``==`` compares
    their structure, not their meaning. ``str()`` gives the canonical form, which parses back to
    an equal range.
    """

    # Plain slotted classes rather than dataclasses: msgspec would encode a dataclass as an
    # object, and a range belongs on the wire as its text.
    __slots__ = ()

    # -- parsing and constructors ------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Parse a range; raise :class:`VersionParseError` naming where and which rule broke."""
        if not isinstance(text, str):
            raise VersionParseError(f"a version range must be a string, got {type(text).__name__}")
        try:
            parsed = _Parser(text).parse()
        except RecursionError:
            raise VersionParseError(f"invalid version range {text!r}: nested too deeply") from None
        if _depth(parsed) > MAX_DEPTH:
            raise VersionParseError(
                f"invalid version range {text!r}: nests more than {MAX_DEPTH} levels of"
                " alternating || and && (simplify it)"
            )
        return parsed

    @staticmethod
    def any() -> VersionRange:
        """The range every version satisfies (``*``)."""
        return _ANY

    @staticmethod
    def none() -> VersionRange:
        """The range no version satisfies (``!``)."""
        return _NONE

    @staticmethod
    def anchor(op: str, version: ExtendedVersion) -> VersionRange:
        """``op version`` for op in ``= != < <= > >=``, or ``^``/``~`` (expanded like StartOS)."""
        if op == "^":
            return VersionRange.caret(version)
        if op == "~":
            return VersionRange.tilde(version)
        for known in _OPERATORS:
            if op == known:
                return _Anchor(known, version)
        raise ValueError(f"unknown version range operator {op!r}")

    @staticmethod
    def exactly(version: ExtendedVersion) -> VersionRange:
        """``=version``."""
        return _Anchor("=", version)

    @staticmethod
    def caret(version: ExtendedVersion) -> VersionRange:
        """``^version``: at least ``version``, below the next "major" (first non-zero number)."""
        return _bumped(version, tilde=False)

    @staticmethod
    def tilde(version: ExtendedVersion) -> VersionRange:
        """``~version``: at least ``version``, below the next number after the "major"."""
        return _bumped(version, tilde=True)

    @staticmethod
    def flavor(flavor: str | None) -> VersionRange:
        """Every version of ``flavor`` (``#flavor``); None or "" means unflavored ones (``#``)."""
        if flavor:
            _check_flavor_or_raise(flavor)
        return _Flavor(flavor or None)

    @staticmethod
    def and_(*ranges: VersionRange) -> VersionRange:
        """Versions in every range; simplifies ``*`` and ``!`` away like StartOS's ``and``."""
        parts: list[VersionRange] = []
        for item in ranges:
            if isinstance(item, _None):
                return _NONE
            if isinstance(item, _And):
                parts.extend(item.parts)
            elif not isinstance(item, _Any):
                parts.append(item)
        if not parts:
            return _ANY
        return parts[0] if len(parts) == 1 else _And(tuple(parts))

    @staticmethod
    def or_(*ranges: VersionRange) -> VersionRange:
        """Versions in any of the ranges; simplifies ``*`` and ``!`` away like StartOS's ``or``."""
        parts: list[VersionRange] = []
        for item in ranges:
            if isinstance(item, _Any):
                return _ANY
            if isinstance(item, _Or):
                parts.extend(item.parts)
            elif not isinstance(item, _None):
                parts.append(item)
        if not parts:
            return _NONE
        return parts[0] if len(parts) == 1 else _Or(tuple(parts))

    @staticmethod
    def not_(version_range: VersionRange) -> VersionRange:
        """Versions not in the range; pushes the negation inward as StartOS's ``not`` does."""
        return version_range._negated()

    def __and__(self, other: VersionRange) -> VersionRange:
        if not isinstance(other, VersionRange):
            return NotImplemented
        return VersionRange.and_(self, other)

    def __or__(self, other: VersionRange) -> VersionRange:
        if not isinstance(other, VersionRange):
            return NotImplemented
        return VersionRange.or_(self, other)

    def __invert__(self) -> VersionRange:
        return self._negated()

    # -- meaning -------------------------------------------------------------------------------

    def satisfied_by(self, version: ExtendedVersion | Version | str) -> bool:
        """Whether ``version`` is in the range.

        A plain :class:`Version` is taken as ``version:0``; a string is parsed as an extended
        version (``upstream:downstream``).
        """
        if isinstance(version, str):
            version = ExtendedVersion.parse(version)
        elif isinstance(version, Version):
            version = ExtendedVersion(version, ZERO)
        return self._contains(version)

    def is_satisfiable(self) -> bool:
        """Whether any version at all satisfies the range (``>2 <1``, ``!`` and ``!*`` do not)."""
        return self.witness() is not None

    def witness(self) -> ExtendedVersion | None:
        """A version that satisfies the range, or None when none does.

        Exact: the range is reduced to a union of intervals per flavor, with the gaps of the
        version order taken into account (nothing lies between ``1-a`` and ``1-a.0``, nothing
        below ``0-0:0-0``).
        """
        return self.to_sets().witness()

    def intersects(self, other: VersionRange) -> bool:
        """Whether some version satisfies both ranges."""
        return VersionRange.and_(self, other).is_satisfiable()

    def to_sets(self) -> FlavorSets:
        """The range as a union of intervals per flavor (see :mod:`startos.s9pk._exver_sets`)."""
        raise NotImplementedError

    def _contains(self, version: ExtendedVersion) -> bool:
        raise NotImplementedError

    def _negated(self) -> VersionRange:
        return _Not(self)

    def _compound(self) -> bool:
        # StartOS puts parentheses around every child that is not an anchor, * or !.
        return True

    def _child_text(self) -> str:
        return f"({self})" if self._compound() else str(self)

    def _fields(self) -> tuple[object, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VersionRange):
            return NotImplemented
        return type(self) is type(other) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._fields()))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("VersionRange is immutable")

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (VersionRange.parse, (str(self),))

    def __repr__(self) -> str:
        return f"VersionRange.parse({str(self)!r})"


class _Anchor(VersionRange):
    __slots__ = ("op", "version")
    op: Operator
    version: ExtendedVersion

    def __init__(self, op: Operator, version: ExtendedVersion) -> None:
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "version", version)

    def _fields(self) -> tuple[object, ...]:
        return (self.op, self.version)

    def _contains(self, version: ExtendedVersion) -> bool:
        order = version.partial_cmp(self.version)
        if order is None:
            return self.op == "!="  # another flavor: only "not equal" holds
        if self.op == "=":
            return order == 0
        if self.op == "!=":
            return order != 0
        if self.op == "<":
            return order < 0
        if self.op == "<=":
            return order <= 0
        if self.op == ">":
            return order > 0
        return order >= 0

    def to_sets(self) -> FlavorSets:
        return FlavorSets.of_anchor(self.op, self.version)

    def _negated(self) -> VersionRange:
        # Only = and != swap: !(<v) matches other flavors, >=v does not.
        if self.op == "=":
            return _Anchor("!=", self.version)
        if self.op == "!=":
            return _Anchor("=", self.version)
        return _Not(self)

    def _compound(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"{self.op}{self.version}"


class _And(VersionRange):
    __slots__ = ("parts",)
    parts: tuple[VersionRange, ...]

    def __init__(self, parts: tuple[VersionRange, ...]) -> None:
        object.__setattr__(self, "parts", parts)

    def _fields(self) -> tuple[object, ...]:
        return (self.parts,)

    def _contains(self, version: ExtendedVersion) -> bool:
        return all(part._contains(version) for part in self.parts)

    def to_sets(self) -> FlavorSets:
        result = self.parts[0].to_sets()
        for part in self.parts[1:]:
            result = result.intersection(part.to_sets())
        return result

    def _negated(self) -> VersionRange:
        return VersionRange.or_(*(part._negated() for part in self.parts))

    def __str__(self) -> str:
        return " ".join(part._child_text() for part in self.parts)


class _Or(VersionRange):
    __slots__ = ("parts",)
    parts: tuple[VersionRange, ...]

    def __init__(self, parts: tuple[VersionRange, ...]) -> None:
        object.__setattr__(self, "parts", parts)

    def _fields(self) -> tuple[object, ...]:
        return (self.parts,)

    def _contains(self, version: ExtendedVersion) -> bool:
        return any(part._contains(version) for part in self.parts)

    def to_sets(self) -> FlavorSets:
        result = self.parts[0].to_sets()
        for part in self.parts[1:]:
            result = result.union(part.to_sets())
        return result

    def _negated(self) -> VersionRange:
        return VersionRange.and_(*(part._negated() for part in self.parts))

    def __str__(self) -> str:
        return " || ".join(part._child_text() for part in self.parts)


class _Not(VersionRange):
    __slots__ = ("inner",)
    inner: VersionRange

    def __init__(self, inner: VersionRange) -> None:
        object.__setattr__(self, "inner", inner)

    def _fields(self) -> tuple[object, ...]:
        return (self.inner,)

    def _contains(self, version: ExtendedVersion) -> bool:
        return not self.inner._contains(version)

    def to_sets(self) -> FlavorSets:
        return self.inner.to_sets().complement()

    def _negated(self) -> VersionRange:
        return self.inner

    def __str__(self) -> str:
        return f"!{self.inner._child_text()}"


class _Any(VersionRange):
    __slots__ = ()

    def _contains(self, version: ExtendedVersion) -> bool:
        return True

    def to_sets(self) -> FlavorSets:
        return FlavorSets.everything()

    def _negated(self) -> VersionRange:
        return _NONE

    def _compound(self) -> bool:
        return False

    def __str__(self) -> str:
        return "*"


class _None(VersionRange):
    __slots__ = ()

    def _contains(self, version: ExtendedVersion) -> bool:
        return False

    def to_sets(self) -> FlavorSets:
        return FlavorSets.nothing()

    def _negated(self) -> VersionRange:
        return _ANY

    def _compound(self) -> bool:
        return False

    def __str__(self) -> str:
        return "!"


class _Flavor(VersionRange):
    __slots__ = ("name",)
    name: str | None

    def __init__(self, name: str | None) -> None:
        object.__setattr__(self, "name", name)

    def _fields(self) -> tuple[object, ...]:
        return (self.name,)

    def _contains(self, version: ExtendedVersion) -> bool:
        return version.flavor == self.name

    def to_sets(self) -> FlavorSets:
        return FlavorSets.of_flavor(self.name)

    def __str__(self) -> str:
        return f"#{self.name or ''}"


_ANY = _Any()
_NONE = _None()


def _check_flavor_or_raise(flavor: str) -> None:
    """Raise :class:`VersionParseError` unless ``flavor`` is lowercase letters."""
    try:
        check_flavor(flavor)
    except InvalidVersionText as exc:
        raise VersionParseError(str(exc)) from None


def _semantic_numbers(version: Version) -> list[int]:
    # The numbers without trailing zeros, keeping at least one (StartOS's semantic_number).
    numbers = list(version.numbers)
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return numbers


def _bumped(version: ExtendedVersion, *, tilde: bool) -> VersionRange:
    numbers = _semantic_numbers(version.upstream)
    major = next((i for i, n in enumerate(numbers) if n != 0), len(numbers) - 1)
    if tilde:
        following = numbers[major + 1] if major + 1 < len(numbers) else 0
        upper = [*numbers[: major + 1], following + 1]
    else:
        upper = [*numbers[:major], numbers[major] + 1]
    if upper[-1] > MAX_NUMBER:
        raise VersionParseError(f"the upper bound of {'~' if tilde else '^'}{version} overflows")
    bound = ExtendedVersion(Version(upper, version.upstream.prerelease), ZERO, flavor=version.flavor)
    return VersionRange.and_(_Anchor(">=", version), _Anchor("<", bound))


def _depth(root: VersionRange) -> int:
    # Iterative, so that measuring a too-deep range cannot itself hit the recursion limit.
    deepest = 0
    stack: list[tuple[VersionRange, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, _And | _Or):
            stack.extend((part, depth + 1) for part in node.parts)
        elif isinstance(node, _Not):
            stack.append((node.inner, depth + 1))
    return deepest


class _Parser:
    """Recursive descent over the StartOS range grammar, folding strictly left to right."""

    _FOLDS: ClassVar[dict[str, Callable[..., VersionRange]]] = {
        "||": VersionRange.or_,
        "&&": VersionRange.and_,
    }

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.parens = 0

    def fail(self, reason: str, pos: int | None = None) -> NoReturn:
        where = self.pos if pos is None else pos
        raise VersionParseError(f"invalid version range {self.text!r}: {reason} (at character {where + 1})")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_whitespace(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
            self.pos += 1

    def parse(self) -> VersionRange:
        self.skip_whitespace()
        if not self.peek():
            self.fail("the range is empty; write * for any version or ! for none")
        result = self.range()
        self.skip_whitespace()
        if self.peek() == ")":
            self.fail("')' without a matching '('")
        return result

    def range(self) -> VersionRange:
        # A run of atoms joined by the same operator is folded at once; when the operator
        # changes, the run so far becomes the left operand: no precedence, left to right.
        run = [self.atom()]
        fold = "&&"
        while True:
            self.skip_whitespace()
            char = self.peek()
            if not char or char == ")":
                break
            if self.text.startswith(("||", "&&"), self.pos):
                joiner = self.text[self.pos : self.pos + 2]
                self.pos += 2
                self.skip_whitespace()
            elif char in _ATOM_START:
                joiner = "&&"  # whitespace, or nothing at all, between atoms is AND
            elif char in "|&":
                self.fail(f"write {char * 2} for {'OR' if char == '|' else 'AND'}")
            else:
                self.fail(f"unexpected {char!r}; expected ||, && or another range atom")
            if len(run) > 1 and joiner != fold:
                run = [self._FOLDS[fold](*run)]
            fold = joiner
            run.append(self.atom())
        return run[0] if len(run) == 1 else self._FOLDS[fold](*run)

    def atom(self) -> VersionRange:
        char = self.peek()
        if char == "(":
            return self.parenthesized()
        if char == "*":
            self.pos += 1
            return _ANY
        if char == "!":
            if self.text.startswith("!=", self.pos):
                return self.anchor()
            self.pos += 1
            self.skip_whitespace()
            if self.peek() and self.peek() in _ATOM_START:
                return VersionRange.not_(self.atom())
            return _NONE  # a bare "!" is the empty range
        if char == "#":
            match = _FLAVOR_TOKEN.match(self.text, self.pos)
            assert match is not None  # the pattern matches "#" alone
            if self.text.startswith(":", match.end()):
                return self.anchor()  # "#flavor:1.0" is a caret anchor on that flavor
            self.check_flavor(match.group(1), self.pos)
            self.pos = match.end()
            return _Flavor(match.group(1) or None)
        if char and char in _ATOM_START:
            return self.anchor()
        found = repr(char) if char else "the end of the text"
        return self.fail(
            f"expected a version, an operator (>= <= > < = != ^ ~), '(', '!', '*' or '#flavor', found {found}"
        )

    def parenthesized(self) -> VersionRange:
        start = self.pos
        self.parens += 1
        if self.parens > MAX_DEPTH:
            self.fail(f"more than {MAX_DEPTH} nested parentheses")
        self.pos += 1
        self.skip_whitespace()
        inner = self.range()
        self.skip_whitespace()
        if self.peek() != ")":
            self.fail("'(' is never closed", start)
        self.pos += 1
        self.parens -= 1
        return inner

    def check_flavor(self, flavor: str, pos: int) -> None:
        try:
            check_flavor(flavor)
        except InvalidVersionText as exc:
            self.fail(str(exc), pos)

    def anchor(self) -> VersionRange:
        op = next((o for o in _PARSED_OPERATORS if self.text.startswith(o, self.pos)), None)
        if op is None:
            op = "^"  # no operator means caret
        else:
            self.pos += len(op)
        self.skip_whitespace()
        start = self.pos
        flavor: str | None = None
        if self.peek() == "#":
            match = _FLAVOR_TOKEN.match(self.text, self.pos)
            assert match is not None
            if not self.text.startswith(":", match.end()):
                self.fail("a flavored version is written #flavor:version, e.g. #knots:27.1")
            self.check_flavor(match.group(1), self.pos)
            flavor = match.group(1) or None
            self.pos = match.end() + 1
        upstream = self.version("upstream")
        downstream = ZERO  # an anchor without ":downstream" means downstream 0
        if self.peek() == ":":
            self.pos += 1
            downstream = self.version("downstream")
        version = ExtendedVersion(upstream, downstream, flavor=flavor)
        try:
            return VersionRange.anchor(op, version)
        except VersionParseError as exc:
            self.fail(str(exc), start)

    def version(self, what: str) -> Version:
        match = _VERSION_TOKEN.match(self.text, self.pos)
        if match is None:
            self.fail(f"expected the {what} version here")
        try:
            version = parse_version_text(match.group())
        except InvalidVersionText as exc:
            self.fail(f"{what} version {match.group()!r}: {exc}", self.pos)
        self.pos = match.end()
        return version

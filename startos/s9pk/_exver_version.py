"""Plain versions and extended versions (REFERENCE.md §3), without ranges.

A :class:`Version` is ``num ("." num)* ("-" prerelease)?``; an :class:`ExtendedVersion` is
``("#" flavor ":")? upstream ":" downstream``. Ranges live in :mod:`startos.s9pk.exver`, which
re-exports both classes; import them from there or from :mod:`startos.s9pk`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn, final

from startos.s9pk.errors import VersionParseError

if TYPE_CHECKING:
    from startos.s9pk.exver import VersionRange

__all__ = ["ExtendedVersion", "PrereleaseSegment", "Version"]

#: A prerelease segment: a number (compares numerically, below every string) or a string.
PrereleaseSegment = int | str

# StartOS stores every number as a 64-bit unsigned integer and refuses bigger ones; we refuse
# them too, so a version this project accepts is one StartOS accepts.
MAX_NUMBER = 2**64 - 1
_MAX_DIGITS = len(str(MAX_NUMBER))

_NUMBER = re.compile(r"0|[1-9][0-9]*")
_DIGITS = re.compile(r"[0-9]+")
_PRERELEASE_SEGMENT = re.compile(r"[0-9A-Za-z-]+")
_FLAVOR = re.compile(r"[a-z]*")

# Sort/equality key of a version: (numbers without trailing zeros, release flag, prerelease).
# Trailing zeros are dropped so that 1.0 == 1.0.0; lexicographic order on the trimmed tuples
# equals the zero-padded order. The release flag (1 for a release) puts a release above its
# prereleases. Prerelease segments become (0, n) or (1, s): numbers sort below strings, and a
# shorter prefix sorts first, as in SemVer.
VersionKey = tuple[tuple[int, ...], int, tuple[tuple[int, int | str], ...]]


class InvalidVersionText(Exception):
    """Internal: the reason a version text is malformed, before context is added."""


def _fail(reason: str) -> NoReturn:
    raise InvalidVersionText(reason)


def _parse_number(text: str, what: str) -> int:
    if not text:
        _fail(f"empty {what} (two dots in a row, or a leading or trailing dot)")
    if not _NUMBER.fullmatch(text):
        if _DIGITS.fullmatch(text):
            _fail(f"{what} {text!r} has a leading zero")
        _fail(f"{what} {text!r} is not a number")
    if len(text) > _MAX_DIGITS or int(text) > MAX_NUMBER:
        _fail(f"{what} {text} is larger than {MAX_NUMBER}")
    return int(text)


def _parse_segment(text: str) -> PrereleaseSegment:
    if not text:
        _fail("empty prerelease segment")
    if not _PRERELEASE_SEGMENT.fullmatch(text):
        _fail(f"prerelease segment {text!r} may only hold letters, digits and '-'")
    if _DIGITS.fullmatch(text):
        return _parse_number(text, "numeric prerelease segment")
    return text


def parse_version_text(text: str) -> Version:
    """Parse ``text`` as a :class:`Version`, raising :class:`InvalidVersionText` with a reason."""
    number_text, dash, prerelease_text = text.partition("-")
    numbers = tuple(_parse_number(part, "number") for part in number_text.split("."))
    prerelease: tuple[PrereleaseSegment, ...] = ()
    if dash:
        prerelease = tuple(_parse_segment(part) for part in prerelease_text.split("."))
    return Version._trusted(numbers, prerelease)


def check_flavor(flavor: str) -> None:
    """Raise :class:`InvalidVersionText` unless ``flavor`` is ``[a-z]*``."""
    if not _FLAVOR.fullmatch(flavor):
        _fail(f"flavor {flavor!r} may only hold lowercase letters a-z")


@final
class Version:
    """A version ``num ("." num)* ("-" prerelease)?``, e.g. ``1.2.3`` or ``2.0-beta.1``.

    Numbers compare left to right, padded with zeros (``1.0 == 1.0.0``); a release is above its
    prereleases; prerelease segments compare one by one, numbers numerically and below strings,
    strings by their bytes, and a shorter list of equal segments is lower. ``str()`` gives back
    the numbers as written (``1.0`` stays ``1.0``). Instances are immutable and hashable.
    """

    __slots__ = ("_key", "_numbers", "_prerelease")
    _numbers: tuple[int, ...]
    _prerelease: tuple[PrereleaseSegment, ...]
    _key: VersionKey

    def __init__(self, numbers: Iterable[int], prerelease: Iterable[PrereleaseSegment] = ()) -> None:
        numbers = tuple(numbers)
        prerelease = tuple(prerelease)
        if not numbers:
            raise VersionParseError("a version needs at least one number")
        for number in numbers:
            if type(number) is not int or not 0 <= number <= MAX_NUMBER:
                raise VersionParseError(f"version number {number!r} is not an integer in 0..{MAX_NUMBER}")
        for segment in prerelease:
            if type(segment) is int:
                if not 0 <= segment <= MAX_NUMBER:
                    raise VersionParseError(f"prerelease number {segment!r} is out of range")
            elif not isinstance(segment, str) or not _PRERELEASE_SEGMENT.fullmatch(segment):
                raise VersionParseError(f"prerelease segment {segment!r} must match [0-9A-Za-z-]+")
            elif _DIGITS.fullmatch(segment):
                # An all-digit string would print like a number but sort like a string.
                raise VersionParseError(f"prerelease segment {segment!r} is numeric: pass it as an int")
        self._init(numbers, prerelease)

    def _init(self, numbers: tuple[int, ...], prerelease: tuple[PrereleaseSegment, ...]) -> None:
        object.__setattr__(self, "_numbers", numbers)
        object.__setattr__(self, "_prerelease", prerelease)
        trimmed = len(numbers)
        while trimmed and numbers[trimmed - 1] == 0:
            trimmed -= 1
        pre_key = tuple((0, s) if isinstance(s, int) else (1, s) for s in prerelease)
        object.__setattr__(self, "_key", (numbers[:trimmed], 0 if prerelease else 1, pre_key))

    @classmethod
    def _trusted(cls, numbers: tuple[int, ...], prerelease: tuple[PrereleaseSegment, ...]) -> Version:
        # Parsing already validated every part; skip the constructor's checks.
        version = cls.__new__(cls)
        version._init(numbers, prerelease)
        return version

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``1.2.3`` or ``1.2.3-beta.1``; raise :class:`VersionParseError` naming the rule."""
        if not isinstance(text, str):
            raise VersionParseError(f"a version must be a string, got {type(text).__name__}")
        try:
            return parse_version_text(text)
        except InvalidVersionText as exc:
            raise VersionParseError(f"invalid version {text!r}: {exc}") from None

    @property
    def numbers(self) -> tuple[int, ...]:
        """The numbers as written (``1.0`` gives ``(1, 0)``)."""
        return self._numbers

    @property
    def prerelease(self) -> tuple[PrereleaseSegment, ...]:
        """The prerelease segments; empty for a release."""
        return self._prerelease

    @property
    def is_prerelease(self) -> bool:
        """True when the version has a prerelease part (``1.0-rc.1``)."""
        return bool(self._prerelease)

    def sort_key(self) -> VersionKey:
        """A key whose tuple order is the version order, and whose equality is version equality."""
        return self._key

    def without_prerelease(self) -> Version:
        """The release this version is a prerelease of (itself if it is a release)."""
        return Version._trusted(self._numbers, ())

    def successor(self) -> Version | None:
        """The least version above this one, or None when there is none.

        A prerelease ``P`` has one: ``P.0`` (nothing sorts between a list and that list with the
        lowest segment appended). A release has none: ``1``, ``1.0.1``, ``1.0.0.1``, ... have no
        least element above ``1``. Satisfiability uses this to see gaps like ``>1-a <1-a.0``.
        """
        if not self._prerelease:
            return None
        return Version._trusted(self._numbers, (*self._prerelease, 0))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key < other._key

    def __le__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key <= other._key

    def __gt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key > other._key

    def __ge__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key >= other._key

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Version.parse, (str(self),))

    def __str__(self) -> str:
        text = ".".join(map(str, self._numbers))
        if self._prerelease:
            text += "-" + ".".join(map(str, self._prerelease))
        return text

    def __repr__(self) -> str:
        return f"Version.parse({str(self)!r})"


#: The least version there is: numbers are >= 0 and (0,) is the least prerelease list.
MIN_VERSION = Version._trusted((0,), (0,))
ZERO = Version._trusted((0,), ())

ExtendedKey = tuple[VersionKey, VersionKey]


@final
class ExtendedVersion:
    """A package version ``#flavor:upstream:downstream`` such as ``1.2.3:0`` or ``#knots:27.1:2``.

    ``upstream`` is the packaged software's version, ``downstream`` the version of its StartOS
    wrapper; they compare in that order. A flavor names a fork: versions of different flavors
    are **incomparable**. For them ``==`` is False and ``<``, ``<=``, ``>``, ``>=`` raise
    :class:`TypeError` rather than invent an order (use :meth:`partial_cmp` to ask safely, and
    :meth:`sort_key` for a total display order: flavored versions by flavor name, then unflavored
    ones). An empty flavor (``#:1:0``) means unflavored. Instances are immutable and hashable.
    """

    __slots__ = ("_downstream", "_flavor", "_key", "_upstream")
    _flavor: str | None
    _upstream: Version
    _downstream: Version
    _key: ExtendedKey

    def __init__(self, upstream: Version, downstream: Version = ZERO, *, flavor: str | None = None) -> None:
        if not isinstance(upstream, Version) or not isinstance(downstream, Version):
            raise TypeError("upstream and downstream must be Version instances")
        if flavor is not None:
            try:
                check_flavor(flavor)
            except InvalidVersionText as exc:
                raise VersionParseError(str(exc)) from None
        object.__setattr__(self, "_flavor", flavor or None)
        object.__setattr__(self, "_upstream", upstream)
        object.__setattr__(self, "_downstream", downstream)
        object.__setattr__(self, "_key", (upstream.sort_key(), downstream.sort_key()))

    @classmethod
    def parse(cls, text: str) -> ExtendedVersion:
        """Parse ``upstream:downstream`` with an optional ``#flavor:`` prefix.

        The downstream part is required here (``1.0`` alone is refused); only range anchors may
        leave it out. Raises :class:`VersionParseError` naming the part and the rule broken.
        """
        if not isinstance(text, str):
            raise VersionParseError(f"an extended version must be a string, got {type(text).__name__}")
        try:
            flavor: str | None = None
            rest = text
            if text.startswith("#"):
                flavor, colon, rest = text[1:].partition(":")
                if not colon:
                    _fail("a flavor prefix is written #flavor: as in #knots:1.0:0")
                check_flavor(flavor)
            upstream_text, colon, downstream_text = rest.partition(":")
            if not colon:
                _fail("missing downstream version: write upstream:downstream, e.g. 1.0:0")
            if ":" in downstream_text:
                _fail("too many ':'; write [#flavor:]upstream:downstream, e.g. 1.0:0")
            upstream = _parse_part(upstream_text, "upstream")
            downstream = _parse_part(downstream_text, "downstream")
        except InvalidVersionText as exc:
            raise VersionParseError(f"invalid extended version {text!r}: {exc}") from None
        return cls(upstream, downstream, flavor=flavor)

    @property
    def flavor(self) -> str | None:
        """The flavor name, or None for an unflavored version."""
        return self._flavor

    @property
    def upstream(self) -> Version:
        """The packaged software's version."""
        return self._upstream

    @property
    def downstream(self) -> Version:
        """The wrapper's version."""
        return self._downstream

    def with_flavor(self, flavor: str | None) -> ExtendedVersion:
        """This version with another flavor (None or "" for unflavored)."""
        return ExtendedVersion(self._upstream, self._downstream, flavor=flavor)

    def partial_cmp(self, other: ExtendedVersion) -> int | None:
        """-1, 0 or 1 comparing ``self`` to ``other``; None when their flavors differ."""
        if self._flavor != other._flavor:
            return None
        return (self._key > other._key) - (self._key < other._key)

    def sort_key(self) -> tuple[bool, str, ExtendedKey]:
        """A total display order: flavored versions first, by flavor name, unflavored last.

        Within a flavor this is the version order, as StartOS's registry sorts them.
        """
        return (self._flavor is None, self._flavor or "", self._key)

    def satisfies(self, version_range: VersionRange) -> bool:
        """Whether this version is in ``version_range`` (same as ``version_range.satisfied_by``)."""
        return version_range.satisfied_by(self)

    def _ordered(self, other: object) -> ExtendedKey | None:
        if not isinstance(other, ExtendedVersion):
            return None
        if self._flavor != other._flavor:
            raise TypeError(
                f"cannot order {self} and {other}: versions of different flavors are incomparable"
                " (use partial_cmp(), or sort_key() for a display order)"
            )
        return other._key

    def __lt__(self, other: ExtendedVersion) -> bool:
        key = self._ordered(other)
        return NotImplemented if key is None else self._key < key

    def __le__(self, other: ExtendedVersion) -> bool:
        key = self._ordered(other)
        return NotImplemented if key is None else self._key <= key

    def __gt__(self, other: ExtendedVersion) -> bool:
        key = self._ordered(other)
        return NotImplemented if key is None else self._key > key

    def __ge__(self, other: ExtendedVersion) -> bool:
        key = self._ordered(other)
        return NotImplemented if key is None else self._key >= key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExtendedVersion):
            return NotImplemented
        return self._flavor == other._flavor and self._key == other._key

    def __hash__(self) -> int:
        return hash((self._flavor, self._key))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (ExtendedVersion.parse, (str(self),))

    def __str__(self) -> str:
        prefix = f"#{self._flavor}:" if self._flavor else ""
        return f"{prefix}{self._upstream}:{self._downstream}"

    def __repr__(self) -> str:
        return f"ExtendedVersion.parse({str(self)!r})"


def _parse_part(text: str, what: str) -> Version:
    try:
        return parse_version_text(text)
    except InvalidVersionText as exc:
        raise InvalidVersionText(f"{what} {text!r}: {exc}") from None

"""Sets of extended versions as unions of intervals, for deciding whether a range is satisfiable.

Within one flavor, extended versions are totally ordered by (upstream, downstream). A subset
built from anchors, ``&&``, ``||`` and ``!`` is a finite union of intervals, stored as the
sorted list of *cuts* where membership flips, starting from "outside" below every version.

The order is not dense, so a naive "a < b means (a, b) is non-empty" is wrong: nothing lies
strictly between ``1-a`` and ``1-a.0`` (see :meth:`Version.successor`), and nothing lies below
``0-0:0-0``. A cut "just above x" is therefore rewritten as "just below the successor of x"
when x has one, which makes every cut position unique; then any two adjacent cuts enclose at
least one version, and "empty" is simply "no cuts".

Across flavors, a set is one interval set per flavor named in the range plus one truth value
for every other flavor: an anchor on flavor f is constant on any flavor other than f (false,
or true for ``!=``), and so is ``#f``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from string import ascii_lowercase
from typing import Literal

from startos.s9pk._exver_version import MIN_VERSION, ExtendedVersion, Version, VersionKey

__all__ = ["FlavorSets"]

#: The comparison operators an anchor keeps after ``^`` and ``~`` are expanded.
Operator = Literal["=", "!=", "<", "<=", ">", ">="]

_BELOW, _AT, _ABOVE = 0, 1, 2  # a cut sits just below or just above a point; a probe sits at it


@dataclass(frozen=True, slots=True, order=True)
class _Cut:
    """A position between versions: just below or just above the point (upstream, downstream)."""

    position: tuple[VersionKey, VersionKey, int]
    upstream: Version = field(compare=False)
    downstream: Version = field(compare=False)


def _below(upstream: Version, downstream: Version) -> _Cut:
    return _Cut((upstream.sort_key(), downstream.sort_key(), _BELOW), upstream, downstream)


def _above(upstream: Version, downstream: Version) -> _Cut:
    successor = downstream.successor()
    if successor is not None:
        # Nothing sits between a point and its successor: use the one name for that position.
        return _below(upstream, successor)
    return _Cut((upstream.sort_key(), downstream.sort_key(), _ABOVE), upstream, downstream)


_BOTTOM = _below(MIN_VERSION, MIN_VERSION)


def _normalized(cuts: list[_Cut]) -> tuple[_Cut, ...]:
    # Two equal adjacent cuts enclose nothing (e.g. "< the least version"): drop both.
    out: list[_Cut] = []
    for cut in cuts:
        if out and out[-1] == cut:
            out.pop()
        else:
            out.append(cut)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _IntervalSet:
    """A union of intervals of one flavor's versions, as the sorted cuts where membership flips."""

    cuts: tuple[_Cut, ...]

    @property
    def is_empty(self) -> bool:
        return not self.cuts

    def complement(self) -> _IntervalSet:
        if self.cuts and self.cuts[0] == _BOTTOM:
            return _IntervalSet(self.cuts[1:])
        return _IntervalSet((_BOTTOM, *self.cuts))

    def combine(self, other: _IntervalSet, rule: Callable[[bool, bool], bool]) -> _IntervalSet:
        mine, theirs = set(self.cuts), set(other.cuts)
        inside_mine = inside_theirs = inside = False
        out: list[_Cut] = []
        for cut in sorted(mine | theirs):
            if cut in mine:
                inside_mine = not inside_mine
            if cut in theirs:
                inside_theirs = not inside_theirs
            now = rule(inside_mine, inside_theirs)
            if now != inside:
                out.append(cut)
                inside = now
        return _IntervalSet(tuple(out))

    def contains(self, upstream: Version, downstream: Version) -> bool:
        probe = (upstream.sort_key(), downstream.sort_key(), _AT)
        flips = bisect_left([cut.position for cut in self.cuts], probe)
        return flips % 2 == 1

    def first_member(self) -> tuple[Version, Version] | None:
        """Some version in the set (the least one when the set has a least member)."""
        if not self.cuts:
            return None
        start = self.cuts[0]
        if start.position[2] == _BELOW:
            return (start.upstream, start.downstream)
        # The set starts just above x, whose downstream is a release (it has no successor):
        # build a release downstream above x's and below the next cut.
        numbers = start.downstream.numbers
        end = self.cuts[1] if len(self.cuts) > 1 else None
        if end is not None and end.position[0] == start.position[0]:
            # Same upstream: pad to the end's length, then append 1. At the first index where
            # the end's numbers exceed x's, ours still equal x's, so we stay below the end.
            numbers += (0,) * max(0, len(end.downstream.numbers) - len(numbers))
        return (start.upstream, Version((*numbers, 1)))


_EVERYTHING = _IntervalSet((_BOTTOM,))
_NOTHING = _IntervalSet(())


def _anchor_set(op: Operator, upstream: Version, downstream: Version) -> _IntervalSet:
    below, above = _below(upstream, downstream), _above(upstream, downstream)
    cuts = {
        "=": [below, above],
        "!=": [_BOTTOM, below, above],
        "<": [_BOTTOM, below],
        "<=": [_BOTTOM, above],
        ">": [above],
        ">=": [below],
    }[op]
    return _IntervalSet(_normalized(cuts))


def _fresh_flavors() -> Iterator[str]:
    # a, b, ..., z, aa, ab, ...: flavor names never run out.
    length = 1
    while True:
        yield from _names(length)
        length += 1


def _names(length: int) -> Iterator[str]:
    if length == 0:
        yield ""
        return
    for head in ascii_lowercase:
        for tail in _names(length - 1):
            yield head + tail


@dataclass(frozen=True, slots=True)
class FlavorSets:
    """A set of extended versions: one interval set per named flavor, one truth for the rest.

    ``explicit`` maps a flavor (None for unflavored) to its interval set; every flavor not in
    it is wholly in the set when ``others`` is True and wholly out of it otherwise.
    """

    explicit: dict[str | None, _IntervalSet]
    others: bool

    @staticmethod
    def everything() -> FlavorSets:
        """Every version of every flavor."""
        return FlavorSets({}, True)

    @staticmethod
    def nothing() -> FlavorSets:
        """The empty set."""
        return FlavorSets({}, False)

    @staticmethod
    def of_flavor(flavor: str | None) -> FlavorSets:
        """Every version of one flavor."""
        return FlavorSets({flavor: _EVERYTHING}, False)

    @staticmethod
    def of_anchor(op: Operator, version: ExtendedVersion) -> FlavorSets:
        """What ``op version`` accepts: only its flavor's versions, except with ``!=``."""
        interval_set = _anchor_set(op, version.upstream, version.downstream)
        return FlavorSets({version.flavor: interval_set}, op == "!=")

    def complement(self) -> FlavorSets:
        """Every version not in this set."""
        return FlavorSets({f: s.complement() for f, s in self.explicit.items()}, not self.others)

    def intersection(self, other: FlavorSets) -> FlavorSets:
        """Versions in both sets."""
        return self._combine(other, lambda a, b: a and b)

    def union(self, other: FlavorSets) -> FlavorSets:
        """Versions in either set."""
        return self._combine(other, lambda a, b: a or b)

    def _combine(self, other: FlavorSets, rule: Callable[[bool, bool], bool]) -> FlavorSets:
        others = rule(self.others, other.others)
        default = _EVERYTHING if others else _NOTHING
        explicit: dict[str | None, _IntervalSet] = {}
        for flavor in self.explicit.keys() | other.explicit.keys():
            mine = self.explicit.get(flavor, _EVERYTHING if self.others else _NOTHING)
            theirs = other.explicit.get(flavor, _EVERYTHING if other.others else _NOTHING)
            combined = mine.combine(theirs, rule)
            if combined != default:  # a flavor behaving like all the others needs no entry
                explicit[flavor] = combined
        return FlavorSets(explicit, others)

    def contains(self, version: ExtendedVersion) -> bool:
        """Whether ``version`` is in the set."""
        interval_set = self.explicit.get(version.flavor)
        if interval_set is None:
            return self.others
        return interval_set.contains(version.upstream, version.downstream)

    def witness(self) -> ExtendedVersion | None:
        """Some version in the set, preferring an unflavored one; None when the set is empty."""
        if None in self.explicit:
            member = self.explicit[None].first_member()
            if member is not None:
                return ExtendedVersion(member[0], member[1])
        elif self.others:
            return ExtendedVersion(Version((0,)), Version((0,)))
        for flavor in sorted(f for f in self.explicit if f is not None):
            member = self.explicit[flavor].first_member()
            if member is not None:
                return ExtendedVersion(member[0], member[1], flavor=flavor)
        if self.others:
            fresh = next(f for f in _fresh_flavors() if f not in self.explicit)
            return ExtendedVersion(Version((0,)), Version((0,)), flavor=fresh)
        return None

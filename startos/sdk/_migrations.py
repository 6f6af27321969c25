"""Choosing the chain of migration steps between two versions.

Steps are keyed by the version that changed the data format. Moving data from A to B:

* A == B: nothing to do.
* A < B (update): the ``up`` step of every V with ``>A <=B``, oldest first.
* A > B (downgrade, run by A's code): the ``down`` step of every V with ``>B <=A``, newest
  first; a V without ``down`` makes the downgrade impossible (:class:`MigrationPathError`).
* A and B of different flavors (incomparable): no path.

Membership is decided by :class:`startos.s9pk.VersionRange`, so exver's rules (``1.0 == 1.0.0``,
flavors, prereleases) apply; steps of another flavor than A and B never run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from startos.sdk.errors import DescriptionError, MigrationPathError

if TYPE_CHECKING:
    from startos.s9pk.exver import ExtendedVersion
    from startos.sdk._service import MigrationHook, Service

__all__ = ["Plan", "parse_version", "plan_migration", "validate_steps"]


class Step:
    """One chosen step: the version as the package wrote it and the function to run."""

    def __init__(self, text: str, version: ExtendedVersion, fn: MigrationHook) -> None:
        self.text = text
        self.version = version
        self.fn = fn


class Plan:
    """The steps to run, in order, and their direction."""

    def __init__(self, direction: Literal["up", "down", "none"], steps: list[Step]) -> None:
        self.direction = direction
        self.steps = steps


def parse_version(text: str, what: str) -> ExtendedVersion:
    """Parse exver text; a bad one raises the given error class's message naming ``what``."""
    from startos.s9pk.errors import VersionParseError
    from startos.s9pk.exver import ExtendedVersion

    try:
        return ExtendedVersion.parse(text)
    except VersionParseError as exc:
        raise MigrationPathError(f"{what}: {exc}") from None


def validate_steps(service: Service) -> dict[ExtendedVersion, tuple[str, MigrationHook, MigrationHook | None]]:
    """Every step parsed: ``{version: (text, up, down)}``; raise DescriptionError on a bad declaration."""
    from startos.s9pk.errors import VersionParseError
    from startos.s9pk.exver import ExtendedVersion

    steps: dict[ExtendedVersion, tuple[str, MigrationHook, MigrationHook | None]] = {}
    texts: dict[ExtendedVersion, str] = {}
    for direction, table in (("up", service.up_steps), ("down", service.down_steps)):
        for text in table:
            try:
                version = ExtendedVersion.parse(text)
            except VersionParseError as exc:
                raise DescriptionError(f"{direction} migration {text!r}: {exc}") from None
            if version in texts and texts[version] != text:
                raise DescriptionError(f"migrations {texts[version]!r} and {text!r} name the same version")
            texts[version] = text
    for version, text in texts.items():
        up = service.up_steps.get(text)
        if up is None:
            raise DescriptionError(f"migration {text}: a down step needs an up step for the same version")
        steps[version] = (text, up, service.down_steps.get(text))
    return steps


def plan_migration(service: Service, from_text: str, to_text: str) -> Plan:
    """The steps that move data written by ``from_text`` to ``to_text`` (see the module docstring)."""
    from startos.s9pk.exver import VersionRange

    source = parse_version(from_text, "from_version")
    target = parse_version(to_text, "to_version")
    steps = validate_steps(service)
    order = source.partial_cmp(target)
    if order is None:
        raise MigrationPathError(f"no migration path from {source} to {target}: they are versions of different flavors")
    if order == 0:
        return Plan("none", [])
    low, high = (source, target) if order < 0 else (target, source)
    between = VersionRange.anchor(">", low) & VersionRange.anchor("<=", high)
    chosen = sorted((v for v in steps if between.satisfied_by(v)), key=lambda v: v.sort_key())
    if order < 0:
        return Plan("up", [Step(steps[v][0], v, steps[v][1]) for v in chosen])
    plan: list[Step] = []
    for version in reversed(chosen):
        text, _up, down = steps[version]
        if down is None:
            raise MigrationPathError(
                f"cannot downgrade from {source} to {target}: the migration to {text} has no down step"
            )
        plan.append(Step(text, version, down))
    return Plan("down", plan)

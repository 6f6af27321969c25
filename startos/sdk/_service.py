"""``Service``: the one object a package's ``startos_service.py`` defines.

::

    service = Service(volumes=["main"], backup=Backup(volumes=["main"], exclude=["cache/**"]))

    @service.main
    def main(ctx: MainContext) -> list[Daemon | Oneshot]: ...

    @service.init("install")
    def create_defaults(ctx: InitContext) -> None: ...

    @service.migrate_up("1.1.0:0")
    def split_config(ctx: MigrationContext) -> None: ...

Decorators return the function unchanged, so hooks stay plain functions a unit test may call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, get_args

import msgspec

from startos.protocol import runtime as wire
from startos.protocol import service_items as items
from startos.sdk._actions import Action, Disabled, Interface
from startos.sdk._context import InitContext, MainContext, MigrationContext, UninitContext
from startos.sdk._items import Backup, Daemon, HealthCheck, Oneshot
from startos.sdk.errors import DescriptionError

__all__ = ["InitHook", "MainFunction", "MigrationHook", "Service", "UninitHook"]

MainFunction = Callable[[MainContext], Iterable[Daemon | Oneshot | HealthCheck]]
InitHook = Callable[[InitContext], None]
UninitHook = Callable[[UninitContext], None]
MigrationHook = Callable[[MigrationContext], None]

F = TypeVar("F", bound=Callable[..., object])

_VOLUME_ID = re.compile(wire.VOLUME_ID_PATTERN)
INIT_KINDS: tuple[str, ...] = get_args(wire.InitKind)
UNINIT_KINDS: tuple[str, ...] = get_args(wire.UninitKind)


class Service:
    """A service's behaviour: its volumes, backup, main function, hooks and migrations.

    ``volumes`` must equal the manifest's ``volumes``. ``backup`` defaults to every volume,
    nothing excluded.
    """

    def __init__(
        self, *, volumes: Sequence[str], backup: Backup | None = None, interfaces: Sequence[Interface] = ()
    ) -> None:
        if isinstance(volumes, str):
            raise DescriptionError("volumes must be a list of volume ids, not one string")
        self.volumes: tuple[str, ...] = tuple(volumes)
        for volume in self.volumes:
            if not isinstance(volume, str) or not _VOLUME_ID.match(volume):
                raise DescriptionError(f"{volume!r} is not a volume id (lowercase letters, digits, single hyphens)")
        if len(set(self.volumes)) != len(self.volumes):
            raise DescriptionError("a volume is listed twice")
        self.backup = backup if backup is not None else Backup(volumes=list(self.volumes))
        if not isinstance(self.backup, Backup):
            raise DescriptionError("backup must be a startos.sdk.Backup")
        undeclared = [v for v in self.backup.volumes if v not in self.volumes]
        if undeclared:
            raise DescriptionError(f"backup names undeclared volumes: {', '.join(undeclared)}")
        if isinstance(interfaces, Interface) or any(not isinstance(i, Interface) for i in interfaces):
            raise DescriptionError("interfaces must be a list of startos.sdk.Interface")
        self.interfaces: tuple[Interface, ...] = tuple(interfaces)
        problem = items.items_problem((), (), tuple(i.to_wire() for i in self.interfaces), set())
        if problem is not None:
            raise DescriptionError(problem)
        self.actions: dict[str, Action] = {}
        self.main_function: MainFunction | None = None
        self.init_hooks: dict[str, InitHook] = {}
        self.uninit_hooks: dict[str, UninitHook] = {}
        self.up_steps: dict[str, MigrationHook] = {}
        self.down_steps: dict[str, MigrationHook] = {}

    def main(self, fn: F) -> F:
        """Decorate the function that returns the daemons and oneshots to run (once per start)."""
        if self.main_function is not None:
            raise DescriptionError("the service already has a main function")
        _need_callable(fn, "main")
        self.main_function = fn  # type: ignore[assignment]
        return fn

    def action(
        self,
        action_id: str,
        name: str,
        *,
        description: str = "",
        warning: str | None = None,
        group: str | None = None,
        visibility: Literal["enabled", "hidden"] | Disabled = "enabled",
        allowed_statuses: items.AllowedStatuses = "any",
        input: Mapping[str, Any] | None = None,
    ) -> Callable[[F], F]:
        """Decorate ``fn(ctx: ActionContext, input) -> ActionResult | str | None``: an action.

        ``input`` is an input spec (:mod:`startos.sdk.input`); the host validates the user's
        values against it, so ``fn`` gets a normalized dict (None for an action without input).
        ``allowed_statuses``: ``only-running``, ``only-stopped`` or ``any``.
        """
        if action_id in self.actions:
            raise DescriptionError(f"the service already has an action {action_id!r}")
        if input is not None:
            _check_spec(action_id, input)

        def decorate(fn: F) -> F:
            _need_callable(fn, f"action {action_id!r}")
            action = Action(
                action_id,
                name,
                fn,  # type: ignore[arg-type]
                description=description,
                warning=warning,
                group=group,
                visibility=visibility,
                allowed_statuses=allowed_statuses,
                input_spec=input,
            )
            action.to_wire()  # validate now, so the error points at the decorator
            self.actions[action_id] = action
            return fn

        return decorate

    def action_input(self, action_id: str) -> Callable[[F], F]:
        """Decorate ``fn(ctx: ActionContext) -> dict``: the values to prefill ``action_id``'s form with.

        Tasks created with ``when_input_not_matches`` compare against these values too.
        """

        def decorate(fn: F) -> F:
            _need_callable(fn, f"input function of {action_id!r}")
            action = self.actions.get(action_id)
            if action is None:
                raise DescriptionError(f"@service.action_input({action_id!r}) must follow @service.action")
            if action.input_spec is None:
                raise DescriptionError(f"action {action_id!r} takes no input")
            action.input_fn = fn  # type: ignore[assignment]
            return fn

        return decorate

    def init(self, *kinds: wire.InitKind) -> Callable[[F], F]:
        """Decorate a hook run at ``install``, ``update`` and/or ``restore`` (one hook per kind)."""
        return self._register(self.init_hooks, kinds, INIT_KINDS, "init")

    def uninit(self, *kinds: wire.UninitKind) -> Callable[[F], F]:
        """Decorate a hook run before ``uninstall`` and/or before an ``update`` to another version."""
        return self._register(self.uninit_hooks, kinds, UNINIT_KINDS, "uninit")

    def migrate_up(self, version: str) -> Callable[[F], F]:
        """Decorate the step that turns the previous version's data into ``version``'s.

        An update from A to B runs, oldest first, the ``up`` step of every version V with
        A < V <= B (same flavor). Versions without a data change need no step.
        """
        return self._register_step(self.up_steps, version, "up")

    def migrate_down(self, version: str) -> Callable[[F], F]:
        """Decorate the step that turns ``version``'s data back into the previous version's.

        A downgrade from B to A (run by B's code) runs, newest first, the ``down`` step of every
        version V with A < V <= B; a step without ``down`` makes the downgrade impossible.
        """
        return self._register_step(self.down_steps, version, "down")

    def _register(
        self, table: dict[str, Any], kinds: tuple[str, ...], allowed: tuple[str, ...], what: str
    ) -> Callable[[F], F]:
        if not kinds:
            raise DescriptionError(f"name the {what} kinds: @service.{what}({', '.join(map(repr, allowed))})")
        for kind in kinds:
            if kind not in allowed:
                raise DescriptionError(f"{kind!r} is not an {what} kind ({', '.join(allowed)})")
            if kind in table:
                raise DescriptionError(f"the service already has an {what} hook for {kind!r}")

        def decorate(fn: F) -> F:
            _need_callable(fn, f"{what} hook")
            for kind in kinds:
                table[kind] = fn
            return fn

        return decorate

    def _register_step(self, table: dict[str, Any], version: str, direction: str) -> Callable[[F], F]:
        if not isinstance(version, str) or not version.strip():
            raise DescriptionError(f"migrate_{direction} needs a version such as '1.1.0:0'")
        if version in table:
            raise DescriptionError(f"the service already has a {direction} migration to {version}")

        def decorate(fn: F) -> F:
            _need_callable(fn, f"{direction} migration")
            table[version] = fn
            return fn

        return decorate

    def migration_steps(self) -> list[wire.MigrationStep]:
        """The declared steps (as written), for the description."""
        versions = list(self.up_steps) + [v for v in self.down_steps if v not in self.up_steps]
        return [wire.MigrationStep(version=v, up=v in self.up_steps, down=v in self.down_steps) for v in versions]


def _check_spec(action_id: str, spec: Mapping[str, Any]) -> None:
    from startos.protocol.inputspec import decode_spec, spec_problem

    try:
        decoded = decode_spec(msgspec.to_builtins(dict(spec)))
    except Exception as exc:  # noqa: BLE001 (any decoding failure is the author's mistake)
        raise DescriptionError(f"action {action_id!r}: input spec: {exc}") from None
    problem = spec_problem(decoded)
    if problem is not None:
        raise DescriptionError(f"action {action_id!r}: input spec: {problem}")


def _need_callable(fn: object, what: str) -> None:
    if not callable(fn):
        raise DescriptionError(f"the {what} must be a function")

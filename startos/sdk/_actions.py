"""Actions and interfaces: what a package offers the user besides running.

::

    service = Service(volumes=["main"], interfaces=[Interface("main", "Web interface", port=8080)])

    @service.action("show-credentials", "Show credentials", description="The admin login.")
    def show_credentials(ctx: ActionContext, _input: None) -> ActionResult:
        password = ctx.volume_path("main", "password").read_text()
        return ActionResult(values=[Value("Password", password, masked=True)])

An action may take input: pass ``input=`` an input spec (:mod:`startos.sdk.input`); the host
validates what the user sends against it before the action runs, so the function receives a
normalized ``dict``. ``@service.action_input("id")`` decorates a function returning the current
values to prefill the form with (and that tasks compare against).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from startos.protocol import service_items as items
from startos.sdk.errors import DescriptionError

if TYPE_CHECKING:
    from startos.sdk._context import ActionContext

__all__ = ["Action", "ActionResult", "Disabled", "Interface", "Value"]

ActionFunction = Callable[["ActionContext", Any], "ActionResult | str | None"]
InputFunction = Callable[["ActionContext"], Mapping[str, Any] | None]


def _convert(what: str, data: dict[str, Any], kind: type[Any]) -> Any:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise DescriptionError(f"{what}: {exc}") from None


@dataclass(frozen=True)
class Disabled:
    """An action shown greyed out, with ``reason`` telling why."""

    reason: str


@dataclass(frozen=True)
class Value:
    """A value an action shows: copyable, hidden behind a reveal when ``masked``, maybe as a QR code."""

    name: str
    value: str
    _: KW_ONLY
    description: str | None = None
    copyable: bool = True
    masked: bool = False
    qr: bool = False


@dataclass(frozen=True)
class ActionResult:
    """What an action shows when it finishes: a message and values."""

    message: str | None = None
    values: Sequence[Value] = ()
    title: str | None = None

    def to_wire(self) -> items.ActionOutcome:
        data = {"title": self.title, "message": self.message, "values": [asdict(v) for v in self.values]}
        return _convert("action result", data, items.ActionOutcome)


@dataclass
class Action:
    """A registered action (made by ``@service.action``)."""

    id: str
    name: str
    fn: ActionFunction
    description: str = ""
    warning: str | None = None
    group: str | None = None
    visibility: Literal["enabled", "hidden"] | Disabled = "enabled"
    allowed_statuses: items.AllowedStatuses = "any"
    input_spec: Mapping[str, Any] | None = None
    input_fn: InputFunction | None = None

    def to_wire(self) -> items.ActionDecl:
        spec = None
        if self.input_spec is not None:
            spec = msgspec.to_builtins(dict(self.input_spec))
        visibility: Any = self.visibility
        if isinstance(visibility, Disabled):
            visibility = {"disabled": visibility.reason}
        data = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "warning": self.warning,
            "group": self.group,
            "visibility": visibility,
            "allowed_statuses": self.allowed_statuses,
            "input_spec": spec,
        }
        return _convert(f"action {self.id!r}", {k: v for k, v in data.items() if v is not None}, items.ActionDecl)


@dataclass(frozen=True)
class Interface:
    """A network endpoint: the host serves ``port`` of the service on the LAN.

    ``type`` is ui, api or p2p; ``scheme`` what the service speaks on ``port`` (``http``, or None
    for raw TCP). With ``ssl`` (the default) the host puts TLS with its root CA's certificate in
    front, so a UI is reached as ``https://<server>.local:<assigned port>``.
    """

    id: str
    name: str
    _: KW_ONLY
    port: int
    type: Literal["ui", "api", "p2p"] = "ui"
    description: str = ""
    scheme: str | None = "http"
    ssl: bool = True
    masked: bool = False
    path: str = "/"

    def __post_init__(self) -> None:
        self.to_wire()

    def to_wire(self) -> items.InterfaceDecl:
        data = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "type": self.type,
            "port": self.port,
            "scheme": self.scheme,
            "ssl": self.ssl,
            "masked": self.masked,
            "path": self.path,
        }
        return _convert(f"interface {self.id!r}", data, items.InterfaceDecl)


def outcome_of(action_id: str, returned: object) -> items.ActionOutcome:
    """Turn what an action function returned into the wire result (a str is the message)."""
    if returned is None:
        return items.ActionOutcome()
    if isinstance(returned, str):
        return ActionResult(message=returned).to_wire()
    if isinstance(returned, ActionResult):
        return returned.to_wire()
    raise DescriptionError(
        f"action {action_id!r} returned {type(returned).__name__}; return an ActionResult, a str or None"
    )

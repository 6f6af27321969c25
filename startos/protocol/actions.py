"""Health checks, actions, tasks and hosts: RPC methods and the service actors' messages."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from startos.protocol.base import Message, Params, Result
from startos.protocol.rpc import method

_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"
PackageId = Annotated[str, Meta(pattern=_ID, max_length=63)]
ItemId = Annotated[str, Meta(pattern=_ID, max_length=63)]
ReplayId = Annotated[str, Meta(min_length=1, max_length=128)]

# -- RPC params and results ----------------------------------------------------------------------


class ActionRef(Params, frozen=True):
    package_id: PackageId
    action_id: ItemId


class RunActionParams(Params, frozen=True):
    package_id: PackageId
    action_id: ItemId
    input: dict[str, Any] | None = None


class ActionInputResult(Result, frozen=True):
    """The form of an action: its input spec, the values to prefill, and the action's metadata."""

    spec: dict[str, Any] | None
    value: dict[str, Any] | None
    action: dict[str, Any]


class ActionValueOut(msgspec.Struct, frozen=True, rename="camel"):
    name: str
    value: str
    description: str | None
    copyable: bool
    masked: bool
    qr: bool


class ActionResultOut(Result, frozen=True):
    title: str | None
    message: str | None
    values: list[ActionValueOut]


class ClearTaskParams(Params, frozen=True):
    package_id: PackageId
    replay_id: ReplayId
    force: bool = False


class HostParams(Params, frozen=True):
    package: PackageId
    host: ItemId | None = None


class AddressRow(Result, frozen=True):
    host: str
    interface: str
    internal_port: int
    kind: str  # ipv4 | ipv6 | mdns
    hostname: str
    port: int
    ssl: bool
    public: bool
    enabled: bool
    url: str


class BindingRow(Result, frozen=True):
    host: str
    internal_port: int
    assigned_port: int | None
    ssl: bool
    enabled: bool
    disabled: list[str]


class SetAddressEnabledParams(Params, frozen=True):
    package: PackageId
    host: ItemId
    internal_port: Annotated[int, Meta(ge=1, le=65535)]
    # A hostname or IP ("192.168.1.5", "my-server.local"), or an address row as listed (its
    # ``hostname`` is used), as StartOS clients send the row itself.
    address: Annotated[str, Meta(min_length=1, max_length=255)] | dict[str, Any]
    enabled: bool

    def hostname(self) -> str:
        if isinstance(self.address, str):
            return self.address
        found = self.address.get("hostname")
        if isinstance(found, dict):  # StartOS's HostnameInfo: {"kind": "ip", "hostname": {"value": ...}}
            found = found.get("value") or found.get("host")
        if not isinstance(found, str) or not found:
            raise ValueError("address: give a hostname or IP, or an address row with its hostname")
        return found


class QrParams(Params, frozen=True):
    text: Annotated[str, Meta(min_length=1, max_length=2048)]


class QrResult(Result, frozen=True):
    svg: str


method(
    "package.action.get-input",
    "The input spec of an action and the values to prefill its form with",
    ActionRef,
    ActionInputResult,
)
method(
    "package.action.run",
    "Run an action of a service; its input is validated against the action's spec",
    RunActionParams,
    ActionResultOut | None,
    mutating=True,
)
method(
    "package.action.clear-task",
    "Dismiss a task (a required one only with force)",
    ClearTaskParams,
    None,
    mutating=True,
)
method("package.host.address.list", "Every address of a service's interfaces", HostParams, list[AddressRow])
method("package.host.binding.list", "The port bindings of a service's hosts", HostParams, list[BindingRow])
method(
    "package.host.binding.set-address-enabled",
    "Enable or disable one address of a binding (a disabled address stops answering)",
    SetAddressEnabledParams,
    None,
    mutating=True,
)
method("util.qr", "A QR code (SVG) of a text, e.g. an address", QrParams, QrResult)


# -- actor messages ------------------------------------------------------------------------------


class CheckReport(Message, frozen=True):
    """Told by a HealthCheckActor to its ServiceActor: one result (only the first and the changes matter)."""

    check: str
    generation: int
    result: str
    message: str | None = None


class CheckGate(Message, frozen=True):
    """Told by a ServiceActor to a HealthCheckActor: wait (``waiting_for`` says on what) or run.

    ``restart_grace`` starts the grace period anew (the daemon it watches has just started).
    """

    waiting_for: str | None = None
    restart_grace: bool = False


class GetActionInput(Message, frozen=True):
    action_id: str


class RunActionRequest(Message, frozen=True):
    action_id: str
    input: dict[str, Any] | None = None


class RefreshTasks(Message, frozen=True):
    """Re-evaluate tasks that point at ``action_id`` of this package (it ran, or its input changed)."""

    action_id: str | None = None


class DependencyChanged(Message, frozen=True):
    """Told to a ServiceActor when a package it depends on changed state (re-check, maybe start)."""

    package_id: str


class RefreshHosts(Message, frozen=True):
    """Told to each ServiceActor when the server's hostname changed: list its addresses again."""


class SetAddressEnabled(Message, frozen=True):
    """Asked of a package's ServiceActor: turn one address of a binding on or off; reply with the revision."""

    host: str
    internal_port: int
    address: str
    enabled: bool

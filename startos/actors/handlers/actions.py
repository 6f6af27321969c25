"""Actions, tasks and service hosts over RPC (``package.action.*``, ``package.host.*``, ``util.qr``).

A package's ServiceActor owns its tasks and hosts: running an action, dismissing a task or
turning an address off is one command to ``service:<id>``, which checks it and writes the change.
The address and binding lists only read what the ServiceActor published.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec

from startos.actors.facade import FacadeActor
from startos.actors.registry import rpc
from startos.protocol.actions import (
    ActionInputResult,
    ActionRef,
    ActionResultOut,
    AddressRow,
    BindingRow,
    ClearTaskParams,
    GetActionInput,
    HostParams,
    QrParams,
    QrResult,
    RunActionParams,
    RunActionRequest,
    SetAddressEnabled,
    SetAddressEnabledParams,
)
from startos.protocol.calls import CallContext
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.owners import service_owner
from startos.protocol.packages import DismissTask
from startos.protocol.store import DbDump

ACTION_TIMEOUT = 660.0  # an action may run up to 10 minutes in the package
COMMAND_TIMEOUT = 30.0  # a task or an address changes in one store write


def _entry(facade: FacadeActor, package_id: str) -> dict[str, Any]:
    entry = facade.ask("store", DbDump(pointer="/public/packageData")).value.get(package_id)
    if entry is None:
        raise RpcError(ErrorKind.NOT_FOUND, f"{package_id} is not installed")
    return dict(entry)


def _service_ask(facade: FacadeActor, package_id: str, message: object, timeout: float) -> Any:
    """Ask the package's ServiceActor; NotFound when the package is not installed or not loaded."""
    _entry(facade, package_id)
    if facade.directory.get(service_owner(package_id)) is None:
        raise RpcError(ErrorKind.NOT_FOUND, f"{package_id} is not loaded right now (restarting?); try again")
    return facade.directory.ask(service_owner(package_id), message, timeout=timeout)


@rpc("package.action.get-input")
def _get_input(facade: FacadeActor, params: ActionRef, _ctx: CallContext) -> ActionInputResult:
    answer = _service_ask(facade, params.package_id, GetActionInput(action_id=params.action_id), 90)
    return ActionInputResult(spec=answer["spec"], value=answer["value"], action=answer["action"])


@rpc("package.action.run")
def _run(facade: FacadeActor, params: RunActionParams, _ctx: CallContext) -> ActionResultOut | None:
    message = RunActionRequest(action_id=params.action_id, input=params.input)
    answer = _service_ask(facade, params.package_id, message, ACTION_TIMEOUT)
    if answer is None:
        return None
    return msgspec.convert(answer, ActionResultOut)


@rpc("package.action.clear-task")
def _clear_task(facade: FacadeActor, params: ClearTaskParams, _ctx: CallContext) -> int:
    dismiss = DismissTask(replay_id=params.replay_id, force=params.force)
    return int(_service_ask(facade, params.package_id, dismiss, COMMAND_TIMEOUT))


def _hosts(facade: FacadeActor, params: HostParams) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = _entry(facade, params.package)
    hosts = dict(entry.get("hosts") or {})
    if params.host is not None:
        if params.host not in hosts:
            raise RpcError(ErrorKind.NOT_FOUND, f"{params.package} has no host {params.host!r}")
        hosts = {params.host: hosts[params.host]}
    return entry, hosts


@rpc("package.host.address.list")
def _address_list(facade: FacadeActor, params: HostParams, _ctx: CallContext) -> list[AddressRow]:
    entry, hosts = _hosts(facade, params)
    interfaces = {
        (iface.get("addressInfo") or {}).get("hostId"): iface_id
        for iface_id, iface in (entry.get("serviceInterfaces") or {}).items()
    }
    rows = []
    for host_id, host in sorted(hosts.items()):
        for port, binding in sorted((host.get("bindings") or {}).items()):
            for address in (binding.get("addresses") or {}).get("available") or []:
                rows.append(
                    AddressRow(
                        host=host_id,
                        interface=interfaces.get(host_id, host_id),
                        internal_port=int(port),
                        kind=address["kind"],
                        hostname=address["hostname"],
                        port=address["port"],
                        ssl=address["ssl"],
                        public=address["public"],
                        enabled=address["enabled"],
                        url=address["url"],
                    )
                )
    return rows


@rpc("package.host.binding.list")
def _binding_list(facade: FacadeActor, params: HostParams, _ctx: CallContext) -> list[BindingRow]:
    _, hosts = _hosts(facade, params)
    rows = []
    for host_id, host in sorted(hosts.items()):
        for port, binding in sorted((host.get("bindings") or {}).items()):
            net = binding.get("net") or {}
            rows.append(
                BindingRow(
                    host=host_id,
                    internal_port=int(port),
                    assigned_port=net.get("assignedPort"),
                    ssl=bool(net.get("ssl")),
                    enabled=bool(binding.get("enabled", True)),
                    disabled=list((binding.get("addresses") or {}).get("disabled") or []),
                )
            )
    return rows


@rpc("package.host.binding.set-address-enabled")
def _set_address_enabled(facade: FacadeActor, params: SetAddressEnabledParams, _ctx: CallContext) -> int:
    try:
        address = params.hostname()
    except ValueError as exc:
        raise RpcError(ErrorKind.INVALID_PARAMS, str(exc)) from None
    command = SetAddressEnabled(
        host=params.host, internal_port=params.internal_port, address=address, enabled=params.enabled
    )
    return int(_service_ask(facade, params.package, command, COMMAND_TIMEOUT))


@rpc("util.qr")
def _qr(_facade: FacadeActor, params: QrParams, _ctx: CallContext) -> QrResult:
    import segno

    code = segno.make(params.text, error="m")
    out = io.BytesIO()
    code.save(out, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, title=None)
    return QrResult(svg=out.getvalue().decode())

"""Actions, tasks and service hosts over RPC (``package.action.*``, ``package.host.*``, ``util.qr``)."""

from __future__ import annotations

import io
from typing import Any

from startos.actors.facade import CallContext, FacadeActor
from startos.actors.registry import rpc
from startos.actors.services.service import service_name
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
    SetAddressEnabledParams,
)
from startos.protocol.errors import ErrorKind
from startos.protocol.jsonrpc import RpcError
from startos.protocol.packages import Reconcile
from startos.protocol.store import DbApply, DbDump

ACTION_TIMEOUT = 660.0  # an action may run up to 10 minutes in the package


def _entry(facade: FacadeActor, package_id: str) -> dict[str, Any]:
    entry = facade.ask("store", DbDump(pointer="/public/packageData")).value.get(package_id)
    if entry is None:
        raise RpcError(ErrorKind.NOT_FOUND, f"{package_id} is not installed")
    return dict(entry)


def _service_ask(facade: FacadeActor, package_id: str, message: object, timeout: float) -> Any:
    _entry(facade, package_id)
    if facade.directory.get(service_name(package_id)) is None:
        raise RpcError(ErrorKind.NOT_FOUND, f"{package_id} is not loaded right now (restarting?); try again")
    return facade.directory.ask(service_name(package_id), message, timeout=timeout)


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
    import msgspec

    return msgspec.convert(answer, ActionResultOut)


@rpc("package.action.clear-task")
def _clear_task(facade: FacadeActor, params: ClearTaskParams, _ctx: CallContext) -> int:
    entry = _entry(facade, params.package_id)
    task = (entry.get("tasks") or {}).get(params.replay_id)
    if task is None:
        raise RpcError(ErrorKind.NOT_FOUND, f"{params.package_id} has no task {params.replay_id!r}")
    if (task.get("task") or {}).get("severity") == "critical" and not params.force:
        raise RpcError(
            ErrorKind.ACTION,
            f"the task {params.replay_id!r} is required: run its action, or dismiss it with force",
        )
    path = f"/public/packageData/{params.package_id}/tasks/{params.replay_id}"
    revision = int(
        facade.ask(
            "store", DbApply(patch=[{"op": "test", "path": path, "value": task}, {"op": "remove", "path": path}])
        )
    )
    ref = facade.directory.get(service_name(params.package_id))
    if ref is not None:
        ref.tell(Reconcile())
    return revision


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
    from startos.protocol.proxy import SetDisabled

    try:
        address = params.hostname()
    except ValueError as exc:
        raise RpcError(ErrorKind.INVALID_PARAMS, str(exc)) from None
    _, hosts = _hosts(facade, HostParams(package=params.package, host=params.host))
    binding = (hosts[params.host].get("bindings") or {}).get(str(params.internal_port))
    if binding is None:
        raise RpcError(
            ErrorKind.NOT_FOUND, f"{params.package}/{params.host} has no binding for port {params.internal_port}"
        )
    addresses = binding.get("addresses") or {}
    available = list(addresses.get("available") or [])
    if not any(a.get("hostname") == address for a in available):
        known = ", ".join(a.get("hostname", "?") for a in available) or "none"
        raise RpcError(ErrorKind.NOT_FOUND, f"{address} is not an address of this binding (known: {known})")
    disabled = [a for a in addresses.get("disabled") or [] if a != address]
    if not params.enabled:
        disabled.append(address)
    updated = [{**a, "enabled": a.get("hostname") not in disabled} for a in available]
    base = f"/public/packageData/{params.package}/hosts/{params.host}/bindings/{params.internal_port}/addresses"
    key = f"{params.package}/{params.host}/{params.internal_port}"
    if facade.directory.get("proxy") is not None:
        facade.ask("proxy", SetDisabled(key=key, disabled=tuple(disabled)))
    return int(
        facade.ask(
            "store",
            DbApply(
                patch=[
                    {"op": "replace", "path": f"{base}/disabled", "value": disabled},
                    {"op": "replace", "path": f"{base}/available", "value": updated},
                ]
            ),
        )
    )


@rpc("util.qr")
def _qr(_facade: FacadeActor, params: QrParams, _ctx: CallContext) -> QrResult:
    import segno

    code = segno.make(params.text, error="m")
    out = io.BytesIO()
    code.save(out, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, title=None)
    return QrResult(svg=out.getvalue().decode())

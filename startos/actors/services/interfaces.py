"""A service's interfaces on the LAN: what the proxy exposes, and the ``hosts`` entry that says so.

A plain helper the ServiceActor holds and calls from its handlers only. It asks the proxy to
expose each declared interface, remembers what it exposed (to withdraw it when the service
stops), and computes ``packageData[id].hosts``; the ServiceActor writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from pykka import ActorDeadError

from startos.actors.services import offers
from startos.errors import StartOSError
from startos.protocol import service_items as items
from startos.protocol.actions import SetAddressEnabled
from startos.protocol.errors import ErrorKind
from startos.protocol.proxy import Expose, SetDisabled, Unexpose
from startos.protocol.store import DbDump
from startos.supervision import ActorNotFound, Directory

__all__ = ["InterfaceError", "Interfaces"]

logger = logging.getLogger(__name__)


class InterfaceError(StartOSError):
    """An address or binding that does not exist; the message names it."""


@dataclass
class Interfaces:
    """The interfaces one service declares, and the proxy keys they are exposed under."""

    package_id: str
    directory: Directory
    listen_host: str
    log: Callable[[str], None]
    decls: dict[str, items.InterfaceDecl] = field(default_factory=dict)
    exposed: list[str] = field(default_factory=list)

    def expose(self, old_hosts: dict[str, Any], target_host: str) -> dict[str, Any]:
        """Expose every interface (again) and return ``hosts``; a port it had before is kept if free."""
        from startos.net.certs import machine_addresses

        proxy = self.directory.get("proxy")
        info = self.directory.ask("store", DbDump(pointer="/public/serverInfo")).value or {}
        hostname = info.get("hostname")
        hosts: dict[str, Any] = {}
        for decl in self.decls.values():
            key = f"{self.package_id}/{decl.id}/{decl.port}"
            old = ((old_hosts.get(decl.id) or {}).get("bindings") or {}).get(str(decl.port)) or {}
            disabled = list(((old.get("addresses") or {}).get("disabled")) or [])
            wanted = int((old.get("net") or {}).get("assignedPort") or 0)
            port: int | None = None
            if proxy is not None:
                message = Expose(
                    key=key,
                    target_host=target_host,
                    target_port=decl.port,
                    tls=decl.ssl,
                    listen_port=wanted,
                    http=decl.scheme == "http",
                    hostnames=(f"{hostname}.local",) if hostname else (),
                )
                try:
                    port = self.directory.ask("proxy", message, timeout=30).port
                except StartOSError:
                    if wanted == 0:
                        raise
                    # The port it had is taken now: take another one (the address changes).
                    again = msgspec.structs.replace(message, listen_port=0)
                    port = self.directory.ask("proxy", again, timeout=30).port
                    self.log(f"interface {decl.id}: port {wanted} is taken, now on {port}")
                self.exposed.append(key)
                if disabled:
                    self.directory.ask("proxy", SetDisabled(key=key, disabled=tuple(disabled)), timeout=30)
            ips = offers.listen_addresses(self.listen_host, machine_addresses()) if proxy is not None else []
            hosts[decl.id] = {
                "bindings": {
                    str(decl.port): {
                        "enabled": True,
                        "net": {"assignedPort": port, "ssl": decl.ssl},
                        "addresses": {
                            "available": offers.binding_addresses(decl, port, ips, hostname, disabled) if port else [],
                            "disabled": disabled,
                        },
                    }
                },
                "publicDomains": {},
                "privateDomains": [],
            }
        return hosts

    def unexpose(self) -> None:
        """Withdraw everything exposed (the service stops); a proxy already gone is no error."""
        keys, self.exposed = self.exposed, []
        for key in keys:
            try:
                self.directory.ask("proxy", Unexpose(key=key), timeout=10)
            except (ActorNotFound, ActorDeadError, StartOSError):  # the proxy may be stopping too
                logger.debug("could not unexpose %s", key)

    def set_address_enabled(
        self, pointer: str, hosts: dict[str, Any], message: SetAddressEnabled
    ) -> list[dict[str, Any]]:
        """Turn one address of a binding on or off at the proxy; returns the patch that records it."""
        host = hosts.get(message.host)
        if host is None:
            raise InterfaceError(f"{self.package_id} has no host {message.host!r}", kind=ErrorKind.NOT_FOUND)
        binding = (host.get("bindings") or {}).get(str(message.internal_port))
        if binding is None:
            raise InterfaceError(
                f"{self.package_id}/{message.host} has no binding for port {message.internal_port}",
                kind=ErrorKind.NOT_FOUND,
            )
        addresses = binding.get("addresses") or {}
        available = list(addresses.get("available") or [])
        if not any(a.get("hostname") == message.address for a in available):
            known = ", ".join(a.get("hostname", "?") for a in available) or "none"
            raise InterfaceError(
                f"{message.address} is not an address of this binding (known: {known})", kind=ErrorKind.NOT_FOUND
            )
        disabled = [a for a in addresses.get("disabled") or [] if a != message.address]
        if not message.enabled:
            disabled.append(message.address)
        updated = [{**a, "enabled": a.get("hostname") not in disabled} for a in available]
        key = f"{self.package_id}/{message.host}/{message.internal_port}"
        if self.directory.get("proxy") is not None:
            self.directory.ask("proxy", SetDisabled(key=key, disabled=tuple(disabled)), timeout=30)
        base = f"{pointer}/hosts/{message.host}/bindings/{message.internal_port}/addresses"
        return [
            {"op": "replace", "path": f"{base}/disabled", "value": disabled},
            {"op": "replace", "path": f"{base}/available", "value": updated},
        ]

"""The network of a namespace sandbox: a named network namespace and a point-to-point veth pair.

For package ``<id>``: network namespace ``startos-<id>`` (``ip netns``), host interface
``vs<10 hex digits of sha256(id)>`` (interface names are at most 15 characters) holding the first
address of a /30 taken from a private range (default 10.92.0.0/16), and inside, ``eth0`` holding
the second address, with a default route through the host side and ``lo`` up. No NAT: the host
reaches the service and the service reaches the host, nothing else (a later issue adds the rest).
A service without network gets the namespace with only ``lo``.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gevent
import gevent.subprocess

from ._common import DEFAULT_PATH
from .base import SandboxError

NETNS_DIR = Path("/run/netns")
DEFAULT_SUBNET = "10.92.0.0/16"


def ip_binary() -> str | None:
    """Path of iproute2's ``ip`` (Debian package ``iproute2``), or None."""
    return shutil.which("ip", path=f"{DEFAULT_PATH}:{os.environ.get('PATH', '')}")


def _ip(args: list[str], stdin: str | None = None, check: bool = True) -> str:
    ip = ip_binary()
    if ip is None:
        raise SandboxError("namespace sandboxes need iproute2's `ip` (apt install iproute2)")
    result = gevent.subprocess.run([ip, *args], input=stdin, capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise SandboxError(f"`ip {' '.join(args)}` failed: {result.stderr.strip() or result.returncode}")
    return str(result.stdout)


def names(package_id: str) -> tuple[str, str, str]:
    """(network namespace, host interface, temporary name of the inside interface)."""
    digest = hashlib.sha256(package_id.encode()).hexdigest()[:10]
    return f"startos-{package_id}", f"vs{digest}", f"vp{digest}"


@dataclass(frozen=True)
class Network:
    """What was made for one service: its namespace and, when connected, both addresses."""

    package_id: str
    netns: str
    host_interface: str | None = None
    host_address: str | None = None
    address: str | None = None

    @property
    def path(self) -> str:
        return str(NETNS_DIR / self.netns)


@contextmanager
def _lock(path: Path, timeout: float = 30.0) -> Iterator[None]:
    """Serialize address choice across greenlets and processes (two startd or test runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SandboxError(f"timed out waiting for the sandbox network lock {path}") from None
                gevent.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


def _used_blocks(network: ipaddress.IPv4Network) -> set[int]:
    used = set()
    for link in json.loads(_ip(["-j", "-4", "addr", "show"]) or "[]"):
        for info in link.get("addr_info", []):
            address = ipaddress.ip_address(info.get("local", "0.0.0.0"))
            if address in network:
                used.add((int(address) - int(network.network_address)) // 4)
    return used


def _choose(package_id: str, subnet: str) -> tuple[str, str]:
    try:
        network = ipaddress.ip_network(subnet)
    except ValueError as exc:
        raise SandboxError(f"sandbox subnet {subnet!r} is not a network: {exc}") from exc
    if not isinstance(network, ipaddress.IPv4Network) or network.prefixlen > 30:
        raise SandboxError(f"sandbox subnet {subnet!r} must be an IPv4 network of /30 or larger")
    count = network.num_addresses // 4
    used = _used_blocks(network)
    # Start from the id's hash so that a service keeps its address across restarts.
    start = int(hashlib.sha256(package_id.encode()).hexdigest(), 16) % count
    for step in range(count):
        block = (start + step) % count
        if block not in used:
            base = int(network.network_address) + 4 * block
            return str(ipaddress.IPv4Address(base + 1)), str(ipaddress.IPv4Address(base + 2))
    raise SandboxError(f"no free /30 left in the sandbox subnet {subnet}")


def create(package_id: str, *, connect: bool, subnet: str, lock_path: Path) -> Network:
    """Make the namespace (and veth pair when ``connect``); undo it all if a step fails."""
    netns, host_if, peer = names(package_id)
    with _lock(lock_path):
        _ip(["netns", "add", netns])
        try:
            if not connect:
                _ip(["-n", netns, "link", "set", "lo", "up"])
                return Network(package_id, netns)
            host_address, address = _choose(package_id, subnet)
            _ip(["link", "add", host_if, "type", "veth", "peer", "name", peer, "netns", netns])
            _ip(["-batch", "-"], stdin=f"addr add {host_address}/30 dev {host_if}\nlink set {host_if} up\n")
            inside = (
                f"link set lo up\nlink set {peer} name eth0\naddr add {address}/30 dev eth0\n"
                f"link set eth0 up\nroute add default via {host_address}\n"
            )
            _ip(["-n", netns, "-batch", "-"], stdin=inside)
            return Network(package_id, netns, host_if, host_address, address)
        except BaseException:
            remove(package_id)
            raise


def remove(package_id: str) -> None:
    """Delete the host interface (its peer goes with it) and the namespace; fine if absent."""
    netns, host_if, _ = names(package_id)
    if Path("/sys/class/net", host_if).exists():
        _ip(["link", "del", host_if], check=False)
    if (NETNS_DIR / netns).exists():
        _ip(["netns", "del", netns], check=False)


def exists(package_id: str) -> bool:
    netns, host_if, _ = names(package_id)
    return (NETNS_DIR / netns).exists() or Path("/sys/class/net", host_if).exists()

"""MdnsActor: makes ``<hostname>.local`` resolve to this machine on the local network.

python-zeroconf publishes A/AAAA records only as part of a service, so the name is advertised
as an ``_http._tcp`` service (the dashboard) whose ``server`` is ``<hostname>.local.`` and whose
addresses are the machine's own: any mDNS resolver on the LAN (Avahi, Bonjour, Windows) then
answers ``<hostname>.local`` with them.

Under gevent (REFERENCE.md §10) registration works after ``monkey.patch_all()`` but spends about
1.7 s probing, so it never runs on the actor's message loop: a worker greenlet reconciles the
desired name with what is registered, coalescing quick renames, while the actor keeps answering.
The worker also re-reads the machine's addresses every ``refresh_interval`` seconds and updates
the records when they change (a new DHCP lease must not break the ``.local`` address).

The status is published at ``/public/serverInfo/network/mdns``. On stop the name is withdrawn
(goodbye packets) and zeroconf's sockets and loop thread are closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import socket
from collections.abc import Coroutine
from typing import Any

import gevent
import ifaddr
import msgspec
from gevent.event import Event
from zeroconf import InterfaceChoice, IPVersion, ServiceInfo, Zeroconf

from startos.actors.patching import PatchError
from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind
from startos.protocol.mdns import Advertise, GetMdnsStatus, MdnsStatus, StopAdvertising
from startos.protocol.store import DbApply, DbDump
from startos.supervision import Actor, Directory, handles

__all__ = ["InvalidHostname", "MdnsActor", "scan_network"]

logger = logging.getLogger(__name__)


class _GoodbyesAlreadySent(logging.Filter):
    """Drop zeroconf's "unregister_all_services skipped" warning on close.

    Under gevent, asyncio's "running loop" lives in the OS thread's state, which every greenlet
    shares with zeroconf's loop greenlet, so ``Zeroconf.close()`` believes it runs inside its
    own loop and skips the goodbyes. ``_close`` sends them itself first; the warning is noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "unregister_all_services skipped" not in record.getMessage()


logging.getLogger("zeroconf").addFilter(_GoodbyesAlreadySent())

NETWORK = "/public/serverInfo/network"
STATUS = f"{NETWORK}/mdns"
SERVICE_TYPE = "_http._tcp.local."
LOOP_TIMEOUT = 15.0  # seconds; a registration takes about 1.7 s


async def _register(zc: Zeroconf, info: ServiceInfo) -> None:
    # Probe, then wait for the announcements too (as Zeroconf.register_service does).
    broadcasts = await zc.async_register_service(info, allow_name_change=True)
    await broadcasts


async def _update(zc: Zeroconf, info: ServiceInfo) -> None:
    broadcasts = await zc.async_update_service(info)
    await broadcasts


class InvalidHostname(StartOSError):
    """Raised when asked to advertise a name that is not one lowercase DNS label; nothing changes."""

    kind = ErrorKind.INVALID_PARAMS


def scan_network(only: list[str] | None = None) -> tuple[list[str], list[str | int]]:
    """The addresses ``<hostname>.local`` should resolve to (IPv4 first), and what to bind.

    Loopback is left out (other machines cannot use it) unless it is all there is, and so is
    IPv6 link-local (useless without a scope). ``only`` restricts to those addresses. The
    binding list (IPv4 addresses, IPv6 interface indexes) keeps zeroconf off interfaces we do
    not advertise on, such as ``lo``, where IPv6 multicast sends fail; empty means "all".
    """
    found: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int | None]] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                continue
            if address.is_link_local and address.version == 6:
                continue
            if only is not None and str(address) not in only:
                continue
            if all(address != seen for seen, _ in found):
                found.append((address, adapter.index))
    usable = [(a, i) for a, i in found if not a.is_loopback]
    if not usable:
        return sorted(str(a) for a, _ in found), []
    usable.sort(key=lambda item: (item[0].version, item[0].packed))
    bind: list[str | int] = []
    for address, index in usable:
        choice = str(address) if address.version == 4 else index
        if choice is not None and choice not in bind:
            bind.append(choice)
    return [str(a) for a, _ in usable], bind


class MdnsActor(Actor):
    """Advertises the server's ``.local`` name; told ``Advertise(hostname)`` on every rename."""

    def __init__(
        self,
        directory: Directory,
        *,
        port: int = 80,
        only: list[str] | None = None,
        refresh_interval: float = 30.0,
        store_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.port = port
        self.only = only  # advertise only these machine addresses; None: every usable one
        self.refresh_interval = refresh_interval
        self.store_timeout = store_timeout
        self._desired: str | None = None
        self._wake = Event()
        self._stopping = False
        self._inflight: concurrent.futures.Future[None] | None = None
        self._worker: gevent.Greenlet | None = None
        self._zc: Zeroconf | None = None
        self._bound: list[str | int] | None = None  # what ``_zc`` listens on
        self._info: ServiceInfo | None = None
        self._status = MdnsStatus(hostname=None, advertised=False)
        self._published: MdnsStatus | None = None

    def __str__(self) -> str:
        return "MdnsActor"

    # -- lifecycle -----------------------------------------------------------------------------

    def on_start(self) -> None:
        info = self.directory.ask("store", DbDump(pointer="/public/serverInfo"), timeout=self.store_timeout).value
        name = info.get("hostname")
        if name is not None:
            try:
                self._desired = self._checked(name)
            except InvalidHostname:
                logger.warning("not advertising the stored hostname %r: it is not a valid DNS label", name)
        self._status = MdnsStatus(hostname=self._desired, advertised=False)
        if (info.get("network") or {}).get("mdns") == msgspec.to_builtins(self._status):
            self._published = self._status  # as the last stop left it: no revision needed
        self._publish()
        self._worker = self.spawn(self._run)
        self._wake.set()

    def on_stop(self) -> None:
        self._close()
        self._status = MdnsStatus(hostname=self._status.hostname, advertised=False)
        try:
            self._publish(timeout=2.0)
        except Exception:  # noqa: BLE001 (the store may already be gone when the tree stops)
            pass

    def on_exit(self, reason: Any) -> None:
        # After a crash or a kill too: never leave sockets or zeroconf's loop thread behind.
        # Whatever opened them ran on the actor's own greenlet, so on_exit runs there too, before
        # the actor's greenlets are killed: let the worker finish its step (killed inside
        # ``Zeroconf()`` it would leave a loop thread nobody can close) and close here. Closing
        # takes milliseconds, plus ~0.25 s of goodbye packets when a name was advertised.
        if self._worker is None and self._zc is None:
            return
        if gevent.getcurrent() is self._greenlet:
            self._close()
        else:  # killed before its loop ever ran: nothing can be open; stop the worker anyway
            self._stopping = True
            self._wake.set()

    def _close(self) -> None:
        # Ask the worker to finish its step rather than kill it anywhere: killed inside
        # ``Zeroconf()`` it would leave a loop thread nobody can close. A registration in
        # flight is cancelled on zeroconf's loop, so this takes milliseconds, not 1.7 s.
        self._stopping = True
        self._wake.set()
        inflight = self._inflight
        if inflight is not None:
            inflight.cancel()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(timeout=5.0)
            if not worker.dead:
                logger.error("the mDNS worker did not stop within 5 s; killing it")
                worker.kill(block=True, timeout=2.0)
        try:
            self._shut_zeroconf()
        except Exception:
            logger.exception("closing zeroconf failed")

    # -- requests ------------------------------------------------------------------------------

    @handles(Advertise)
    def advertise(self, message: Advertise) -> None:
        """Advertise ``<hostname>.local`` from now on (in the background)."""
        try:
            hostname = self._checked(message.hostname)
        except InvalidHostname:
            if self._reply_to is None:
                logger.warning("ignored Advertise with an invalid hostname %r", message.hostname)
                return
            raise
        self._desired = hostname
        self._wake.set()

    @handles(StopAdvertising)
    def stop_advertising(self, _message: StopAdvertising) -> None:
        """Withdraw the ``.local`` name (in the background)."""
        self._desired = None
        self._wake.set()

    @handles(GetMdnsStatus)
    def status(self, _message: GetMdnsStatus) -> MdnsStatus:
        """What is advertised right now."""
        return self._status

    @staticmethod
    def _checked(hostname: Any) -> str:
        try:
            return msgspec.convert(msgspec.to_builtins(Advertise(hostname=hostname)), Advertise).hostname
        except (msgspec.ValidationError, TypeError) as exc:
            raise InvalidHostname(
                f"{hostname!r} is not a valid hostname: use 1-63 lowercase letters, digits and hyphens, "
                "not starting or ending with a hyphen"
            ) from exc

    # -- the worker ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(timeout=self.refresh_interval)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._reconcile()
            except Exception as exc:  # noqa: BLE001 (network trouble: report it, retry on the next wake)
                if self._stopping:
                    return  # the registration was cancelled by _close
                logger.warning("mDNS advertisement of %r failed: %s", self._desired, exc)
                self._status = MdnsStatus(
                    hostname=self._desired, advertised=False, addresses=self._status.addresses, error=str(exc)
                )
                self._drop_registration()
            try:
                self._publish()
            except Exception:
                logger.warning("could not publish the mDNS status", exc_info=True)

    def _reconcile(self) -> None:
        desired = self._desired
        if desired is None:
            self._shut_zeroconf()
            self._status = MdnsStatus(hostname=None, advertised=False)
            return
        addresses, bind = scan_network(self.only)
        current = self._status
        if self._zc is not None and bind != self._bound:
            self._shut_zeroconf()  # an interface came or went: listen anew, then register anew
        if self._info is not None and current.hostname == desired and current.addresses == addresses:
            return
        if self._zc is None:
            self._zc = self._open(bind)
            self._bound = bind
        info = self._service(desired, addresses)
        if self._info is not None and current.hostname == desired:
            self._in_loop(self._zc, _update(self._zc, info))  # same name, new addresses: no probing
        else:
            self._drop_registration()
            self._status = MdnsStatus(hostname=desired, advertised=False, addresses=addresses)
            self._publish()
            # A rename told while this probes sets ``_wake`` again: the next round handles it.
            self._in_loop(self._zc, _register(self._zc, info))
        self._info = info
        self._status = MdnsStatus(hostname=desired, advertised=True, addresses=addresses)
        logger.info("advertising %s.local", desired, extra={"addresses": addresses})

    def _in_loop(self, zc: Zeroconf, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on zeroconf's loop and wait; if this greenlet is killed, cancel it there.

        zeroconf's own blocking calls would leave a killed registration pending in its loop, and
        ``close()`` then waits a second for it (and logs "Task was destroyed but it is pending").
        """
        assert zc.loop is not None  # set by Zeroconf() (it starts its own loop thread)
        if self._stopping:  # _close came while this step was on its way here
            coro.close()
            raise concurrent.futures.CancelledError()
        future = asyncio.run_coroutine_threadsafe(coro, zc.loop)
        self._inflight = future
        try:
            future.result(timeout=LOOP_TIMEOUT)
        except BaseException:
            future.cancel()
            raise
        finally:
            self._inflight = None

    def _drop_registration(self) -> None:
        info, self._info = self._info, None
        if info is not None and self._zc is not None:
            self._zc.unregister_service(info)  # its goodbye packets go out in the background

    def _shut_zeroconf(self) -> None:
        """Say goodbye for every name, close the sockets, join zeroconf's loop thread."""
        zc = self._zc
        self._info = None
        if zc is None:
            return
        try:
            zc.unregister_all_services()  # about 0.25 s: three goodbye rounds (see _GoodbyesAlreadySent)
        except Exception:
            logger.warning("mDNS goodbye packets could not be sent", exc_info=True)
        zc.close()
        # Cleared only now: if this greenlet is killed half-way, ``_close`` closes it again.
        self._zc = None
        self._bound = None

    @staticmethod
    def _open(bind: list[str | int]) -> Zeroconf:
        interfaces: Any = bind or InterfaceChoice.All
        try:
            return Zeroconf(interfaces=interfaces, ip_version=IPVersion.All)
        except OSError:
            # A host without IPv6 (or multicast on it) still gets an IPv4 advertisement.
            v4 = [b for b in bind if isinstance(b, str)] or InterfaceChoice.All
            return Zeroconf(interfaces=v4, ip_version=IPVersion.V4Only)

    def _service(self, hostname: str, addresses: list[str]) -> ServiceInfo:
        packed = [socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a) for a in addresses]
        return ServiceInfo(
            SERVICE_TYPE,
            f"{hostname}.{SERVICE_TYPE}",
            port=self.port,
            properties={"path": "/"},
            server=f"{hostname}.local.",
            addresses=packed,
        )

    def _publish(self, timeout: float | None = None) -> None:
        status = self._status
        if status == self._published:
            return
        value = msgspec.to_builtins(status)
        ask_timeout = self.store_timeout if timeout is None else timeout
        try:
            self.directory.ask(
                "store", DbApply(patch=[{"op": "add", "path": STATUS, "value": value}], owner="mdns"), ask_timeout
            )
        except PatchError:
            # No /public/serverInfo/network yet (the first boot): create it with our part.
            patch = [{"op": "add", "path": NETWORK, "value": {"mdns": value}}]
            self.directory.ask("store", DbApply(patch=patch, owner="mdns"), ask_timeout)
        self._published = status

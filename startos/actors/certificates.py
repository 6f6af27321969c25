"""CertificateActor ("certs"): the root CA and the HTTPS server certificate, kept and renewed.

The state tree is the truth: the CA and the server certificate, keys included, live under
``/private/certs`` (``{ca: {certPem, keyPem}, server: {hostname, certPem, keyPem}}``) so they
are durable with every other change and never leave the process. The TLS server reads files,
so the actor mirrors what it needs to ``<data_dir>/tls/`` (``ca.crt``, ``server.crt`` with the
chain, ``server.key`` mode 0600) on start and after every issue, then tells "web-tls" to load
them. The CA's fingerprint is public at ``/public/serverInfo/caFingerprint`` so users can compare
it with what their device shows.

A timer greenlet asks for a renewal check at start and every ``check_interval`` seconds: the
server certificate is reissued (same CA, same hostname, a new key) when it expires within
``renew_margin`` or no longer names every address of the machine (a new DHCP lease).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gevent
from gevent.greenlet import Greenlet
from pykka import ActorDeadError

from startos.net.certs import (
    RENEW_MARGIN,
    SERVER_VALIDITY,
    IpAddress,
    Issued,
    NoAuthority,
    create_root_ca,
    fingerprint,
    issue_server_cert,
    machine_addresses,
    needs_renewal,
    not_after,
    san_addresses,
    validate_hostname,
    write_private_file,
    write_public_file,
)
from startos.protocol.base import Message
from startos.protocol.certs import (
    CaInfo,
    CheckRenewal,
    CreateAuthority,
    GetAuthority,
    GetServerCert,
    IssueServerCert,
    ServerCertChanged,
    ServerCertInfo,
)
from startos.protocol.store import DbApply, DbDump
from startos.supervision import Actor, ActorNotFound, Directory, handles

__all__ = ["CHECK_INTERVAL", "TLS_SERVER_NAME", "CertificateActor"]

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 12 * 3600.0  # seconds between renewal checks
TLS_SERVER_NAME = "web-tls"  # the directory name of the HTTPS server told about new certificates
STORE_POINTER = "/private/certs"
FINGERPRINT_POINTER = "/public/serverInfo/caFingerprint"


class _Tick(Message, frozen=True):
    """Sent by the timer greenlet: a renewal check whose failure is logged, not raised."""


class _Server:
    __slots__ = ("hostname", "issued")

    def __init__(self, hostname: str, issued: Issued) -> None:
        self.hostname = hostname
        self.issued = issued


class CertificateActor(Actor):
    """Owns the root CA and the server certificate; issues, mirrors and renews them."""

    def __init__(
        self,
        directory: Directory,
        data_dir: Path,
        *,
        check_interval: float = CHECK_INTERVAL,
        renew_margin: timedelta = RENEW_MARGIN,
        server_validity: timedelta = SERVER_VALIDITY,
        addresses: Callable[[], list[IpAddress]] = machine_addresses,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.tls_dir = Path(data_dir) / "tls"
        self.check_interval = check_interval
        self.renew_margin = renew_margin
        self.server_validity = server_validity
        self._addresses = addresses
        self._ca: Issued | None = None
        self._server: _Server | None = None
        self._timer: Greenlet | None = None

    def __str__(self) -> str:
        return "CertificateActor"

    @property
    def ca_path(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def cert_path(self) -> Path:
        return self.tls_dir / "server.crt"

    @property
    def key_path(self) -> Path:
        return self.tls_dir / "server.key"

    # -- lifecycle ------------------------------------------------------------------------------

    def on_start(self) -> None:
        value = self.directory.ask("store", DbDump(pointer="/private")).value
        saved: dict[str, Any] = (value or {}).get("certs") or {}
        ca = saved.get("ca")
        if ca:
            self._ca = Issued(cert_pem=ca["certPem"], key_pem=ca["keyPem"])
        server = saved.get("server")
        if server and self._ca is not None:
            self._server = _Server(server["hostname"], Issued(cert_pem=server["certPem"], key_pem=server["keyPem"]))
        if self._ca is not None:
            public = self.directory.ask("store", DbDump(pointer="/public/serverInfo")).value
            if public.get("caFingerprint") != fingerprint(self._ca.cert_pem):
                self._save()
            try:
                # The files may be missing or stale (a restored backup, a wiped tls/): rewrite them.
                self._mirror()
            except Exception:  # HTTPS stays down; HTTP and everything else go on
                logger.exception("could not write the TLS files to %s", self.tls_dir)
        self._timer = self.spawn(self._tick_forever)

    def on_stop(self) -> None:
        self._stop_timer()

    def on_exit(self, reason: Any) -> None:
        self._stop_timer()

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.kill(block=False)

    def _tick_forever(self) -> None:
        while True:
            try:
                self.actor_ref.tell(_Tick())
            except ActorDeadError:
                return
            gevent.sleep(self.check_interval)

    # -- messages -------------------------------------------------------------------------------

    @handles(CreateAuthority)
    def create_authority(self, message: CreateAuthority) -> CaInfo:
        """Create the root CA once; later calls return the existing one unchanged."""
        if self._ca is None:
            ca = create_root_ca(message.name)
            self._ca = ca
            try:
                self._save()
            except BaseException:
                self._ca = None  # nothing durable happened: forget it
                raise
            self._mirror()
            logger.info("root CA created", extra={"fingerprint": fingerprint(ca.cert_pem)})
        return self._ca_info(self._ca)

    @handles(IssueServerCert)
    def issue_server_cert(self, message: IssueServerCert) -> ServerCertInfo:
        """Issue a new server certificate for the hostname, keeping the CA; tell the TLS server."""
        hostname = validate_hostname(message.hostname)
        if self._ca is None:
            raise NoAuthority("there is no root CA yet: finish setup first")
        return self._issue(hostname, "requested")

    @handles(GetAuthority)
    def get_authority(self, _message: GetAuthority) -> CaInfo | None:
        """The root CA (PEM and fingerprint), or ``None`` before setup."""
        return None if self._ca is None else self._ca_info(self._ca)

    @handles(GetServerCert)
    def get_server_cert(self, _message: GetServerCert) -> ServerCertInfo | None:
        """The current server certificate's files and facts, or ``None`` before one was issued."""
        return None if self._server is None else self._server_info(self._server)

    @handles(CheckRenewal)
    def check_renewal(self, _message: CheckRenewal) -> bool:
        """Reissue the server certificate if it is due; ``True`` when it was."""
        why = self._renewal_due()
        if why is None:
            return False
        assert self._server is not None
        self._issue(self._server.hostname, why)
        if why.startswith("new addresses"):
            self._tell_services_addresses_changed()
        return True

    def _tell_services_addresses_changed(self) -> None:
        """The machine's addresses changed: every service lists its interfaces' addresses again."""
        from startos.protocol.actions import RefreshHosts

        for name in self.directory.names():
            if name.startswith("service:"):
                try:
                    self.directory.tell(name, RefreshHosts())
                except ActorNotFound:
                    pass  # restarting: it lists its addresses when it starts

    @handles(_Tick)
    def _tick(self, _message: _Tick) -> None:
        try:
            self.check_renewal(CheckRenewal())
        except Exception:  # a failed renewal is retried at the next tick
            logger.exception("renewing the server certificate failed; retrying in %.0f s", self.check_interval)

    # -- internals ------------------------------------------------------------------------------

    def _renewal_due(self, now: datetime | None = None) -> str | None:
        server = self._server
        if server is None:
            return None
        now = now or datetime.now(UTC)
        if needs_renewal(server.issued.cert_pem, now, self.renew_margin):
            return f"expires {not_after(server.issued.cert_pem).isoformat()}"
        missing = set(self._addresses()) - san_addresses(server.issued.cert_pem)
        if missing:
            return "new addresses " + ", ".join(sorted(str(ip) for ip in missing))
        return None

    def _issue(self, hostname: str, why: str) -> ServerCertInfo:
        assert self._ca is not None
        issued = issue_server_cert(self._ca, hostname, self._addresses(), validity=self.server_validity)
        previous, self._server = self._server, _Server(hostname, issued)
        try:
            self._save()
        except BaseException:
            self._server = previous  # the store refused: keep serving the old certificate
            raise
        self._mirror()
        info = self._server_info(self._server)
        logger.info(
            "server certificate issued",
            extra={"hostname": hostname, "reason": why, "not_after": info.not_after, "fingerprint": info.fingerprint},
        )
        for name in (TLS_SERVER_NAME, "proxy"):  # the HTTPS server and the services' TLS proxy
            try:
                self.directory.tell(name, ServerCertChanged(cert_path=info.cert_path, key_path=info.key_path))
            except ActorNotFound:
                pass  # not in this tree (or restarting: it reads the files when it starts)
        return info

    def _save(self) -> None:
        """Write the CA, the server certificate and the public fingerprint in one revision."""
        assert self._ca is not None
        certs: dict[str, Any] = {"ca": {"certPem": self._ca.cert_pem, "keyPem": self._ca.key_pem}}
        if self._server is not None:
            certs["server"] = {
                "hostname": self._server.hostname,
                "certPem": self._server.issued.cert_pem,
                "keyPem": self._server.issued.key_pem,
            }
        patch: list[dict[str, Any]] = [
            {"op": "add", "path": STORE_POINTER, "value": certs},
            {"op": "add", "path": FINGERPRINT_POINTER, "value": fingerprint(self._ca.cert_pem)},
        ]
        self.directory.ask("store", DbApply(patch=patch, owner="certs"))

    def _mirror(self) -> None:
        """Write the files the TLS server reads; fsync runs off the hub."""
        ca, server = self._ca, self._server
        assert ca is not None

        def write() -> None:
            self.tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.tls_dir, 0o700)  # holds a key: only the server's user may list it
            write_public_file(self.ca_path, ca.cert_pem)
            if server is not None:
                # Each file is replaced atomically; the pair is consistent once both are written,
                # which is when the TLS server is told (ServerCertChanged) to read them.
                write_private_file(self.key_path, server.issued.key_pem)
                write_public_file(self.cert_path, server.issued.cert_pem + ca.cert_pem)

        gevent.get_hub().threadpool.apply(write)

    def _ca_info(self, ca: Issued) -> CaInfo:
        return CaInfo(pem=ca.cert_pem, fingerprint=fingerprint(ca.cert_pem))

    def _server_info(self, server: _Server) -> ServerCertInfo:
        pem = server.issued.cert_pem
        return ServerCertInfo(
            cert_path=str(self.cert_path),
            key_path=str(self.key_path),
            not_after=not_after(pem).isoformat(),
            fingerprint=fingerprint(pem),
            hostname=server.hostname,
            addresses=sorted(str(ip) for ip in san_addresses(pem)),
        )

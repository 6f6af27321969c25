"""The server's own X.509 certificates: a local root CA and the HTTPS certificate it signs.

Plain synchronous functions on PEM text, built on ``cryptography``. The root CA is what users
download and trust once per device (docs: "Trusting Your Root CA"); the server certificate names
the server's ``.local`` hostname, ``localhost`` and every address of the machine, and is short
enough lived for browsers to accept it (at most 398 days) so it is reissued before it expires.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store, VerificationError

from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind

__all__ = [
    "CA_VALIDITY",
    "RENEW_MARGIN",
    "SERVER_VALIDITY",
    "CertificateError",
    "InvalidHostname",
    "IpAddress",
    "Issued",
    "NoAuthority",
    "create_root_ca",
    "fingerprint",
    "issue_server_cert",
    "load_certificate",
    "load_private_key",
    "machine_addresses",
    "needs_renewal",
    "not_after",
    "san_addresses",
    "san_dns_names",
    "validate_hostname",
    "verify_server_cert",
    "write_private_file",
    "write_public_file",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CA_VALIDITY = timedelta(days=20 * 365)
# Browsers refuse server certificates valid for more than 398 days (Apple, then everyone);
# the span counts from notBefore, which is back-dated by CLOCK_SKEW.
SERVER_VALIDITY = timedelta(days=397)
CLOCK_SKEW = timedelta(hours=1)  # a client whose clock is a little behind still accepts a fresh certificate
RENEW_MARGIN = timedelta(days=30)

ORGANIZATION = "startos-py"
CA_SUFFIX = " Local Root CA"
_CN_MAX = 64  # X.520 upper bound of a common name

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class CertificateError(StartOSError):
    """Raised when a certificate or key cannot be created, parsed, verified or written."""

    kind = ErrorKind.UNKNOWN


class InvalidHostname(CertificateError):
    """Raised when a name given for a certificate is not a valid DNS hostname."""

    kind = ErrorKind.INVALID_REQUEST


class NoAuthority(CertificateError):
    """Raised when a server certificate is asked for before the root CA exists (before setup)."""

    kind = ErrorKind.UNINITIALIZED


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both as PEM text (the key unencrypted, PKCS#8)."""

    cert_pem: str
    key_pem: str


# -- validation ---------------------------------------------------------------------------------


def validate_hostname(hostname: str) -> str:
    """Return ``hostname`` normalized (lowercase, no trailing dot) or raise ``InvalidHostname``.

    The rule is the DNS one (RFC 1123): dot-separated labels of letters, digits and hyphens,
    1-63 characters each, not starting or ending with a hyphen, 253 characters in all; the last
    label is not all digits (that would be an IP address, which goes in the address list).
    """
    if not isinstance(hostname, str) or not hostname.strip():
        raise InvalidHostname("a hostname is required (e.g. my-cool-server.local)")
    name = hostname.strip().lower()
    name = name[:-1] if name.endswith(".") else name
    if not name.isascii():
        raise InvalidHostname(f"hostname {hostname!r} must use only letters a-z, digits, '-' and '.'")
    if len(name) > 253:
        raise InvalidHostname(f"hostname {hostname!r} is longer than 253 characters")
    labels = name.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise InvalidHostname(
                f"hostname {hostname!r} is not valid: each dot-separated part must be 1-63 letters, digits "
                "or '-', not starting or ending with '-'"
            )
    if labels[-1].isdigit():
        raise InvalidHostname(f"hostname {hostname!r} looks like an IP address, not a name")
    return name


def _authority_common_name(name: str) -> str:
    if not isinstance(name, str):
        raise CertificateError("the root CA's name must be text")
    clean = " ".join(name.split())  # no control characters or runs of whitespace in a subject
    if not clean:
        raise CertificateError("the root CA needs a name (e.g. the server's name, my-cool-server)")
    if not clean.isprintable():
        raise CertificateError(f"the root CA's name {name!r} contains characters that cannot be shown")
    # Long server names are cut rather than refused: the CN is only a label for humans.
    return clean[: _CN_MAX - len(CA_SUFFIX)].rstrip() + CA_SUFFIX


# -- PEM helpers --------------------------------------------------------------------------------


def _text(pem: str | bytes) -> bytes:
    return pem.encode() if isinstance(pem, str) else pem


def load_certificate(pem: str | bytes) -> x509.Certificate:
    """Parse one PEM certificate (the first of a chain); raise ``CertificateError`` if it is not one."""
    try:
        return x509.load_pem_x509_certificate(_text(pem))
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from exc


def load_private_key(pem: str | bytes) -> ec.EllipticCurvePrivateKey:
    """Parse an unencrypted PEM ECDSA private key; raise ``CertificateError`` otherwise."""
    try:
        key = serialization.load_pem_private_key(_text(pem), password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"expected an ECDSA private key, got {type(key).__name__}")
    return key


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def fingerprint(pem: str | bytes) -> str:
    """SHA-256 of the certificate's DER, as browsers show it: ``AB:CD:...`` (32 uppercase pairs)."""
    der = load_certificate(pem).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def not_after(pem: str | bytes) -> datetime:
    """When the certificate expires (UTC, timezone-aware)."""
    return load_certificate(pem).not_valid_after_utc


def needs_renewal(cert_pem: str | bytes, now: datetime | None = None, margin: timedelta = RENEW_MARGIN) -> bool:
    """True when the certificate expires within ``margin`` of ``now`` (or already has)."""
    now = now or datetime.now(UTC)
    return not_after(cert_pem) - now < margin


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def san_dns_names(pem: str | bytes) -> list[str]:
    """The DNS names the certificate is valid for."""
    san = _san(load_certificate(pem))
    return [] if san is None else list(san.get_values_for_type(x509.DNSName))


def san_addresses(pem: str | bytes) -> set[IpAddress]:
    """The IP addresses the certificate is valid for."""
    san = _san(load_certificate(pem))
    if san is None:
        return set()
    values = san.get_values_for_type(x509.IPAddress)
    return {ip for ip in values if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)}


# -- the machine --------------------------------------------------------------------------------


def machine_addresses() -> list[IpAddress]:
    """Every IPv4 and IPv6 address of the machine's interfaces (loopback included), sorted.

    IPv6 zone ids (``fe80::1%eth0``) are dropped: a certificate names an address, not a link.
    """
    found: set[IpAddress] = {ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")}
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                found.add(ipaddress.ip_address(addr.address.split("%", 1)[0]))
            except ValueError:
                continue
    return sorted(found, key=lambda ip: (ip.version, ip.packed))


# -- issuing ------------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise CertificateError("times must be timezone-aware (UTC)")
    return now


def create_root_ca(name: str, *, now: datetime | None = None, validity: timedelta = CA_VALIDITY) -> Issued:
    """A new root CA: an ECDSA P-256 key and its self-signed certificate.

    ``name`` is the server's name as users know it; the certificate's common name becomes
    ``"<name> Local Root CA"``, which is what a device's trust store lists.
    """
    start = _now(now) - CLOCK_SKEW
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _authority_common_name(name)),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert_pem=_cert_pem(cert), key_pem=_key_pem(key))


def issue_server_cert(
    ca: Issued,
    hostname: str,
    addresses: Iterable[IpAddress | str] | None = None,
    *,
    now: datetime | None = None,
    validity: timedelta = SERVER_VALIDITY,
) -> Issued:
    """A new key and a certificate signed by ``ca`` for ``hostname``, ``localhost`` and ``addresses``.

    ``addresses`` defaults to :func:`machine_addresses`. Raises ``InvalidHostname`` for a bad
    name, ``CertificateError`` for a bad address, an unreadable CA, or a validity over 398 days.
    """
    name = validate_hostname(hostname)
    if validity > timedelta(days=398):
        raise CertificateError("a server certificate may be valid for at most 398 days (browsers refuse longer)")
    ca_cert = load_certificate(ca.cert_pem)
    ca_key = load_private_key(ca.key_pem)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if ca_cert.public_key().public_bytes(serialization.Encoding.DER, spki) != ca_key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise CertificateError("the root CA's key does not match its certificate")
    ips: list[IpAddress] = []
    for raw in machine_addresses() if addresses is None else addresses:
        try:
            ip = raw if isinstance(raw, ipaddress.IPv4Address | ipaddress.IPv6Address) else ipaddress.ip_address(raw)
        except ValueError as exc:
            raise CertificateError(f"{raw!r} is not an IP address") from exc
        if ip not in ips:
            ips.append(ip)
    dns = [name] if name == "localhost" else [name, "localhost"]
    start = _now(now) - CLOCK_SKEW
    end = min(start + validity, ca_cert.not_valid_after_utc)  # never outlive the issuer
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]
    if len(name) <= _CN_MAX:  # clients read the SAN; the CN is a label, and capped at 64
        attributes.insert(0, x509.NameAttribute(NameOID.COMMON_NAME, name))
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns] + [x509.IPAddress(ip) for ip in ips]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(cert_pem=_cert_pem(cert), key_pem=_key_pem(key))


def verify_server_cert(cert_pem: str | bytes, ca_pem: str | bytes, name: str, *, now: datetime | None = None) -> None:
    """Check as a TLS client would that ``cert_pem`` chains to ``ca_pem`` and is valid for ``name``.

    ``name`` is a hostname or an IP address. Raises ``CertificateError`` saying why not.
    """
    try:
        subject: DNSName | IPAddress = IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = DNSName(name)
    verifier = PolicyBuilder().store(Store([load_certificate(ca_pem)])).time(_now(now)).build_server_verifier(subject)
    try:
        verifier.verify(load_certificate(cert_pem), [])
    except VerificationError as exc:
        raise CertificateError(f"the certificate does not verify for {name}: {exc}") from exc


# -- files --------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600 from the start, so a key is never readable by others,
    # not even between create and chmod; readers see the old file or the new one, never half.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode != 0o600:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private_file(path: Path, data: str | bytes) -> None:
    """Write a secret (a private key) atomically, mode 0600 from its first byte."""
    try:
        _write_atomic(path, _text(data), 0o600)
    except OSError as exc:
        raise CertificateError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_public_file(path: Path, data: str | bytes) -> None:
    """Write a certificate atomically, mode 0644."""
    try:
        _write_atomic(path, _text(data), 0o644)
    except OSError as exc:
        raise CertificateError(f"cannot write {path}: {exc.strerror or exc}") from exc

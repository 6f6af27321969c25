"""The root CA and server certificates as plain functions (startos.net.certs)."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from startos.net import certs
from startos.net.certs import (
    CertificateError,
    InvalidHostname,
    Issued,
    create_root_ca,
    fingerprint,
    issue_server_cert,
    load_certificate,
    needs_renewal,
    validate_hostname,
    verify_server_cert,
)
from startos.protocol.errors import ErrorKind

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ADDRESSES = ["127.0.0.1", "::1", "192.168.1.20", "fe80::1"]


@pytest.fixture(scope="module")
def ca() -> Issued:
    return create_root_ca("my-cool-server", now=NOW)


@pytest.fixture(scope="module")
def server(ca: Issued) -> Issued:
    return issue_server_cert(ca, "my-cool-server.local", ADDRESSES, now=NOW)


def ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


# -- the root CA --------------------------------------------------------------------------------


def test_root_ca_is_a_long_lived_p256_authority(ca: Issued) -> None:
    cert = load_certificate(ca.cert_pem)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "my-cool-server Local Root CA"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= timedelta(days=10 * 365)
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca  # type: ignore[attr-defined]
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign  # type: ignore[attr-defined]
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    cert.verify_directly_issued_by(cert)  # self-signed with its own key


def test_a_long_server_name_is_cut_to_fit_the_common_name() -> None:
    cert = load_certificate(create_root_ca("x" * 200, now=NOW).cert_pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert len(cn) <= 64 and str(cn).endswith(" Local Root CA")


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_the_root_ca_needs_a_name(name: str) -> None:
    with pytest.raises(CertificateError, match="needs a name"):
        create_root_ca(name)


# -- the server certificate ---------------------------------------------------------------------


def test_server_cert_names_the_hostname_localhost_and_the_addresses(server: Issued) -> None:
    cert = load_certificate(server.cert_pem)
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["my-cool-server.local", "localhost"]  # type: ignore[attr-defined]
    assert set(san.get_values_for_type(x509.IPAddress)) == {  # type: ignore[attr-defined]
        ipaddress.ip_address(a) for a in ADDRESSES
    }
    assert certs.san_dns_names(server.cert_pem) == ["my-cool-server.local", "localhost"]


def test_server_cert_extensions(ca: Issued, server: Issued) -> None:
    cert = load_certificate(server.cert_pem)
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and not basic.value.ca  # type: ignore[attr-defined]
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign  # type: ignore[attr-defined]
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]  # type: ignore[call-overload]
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    ca_ski = ext(load_certificate(ca.cert_pem), x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest  # type: ignore[attr-defined]
    assert cert.issuer == load_certificate(ca.cert_pem).subject
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_server_cert_is_short_enough_for_browsers(server: Issued) -> None:
    cert = load_certificate(server.cert_pem)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(days=398)
    assert cert.not_valid_before_utc <= NOW  # back-dated a little for clocks that lag
    with pytest.raises(CertificateError, match="398 days"):
        issue_server_cert(create_root_ca("x", now=NOW), "a.local", [], validity=timedelta(days=500))


@pytest.mark.parametrize("name", ["my-cool-server.local", "localhost", "127.0.0.1", "::1", "192.168.1.20"])
def test_chain_verifies_like_a_tls_client(ca: Issued, server: Issued, name: str) -> None:
    verify_server_cert(server.cert_pem, ca.cert_pem, name, now=NOW + timedelta(days=1))


def test_chain_does_not_verify_for_another_name_or_another_ca(ca: Issued, server: Issued) -> None:
    with pytest.raises(CertificateError, match=r"other\.local"):
        verify_server_cert(server.cert_pem, ca.cert_pem, "other.local", now=NOW)
    with pytest.raises(CertificateError):
        verify_server_cert(server.cert_pem, create_root_ca("other", now=NOW).cert_pem, "localhost", now=NOW)
    with pytest.raises(CertificateError):  # expired
        verify_server_cert(server.cert_pem, ca.cert_pem, "localhost", now=NOW + timedelta(days=400))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_verifies_the_chain_strictly(tmp_path: Path) -> None:
    ca = create_root_ca("my-cool-server")  # now: openssl checks against the real clock
    server = issue_server_cert(ca, "my-cool-server.local", ADDRESSES)
    (tmp_path / "ca.pem").write_text(ca.cert_pem)
    (tmp_path / "server.pem").write_text(server.cert_pem)
    for args in (
        ["-purpose", "sslserver", "-verify_hostname", "my-cool-server.local"],
        ["-purpose", "sslserver", "-verify_ip", "192.168.1.20"],
    ):
        result = subprocess.run(
            [
                "openssl",
                "verify",
                "-x509_strict",
                "-CAfile",
                str(tmp_path / "ca.pem"),
                *args,
                str(tmp_path / "server.pem"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(tmp_path / "ca.pem"),
            "-verify_hostname",
            "x.local",
            str(tmp_path / "server.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0


def test_the_machine_addresses_are_used_by_default(ca: Issued) -> None:
    found = certs.machine_addresses()
    assert ipaddress.ip_address("127.0.0.1") in found and ipaddress.ip_address("::1") in found
    assert all(ip.version == 4 for ip in found[: sum(1 for ip in found if ip.version == 4)])
    assert not any("%" in str(ip) for ip in found)  # zone ids dropped
    server = issue_server_cert(ca, "box.local", now=NOW)
    assert certs.san_addresses(server.cert_pem) == set(found)


def test_the_server_cert_never_outlives_its_ca() -> None:
    short_ca = create_root_ca("short", now=NOW, validity=timedelta(days=10))
    server = issue_server_cert(short_ca, "box.local", [], now=NOW)
    assert (
        load_certificate(server.cert_pem).not_valid_after_utc <= load_certificate(short_ca.cert_pem).not_valid_after_utc
    )


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostname",
    [
        "",
        "  ",
        "-bad.local",
        "bad-.local",
        "a..local",
        "has space.local",
        "ünï.local",
        "a" * 64 + ".local",
        ("a" * 60 + ".") * 5 + "local",
        "under_score.local",
        "10.0.0.1",
        "x/y.local",
    ],
)
def test_invalid_hostnames_are_refused_with_a_typed_error(ca: Issued, hostname: str) -> None:
    with pytest.raises(InvalidHostname) as info:
        issue_server_cert(ca, hostname, [], now=NOW)
    assert info.value.kind == ErrorKind.INVALID_REQUEST
    assert "\n" not in str(info.value)


def test_hostnames_are_normalized() -> None:
    assert validate_hostname("My-Cool-Server.LOCAL.") == "my-cool-server.local"
    assert validate_hostname("localhost") == "localhost"


def test_a_bad_address_is_refused(ca: Issued) -> None:
    with pytest.raises(CertificateError, match="not an IP address"):
        issue_server_cert(ca, "box.local", ["300.1.1.1"], now=NOW)


def test_a_ca_whose_key_does_not_match_is_refused(ca: Issued) -> None:
    other = create_root_ca("other", now=NOW)
    with pytest.raises(CertificateError, match="does not match"):
        issue_server_cert(Issued(cert_pem=ca.cert_pem, key_pem=other.key_pem), "box.local", [], now=NOW)


@pytest.mark.parametrize("pem", ["", "not a pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_garbage_pem_is_a_typed_error(pem: str) -> None:
    with pytest.raises(CertificateError):
        load_certificate(pem)
    with pytest.raises(CertificateError):
        certs.load_private_key(pem)
    with pytest.raises(CertificateError):
        fingerprint(pem)


def test_naive_times_are_refused() -> None:
    with pytest.raises(CertificateError, match="timezone"):
        create_root_ca("x", now=datetime(2026, 1, 1))  # naive on purpose


# -- fingerprint and renewal --------------------------------------------------------------------


def test_fingerprint_looks_like_a_browsers(ca: Issued) -> None:
    fp = fingerprint(ca.cert_pem)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fp)
    der = load_certificate(ca.cert_pem).public_bytes(certs.serialization.Encoding.DER)
    import hashlib

    assert fp.replace(":", "").lower() == hashlib.sha256(der).hexdigest()


def test_renewal_is_due_within_the_margin(server: Issued) -> None:
    end = load_certificate(server.cert_pem).not_valid_after_utc
    assert not needs_renewal(server.cert_pem, NOW)
    assert not needs_renewal(server.cert_pem, end - timedelta(days=31))
    assert needs_renewal(server.cert_pem, end - timedelta(days=29))
    assert needs_renewal(server.cert_pem, end + timedelta(days=1))  # already expired
    assert needs_renewal(server.cert_pem, NOW, margin=timedelta(days=400))


# -- files --------------------------------------------------------------------------------------


def test_key_files_are_0600_and_certificates_0644(tmp_path: Path, server: Issued) -> None:
    old = os.umask(0)  # the modes must not depend on the caller's umask
    try:
        certs.write_private_file(tmp_path / "tls" / "server.key", server.key_pem)
        certs.write_public_file(tmp_path / "tls" / "server.crt", server.cert_pem)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "tls" / "server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls" / "server.crt").stat().st_mode) == 0o644
    assert (tmp_path / "tls" / "server.key").read_text() == server.key_pem
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["server.crt", "server.key"]  # no temp left


def test_a_key_is_never_world_readable_while_being_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file that appears in the directory during a write is already 0600."""
    target = tmp_path / "server.key"
    target.write_text("old")
    os.chmod(target, 0o600)
    seen: list[int] = []
    real_replace = os.replace

    def spying_replace(src: str, dst: object) -> None:
        for entry in tmp_path.iterdir():
            seen.append(stat.S_IMODE(entry.stat().st_mode))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(certs.os, "replace", spying_replace)
    certs.write_private_file(target, "secret")
    assert seen and all(mode == 0o600 for mode in seen)
    assert target.read_text() == "secret"


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "server.key"
    target.write_text("old")

    def broken_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(certs.os, "replace", broken_replace)
    with pytest.raises(CertificateError, match="No space left"):
        certs.write_private_file(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["server.key"]

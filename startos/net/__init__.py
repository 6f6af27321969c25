"""Networking domain code: plain, synchronous functions the network actors build on.

``startos.net.certs``: the local root CA and the HTTPS server certificate it signs.
"""

from startos.net.certs import (
    CertificateError,
    InvalidHostname,
    Issued,
    NoAuthority,
    create_root_ca,
    fingerprint,
    issue_server_cert,
    machine_addresses,
    needs_renewal,
)

__all__ = [
    "CertificateError",
    "InvalidHostname",
    "Issued",
    "NoAuthority",
    "create_root_ca",
    "fingerprint",
    "issue_server_cert",
    "machine_addresses",
    "needs_renewal",
]

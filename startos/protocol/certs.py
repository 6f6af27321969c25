"""Messages of the CertificateActor ("certs") and of the HTTPS server ("web-tls")."""

from __future__ import annotations

import msgspec

from startos.protocol.base import Message

__all__ = [
    "CaInfo",
    "CheckRenewal",
    "CreateAuthority",
    "GetAuthority",
    "GetServerCert",
    "GetTlsAddress",
    "IssueServerCert",
    "ServerCertChanged",
    "ServerCertInfo",
    "TlsAddress",
]


class CaInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The root CA as users download and trust it: its PEM and its SHA-256 fingerprint (``AB:CD:...``)."""

    pem: str
    fingerprint: str


class ServerCertInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The current HTTPS certificate: where its files are, when it expires, what it names.

    ``cert_path`` holds the certificate followed by the root CA (the chain a TLS server sends);
    ``key_path`` its private key (mode 0600). ``not_after`` is an ISO 8601 UTC time.
    """

    cert_path: str
    key_path: str
    not_after: str
    fingerprint: str
    hostname: str
    addresses: list[str]


# -- CertificateActor ("certs") ---------------------------------------------------------------


class CreateAuthority(Message, frozen=True):
    """Create the root CA if there is none; reply with ``CaInfo`` (the existing one if present).

    ``name`` is the server's name as users know it; the CA is called ``"<name> Local Root CA"``.
    """

    name: str


class IssueServerCert(Message, frozen=True):
    """Issue a new server certificate for ``hostname`` (plus ``localhost`` and every address of
    the machine), signed by the root CA; reply with ``ServerCertInfo``. The CA is kept.

    Fails with ``InvalidHostname`` for a bad name, or ``NoAuthority`` before ``CreateAuthority``.
    """

    hostname: str


class GetAuthority(Message, frozen=True):
    """Reply with ``CaInfo``, or ``None`` before setup created the CA."""


class GetServerCert(Message, frozen=True):
    """Reply with ``ServerCertInfo``, or ``None`` before one was issued."""


class CheckRenewal(Message, frozen=True):
    """Reissue the server certificate now if it is due (expiring within the renewal margin, or
    missing one of the machine's addresses); reply with ``True`` when it was reissued.

    The actor sends this to itself periodically; tests and operators may send it too.
    """


# -- the HTTPS server ("web-tls") --------------------------------------------------------------


class ServerCertChanged(Message, frozen=True):
    """Told to the HTTPS server when a server certificate was (re)issued: load these files."""

    cert_path: str
    key_path: str


class GetTlsAddress(Message, frozen=True):
    """Reply with the HTTPS server's ``TlsAddress``."""


class TlsAddress(msgspec.Struct, frozen=True, kw_only=True):
    """Where HTTPS is (the port is reserved at start, also with port 0) and whether it answers yet.

    ``listening`` is false until a server certificate exists (before setup).
    """

    host: str
    port: int
    listening: bool

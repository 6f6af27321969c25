"""The package domain: extended versions, version ranges and manifests (REFERENCE.md §2, §3).

Plain synchronous code with no actors: ``from startos.s9pk import ExtendedVersion, VersionRange,
parse_manifest, ArchiveReader, write_archive, Package``.
"""

from startos.s9pk.archive import ArchiveReader, Commitment, open_archive
from startos.s9pk.archive_writer import write_archive
from startos.s9pk.errors import (
    ManifestError,
    NotAnS9pkError,
    PackError,
    S9pkError,
    S9pkIntegrityError,
    SignatureError,
    VersionParseError,
)
from startos.s9pk.exver import ExtendedVersion, Version, VersionRange
from startos.s9pk.manifest import LocaleString, Manifest, localize, parse_manifest
from startos.s9pk.package import Package, pack_package
from startos.s9pk.signing import SigningKey, generate_signing_key, load_signing_key

__all__ = [
    "ArchiveReader",
    "Commitment",
    "ExtendedVersion",
    "LocaleString",
    "Manifest",
    "ManifestError",
    "NotAnS9pkError",
    "PackError",
    "Package",
    "S9pkError",
    "S9pkIntegrityError",
    "SignatureError",
    "SigningKey",
    "Version",
    "VersionParseError",
    "VersionRange",
    "generate_signing_key",
    "load_signing_key",
    "localize",
    "open_archive",
    "pack_package",
    "parse_manifest",
    "write_archive",
]

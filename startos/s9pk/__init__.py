"""The package domain: extended versions, version ranges and manifests (REFERENCE.md §2, §3).

Plain synchronous code with no actors: ``from startos.s9pk import ExtendedVersion, VersionRange,
parse_manifest``. Archive reading, writing and signing live in their own modules of this package.
"""

from startos.s9pk.errors import (
    ManifestError,
    PackError,
    S9pkError,
    S9pkIntegrityError,
    SignatureError,
    VersionParseError,
)
from startos.s9pk.exver import ExtendedVersion, Version, VersionRange
from startos.s9pk.manifest import LocaleString, Manifest, localize, parse_manifest

__all__ = [
    "ExtendedVersion",
    "LocaleString",
    "Manifest",
    "ManifestError",
    "PackError",
    "S9pkError",
    "S9pkIntegrityError",
    "SignatureError",
    "Version",
    "VersionParseError",
    "VersionRange",
    "localize",
    "parse_manifest",
]

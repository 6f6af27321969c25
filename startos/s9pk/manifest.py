"""The package manifest, ``manifest.json`` (REFERENCE.md §2), as strict, typed, immutable records.

Keys are camelCase on the wire. Every field a StartOS 0.4 manifest carries is accepted
(including ``alerts.update``, ``sdkVersion``, ``hardwareAcceleration``, ``nestedRuntime``,
``userspaceFilesystems``, ``virtualNetworking``, ``plugins`` and the older ``docsUrls``);
any other key is refused, so a misspelt field is reported instead of silently ignored.
Optional fields and defaults follow StartOS: ``Option`` fields may be missing or null, and
``satisfies``, ``alerts``, ``dependencies``, ``hardwareRequirements`` and the feature flags
default to empty/false.

:func:`parse_manifest` raises :class:`ManifestError` with a one-line message naming the field as
a JSON path and the rule it breaks, e.g. ``manifest: description.short: must be at most 160
characters long, got 200``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from startos.paths import ID_MAX_LENGTH, ID_PATTERN, VOLUME_ID_PATTERN
from startos.protocol.limits import decode_json
from startos.s9pk._manifest_errors import manifest_error
from startos.s9pk.errors import ManifestError, VersionParseError
from startos.s9pk.exver import ExtendedVersion, Version, VersionRange

__all__ = [
    "ID_MAX_LENGTH",
    "ID_PATTERN",
    "Alerts",
    "BuildArgEnv",
    "DependencyInfo",
    "DependencyMetadata",
    "Description",
    "DeviceFilter",
    "DockerBuild",
    "HardwareRequirements",
    "ImageConfig",
    "ImageSourceSpec",
    "LocaleString",
    "Manifest",
    "localize",
    "parse_manifest",
]

# Package, image and volume ids (ID_PATTERN, VOLUME_ID_PATTERN, ID_MAX_LENGTH) follow the one id
# rule of startos.paths, which also guards every path built from them: a manifest that passes
# here can always be installed (a 300-character id once failed only at mkdir, ENAMETOOLONG).
# StartOS parses these as URLs; an absolute URL with a scheme and no whitespace is what we check.
URL_PATTERN = r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$"
SHORT_DESCRIPTION_MAX = 160
LONG_DESCRIPTION_MAX = 5000

PackageId = Annotated[str, Meta(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)]
ImageId = Annotated[str, Meta(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)]
VolumeId = Annotated[str, Meta(pattern=VOLUME_ID_PATTERN, max_length=ID_MAX_LENGTH)]
Url = Annotated[str, Meta(pattern=URL_PATTERN)]
# StartOS takes a u64; msgspec bounds stop at i64, and 8 EiB of RAM is limit enough.
ByteCount = Annotated[int, Meta(ge=0, le=2**63 - 1)]
# Lengths count characters, not UTF-8 bytes as StartOS does: a limit should not be three
# times tighter for a Japanese description than for an English one.
ShortText = Annotated[str, Meta(max_length=SHORT_DESCRIPTION_MAX)]
LongText = Annotated[str, Meta(max_length=LONG_DESCRIPTION_MAX)]

#: A user-facing text: one string, or a map from locale (``en_US``, ``de``...) to its translation.
LocaleString = str | dict[str, str]


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """Base of every manifest record: immutable, strict, camelCase on the wire."""


class Description(_Record, frozen=True, kw_only=True):
    """The package's descriptions: ``short`` (at most 160 characters) and ``long`` (5000)."""

    short: ShortText | dict[str, ShortText]
    long: LongText | dict[str, LongText]


class Alerts(_Record, frozen=True, kw_only=True):
    """Optional texts the UI shows before an operation, so the user can still back out."""

    install: LocaleString | None = None
    update: LocaleString | None = None
    uninstall: LocaleString | None = None
    restore: LocaleString | None = None
    start: LocaleString | None = None
    stop: LocaleString | None = None


class DependencyMetadata(_Record, frozen=True, kw_only=True):
    """How to show a dependency that is not installed: its title and an icon path or URL."""

    title: LocaleString
    icon: str


class DependencyInfo(_Record, frozen=True, kw_only=True, omit_defaults=True):
    """One entry of ``dependencies``: why it is needed and whether the package runs without it.

    ``metadata`` (title and icon) or, in older manifests, ``s9pk`` (a path or URL to the
    dependency's package) tell how to show it; at most one of the two is given.
    """

    description: LocaleString | None = None
    optional: bool
    metadata: DependencyMetadata | None = None
    s9pk: str | None = None
    # startos-py extensions (StartOS sets these from package code at run time; here the manifest
    # says them, so installing can check them before anything runs):
    version_range: Annotated[str, Meta(min_length=1, max_length=1024)] = "*"  # exver range
    kind: Literal["exists", "running"] = "running"  # running: started and its checks passing
    health_checks: (
        Annotated[tuple[Annotated[str, Meta(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)], ...], Meta(max_length=64)]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.metadata is not None and self.s9pk is not None:
            raise ValueError("give either `metadata` or `s9pk`, not both")
        try:
            VersionRange.parse(self.version_range)
        except VersionParseError as exc:
            raise ValueError(f"versionRange: {exc}") from None


class BuildArgEnv(_Record, frozen=True, kw_only=True):
    """A docker build argument taken from an environment variable of the packer."""

    env: str


class DockerBuild(_Record, frozen=True, kw_only=True, omit_defaults=True):
    """Build the image with docker: context folder, Dockerfile and build arguments."""

    workdir: str | None = None
    dockerfile: str | None = None
    build_args: dict[str, str | BuildArgEnv] | None = None


class ImageSourceSpec(_Record, frozen=True, kw_only=True, omit_defaults=True):
    """Where an image comes from when it is not ``"packed"``: exactly one of the two fields."""

    docker_build: DockerBuild | None = None
    docker_tag: str | None = None

    def __post_init__(self) -> None:
        if (self.docker_build is None) == (self.docker_tag is None):
            raise ValueError("must have exactly one of `dockerBuild` or `dockerTag`")


class ImageConfig(_Record, frozen=True, kw_only=True):
    """A container image: its source, the architectures it exists for, and emulation fallback."""

    source: Literal["packed"] | ImageSourceSpec
    arch: frozenset[str]
    emulate_missing_as: str | None = None
    nvidia_container: bool = False


class DeviceFilter(_Record, frozen=True, kw_only=True):
    """A hardware device the package needs; ``product``/``vendor`` are regular expressions."""

    description: str
    device_class: Literal["processor", "display"] = msgspec.field(name="class")
    product: str | None = None
    vendor: str | None = None
    capabilities: frozenset[str] | None = None
    driver: str | None = None


class HardwareRequirements(_Record, frozen=True, kw_only=True):
    """What the machine must have: devices, RAM in bytes, and one of the listed architectures."""

    device: tuple[DeviceFilter, ...] = ()
    ram: ByteCount | None = None
    arch: frozenset[str] | None = None


class ResourceLimits(_Record, frozen=True, kw_only=True):
    """startos-py's extension: the most the service may use (enforced by the namespace sandbox's cgroup).

    ``memory`` in bytes, ``cpu`` in cores (0.5 = half a core), ``processes`` as a count. StartOS
    manifests have no such field; a StartOS package simply runs without limits.
    """

    memory: Annotated[int, Meta(ge=4 * 1024 * 1024, le=2**63 - 1)] | None = None
    cpu: Annotated[float, Meta(gt=0, le=1024)] | None = None
    processes: Annotated[int, Meta(ge=1, le=4_194_304)] | None = None


class Manifest(_Record, frozen=True, kw_only=True):
    """A package manifest (``manifest.json``), validated; build one with :func:`parse_manifest`.

    Versions are :class:`ExtendedVersion`, ranges :class:`VersionRange`, ``osVersion`` and
    ``sdkVersion`` plain :class:`Version`. JSON arrays that StartOS treats as sets (``volumes``,
    ``arch``, ``plugins``, ``capabilities``) are frozensets; other arrays are tuples.
    """

    id: PackageId
    version: ExtendedVersion
    can_migrate_to: VersionRange
    can_migrate_from: VersionRange
    title: str
    description: Description
    release_notes: LocaleString
    license: str
    package_repo: Url
    upstream_repo: Url
    images: dict[ImageId, ImageConfig]
    volumes: frozenset[VolumeId]
    os_version: Version
    git_hash: str | None = None
    marketing_url: Url | None = None
    donation_url: Url | None = None
    alerts: Alerts = msgspec.field(default_factory=Alerts)
    dependencies: dict[PackageId, DependencyInfo] = msgspec.field(default_factory=dict)
    hardware_requirements: HardwareRequirements = msgspec.field(default_factory=HardwareRequirements)
    satisfies: tuple[ExtendedVersion, ...] = ()
    sdk_version: Version | None = None
    hardware_acceleration: bool = False
    nested_runtime: bool = False  # StartOS 0.4.0-beta.9
    userspace_filesystems: bool = False  # later StartOS 0.4 builds
    virtual_networking: bool = False  # later StartOS 0.4 builds
    plugins: frozenset[str] = frozenset()
    docs_urls: tuple[Url, ...] = ()  # StartOS 0.4.0-beta.0 to beta.8; dropped later
    resource_limits: ResourceLimits | None = None  # startos-py only

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready builtins: camelCase keys, versions as strings.

        Sets and maps come out sorted, as StartOS writes them. The legacy ``docsUrls`` is left
        out when empty so that a new manifest does not grow a field StartOS has dropped.
        """
        data: dict[str, Any] = msgspec.to_builtins(self, enc_hook=_enc_hook, order="deterministic")
        if not data.get("docsUrls"):
            data.pop("docsUrls", None)
        if data.get("resourceLimits") is None:
            data.pop("resourceLimits", None)
        return data

    def to_json(self) -> bytes:
        """The manifest as ``manifest.json`` bytes; :func:`parse_manifest` reads it back equal."""
        return msgspec.json.encode(self.to_dict())


def parse_manifest(data: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Manifest:
    """Validate a manifest given as JSON text or as an already decoded JSON object.

    Raises :class:`ManifestError` whose message names the field as a JSON path and the rule it
    breaks; for a bad version or range the :class:`VersionParseError` is chained as its cause.
    """
    raw: object
    if isinstance(data, bytes | bytearray | memoryview | str):
        try:
            # Depth-limited: a manifest nested thousands of levels deep gets this clear error, not
            # a RecursionError from the decoder or from whatever walks the value next.
            raw = decode_json(data, what="the manifest")
        except msgspec.DecodeError as exc:
            raise ManifestError(f"manifest: not valid JSON: {exc}") from exc
    else:
        raw = data
    if not isinstance(raw, Mapping):
        raise ManifestError(f"manifest: must be a JSON object, got {_json_kind(raw)}")
    document = dict(raw)
    try:
        return _convert(document)
    except msgspec.ValidationError as exc:
        error = manifest_error(exc, document, Manifest, _convert)
        raise error from _version_cause(exc) or exc


def localize(text: LocaleString, locale: str) -> str:
    """Pick the translation of ``text`` for ``locale`` the way StartOS does.

    The exact locale first, then any locale with the same language (``en`` for ``en_GB``),
    then the first translation given; a plain string is returned as is.
    """
    if isinstance(text, str):
        return text
    if locale in text:
        return text[locale]
    language = locale.split("_", 1)[0]
    for key, value in text.items():
        if key.split("_", 1)[0] == language:
            return value
    return next(iter(text.values()), "")


def _convert(document: Any) -> Manifest:
    return msgspec.convert(document, Manifest, strict=True, dec_hook=_dec_hook)


def _dec_hook(kind: type, value: Any) -> Any:
    if kind in (ExtendedVersion, VersionRange, Version):
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {_json_kind(value)}")
        try:
            return kind.parse(value)
        except VersionParseError as exc:
            # msgspec turns a ValueError into a ValidationError that carries the field's path.
            raise ValueError(str(exc)) from exc
    raise NotImplementedError(f"no decoder for {kind!r}")


def _enc_hook(value: Any) -> Any:
    if isinstance(value, ExtendedVersion | VersionRange | Version):
        return str(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def _version_cause(exc: BaseException) -> VersionParseError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, VersionParseError):
            return seen
        seen = seen.__cause__
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

"""The public state tree's schema: what ``/public`` holds, as the server writes it (REFERENCE.md §5).

``/public`` is ``{serverInfo, packageData, ui}``. The structs below describe every field a writer
puts there, closed (an unknown field is an error) wherever the server writes the content, open
where the content is the package's own (its manifest, an action's input values) or the user's
(``ui``). The StoreActor validates each patch against them before it commits:

* :func:`validate_at` checks only what a patch touched (one package entry, ``serverInfo`` or
  ``ui``), fast enough to run on every write;
* :func:`validate_public` checks the whole tree;
* :func:`public_tree_schema` gives the JSON Schema that ``state`` publishes.

A value that breaks the schema raises :class:`SchemaError`, naming the JSON pointer of the
offending value. Struct names are the schema's component names in the OpenRPC document, next to
the RPC methods' own structs: they name the part of the tree they describe, and
``openrpc_document`` refuses two different schemas under one name.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

from startos.errors import StartOSError
from startos.protocol.auth import Language
from startos.protocol.errors import ErrorKind
from startos.protocol.packages import Desired
from startos.protocol.runtime import HealthResult
from startos.protocol.service_items import AllowedStatuses, InterfaceType, Severity
from startos.protocol.status import Summary as StatusSummary

__all__ = [
    "PUBLIC",
    "DaemonState",
    "PackageDataEntry",
    "PackageStateInfo",
    "PackageStatusInfo",
    "PublicTree",
    "SchemaError",
    "ServerInfo",
    "StatusSummary",
    "public_tree_schema",
    "validate_at",
    "validate_public",
]

PUBLIC = "/public"

# Open subtrees: their content is the package's or the user's, never the server's.
Json = Any
Timestamp = Annotated[str, Meta(description="An RFC 3339 UTC timestamp.")]
Count = Annotated[int, Meta(ge=0)]
PortNumber = Annotated[int, Meta(ge=0, le=65535)]

DaemonState = Literal["starting", "running", "backing-off", "crash-looping", "stopping", "stopped"]
"""A daemon's supervision state (the values of ``startos.supervision.ChildState``)."""


class _Closed(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, gc=False):
    """A server-written object: every field typed, no other field allowed."""


# -- progress (REFERENCE.md §5: null, true/false, or counts) ------------------------------------


class ProgressCounts(_Closed):
    """Progress as counts: ``done`` of ``total`` (None: unknown) ``units``."""

    done: Count
    total: Count | None = None
    units: str | None = None


Progress = Union[None, bool, ProgressCounts]  # noqa: UP007 (a runtime alias msgspec reads)
"""``null``: not started; ``false``: under way; ``true``: done; or counts."""


class ProgressPhase(_Closed):
    name: str
    progress: Progress


class FullProgress(_Closed):
    """A job's progress: overall, and phase by phase."""

    overall: Progress
    phases: list[ProgressPhase]


# -- serverInfo ---------------------------------------------------------------------------------


class ServerStatusInfo(_Closed):
    """What the whole server is doing (backup, update, shutdown, restart)."""

    backup_progress: Json | None
    update_progress: Json | None
    shutting_down: bool
    restarting: bool


class ServerMdnsStatus(_Closed):
    """``serverInfo.network.mdns``: what ``<hostname>.local`` advertises, and the last error."""

    hostname: str | None
    advertised: bool
    addresses: list[str]
    error: str | None


class ServerNetwork(_Closed):
    """``serverInfo.network``: empty until mDNS publishes its status."""

    mdns: ServerMdnsStatus | None = None


class ServerPubkey(_Closed):
    """The server's Ed25519 public key as a JWK."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str


class ServerInfo(_Closed):
    """``/public/serverInfo``: identity, version and the server-wide status."""

    id: str | None
    name: str | None
    hostname: str | None
    version: str
    status_info: ServerStatusInfo
    unread_notification_count: Count
    language: Language
    ca_fingerprint: str | None
    pubkey: ServerPubkey | None
    network: ServerNetwork


# -- packageData[id].stateInfo (tagged by ``state``) -------------------------------------------


class PackageInstallingInfo(_Closed):
    """The install (or update) job under way: its phases and the version it installs."""

    progress: FullProgress
    new_version: str


class _StateBase(_Closed, tag_field="state"):
    manifest: dict[str, Json]  # the package's own manifest (already checked when it was packed)


class PackageStateInstalling(_StateBase, tag="installing"):
    installing_info: PackageInstallingInfo


class PackageStateUpdating(_StateBase, tag="updating"):
    installing_info: PackageInstallingInfo


class PackageStateRestoring(_StateBase, tag="restoring"):
    installing_info: PackageInstallingInfo | None = None


class PackageStateInstalled(_StateBase, tag="installed"):
    pass


class PackageStateRemoving(_StateBase, tag="removing"):
    installing_info: PackageInstallingInfo | None = None


class PackageStateBackingUp(_StateBase, tag="backing-up"):
    pass


PackageStateInfo = Union[  # noqa: UP007
    PackageStateInstalling,
    PackageStateUpdating,
    PackageStateRestoring,
    PackageStateInstalled,
    PackageStateRemoving,
    PackageStateBackingUp,
]

# -- packageData[id].statusInfo -----------------------------------------------------------------


class PackageError(_Closed):
    """Why the service is in error (a crash loop, a failed oneshot)."""

    message: str


class PackageBlocked(_Closed):
    """Why a service that should run has not started yet (a dependency, a required task)."""

    reason: str


class PackageHealthCheck(_Closed):
    """One health check's latest result, as shown."""

    name: str
    result: HealthResult
    message: str | None


class PackageDaemonStatus(_Closed):
    """One daemon's supervision state."""

    state: DaemonState
    reason: str | None
    failures: Count
    retry_in: float | None
    retry_at: Timestamp | None


class PackageDaemonProgress(_Closed):
    """Long-running progress a daemon (or a hook: ``main``) reports."""

    daemon: str
    done: Count
    total: Count | None
    message: str | None


class PackageDependencyStatus(_Closed):
    """Whether one dependency meets its requirement now, and why not."""

    satisfied: bool
    message: str | None


class PackageStatusInfo(_Closed):
    """``packageData[id].statusInfo``: what the service should do and what it does."""

    desired: Desired
    started: Timestamp | None
    error: PackageError | None
    health: dict[str, PackageHealthCheck]
    daemons: dict[str, PackageDaemonStatus]
    progress: dict[str, PackageDaemonProgress]
    blocked: PackageBlocked | None = None
    dependencies: dict[str, PackageDependencyStatus] | None = None
    # Optional for now (issue 11): becomes required once every writer sets it.
    summary: StatusSummary | None = None


# -- dependencies, actions, tasks ---------------------------------------------------------------


class PackageDependency(_Closed):
    """``currentDependencies[depId]``: what this package requires of another one."""

    kind: Literal["exists", "running"]
    version_range: str
    health_checks: list[str]
    optional: bool
    title: str
    description: str | None


class ActionDisabled(_Closed):
    """An action shown greyed out, with the reason."""

    disabled: str


class PackageAction(_Closed):
    """``actions[actionId]``: an action the user may run."""

    name: str
    description: str
    warning: str | None
    visibility: Literal["enabled", "hidden"] | ActionDisabled
    allowed_statuses: AllowedStatuses
    has_input: bool
    group: str | None


class TaskInput(_Closed):
    """The values a task prefills (the package's own: open)."""

    kind: Literal["partial"]
    value: dict[str, Json]


class TaskWhen(_Closed):
    condition: Literal["input-not-matches"]
    once: bool


class TaskRequest(_Closed):
    """What the user is asked to do: run ``actionId`` of ``packageId``."""

    package_id: str
    action_id: str
    severity: Severity
    reason: str | None
    input: TaskInput | None
    when: TaskWhen | None


class PackageTask(_Closed):
    """``tasks[replayId]``: a task this package asks for, whether it is active, and when it came."""

    task: TaskRequest
    active: bool
    created_at: Timestamp


# -- interfaces and hosts -----------------------------------------------------------------------


class InterfaceAddressInfo(_Closed):
    host_id: str
    internal_port: PortNumber
    scheme: str | None
    ssl_scheme: str | None
    path: str


class PackageServiceInterface(_Closed):
    """``serviceInterfaces[ifaceId]``: a network endpoint of the service."""

    id: str
    name: str
    description: str
    type: InterfaceType
    masked: bool
    address_info: InterfaceAddressInfo


class HostAddress(_Closed):
    """One address a binding answers on, with its URL."""

    kind: Literal["mdns", "ipv4", "ipv6"]
    hostname: str
    port: PortNumber
    ssl: bool
    public: bool
    enabled: bool
    url: str


class HostAddresses(_Closed):
    available: list[HostAddress]
    disabled: list[str]


class HostNet(_Closed):
    assigned_port: PortNumber | None
    ssl: bool


class HostBinding(_Closed):
    """``bindings[internalPort]``: where the proxy serves one internal port."""

    enabled: bool
    net: HostNet
    addresses: HostAddresses


class PackageHost(_Closed):
    """``hosts[hostId]``: the bindings of one host, by internal port."""

    bindings: dict[str, HostBinding]
    public_domains: dict[str, Json]
    private_domains: list[str]


# -- packageData[id] ----------------------------------------------------------------------------


class PackageDataEntry(_Closed):
    """``/public/packageData/<id>``: one installed (or installing) package."""

    state_info: PackageStateInfo
    status_info: PackageStatusInfo
    icon: str | None
    signer: str
    registry: str | None
    last_backup: Timestamp | None
    current_dependencies: dict[str, PackageDependency]
    actions: dict[str, PackageAction]
    tasks: dict[str, PackageTask]
    service_interfaces: dict[str, PackageServiceInterface]
    hosts: dict[str, PackageHost]
    outbound_gateway: str | None


class PublicTree(_Closed):
    """``/public``: everything clients may read."""

    server_info: ServerInfo
    package_data: dict[str, PackageDataEntry]
    ui: dict[str, Json]


# -- validation ---------------------------------------------------------------------------------


class SchemaError(StartOSError):
    """Raised when a write would leave ``/public`` breaking its schema; ``pointer`` names the value."""

    kind = ErrorKind.INVALID_REQUEST

    def __init__(self, pointer: str, problem: str) -> None:
        super().__init__(f"{pointer or '(the root)'}: {problem}")
        self.args = (pointer, problem)  # so that a copy (pickle, copy.copy) is built the same way
        self.pointer = pointer
        self.problem = problem


_TOP: dict[str, Any] = {"serverInfo": ServerInfo, "packageData": dict[str, PackageDataEntry], "ui": dict[str, Json]}


def validate_public(public: Any) -> None:
    """Check the whole ``/public`` value; raise :class:`SchemaError` naming the first bad value."""
    _check(public, PublicTree, PUBLIC)


def validate_at(public: Any, pointers: Iterable[str]) -> None:
    """Check the parts of ``public`` (the new ``/public`` value) that a patch wrote.

    ``pointers`` are the patch's absolute paths. Under ``/public/packageData/<id>`` only that
    entry is checked (nothing when it was removed), under ``serverInfo`` or ``ui`` that subtree,
    ``/public`` itself (or the root) everything; paths outside ``/public`` are not checked.
    """
    entries: set[str] = set()
    tops: set[str] = set()
    for pointer in pointers:
        if pointer in ("", PUBLIC):
            validate_public(public)
            return
        if not pointer.startswith("/public/"):
            continue
        tokens = pointer.split("/", 4)  # "", "public", top, id, rest
        top = tokens[2]
        if top == "packageData" and len(tokens) > 3:
            entries.add(_unescape(tokens[3]))
        else:
            tops.add(top)
    if not isinstance(public, dict):
        _check(public, PublicTree, PUBLIC)
        return
    for top in sorted(tops):
        where = f"{PUBLIC}/{_escape(top)}"
        if top not in _TOP:
            if top in public:
                raise SchemaError(where, "not a part of the public tree (it holds serverInfo, packageData, ui)")
            continue
        if top not in public:
            raise SchemaError(where, "missing (the public tree always holds it)")
        _check(public[top], _TOP[top], where)
    if entries and "packageData" not in tops:
        data = public.get("packageData")
        if not isinstance(data, dict):
            _check(data, _TOP["packageData"], f"{PUBLIC}/packageData")
            return
        for package_id in sorted(entries):
            if package_id in data:  # a removed entry leaves nothing to check
                _check(data[package_id], PackageDataEntry, f"{PUBLIC}/packageData/{_escape(package_id)}")


def public_tree_schema(ref_template: str = "#/components/schemas/{name}") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(schema of /public, component schemas)``: the JSON Schema ``state`` publishes."""
    (schema,), components = msgspec.json.schema_components([PublicTree], ref_template=ref_template)
    return schema, components


_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(.*)`$")


def _check(value: Any, tp: Any, where: str) -> None:
    try:
        msgspec.convert(value, tp)
    except msgspec.ValidationError:
        tokens, problem = _locate(value, tp)
        field = _FIELD.match(problem)
        if field is not None:  # the pointer names the missing or unknown field itself
            tokens.append(field.group(1))
        raise SchemaError(where + "".join(f"/{_escape(t)}" for t in tokens), problem) from None


# -- finding the offending value ----------------------------------------------------------------
#
# msgspec names the path of a bad value ($.a.b[0]) but not the keys of dicts ($.a[...].b).
# Errors are rare, so finding the key is done here, after the fact: walk the path through the
# value and its type, and at a dict, check its values one by one to find the bad one.

_PATH = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _locate(value: Any, tp: Any) -> tuple[list[str], str]:
    """The reference tokens of the offending value in ``value`` (of type ``tp``), and the problem."""
    try:
        msgspec.convert(value, tp)
    except msgspec.ValidationError as exc:
        text = str(exc)
    else:  # pragma: no cover (only called after a failure)
        return [], "invalid"
    problem, sep, path = text.rpartition(" - at `")
    if not sep:
        return [], text
    steps = [m.group(1) or m.group(2) for m in _PATH.finditer(path.rstrip("`")[1:])]
    tokens: list[str] = []
    for index, step in enumerate(steps):
        tp = _narrow(tp, value)
        if step == "...":
            item_type = _dict_value_type(tp)
            if not isinstance(value, dict) or item_type is None:
                break
            for key, item in value.items():
                try:
                    msgspec.convert(item, item_type)
                except msgspec.ValidationError:
                    inner, problem = _locate(item, item_type)
                    return [*tokens, str(key), *inner], problem
            break
        tokens.append(step)
        if step.isdigit() and isinstance(value, list) and int(step) < len(value):
            value, tp = value[int(step)], _list_item_type(tp)
        elif isinstance(value, dict) and step in value:
            value, tp = value[step], _field_type(tp, step)
        else:
            tokens.extend(s for s in steps[index + 1 :] if s != "...")
            break
    return tokens, problem


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _narrow(tp: Any, value: Any) -> Any:
    """The member of a union ``tp`` that ``value`` is meant to be (by its shape and tag)."""
    tp = _strip(tp)
    if typing.get_origin(tp) not in (Union, types.UnionType):
        return tp
    members = [_strip(m) for m in typing.get_args(tp)]
    if isinstance(value, dict):
        structs = [m for m in members if isinstance(m, type) and issubclass(m, msgspec.Struct)]
        for member in structs:
            config = member.__struct_config__
            if config.tag_field is None or value.get(config.tag_field) == config.tag:
                return member
        for member in members:
            if typing.get_origin(member) is dict:
                return member
    if isinstance(value, list):
        for member in members:
            if typing.get_origin(member) is list:
                return member
    return Any


def _field_type(tp: Any, name: str) -> Any:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        for field in msgspec.structs.fields(tp):
            if field.encode_name == name:
                return field.type
    if typing.get_origin(tp) is dict:
        return typing.get_args(tp)[1]
    return Any


def _dict_value_type(tp: Any) -> Any:
    return typing.get_args(tp)[1] if typing.get_origin(tp) is dict else None


def _list_item_type(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is list else Any


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")

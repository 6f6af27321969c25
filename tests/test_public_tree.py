"""The public state tree's schema: what validates, what is refused (naming the pointer), and the
JSON Schema that ``state`` publishes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from startos.actors.store import initial_document
from startos.protocol.errors import ErrorKind
from startos.protocol.openrpc import openrpc_document
from startos.protocol.public_tree import (
    PackageDataEntry,
    PublicTree,
    SchemaError,
    public_tree_schema,
    validate_at,
    validate_public,
)
from startos.protocol.rpc import METHODS

from .conftest import TreeHarness
from .helpers import installing_entry, package_entry
from .test_cli import PASSWORD, make_runner


def full_public() -> dict[str, Any]:
    public = initial_document()["public"]
    info = public["serverInfo"]
    info.update(id="abcdefgh", name="My Box", hostname="my-box", caFingerprint="AB:CD")
    info["pubkey"] = {"kty": "OKP", "crv": "Ed25519", "x": "abc"}
    info["network"] = {"mdns": {"hostname": "my-box", "advertised": True, "addresses": ["10.0.0.2"], "error": None}}
    public["packageData"] = {"hello": package_entry(), "new/one": installing_entry()}
    public["ui"] = {"theme": "dark", "anything": [1, {"x": None}]}
    return public


# -- what validates -----------------------------------------------------------------------------


def test_a_brand_new_tree_validates() -> None:
    validate_public(initial_document()["public"])


def test_a_full_tree_validates_whole_and_part_by_part() -> None:
    public = full_public()
    validate_public(public)
    validate_at(public, ["/public/packageData/hello/statusInfo/desired", "/public/serverInfo/name", "/public/ui/x"])
    validate_at(public, ["/public/packageData/new~1one"])
    validate_at(public, ["/public"])
    validate_at(public, [""])


def test_paths_outside_public_and_removed_entries_are_not_checked() -> None:
    public = full_public()
    public["packageData"]["hello"]["statusInfo"]["desired"] = 7  # bad, but not touched below
    validate_at(public, ["/private/auth/sessions/x", "/private"])
    validate_at(public, ["/public/packageData/gone", "/public/packageData/gone/tasks/t"])
    with pytest.raises(SchemaError):
        validate_at(public, ["/public/packageData/hello/icon"])


# -- what is refused, and where -----------------------------------------------------------------


def broken(pointer: str, change: Any) -> tuple[dict[str, Any], str]:
    public = full_public()
    change(public)
    return public, pointer


BAD: list[tuple[str, Any, str, str]] = [
    # (written path, how the tree is broken, the pointer named, words of the problem)
    (
        "/public/packageData/hello/statusInfo/desired",
        lambda p: p["packageData"]["hello"]["statusInfo"].update(desired=1),
        "/public/packageData/hello/statusInfo/desired",
        "Expected `str`, got `int`",
    ),
    (
        "/public/packageData/hello/statusInfo/desired",
        lambda p: p["packageData"]["hello"]["statusInfo"].update(desired="flying"),
        "/public/packageData/hello/statusInfo/desired",
        "Invalid enum value 'flying'",
    ),
    (
        "/public/packageData/hello/statusInfo/blocked",
        lambda p: p["packageData"]["hello"]["statusInfo"].update(blocked={"reason": "x", "packageId": "y"}),
        "/public/packageData/hello/statusInfo/blocked/packageId",
        "unknown field `packageId`",
    ),
    (
        "/public/packageData/hello/statusInfo/summary",
        lambda p: p["packageData"]["hello"]["statusInfo"].update(summary="task required"),
        "/public/packageData/hello/statusInfo/summary",
        "Invalid enum value 'task required'",
    ),
    (
        "/public/packageData/hello/statusInfo/health/web/result",
        lambda p: p["packageData"]["hello"]["statusInfo"]["health"]["web"].update(result="great"),
        "/public/packageData/hello/statusInfo/health/web/result",
        "Invalid enum value 'great'",
    ),
    (
        "/public/packageData/hello/hosts/main/bindings/8080/addresses/available/0/port",
        lambda p: p["packageData"]["hello"]["hosts"]["main"]["bindings"]["8080"]["addresses"]["available"][0].update(
            port="41000"
        ),
        "/public/packageData/hello/hosts/main/bindings/8080/addresses/available/0/port",
        "Expected `int`, got `str`",
    ),
    (
        "/public/packageData/hello/tasks/t1",
        lambda p: p["packageData"]["hello"]["tasks"].update(t1={}),
        "/public/packageData/hello/tasks/t1/task",
        "missing required field `task`",
    ),
    (
        "/public/packageData/hello/stateInfo/state",
        lambda p: p["packageData"]["hello"]["stateInfo"].update(state="dancing"),
        "/public/packageData/hello/stateInfo/state",
        "Invalid value 'dancing'",
    ),
    (
        "/public/packageData/new~1one/stateInfo/installingInfo",
        lambda p: p["packageData"]["new/one"]["stateInfo"].pop("installingInfo"),
        "/public/packageData/new~1one/stateInfo/installingInfo",
        "missing required field `installingInfo`",
    ),
    (
        "/public/packageData/hello/stateInfo/manifest",
        lambda p: p["packageData"]["hello"]["stateInfo"].update(manifest=["not", "an", "object"]),
        "/public/packageData/hello/stateInfo/manifest",
        "Expected `object`, got `array`",
    ),
    (
        "/public/packageData/hello/actions/off/visibility",
        lambda p: p["packageData"]["hello"]["actions"]["off"].update(visibility={"disabled": 3}),
        "/public/packageData/hello/actions/off/visibility/disabled",
        "Expected `str`, got `int`",
    ),
    (
        "/public/packageData/hello",
        lambda p: p["packageData"].update(hello="installed"),
        "/public/packageData/hello",
        "Expected `object`, got `str`",
    ),
    (
        "/public/serverInfo/unreadNotificationCount",
        lambda p: p["serverInfo"].update(unreadNotificationCount=-1),
        "/public/serverInfo/unreadNotificationCount",
        "Expected `int` >= 0",
    ),
    (
        "/public/serverInfo/network/mdns/advertised",
        lambda p: p["serverInfo"]["network"]["mdns"].update(advertised="yes"),
        "/public/serverInfo/network/mdns/advertised",
        "Expected `bool`, got `str`",
    ),
    (
        "/public/serverInfo",
        lambda p: p.pop("serverInfo"),
        "/public/serverInfo",
        "missing",
    ),
    ("/public/ui", lambda p: p.update(ui=[]), "/public/ui", "Expected `object`, got `array`"),
    ("/public/extra", lambda p: p.update(extra=1), "/public/extra", "not a part of the public tree"),
    (
        "/public/packageData",
        lambda p: p["packageData"]["hello"].update(lastBackup=0),
        "/public/packageData/hello/lastBackup",
        "Expected `str | null`, got `int`",
    ),
    ("/public", lambda p: p["packageData"].update(x=None), "/public/packageData/x", "Expected `object`, got `null`"),
]


@pytest.mark.parametrize(("written", "change", "pointer", "problem"), BAD, ids=[row[0] for row in BAD])
def test_a_bad_value_is_refused_naming_its_pointer(written: str, change: Any, pointer: str, problem: str) -> None:
    public = full_public()
    change(public)
    with pytest.raises(SchemaError) as refused:
        validate_at(public, [written])
    assert refused.value.pointer == pointer
    assert str(refused.value).startswith(f"{pointer}: ")
    assert problem in str(refused.value)
    assert refused.value.kind == ErrorKind.INVALID_REQUEST
    with pytest.raises(SchemaError) as whole:
        validate_public(public)  # the whole tree is refused at the same place
    assert whole.value.pointer == pointer


def test_server_written_objects_are_closed_but_package_content_is_open() -> None:
    public = full_public()
    entry = public["packageData"]["hello"]
    entry["stateInfo"]["manifest"]["whatever"] = {"the": "package's own"}
    entry["tasks"]["setup"]["task"]["input"]["value"]["more"] = [1, 2]
    public["ui"]["mine"] = {"deep": True}
    validate_public(public)
    entry["statusInfo"]["invented"] = True
    with pytest.raises(SchemaError, match="statusInfo/invented: Object contains unknown field `invented`"):
        validate_at(public, ["/public/packageData/hello/statusInfo/invented"])


def test_summary_is_optional_for_now() -> None:
    public = full_public()
    del public["packageData"]["hello"]["statusInfo"]["summary"]
    validate_public(public)


def test_validating_one_entry_is_fast() -> None:
    import timeit

    public = full_public()
    runs = 2000
    seconds = timeit.timeit(lambda: validate_at(public, ["/public/packageData/hello/statusInfo/desired"]), number=runs)
    assert seconds / runs < 1e-3  # tens of microseconds in practice; generous for a loaded machine


# -- the published JSON Schema ------------------------------------------------------------------


def refs(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(refs(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(refs(item))
    return found


def schema_errors(value: Any, schema: dict[str, Any], components: dict[str, Any], at: str = "") -> list[str]:
    """A small JSON Schema checker for the keywords msgspec emits (``jsonschema`` is not installed)."""
    if "$ref" in schema:
        return schema_errors(value, components[schema["$ref"].rsplit("/", 1)[1]], components, at)
    if "anyOf" in schema:
        branches = [schema_errors(value, option, components, at) for option in schema["anyOf"]]
        if any(not branch for branch in branches):
            return []
        return max(branches, key=lambda branch: len(branch[0].split(":")[0]))  # the one that got furthest
    errors: list[str] = []
    kinds = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    wanted = schema.get("type")
    if wanted is not None and not kinds[wanted](value):
        return [f"{at}: not {wanted}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{at}: below {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{at}: above {schema['maximum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{at}/{name}: missing" for name in schema.get("required", []) if name not in value]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], components, f"{at}/{key}")
            elif extra is False:
                errors.append(f"{at}/{key}: not allowed")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, components, f"{at}/{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], components, f"{at}/{index}")
    return errors


def check_against_published(value: Any, document: dict[str, Any]) -> list[str]:
    """Errors of ``value`` against ``components.schemas.PublicTree`` (and ``jsonschema``'s, if there)."""
    components = document["components"]["schemas"]
    errors = schema_errors(value, components["PublicTree"], components)
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        return errors
    schema = {**components["PublicTree"], "components": {"schemas": components}}
    errors += [str(e.message) for e in jsonschema.Draft202012Validator(schema).iter_errors(value)]
    return errors


def test_the_openrpc_document_holds_the_public_tree_and_every_ref_resolves() -> None:
    document = openrpc_document(METHODS)
    schemas = document["components"]["schemas"]
    tree = schemas["PublicTree"]
    assert tree["type"] == "object"
    assert {"serverInfo", "packageData", "ui"} <= set(tree["properties"])
    assert set(tree["required"]) == {"serverInfo", "packageData", "ui"}
    assert document["x-state-tree"] == {"pointer": "/public", "schema": {"$ref": "#/components/schemas/PublicTree"}}
    all_refs = refs(document)
    assert "#/components/schemas/PackageDataEntry" in all_refs
    for ref in all_refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    schema, components = public_tree_schema()
    assert schema == {"$ref": "#/components/schemas/PublicTree"}
    for name, value in components.items():
        assert schemas[name] == value  # merged unchanged: no clash with the RPC structs' names
    summary = schemas["PackageStatusInfo"]["properties"]["summary"]["anyOf"][0]["enum"]
    assert "task-required" in summary and "crash-looping" in summary


def test_trees_check_the_same_against_the_published_schema() -> None:
    document = openrpc_document(METHODS)
    assert check_against_published(full_public(), document) == []
    assert check_against_published(initial_document()["public"], document) == []
    for written, change, pointer, _ in BAD:
        public = full_public()
        change(public)
        errors = check_against_published(public, document)
        assert errors, f"the published schema lets {written} through"
        assert any(e.startswith(pointer.replace("~1", "/").removeprefix("/public")) for e in errors), (pointer, errors)


def test_structs_round_trip_the_tree() -> None:
    import msgspec

    public = full_public()
    tree = msgspec.convert(public, PublicTree)
    assert isinstance(tree.package_data["hello"], PackageDataEntry)
    again = msgspec.to_builtins(tree)
    assert again["packageData"]["hello"] == public["packageData"]["hello"]
    assert again["serverInfo"] == public["serverInfo"]


def test_start_cli_state_publishes_the_schema_and_a_dump_validates(web_tree: TreeHarness, tmp_path: Path) -> None:
    run = make_runner(web_tree, tmp_path, local=True)
    code, _out, err = run("setup", "execute", "Schema Box", "--password-stdin", input=PASSWORD + "\n")
    assert code == 0, err
    code, out, err = run("state")
    assert code == 0, err
    assert "state tree /public: schema #/components/schemas/PublicTree" in out
    code, out, err = run("state", fmt="json")
    assert code == 0, err
    document = json.loads(out)
    assert {"serverInfo", "packageData"} <= set(document["components"]["schemas"]["PublicTree"]["properties"])
    code, out, err = run("db", "dump", fmt="json")
    assert code == 0, err
    public = json.loads(out)["value"]
    assert public["serverInfo"]["name"] == "Schema Box"
    validate_public(public)
    assert check_against_published(public, document) == []
    broken_tree = copy.deepcopy(public)
    broken_tree["serverInfo"]["language"] = "xx"
    assert check_against_published(broken_tree, document)


def test_the_store_refuses_a_write_that_breaks_the_schema_and_changes_nothing(tree: TreeHarness) -> None:
    from startos.protocol.store import DbApply, DbDump

    before = tree.ask("store", DbDump(pointer="/public"))
    bad = [
        {"op": "replace", "path": "/public/serverInfo/language", "value": "pl"},  # fine alone
        {"op": "replace", "path": "/public/serverInfo/name", "value": 3},
    ]
    with pytest.raises(SchemaError) as refused:
        tree.ask("store", DbApply(patch=bad, owner="auth"))
    assert refused.value.pointer == "/public/serverInfo/name"
    assert "Expected `str | null`, got `int`" in str(refused.value)
    after = tree.ask("store", DbDump(pointer="/public"))
    assert (after.id, after.value) == (before.id, before.value)


def test_the_daemon_states_are_the_supervisor_s() -> None:
    from typing import get_args

    from startos.protocol.public_tree import DaemonState
    from startos.supervision import ChildState

    assert set(get_args(DaemonState)) == {state.value for state in ChildState}

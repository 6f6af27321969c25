"""Action input specs: declaration checks, starting values, validation and partial matches (plain objects)."""

from __future__ import annotations

import string
from datetime import date, datetime, time
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind
from startos.protocol.inputspec import (
    MAX_ITEMS,
    MAX_TEXT,
    ColorSpec,
    Generate,
    InputError,
    InputSpec,
    ListSpec,
    NumberSpec,
    ObjectSpec,
    Pattern,
    SpecError,
    TextSpec,
    ToggleSpec,
    UnionSpec,
    ValueSpec,
    Variant,
    decode_spec,
    default_input,
    generate_text,
    matches_partial,
    parse_charset,
    spec_problem,
    validate_input,
)
from startos.sdk.errors import DescriptionError
from startos.sdk.input import (
    Color,
    DateTime,
    List,
    MultiSelect,
    Number,
    Object,
    Select,
    Text,
    Textarea,
    Toggle,
    Union,
    spec,
)

SECRET = "Hunter2-SECRET-value"
SEP = " \u203a "  # between the labels of a field path


def every_kind() -> InputSpec:
    """One field of every kind, with defaults that make a valid starting value."""
    return spec(
        name=Text("Name", required=True, default="Satoshi", max_length=20, patterns=[("[A-Za-z ]+", "Letters only")]),
        token=Text("Token", generate=("a-z,A-Z,0-9", 22), masked=True),
        email=Text("Email", inputmode="email", placeholder="me@example.com"),
        notes=Textarea("Notes", max_length=1000),
        port=Number("Port", default=8080, min=1, max=65535, integer=True, units="port"),
        ratio=Number("Ratio", default=0.5, min=0, max=1, step=0.1),
        enabled=Toggle("Enabled", default=True),
        network=Select("Network", {"main": "Mainnet", "test": "Testnet"}, default="main"),
        features=MultiSelect("Features", {"a": "A", "b": "B", "c": "C"}, default=["a"], max_length=2),
        tags=List("Tags", Text("Tag", max_length=10), default=["x"], max_length=3),
        peers=List(
            "Peers", Object("Peer", {"host": Text("Host", required=True), "port": Number("Port", integer=True)})
        ),
        smtp=Object("SMTP", {"server": Text("Server"), "port": Number("Port", default=587, integer=True, max=65535)}),
        backend=Union(
            "Backend",
            {
                "sqlite": ("SQLite", {}),
                "postgres": (
                    "PostgreSQL",
                    {"host": Text("Host", required=True, default="db"), "pw": Text("Pw", masked=True)},
                ),
            },
            default="sqlite",
        ),
        accent=Color("Accent", default="#FF8800"),
        day=DateTime("Day", "date", min="2024-01-01", max="2030-12-31", default="2025-06-01"),
        at=DateTime("At", "time"),
        when=DateTime("When"),
    )


def fails(spec_: InputSpec, value: Any) -> InputError:
    with pytest.raises(InputError) as info:
        validate_input(spec_, value)
    err = info.value
    assert "\n" not in str(err)
    assert str(err) == f"{err.field_name}: {err.problem}"
    return err


# ---------------------------------------------------------------------------------------------------------------------
# Valid values


def test_default_input_of_every_kind_is_valid_and_normalized() -> None:
    s = every_kind()
    assert spec_problem(s) is None
    start = default_input(s)
    assert len(start["token"]) == 22 and set(start["token"]) <= set(string.ascii_letters + string.digits)
    assert start["accent"] == "#ff8800"
    assert start["backend"] == {"selection": "sqlite", "value": {}}
    assert start["smtp"] == {"server": None, "port": 587}
    assert start["features"] == ["a"] and start["tags"] == ["x"] and start["peers"] == []
    assert validate_input(s, start) == start


def test_valid_values_of_every_kind() -> None:
    s = every_kind()
    value = {
        "name": "Ada Lovelace",
        "token": "abc",
        "email": "ada@example.com",
        "notes": "line one\nline two",
        "port": 443.0,
        "ratio": 0.3,
        "enabled": False,
        "network": "test",
        "features": ["c", "a"],
        "tags": ["one", "two", "three"],
        "peers": [{"host": "a.local", "port": 1}, {"host": "b.local"}],
        "smtp": {"server": "smtp.example.com", "port": 25},
        "backend": {"selection": "postgres", "value": {"host": "pg"}},
        "accent": "#00AAff",
        "day": "2026-02-03",
        "at": "13:45",
        "when": "2025-01-02T03:04",
    }
    out = validate_input(s, value)
    assert out["port"] == 443 and type(out["port"]) is int
    assert out["ratio"] == 0.3
    assert out["peers"] == [{"host": "a.local", "port": 1}, {"host": "b.local", "port": None}]
    assert out["backend"] == {"selection": "postgres", "value": {"host": "pg", "pw": None}}
    assert out["accent"] == "#00aaff"
    assert (out["day"], out["at"], out["when"]) == ("2026-02-03", "13:45", "2025-01-02T03:04")
    assert validate_input(s, out) == out


def test_missing_fields_take_defaults_and_empty_text_is_null() -> None:
    s = every_kind()
    out = validate_input(s, {"name": "Bob", "email": ""})
    assert out["email"] is None
    assert out["token"] is None  # generated only for the form's starting value
    assert out["port"] == 8080 and out["enabled"] is True and out["network"] == "main"
    assert out["backend"] == {"selection": "sqlite", "value": {}}
    assert out["smtp"] == {"server": None, "port": 587}


def test_union_value_defaults_when_absent() -> None:
    s = every_kind()
    out = validate_input(s, {"backend": {"selection": "postgres"}})
    assert out["backend"] == {"selection": "postgres", "value": {"host": "db", "pw": None}}


def test_datetime_forms_are_normalized() -> None:
    s = spec(d=DateTime("D", "date"), t=DateTime("T", "time"), dt=DateTime("DT"))
    out = validate_input(s, {"d": "20240102", "t": "10:30:15", "dt": "2024-01-02 10:30:00"})
    assert out == {"d": "2024-01-02", "t": "10:30:15", "dt": "2024-01-02T10:30"}


def test_number_integer_and_step_rules() -> None:
    s = spec(n=Number("N", integer=True, min=1, step=2), f=Number("F", step=0.1))
    assert validate_input(s, {"n": 5, "f": 0.3}) == {"n": 5, "f": 0.3}
    assert validate_input(s, {"n": 7.0})["n"] == 7
    assert fails(s, {"n": 4}).problem == "must be 1 plus a multiple of 2"
    assert fails(s, {"f": 0.25}).problem == "must be a multiple of 0.1"
    assert fails(s, {"n": 1.5}).problem == "must be a whole number"
    big = spec(n=Number("N", integer=True, step=3))
    assert validate_input(big, {"n": 3 * 10**30}) == {"n": 3 * 10**30}


# ---------------------------------------------------------------------------------------------------------------------
# Failures, one kind at a time


@pytest.mark.parametrize(
    ("value", "path", "field_name", "problem"),
    [
        ({"name": 5}, "name", "Name", "must be a text"),
        ({"name": None}, "name", "Name", "is required"),
        ({"name": ""}, "name", "Name", "is required"),
        ({"name": "x" * 21}, "name", "Name", "must be at most 20 characters"),
        ({"name": "R2D2"}, "name", "Name", "Letters only"),
        ({"notes": "x" * 1001}, "notes", "Notes", "must be at most 1000 characters"),
        ({"port": "5"}, "port", "Port", "must be a number"),
        ({"port": True}, "port", "Port", "must be a number"),
        ({"port": 0}, "port", "Port", "must be at least 1 port"),
        ({"port": 70000}, "port", "Port", "must be at most 65535 port"),
        ({"port": 1.5}, "port", "Port", "must be a whole number"),
        ({"port": float("nan")}, "port", "Port", "must be a finite number"),
        ({"enabled": 1}, "enabled", "Enabled", "must be true or false"),
        ({"enabled": None}, "enabled", "Enabled", "must be true or false"),
        ({"network": "regtest"}, "network", "Network", "must be one of 'main', 'test'"),
        ({"network": None}, "network", "Network", "is required"),
        ({"features": "a"}, "features", "Features", "must be a list of choices"),
        ({"features": ["a", "a"]}, "features", "Features", "lists 'a' more than once"),
        ({"features": ["a", "z"]}, "features[1]", "Features > #2", "must be one of 'a', 'b', 'c'"),
        ({"features": ["a", "b", "c"]}, "features", "Features", "must have at most 2 choices"),
        ({"tags": ["1", "2", "3", "4"]}, "tags", "Tags", "must have at most 3 items"),
        ({"tags": ["ok", ""]}, "tags[1]", "Tags > Tag 2", "is required"),
        ({"tags": ["ok", 7]}, "tags[1]", "Tags > Tag 2", "must be a text"),
        ({"tags": "x"}, "tags", "Tags", "must be a list"),
        ({"peers": [{"host": "a"}, {"host": None}]}, "peers[1].host", "Peers > Peer 2 > Host", "is required"),
        ({"peers": [{"host": "a", "extra": 1}]}, "peers[0]", "Peers > Peer 1", "unknown field 'extra'"),
        ({"smtp": {"port": 65536}}, "smtp.port", "SMTP > Port", "must be at most 65535"),
        ({"smtp": "x"}, "smtp", "SMTP", "must be an object"),
        ({"backend": {"selection": "mysql"}}, "backend.selection", "Backend", "must be one of 'sqlite', 'postgres'"),
        ({"backend": None}, "backend", "Backend", "is required"),
        ({"backend": {"selection": "sqlite", "x": 1}}, "backend", "Backend", "unknown field 'x'"),
        (
            {"backend": {"selection": "postgres", "value": {"host": ""}}},
            "backend.value.host",
            "Backend > PostgreSQL > Host",
            "is required",
        ),
        ({"accent": "red"}, "accent", "Accent", "must be a color like #ff8800"),
        ({"accent": "#ff880"}, "accent", "Accent", "must be a color like #ff8800"),
        ({"accent": "#ff8800\n"}, "accent", "Accent", "must be a color like #ff8800"),
        ({"day": "2023-12-31"}, "day", "Day", "must not be before 2024-01-01"),
        ({"day": "2031-01-01"}, "day", "Day", "must not be after 2030-12-31"),
        ({"day": "01/02/2025"}, "day", "Day", "must be a date like 2024-12-31"),
        ({"day": 20250101}, "day", "Day", "must be a date like 2024-12-31"),
        ({"at": "25:00"}, "at", "At", "must be a time like 13:45"),
        ({"at": "10:00+02:00"}, "at", "At", "must be a time like 13:45"),
        ({"when": "2025-01-02"}, "when", "When", "must be a date and time like 2024-12-31T13:45"),
        ({"when": "2025-01-02T10:00Z"}, "when", "When", "must be a date and time like 2024-12-31T13:45"),
        ({"bogus": 1}, "", "Input", "unknown field 'bogus'"),
        ({"bogus": 1, "other": 2}, "", "Input", "unknown fields 'bogus', 'other'"),
    ],
)
def test_invalid_values(value: dict[str, Any], path: str, field_name: str, problem: str) -> None:
    err = fails(every_kind(), value)
    assert (err.path, err.field_name, err.problem) == (path, field_name.replace(" > ", SEP), problem)


def test_input_error_is_a_startos_error_with_invalid_params_kind() -> None:
    err = fails(every_kind(), {"port": 0})
    assert isinstance(err, StartOSError)
    assert err.kind == ErrorKind.INVALID_PARAMS
    assert str(err) == "Port: must be at least 1 port"


def test_value_must_be_an_object() -> None:
    assert str(fails(every_kind(), [1])) == "Input: must be an object"
    assert str(fails(every_kind(), None)) == "Input: must be an object"


def test_masked_and_text_values_are_never_echoed() -> None:
    s = spec(
        pw=Text("Password", masked=True, min_length=30, patterns=[Pattern("[a-z]+", "Lowercase letters only")]),
        other=Text("Other", masked=True, patterns=[Pattern("[a-z]+", "Lowercase letters only")]),
    )
    for value in ({"pw": SECRET}, {"other": SECRET}, {"pw": "x" * 30 + SECRET}):
        err = fails(s, value)
        assert SECRET not in str(err) and SECRET not in repr(err.args)
    assert fails(s, {"other": SECRET}).problem == "Lowercase letters only"


def test_texts_are_capped_without_max_length() -> None:
    s = spec(t=Textarea("T"))
    assert validate_input(s, {"t": "x" * MAX_TEXT})["t"] == "x" * MAX_TEXT
    assert fails(s, {"t": "x" * (MAX_TEXT + 1)}).problem == f"must be at most {MAX_TEXT} characters"


def test_min_lengths() -> None:
    s = spec(
        t=Text("T", min_length=3),
        m=MultiSelect("M", {"a": "A", "b": "B"}, min_length=1),
        l=List("L", Text("Item"), min_length=2),
    )
    assert fails(s, {"t": "ab"}).problem == "must be at least 3 characters"
    assert fails(s, {"t": "abc"}).problem == "must have at least 1 choice"
    assert fails(s, {"t": "abc", "m": ["a"]}).problem == "must have at least 2 items"
    assert validate_input(s, {"t": "abc", "m": ["a"], "l": ["x", "y"]})["l"] == ["x", "y"]


def test_total_list_items_are_capped() -> None:
    s = spec(a=List("A", Text("I")), b=List("B", Text("I")))
    half = ["x"] * (MAX_ITEMS // 2)
    assert len(validate_input(s, {"a": half, "b": half})["b"]) == MAX_ITEMS // 2
    err = fails(s, {"a": half, "b": [*half, "y"]})
    assert err.path == "b" and "more than" in err.problem


def test_optional_select_union_color_datetime_accept_null() -> None:
    s = spec(
        s=Select("S", {"a": "A"}, required=False),
        u=Union("U", {"a": ("A", {})}, required=False),
        c=Color("C"),
        d=DateTime("D", "date"),
        n=Number("N"),
    )
    assert validate_input(s, {}) == {"s": None, "u": None, "c": None, "d": None, "n": None}
    required = spec(c=Color("C", required=True), d=DateTime("D", required=True), n=Number("N", required=True))
    assert fails(required, {"d": "2024-01-01T00:00", "n": 1}).problem == "is required"
    assert fails(required, {"c": "#000000", "n": 1}).path == "d"
    assert fails(required, {"c": "#000000", "d": "2024-01-01T00:00"}).path == "n"


# ---------------------------------------------------------------------------------------------------------------------
# Declaration problems


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"s": Select("S", {"a": "A"}, default="b")}, "s: default must be one of 'a'"),
        ({"s": Select("S", {})}, "s: values is empty (give at least one choice)"),
        ({"n": Number("N", min=5, max=1)}, "n: min 5 is above max 1"),
        ({"n": Number("N", step=0)}, "n: step 0 must be above 0"),
        ({"n": Number("N", integer=True, step=0.5)}, "n: step 0.5 is not a whole number, but the field is integer"),
        ({"n": Number("N", max=10, default=11)}, "n: default must be at most 10"),
        ({"n": Number("N", min=float("-inf"))}, "n: min must be a finite number"),
        ({"t": Text("T", patterns=[("[a-", "x")])}, "t: pattern '[a-' does not compile"),
        ({"t": Text("T", patterns=[("[a-z]+", "")])}, "t: pattern '[a-z]+' has an empty description"),
        ({"t": Text("T", min_length=5, max_length=2)}, "t: minLength 5 is above maxLength 2"),
        ({"t": Text("T", min_length=-1)}, "t: minLength must not be negative"),
        ({"t": Text("T", default="ABC", patterns=[("[a-z]+", "Lowercase")])}, "t: default Lowercase"),
        ({"t": Text("T", generate=("z-a", 5))}, "t: generate: range z-a is backwards"),
        ({"t": Text("T", generate=("a-z", 0))}, "t: generate: len must be between 1 and 65536"),
        ({"t": Text("T", generate=("a-z", 5), min_length=8)}, "t: generate: len 5 is outside minLength/maxLength"),
        ({"t": Text("")}, "t: name is empty"),
        ({"m": MultiSelect("M", {"a": "A"}, default=["a", "a"])}, "m: default lists 'a' more than once"),
        ({"m": MultiSelect("M", {"a": "A"}, min_length=2)}, "m: minLength 2 is more than the 1 choices"),
        ({"l": List("L", Text("I", max_length=2), default=["abc"])}, "l: default must be at most 2 characters"),
        ({"l": List("L", Text("I", patterns=[("(", "x")]))}, "l[]: pattern '(' does not compile"),
        ({"l": List("L", Object("O", {"x": Number("X", min=2, max=1)}))}, "l[].x: min 2 is above max 1"),
        ({"o": Object("O", {"i": Object("I", {"c": Color("C", default="blue")})})}, "o.i.c: default must be a color"),
        ({"u": Union("U", {"a": ("A", {})}, default="b")}, "u: default 'b' is not one of the variants ('a')"),
        ({"u": Union("U", {})}, "u: variants is empty (give at least one)"),
        ({"u": Union("U", {"a": ("A", {"n": Number("N", min=3, max=2)})})}, "u.a.n: min 3 is above max 2"),
        ({"u": Union("U", {"a": ("", {})})}, "u: variant 'a' has an empty name"),
        ({"d": DateTime("D", "date", min="2024-13-01")}, "d: min '2024-13-01' is not a date like 2024-12-31"),
        ({"d": DateTime("D", "time", min="10:00", max="09:00")}, "d: min 10:00 is after max 09:00"),
        ({"d": DateTime("D", "date", max="2024-01-01", default="2025-01-01")}, "d: default must not be after"),
        ({"1bad": Toggle("T")}, "1bad: a field id starts with a letter"),
        ({"x" * 65: Toggle("T")}, "x" * 65 + ": a field id starts with a letter"),
        ({"o": Object("O", {"t": ToggleSpec(name=5)})}, "o.t: Expected `str`, got `int` - at `name`"),  # type: ignore[arg-type]
    ],
)
def test_spec_problems(fields: dict[str, ValueSpec], expected: str) -> None:
    problem = spec_problem(fields)
    assert problem is not None and problem.startswith(expected), problem
    assert "\n" not in problem


def test_spec_problem_none_for_sound_specs_and_nesting_cap() -> None:
    assert spec_problem(every_kind()) is None
    assert spec_problem({}) is None
    nested: ValueSpec = Toggle("Leaf")
    for _ in range(16):
        nested = Object("O", {"o": nested})
    assert spec_problem({"o": nested}) is None
    deeper = Object("O", {"o": nested})
    problem = spec_problem({"o": deeper})
    assert problem is not None and "nested more than 16 levels deep" in problem


def test_sdk_spec_raises_description_error() -> None:
    with pytest.raises(DescriptionError, match=r"^input spec: port: min 5 is above max 1$"):
        spec(port=Number("Port", min=5, max=1))
    with pytest.raises(DescriptionError, match="given twice"):
        spec({"a": Toggle("A")}, a=Toggle("B"))
    merged = spec({"with-dash": Toggle("A")}, b=Toggle("B"))
    assert list(merged) == ["with-dash", "b"]


# ---------------------------------------------------------------------------------------------------------------------
# Wire shape and decoding


def test_json_and_msgpack_round_trip_of_every_kind() -> None:
    s = every_kind()
    wire = msgspec.json.encode(s)
    assert decode_spec(msgspec.json.decode(wire)) == s
    assert decode_spec(wire) == s
    assert decode_spec(msgspec.msgpack.decode(msgspec.msgpack.encode(s))) == s
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(s), type=InputSpec) == s
    shape = msgspec.json.decode(wire)
    assert list(shape) == list(s)  # form order survives
    assert shape["name"]["type"] == "text" and shape["name"]["maxLength"] == 20
    assert shape["name"]["patterns"] == [{"regex": "[A-Za-z ]+", "description": "Letters only"}]
    assert shape["token"]["generate"] == {"charset": "a-z,A-Z,0-9", "len": 22}
    assert shape["features"]["minLength"] is None
    assert shape["backend"]["variants"]["postgres"]["name"] == "PostgreSQL"
    assert shape["day"]["inputmode"] == "date"


def test_decode_spec_from_package_builtins() -> None:
    s = decode_spec(
        {
            "port": {"type": "number", "name": "Port", "integer": True, "max": 65535, "default": 80},
            "mode": {"type": "union", "name": "Mode", "variants": {"a": {"name": "A", "spec": {}}}, "default": "a"},
        }
    )
    assert s["port"] == NumberSpec(name="Port", integer=True, max=65535, default=80)
    assert isinstance(s["mode"], UnionSpec) and s["mode"].variants == {"a": Variant("A", {})}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"a": {"type": "nope", "name": "A"}}, "invalid input spec: a: Invalid value 'nope' - at `type`"),
        (
            {"a": {"type": "toggle", "name": "A", "min_length": 1}},
            "invalid input spec: a: Object contains unknown field `min_length`",
        ),
        ({"a": {"type": "toggle"}}, "invalid input spec: a: Object missing required field `name`"),
        (
            {"a": {"type": "list", "name": "L", "spec": {"type": "toggle", "name": "T"}}},
            "invalid input spec: a: Invalid value 'toggle' - at `spec.type`",
        ),
        (
            {"u": {"type": "union", "name": "U", "variants": {"a": {"name": "A", "spec": {"x": {"type": "color"}}}}}},
            "invalid input spec: u.a.x: Object missing required field `name`",
        ),
        (
            {
                "l": {
                    "type": "list",
                    "name": "L",
                    "spec": {"type": "object", "name": "O", "spec": {"y": {"type": "text"}}},
                }
            },
            "invalid input spec: l[].y: Object missing required field `name`",
        ),
        (
            {"o": {"type": "object", "name": "O", "spec": {"Bad Key": {"type": "toggle", "name": "T"}}}},
            "invalid input spec: o.Bad Key: a field id",
        ),
        ([1], "invalid input spec: spec: Expected `object`, got `array`"),
        (b"{", "invalid input spec: Input data was truncated"),
        ({"a": {"type": "number", "name": "A", "min": 2, "max": 1}}, "invalid input spec: a: min 2 is above max 1"),
    ],
)
def test_decode_spec_errors_are_one_line(obj: object, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        decode_spec(obj)
    assert str(info.value).startswith(expected), str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.kind == ErrorKind.VALIDATE_S9PK


def test_decode_spec_check_false_skips_declaration_checks() -> None:
    s = decode_spec({"a": {"type": "number", "name": "A", "min": 2, "max": 1}}, check=False)
    assert isinstance(s["a"], NumberSpec)


def test_protocol_structs_take_snake_case_keywords() -> None:
    t = TextSpec(name="T", min_length=2, max_length=4)
    assert msgspec.to_builtins(t)["minLength"] == 2
    assert ColorSpec(name="C") == Color("C")
    assert ListSpec(name="L", spec=TextSpec(name="I")) == List("L", Text("I"))
    assert ObjectSpec(name="O", spec={}) == Object("O", {})


# ---------------------------------------------------------------------------------------------------------------------
# Random text


def test_charset_syntax() -> None:
    assert parse_charset("a-z,A-Z,0-9") == [("a", "z"), ("A", "Z"), ("0", "9")]
    assert parse_charset("a,b,!") == [("a", "a"), ("b", "b"), ("!", "!")]
    assert parse_charset("-,a-c") == [("-", "-"), ("a", "c")]
    assert parse_charset("a-z,,") == [("a", "z"), (",", ",")]
    assert parse_charset("!--") == [("!", "-")]
    for bad in ("", "ab", "a-", "z-a"):
        with pytest.raises(ValueError):
            parse_charset(bad)


def test_generated_text_uses_only_the_charset() -> None:
    values = {generate_text(Generate("a-c,X", 16)) for _ in range(20)}
    assert all(len(v) == 16 and set(v) <= set("abcX") for v in values)
    assert len(values) > 1  # random, not a constant
    assert set("".join(values)) == set("abcX")


# ---------------------------------------------------------------------------------------------------------------------
# Partial matches (tasks)


def test_matches_partial() -> None:
    current = {
        "port": 80,
        "on": True,
        "smtp": {"server": "s", "auth": {"user": "u", "pw": "p"}},
        "backend": {"selection": "pg", "value": {"host": "db", "port": 5432}},
        "tags": ["a", "b"],
        "peers": [{"host": "x"}],
    }
    assert matches_partial(current, {})
    assert matches_partial(current, {"port": 80.0})
    assert matches_partial(current, {"smtp": {"auth": {"user": "u"}}})
    assert not matches_partial(current, {"smtp": {"auth": {"user": "v"}}})
    assert matches_partial(current, {"backend": {"selection": "pg", "value": {"host": "db"}}})
    assert not matches_partial(current, {"backend": {"selection": "sqlite"}})
    assert matches_partial(current, {"tags": ["a", "b"]})
    assert not matches_partial(current, {"tags": ["a"]})  # lists are compared whole
    assert not matches_partial(current, {"peers": [{}]})
    assert not matches_partial(current, {"on": 1})  # a bool is not a number
    assert not matches_partial(current, {"port": True})
    assert not matches_partial(current, {"missing": None})
    assert not matches_partial(current, {"port": {"x": 1}})
    assert not matches_partial(None, {"a": 1})
    assert not matches_partial({"smtp": None}, {"smtp": {"server": "s"}})


# ---------------------------------------------------------------------------------------------------------------------
# Properties


_ids = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)
_labels = st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=8).filter(str.strip)


@st.composite
def _text_specs(draw: st.DrawFn) -> TextSpec:
    default = draw(st.none() | st.text(alphabet="abc xyz", min_size=1, max_size=8))
    patterned = draw(st.booleans())
    generate = draw(st.none() | st.just(("a-z", 8)))
    required = draw(st.booleans()) and (default is not None or generate is not None)
    max_length = draw(st.none() | st.integers(8, 20))
    return Text(
        draw(_labels),
        required=required,
        default=default,
        max_length=max_length,
        patterns=[("[a-z ]*", "letters")] if patterned else (),
        masked=draw(st.booleans()),
        generate=generate,
    )


@st.composite
def _number_specs(draw: st.DrawFn) -> NumberSpec:
    integer = draw(st.booleans())
    low = draw(st.integers(-100, 100))
    high = low + draw(st.integers(0, 100))
    if integer:
        whole = draw(st.none() | st.integers(low, high))
        default: float | None = whole if whole is None or draw(st.booleans()) else float(whole)  # 2.0 normalizes to 2
        step = draw(st.none() | st.just(1))
    else:
        default = draw(st.none() | st.floats(low, high))
        step = None
    return Number(
        draw(_labels),
        required=default is not None and draw(st.booleans()),
        default=default,
        min=low,
        max=high,
        step=step,
        integer=integer,
    )


@st.composite
def _choice_specs(draw: st.DrawFn) -> ValueSpec:
    values = draw(st.dictionaries(_ids, _labels, min_size=1, max_size=4))
    keys = list(values)
    if draw(st.booleans()):
        default = draw(st.none() | st.sampled_from(keys))
        return Select(draw(_labels), values, default=default, required=default is not None)
    chosen = draw(st.lists(st.sampled_from(keys), unique=True))
    return MultiSelect(draw(_labels), values, default=chosen)


_dates = st.dates(date(1990, 1, 1), date(2100, 1, 1))
_times = st.times().map(lambda t: t.replace(microsecond=0))
_dts = st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)).map(lambda d: d.replace(microsecond=0))

_leaves: st.SearchStrategy[ValueSpec] = st.one_of(
    _text_specs(),
    st.builds(Textarea, _labels, default=st.none() | st.text(max_size=20)),
    _number_specs(),
    st.builds(Toggle, _labels, default=st.booleans()),
    _choice_specs(),
    st.builds(Color, _labels, default=st.none() | st.from_regex(r"#[0-9a-fA-F]{6}", fullmatch=True)),
    st.builds(DateTime, _labels, st.just("date"), default=st.none() | _dates.map(date.isoformat)),
    st.builds(DateTime, _labels, st.just("time"), default=st.none() | _times.map(time.isoformat)),
    st.builds(DateTime, _labels, default=st.none() | _dts.map(datetime.isoformat)),
    st.builds(List, _labels, st.builds(Text, _labels), default=st.lists(st.text(min_size=1, max_size=5), max_size=3)),
)


def _extend(children: st.SearchStrategy[ValueSpec]) -> st.SearchStrategy[ValueSpec]:
    fields = st.dictionaries(_ids, children, max_size=3)

    @st.composite
    def unions(draw: st.DrawFn) -> ValueSpec:
        variants = draw(st.dictionaries(_ids, st.tuples(_labels, fields), min_size=1, max_size=3))
        default = draw(st.none() | st.sampled_from(list(variants)))
        return Union(draw(_labels), variants, default=default, required=default is not None)

    return st.one_of(
        st.builds(Object, _labels, fields),
        unions(),
        st.builds(List, _labels, st.builds(Object, _labels, fields)),
    )


_specs = st.dictionaries(_ids, st.recursive(_leaves, _extend, max_leaves=12), max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_specs)
def test_default_input_validates_and_normalizing_is_idempotent(s: InputSpec) -> None:
    assert spec_problem(s) is None
    start = default_input(s)
    out = validate_input(s, start)
    assert validate_input(s, out) == out
    assert matches_partial(out, out)
    assert decode_spec(msgspec.json.encode(s)) == s
    assert decode_spec(msgspec.msgpack.decode(msgspec.msgpack.encode(s))) == s


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.integers(), st.floats(), st.booleans(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2)
    )
)
def test_strict_types_never_crash(value: object) -> None:
    s = every_kind()
    for key in s:
        try:
            validate_input(s, {key: value})
        except InputError as exc:
            assert exc.path.startswith(key)

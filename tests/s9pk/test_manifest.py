"""The manifest (REFERENCE.md §2): valid manifests, StartOS 0.4 shapes, and one test per rule."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from startos.s9pk import (
    ExtendedVersion,
    Manifest,
    ManifestError,
    Version,
    VersionParseError,
    VersionRange,
    localize,
    parse_manifest,
)
from startos.s9pk.manifest import DependencyInfo, ImageSourceSpec

Doc = dict[str, Any]


def full_manifest() -> Doc:
    """Every field, as a StartOS 0.4.0-beta.9 SDK writes them."""
    return {
        "id": "bitcoind",
        "title": "Bitcoin Core",
        "version": "#knots:27.1.0:2",
        "satisfies": ["27.1.0:2"],
        "canMigrateTo": "!",
        "canMigrateFrom": ">=25.0:0 <27.1.0:2 || #knots",
        "gitHash": "0123456789abcdef0123456789abcdef01234567-modified",
        "description": {
            "short": "A Bitcoin full node.",
            "long": {"en_US": "A full node validates every block.", "de": "Ein Vollknoten."},
        },
        "releaseNotes": {"en_US": "Taproot, Schnorr, and more.", "es": "Taproot y más."},
        "license": "MIT",
        "packageRepo": "https://github.com/start9labs/bitcoind-startos",
        "upstreamRepo": "https://github.com/bitcoin/bitcoin",
        "marketingUrl": "https://bitcoin.org",
        "donationUrl": "https://donate.example.com/btc",
        "alerts": {
            "install": "Syncing takes a week.",
            "update": None,
            "uninstall": {"en_US": "Chain state will be lost."},
            "restore": None,
            "start": "Starting Bitcoin is good for your health.",
            "stop": None,
        },
        "osVersion": "0.4.0-beta.9",
        "sdkVersion": "0.4.0-beta.45",
        "dependencies": {
            "tor": {
                "description": "Reach peers over Tor.",
                "optional": True,
                "metadata": {"title": "Tor", "icon": "assets/tor.png"},
            },
            "btc-rpc-proxy": {"description": None, "optional": False, "s9pk": ""},
            "electrs": {"optional": True},
        },
        "images": {
            "main": {
                "source": {"dockerTag": "bitcoin/bitcoin:27.1"},
                "arch": ["x86_64", "aarch64"],
                "emulateMissingAs": "x86_64",
                "nvidiaContainer": False,
            },
            "tools": {
                "source": {
                    "dockerBuild": {
                        "workdir": ".",
                        "dockerfile": "Dockerfile.tools",
                        "buildArgs": {"VERSION": "27.1", "TOKEN": {"env": "BUILD_TOKEN"}},
                    }
                },
                "arch": ["x86_64"],
                "emulateMissingAs": None,
            },
            "packed-image": {"source": "packed", "arch": ["riscv64"]},
        },
        "volumes": ["main", "BACKUP"],
        "hardwareRequirements": {
            "device": [
                {
                    "description": "An Intel GPU",
                    "class": "display",
                    "product": "CometLake",
                    "vendor": None,
                    "capabilities": ["vga"],
                    "driver": "i915",
                },
                {"description": "A modern CPU", "class": "processor", "product": None},
            ],
            "ram": 8 * 1024**3,
            "arch": ["x86_64", "aarch64"],
        },
        "hardwareAcceleration": True,
        "nestedRuntime": False,
        "userspaceFilesystems": False,
        "virtualNetworking": True,
        "plugins": ["url-v0"],
    }


def minimal_manifest() -> Doc:
    """Only what StartOS requires (the shape of start-os's own signing test manifest)."""
    return {
        "id": "signing-test",
        "version": "1.0.0:0",
        "canMigrateTo": "*",
        "canMigrateFrom": "*",
        "title": "Signing test",
        "description": {"short": "Test", "long": "Test"},
        "releaseNotes": "Test",
        "license": "MIT",
        "packageRepo": "https://example.com/package",
        "upstreamRepo": "https://example.com/upstream",
        "osVersion": "0.4.0",
        "images": {},
        "volumes": [],
    }


# The JSON of StartOS 0.4.0-beta.9's own UI fixture (api.fixures.ts, MockManifestLnd), as a
# packed manifest.json looks.
STARTOS_LND = """
{
  "id": "lnd",
  "title": "Lightning Network Daemon",
  "version": "0.11.1:0",
  "satisfies": [],
  "canMigrateTo": "!",
  "canMigrateFrom": "*",
  "gitHash": "abcdefgh",
  "description": {
    "short": "A bolt spec compliant client.",
    "long": "More info about LND. More info about LND. More info about LND."
  },
  "releaseNotes": "Dual funded channels!",
  "license": "MIT",
  "packageRepo": "https://github.com/start9labs/lnd-wrapper",
  "upstreamRepo": "https://github.com/lightningnetwork/lnd",
  "marketingUrl": "https://lightning.engineering/",
  "donationUrl": null,
  "alerts": {
    "install": null,
    "update": null,
    "uninstall": null,
    "restore": "If this is a duplicate instance of the same LND node, you may loose your funds.",
    "start": "Starting LND is good for your health.",
    "stop": null
  },
  "osVersion": "0.2.12",
  "sdkVersion": "0.4.0",
  "dependencies": {
    "bitcoind": {"description": "LND needs bitcoin to live.", "optional": true, "s9pk": ""},
    "btc-rpc-proxy": {
      "description": "As long as Bitcoin is pruned, LND needs Bitcoin Proxy.",
      "optional": true,
      "s9pk": ""
    }
  },
  "images": {
    "main": {
      "source": "packed",
      "arch": ["x86_64", "aarch64"],
      "emulateMissingAs": "aarch64",
      "nvidiaContainer": false
    }
  },
  "volumes": ["main"],
  "hardwareRequirements": {"device": [], "arch": null, "ram": null},
  "hardwareAcceleration": false,
  "nestedRuntime": false,
  "plugins": []
}
"""


def fails(mutate: Callable[[Doc], object], base: Callable[[], Doc] = full_manifest) -> str:
    """Apply ``mutate`` to a valid manifest and return the ManifestError's message."""
    doc = base()
    mutate(doc)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("manifest: ")
    return message


# -- valid manifests -----------------------------------------------------------------------------


def test_full_manifest_parses_into_typed_records() -> None:
    m = parse_manifest(json.dumps(full_manifest()).encode())
    assert m.id == "bitcoind"
    assert m.version == ExtendedVersion.parse("#knots:27.1:2")
    assert m.version.flavor == "knots"
    assert m.satisfies == (ExtendedVersion.parse("27.1:2"),)
    assert isinstance(m.can_migrate_from, VersionRange)
    assert m.can_migrate_from.satisfied_by(ExtendedVersion.parse("26:0"))
    assert m.can_migrate_from.satisfied_by(ExtendedVersion.parse("#knots:1:0"))
    assert not m.can_migrate_to.is_satisfiable()
    assert m.os_version == Version.parse("0.4.0-beta.9")
    assert m.sdk_version == Version.parse("0.4.0-beta.45")
    assert m.description.short == "A Bitcoin full node."
    assert m.alerts.install == "Syncing takes a week."
    assert m.alerts.update is None
    assert m.dependencies["tor"].metadata is not None
    assert m.dependencies["tor"].metadata.title == "Tor"
    assert m.dependencies["btc-rpc-proxy"].s9pk == ""
    assert m.dependencies["electrs"] == DependencyInfo(optional=True)
    assert m.images["main"].source == ImageSourceSpec(docker_tag="bitcoin/bitcoin:27.1")
    assert m.images["packed-image"].source == "packed"
    assert m.images["main"].arch == frozenset({"x86_64", "aarch64"})
    assert m.volumes == frozenset({"main", "BACKUP"})
    assert m.hardware_requirements.ram == 8 * 1024**3
    assert m.hardware_requirements.device[0].device_class == "display"
    assert m.hardware_acceleration and m.virtual_networking and not m.nested_runtime
    assert m.plugins == frozenset({"url-v0"})


def test_minimal_manifest_gets_startos_defaults() -> None:
    m = parse_manifest(minimal_manifest())
    assert m.satisfies == ()
    assert m.dependencies == {}
    assert m.alerts.install is None and m.alerts.stop is None
    assert m.hardware_requirements.device == ()
    assert m.hardware_requirements.ram is None and m.hardware_requirements.arch is None
    assert m.git_hash is None and m.marketing_url is None and m.donation_url is None
    assert m.sdk_version is None
    assert not (m.hardware_acceleration or m.nested_runtime or m.userspace_filesystems)
    assert m.plugins == frozenset()


def test_startos_ui_fixture_manifest_parses() -> None:
    m = parse_manifest(STARTOS_LND)
    assert m.id == "lnd"
    assert m.dependencies["bitcoind"].optional
    assert m.can_migrate_from == VersionRange.any()


def test_older_beta_manifest_with_docs_urls_parses() -> None:
    doc = minimal_manifest() | {"docsUrls": ["https://docs.example.com"]}
    m = parse_manifest(doc)
    assert m.docs_urls == ("https://docs.example.com",)
    assert json.loads(m.to_json())["docsUrls"] == ["https://docs.example.com"]
    assert "docsUrls" not in json.loads(parse_manifest(minimal_manifest()).to_json())


@pytest.mark.parametrize("make", [full_manifest, minimal_manifest])
def test_json_round_trip(make: Callable[[], Doc]) -> None:
    m = parse_manifest(make())
    again = parse_manifest(m.to_json())
    assert again == m
    assert again.to_json() == m.to_json()


def test_to_json_writes_camel_case_strings_and_sorted_sets() -> None:
    out = json.loads(parse_manifest(full_manifest()).to_json())
    assert out["version"] == "#knots:27.1.0:2"
    assert out["canMigrateFrom"] == "(>=25.0:0 <27.1.0:2) || (#knots)"
    assert out["osVersion"] == "0.4.0-beta.9"
    assert out["volumes"] == ["BACKUP", "main"]
    assert out["images"]["main"]["arch"] == ["aarch64", "x86_64"]
    assert out["images"]["main"]["source"] == {"dockerTag": "bitcoin/bitcoin:27.1"}
    assert out["hardwareRequirements"]["device"][0]["class"] == "display"
    assert out["dependencies"]["electrs"] == {"optional": True}
    assert out["gitHash"].endswith("-modified")
    assert "hardware_requirements" not in out


def test_manifest_is_immutable() -> None:
    m = parse_manifest(minimal_manifest())
    with pytest.raises(AttributeError):
        m.id = "other"  # type: ignore[misc]


# -- localized strings ---------------------------------------------------------------------------


def test_localized_strings_are_kept_as_maps() -> None:
    m = parse_manifest(full_manifest())
    assert m.description.long == {"en_US": "A full node validates every block.", "de": "Ein Vollknoten."}
    assert m.release_notes == {"en_US": "Taproot, Schnorr, and more.", "es": "Taproot y más."}
    assert m.alerts.uninstall == {"en_US": "Chain state will be lost."}


def test_localize_picks_like_startos() -> None:
    notes = {"en_US": "hello", "de_DE": "hallo", "de_AT": "servus"}
    assert localize("plain", "de_DE") == "plain"
    assert localize(notes, "de_AT") == "servus"  # exact locale
    assert localize(notes, "de_CH") == "hallo"  # same language, first given
    assert localize(notes, "de") == "hallo"
    assert localize(notes, "fr_FR") == "hello"  # nothing close: the first translation
    assert localize({}, "en_US") == ""


def test_localized_description_limits_apply_to_every_translation() -> None:
    message = fails(lambda d: d["description"].update(short={"en_US": "ok", "de": "x" * 161}))
    assert "description.short.de" in message
    assert "160 characters" in message


def test_description_limits_count_characters_not_bytes() -> None:
    doc = minimal_manifest()
    doc["description"] = {"short": "ü" * 160, "long": "日" * 5000}
    assert parse_manifest(doc).description.short == "ü" * 160


# -- one failing test per rule -------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, field, rule",
    [
        (lambda d: d.pop("id"), "id", "is required"),
        (lambda d: d.update(id="Bitcoin"), "id", "lowercase letters and digits"),
        (lambda d: d.update(id="bit--coin"), "id", "single hyphens"),
        (lambda d: d.update(id="-bitcoin"), "id", "single hyphens"),
        (lambda d: d.update(id=""), "id", "lowercase"),
        (lambda d: d.pop("title"), "title", "is required"),
        (lambda d: d.update(title=5), "title", "must be a string, got an integer"),
        (lambda d: d["description"].update(short="x" * 161), "description.short", "at most 160"),
        (lambda d: d["description"].update(long="x" * 5001), "description.long", "at most 5000"),
        (lambda d: d["description"].pop("long"), "description.long", "is required"),
        (lambda d: d.update(description="short"), "description", "must be an object"),
        (lambda d: d.update(releaseNotes={"en": 1}), "releaseNotes.en", "must be a string"),
        (lambda d: d.update(releaseNotes=["x"]), "releaseNotes", "a string or an object"),
        (lambda d: d.update(packageRepo="github.com/x"), "packageRepo", "absolute URL"),
        (lambda d: d.pop("packageRepo"), "packageRepo", "is required"),
        (lambda d: d.update(upstreamRepo="has space://x y"), "upstreamRepo", "absolute URL"),
        (lambda d: d.update(marketingUrl=""), "marketingUrl", "absolute URL"),
        (lambda d: d.update(donationUrl=3), "donationUrl", "a string or null"),
        (lambda d: d.update(license=None), "license", "must be a string, got null"),
        (lambda d: d.update(gitHash=False), "gitHash", "a string or null"),
        (lambda d: d["alerts"].update(updat="x"), "alerts.updat", "did you mean 'update'"),
        (lambda d: d["alerts"].update(start=7), "alerts.start", "a string or an object or null"),
        (lambda d: d.update(sdkVersionn="1"), "sdkVersionn", "did you mean 'sdkVersion'"),
        (lambda d: d.update(frobnicate=True), "frobnicate", "is not a known field"),
        (lambda d: d.update(satisfies="1:0"), "satisfies", "must be an array"),
        (lambda d: d["dependencies"].update(Tor={"optional": True}), "dependencies", "key 'Tor'"),
        (lambda d: d["dependencies"].update(x={}), "dependencies.x.optional", "is required"),
        (
            lambda d: d["dependencies"]["tor"].update(optional="yes"),
            "dependencies.tor.optional",
            "must be true or false, got a string",
        ),
        (
            lambda d: d["dependencies"]["tor"].update(s9pk=""),
            "dependencies.tor",
            "either `metadata` or `s9pk`",
        ),
        (
            lambda d: d["dependencies"]["tor"]["metadata"].pop("icon"),
            "dependencies.tor.metadata.icon",
            "is required",
        ),
        (lambda d: d["images"].update(Main={}), "images", "key 'Main'"),
        (lambda d: d["images"]["main"].pop("arch"), "images.main.arch", "is required"),
        (lambda d: d["images"]["main"].update(arch="x86_64"), "images.main.arch", "an array"),
        (
            lambda d: d["images"]["main"].update(source="docker"),
            "images.main.source",
            'must be "packed" or an object, got "docker"',
        ),
        (lambda d: d["images"]["main"].update(source={}), "images.main.source", "exactly one"),
        (
            lambda d: d["images"]["main"].update(source={"dockerTag": "a", "dockerBuild": {}}),
            "images.main.source",
            "exactly one",
        ),
        (
            lambda d: d["images"]["tools"]["source"]["dockerBuild"]["buildArgs"].update(X={"e": 1}),
            "images.tools.source.dockerBuild.buildArgs.X.e",
            "is not a known field",
        ),
        (lambda d: d.update(volumes=["main", "Data"]), "volumes[1]", "BACKUP or lowercase"),
        (lambda d: d.update(volumes={"main": 1}), "volumes", "must be an array"),
        (lambda d: d["hardwareRequirements"].update(ram=-1), "hardwareRequirements.ram", ">= 0"),
        (
            lambda d: d["hardwareRequirements"].update(ram="8G"),
            "hardwareRequirements.ram",
            "an integer or null",
        ),
        (
            lambda d: d["hardwareRequirements"]["device"][1].update({"class": "gpu"}),
            "hardwareRequirements.device[1].class",
            'must be "processor" or "display", got "gpu"',
        ),
        (
            lambda d: d["hardwareRequirements"]["device"][0].pop("description"),
            "hardwareRequirements.device[0].description",
            "is required",
        ),
        (
            lambda d: d["hardwareRequirements"].update(devices=[]),
            "hardwareRequirements.devices",
            "did you mean 'device'",
        ),
        (lambda d: d.update(nestedRuntime="no"), "nestedRuntime", "true or false"),
        (lambda d: d.update(plugins=[1]), "plugins[0]", "must be a string"),
    ],
)
def test_each_rule_names_the_field(mutate: Callable[[Doc], object], field: str, rule: str) -> None:
    message = fails(mutate)
    assert f"manifest: {field}: " in message
    assert rule in message


@pytest.mark.parametrize(
    "field, value, rule",
    [
        ("version", "27.1", "missing downstream version"),
        ("version", "#Knots:27.1:0", "flavor 'Knots'"),
        ("version", "01.0:0", "leading zero"),
        ("canMigrateTo", ">=1 ||", "found the end of the text"),
        ("canMigrateFrom", "(>=1", "never closed"),
        ("osVersion", "0.4.0:0", "not a number"),
        ("sdkVersion", "beta", "not a number"),
    ],
)
def test_version_fields_wrap_the_exver_error(field: str, value: str, rule: str) -> None:
    doc = full_manifest()
    doc[field] = value
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc)
    assert str(caught.value).startswith(f"manifest: {field}: invalid ")
    assert rule in str(caught.value)
    assert isinstance(caught.value.__cause__, VersionParseError)
    assert str(caught.value.__cause__) in str(caught.value)


def test_version_list_entries_name_their_index() -> None:
    message = fails(lambda d: d.update(satisfies=["1:0", "2"]))
    assert message.startswith("manifest: satisfies[1]: invalid extended version '2'")


def test_version_fields_must_be_strings() -> None:
    message = fails(lambda d: d.update(version=27))
    assert message == "manifest: version: must be a string, got a number"


def test_error_details_carry_the_field() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(minimal_manifest() | {"id": "X"})
    assert caught.value.details == {"field": "id", "rule": caught.value.message.split(": ", 2)[2]}
    assert caught.value.kind == 24  # ValidateS9pk


def test_awkward_map_keys_are_quoted_in_the_path() -> None:
    message = fails(lambda d: d.update(releaseNotes={"en.US": "ok", "a b": 1}))
    assert 'releaseNotes["a b"]' in message


def test_the_first_bad_entry_of_a_map_is_named() -> None:
    def mutate(doc: Doc) -> None:
        doc["dependencies"]["tor"]["optional"] = "no"
        doc["dependencies"]["electrs"]["optional"] = "no"

    assert "dependencies.tor.optional" in fails(mutate)


def test_nested_maps_resolve_each_hidden_key() -> None:
    def mutate(doc: Doc) -> None:
        doc["images"]["tools"]["source"]["dockerBuild"]["buildArgs"]["TOKEN"] = {"env": 5}
        doc["images"]["main"]["arch"] = ["x86_64"]  # valid, just to vary the map

    assert "images.tools.source.dockerBuild.buildArgs.TOKEN.env" in fails(mutate)


@pytest.mark.parametrize(
    "data, rule",
    [
        (b"{nope", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[]", "must be a JSON object, got an array"),
        ("null", "must be a JSON object, got null"),
        ([1], "must be a JSON object, got an array"),
    ],
)
def test_not_a_json_object(data: Any, rule: str) -> None:
    with pytest.raises(ManifestError, match=rule):
        parse_manifest(data)


def test_parse_accepts_str_bytes_and_mappings_alike() -> None:
    doc = full_manifest()
    text = json.dumps(doc)
    assert parse_manifest(text) == parse_manifest(text.encode()) == parse_manifest(doc)


def test_parse_does_not_modify_its_input() -> None:
    doc = full_manifest()
    doc["dependencies"]["tor"]["optional"] = "no"
    before = copy.deepcopy(doc)
    with pytest.raises(ManifestError):
        parse_manifest(doc)
    assert doc == before


def test_manifest_type_is_a_strict_msgspec_struct() -> None:
    config = Manifest.__struct_config__
    assert config.frozen and config.forbid_unknown_fields
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"id": "x"}, Manifest)

"""This project's package layout: source folder -> s9pk -> manifest, icon, texts; edit; select."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from startos.s9pk.archive import ArchiveReader
from startos.s9pk.archive_writer import write_archive
from startos.s9pk.errors import ManifestError, PackError, S9pkError
from startos.s9pk.package import (
    Package,
    apply_manifest_expression,
    edit_manifest,
    find_sources,
    pack_package,
    select_best,
)

from .conftest import HELLO, OTHER_KEY, TEST_KEY


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A writable copy of the hello source folder."""
    dest = tmp_path / "hello"
    shutil.copytree(HELLO, dest)
    return dest


def packed(source: Path, **kwargs: object) -> Path:
    return pack_package(find_sources(source, **kwargs), TEST_KEY)  # type: ignore[arg-type]


def test_find_sources_and_ingredients(source: Path) -> None:
    sources = find_sources(source)
    assert sources.icon.name == "icon.png" and sources.license.name == "LICENSE.md"
    assert sources.assets is None and sources.images is None
    assert [p.name for p in sources.ingredients()] == [
        "manifest.json",
        "python",
        "icon.png",
        "LICENSE.md",
        "instructions.md",
    ]


def test_pack_layout_and_read_back(source: Path) -> None:
    (source / "python" / "hello" / "__pycache__").mkdir()
    (source / "python" / "hello" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    out = packed(source)
    assert out == source / "hello.s9pk"
    with Package(out) as package:
        assert package.manifest.id == "hello"
        assert str(package.manifest.version) == "1.0.0:0"
        assert package.archive.listdir() == ["python", "manifest.json", "icon.png", "LICENSE.md", "instructions.md"]
        assert package.archive.listdir("python/hello") == ["__init__.py", "main.py"]
        name, mime, data = package.icon()
        assert (name, mime) == ("icon.png", "image/png") and data.startswith(b"\x89PNG")
        assert package.license().startswith("# MIT License")
        assert package.instructions() is not None
        assert package.verify().files == 6
        # manifest.json is the canonical re-serialization of the validated record.
        assert package.archive.read_bytes("manifest.json") == package.manifest.to_json()


def test_pack_is_deterministic(source: Path, tmp_path: Path) -> None:
    a = pack_package(find_sources(source), TEST_KEY, tmp_path / "a.s9pk")
    b = pack_package(find_sources(source), TEST_KEY, tmp_path / "b.s9pk")
    assert a.read_bytes() == b.read_bytes()


def test_assets_and_images(source: Path, tmp_path: Path) -> None:
    (source / "assets" / "www").mkdir(parents=True)
    (source / "assets" / "www" / "index.html").write_text("<h1>hi</h1>")
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["images"] = {"main": {"source": "packed", "arch": ["x86_64", "aarch64"]}}
    (source / "manifest.json").write_text(json.dumps(manifest))
    (source / "images" / "x86_64").mkdir(parents=True)
    (source / "images" / "x86_64" / "main.squashfs").write_bytes(b"sqsh" * 100)
    (source / "images" / "x86_64" / "main.json").write_text("{}")
    out = packed(source)
    with Package(out) as package:
        assert package.archive.listdir()[:3] == ["images", "assets", "python"]
        assert package.archive.read_bytes("assets/www/index.html") == b"<h1>hi</h1>"
    no_assets = pack_package(find_sources(source, no_assets=True), TEST_KEY, tmp_path / "n.s9pk")
    with Package(no_assets) as package:
        assert "assets" not in package.archive.listdir()
    (source / "images" / "x86_64" / "other.squashfs").write_bytes(b"x")
    with pytest.raises(PackError, match="'other' is not in the manifest"):
        packed(source)
    (source / "images" / "x86_64" / "other.squashfs").unlink()
    (source / "images" / "riscv64").mkdir()
    (source / "images" / "riscv64" / "main.squashfs").write_bytes(b"x")
    with pytest.raises(PackError, match="does not list riscv64"):
        packed(source)


def test_explicit_icon_and_license(source: Path, tmp_path: Path) -> None:
    (source / "icon.png").rename(tmp_path / "logo.png")
    (source / "LICENSE.md").rename(tmp_path / "COPYING.md")
    with pytest.raises(PackError, match="no icon file"):
        find_sources(source)
    sources = find_sources(source, icon=tmp_path / "logo.png", license=tmp_path / "COPYING.md")
    with Package(pack_package(sources, TEST_KEY)) as package:
        assert package.icon()[0] == "icon.png"
        assert package.license().startswith("# MIT")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda s: (s / "manifest.json").unlink(), "manifest.json"),
        (lambda s: (s / "instructions.md").unlink(), "instructions.md"),
        (lambda s: shutil.rmtree(s / "python"), "Python code"),
        (lambda s: (s / "icon.svg").write_text("<svg/>"), "several icon files"),
        (lambda s: (s / "icon.png").rename(s / "icon.txt"), "not an image"),
        (lambda s: (s / "LICENSE.md").unlink(), "no license file"),
    ],
)
def test_broken_source_folders(source: Path, breakage: object, message: str) -> None:
    breakage(source)  # type: ignore[operator]
    with pytest.raises(PackError, match=message):
        find_sources(source)


def test_assets_flags_conflict(source: Path) -> None:
    with pytest.raises(PackError, match="contradict"):
        find_sources(source, assets=source, no_assets=True)
    with pytest.raises(PackError, match="not found"):
        find_sources(source, assets=source / "nope")


def test_invalid_manifest_is_refused_at_pack_and_read(source: Path, tmp_path: Path) -> None:
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["id"] = "Not_Valid"
    (source / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="id"):
        packed(source)
    # An archive whose manifest breaks the rules (signed fine) cannot be opened as a package.
    bad = tmp_path / "bad.s9pk"
    write_archive({"manifest.json": json.dumps(manifest).encode()}, bad, TEST_KEY)
    with pytest.raises(ManifestError) as info:
        Package(bad)
    assert "\n" not in str(info.value)
    write_archive({"icon.png": b"x"}, bad, TEST_KEY)
    with pytest.raises(ManifestError, match=r"no manifest\.json"):
        Package(bad)


def test_edit_manifest_re_signs_and_keeps_the_rest(source: Path) -> None:
    out = packed(source)
    with ArchiveReader(out) as before:
        old_python = before.read_bytes("python/hello/__init__.py")
        old_signer = before.signer
    new = edit_manifest(out, '.title = "Hello Again"', OTHER_KEY)
    assert new["title"] == "Hello Again"
    with Package(out) as package:
        assert package.manifest.title == "Hello Again"
        assert package.archive.signer == OTHER_KEY.public_key != old_signer
        assert package.archive.read_bytes("python/hello/__init__.py") == old_python
        package.verify()
    edit_manifest(out, '[{"op": "replace", "path": "/description/short", "value": "Hi"}]', TEST_KEY)
    with Package(out) as package:
        assert package.manifest.description.short == "Hi"
    with pytest.raises(ManifestError):
        edit_manifest(out, '.id = "BAD ID"', TEST_KEY)
    with Package(out) as package:  # a refused edit leaves the file as it was
        assert package.manifest.id == "hello"


def test_manifest_expressions() -> None:
    doc = {"a": {"b": 1}, "list": [1, 2]}
    assert apply_manifest_expression(doc, ".a.b = 2") == {"a": {"b": 2}, "list": [1, 2]}
    assert apply_manifest_expression(doc, "/a/c = [true]")["a"] == {"b": 1, "c": [True]}
    assert apply_manifest_expression(doc, '.x["y.z"] = null')["x"] == {"y.z": None}
    assert apply_manifest_expression(doc, "/list/1 = 5")["list"] == [1, 5]
    assert doc == {"a": {"b": 1}, "list": [1, 2]}  # not mutated
    for bad in [
        "title = 1",
        ".a.b = not-json",
        ".a.b",
        '[{"op": "nope"}]',
        "/list/9 = 1",
        '[{"op": "remove", "path": "/missing"}]',
    ]:
        with pytest.raises(ManifestError):
            apply_manifest_expression(doc, bad)


def _with_hw(source: Path, tmp_path: Path, name: str, hw: dict[str, object]) -> Path:
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["hardwareRequirements"] = hw
    (source / "manifest.json").write_text(json.dumps(manifest))
    return pack_package(find_sources(source), TEST_KEY, tmp_path / f"{name}.s9pk")


def test_select_best_for_this_machine(source: Path, tmp_path: Path) -> None:
    generic = _with_hw(source, tmp_path, "generic", {"device": []})
    x86 = _with_hw(source, tmp_path, "x86", {"device": [], "arch": ["x86_64"]})
    both = _with_hw(source, tmp_path, "both", {"device": [], "arch": ["x86_64", "aarch64"]})
    arm = _with_hw(source, tmp_path, "arm", {"device": [], "arch": ["aarch64"]})
    big = _with_hw(source, tmp_path, "big", {"device": [], "arch": ["x86_64"], "ram": 2**50})
    junk = tmp_path / "junk.s9pk"
    junk.write_bytes(b"not a package")
    paths = [junk, generic, both, x86, arm, big]
    assert select_best(paths, arch="x86_64", ram=2**34) == x86
    assert select_best(paths, arch="aarch64", ram=2**34) == arm
    assert select_best([generic, both], arch="x86_64", ram=2**34) == both
    assert select_best(paths, arch="riscv64", ram=2**34) == generic
    with pytest.raises(S9pkError, match="no compatible s9pk"):
        select_best([arm, junk], arch="x86_64", ram=2**34)

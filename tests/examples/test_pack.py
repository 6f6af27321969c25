"""Every example packs into a signed s9pk, and the packed code is the code that loads."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from startos.protocol import runtime as wire
from startos.s9pk import Package, generate_signing_key, pack_package
from startos.s9pk.package import find_sources
from startos.s9pk.toc import EntryKind
from startos.sdk.testing import ServiceTester

from .conftest import EXAMPLES, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_pack_and_sign(tmp_path: Path, name: str) -> None:
    key = generate_signing_key()
    out = pack_package(find_sources(EXAMPLES / name), key, tmp_path / f"{name}.s9pk")
    with Package(out, trusted_keys=[key.public_key]) as package:
        assert package.manifest.id == name
        assert package.manifest.volumes == frozenset({"main"})
        assert package.verify().files >= 6
        assert "startos_service.py" in package.archive.listdir("python")
        assert package.icon()[1] == "image/png"
        assert package.license().startswith("# MIT License")
        assert (package.instructions() or "").startswith("# ")
        names = [path for path, _ in package.archive.walk()]
        assert not any("__pycache__" in path or path.endswith(".pyc") for path in names)


@pytest.mark.parametrize("name", NAMES)
def test_packed_code_describes_like_the_source(tmp_path: Path, name: str) -> None:
    key = generate_signing_key()
    out = pack_package(find_sources(EXAMPLES / name), key, tmp_path / f"{name}.s9pk")
    unpacked = tmp_path / "unpacked"
    with Package(out) as package:
        for path, entry in package.archive.walk():
            target = unpacked / path
            if entry.kind is EntryKind.DIRECTORY:
                target.mkdir(parents=True, exist_ok=True)
            elif entry.kind is EntryKind.FILE:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(package.archive.read_bytes(path))
    with ServiceTester(unpacked, tmp_path / "packed") as packed:
        packed.run_init("install")
        from_archive = packed.describe()
    with ServiceTester(EXAMPLES / name, tmp_path / "source") as source:
        source.run_init("install")
        from_source = source.describe()
    assert [d.id for d in from_archive.daemons] == [d.id for d in from_source.daemons]

    # Equal but for paths: PYTHONPATH points at each copy's python/ folder.
    def readiness(description: wire.ServiceDescription) -> list[object]:
        return [
            msgspec.structs.replace(d.ready, env={}) if isinstance(d.ready, wire.CommandReady) else d.ready
            for d in description.daemons
        ]

    assert readiness(from_archive) == readiness(from_source)
    assert from_archive.migrations == from_source.migrations and from_archive.backup == from_source.backup

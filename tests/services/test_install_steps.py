"""The install steps on real signed packages: inspect, verify, key continuity, atomic unpack."""

from __future__ import annotations

from pathlib import Path

import pytest

from startos.actors.services import install as steps
from startos.s9pk import generate_signing_key, pack_package
from startos.s9pk.errors import S9pkError
from startos.s9pk.package import find_sources

HELLO = Path(__file__).parents[1] / "s9pk" / "fixtures" / "hello"


@pytest.fixture
def packed(tmp_path: Path) -> Path:
    return pack_package(find_sources(HELLO), generate_signing_key(), output=tmp_path / "hello.s9pk")


def test_inspect_verify_unpack(packed: Path, tmp_path: Path) -> None:
    info = steps.inspect(packed)
    assert (info.id, info.version) == ("hello", "1.0.0:0")
    assert info.icon_data_url and info.icon_data_url.startswith("data:image/png;base64,")
    steps.verify(packed)
    target = steps.unpack(packed, tmp_path / "pkg", info.version)
    assert (target / "manifest.json").exists() and (target / "python").is_dir()
    assert target.name == "1.0.0_0"  # no ":" in paths: PYTHONPATH would split there
    assert not (tmp_path / "pkg" / "versions" / "1.0.0_0.partial").exists()


def test_a_tampered_package_is_refused_before_anything_is_unpacked(packed: Path, tmp_path: Path) -> None:
    data = bytearray(packed.read_bytes())
    data[-10] ^= 0x01
    packed.write_bytes(bytes(data))
    with pytest.raises(S9pkError):
        steps.verify(packed)
    with pytest.raises(S9pkError):
        steps.unpack(packed, tmp_path / "pkg", "1.0.0:0")
    assert not any((tmp_path / "pkg" / "versions").iterdir())


def test_key_continuity(packed: Path, tmp_path: Path) -> None:
    info = steps.inspect(packed)
    steps.check_signer(None, info, accept_new_key=False)
    steps.check_signer(info.signer_b64, info, accept_new_key=False)
    other = steps.inspect(pack_package(find_sources(HELLO), generate_signing_key(), output=tmp_path / "other.s9pk"))
    with pytest.raises(steps.SignerChanged, match="different key"):
        steps.check_signer(info.signer_b64, other, accept_new_key=False)
    steps.check_signer(info.signer_b64, other, accept_new_key=True)


@pytest.mark.parametrize(
    ("installed", "new", "kind"),
    [
        (None, "1.0.0:0", "install"),
        ("1.0.0:0", "1.1.0:0", "update"),
        ("1.1.0:0", "1.0.0:0", "downgrade"),
        ("1.0.0:0", "1.0.0:0", "reinstall"),
    ],
)
def test_compare_versions(installed: str | None, new: str, kind: str) -> None:
    assert steps.compare_versions(installed, new) == kind


def test_volume_snapshots_restore_the_old_data(tmp_path: Path) -> None:
    steps.create_volumes(tmp_path, ["main"])
    (tmp_path / "volumes" / "main" / "data.txt").write_text("old")
    snapshot = steps.snapshot_volumes(tmp_path)
    (tmp_path / "volumes" / "main" / "data.txt").write_text("migrated badly")
    steps.restore_volumes(tmp_path, snapshot)
    assert (tmp_path / "volumes" / "main" / "data.txt").read_text() == "old"

"""Ed25519ph with context "s9pk", strict verification, and developer key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from Crypto.Hash import SHA512
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from startos.s9pk.errors import SignatureError
from startos.s9pk.signing import (
    SigningKey,
    default_developer_key_path,
    fingerprint,
    generate_signing_key,
    load_public_key,
    load_signing_key,
    public_key_from_pem,
    public_key_to_pem,
    save_signing_key,
    sign_commitment,
    signing_key_from_pem,
    verify_commitment,
    verify_prehashed_strict,
)

# RFC 8032 §7.3, test vector "TEST abc" (Ed25519ph, empty context).
RFC_SEED = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
RFC_PUB = bytes.fromhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
RFC_SIG = bytes.fromhex(
    "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
    "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
)

# Computed with @noble/curves 1.9.7 `ed25519ph.sign(sighash ‖ u64be(1234567), seed,
# {context: "s9pk"})` — the library StartOS's TypeScript s9pk reader verifies with.
SIGHASH = bytes(range(32, 64))
NOBLE_VECTORS = [
    (
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
        "0a7d12ed430b2619bda09d1098472c424cc29e1a7fe03755e958a029a5b13bca"
        "865d852200c8561090f08ad196c118e0e6be32c1e2ab86d2a8c4e557f270fa03",
    ),
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "cc1a8904aa8b57e6939deb41994d9e85938c647ad2c398ac015355f170076da2"
        "484f843041ee7602bfbaabd4fe6e0207a6a3d5ec32d1c608e4f1299b3bbcc809",
    ),
]


def test_rfc8032_ed25519ph_vector() -> None:
    key = SigningKey(RFC_SEED)
    assert key.public_key == RFC_PUB
    verify_prehashed_strict(RFC_PUB, RFC_SIG, SHA512.new(b"abc").digest(), b"")
    with pytest.raises(SignatureError):
        verify_prehashed_strict(RFC_PUB, RFC_SIG, SHA512.new(b"abd").digest(), b"")


@pytest.mark.parametrize(("seed", "pub", "sig"), NOBLE_VECTORS)
def test_s9pk_signatures_match_noble(seed: str, pub: str, sig: str) -> None:
    key = SigningKey(bytes.fromhex(seed))
    assert key.public_key.hex() == pub
    assert sign_commitment(key, SIGHASH, 1234567).hex() == sig
    verify_commitment(key.public_key, bytes.fromhex(sig), SIGHASH, 1234567)


def test_context_maxsize_and_key_are_all_covered() -> None:
    key = generate_signing_key()
    sig = sign_commitment(key, SIGHASH, 10)
    verify_commitment(key.public_key, sig, SIGHASH, 10)
    with pytest.raises(SignatureError):
        verify_commitment(key.public_key, sig, SIGHASH, 11)
    with pytest.raises(SignatureError):
        verify_commitment(key.public_key, sig, bytes(32), 10)
    with pytest.raises(SignatureError):
        verify_commitment(key.public_key, sig, SIGHASH, 10, context=b"test")
    with pytest.raises(SignatureError):
        verify_commitment(generate_signing_key().public_key, sig, SIGHASH, 10)


def test_strict_rules_like_dalek() -> None:
    key = SigningKey(bytes(range(32)))
    sig = sign_commitment(key, SIGHASH, 5)
    s = int.from_bytes(sig[32:], "little")
    order = 2**252 + 27742317777372353535851937790883648493
    malleated = sig[:32] + (s + order).to_bytes(32, "little")  # same point, S not canonical
    with pytest.raises(SignatureError, match="not canonical"):
        verify_commitment(key.public_key, malleated, SIGHASH, 5)
    identity = (1).to_bytes(32, "little")  # the neutral point: a small-order "key"
    with pytest.raises(SignatureError, match="weak key"):
        verify_commitment(identity, sig, SIGHASH, 5)
    with pytest.raises(SignatureError, match="small order"):
        verify_commitment(key.public_key, identity + sig[32:], SIGHASH, 5)
    with pytest.raises(SignatureError, match="not a curve point"):
        verify_commitment(b"\xff" * 32, sig, SIGHASH, 5)
    with pytest.raises(SignatureError):
        verify_commitment(key.public_key, sig[:63], SIGHASH, 5)


def test_pem_round_trip_matches_startos_form(tmp_path: Path) -> None:
    key = generate_signing_key()
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    # PKCS#8 v2 with the public key: 83 DER bytes, like ed25519::KeypairBytes::to_pkcs8_pem.
    assert len(pem.splitlines()[1]) + len(pem.splitlines()[2]) == 112
    assert signing_key_from_pem(pem) == key
    # A v1 PEM (what `cryptography` or openssl writes) loads too.
    v1 = Ed25519PrivateKey.from_private_bytes(key.seed).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert signing_key_from_pem(v1) == key
    spki = (
        Ed25519PrivateKey.from_private_bytes(key.seed)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert public_key_to_pem(key.public_key).encode() == spki
    assert public_key_from_pem(spki) == key.public_key


def test_corrupt_key_files_are_refused() -> None:
    key = generate_signing_key()
    pem = key.to_pem()
    lines = pem.splitlines()
    import base64

    der = bytearray(base64.b64decode(lines[1] + lines[2]))
    der[-1] ^= 1  # public half no longer matches the seed
    bad = b"-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(bytes(der)) + (b"\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SignatureError, match="does not match"):
        signing_key_from_pem(bad)
    with pytest.raises(SignatureError):
        signing_key_from_pem(b"not a key")
    with pytest.raises(SignatureError):
        signing_key_from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SignatureError):
        SigningKey(b"short")


def test_save_is_0600_and_does_not_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "developer.key.pem"
    key = generate_signing_key()
    save_signing_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(path) == key
    with pytest.raises(SignatureError, match="already exists"):
        save_signing_key(generate_signing_key(), path)
    os.chmod(path, 0o644)
    other = generate_signing_key()
    save_signing_key(other, path, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(path) == other
    with pytest.raises(SignatureError, match="start-cli init key"):
        load_signing_key(tmp_path / "absent.pem")


def test_public_key_inputs(tmp_path: Path) -> None:
    key = generate_signing_key()
    pem = public_key_to_pem(key.public_key)
    (tmp_path / "k.pub").write_text(pem)
    assert load_public_key(pem) == key.public_key
    assert load_public_key(str(tmp_path / "k.pub")) == key.public_key
    assert load_public_key(key.public_key.hex()) == key.public_key
    assert load_public_key(fingerprint(key.public_key)) == key.public_key
    with pytest.raises(SignatureError):
        load_public_key("nonsense")


def test_default_key_path_is_in_the_config_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/dev/.config")
    assert default_developer_key_path() == Path("/home/dev/.config/startos-py/developer.key.pem")

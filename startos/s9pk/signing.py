"""Ed25519ph signatures of s9pk archives and developer keys (REFERENCE.md §1).

An s9pk is signed with **Ed25519ph** (RFC 8032's prehash variant) under the context ``"s9pk"``
over ``SHA-512(root_sighash ‖ u64be(root_maxsize))``. ``cryptography`` only offers pure Ed25519,
so signing goes through PyCryptodome. Verification follows ed25519-dalek's
``verify_prehashed_strict`` (what StartOS uses) rather than PyCryptodome's cofactored check:
small-order public keys and ``R`` points are refused and the equation is checked without the
cofactor, so a signature accepted here is accepted by StartOS and vice versa.

Developer keys are stored like StartOS stores them: a PKCS#8 PEM (``BEGIN PRIVATE KEY``) in the
v2 form that carries the public key too; the public key prints as a SubjectPublicKeyInfo PEM
(``BEGIN PUBLIC KEY``), which is what ``start-cli pubkey`` prints on StartOS.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from Crypto.Hash import SHA512
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from startos.paths import default_config_dir
from startos.s9pk.errors import SignatureError

__all__ = [
    "SIG_CONTEXT",
    "SigningKey",
    "commitment_prehash",
    "default_developer_key_path",
    "fingerprint",
    "generate_signing_key",
    "load_public_key",
    "load_signing_key",
    "public_key_from_pem",
    "public_key_to_pem",
    "save_signing_key",
    "sign_commitment",
    "verify_commitment",
]

SIG_CONTEXT = b"s9pk"

# Group order of edwards25519 (RFC 8032 §5.1, "L").
_L = 2**252 + 27742317777372353535851937790883648493
_DOM2 = b"SigEd25519 no Ed25519 collisions"
# Base point B of edwards25519 (RFC 8032 §5.1).
_GX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_GY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
# DER prefixes of the two PKCS#8 shapes of an Ed25519 key (RFC 8410): v1 has only the seed, v2
# (what StartOS's `write_developer_key` emits) appends `[1] IMPLICIT BIT STRING` with the key.
_PKCS8_V1_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_PKCS8_V2_PREFIX = bytes.fromhex("3051020101300506032b657004220420")
_PKCS8_V2_PUB_TAG = bytes.fromhex("812100")
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PEM_RE = re.compile(rb"-----BEGIN ([A-Z ]+)-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key (its 32-byte RFC 8032 seed) and the public key derived from it."""

    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise SignatureError("an Ed25519 private key is exactly 32 bytes")
        pub = eddsa.import_private_key(self.seed).public_key().export_key(format="raw")
        object.__setattr__(self, "public_key", bytes(pub))

    def to_pem(self) -> bytes:
        """PKCS#8 v2 PEM with the public key included, byte-identical to StartOS's key files."""
        der = _PKCS8_V2_PREFIX + self.seed + _PKCS8_V2_PUB_TAG + self.public_key
        return _pem("PRIVATE KEY", der)


def generate_signing_key() -> SigningKey:
    """A fresh key from the OS's CSPRNG."""
    return SigningKey(os.urandom(32))


def _pem(label: str, der: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n".encode() + b"\n".join(lines) + f"\n-----END {label}-----\n".encode()


def _unpem(data: bytes, label: str) -> bytes:
    match = _PEM_RE.search(data)
    if match is None or match.group(1).decode() != label:
        raise SignatureError(f"not a PEM '{label}' block")
    try:
        return base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except binascii.Error as exc:
        raise SignatureError(f"PEM '{label}' block is not valid base64") from exc


def signing_key_from_pem(data: bytes) -> SigningKey:
    """Parse a PKCS#8 Ed25519 private key (v1 or v2); a v2 public key must match the seed."""
    der = _unpem(data, "PRIVATE KEY")
    if der.startswith(_PKCS8_V1_PREFIX) and len(der) == len(_PKCS8_V1_PREFIX) + 32:
        return SigningKey(der[len(_PKCS8_V1_PREFIX) :])
    if (
        der.startswith(_PKCS8_V2_PREFIX)
        and len(der) == len(_PKCS8_V2_PREFIX) + 32 + len(_PKCS8_V2_PUB_TAG) + 32
        and der[48:51] == _PKCS8_V2_PUB_TAG
    ):
        key = SigningKey(der[16:48])
        if key.public_key != der[51:]:
            raise SignatureError("developer key file is corrupt: its public key does not match")
        return key
    # Other valid encodings (attributes, non-minimal lengths): let PyCryptodome parse them.
    try:
        imported = ECC.import_key(der)
    except (ValueError, IndexError, TypeError) as exc:
        raise SignatureError("not an Ed25519 private key in PKCS#8 form") from exc
    if imported.curve != "Ed25519" or not imported.has_private():
        raise SignatureError("not an Ed25519 private key in PKCS#8 form")
    return SigningKey(bytes(imported.seed))


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """Read a developer key file (PEM); raise :class:`SignatureError` if absent or malformed."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise SignatureError(f"developer key not found at {p}; create one with `start-cli init key`") from exc
    except OSError as exc:
        raise SignatureError(f"cannot read developer key {p}: {exc.strerror}") from exc
    return signing_key_from_pem(data)


def save_signing_key(key: SigningKey, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Write ``key`` as PEM with mode 0600, creating parent directories (mode 0700).

    The file is created with 0600 from the start (never world-readable, even briefly) and
    refuses to replace an existing key unless ``overwrite`` is set: losing a developer key
    means losing the right to publish updates under it.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(p, flags, 0o600)
    except FileExistsError as exc:
        raise SignatureError(f"a developer key already exists at {p}") from exc
    except OSError as exc:
        raise SignatureError(f"cannot write developer key {p}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)  # an overwritten file keeps its old mode otherwise
        os.write(fd, key.to_pem())
        os.fsync(fd)
    finally:
        os.close(fd)


def default_developer_key_path() -> Path:
    """``developer.key.pem`` in the user's config dir (``$XDG_CONFIG_HOME/startos-py``).

    StartOS keeps it at ``~/.startos/developer.key.pem``; the file format is the same, so
    ``--developer-key-path ~/.startos/developer.key.pem`` signs with an existing StartOS key.
    """
    return default_config_dir() / "developer.key.pem"


def public_key_to_pem(public_key: bytes) -> str:
    """SubjectPublicKeyInfo PEM (``BEGIN PUBLIC KEY``), as StartOS prints a developer pubkey."""
    if len(public_key) != 32:
        raise SignatureError("an Ed25519 public key is exactly 32 bytes")
    return _pem("PUBLIC KEY", _SPKI_PREFIX + public_key).decode()


def public_key_from_pem(data: bytes | str) -> bytes:
    """Parse a SubjectPublicKeyInfo PEM holding an Ed25519 public key."""
    raw = data.encode() if isinstance(data, str) else data
    der = _unpem(raw, "PUBLIC KEY")
    if not der.startswith(_SPKI_PREFIX) or len(der) != len(_SPKI_PREFIX) + 32:
        raise SignatureError("not an Ed25519 public key")
    return der[len(_SPKI_PREFIX) :]


def load_public_key(text: str) -> bytes:
    """A public key given as PEM, a path to a PEM file, base64 or hex (32 bytes)."""
    stripped = text.strip()
    if "-----BEGIN" in stripped:
        return public_key_from_pem(stripped)
    if os.path.isfile(stripped):
        return public_key_from_pem(Path(stripped).read_bytes())
    for decode in (bytes.fromhex, _b64_any):
        try:
            raw = decode(stripped)
        except ValueError:
            continue
        if len(raw) == 32:
            return raw
    raise SignatureError(f"not an Ed25519 public key: {text[:40]!r}")


def _b64_any(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


def fingerprint(public_key: bytes) -> str:
    """A short, unambiguous name for a key in messages: unpadded base64 of its 32 bytes."""
    return base64.b64encode(public_key).decode().rstrip("=")


def commitment_prehash(root_sighash: bytes, root_maxsize: int) -> SHA512.SHA512Hash:
    """The SHA-512 state StartOS feeds to Ed25519ph: ``sighash ‖ u64be(maxsize)``."""
    return SHA512.new(root_sighash + root_maxsize.to_bytes(8, "big"))


def sign_commitment(key: SigningKey, root_sighash: bytes, root_maxsize: int, context: bytes = SIG_CONTEXT) -> bytes:
    """Sign an archive commitment; returns the 64-byte Ed25519ph signature."""
    signer = eddsa.new(eddsa.import_private_key(key.seed), "rfc8032", context=context)
    return bytes(signer.sign(commitment_prehash(root_sighash, root_maxsize)))


def _decode_point(encoded: bytes, what: str) -> ECC.EccPoint:
    try:
        return eddsa.import_public_key(encoded).pointQ
    except ValueError as exc:
        raise SignatureError(f"signature does not verify: {what} is not a curve point") from exc


def _is_small_order(point: ECC.EccPoint) -> bool:
    return bool((point * 8).is_point_at_infinity())


def verify_prehashed_strict(public_key: bytes, signature: bytes, prehash: bytes, context: bytes = SIG_CONTEXT) -> None:
    """Ed25519ph verification with ed25519-dalek's ``verify_strict`` rules.

    ``prehash`` is the 64-byte SHA-512 digest. Raises :class:`SignatureError` on any failure.
    """
    if len(public_key) != 32 or len(signature) != 64 or len(prehash) != 64:
        raise SignatureError("signature does not verify: wrong key or signature length")
    if len(context) > 255:
        raise SignatureError("signature context longer than 255 bytes")
    a = _decode_point(public_key, "the signer key")
    if _is_small_order(a):
        raise SignatureError("signature does not verify: the signer key is a weak key")
    r_bytes, s_bytes = signature[:32], signature[32:]
    s = int.from_bytes(s_bytes, "little")
    if s >= _L:
        raise SignatureError("signature does not verify: S is not canonical")
    r = _decode_point(r_bytes, "R")
    if _is_small_order(r):
        raise SignatureError("signature does not verify: R has small order")
    dom2 = _DOM2 + bytes([1, len(context)]) + context
    k_hash = SHA512.new(dom2 + r_bytes + public_key + prehash).digest()
    k = int.from_bytes(k_hash, "little") % _L
    generator = ECC.EccPoint(_GX, _GY, curve="Ed25519")
    # Cofactorless: [s]B == R + [k]A exactly, as dalek's strict mode (not RFC 8032's [8] form).
    if s * generator != r + a * k:
        raise SignatureError("signature does not verify")


def verify_commitment(
    public_key: bytes,
    signature: bytes,
    root_sighash: bytes,
    root_maxsize: int,
    context: bytes = SIG_CONTEXT,
) -> None:
    """Check an archive header's signature over its commitment; raise :class:`SignatureError`."""
    prehash = commitment_prehash(root_sighash, root_maxsize).digest()
    verify_prehashed_strict(public_key, signature, prehash, context)

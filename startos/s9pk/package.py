"""This project's packages: a source folder packed into an s9pk, and reading one back.

A package source folder::

    manifest.json          the manifest (REFERENCE.md §2), validated before packing
    icon.<ext>             the service icon (any image type; or --icon PATH)
    LICENSE.md             the license (any file named license.*; or --license PATH)
    instructions.md        what the user reads before and after installing
    python/                the service's Python code (where StartOS has javascript.squashfs)
    assets/                optional static files (or --assets DIR; --no-assets leaves it out)
    images/<arch>/<id>.*   optional container images per architecture

The archive holds ``manifest.json``, ``icon.<ext>``, ``LICENSE.md``, ``instructions.md``,
``python/``, ``assets/`` and ``images/<arch>/…``; ``__pycache__`` and ``*.pyc`` are never packed.
The container format is StartOS's, so ``start-cli s9pk inspect`` works on StartOS packages too.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from startos.protocol.limits import decode_json
from startos.s9pk.archive import ArchiveReader, Commitment, VerifyReport
from startos.s9pk.archive_writer import TreeNode, tree_from_folder, write_archive
from startos.s9pk.errors import ManifestError, PackError, S9pkError
from startos.s9pk.manifest import Manifest, parse_manifest
from startos.s9pk.signing import SigningKey
from startos.s9pk.toc import EntryKind

__all__ = [
    "PackSources",
    "Package",
    "apply_manifest_expression",
    "edit_manifest",
    "find_sources",
    "machine_arch",
    "pack_package",
    "select_best",
    "validate_manifest",
]

_IMAGE_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "webp": "image/webp",
    "ico": "image/x-icon",
    "bmp": "image/bmp",
    "avif": "image/avif",
}
_MANIFEST_CAP = 4 * 1024 * 1024  # a manifest is text; refuse to buffer anything bigger
_TEXT_CAP = 16 * 1024 * 1024


def machine_arch() -> str:
    """This machine's architecture in StartOS's words (x86_64, aarch64, riscv64)."""
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def validate_manifest(raw: bytes | dict[str, Any]) -> Manifest:
    """Validate manifest JSON (bytes or a decoded object) against REFERENCE.md §2."""
    return parse_manifest(raw)


def _skip_build_junk(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name == "__pycache__" or name.endswith((".pyc", ".pyo"))


@dataclass(frozen=True)
class PackSources:
    """The files a pack reads, resolved from a source folder and options."""

    folder: Path
    manifest: Path
    icon: Path
    license: Path
    instructions: Path
    python: Path
    assets: Path | None
    images: Path | None

    def ingredients(self) -> list[Path]:
        """Every input path, in the order ``list-ingredients`` prints them."""
        paths = [self.manifest, self.python, self.icon, self.license, self.instructions]
        return paths + [p for p in (self.assets, self.images) if p is not None]


def _find_by_stem(folder: Path, stem: str, flag: str) -> Path:
    # StartOS matches `file_stem` case-insensitively: "icon.png", "LICENSE", "License.md".
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and p.stem.lower() == stem]
    if not found:
        raise PackError(f"no {stem} file in {folder}; add {stem}.* or pass {flag}")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise PackError(f"several {stem} files in {folder} ({names}); choose one with {flag}")
    return found[0]


def find_sources(
    folder: str | os.PathLike[str] = ".",
    *,
    icon: str | os.PathLike[str] | None = None,
    license: str | os.PathLike[str] | None = None,
    assets: str | os.PathLike[str] | None = None,
    no_assets: bool = False,
) -> PackSources:
    """Resolve a source folder's ingredients; raise :class:`PackError` naming what is missing."""
    base = Path(folder)
    if not base.is_dir():
        raise PackError(f"package source folder {base} does not exist")
    if assets is not None and no_assets:
        raise PackError("--assets and --no-assets contradict each other")
    manifest = base / "manifest.json"
    if not manifest.is_file():
        raise PackError(f"{manifest} not found; a package source folder needs manifest.json")
    icon_path = Path(icon) if icon is not None else _find_by_stem(base, "icon", "--icon")
    if not icon_path.is_file():
        raise PackError(f"icon {icon_path} not found")
    ext = icon_path.suffix.lstrip(".").lower()
    if ext not in _IMAGE_MIME:
        raise PackError(f"icon {icon_path.name} is not an image type ({', '.join(_IMAGE_MIME)})")
    license_path = Path(license) if license is not None else _find_by_stem(base, "license", "--license")
    if not license_path.is_file():
        raise PackError(f"license {license_path} not found")
    instructions = base / "instructions.md"
    if not instructions.is_file():
        raise PackError(f"instructions.md not found in {base}; it is required")
    python = base / "python"
    if not python.is_dir() or not any(python.rglob("*.py")):
        raise PackError(f"{python} must be a directory holding the service's Python code")
    assets_path: Path | None = None
    if not no_assets:
        assets_path = Path(assets) if assets is not None else base / "assets"
        if not assets_path.is_dir():
            if assets is not None:
                raise PackError(f"assets directory {assets_path} not found")
            assets_path = None
    images = base / "images"
    return PackSources(
        base,
        manifest,
        icon_path,
        license_path,
        instructions,
        python,
        assets_path,
        images if images.is_dir() else None,
    )


def _check_images(images: dict[str, TreeNode], manifest: Manifest) -> None:
    for arch, files in images.items():
        if not isinstance(files, dict):
            raise PackError(f"images/{arch} must be a directory (images/<arch>/<imageId>.*)")
        for name, value in files.items():
            if isinstance(value, dict):
                raise PackError(f"images/{arch}/{name} must be a file")
            image_id = name.split(".", 1)[0]
            config = manifest.images.get(image_id)
            if config is None:
                raise PackError(f"images/{arch}/{name}: image {image_id!r} is not in the manifest")
            if arch not in config.arch:
                raise PackError(f"images/{arch}/{name}: image {image_id!r} does not list {arch}")


def build_tree(sources: PackSources) -> tuple[dict[str, TreeNode], Manifest]:
    """The archive tree for ``sources`` and the validated manifest.

    manifest.json is written re-serialized from the validated record, as StartOS does, so a
    packed manifest is always in canonical form.
    """
    try:
        raw = sources.manifest.read_bytes()
    except OSError as exc:
        raise PackError(f"cannot read {sources.manifest}: {exc.strerror}") from exc
    manifest = validate_manifest(raw)
    ext = sources.icon.suffix.lstrip(".").lower()
    tree: dict[str, TreeNode] = {
        "manifest.json": manifest.to_json(),
        f"icon.{ext}": sources.icon,
        "LICENSE.md": sources.license,
        "instructions.md": sources.instructions,
        "python": tree_from_folder(sources.python, skip=_skip_build_junk),
    }
    if sources.assets is not None:
        tree["assets"] = tree_from_folder(sources.assets, skip=_skip_build_junk)
    if sources.images is not None:
        images = tree_from_folder(sources.images)
        _check_images(images, manifest)
        tree["images"] = images
    return tree, manifest


def pack_package(sources: PackSources, key: SigningKey, output: str | os.PathLike[str] | None = None) -> Path:
    """Pack ``sources`` into a signed s9pk; default output ``<folder>/<id>.s9pk``."""
    tree, manifest = build_tree(sources)
    out = Path(output) if output is not None else sources.folder / f"{manifest.id}.s9pk"
    write_archive(tree, out, key)
    return out


class Package:
    """A package file opened for reading: signature checked, manifest parsed and validated.

    ``manifest`` is the typed record; ``manifest_json`` the document as stored.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        commitment: Commitment | None = None,
        trusted_keys: Iterable[bytes] | None = None,
    ) -> None:
        self.archive = ArchiveReader(path, commitment=commitment, trusted_keys=trusted_keys)
        try:
            entry = self.archive.root.get("manifest.json")
            if entry is None or entry.kind is not EntryKind.FILE:
                raise ManifestError("the package has no manifest.json")
            raw = self.archive.read_bytes("manifest.json", max_size=_MANIFEST_CAP)
            self.manifest = validate_manifest(raw)  # depth-limited decode: see parse_manifest
            self.manifest_json: dict[str, Any] = decode_json(raw, what="the manifest")
        except BaseException:
            self.archive.close()
            raise

    def close(self) -> None:
        """Close the underlying archive."""
        self.archive.close()

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def icon(self) -> tuple[str, str, bytes]:
        """``(name, mime type, bytes)`` of the largest ``icon.*`` image, as StartOS picks it."""
        best: tuple[int, str] | None = None
        for entry in self.archive.root:
            stem, _, ext = entry.name.partition(".")
            is_icon = stem == "icon" and ext.lower() in _IMAGE_MIME
            if is_icon and entry.kind is EntryKind.FILE and (best is None or entry.size > best[0]):
                best = (entry.size, entry.name)
        if best is None:
            raise S9pkError("no icon found in the package")
        name = best[1]
        mime = _IMAGE_MIME[name.partition(".")[2].lower()]
        return name, mime, self.archive.read_bytes(name)

    def _text(self, name: str) -> str | None:
        if self.archive.root.get(name) is None:
            return None
        try:
            return self.archive.read_bytes(name, max_size=_TEXT_CAP).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise S9pkError(f"{name} is not UTF-8 text") from exc

    def license(self) -> str:
        """The text of LICENSE.md."""
        text = self._text("LICENSE.md")
        if text is None:
            raise S9pkError("the package has no LICENSE.md")
        return text

    def instructions(self) -> str | None:
        """The text of instructions.md (None in packages that predate it)."""
        return self._text("instructions.md")

    def verify(self) -> VerifyReport:
        """Full archive verification (every hash, every byte accounted for)."""
        return self.archive.verify()


def _pointer_tokens(path: str) -> list[str]:
    if path.startswith("/"):
        return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]
    if path.startswith("."):
        tokens = re.findall(r'\.([A-Za-z_][A-Za-z0-9_-]*)|\["((?:[^"\\]|\\.)*)"\]', path)
        rebuilt = "".join(f".{a}" if a else f'["{b}"]' for a, b in tokens)
        if rebuilt != path or not tokens:
            raise ManifestError(f"cannot parse path {path!r}; use .a.b or a JSON pointer /a/b")
        return [a or json.loads(f'"{b}"') for a, b in tokens]
    raise ManifestError(f"a path starts with '.' or '/', got {path!r}")


def apply_manifest_expression(doc: dict[str, Any], expression: str) -> dict[str, Any]:
    """Apply an edit to a manifest document and return the new document.

    Two forms: an RFC 6902 JSON Patch (a JSON array of operations), or an assignment
    ``PATH = JSON`` where PATH is a jq-style path (``.description.short``) or a JSON pointer
    (``/description/short``). Parent objects are created as needed; the value must be JSON
    (quote strings: ``.title = "Hello"``).
    """
    text = expression.strip()
    if text.startswith("["):
        import jsonpatch  # only this form needs it

        try:
            patched = jsonpatch.apply_patch(doc, decode_json(text, what="the patch"))
        except ValueError as exc:  # JSON errors (msgspec.DecodeError too) and every jsonpatch error subclass it
            raise ManifestError(f"cannot apply the patch: {exc}") from exc
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ManifestError(f"cannot apply the patch: {exc}") from exc
        if not isinstance(patched, dict):
            raise ManifestError("the patch must leave the manifest an object")
        return patched
    path, sep, value_text = text.partition("=")
    if not sep:
        raise ManifestError('an edit is a JSON Patch array or PATH = JSON (e.g. .title = "X")')
    try:
        value = decode_json(value_text.strip(), what="the value")
    except msgspec.DecodeError as exc:
        raise ManifestError(f"the value after '=' must be JSON (quote strings): {exc}") from exc
    tokens = _pointer_tokens(path.strip())
    new = json.loads(json.dumps(doc))  # deep copy: the caller's document stays as it was
    target: Any = new
    for token in tokens[:-1]:
        if isinstance(target, list):
            target = target[_index(token, target)]
            continue
        if not isinstance(target, dict):
            raise ManifestError(f"cannot descend into {token!r}: parent is not an object")
        target = target.setdefault(token, {})
    last = tokens[-1]
    if isinstance(target, list):
        target[_index(last, target)] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise ManifestError(f"cannot set {last!r}: parent is not an object or array")
    return new


def _index(token: str, items: list[Any]) -> int:
    if not token.isdigit() or int(token) >= len(items):
        raise ManifestError(f"array index {token!r} is out of range")
    return int(token)


def edit_manifest(path: str | os.PathLike[str], expression: str, key: SigningKey) -> dict[str, Any]:
    """Apply ``expression`` to a package's manifest, validate it, re-sign and replace the file.

    Returns the new manifest document. Every other entry is copied from the old archive and
    re-checked against its hash on the way, so an edit never launders a corrupt file into a
    freshly signed one.
    """
    with Package(path) as package:
        manifest = validate_manifest(apply_manifest_expression(package.manifest_json, expression))
        tree = package.archive.tree()
        tree["manifest.json"] = manifest.to_json()
        write_archive(tree, path, key)
    return manifest.to_dict()


def _requirements(doc: dict[str, Any]) -> tuple[list[str] | None, int | None, list[Any]]:
    hw = doc.get("hardwareRequirements") or {}
    arch = hw.get("arch")
    ram = hw.get("ram")
    return (
        list(arch) if isinstance(arch, list) else None,
        ram if isinstance(ram, int) else None,
        list(hw.get("device") or []),
    )


def select_best(paths: Sequence[str | os.PathLike[str]], *, arch: str | None = None, ram: int | None = None) -> Path:
    """The most specific package among ``paths`` that fits this machine (StartOS's ``select``).

    Fitting: the manifest's hardwareRequirements.arch (if any) names this arch and its ram (if
    any) is at most this machine's. Unreadable or invalid files are skipped. Among fits, more
    device requirements, then fewer arches, then more RAM wins; ties keep the given order.
    """
    arch = arch or machine_arch()
    if ram is None:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    fits: list[tuple[tuple[int, float, int], int, Path]] = []
    for index, raw_path in enumerate(paths):
        path = Path(raw_path)
        try:
            # Only hardwareRequirements matter here, so StartOS's own packages qualify too.
            with ArchiveReader(path) as reader:
                doc = decode_json(reader.read_bytes("manifest.json", max_size=_MANIFEST_CAP), what="the manifest")
            if not isinstance(doc, dict):
                continue
            arches, need_ram, devices = _requirements(doc)
        except (S9pkError, OSError, ValueError):
            continue
        if arches is not None and arch not in arches:
            continue
        if need_ram is not None and need_ram > ram:
            continue
        specificity = (-len(devices), len(arches) if arches is not None else float("inf"), -(need_ram or 0))
        fits.append((specificity, index, path))
    if not fits:
        raise S9pkError(f"no compatible s9pk for this machine (arch {arch}) among {len(paths)}")
    return min(fits)[2]

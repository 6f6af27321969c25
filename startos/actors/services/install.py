"""Installing a package file: inspect, verify, check the signer, unpack (plain synchronous steps).

Each step is a blocking function meant for gevent's thread pool; the ServicesActor runs them in
order and publishes their progress. Nothing here touches the state tree.

On disk, one directory per package (``<data>/packages/<id>``)::

    versions/<version>/   the unpacked archive (python/, assets/, manifest.json, ...), read-only to the service
    package.s9pk          the installed archive, kept for rebuilds and backups
    volumes/<volume>/     the service's data
    logs.sqlite3          its journal
    run/ tmp/             runtime socket, private /tmp

An install unpacks into ``versions/<version>.partial`` and renames it into place only when it is
complete, so a crash or a full disk never leaves a half-unpacked version that looks whole.
"""

from __future__ import annotations

import base64
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from startos.errors import StartOSError
from startos.paths import NotRegularFileError, open_regular_file, safe_child, shown
from startos.protocol.errors import ErrorKind
from startos.s9pk import ExtendedVersion, Manifest, Package
from startos.s9pk.signing import fingerprint


class InstallError(StartOSError):
    """Raised when a package cannot be installed; the message says which step and why."""

    kind = ErrorKind.INSTALL_FAILED


class SignerChanged(InstallError):
    """Raised when an update is signed by another key than the installed version."""

    kind = ErrorKind.INVALID_SIGNATURE


class NotAPackageFile(InstallError):
    """Raised when ``package.install`` names a server path that cannot be opened as an s9pk.

    One message for every cause (missing, unreadable, a directory, a FIFO, a device, not an
    s9pk), so the answer tells a client nothing about which files exist on the server.
    """


def not_a_package_file(path: str) -> NotAPackageFile:
    """The one answer to a server path that is not a readable package file."""
    return NotAPackageFile(
        f"{shown(path)} is not a readable .s9pk file on the server: give the path of a package file"
        " that startd can read, or upload the file instead (package.sideload)"
    )


@dataclass(frozen=True)
class Inspected:
    """What the header and manifest of a package file say (signature already checked)."""

    manifest: Manifest
    manifest_json: dict[str, Any]
    signer: bytes
    icon_data_url: str | None
    size: int

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def version(self) -> str:
        return str(self.manifest.version)

    @property
    def signer_b64(self) -> str:
        return base64.b64encode(self.signer).decode()

    @property
    def signer_fingerprint(self) -> str:
        return fingerprint(self.signer)


def inspect(path: Path) -> Inspected:
    """Open the package: signature, root directory and manifest (not yet every hash)."""
    with Package(path) as package:
        try:
            _name, mime, data = package.icon()
            icon = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        except StartOSError:
            icon = None
        return Inspected(
            manifest=package.manifest,
            manifest_json=package.manifest_json,
            signer=package.archive.signer,
            icon_data_url=icon,
            size=package.archive.file_size,
        )


def verify(path: Path) -> None:
    """Every hash and every byte of the archive (raises the archive's typed errors)."""
    with Package(path) as package:
        package.verify()


def check_signer(installed_signer: str | None, new: Inspected, *, accept_new_key: bool) -> None:
    """Key continuity: an update must be signed by the key that signed the installed version."""
    if installed_signer is None or installed_signer == new.signer_b64 or accept_new_key:
        return
    raise SignerChanged(
        f"the update of {new.id} is signed by a different key ({new.signer_fingerprint}) than the installed "
        f"version; if you trust the new key, install again accepting it (start-cli: --accept-new-key)"
    )


def compare_versions(installed: str | None, new: str) -> str:
    """``install``, ``update``, ``downgrade`` or ``reinstall``."""
    if installed is None:
        return "install"
    old_v, new_v = ExtendedVersion.parse(installed), ExtendedVersion.parse(new)
    order = old_v.partial_cmp(new_v)
    if order is None:
        return "update"  # another flavor: treated as a switch, migrations decide
    return "update" if order < 0 else "downgrade" if order > 0 else "reinstall"


def version_dir(package_dir: Path, version: str) -> Path:
    """Where a version is unpacked. exver's ``:`` and ``#`` are left out of the name: a ``:`` in a
    path breaks every colon-separated list it lands in (``PYTHONPATH``, ``PATH``).

    The version comes from a manifest or the state tree, so the name goes through the path gate.
    """
    return safe_child(package_dir / "versions", version.replace("#", "").replace(":", "_"), kind="version")


def unpack(path: Path, package_dir: Path, version: str) -> Path:
    """Unpack into ``versions/<version>`` atomically; return that directory."""
    versions = package_dir / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    final = version_dir(package_dir, version)
    partial = final.with_name(f"{final.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with Package(path) as package:
            package.archive.unpack(partial)
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise InstallError(f"could not unpack {path.name}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def keep_archive(path: Path, package_dir: Path, *, move: bool) -> Path:
    """Keep the installed archive beside the service (for rebuilds and backups)."""
    target = package_dir / "package.s9pk"
    tmp = package_dir / ".package.s9pk.partial"
    try:
        if move:
            shutil.move(str(path), tmp)
        else:
            # The path is the client's: open it as the archive reader does (no FIFO, no device,
            # checked on the descriptor), since it may have been swapped since it was verified.
            with os.fdopen(open_regular_file(path), "rb") as source, open(tmp, "wb") as copy:
                shutil.copyfileobj(source, copy, 1024 * 1024)
        tmp.replace(target)
    except (OSError, NotRegularFileError) as exc:
        tmp.unlink(missing_ok=True)
        raise InstallError(f"could not store {path.name}: {getattr(exc, 'strerror', None) or exc}") from exc
    return target


def create_volumes(package_dir: Path, volume_ids: list[str]) -> None:
    """One directory per volume id of the manifest (each checked by the path gate)."""
    volumes = package_dir / "volumes"
    volumes.mkdir(parents=True, exist_ok=True)
    for volume in volume_ids:
        safe_child(volumes, volume, kind="volume id").mkdir(exist_ok=True)


def snapshot_volumes(package_dir: Path) -> Path | None:
    """Copy the volumes aside before an update's migrations (reflinks where the filesystem can)."""
    volumes = package_dir / "volumes"
    if not volumes.exists():
        return None
    backup = package_dir / "volumes.before-update"
    shutil.rmtree(backup, ignore_errors=True)
    shutil.copytree(volumes, backup, symlinks=True)
    return backup


def restore_volumes(package_dir: Path, backup: Path | None) -> None:
    """Put the pre-update copy back (the update failed)."""
    if backup is None:
        return
    volumes = package_dir / "volumes"
    shutil.rmtree(volumes, ignore_errors=True)
    backup.rename(volumes)


def drop_snapshot(backup: Path | None) -> None:
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def remove_package_dir(package_dir: Path) -> None:
    """Delete a package's directory; ``package_dir`` must come from ``safe_child`` (the manager's
    ``_package_dir``). rmtree itself refuses a symbolic link and never follows one inside."""
    shutil.rmtree(package_dir, ignore_errors=True)


def remove_other_versions(package_dir: Path, keep: str) -> None:
    versions = package_dir / "versions"
    if versions.exists():
        for child in versions.iterdir():
            if child.name != version_dir(package_dir, keep).name:
                shutil.rmtree(child, ignore_errors=True)

"""What the services manager's jobs report to it, and what it tells a package's ServiceActor.

A job of the ServicesActor (inspecting a file, installing, removing, recovering at boot) runs on
a greenlet the actor owns and never touches the actor's state: it reports back with one of the
past-tense messages below, and only the actor's handlers change what the actor knows (which job
holds which package id). Every message names its job by the token the actor gave it, so a
report from a job the actor has already forgotten (cancelled, replaced) is recognised and
dropped.

These messages never leave the process: some carry Python objects (the inspected package, the
exception to hand to the asker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from startos.protocol.base import Message

if TYPE_CHECKING:  # the services layer's plain record; only named here
    from startos.actors.services.install import Inspected

__all__ = [
    "DependencyWatchEnded",
    "InstallFailed",
    "InstallFinished",
    "InstallPhaseDone",
    "InstallRefused",
    "LifecycleChanged",
    "LifecycleState",
    "PackageDataChanged",
    "PackageInspected",
    "PackageRecovered",
    "RebuildFinished",
    "UninstallFinished",
]

LifecycleState = Literal["installing", "updating", "restoring", "removing", "installed"]
"""``packageData[id].stateInfo.state``: what the services manager is doing with a package."""

# -- job -> ServicesActor ---------------------------------------------------------------------


class PackageInspected(Message, frozen=True):
    """An install's inspect step read the file's header and manifest: the package id is known.

    The handler checks that no other job holds that id and registers the install for it, with no
    yield in between, so two installs of one id can never both pass.
    """

    job: int
    inspected: Inspected


class InstallRefused(Message, frozen=True):
    """An install ended before anything showed in the state tree (unreadable file, unsafe id,
    signer changed, a dependency cycle, cancelled early); ``error`` goes to the asker."""

    job: int
    error: BaseException


class InstallPhaseDone(Message, frozen=True):
    """An install finished one of its phases (``verify``, ``unpack``, ``init``)."""

    job: int
    package_id: str
    phase: str


class InstallFinished(Message, frozen=True):
    """Every phase of an install or update succeeded; the handler publishes it as installed.

    ``kind`` is ``install``, ``update``, ``downgrade`` or ``reinstall``.
    """

    job: int
    inspected: Inspected
    kind: str


class InstallFailed(Message, frozen=True):
    """An install or update failed (or was cancelled) after it showed, and was rolled back.

    ``previous_version`` is the version that was kept (``None``: nothing was installed before,
    and nothing is now).
    """

    job: int
    package_id: str
    reason: str
    previous_version: str | None


class UninstallFinished(Message, frozen=True):
    """A removal's job ended: all but the last step is done (``error`` is ``None``; the handler
    removes the entry), or it failed half-way (``error`` goes to the asker)."""

    job: int
    package_id: str
    error: BaseException | None = None


class RebuildFinished(Message, frozen=True):
    """A rebuild's job ended: the service's sandbox was built again, or ``error`` says why not."""

    job: int
    package_id: str
    error: BaseException | None = None


class PackageRecovered(Message, frozen=True):
    """The boot job is done with one package: brought back, or cleaned up after a half-done job."""

    job: int
    package_id: str


# -- ServicesActor -> a package's ServiceActor ----------------------------------------------------


class LifecycleChanged(Message, frozen=True):
    """Told to a package's ServiceActor when the services manager changed its ``stateInfo.state``.

    ``statusInfo.summary`` reads the lifecycle state first ("updating", "removing"...): the
    ServiceActor, which owns ``statusInfo``, writes the summary again.
    """

    state: LifecycleState


# -- the dependency watcher's own messages ---------------------------------------------------------


class PackageDataChanged(Message, frozen=True):
    """Told by the DependencyWatcherActor's reader to its actor: one committed revision of
    ``/public/packageData`` (its RFC 6902 operations, paths relative to that pointer)."""

    patch: list[dict[str, Any]]


class DependencyWatchEnded(Message, frozen=True):
    """Told by the reader when the store ended the subscription (``overflow``, ``closed``,
    ``store-stopped``)."""

    reason: str

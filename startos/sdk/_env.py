"""Where things are: the ``STARTOS_*`` environment every process of a service gets.

Package code never hard-codes a path: with the ``namespace`` sandbox the code lives at
``/startos/code``, with the ``process`` sandbox somewhere under the server's data directory, and in
a unit test in the package's source folder. These helpers read the environment the sandbox sets
(``startos.sandbox.base``), so the same code runs in all three places.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from startos.sdk.errors import OutsideSandboxError, SdkError

__all__ = [
    "EFFECTS_SOCKET",
    "ENTRY_MODULE",
    "ENV_CODE",
    "ENV_DAEMON",
    "ENV_PACKAGE_ID",
    "ENV_RUN",
    "ENV_TMP",
    "ENV_VOLUMES",
    "code_path",
    "current_env",
    "package_id",
    "python_module",
    "run_path",
    "tmp_path",
    "volume_path",
]

ENV_CODE = "STARTOS_CODE"  # the unpacked package: python/, assets/ (read-only)
ENV_VOLUMES = "STARTOS_VOLUMES"  # one sub-directory per volume (read-write)
ENV_RUN = "STARTOS_RUN"  # the runtime's socket directory
ENV_TMP = "STARTOS_TMP"  # private temporary directory
ENV_PACKAGE_ID = "STARTOS_PACKAGE_ID"
ENV_DAEMON = "STARTOS_DAEMON"  # set in each daemon's environment: its id (for progress reports)

#: The socket in ``$STARTOS_RUN`` where the runtime takes daemons' progress reports.
EFFECTS_SOCKET = "effects.sock"
#: The module (in the package's ``python/`` folder) that defines ``service = Service(...)``.
ENTRY_MODULE = "startos_service"

_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_VOLUME_ID = re.compile(r"^(BACKUP|[a-z0-9]+(-[a-z0-9]+)*)$")

# startos.sdk.testing swaps this in so path helpers work in a unit test without touching
# os.environ (which the test's own subprocesses would inherit).
_override: list[Mapping[str, str]] = []


def current_env() -> Mapping[str, str]:
    """The environment the helpers read: the test override if one is active, else ``os.environ``."""
    return _override[-1] if _override else os.environ


@contextmanager
def override_env(env: Mapping[str, str]) -> Iterator[None]:
    """Make the helpers read ``env`` (used by :mod:`startos.sdk.testing`)."""
    _override.append(env)
    try:
        yield
    finally:
        _override.remove(env)


def _dir(name: str) -> Path:
    value = current_env().get(name)
    if not value:
        raise OutsideSandboxError(
            f"{name} is not set: this code runs outside a StartOS sandbox "
            "(in unit tests use startos.sdk.testing.ServiceTester)"
        )
    return Path(value)


def _join(base: Path, parts: tuple[str, ...]) -> Path:
    # Keep helpers from walking out of their directory ("..", an absolute part): a typo should
    # fail loudly rather than write somewhere else.
    if parts and (".." in Path(*parts).parts or any(os.path.isabs(part) for part in parts)):
        raise SdkError(f"path parts must stay inside {base}: {'/'.join(parts)}")
    return base.joinpath(*parts)


def code_path(*parts: str) -> Path:
    """A path inside the package's code folder (``code_path("assets", "index.html")``); read-only."""
    return _join(_dir(ENV_CODE), parts)


def volume_path(volume: str, *parts: str) -> Path:
    """A path inside volume ``volume`` (``volume_path("main", "config.json")``); read-write."""
    if not isinstance(volume, str) or not _VOLUME_ID.match(volume):
        raise SdkError(f"{volume!r} is not a volume id (lowercase letters, digits and single hyphens)")
    return _join(_dir(ENV_VOLUMES) / volume, parts)


def tmp_path(*parts: str) -> Path:
    """A path inside the service's private temporary directory."""
    return _join(_dir(ENV_TMP), parts)


def run_path(*parts: str) -> Path:
    """A path inside the runtime's socket directory (the SDK uses it; packages rarely need it)."""
    return _join(_dir(ENV_RUN), parts)


def package_id() -> str:
    """The id of the package this code belongs to."""
    value = current_env().get(ENV_PACKAGE_ID, "")
    if not _ID.match(value):
        raise OutsideSandboxError(f"{ENV_PACKAGE_ID} is not set to a package id: this code runs outside a sandbox")
    return value


def daemon_id() -> str | None:
    """The id of the daemon this process is (``$STARTOS_DAEMON``), or None outside a daemon."""
    value = current_env().get(ENV_DAEMON, "")
    return value if _ID.match(value) else None


def python_module(module: str, *args: str) -> list[str]:
    """argv running ``module`` of the package's code with the server's Python: ``python -P -u -m module``.

    Every daemon, oneshot and command check gets the package's ``python/`` folder on
    ``PYTHONPATH``, so the package's own modules (and ``startos.sdk``) import there as they do in
    the runtime. ``-u`` keeps output unbuffered so log lines show up as they are written; ``-P``
    keeps the working directory off ``sys.path`` (in a sandbox it is often ``/``, whose
    ``/startos`` mount point must not shadow the ``startos`` package).
    """
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", module):
        raise SdkError(f"{module!r} is not a Python module name")
    return [sys.executable, "-P", "-u", "-m", module, *args]

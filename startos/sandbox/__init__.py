"""Sandboxes: where a service's processes run (DESIGN.md "Sandboxes").

``choose_sandbox(spec)`` gives the best backend this host allows: ``namespace`` (Linux, root:
namespaces, read-only system, private volumes, veth pair, cgroup limits) or ``process`` (no
isolation; the embedded default for development). Both implement ``Sandbox`` from ``base``.
"""

from __future__ import annotations

from typing import Any

from ._common import close_now
from .base import Limits, Sandbox, SandboxError, SandboxProcess, SandboxSpec
from .namespace import NamespaceSandbox, support
from .process import ProcessSandbox

__all__ = [
    "KINDS",
    "Limits",
    "NamespaceSandbox",
    "ProcessSandbox",
    "Sandbox",
    "SandboxError",
    "SandboxProcess",
    "SandboxSpec",
    "choose_sandbox",
    "close_now",
    "namespace_support",
]

KINDS = ("auto", "process", "namespace")


def namespace_support() -> tuple[bool, str]:
    """(usable, reason) for the namespace backend on this host, probed once per process."""
    return support()


def choose_sandbox(spec: SandboxSpec, preference: str = "auto", **options: Any) -> Sandbox:
    """A sandbox for ``spec``: ``auto`` takes ``namespace`` when the host allows it, else ``process``.

    ``process`` or ``namespace`` force a backend; ``namespace`` where impossible raises
    ``SandboxError`` with the reason. ``options`` go to the backend's constructor (``stop_grace``
    for both; ``state_dir``, ``subnet``, ``cgroup_parent``, ``extra_ro_paths``, ``hidden_paths``
    for ``namespace``, ignored by ``process``).
    """
    if preference not in KINDS:
        raise SandboxError(f"unknown sandbox kind {preference!r}: choose one of {', '.join(KINDS)}")
    if preference in ("auto", "namespace"):
        usable, reason = support()
        if usable:
            return NamespaceSandbox(spec, **options)
        if preference == "namespace":
            raise SandboxError(f"the namespace sandbox is not available for {spec.package_id}: {reason}")
    process_options = {key: value for key, value in options.items() if key == "stop_grace"}
    return ProcessSandbox(spec, **process_options)

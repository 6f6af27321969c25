"""The Python SDK: what a package's service code is written against.

A package source folder keeps its code in ``python/``; the module ``python/startos_service.py``
defines ``service = Service(...)`` (the entry convention; see :mod:`startos.sdk._loader`)::

    from startos.sdk import Daemon, HttpCheck, InitContext, MainContext, Service, python_module

    service = Service(volumes=["main"])

    @service.init("install")
    def write_greeting(ctx: InitContext) -> None:
        ctx.volume_path("main", "greeting.txt").write_text("Hello!")

    @service.main
    def main(ctx: MainContext) -> list[Daemon]:
        return [Daemon("web", argv=python_module("hello_world.server"), ready=HttpCheck(8080, "/health"))]

What the server does with it:

* **install** runs the ``install`` init hook; **restore** the ``restore`` one; **uninstall** the
  ``uninstall`` uninit hook. Hooks run inside the sandbox, in the service's runtime process.
* **start** calls the main function: it returns :class:`Daemon` and :class:`Oneshot` items. Each
  item starts after everything in its ``requires`` (daemons: ready; oneshots: exited with 0).
  A daemon is ready when its ``ready`` check (:class:`HttpCheck`, :class:`TcpCheck`,
  :class:`CommandCheck`, :class:`FunctionCheck`) succeeds; without one, once it has started.
* **update** A -> B runs A's ``update`` uninit hook, the migration steps from A to B (see
  :meth:`Service.migrate_up` / :meth:`Service.migrate_down`; the newer code runs them), then B's
  ``update`` init hook.
* **backup** saves the volumes of :class:`Backup` without its exclusions.

Daemons run with the server's Python (:func:`python_module`) and get the package's ``python/``
folder on ``PYTHONPATH``; a daemon reports long-running progress with :func:`report_progress`.
Paths come from :func:`volume_path`, :func:`code_path`, :func:`tmp_path` (or the same methods of
a hook's context), never from hard-coded strings. Unit tests use :mod:`startos.sdk.testing`.
"""

from startos.protocol.runtime import CheckResult
from startos.sdk._actions import ActionResult, Disabled, Interface, Value
from startos.sdk._context import (
    ActionContext,
    CheckContext,
    Context,
    InitContext,
    MainContext,
    MigrationContext,
    UninitContext,
)
from startos.sdk._env import (
    ENTRY_MODULE,
    code_path,
    daemon_id,
    package_id,
    python_module,
    run_path,
    tmp_path,
    volume_path,
)
from startos.sdk._items import (
    Backup,
    Check,
    CommandCheck,
    Daemon,
    FunctionCheck,
    HealthCheck,
    HttpCheck,
    Oneshot,
    TcpCheck,
)
from startos.sdk._progress import report_progress
from startos.sdk._service import Service
from startos.sdk.errors import DescriptionError, MigrationPathError, OutsideSandboxError, SdkError

__all__ = [
    "ENTRY_MODULE",
    "ActionContext",
    "ActionResult",
    "Backup",
    "Check",
    "CheckContext",
    "CheckResult",
    "CommandCheck",
    "Context",
    "Daemon",
    "DescriptionError",
    "Disabled",
    "FunctionCheck",
    "HealthCheck",
    "HttpCheck",
    "InitContext",
    "Interface",
    "MainContext",
    "MigrationContext",
    "MigrationPathError",
    "Oneshot",
    "OutsideSandboxError",
    "SdkError",
    "Service",
    "TcpCheck",
    "UninitContext",
    "Value",
    "code_path",
    "daemon_id",
    "package_id",
    "python_module",
    "report_progress",
    "run_path",
    "tmp_path",
    "volume_path",
]

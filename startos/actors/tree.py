"""Wire the supervision tree in order (DESIGN.md "Supervision tree"); stop it in reverse."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import msgspec
from gevent.greenlet import Greenlet
from pykka import ActorRef, ActorRegistry

from startos.actors.auth import AuthActor
from startos.actors.certificates import CertificateActor
from startos.actors.diagnostic import DiagnosticFacadeActor, LogRing, diagnostic_error, one_line
from startos.actors.facade import FacadeActor
from startos.actors.mdns import MdnsActor
from startos.actors.notifications import NotificationActor
from startos.actors.proxy import ProxyActor
from startos.actors.services.manager import ServicesActor
from startos.actors.services.watcher import watcher_spec
from startos.actors.store import StoreActor, StoreError
from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind
from startos.protocol.supervision import ChildSpec
from startos.supervision import (
    Directory,
    GeventActor,
    Supervisor,
    describe_greenlet,
    kill,
    running_greenlets,
    wait_exited,
    wait_started,
)

__all__ = ["StateLoadError", "Tree", "TreeConfig", "start_diagnostic_tree", "start_tree"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TreeConfig:
    """What one running server needs to know; ``startd`` builds it from its flags."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int | None = 5959  # None: no web server (in-process tests)
    max_body: int = 4 * 1024 * 1024
    store_options: dict[str, Any] = field(default_factory=dict)
    # Start only these children (by id), e.g. {"store"} for a bare state tree; None: all of them.
    only: frozenset[str] | None = None
    # Advertise <hostname>.local over multicast DNS (off where another responder owns the name).
    mdns: bool = True
    # Where services run: "auto" (namespaces when root allows, else plain processes), "process", "namespace".
    sandbox: str = "auto"
    # Restart pacing of service daemons (None: the default, see actors.policies.DAEMON_BACKOFF).
    daemon_backoff: Any = None
    tls_host: str | None = None  # None: the same host as HTTP
    tls_port: int | None = None  # None: no HTTPS server
    # Host names served besides IP literals, localhost and <hostname>.local (startd --allow-host).
    allowed_hosts: tuple[str, ...] = ()

    @property
    def db_path(self) -> Path:
        return self.data_dir / "db" / "state.sqlite3"

    @property
    def local_cookie_path(self) -> Path:
        """The root-only secret the local start-cli presents (written at every start)."""
        return self.data_dir / "rpc.authcookie"


@dataclass
class Tree:
    """A running tree: its root supervisor and the directory of its named actors."""

    config: TreeConfig
    root: ActorRef[Any]
    directory: Directory
    # Actors that ran before this tree booted (another tree's, a test's): not this tree's leftovers.
    foreign: frozenset[str] = frozenset()

    def ask(self, name: str, message: object, timeout: float | None = 10.0) -> Any:
        """Ask the actor called ``name`` and wait for the reply."""
        return self.directory.ask(name, message, timeout=timeout)

    def tell(self, name: str, message: object) -> None:
        self.directory.tell(name, message)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop every actor in reverse start order; kill what is left after ``timeout``.

        Returns ``True`` when everything stopped gracefully in time. Then nothing of the tree may
        run any more: an actor still alive or a greenlet an actor spawned still running is a bug,
        logged at ERROR (see :meth:`leftovers`).
        """
        if not self.root.is_alive():
            return True
        try:
            self.root.stop(block=False)
        except Exception:  # noqa: BLE001 (already dead between the check and the stop)
            return True
        if wait_exited(self.root, timeout=timeout) is None:
            logger.error("the tree did not stop within %s s; killing what is left", timeout)
            kill(self.root, block=True, timeout=2.0)
            self._settle(grace=2.0)  # the root's exit kills its children without waiting for them
            self._report_leftovers()
            return False
        self._report_leftovers()
        return True

    def leftovers(self) -> tuple[list[ActorRef[Any]], list[tuple[GeventActor, Greenlet]]]:
        """What of this tree still runs: live actors, and live greenlets that actors spawned.

        Every actor that did not run before the tree booted counts (pykka's registry), and every
        greenlet started by ``GeventActor.spawn`` of such an actor, whether the actor lives or not.
        """
        actors = [ref for ref in ActorRegistry.get_all() if ref.actor_urn not in self.foreign]
        greenlets = [(actor, g) for actor, g in running_greenlets() if actor.actor_urn not in self.foreign]
        return actors, greenlets

    def _settle(self, grace: float) -> None:
        """Give actors and greenlets killed without waiting up to ``grace`` seconds to end."""
        deadline = time.monotonic() + grace
        actors, greenlets = self.leftovers()
        for ref in actors:
            wait_exited(ref, timeout=max(0.0, deadline - time.monotonic()))
        gevent.joinall([g for _actor, g in greenlets], timeout=max(0.0, deadline - time.monotonic()))

    def _report_leftovers(self) -> None:
        actors, greenlets = self.leftovers()
        for ref in actors:
            logger.error("bug: actor %s still runs after the tree stopped", ref)
        for actor, greenlet in greenlets:
            logger.error(
                "bug: a greenlet of %s (%s) still runs after the tree stopped", actor, describe_greenlet(greenlet)
            )


def child_specs(config: TreeConfig, directory: Directory) -> list[ChildSpec]:
    """The root's children in start order: later ones may depend on earlier ones."""
    specs = [
        ChildSpec(id="store", start=lambda: StoreActor.start(config.db_path, **config.store_options), shutdown=10.0),
        ChildSpec(id="certs", start=lambda: CertificateActor.start(directory, config.data_dir)),
        ChildSpec(id="proxy", start=lambda: ProxyActor.start(directory, listen_host=config.host)),
        ChildSpec(id="auth", start=lambda: AuthActor.start(directory)),
        # Leaves nothing else depends on at start: here, a crash of one restarts only what follows.
        ChildSpec(id="notifications", start=lambda: NotificationActor.start(directory)),
        ChildSpec(id="mdns", start=lambda: MdnsActor.start(directory, port=config.port or 80)),
        ChildSpec(
            id="services-sup",
            type="supervisor",
            shutdown=None,
            start=lambda: Supervisor.start(
                "services-sup",
                [watcher_spec(directory)],  # then one ServiceSupervisor per installed service
                directory=directory,
                intensity=100,
                period=10.0,
                parallel_stop=True,
            ),
        ),
        ChildSpec(
            id="services",
            start=lambda: ServicesActor.start(
                directory,
                config.data_dir,
                sandbox_preference=config.sandbox,
                daemon_backoff=config.daemon_backoff,
                listen_host=config.host,
            ),
            shutdown=30.0,
        ),
        ChildSpec(id="facade", start=lambda: FacadeActor.start(directory)),
    ]
    if not config.mdns:
        specs = [spec for spec in specs if spec.id != "mdns"]
    if config.port is not None:
        from startos.webui.policy import LocalCookie

        local_cookie = LocalCookie(config.local_cookie_path)
        specs.append(
            _web_spec(
                config,
                directory,
                local_cookie=local_cookie,
                tls_port=config.tls_port,
                upload_dir=config.data_dir / "tmp" / "uploads",
                allowed_hosts=config.allowed_hosts,
            )
        )
    if config.tls_port is not None:
        from startos.webui.tls import TlsWebServerActor

        tls_host, tls_port = config.tls_host or config.host, config.tls_port
        tls_options: dict[str, Any] = {"max_body": config.max_body, "upload_dir": config.data_dir / "tmp" / "uploads"}
        tls_options["allowed_hosts"] = config.allowed_hosts
        if config.port is not None:
            tls_options["local_cookie"] = local_cookie  # the same app as over HTTP, same cookie file
        specs.append(
            ChildSpec(
                id="web-tls",
                start=lambda: TlsWebServerActor.start(directory, tls_host, tls_port, **tls_options),
            )
        )
    return specs


def _web_spec(config: TreeConfig, directory: Directory, **app_options: Any) -> ChildSpec:
    """The plain-HTTP web server on ``--bind`` (``config.port`` is set), serving one app."""
    from startos.webui.server import WebServerActor

    host, port, max_body = config.host, config.port, config.max_body
    assert port is not None
    return ChildSpec(
        id="web", start=lambda: WebServerActor.start(directory, host, port, max_body=max_body, **app_options)
    )


class StateLoadError(StartOSError):
    """Raised by ``start_tree`` when the state tree cannot be loaded from the data directory.

    A damaged database file, a revision that does not apply, a snapshot too deep to decode or a
    newer schema: ``startd`` then serves diagnostic mode instead of exiting. The message is one
    line; the original error is the ``__cause__``.
    """

    kind = ErrorKind.DATABASE


class _BootRecorder:
    """Keeps each child's first ref while the tree boots, to tell afterwards which one failed and why.

    The root's own failure only says "child X failed to start" as text; the child's exit reason
    still holds the exception (a ``StoreError`` or not), which decides diagnostic mode vs exit.
    """

    def __init__(self) -> None:
        self.refs: dict[str, ActorRef[Any]] | None = {}

    def wrap(self, spec: ChildSpec) -> ChildSpec:
        start = spec.start

        def recorded() -> ActorRef[Any]:
            ref: ActorRef[Any] = start()
            if self.refs is not None:
                self.refs.setdefault(spec.id, ref)
            return ref

        return msgspec.structs.replace(spec, start=recorded)

    def done(self) -> None:
        self.refs = None  # later restarts record nothing: no dead refs kept for the tree's life

    def state_failure(self) -> BaseException | None:
        """Why the state could not load: the store's start failure, or any child's ``StoreError``."""
        for child_id, ref in (self.refs or {}).items():
            # The root stopped every child before failing; the failed one may still be finishing.
            reason = wait_exited(ref, timeout=5.0)
            if reason is None or not reason.abnormal:
                continue
            if isinstance(reason.exception, StoreError):
                return reason.exception
            if child_id == "store":  # e.g. a decoder's RecursionError, or no access to the db folder
                return reason.exception or StoreError(f"the state database could not be opened: {reason}")
        return None


def start_tree(config: TreeConfig) -> Tree:
    """Boot the tree and wait until every child has started (raises if one could not).

    Raises ``StateLoadError`` when the failure is the state tree's (diagnostic mode can help);
    any other failure (a port in use, a missing permission) is raised as it is.
    """
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    foreign = _running_actors()
    directory = Directory()
    specs = child_specs(config, directory)
    if config.only is not None:
        specs = [spec for spec in specs if spec.id in config.only]
    boot = _BootRecorder()
    specs = [boot.wrap(spec) for spec in specs]
    root = Supervisor.start("root", specs, strategy="rest_for_one", intensity=5, period=10.0, directory=directory)
    try:
        wait_started(root, timeout=60)
    except Exception:
        cause = boot.state_failure()
        if cause is None:
            raise
        kind = cause.kind if isinstance(cause, StartOSError) else ErrorKind.DATABASE
        raise StateLoadError(one_line(cause), kind=kind) from cause
    finally:
        boot.done()
    directory.register("root", root)
    return Tree(config=config, root=root, directory=directory, foreign=foreign)


def _running_actors() -> frozenset[str]:
    """The actors that run right now (before a tree boots: none of them is the tree's)."""
    return frozenset(ref.actor_urn for ref in ActorRegistry.get_all())


DIAGNOSTIC_PAGE = "diagnostic.html"


def start_diagnostic_tree(
    config: TreeConfig,
    error: StateLoadError,
    *,
    logs: LogRing | None = None,
    on_restart: Callable[[], None] | None = None,
) -> Tree:
    """Boot the diagnostic tree: a facade that explains ``error``, and the web server on ``--bind``.

    No store and no services; no HTTPS either: like the setup wizard, the page is served over
    ``--bind`` to whoever can reach it (what it shows is public), while what needs trust (logs,
    restart) needs the local cookie file, written anew as at every start.
    """
    from startos.webui.policy import LocalCookie

    foreign = _running_actors()
    directory = Directory()
    report = diagnostic_error(error)
    specs = [
        ChildSpec(id="facade", start=lambda: DiagnosticFacadeActor.start(report, logs=logs, on_restart=on_restart))
    ]
    if config.port is not None:
        specs.append(
            _web_spec(
                config,
                directory,
                local_cookie=LocalCookie(config.local_cookie_path),
                allowed_hosts=(*config.allowed_hosts, *certificate_names(config.data_dir)),
                index_page=DIAGNOSTIC_PAGE,
            )
        )
    root = Supervisor.start("diagnostic", specs, strategy="one_for_one", intensity=5, period=10.0, directory=directory)
    wait_started(root, timeout=30)
    directory.register("root", root)
    return Tree(config=config, root=root, directory=directory, foreign=foreign)


def certificate_names(data_dir: Path) -> tuple[str, ...]:
    """The DNS names of the server certificate mirrored to ``<data dir>/tls/`` (none if there is none).

    Diagnostic mode cannot read the hostname from the state tree, yet users reach the server by
    ``<hostname>.local``: the certificate issued for it still names it, so the Host check (the
    DNS-rebinding guard) keeps answering to it.
    """
    from startos.net.certs import CertificateError, san_dns_names
    from startos.webui.hardening import normalize_host_name

    try:
        names = san_dns_names((data_dir / "tls" / "server.crt").read_bytes())
    except FileNotFoundError:
        return ()  # never set up: IP addresses and localhost still work
    except (OSError, CertificateError) as exc:
        logger.warning("could not read the names of the server certificate: %s", exc)
        return ()
    known = []
    for name in names:
        try:
            known.append(normalize_host_name(name))
        except ValueError:
            continue  # e.g. a wildcard: not a name the Host check compares
    return tuple(known)

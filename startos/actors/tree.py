"""Wire the supervision tree in order (DESIGN.md "Supervision tree"); stop it in reverse."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pykka import ActorRef

from startos.actors.auth import AuthActor
from startos.actors.certificates import CertificateActor
from startos.actors.facade import FacadeActor
from startos.actors.mdns import MdnsActor
from startos.actors.notifications import NotificationActor
from startos.actors.proxy import ProxyActor
from startos.actors.services.manager import ServicesActor
from startos.actors.store import StoreActor
from startos.protocol.supervision import ChildSpec
from startos.supervision import Directory, Supervisor, kill, wait_exited, wait_started

__all__ = ["Tree", "TreeConfig", "start_tree"]

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
    # Restart pacing of service daemons (None: the default, see services.service.DAEMON_BACKOFF).
    daemon_backoff: Any = None
    tls_host: str | None = None  # None: the same host as HTTP
    tls_port: int | None = None  # None: no HTTPS server

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

    def ask(self, name: str, message: object, timeout: float | None = 10.0) -> Any:
        """Ask the actor called ``name`` and wait for the reply."""
        return self.directory.ask(name, message, timeout=timeout)

    def tell(self, name: str, message: object) -> None:
        self.directory.tell(name, message)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop every actor in reverse start order; kill what is left after ``timeout``.

        Returns ``True`` when everything stopped gracefully in time.
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
            return False
        return True


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
                "services-sup", directory=directory, intensity=100, period=10.0, parallel_stop=True
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
        from startos.webui.server import WebServerActor

        local_cookie = LocalCookie(config.local_cookie_path)
        port = config.port
        specs.append(
            ChildSpec(
                id="web",
                start=lambda: WebServerActor.start(
                    directory,
                    config.host,
                    port,
                    max_body=config.max_body,
                    local_cookie=local_cookie,
                    tls_port=config.tls_port,
                    upload_dir=config.data_dir / "tmp" / "uploads",
                ),
            )
        )
    if config.tls_port is not None:
        from startos.webui.tls import TlsWebServerActor

        tls_host, tls_port = config.tls_host or config.host, config.tls_port
        tls_options: dict[str, Any] = {"max_body": config.max_body, "upload_dir": config.data_dir / "tmp" / "uploads"}
        if config.port is not None:
            tls_options["local_cookie"] = local_cookie  # the same app as over HTTP, same cookie file
        specs.append(
            ChildSpec(
                id="web-tls",
                start=lambda: TlsWebServerActor.start(directory, tls_host, tls_port, **tls_options),
            )
        )
    return specs


def start_tree(config: TreeConfig) -> Tree:
    """Boot the tree and wait until every child has started (raises if one could not)."""
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = Directory()
    specs = child_specs(config, directory)
    if config.only is not None:
        specs = [spec for spec in specs if spec.id in config.only]
    root = Supervisor.start("root", specs, strategy="rest_for_one", intensity=5, period=10.0, directory=directory)
    wait_started(root, timeout=60)
    directory.register("root", root)
    return Tree(config=config, root=root, directory=directory)

"""``startd``: boot the supervision tree and serve the API until SIGTERM or SIGINT.

When the state tree cannot be loaded, it serves diagnostic mode instead of exiting (see
``startos.actors.diagnostic``), and ``diagnostic.restart`` makes it re-execute itself.
"""

from gevent import monkey

monkey.patch_all()  # first, before anything imports socket, threading or ssl

import fcntl  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

import click  # noqa: E402
import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from startos import __version__, logs  # noqa: E402
from startos.actors.diagnostic import LogRing  # noqa: E402
from startos.actors.tree import StateLoadError, Tree, TreeConfig, start_diagnostic_tree, start_tree  # noqa: E402
from startos.paths import default_data_dir  # noqa: E402
from startos.supervision import monitor  # noqa: E402

logger = logging.getLogger("startos.startd")

SHUTDOWN_BUDGET = 9.0  # seconds: the whole stop must fit in 10 s
DEFAULT_TLS_PORT = 5443


def parse_bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:5959)")
    return host.strip("[]"), int(port)


def parse_allowed_hosts(_ctx: Any, _param: Any, values: tuple[str, ...]) -> tuple[str, ...]:
    """``--allow-host`` values as the Host allowlist compares them (lowercase, no final dot)."""
    from startos.webui.hardening import normalize_host_name

    try:
        return tuple(normalize_host_name(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _lock(data_dir: Path) -> Any:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "startd.lock", "a+")  # noqa: SIM115 (held for the process lifetime)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise click.ClickException(f"another startd is already using {data_dir}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the server keeps its state (default: /var/lib/startos-py as root, else ~/.local/share/startos-py).",
)
@click.option(
    "--bind", default="127.0.0.1:5959", show_default=True, help="HTTP address as HOST:PORT (port 0 picks one)."
)
@click.option(
    "--bind-tls",
    default=None,
    help="HTTPS address as HOST:PORT, served once setup created the certificate "
    "(default: the --bind host, port 5443; port 0 when --bind uses port 0).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--log-format",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "json", "text"]),
    help="json: one object per line; auto: text on a terminal, json otherwise.",
)
@click.option(
    "--sandbox",
    type=click.Choice(["auto", "process", "namespace"]),
    default="auto",
    show_default=True,
    help="Where services run: namespaces (root on Linux), plain processes, or the best available.",
)
@click.option(
    "--no-mdns", is_flag=True, help="Do not advertise <hostname>.local (e.g. when avahi already answers for it)."
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    callback=parse_allowed_hosts,
    help="Also answer to this Host name, e.g. a reverse proxy's or a DNS name (repeatable). IP addresses, "
    "localhost and <hostname>.local are always served; other names are refused against DNS rebinding.",
)
@click.version_option(__version__, prog_name="startd")
def main(
    data_dir: Path | None,
    bind: str,
    bind_tls: str | None,
    log_level: str,
    log_format: str,
    sandbox: str,
    no_mdns: bool,
    allow_hosts: tuple[str, ...],
) -> None:
    """Run the startos-py server: the state tree, the JSON-RPC API and the dashboard."""
    logs.configure(log_level, log_format)
    # This boot's log lines, for `diagnostic.logs` should the state tree not load (there is no
    # journal to read then); detached as soon as the tree is up, so normal mode pays nothing.
    boot_logs = LogRing()
    logging.getLogger().addHandler(boot_logs)
    host, port = parse_bind(bind)
    # Port 0 for HTTP (tests, several servers side by side) means an ephemeral HTTPS port too.
    tls_host, tls_port = parse_bind(bind_tls) if bind_tls else (host, 0 if port == 0 else DEFAULT_TLS_PORT)
    data_dir = (data_dir or default_data_dir()).resolve()
    lock = _lock(data_dir)
    stop = Event()
    why: dict[str, str | None] = {"signal": None}

    def on_signal(signum: int) -> None:
        why["signal"] = signal.Signals(signum).name
        stop.set()

    gevent.signal_handler(signal.SIGTERM, on_signal, signal.SIGTERM)
    gevent.signal_handler(signal.SIGINT, on_signal, signal.SIGINT)
    config = TreeConfig(
        data_dir=data_dir,
        host=host,
        port=port,
        tls_host=tls_host,
        tls_port=tls_port,
        mdns=not no_mdns,
        sandbox=sandbox,
        allowed_hosts=allow_hosts,
    )
    restart = Event()

    def on_restart() -> None:
        restart.set()
        stop.set()

    diagnostic: StateLoadError | None = None
    try:
        tree = start_tree(config)
    except StateLoadError as exc:
        diagnostic = exc
        tree = _start_diagnostic(config, exc, boot_logs, on_restart)
    except Exception as exc:  # noqa: BLE001 (any other boot failure: one line, exit 1)
        logger.error("startd could not start: %s", exc)
        sys.exit(1)
    else:
        logging.getLogger().removeHandler(boot_logs)
    # The tree lives as long as startd: keep its objects out of the cyclic collector's full
    # passes, which otherwise walk them all (75 ms measured with 200 services; see bench_health).
    gc.freeze()
    crashed: dict[str, Any] = {}

    def on_root_exit(_ref: Any, reason: Any) -> None:
        crashed["reason"] = reason
        stop.set()

    monitor(tree.root, on_root_exit)
    address = tree.ask("web", _get_address())
    if diagnostic is not None:
        logger.warning(
            "startd in diagnostic mode",
            extra={
                "url": f"http://{_url_host(address.host)}:{address.port}",
                "error": diagnostic.message,
                "data_dir": str(data_dir),
                "pid": os.getpid(),
            },
        )
    else:
        tls = tree.ask("web-tls", _get_tls_address())
        logger.info(
            "startd ready",
            extra={
                "url": f"http://{_url_host(address.host)}:{address.port}",
                "https_url": f"https://{_url_host(tls.host)}:{tls.port}",
                "https_listening": tls.listening,
                "data_dir": str(data_dir),
                "pid": os.getpid(),
            },
        )
    stop.wait()
    if "reason" in crashed:
        logger.error("the supervision tree died: %s", crashed["reason"])
        sys.exit(1)
    logger.info("stopping", extra={"signal": why["signal"], "restart": restart.is_set()})
    graceful = tree.stop(timeout=SHUTDOWN_BUDGET)
    logger.info("stopped", extra={"graceful": graceful})
    lock.close()
    if restart.is_set() and why["signal"] is None:  # a signal that came meanwhile wins: stop
        _reexec()
    sys.exit(0 if graceful else 1)


def _start_diagnostic(
    config: TreeConfig, error: StateLoadError, boot_logs: LogRing, on_restart: Callable[[], None]
) -> Tree:
    """Serve diagnostic mode for ``error``; exit 1 (one line) if even that cannot start."""
    logger.error("the state tree could not be loaded: %s", error)
    try:
        return start_diagnostic_tree(config, error, logs=boot_logs, on_restart=on_restart)
    except Exception as exc:  # noqa: BLE001 (e.g. the port is in use: one line, exit 1)
        logger.error("startd could not start, not even in diagnostic mode: %s", exc)
        sys.exit(1)


def _reexec() -> NoReturn:
    """Replace this process with a new startd run with the same arguments (same pid, same output).

    ``sys.orig_argv`` keeps the interpreter's own options and works for the ``startd`` script
    and ``python -m startos.cli.startd`` alike; Python opens files close-on-exec, so only
    stdin/stdout/stderr carry over (the data dir's lock was released above).
    """
    argv = [sys.executable, *sys.orig_argv[1:]]
    logger.info("restarting", extra={"argv": argv})
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, argv)
    except OSError as exc:
        logger.error("startd could not restart itself: %s", exc)
        sys.exit(1)


def _get_address() -> Any:
    from startos.webui.server import GetAddress

    return GetAddress()


def _get_tls_address() -> Any:
    from startos.protocol.certs import GetTlsAddress

    return GetTlsAddress()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":
    main()

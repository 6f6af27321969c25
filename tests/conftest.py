"""Shared fixtures: gevent first, then trees booted in-process on temp data dirs."""

from gevent import monkey

monkey.patch_all()  # before anything imports socket or threading, as startd does

import logging  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import pykka  # noqa: E402
import pytest  # noqa: E402

from startos.actors.tree import Tree, TreeConfig, start_tree  # noqa: E402
from startos.protocol.store import DbSubscribe, DbUnsubscribe, Revision  # noqa: E402

from .helpers import wait_until  # noqa: E402


@pytest.fixture(autouse=True)
def no_leaked_actors() -> Iterator[None]:
    """Every test must stop every actor it started."""
    yield
    leaked = pykka.ActorRegistry.get_all()
    if leaked:
        names = ", ".join(sorted(str(ref) for ref in leaked))
        pykka.ActorRegistry.stop_all(block=True, timeout=5)
        pytest.fail(f"test left actors running: {names}")


@pytest.fixture
def quiet_crashes(caplog: pytest.LogCaptureFixture) -> None:
    """Crash tests log tracebacks on purpose; keep the output readable."""
    caplog.set_level(logging.CRITICAL, logger="startos.supervision")


class Watch:
    """Follows a subscription and keeps a local copy of the value, as a client would."""

    def __init__(self, tree: Tree, pointer: str) -> None:
        import jsonpatch

        self._jsonpatch = jsonpatch
        self.tree = tree
        self.sub = tree.ask("store", DbSubscribe(pointer=pointer))
        assert self.sub.dump is not None
        self.revision = self.sub.dump.id
        self.value = self.sub.dump.value
        self.revisions: list[Revision] = []

    def pump(self, timeout: float = 0.0) -> None:
        while True:
            revision = self.sub.get(timeout=timeout)
            if revision is None:
                return
            self.revisions.append(revision)
            self.value = self._jsonpatch.apply_patch(self.value, revision.patch)
            self.revision = revision.id
            timeout = 0.0

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while not predicate(self.value):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {timeout} s; value is {self.value!r}")
            self.pump(timeout=remaining)
        return self.value

    def close(self) -> None:
        self.tree.ask("store", DbUnsubscribe(subscription_id=self.sub.id))


class TreeHarness:
    """A booted tree plus helpers to message actors by name and watch the patch stream."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._watches: list[Watch] = []

    def ask(self, name: str, message: object, timeout: float = 10.0) -> Any:
        return self.tree.ask(name, message, timeout=timeout)

    def tell(self, name: str, message: object) -> None:
        self.tree.tell(name, message)

    def watch(self, pointer: str = "/public") -> Watch:
        watch = Watch(self.tree, pointer)
        self._watches.append(watch)
        return watch

    @property
    def directory(self) -> Any:
        return self.tree.directory

    def close(self) -> None:
        for watch in self._watches:
            if self.tree.root.is_alive():
                try:
                    watch.close()
                except Exception:  # noqa: BLE001 (teardown must go on)
                    pass
        assert self.tree.stop(timeout=10), "tree did not stop gracefully"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def tree(data_dir: Path) -> Iterator[TreeHarness]:
    """The tree without its web server: message any actor by name, watch the patch stream."""
    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=None, mdns=False)))
    yield harness
    harness.close()


@pytest.fixture
def web_tree(data_dir: Path) -> Iterator[TreeHarness]:
    """The whole tree with its HTTP server on a free loopback port (``harness.url``)."""
    from startos.webui.server import GetAddress

    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=0, max_body=64 * 1024, mdns=False)))
    address = harness.ask("web", GetAddress())
    harness.url = f"http://127.0.0.1:{address.port}"  # type: ignore[attr-defined]
    yield harness
    harness.close()


PASSWORD = "correct horse battery staple"
SERVER_NAME = "My Cool Server"


def set_up_server(client: Any, name: str = SERVER_NAME, password: str = PASSWORD) -> Any:
    """Run setup.execute over HTTP and log in; the client keeps the session cookie."""
    result = client.call("setup.execute", {"serverName": name, "password": password})
    assert "result" in result, result
    login = client.call("auth.login", {"password": password})
    assert "error" not in login, login
    client.password = password
    return result["result"]


@pytest.fixture
def session_http(web_tree: TreeHarness) -> Iterator[Any]:
    """An ``Http`` client of a server that is set up, logged in (``.password`` holds the password)."""
    from .rpc_client import Http

    client = Http(web_tree.url)  # type: ignore[attr-defined]
    set_up_server(client)
    yield client
    client.close()


__all__ = ["PASSWORD", "SERVER_NAME", "TreeHarness", "Watch", "gevent", "wait_until"]

"""Browser fixtures: Debian's chromium driven by Playwright for Python (REFERENCE.md §10).

One chromium for all the browser tests, a fresh context (cookies, storage, downloads) per test,
and a screenshot of every page of a failed test written to its tmp dir (the path is logged).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import greenlet
import pytest
from playwright.sync_api import Page

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.store import DbDump
from startos.supervision import Backoff

from ..conftest import TreeHarness, set_up_server
from ..rpc_client import Http
from .fake_tree import check_public

CHROMIUM = os.environ.get("STARTOS_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

logger = logging.getLogger(__name__)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's outcome on the item, so fixtures can tell a failed test at teardown."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


class RunningLoopConfinement:
    """Keep Playwright's asyncio loop away from the in-process server's greenlets.

    Between calls, Playwright's sync API leaves its loop set as asyncio's *running loop*
    (``wait_for_future`` in playwright/_impl/_greenlets.py), and asyncio keeps that per OS
    thread. Under gevent the tree's actors share the test's thread, so they took Playwright's
    loop for theirs: zeroconf in the mDNS actor then failed on close ("Bad file descriptor")
    and the tree spent 5 s killing it at every teardown. This greenlet trace keeps two values:
    one for Playwright's greenlets (the test's own and Playwright's fibers) and one for every
    other greenlet, which so sees the same running loop as in a server without Playwright.
    """

    def __init__(self) -> None:
        self.test_greenlet = greenlet.getcurrent()
        self.playwright_value: Any = asyncio._get_running_loop()
        self.other_value: Any = self.playwright_value
        self.previous: Callable[[str, Any], None] | None = None

    def _is_playwright(self, g: greenlet.greenlet) -> bool:
        return g is self.test_greenlet or type(g).__module__ == "playwright._impl._greenlets"

    def __call__(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            origin, target = args
            leaving, entering = self._is_playwright(origin), self._is_playwright(target)
            if leaving and not entering:
                self.playwright_value = asyncio._get_running_loop()
                asyncio._set_running_loop(self.other_value)
            elif entering and not leaving:
                self.other_value = asyncio._get_running_loop()
                asyncio._set_running_loop(self.playwright_value)
        if self.previous is not None:
            self.previous(event, args)

    def __enter__(self) -> RunningLoopConfinement:
        self.previous = greenlet.settrace(self)
        return self

    def __exit__(self, *exc: object) -> None:
        greenlet.settrace(self.previous)
        asyncio._set_running_loop(None)  # Playwright's loop is closed by now


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One chromium for all the browser tests; a context per test keeps them apart.

    Package scope: it starts before any test's server (pytest sets up wider scopes first) and
    stops when the browser tests are done, so the rest of the suite runs without Playwright
    (whose sync API leaves its loop marked running in the test's thread).
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (install Debian's chromium: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    threads_before = set(threading._active)  # type: ignore[attr-defined]
    with RunningLoopConfinement(), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    # Playwright's fibers are plain greenlets: under gevent's threading each one that asked for
    # current_thread() was registered as a dummy thread, and nothing unregisters it when it ends.
    # Later tests that check for leftover threads (test_mdns.py) would count them.
    for ident, thread in list(threading._active.items()):  # type: ignore[attr-defined]
        if ident not in threads_before and isinstance(thread, threading._DummyThread):
            logger.debug("forgetting Playwright's dummy thread %s", thread.name)
            threading._active.pop(ident, None)  # type: ignore[attr-defined]


@pytest.fixture
def context(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser context (no cookies, no storage) per test; screenshots if the test failed."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(10_000)
    yield context
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for index, page in enumerate(context.pages):
            shot = tmp_path / f"failure-{index}.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                logger.error("screenshot of the failed page: %s", shot)
            except Exception:  # noqa: BLE001 (teardown must go on)
                pass
    context.close()


@pytest.fixture
def page(context: Any) -> Any:
    """A page in the test's fresh context."""
    return context.new_page()


# Crash loops show quickly and stay long enough to look at.
CRASH_BACKOFF = Backoff(base=0.05, factor=2.0, cap=0.2, jitter=0.0, reset_after=60.0, crash_loop_after=3, cooldown=60.0)


@dataclass
class Server:
    url: str
    client: Http  # logged in over RPC (another session than the browser's)
    tree: TreeHarness

    def result(self, method: str, params: dict[str, Any] | None = None) -> Any:
        reply = self.client.call(method, params or {})
        assert "error" not in reply, reply
        return reply["result"]

    def volume(self, package_id: str) -> Path:
        return self.tree.tree.config.data_dir / "packages" / package_id / "volumes" / "main"

    def install(self, path: Path) -> None:
        """Install a package file from the server's disk, as `start-cli package install` would after an upload."""
        started = self.result("package.install", {"path": str(path)})
        self.tree.watch("/public/packageData").wait_for(
            lambda v: (v.get(started["id"]) or {}).get("stateInfo", {}).get("state") == "installed", timeout=60
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A set-up server with the services manager (default sandbox) and fast-to-show crash loops."""
    from startos.webui.server import GetAddress

    config = TreeConfig(data_dir=tmp_path / "data", port=0, mdns=False, daemon_backoff=CRASH_BACKOFF)
    harness = TreeHarness(start_tree(config))
    try:
        url = f"http://127.0.0.1:{harness.ask('web', GetAddress()).port}"
        client = Http(url)
        set_up_server(client)
        yield Server(url, client, harness)
        client.close()
        # Whatever the test wrote, real or fake, the tree it leaves is one the schema allows.
        check_public(harness.ask("store", DbDump(pointer="/public")).value)
    finally:
        harness.close()


@pytest.fixture(autouse=True)
def no_script_errors(page: Page) -> Iterator[None]:
    """Any uncaught error in the dashboard's scripts, or anything its CSP blocked, fails the test."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A CSP violation is no exception: Chromium only logs it ("Refused to ...").
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield
    assert errors == []

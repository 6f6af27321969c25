"""The diagnostic page: what the browser shows when startd's state tree did not load (issue #10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ..daemon import Daemon


@pytest.fixture
def diagnostic(tmp_path: Path) -> Iterator[Daemon]:
    """A real startd whose state database is garbage: it serves diagnostic mode."""
    db = tmp_path / "data" / "db" / "state.sqlite3"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"not a database\n" * 100)
    daemon = Daemon(tmp_path / "data", tmp_path / "startd.log")
    try:
        daemon.wait_diagnostic()
        yield daemon
    finally:
        daemon.stop()


def test_the_page_shows_the_error_and_says_where_to_restart(diagnostic: Daemon, page: Page) -> None:
    page.goto(diagnostic.url + "/")
    expect(page.get_by_role("heading", name="Diagnostic mode")).to_be_visible()
    expect(page.locator("#title")).to_have_text("Database Error (29)")
    expect(page.locator("#details")).to_contain_text("file is not a database")
    # A browser has no local cookie: the restart is refused and the page says what to run instead.
    page.get_by_role("button", name="Restart").click()
    expect(page.get_by_role("status")).to_have_text(
        "Restarting needs root on the server: run `start-cli diagnostic restart` there."
    )
    assert diagnostic.proc.poll() is None


def test_the_page_fits_a_phone_and_works_with_the_keyboard(diagnostic: Daemon, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(diagnostic.url + "/")
    expect(page.locator("#details")).to_contain_text("file is not a database")
    assert page.evaluate("document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth")
    expect(page.get_by_role("button", name="Restart")).to_be_in_viewport()
    # Keyboard only: Tab reaches the button, Enter presses it.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent.trim() === 'Restart'"):
            break
    else:
        raise AssertionError("Tab never reached the Restart button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("start-cli diagnostic restart")

"""The System page's session list shows when each session expires (issue #10)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from ..conftest import PASSWORD, SERVER_NAME
from .conftest import Server

SLOW = 20_000  # ms: login hashes a password


def test_each_session_shows_when_it_expires(server: Server, page: Page) -> None:
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)
    page.get_by_label("Master password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("server-name")).to_have_text(SERVER_NAME, timeout=SLOW)
    page.get_by_test_id("nav-system").click()

    expires = page.get_by_test_id("session-expires")
    expect(expires).to_have_count(2)  # the browser's session and the RPC client's
    # Unused, a session lasts the 14-day idle lifetime: Intl says "in 2 weeks".
    expect(expires.first).to_have_text("expires in 2 weeks")
    listed = server.result("auth.session.list")["sessions"]
    assert all(info["expiresAt"] for info in listed.values())


def test_the_session_list_fits_a_phone(server: Server, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)
    page.get_by_label("Master password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("server-name")).to_have_text(SERVER_NAME, timeout=SLOW)
    page.get_by_role("button", name="Open menu").click()
    page.get_by_test_id("nav-system").click()
    expires = page.get_by_test_id("session-expires")
    expires.first.scroll_into_view_if_needed()
    expect(expires.first).to_be_in_viewport()
    box = expires.first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth")

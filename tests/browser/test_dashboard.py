"""The dashboard in a real browser: setup wizard, login, live state, language (issue 3).

Each test drives Debian's chromium (conftest.py) against an in-process tree on a free port.
Waits are Playwright's auto-retrying ``expect``; there are no fixed sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..conftest import PASSWORD, SERVER_NAME, TreeHarness, set_up_server
from ..rpc_client import Http

SLOW = 20_000  # ms: setup hashes a password and creates a CA; login hashes too


@pytest.fixture
def server(web_tree: TreeHarness) -> Iterator[tuple[str, Http]]:
    """A server already set up over RPC, and a logged-in RPC client of it (not the browser's session)."""
    client = Http(web_tree.url)  # type: ignore[attr-defined]
    set_up_server(client)
    yield web_tree.url, client  # type: ignore[attr-defined]
    client.close()


def log_in(page: Page, url: str, password: str = PASSWORD) -> None:
    page.goto(url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)
    page.get_by_label("Master password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("server-name")).to_have_text(SERVER_NAME, timeout=SLOW)


def result(reply: dict[str, Any]) -> Any:
    assert "error" not in reply, reply
    return reply["result"]


def test_setup_wizard_download_and_login(web_tree: TreeHarness, page: Page, tmp_path: Path) -> None:
    url = web_tree.url  # type: ignore[attr-defined]
    page.goto(url + "/")

    # Step 1: only "Start fresh" is offered for now; the others say when they come.
    expect(page.get_by_role("heading", name="Welcome to StartOS")).to_be_visible()
    expect(page.get_by_test_id("setup-restore")).to_be_disabled()
    expect(page.get_by_test_id("setup-transfer")).to_be_disabled()
    expect(page.get_by_test_id("setup-restore")).to_contain_text("Available in a later release")
    page.get_by_test_id("setup-fresh").click()

    # Step 2: the derived address is previewed as the name is typed.
    page.get_by_label("Server name").fill(SERVER_NAME)
    expect(page.get_by_test_id("mdns-preview")).to_have_text("my-cool-server.local")
    page.get_by_role("button", name="Continue").click()

    # Step 3: the password rules hold the submit button until they are met.
    submit = page.get_by_role("button", name="Set up server")
    page.locator("#setup-password").fill("too short")
    page.locator("#setup-confirm").fill("too short")
    expect(submit).to_be_disabled()
    page.locator("#setup-password").fill(PASSWORD)
    page.locator("#setup-confirm").fill(PASSWORD + "!")
    expect(submit).to_be_disabled()
    page.locator("#setup-confirm").fill(PASSWORD)
    submit.click()

    # Done: the server's own address, and the info file to keep before going on.
    expect(page.get_by_test_id("mdns-address")).to_have_text("my-cool-server.local", timeout=SLOW)
    expect(page.get_by_test_id("continue-login")).to_be_disabled()
    with page.expect_download() as ca_download:
        page.get_by_test_id("download-ca").click()
    ca_pem = Path(ca_download.value.path()).read_text()
    assert ca_pem.startswith("-----BEGIN CERTIFICATE-----"), ca_pem[:80]
    with page.expect_download() as info_download:
        page.get_by_test_id("download-info").click()
    assert info_download.value.suggested_filename == "StartOS-info.html"
    info = Path(info_download.value.path()).read_text()
    assert "my-cool-server.local" in info
    assert ca_pem.strip() in info, "StartOS-info.html does not hold the root CA PEM"

    page.get_by_test_id("continue-login").click()
    page.get_by_label("Master password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("server-name")).to_have_text(SERVER_NAME, timeout=SLOW)
    expect(page.get_by_role("heading", name="Services", exact=True)).to_be_visible()
    expect(page.get_by_text("No services installed yet")).to_be_visible()
    expect(page).to_have_title(SERVER_NAME)


def test_setup_refuses_a_name_without_letters_or_digits(web_tree: TreeHarness, page: Page) -> None:
    page.goto(web_tree.url + "/")  # type: ignore[attr-defined]
    page.get_by_test_id("setup-fresh").click()
    page.get_by_label("Server name").fill("!!!")
    expect(page.get_by_role("button", name="Continue")).to_be_disabled()
    expect(page.get_by_text("at least one letter or digit")).to_be_visible()


def test_wrong_password_shows_an_error(server: tuple[str, Http], page: Page) -> None:
    url, _ = server
    page.goto(url + "/")
    page.get_by_label("Master password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("login-error")).to_have_text("Incorrect password. Check it and try again.", timeout=SLOW)
    expect(page.get_by_test_id("server-name")).to_have_count(0)


def test_fourth_quick_attempt_is_rate_limited(server: tuple[str, Http], page: Page) -> None:
    url, _ = server
    page.goto(url + "/")
    field = page.get_by_label("Master password")
    for _ in range(3):
        field.fill("not the password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("login-error")).to_contain_text("Incorrect password", timeout=SLOW)
        expect(field).to_have_value("")  # cleared once the answer came: the attempt is counted
    field.fill(PASSWORD)  # even the right password is refused while limited
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("Too many attempts", timeout=SLOW)
    expect(page.get_by_test_id("login-wait")).to_contain_text(re.compile(r"Wait \d+ s"))
    expect(page.get_by_role("button", name="Log in")).to_be_disabled()


def test_logout_returns_to_login_and_ends_the_session(server: tuple[str, Http], page: Page) -> None:
    url, _ = server
    log_in(page, url)
    page.get_by_test_id("logout").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)


def test_a_killed_session_goes_back_to_login(server: tuple[str, Http], page: Page) -> None:
    url, client = server
    log_in(page, url)
    sessions = result(client.call("auth.session.list", {}))
    others = [sid for sid in sessions["sessions"] if sid != sessions["current"]]
    assert len(others) == 1, sessions
    result(client.call("auth.session.kill", {"ids": others}))
    page.get_by_test_id("nav-system").click()  # the next call answers Authorization (34)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)


def test_notification_appears_live_with_its_badge(server: tuple[str, Http], page: Page) -> None:
    url, client = server
    log_in(page, url)
    page.get_by_test_id("nav-notifications").click()
    expect(page.get_by_text("No notifications")).to_be_visible()
    expect(page.get_by_test_id("unread-badge")).to_have_count(0)

    result(client.call("notification.create", {"level": "warning", "title": "Disk almost full", "message": "92% used"}))
    expect(page.get_by_test_id("unread-badge")).to_have_text("1")
    item = page.get_by_test_id("notification").filter(has_text="Disk almost full")
    expect(item).to_be_visible()
    expect(item).to_contain_text("92% used")

    result(client.call("notification.create", {"level": "info", "title": "Backup finished", "message": ""}))
    expect(page.get_by_test_id("unread-badge")).to_have_text("2")
    expect(page.get_by_test_id("notification").first).to_contain_text("Backup finished")  # newest first

    item.get_by_test_id("mark-seen").click()
    expect(page.get_by_test_id("unread-badge")).to_have_text("1")
    page.get_by_test_id("mark-all-seen").click()
    expect(page.get_by_test_id("unread-badge")).to_have_count(0)

    item.get_by_test_id("remove").click()
    expect(page.get_by_test_id("notification")).to_have_count(1)
    listed = result(client.call("notification.list", {}))
    assert [n["title"] for n in listed] == ["Backup finished"]


def test_switching_language_changes_the_text(server: tuple[str, Http], page: Page) -> None:
    url, client = server
    log_in(page, url)
    page.get_by_test_id("nav-system").click()
    page.get_by_label("Language").select_option("de")
    expect(page.get_by_test_id("nav-services")).to_have_text("Dienste")
    expect(page.get_by_role("heading", name="Über diesen Server")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "de")

    # Stored on the server: another client sees it, and a reload keeps it.
    info = result(client.call("db.dump", {"pointer": "/public/serverInfo"}))
    assert info["value"]["language"] == "de"
    page.reload()
    expect(page.get_by_test_id("nav-notifications")).to_have_text("Benachrichtigungen", timeout=SLOW)

    # A change made elsewhere arrives live.
    result(client.call("server.set-language", {"language": "fr"}))
    expect(page.get_by_test_id("nav-services")).to_have_text("Services")
    expect(page.get_by_test_id("nav-system")).to_have_text("Système")


def test_language_picker_before_login(server: tuple[str, Http], page: Page) -> None:
    url, _ = server
    page.goto(url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)
    page.get_by_label("Language").select_option("es")
    expect(page.get_by_role("heading", name="Iniciar sesión")).to_be_visible()
    expect(page.get_by_label("Contraseña maestra")).to_be_visible()


def test_phone_width_uses_a_drawer(server: tuple[str, Http], page: Page) -> None:
    url, _ = server
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, url)
    expect(page.get_by_test_id("nav-system")).not_to_be_in_viewport()
    page.get_by_role("button", name="Open menu").click()
    expect(page.get_by_test_id("nav-system")).to_be_in_viewport()
    page.get_by_test_id("nav-system").click()
    expect(page.get_by_role("heading", name="System", exact=True)).to_be_visible()
    expect(page.get_by_test_id("nav-system")).not_to_be_in_viewport()


def in_drawer(page: Page) -> bool:
    return bool(page.evaluate("() => document.activeElement.closest('#sidebar') !== null"))


def test_phone_drawer_works_with_the_keyboard(server: tuple[str, Http], page: Page) -> None:
    """At 390 px: the menu button says whether the drawer is open; opening moves focus into it,
    Escape closes it and gives focus back; the closed drawer is out of the Tab order."""
    url, _ = server
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, url)
    menu = page.get_by_role("button", name="Open menu")
    sidebar = page.locator("#sidebar")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_have_attribute("aria-controls", "sidebar")
    expect(sidebar).to_be_hidden()

    # Closed: Tab never reaches the drawer's links.
    menu.focus()
    page.keyboard.press("Shift+Tab")
    assert not in_drawer(page)
    menu.focus()
    page.keyboard.press("Tab")
    assert not in_drawer(page)

    # Enter opens it and focus moves to the current page's link; the page behind is inert.
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("nav-services")).to_be_focused()
    expect(page.get_by_test_id("nav-system")).to_be_in_viewport()
    expect(page.locator(".main")).to_have_attribute("inert", "")
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("nav-marketplace")).to_be_focused()

    # Escape closes it and focus goes back to the menu button.
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    expect(sidebar).to_be_hidden()
    expect(page.locator(".main")).not_to_have_attribute("inert", "")

    # Space opens it again; Tab down to System and Enter: that page, the drawer closed, focus on the button.
    page.keyboard.press("Space")
    expect(page.get_by_test_id("nav-services")).to_be_focused()
    for _ in range(4):  # marketplace, sideload, updates, system
        page.keyboard.press("Tab")
    expect(page.get_by_test_id("nav-system")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="System", exact=True)).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    expect(sidebar).to_be_hidden()

    # The close button works by keyboard too, and gives focus back the same way.
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("nav-system")).to_be_focused()
    for _ in range(5):  # updates, sideload, marketplace, services, the close button
        page.keyboard.press("Shift+Tab")
    expect(page.get_by_test_id("drawer-close")).to_be_focused()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()

    # Widened past the drawer's width while open, it closes: nothing is left inert.
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.set_viewport_size({"width": 1280, "height": 844})
    expect(page.get_by_test_id("menu")).to_have_attribute("aria-expanded", "false")  # hidden at this width
    expect(page.locator(".main")).not_to_have_attribute("inert", "")
    expect(page.get_by_test_id("nav-services")).to_be_visible()


def test_change_password_from_the_system_page(server: tuple[str, Http], page: Page) -> None:
    url, _ = server
    log_in(page, url)
    page.get_by_test_id("nav-system").click()
    sessions = page.get_by_test_id("session")
    expect(sessions).to_have_count(2)  # the browser's and the RPC client's
    expect(sessions.filter(has_text="This session")).to_contain_text("Chromium on Linux")

    form = page.get_by_test_id("change-password")
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password").fill("a brand new passphrase")
    form.get_by_label("Confirm password").fill("a brand new passphrase")
    form.get_by_role("button", name="Change password").click()
    expect(page.get_by_test_id("password-message")).to_contain_text("Password changed", timeout=SLOW)
    expect(sessions).to_have_count(1)  # the other session was logged out

    page.get_by_test_id("logout").click()
    page.get_by_label("Master password").fill("a brand new passphrase")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("server-name")).to_have_text(SERVER_NAME, timeout=SLOW)

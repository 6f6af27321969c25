"""The Services pages in a real browser: sideload, live status, daemons, logs, stats, uninstall (issue 5).

Each test runs a whole tree in-process (services manager included) on a free port and drives
Debian's chromium against it. Waits are Playwright's auto-retrying ``expect``; no fixed sleeps.
Set ``STARTOS_SHOTS=/some/dir`` to keep screenshots of the main screens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from startos.s9pk import generate_signing_key, pack_package
from startos.s9pk.package import find_sources

from ..conftest import PASSWORD, SERVER_NAME
from .conftest import Server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "packages"
SLOW = 20_000  # ms: login hashes a password; an install starts a runtime
SHOTS = os.environ.get("STARTOS_SHOTS")


def pack(name: str, out: Path, *, key: Any = None, manifest: dict[str, Any] | None = None) -> Path:
    """Pack an example package (optionally with manifest fields changed) into ``out``."""
    source = EXAMPLES / name
    if manifest:
        copy = out.parent / f"{out.stem}-src"
        shutil.copytree(source, copy)
        data = json.loads((copy / "manifest.json").read_text())
        data.update(manifest)
        (copy / "manifest.json").write_text(json.dumps(data))
        source = copy
    return pack_package(find_sources(source), key or generate_signing_key(), output=out)


def log_in(page: Page, url: str, route: str = "") -> None:
    page.goto(f"{url}/#/{route}")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)
    page.get_by_label("Master password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("server-name")).to_have_text(SERVER_NAME, timeout=SLOW)


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def expect_status(status: Locator, server: Server, package_id: str, word: str, timeout: float = SLOW) -> None:
    """The dashboard shows ``word`` and ``package list`` (what start-cli prints) says the same.

    Only for settled states: a passing one (starting) may be gone by the time the list is asked.
    """
    expect(status).to_have_attribute("data-status", word, timeout=timeout)
    listed = {p["id"]: p["status"] for p in server.result("package.list")}
    assert listed[package_id] == word, f"start-cli says {listed[package_id]!r}, the dashboard {word!r}"


def test_sideload_run_follow_and_uninstall_hello_world(server: Server, page: Page, tmp_path: Path) -> None:
    package = pack_package(
        find_sources(EXAMPLES / "hello-world"), generate_signing_key(), output=tmp_path / "hello.s9pk"
    )
    log_in(page, server.url)
    expect(page.get_by_text("No services installed yet")).to_be_visible()
    page.get_by_test_id("nav-sideload").click()

    # Pick the file: its name and size show before anything is sent.
    page.get_by_test_id("sideload-input").set_input_files(str(package))
    expect(page.get_by_test_id("file-name")).to_have_text("hello.s9pk")
    expect(page.get_by_test_id("file-size")).to_have_text(re.compile(r"^\d+(\.\d)? kB$"))
    shot(page, "sideload-ready")
    page.get_by_test_id("sideload-install").click()

    # Upload, then the server's phases, until it is installed.
    expect(page.get_by_test_id("sideload-done")).to_contain_text("Hello World 1.0.0:0 is installed", timeout=SLOW)
    for step in ("upload", "verify", "unpack", "init"):
        expect(page.get_by_test_id(f"step-{step}")).to_have_attribute("data-state", "done")
    shot(page, "sideload-done")
    page.get_by_test_id("open-service").click()

    # The service page: its setup task is required first, then it is stopped, so Start is offered.
    expect(page).to_have_url(re.compile(r"#/services/hello-world$"))
    expect(page.get_by_test_id("service-title")).to_have_text("Hello World")
    status = page.get_by_test_id("service-head").get_by_test_id("status")
    expect_status(status, server, "hello-world", "task-required")
    page.get_by_test_id("action").and_(page.locator('[data-id="show-credentials"]')).click()
    page.get_by_test_id("result-done").click()
    expect_status(status, server, "hello-world", "stopped")
    expect(page.get_by_test_id("action-stop")).to_have_count(0)
    expect(page.get_by_test_id("log-line").first).to_be_visible()  # install lines are already in its journal

    # Start: the status and the daemons table follow live; the daemon's own lines stream in.
    page.get_by_test_id("action-start").click()
    expect_status(status, server, "hello-world", "running")
    web = page.get_by_test_id("daemon").filter(has_text="web")
    expect(web.get_by_test_id("daemon-state")).to_have_attribute("data-state", "running")
    expect(web.get_by_test_id("daemon-failures")).to_have_text("0")
    expect(page.get_by_test_id("action-start")).to_have_count(0)
    expect(page.get_by_test_id("action-restart")).to_be_visible()
    lines = page.get_by_test_id("log-lines")
    expect(lines).to_contain_text("listening on port 8080", timeout=SLOW)
    expect(lines).to_contain_text("daemon web is ready")
    expect(page.get_by_test_id("logs-status")).to_have_attribute("data-status", "live")

    # Stats are polled while the page is open: a real memory figure.
    expect(page.get_by_test_id("stat-memory")).to_have_text(re.compile(r"^\d+(\.\d)? (kB|MB|GB)"), timeout=SLOW)
    expect(page.get_by_test_id("stat-processes")).to_have_text(re.compile(r"^[1-9]\d*$"))
    shot(page, "service-running")

    # Scrolled up, the view stays put and counts what arrives; "jump" follows the end again.
    # Scrollable with few lines. A constructed style sheet, not add_style_tag: the dashboard's CSP
    # (style-src 'self') blocks <style> elements, and a test must not need it relaxed.
    page.evaluate(
        """() => { const sheet = new CSSStyleSheet(); sheet.replaceSync('.logs-box { height: 120px !important; }');
                   document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet]; }"""
    )
    lines.evaluate("el => { el.scrollTop = 1; }")  # away from the end (which the page keeps following)
    logs_status = page.get_by_test_id("logs-status")
    expect(logs_status).to_have_text("Paused")
    page.get_by_test_id("action-restart").click()
    jump = page.get_by_test_id("logs-jump")
    expect(jump).to_have_text(re.compile(r"New lines: [1-9]\d* · jump to latest"), timeout=SLOW)
    assert lines.evaluate("el => el.scrollTop") == 1
    expect(status).to_have_attribute("data-status", "running", timeout=SLOW)
    jump.click()
    expect(logs_status).to_have_text("Following")
    expect(jump).to_have_count(0)
    assert lines.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 24

    # A rebuild closes the journal the logs follow: the page reconnects, without repeating lines.
    server.result("package.rebuild", {"id": "hello-world"})
    page.get_by_test_id("log-line").filter(has_text="sandbox ready").nth(1).wait_for(timeout=SLOW)
    expect(page.get_by_test_id("log-line").filter(has_text="sandbox ready")).to_have_count(2)
    expect(page.get_by_test_id("log-line").filter(has_text="running init install")).to_have_count(1)
    expect(logs_status).to_have_attribute("data-status", "live")
    expect(status).to_have_attribute("data-status", "running", timeout=SLOW)

    # The list shows the same live status.
    page.get_by_test_id("nav-services").click()
    row = page.get_by_test_id("service-row").filter(has_text="Hello World")
    expect_status(row.get_by_test_id("status"), server, "hello-world", "running")
    expect(row).to_contain_text("1.0.0:0")
    shot(page, "services-list")
    row.click()

    # Stop.
    page.get_by_test_id("action-stop").click()
    expect_status(status, server, "hello-world", "stopped")
    expect(web).to_have_count(0)  # a stopped service lists no daemons
    expect(lines).to_contain_text("daemon web stopped")

    # Uninstall, confirmed in a dialog: back to an empty list.
    page.get_by_test_id("action-uninstall").click()
    dialog = page.get_by_test_id("uninstall-dialog")
    expect(dialog).to_contain_text("Uninstall Hello World?")
    expect(dialog).to_contain_text("cannot be undone")
    shot(page, "uninstall-dialog")
    dialog.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(r"#/services$"), timeout=SLOW)
    expect(page.get_by_test_id("service-row")).to_have_count(0)
    expect(page.get_by_text("No services installed yet")).to_be_visible()
    assert server.result("package.list") == []


def test_bad_files_are_refused_with_a_clear_reason(server: Server, page: Page) -> None:
    log_in(page, server.url, "sideload")
    expect(page.get_by_test_id("dropzone")).to_be_visible()

    # Not even named like a package: refused before any upload.
    page.get_by_test_id("sideload-input").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}
    )
    expect(page.get_by_test_id("sideload-error")).to_contain_text("its name ends in .s9pk")
    expect(page.get_by_test_id("sideload-progress")).to_have_count(0)
    page.get_by_test_id("sideload-another").click()

    # Named like one but not one: uploaded, then refused by the server's check.
    page.get_by_test_id("sideload-input").set_input_files(
        {"name": "broken.s9pk", "mimeType": "application/octet-stream", "buffer": b"not a package at all" * 100}
    )
    page.get_by_test_id("sideload-install").click()
    error = page.get_by_test_id("sideload-error")
    expect(error).to_contain_text("This file is not a valid service package", timeout=SLOW)
    expect(error).to_contain_text("wrong magic bytes")
    expect(page.get_by_test_id("step-upload")).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("step-verify")).to_have_attribute("data-state", "failed")
    expect(page.get_by_test_id("sideload-accept-key")).to_have_count(0)
    shot(page, "sideload-bad-file")
    assert server.result("package.list") == []


def test_update_signed_by_another_key_offers_to_accept_it(server: Server, page: Page, tmp_path: Path) -> None:
    server.install(pack("hello-world", tmp_path / "old.s9pk"))
    alert = "Uninstalling deletes every visit ever counted."
    newer = pack("hello-world", tmp_path / "new.s9pk", manifest={"alerts": {"uninstall": alert}})

    log_in(page, server.url, "services/hello-world")
    page.get_by_test_id("action-update").click()
    expect(page.get_by_test_id("update-banner")).to_contain_text("Update Hello World")
    expect(page.get_by_test_id("update-banner")).to_contain_text("1.0.0:0")
    page.get_by_test_id("sideload-input").set_input_files(str(newer))
    page.get_by_test_id("sideload-install").click()

    # Another developer key: said plainly, with the choice to accept it.
    expect(page.get_by_test_id("sideload-error")).to_contain_text("Signed by a different developer key", timeout=SLOW)
    shot(page, "sideload-new-key")
    page.get_by_test_id("sideload-accept-key").click()
    expect(page.get_by_test_id("sideload-done")).to_contain_text("Hello World is updated to 1.0.0:0", timeout=SLOW)
    page.get_by_test_id("open-service").click()

    # The new manifest's uninstall alert is shown before confirming; cancelling keeps the service.
    page.get_by_test_id("action-uninstall").click()
    dialog = page.get_by_test_id("uninstall-dialog")
    expect(dialog.get_by_test_id("uninstall-alert")).to_contain_text(alert)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("service-title")).to_have_text("Hello World")
    assert [p["id"] for p in server.result("package.list")] == ["hello-world"]


def test_a_crash_loop_shows_with_its_failures_and_retry(server: Server, page: Page, tmp_path: Path) -> None:
    server.install(pack("crashy", tmp_path / "crashy.s9pk"))
    (server.volume("crashy") / "crashy.json").write_text(json.dumps({"exit_after": 0.05, "exit_code": 3}))
    log_in(page, server.url, "services/crashy")
    page.get_by_test_id("action-start").click()
    dialog = page.get_by_role("dialog")  # the package's start alert comes first
    expect(dialog).to_contain_text("Crashy crashes on purpose")
    dialog.get_by_test_id("confirm").click()

    status = page.get_by_test_id("service-head").get_by_test_id("status")
    expect_status(status, server, "crashy", "crash-looping")
    expect(status).to_have_text("Crash-looping")
    daemon = page.get_by_test_id("daemon").filter(has_text="crashy")
    expect(daemon.get_by_test_id("daemon-state")).to_have_attribute("data-state", "crash-looping")
    expect(daemon.get_by_test_id("daemon-failures")).to_have_text(re.compile(r"^[3-9]$"))
    expect(daemon).to_contain_text("exited with status 3")
    expect(daemon.get_by_test_id("daemon-retry")).to_have_text(re.compile(r"^in \d+ s$"))
    expect(page.get_by_test_id("status-error")).to_contain_text("keeps failing")
    # Stop and Restart make sense for a crash loop; Start does not.
    expect(page.get_by_test_id("action-restart")).to_be_visible()
    expect(page.get_by_test_id("action-start")).to_have_count(0)
    shot(page, "service-crash-looping")

    page.get_by_test_id("nav-services").click()
    row = page.get_by_test_id("service-row").filter(has_text="Crashy")
    expect(row.get_by_test_id("status")).to_have_attribute("data-status", "crash-looping")
    row.click()
    page.get_by_test_id("action-stop").click()
    expect(daemon).to_have_count(0, timeout=SLOW)
    expect(page.get_by_test_id("action-start")).to_be_visible()
    # Stopping on purpose clears the crash loop's error: the service is simply stopped.
    expect_status(status, server, "crashy", "stopped")


def test_long_running_progress_shows_while_starting(server: Server, page: Page, tmp_path: Path) -> None:
    server.install(pack("slow-sync", tmp_path / "slow.s9pk"))
    (server.volume("slow-sync") / "sync.json").write_text(json.dumps({"blocks": 20, "interval": 0.25}))
    log_in(page, server.url, "services/slow-sync")
    page.get_by_test_id("action-start").click()

    status = page.get_by_test_id("service-head").get_by_test_id("status")
    progress = page.get_by_test_id("long-progress").filter(has_text="sync")
    expect(progress).to_contain_text(re.compile(r"Synced ([1-9]|1\d) of 20 blocks"), timeout=SLOW)
    expect(status).to_have_attribute("data-status", "starting")
    expect(progress.get_by_role("progressbar")).to_have_attribute("aria-valuenow", re.compile(r"^[1-9]\d?$"))
    shot(page, "service-progress")
    expect(progress).to_contain_text("Synced 20 of 20 blocks", timeout=SLOW)
    expect_status(status, server, "slow-sync", "running")


def test_upload_shows_real_progress_and_can_be_cancelled(server: Server, page: Page) -> None:
    log_in(page, server.url, "sideload")
    # A slow link (DevTools network emulation), so the upload is seen under way.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 512 * 1024},
    )
    page.get_by_test_id("sideload-input").set_input_files(
        {"name": "big.s9pk", "mimeType": "application/octet-stream", "buffer": b"\0" * (4 * 1024 * 1024)}
    )
    expect(page.get_by_test_id("file-size")).to_have_text("4.2 MB")
    page.get_by_test_id("sideload-install").click()
    meter = page.get_by_test_id("progress-upload")
    expect(meter).to_have_attribute("aria-valuenow", re.compile(r"^[1-9]\d?$"), timeout=SLOW)
    expect(page.get_by_test_id("step-upload")).to_contain_text(re.compile(r"\d+(\.\d)? (kB|MB) / 4\.2 MB · \d+%"))
    shot(page, "sideload-uploading")
    page.get_by_test_id("sideload-cancel-upload").click()
    expect(page.get_by_test_id("sideload-install")).to_be_visible()  # back to the picked file, nothing sent
    expect(page.get_by_test_id("sideload-progress")).to_have_count(0)
    assert server.result("package.list") == []

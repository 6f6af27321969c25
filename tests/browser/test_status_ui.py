"""Every status word the server writes, as the dashboard shows it (issue 11).

The dashboard works out no status: it shows ``statusInfo.summary`` with its label and tone, and
"Unknown" when the server wrote none. One seeded package per word (``fake_tree``: each one a tree
the server could write), then the list and a service page are read.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from .fake_tree import entry, patch, seed
from .test_services import Server, log_in, shot

STARTED = "2026-01-01T00:00:00Z"

# summary -> (label, tone, what else the server has written by then)
WORDS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "stopped": ("Stopped", "neutral", {}),
    "starting": ("Starting", "warning", {"desired": "running"}),
    "running": ("Running", "success", {"desired": "running", "started": STARTED}),
    "stopping": ("Stopping", "warning", {"started": STARTED}),
    "restarting": ("Restarting", "warning", {"desired": "restarting", "started": STARTED}),
    "degraded": ("Degraded", "warning", {"desired": "running", "started": STARTED}),
    "waiting": ("Waiting", "warning", {"desired": "running", "blocked": {"reason": "Fake DB is not running"}}),
    "task-required": ("Task required", "warning", {}),
    "crash-looping": ("Crash-looping", "danger", {"desired": "running", "error": {"message": "keeps failing"}}),
    "error": ("Error", "danger", {"error": {"message": "it broke"}}),
    "backing-up": ("Backing up", "accent", {}),
}

PROGRESS = {
    "overall": False,
    "phases": [
        {"name": "upload", "progress": True},
        {"name": "verify", "progress": {"done": 1, "total": 2, "units": None}},
    ],
}
# The install jobs: the services manager's stateInfo, with the share done after the word.
JOBS = {
    "installing": "Installing 75%",
    "updating": "Updating 75%",
    "restoring": "Restoring 75%",
    "removing": "Removing",
}


def job_entry(word: str) -> dict[str, Any]:
    value = entry(f"Job {word}", statusInfo={"summary": word})
    value["stateInfo"]["state"] = word
    if word != "removing":
        value["stateInfo"]["installingInfo"] = {"progress": PROGRESS, "newVersion": "1.0.0:0"}
    return value


def word_entry(word: str) -> dict[str, Any]:
    """A package the server describes with ``word``, with what makes it say so."""
    value = entry(f"Svc {word}", statusInfo={"summary": word, **WORDS[word][2]})
    if word == "task-required":
        task = {"packageId": "svc-task-required", "actionId": "setup", "severity": "critical", "reason": "Set it up"}
        value["tasks"] = {
            "setup": {
                "task": {**task, "input": None, "when": None},
                "active": True,
                "createdAt": STARTED,
            }
        }
    if word in ("degraded", "waiting"):
        value["currentDependencies"] = {
            "fake-db": {
                "kind": "running",
                "versionRange": "*",
                "healthChecks": [],
                "optional": False,
                "title": "Fake DB",
                "description": None,
            }
        }
        value["statusInfo"]["dependencies"] = {"fake-db": {"satisfied": False, "message": "Fake DB is not running"}}
    return value


@pytest.fixture
def seeded(server: Server) -> Server:
    seed(
        server,
        *[(f"svc-{word}", word_entry(word)) for word in WORDS],
        *[(f"job-{word}", job_entry(word)) for word in JOBS],
    )
    return server


def test_every_summary_has_its_label_and_tone(seeded: Server, page: Page) -> None:
    log_in(page, seeded.url, "services")
    for word, (label, tone, _) in WORDS.items():
        status = page.locator(f'[data-testid="service-row"][data-id="svc-{word}"] [data-testid="status"]')
        expect(status).to_have_attribute("data-status", word)
        expect(status).to_have_text(label)
        expect(status).to_have_class(re.compile(rf"\bstatus-{tone}\b"))
    for word, label in JOBS.items():
        status = page.locator(f'[data-testid="service-row"][data-id="job-{word}"] [data-testid="status"]')
        expect(status).to_have_attribute("data-status", word)
        expect(status).to_have_text(label)
    # Running counts the degraded one too: it runs, with a dependency down.
    expect(page.get_by_test_id("services-summary")).to_contain_text("Running: 2")
    shot(page, "services-every-status")


def test_the_status_follows_the_server_and_nothing_else(seeded: Server, page: Page) -> None:
    log_in(page, seeded.url, "services/svc-running")
    head = page.get_by_test_id("service-head").get_by_test_id("status")
    expect(head).to_have_attribute("data-status", "running")
    expect(page.get_by_test_id("action-stop")).to_be_visible()

    # A daemon backing off while the server still says running: the dashboard says running too.
    patch(
        seeded,
        {
            "op": "add",
            "path": "/public/packageData/svc-running/statusInfo/daemons/main",
            "value": {"state": "backing-off", "reason": "exited", "failures": 1, "retryIn": 5.0, "retryAt": None},
        },
    )
    expect(page.get_by_test_id("daemon").get_by_test_id("daemon-state")).to_have_attribute("data-state", "backing-off")
    expect(head).to_have_attribute("data-status", "running")

    # The server changes its word: the pill follows, in the user's language too.
    patch(seeded, {"op": "replace", "path": "/public/packageData/svc-running/statusInfo/summary", "value": "degraded"})
    expect(head).to_have_attribute("data-status", "degraded")
    expect(head).to_have_text("Degraded")


RENDER_PILL = """async (pkg) => {
  const { html, render } = await import("/static/js/html.js");
  const { StatusPill, statusOf } = await import("/static/js/pages/service-common.js");
  const host = document.createElement("div");
  host.id = "pill-host";
  document.body.prepend(host);
  render(html`<${StatusPill} status=${statusOf(pkg)} />`, host);
}"""


def test_without_a_summary_the_status_is_unknown(server: Server, page: Page) -> None:
    """A tree from a server that wrote no summary (the schema now refuses one, so it is rendered
    directly): "Unknown", neutral, and nothing worked out from desired, started or daemons."""
    page.goto(f"{server.url}/#/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=20_000)  # the catalogs are loaded
    older = entry("Old App", statusInfo={"desired": "running", "started": STARTED})
    del older["statusInfo"]["summary"]
    page.evaluate(RENDER_PILL, older)
    pill = page.locator("#pill-host [data-testid=status]")
    expect(pill).to_have_attribute("data-status", "unknown")
    expect(pill).to_have_text("Unknown")
    expect(pill).to_have_class(re.compile(r"\bstatus-neutral\b"))


def test_server_messages_prefer_a_translated_code_and_fall_back_to_their_text(server: Server, page: Page) -> None:
    """messageText: today's plain strings as they are; a future ``{code, params}`` in the user's
    words when the catalog knows ``message.<code>``, else the text the server sent with it."""

    def with_a_message_code(route: Route) -> None:
        catalog = route.fetch().json()
        catalog["message.dependency.not-running"] = "{service} is not running (translated)"
        route.fulfill(json=catalog)

    page.route("**/static/i18n/en.json", with_a_message_code)
    page.goto(f"{server.url}/#/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=20_000)  # the catalogs are loaded
    shown = page.evaluate(
        """async () => {
          const { messageText } = await import("/static/js/i18n.js");
          return [
            messageText("Fake DB is not running"),
            messageText(null),
            messageText({ code: "dependency.not-running", params: { service: "Fake DB" }, text: "not running" }),
            messageText({ code: "dependency.unknown-code", params: {}, text: "as the server wrote it" }),
          ];
        }"""
    )
    assert shown == [
        "Fake DB is not running",
        "",
        "Fake DB is not running (translated)",
        "as the server wrote it",
    ]

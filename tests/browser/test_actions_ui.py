"""Health checks, actions, tasks, dependencies and interfaces in the dashboard (issue 6).

Two kinds of tests. The *seeded* ones write a made-up package entry straight into the state tree
(``fake_tree.seed``/``patch``: checked against the server's schema, written as the path's owner)
and answer the action RPCs from the browser's side
(``page.route``), so they check the rendering and the calls the dashboard makes without any
package code. The *hello-world* ones install the example package and drive the real backend.
Waits are Playwright's auto-retrying ``expect``; no fixed sleeps.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route, expect

from .fake_tree import entry, patch, seed
from .test_services import SLOW, Server, expect_status, log_in, pack, shot

QR_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="29" height="29"><rect width="29" height="29" fill="#000"/></svg>'
)


# -- seeding the state tree and answering RPCs from the browser's side -------------------------------


Answer = Callable[[dict[str, Any]], Any]


class Rpc:
    """Answers some JSON-RPC methods in the browser (the rest go to the server) and records their params."""

    def __init__(self, page: Page) -> None:
        self.answers: dict[str, Answer] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        page.route("**/rpc/v1", self._handle)

    def on(self, method: str, answer: Answer) -> None:
        self.answers[method] = answer

    def params(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    def _handle(self, route: Route) -> None:
        body = route.request.post_data_json or {}
        method = body.get("method")
        if method not in self.answers:
            route.continue_()
            return
        params = body.get("params") or {}
        self.calls.append((method, params))
        try:
            reply = {"jsonrpc": "2.0", "id": body["id"], "result": self.answers[method](params)}
        except RpcRefusal as refusal:
            reply = {"jsonrpc": "2.0", "id": body["id"], "error": refusal.error}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(reply))


class RpcRefusal(Exception):
    def __init__(self, code: int, message: str, details: str) -> None:
        super().__init__(details)
        self.error = {"code": code, "message": message, "data": {"details": details}}


def qr(_params: dict[str, Any]) -> dict[str, str]:
    return {"svg": QR_SVG}


# -- health checks, blocked start, dependencies ------------------------------------------------------

HEALTH: dict[str, dict[str, Any]] = {
    "web": {"name": "Web interface", "result": "success", "message": "The web interface is ready"},
    "db": {"name": "Database", "result": "failure", "message": "Connection refused"},
    "boot": {"name": "Boot", "result": "starting", "message": None},
    "sync": {"name": "Sync", "result": "loading", "message": "Synced 42%"},
    "peers": {"name": "Peers", "result": "waiting", "message": "Waiting for Database"},
    "tor": {"name": "Tor", "result": "disabled", "message": "Tor is off"},
}


def test_health_checks_blocked_reason_and_dependencies_render(server: Server, page: Page) -> None:
    seed(
        server,
        ("fake-db", entry("Fake DB")),
        (
            "fake-app",
            entry(
                "Fake App",
                statusInfo={
                    "desired": "running",
                    "summary": "waiting",
                    "health": HEALTH,
                    "blocked": {"reason": "Fake DB is not running"},
                    "dependencies": {
                        "fake-db": {"satisfied": False, "message": "Fake DB is not running"},
                        "fake-cache": {"satisfied": True, "message": None},
                    },
                },
                currentDependencies={
                    "fake-db": {
                        "kind": "running",
                        "versionRange": ">=1.0.0:0",
                        "healthChecks": ["main"],
                        "optional": False,
                        "title": "Fake DB",
                        "description": "Stores the data",
                    },
                    "fake-cache": {
                        "kind": "exists",
                        "versionRange": "*",
                        "healthChecks": [],
                        "optional": True,
                        "title": "Fake Cache",
                        "description": None,
                    },
                },
            ),
        ),
    )
    log_in(page, server.url, "services/fake-app")

    checks = page.get_by_test_id("health-check")
    expect(checks).to_have_count(6)
    words = {
        "web": "Success",
        "db": "Error",
        "boot": "Starting",
        "sync": "Loading",
        "peers": "Waiting",
        "tor": "Disabled",
    }
    for check_id, word in words.items():
        check = page.locator(f'[data-testid="health-check"][data-id="{check_id}"]')
        expect(check.get_by_test_id("health-result")).to_have_text(word)
        expect(check.get_by_test_id("health-result")).to_have_attribute("data-result", HEALTH[check_id]["result"])
        expect(check.get_by_test_id("health-name")).to_have_text(HEALTH[check_id]["name"])
        if HEALTH[check_id]["message"]:
            expect(check.get_by_test_id("health-message")).to_have_text(HEALTH[check_id]["message"])
    expect(page.locator('[data-id="db"] [data-testid="health-result"]')).to_have_class(re.compile("status-danger"))
    expect(page.locator('[data-id="web"] [data-testid="health-result"]')).to_have_class(re.compile("status-success"))

    # Desired running but blocked: "Waiting", with the reason up front.
    head = page.get_by_test_id("service-head")
    expect(head.get_by_test_id("status")).to_have_attribute("data-status", "waiting")
    expect(head.get_by_test_id("status")).to_have_text("Waiting")
    expect(page.get_by_test_id("blocked-reason")).to_have_text("Fake DB is not running")
    # The server names no package in blocked: the dependency whose message is the reason is linked.
    expect(page.get_by_test_id("blocked-link")).to_have_text("Open Fake DB")
    expect(page.get_by_test_id("blocked-link")).to_have_attribute("href", "#/services/fake-db")

    db = page.locator('[data-testid="dependency"][data-id="fake-db"]')
    expect(db).to_have_attribute("data-satisfied", "false")
    expect(db.get_by_test_id("dependency-kind")).to_have_text("Required")
    expect(db.get_by_test_id("dependency-range")).to_have_text(">=1.0.0:0")
    expect(db.get_by_test_id("dependency-state")).to_have_text("Fake DB is not running")
    cache = page.locator('[data-testid="dependency"][data-id="fake-cache"]')
    expect(cache.get_by_test_id("dependency-kind")).to_have_text("Optional")
    expect(cache.get_by_test_id("dependency-state")).to_have_text("Satisfied")
    expect(cache.get_by_test_id("dependency-link")).to_have_count(0)  # not installed: nothing to open
    shot(page, "service-health")

    # Live: the dependency comes up and the block goes away.
    patch(
        server,
        {
            "op": "replace",
            "path": "/public/packageData/fake-app/statusInfo/dependencies/fake-db",
            "value": {"satisfied": True, "message": None},
        },
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/blocked", "value": None},
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/summary", "value": "starting"},
    )
    expect(db.get_by_test_id("dependency-state")).to_have_text("Satisfied")
    expect(page.get_by_test_id("blocked")).to_have_count(0)

    # Running, then the dependency fails: "Degraded", and the dependency says why.
    patch(
        server,
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/started", "value": "2026-01-01T00:00:00Z"},
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/health", "value": {}},
        {
            "op": "replace",
            "path": "/public/packageData/fake-app/statusInfo/dependencies/fake-db",
            "value": {"satisfied": False, "message": "Fake DB: Main is failure (down)"},
        },
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/summary", "value": "degraded"},
    )
    expect(head.get_by_test_id("status")).to_have_attribute("data-status", "degraded")
    expect(head.get_by_test_id("status")).to_have_text("Degraded")
    expect(db.get_by_test_id("dependency-state")).to_have_text("Fake DB: Main is failure (down)")
    db.get_by_test_id("dependency-link").click()
    expect(page).to_have_url(re.compile(r"#/services/fake-db$"))
    expect(page.get_by_test_id("service-title")).to_have_text("Fake DB")


# -- the form generator --------------------------------------------------------------------------

FORM_SPEC: dict[str, Any] = {
    "name": {
        "type": "text",
        "name": "Name",
        "description": "Shown on the page",
        "required": True,
        "placeholder": "alice",
        "patterns": [{"regex": "^[a-z]+$", "description": "Lowercase letters only"}],
    },
    "secret": {"type": "text", "name": "Secret", "masked": True},
    "email": {"type": "text", "name": "Email", "inputmode": "email"},
    "notes": {"type": "textarea", "name": "Notes", "maxLength": 20},
    "port": {
        "type": "number",
        "name": "Port",
        "required": True,
        "min": 1,
        "max": 65535,
        "integer": True,
        "units": "TCP port",
    },
    "ratio": {"type": "number", "name": "Ratio", "min": 0, "max": 1, "step": 0.1},
    "enabled": {"type": "toggle", "name": "Enabled", "default": True},
    "mode": {
        "type": "select",
        "name": "Mode",
        "values": {"fast": "Fast", "safe": "Safe"},
        "default": "safe",
        "required": True,
    },
    "features": {
        "type": "multiselect",
        "name": "Features",
        "values": {"a": "Alpha", "b": "Beta", "c": "Gamma"},
        "default": ["a"],
        "maxLength": 2,
    },
    "peers": {"type": "list", "name": "Peers", "spec": {"type": "text", "name": "Peer"}, "default": ["p1"]},
    "users": {
        "type": "list",
        "name": "Users",
        "spec": {
            "type": "object",
            "name": "User",
            "spec": {"login": {"type": "text", "name": "Login", "required": True}},
        },
    },
    "advanced": {
        "type": "object",
        "name": "Advanced",
        "spec": {"timeout": {"type": "number", "name": "Timeout", "default": 30, "units": "s"}},
    },
    "backend": {
        "type": "union",
        "name": "Backend",
        "default": "local",
        "required": True,
        "variants": {
            "local": {"name": "Local", "spec": {"path": {"type": "text", "name": "Path", "default": "/data"}}},
            "remote": {
                "name": "Remote",
                "spec": {"url": {"type": "text", "name": "URL", "required": True, "inputmode": "url"}},
            },
        },
    },
    "colour": {"type": "color", "name": "Colour", "default": "#ff0000"},
    "day": {"type": "datetime", "name": "Day", "inputmode": "date", "min": "2020-01-01"},
    "at": {"type": "datetime", "name": "At", "inputmode": "time"},
    "when": {"type": "datetime", "name": "When", "inputmode": "datetime-local"},
}

RENDER_FORM = """async ({ spec, value }) => {
  const { html, render } = await import("/static/js/html.js");
  const { InputForm } = await import("/static/js/form.js");
  const host = document.createElement("div");
  host.id = "form-host";
  host.style.cssText = "position: relative; z-index: 10; background: #fff; padding: 16px; max-width: 640px";
  document.body.prepend(host);
  window.submitted = [];
  window.refuse = null;
  const onSubmit = async (v) => {
    window.submitted.push(v);
    if (window.refuse) {
      const err = new Error(window.refuse);
      err.details = window.refuse;
      window.refuse = null;
      throw err;
    }
  };
  render(html`<${InputForm} spec=${spec} initial=${value} onSubmit=${onSubmit} />`, host);
}"""


def field(page: Page, path: str) -> Any:
    return page.locator(f'#form-host [data-testid="form-field"][data-path="{path}"]')


def test_form_renders_every_kind_checks_input_and_places_server_errors(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/#/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)  # the catalogs are loaded
    page.evaluate(RENDER_FORM, {"spec": FORM_SPEC, "value": {"secret": "s3cret", "peers": ["p1"]}})
    form = page.locator("#form-host")
    expect(form.locator('[data-testid="form-field"]:not([data-path*="/"])')).to_have_count(len(FORM_SPEC))

    name = field(page, "name")
    expect(name.locator("label")).to_contain_text("Name")
    expect(name.locator(".required")).to_have_count(1)
    expect(name).to_contain_text("Shown on the page")
    expect(name.locator("input")).to_have_attribute("placeholder", "alice")
    secret = field(page, "secret").locator("input")
    expect(secret).to_have_attribute("type", "password")
    expect(secret).to_have_value("s3cret")
    field(page, "secret").get_by_role("button", name="Show password").click()
    expect(secret).to_have_attribute("type", "text")
    expect(field(page, "email").locator("input")).to_have_attribute("type", "email")
    expect(field(page, "notes").locator("textarea")).to_have_count(1)
    port = field(page, "port").locator("input")
    expect(port).to_have_attribute("type", "number")
    expect(port).to_have_attribute("min", "1")
    expect(port).to_have_attribute("max", "65535")
    expect(port).to_have_attribute("step", "1")
    expect(field(page, "port")).to_contain_text("TCP port")
    expect(field(page, "ratio").locator("input")).to_have_attribute("step", "0.1")
    expect(field(page, "enabled").get_by_role("switch")).to_be_checked()
    expect(field(page, "mode").locator("select")).to_have_value("safe")
    expect(field(page, "features").get_by_label("Alpha")).to_be_checked()
    expect(field(page, "features").get_by_label("Beta")).not_to_be_checked()
    expect(field(page, "peers").get_by_test_id("list-item")).to_have_count(1)
    expect(field(page, "advanced").locator("legend")).to_have_text("Advanced")
    expect(field(page, "advanced/timeout").locator("input")).to_have_value("30")
    expect(field(page, "backend").locator("select").first).to_have_value("local")
    expect(field(page, "backend/value/path").locator("input")).to_have_value("/data")
    expect(field(page, "colour").locator("input[type=color]")).to_have_value("#ff0000")
    expect(field(page, "day").locator("input")).to_have_attribute("type", "date")
    expect(field(page, "day").locator("input")).to_have_attribute("min", "2020-01-01")
    expect(field(page, "at").locator("input")).to_have_attribute("type", "time")
    expect(field(page, "when").locator("input")).to_have_attribute("type", "datetime-local")
    shot(page, "form-every-kind")

    # Lists grow and shrink; a union shows the fields of the chosen variant.
    field(page, "peers").get_by_test_id("list-add").click()
    expect(field(page, "peers").get_by_test_id("list-item")).to_have_count(2)
    field(page, "peers").get_by_test_id("list-item").nth(1).locator("input").fill("p2")
    field(page, "peers").get_by_test_id("list-remove").first.click()
    expect(field(page, "peers").get_by_test_id("list-item")).to_have_count(1)
    expect(field(page, "peers").get_by_test_id("list-item").locator("input")).to_have_value("p2")
    field(page, "users").get_by_test_id("list-add").click()
    expect(field(page, "users/0/login")).to_have_count(1)
    field(page, "backend").locator("select").first.select_option("remote")
    expect(field(page, "backend/value/path")).to_have_count(0)
    expect(field(page, "backend/value/url").locator("input")).to_have_attribute("type", "url")

    # Client-side checks: nothing is sent while a field is wrong.
    submit = form.get_by_test_id("form-submit")
    submit.click()
    expect(field(page, "name").get_by_test_id("field-error")).to_have_text("Required")
    expect(field(page, "port").get_by_test_id("field-error")).to_have_text("Required")
    expect(field(page, "users/0/login").get_by_test_id("field-error")).to_have_text("Required")
    expect(field(page, "backend/value/url").get_by_test_id("field-error")).to_have_text("Required")
    field(page, "name").locator("input").fill("Not Lower")
    expect(field(page, "name").get_by_test_id("field-error")).to_have_text("Lowercase letters only")
    port.fill("70000")
    expect(field(page, "port").get_by_test_id("field-error")).to_have_text("Must be at most 65535.")
    field(page, "features").get_by_label("Beta").check()
    field(page, "features").get_by_label("Gamma").check()
    expect(field(page, "features").get_by_test_id("field-error")).to_have_text("Choose at most 2.")
    assert page.evaluate("window.submitted.length") == 0

    field(page, "name").locator("input").fill("alice")
    port.fill("8080")
    field(page, "features").get_by_label("Gamma").uncheck()
    field(page, "users/0/login").locator("input").fill("bob")
    field(page, "backend/value/url").locator("input").fill("http://example.lan")
    field(page, "day").locator("input").fill("2024-05-01")
    secret.fill("")
    submit.click()
    page.wait_for_function("window.submitted.length === 1")
    sent = page.evaluate("window.submitted[0]")
    assert sent == {
        "name": "alice",
        "secret": None,
        "email": None,
        "notes": None,
        "port": 8080,
        "ratio": None,
        "enabled": True,
        "mode": "safe",
        "features": ["a", "b"],
        "peers": ["p2"],
        "users": [{"login": "bob"}],
        "advanced": {"timeout": 30},
        "backend": {"selection": "remote", "value": {"url": "http://example.lan"}},
        "colour": "#ff0000",
        "day": "2024-05-01",
        "at": None,
        "when": None,
    }

    # The server's refusal lands on the field it names, nested ones included.
    page.evaluate("window.refuse = 'Port: must be at most 9000'")
    submit.click()
    expect(field(page, "port").get_by_test_id("field-error")).to_have_text("must be at most 9000")
    expect(field(page, "port")).to_have_class(re.compile("field-invalid"))
    page.evaluate("window.refuse = 'Advanced \u203a Timeout: must be at least 60'")
    submit.click()
    expect(field(page, "advanced/timeout").get_by_test_id("field-error")).to_have_text("must be at least 60")
    page.evaluate("window.refuse = 'Users \u203a User 1 \u203a Login: is taken'")
    submit.click()
    expect(field(page, "users/0/login").get_by_test_id("field-error")).to_have_text("is taken")
    page.evaluate("window.refuse = 'Backend \u203a Remote \u203a URL: cannot be reached'")
    submit.click()
    expect(field(page, "backend/value/url").get_by_test_id("field-error")).to_have_text("cannot be reached")
    page.evaluate("window.refuse = 'the service is not running'")
    submit.click()
    expect(form.get_by_test_id("server-error")).to_have_text("the service is not running")
    shot(page, "form-errors")


# -- actions ---------------------------------------------------------------------------------------

GREETING_SPEC = {
    "greeting": {
        "type": "text",
        "name": "Greeting",
        "required": True,
        "patterns": [{"regex": "^[^<>]*$", "description": "No angle brackets"}],
    },
    "excited": {"type": "toggle", "name": "Excited", "default": False},
}


def test_field_errors_and_hints_describe_their_controls(server: Server, page: Page) -> None:
    """Each control is described (aria-describedby) by its hint and, when wrong, its error."""
    page.goto(f"{server.url}/#/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=SLOW)
    page.evaluate(RENDER_FORM, {"spec": FORM_SPEC, "value": {"users": [{"login": ""}]}})
    form = page.locator("#form-host")
    name = field(page, "name").locator("input")
    expect(name).to_have_accessible_description("Shown on the page")
    expect(name).not_to_have_attribute("aria-invalid", "true")

    form.get_by_test_id("form-submit").click()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_accessible_description("Shown on the page Required")
    port = field(page, "port").locator("input")
    expect(port).to_have_accessible_description("Required")
    expect(field(page, "users/0/login").locator("input")).to_have_accessible_description("Required")
    url = field(page, "backend/value/url").locator("input")
    field(page, "backend").locator("select").first.select_option("remote")
    expect(url).to_have_accessible_description("Required")

    # The description follows the error: another problem, then none.
    name.fill("Not Lower")
    expect(name).to_have_accessible_description("Shown on the page Lowercase letters only")
    name.fill("alice")
    expect(name).to_have_accessible_description("Shown on the page")
    expect(name).not_to_have_attribute("aria-invalid", "true")

    # A group (checkboxes) is described as a whole.
    field(page, "features").get_by_label("Beta").check()
    field(page, "features").get_by_label("Gamma").check()
    expect(field(page, "features")).to_have_accessible_description("Choose at most 2.")

    # The server's refusal placed on a field describes that field's control.
    field(page, "features").get_by_label("Gamma").uncheck()
    port.fill("8080")
    url.fill("http://example.lan")
    field(page, "users/0/login").locator("input").fill("bob")
    page.evaluate("window.refuse = 'Port: must be at most 1000'")
    form.get_by_test_id("form-submit").click()
    expect(port).to_have_accessible_description("must be at most 1000")


def action(name: str, **extra: Any) -> dict[str, Any]:
    value = {
        "name": name,
        "description": "",
        "warning": None,
        "visibility": "enabled",
        "allowedStatuses": "any",
        "hasInput": False,
        "group": None,
    }
    value.update(extra)
    return value


ACTIONS = {
    "show-credentials": action("Show credentials", description="Your login"),
    "set-greeting": action("Set greeting", hasInput=True, group="Settings"),
    "reset": action("Reset everything", warning="This deletes every visit counted.", group="Danger zone"),
    "reindex": action("Reindex", allowedStatuses="only-running", group="Settings"),
    "migrate": action("Migrate", visibility={"disabled": "Already migrated"}),
    "internal": action("Internal", visibility="hidden"),
}

CREDENTIALS = {
    "title": "Credentials",
    "message": "Log in with these.",
    "values": [
        {"name": "Username", "description": None, "value": "admin", "copyable": True, "masked": False, "qr": False},
        {
            "name": "Password",
            "description": "Keep it safe",
            "value": "hunter2hunter2",
            "copyable": True,
            "masked": True,
            "qr": True,
        },
    ],
}


def test_actions_sidebar_forms_and_results(server: Server, page: Page) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    seed(server, ("fake-app", entry("Fake App", actions=ACTIONS)))
    rpc = Rpc(page)
    rpc.on("util.qr", qr)
    rpc.on(
        "package.action.get-input",
        lambda p: {
            "spec": GREETING_SPEC,
            "value": {"greeting": "Hello", "excited": True},
            "action": ACTIONS[p["actionId"]],
        },
    )
    log_in(page, server.url, "services/fake-app")

    sidebar = page.get_by_test_id("actions")
    expect(sidebar.get_by_test_id("action")).to_have_count(5)  # the hidden one is not listed
    expect(sidebar.get_by_test_id("action-group")).to_have_count(3)
    expect(sidebar.locator('[data-testid="action-group"][data-group="Settings"] h3')).to_have_text("Settings")
    reindex = sidebar.locator('[data-testid="action"][data-id="reindex"]')
    expect(reindex).to_be_disabled()
    expect(reindex.get_by_test_id("action-reason")).to_have_text("Only available when running")
    migrate = sidebar.locator('[data-testid="action"][data-id="migrate"]')
    expect(migrate).to_be_disabled()
    expect(migrate).to_have_attribute("title", "Already migrated")
    shot(page, "actions-sidebar")

    # A warning is confirmed first; cancelling runs nothing.
    rpc.on("package.action.run", lambda p: None)
    sidebar.locator('[data-testid="action"][data-id="reset"]').click()
    warning = page.get_by_test_id("action-warning")
    expect(warning).to_contain_text("This deletes every visit counted.")
    warning.get_by_role("button", name="Cancel").click()
    expect(warning).to_have_count(0)
    assert rpc.params("package.action.run") == []
    sidebar.locator('[data-testid="action"][data-id="reset"]').click()
    page.get_by_test_id("action-warning").get_by_test_id("confirm").click()
    result = page.get_by_test_id("result-dialog")
    expect(result).to_contain_text("Reset everything completed.")
    assert rpc.params("package.action.run") == [{"packageId": "fake-app", "actionId": "reset"}]
    result.get_by_test_id("result-done").click()
    expect(result).to_have_count(0)

    # No input: runs at once; the result shows each value, masked ones hidden until revealed.
    rpc.on("package.action.run", lambda p: CREDENTIALS)
    sidebar.locator('[data-testid="action"][data-id="show-credentials"]').click()
    expect(result).to_contain_text("Credentials")
    expect(result.get_by_test_id("result-message")).to_have_text("Log in with these.")
    password = result.locator('[data-testid="result-value"][data-name="Password"]')
    expect(password.get_by_test_id("result-text")).to_have_attribute("data-masked", "true")
    expect(password).not_to_contain_text("hunter2hunter2")
    password.get_by_test_id("reveal").click()
    expect(password.get_by_test_id("result-text")).to_have_text("hunter2hunter2")
    password.get_by_test_id("copy").click()
    expect(password.get_by_test_id("copy")).to_have_attribute("data-copied", "true")
    assert page.evaluate("navigator.clipboard.readText()") == "hunter2hunter2"
    password.get_by_test_id("qr").click()
    image = password.get_by_test_id("qr-image")
    expect(image).to_be_visible()
    src = image.get_attribute("src")
    assert src is not None and src.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(src.split(",", 1)[1]).decode() == QR_SVG
    assert rpc.params("util.qr") == [{"text": "hunter2hunter2"}]
    username = result.locator('[data-testid="result-value"][data-name="Username"]')
    expect(username.get_by_test_id("result-text")).to_have_text("admin")
    expect(username.get_by_test_id("qr")).to_have_count(0)
    shot(page, "action-result")
    result.get_by_test_id("dialog-close").click()
    expect(result).to_have_count(0)

    # With input: a form prefilled from get-input; the server's refusal shows on its field.
    def refuse_then_accept(params: dict[str, Any]) -> Any:
        if "<" in params["input"]["greeting"]:
            raise RpcRefusal(-32602, "Invalid params", "Greeting: No angle brackets")
        return None

    rpc.on("package.action.run", refuse_then_accept)
    rpc.calls.clear()
    sidebar.locator('[data-testid="action"][data-id="set-greeting"]').click()
    dialog = page.get_by_test_id("action-form-dialog")
    greeting = dialog.locator('[data-path="greeting"] input')
    expect(greeting).to_have_value("Hello")
    expect(dialog.locator('[data-path="excited"]').get_by_role("switch")).to_be_checked()
    assert rpc.params("package.action.get-input") == [{"packageId": "fake-app", "actionId": "set-greeting"}]
    greeting.fill("<b>hi</b>")
    dialog.get_by_test_id("form-submit").click()
    expect(dialog.locator('[data-path="greeting"]').get_by_test_id("field-error")).to_have_text("No angle brackets")
    assert rpc.params("package.action.run") == []  # the browser's own check held it back
    # Past the browser's check (as if its pattern were Python-only): the server's answer shows.
    rpc.on(
        "package.action.get-input",
        lambda p: {
            "spec": {**GREETING_SPEC, "greeting": {**GREETING_SPEC["greeting"], "patterns": []}},
            "value": {"greeting": "Hello", "excited": True},
            "action": ACTIONS["set-greeting"],
        },
    )
    dialog.get_by_role("button", name="Cancel").click()
    sidebar.locator('[data-testid="action"][data-id="set-greeting"]').click()
    greeting.fill("<b>hi</b>")
    dialog.get_by_test_id("form-submit").click()
    expect(dialog.locator('[data-path="greeting"]').get_by_test_id("field-error")).to_have_text("No angle brackets")
    assert rpc.params("package.action.run") == [
        {"packageId": "fake-app", "actionId": "set-greeting", "input": {"greeting": "<b>hi</b>", "excited": True}}
    ]
    greeting.fill("Hi there")
    dialog.get_by_test_id("form-submit").click()
    expect(page.get_by_test_id("result-dialog")).to_contain_text("Set greeting completed.")
    expect(dialog).to_have_count(0)
    assert rpc.params("package.action.run")[-1]["input"] == {"greeting": "Hi there", "excited": True}

    # Running makes "only when running" actions available, live.
    patch(
        server,
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/started", "value": "2024-01-01T00:00:00Z"},
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/desired", "value": "running"},
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/summary", "value": "running"},
    )
    expect(reindex).to_be_enabled()
    expect(reindex.get_by_test_id("action-reason")).to_have_count(0)


# -- tasks -----------------------------------------------------------------------------------------


def task(
    package_id: str,
    action_id: str,
    severity: str,
    reason: str | None,
    *,
    active: bool = True,
    value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "task": {
            "packageId": package_id,
            "actionId": action_id,
            "severity": severity,
            "reason": reason,
            "input": {"kind": "partial", "value": value} if value is not None else None,
            "when": None,
        },
        "active": active,
        "createdAt": "2024-01-01T00:00:00Z",
    }


def test_tasks_list_run_dismiss_and_task_required_status(server: Server, page: Page) -> None:
    seed(
        server,
        ("fake-db", entry("Fake DB", actions={"register": action("Register a client", hasInput=True)})),
        (
            "fake-app",
            entry(
                "Fake App",
                statusInfo={"summary": "task-required"},
                actions={"show-credentials": action("Show credentials")},
                tasks={
                    "optional-one": task("fake-app", "show-credentials", "optional", "Have a look at your login"),
                    "setup": task("fake-app", "show-credentials", "critical", "Get your admin password"),
                    "register": task(
                        "fake-db",
                        "register",
                        "important",
                        "Register Fake App with Fake DB",
                        value={"client": {"name": "fake-app"}},
                    ),
                    "old": task("fake-app", "show-credentials", "critical", "Done long ago", active=False),
                },
            ),
        ),
    )
    rpc = Rpc(page)
    rpc.on("package.action.clear-task", lambda p: None)
    register_spec = {
        "client": {
            "type": "object",
            "name": "Client",
            "spec": {
                "name": {"type": "text", "name": "Client name", "required": True},
                "admin": {"type": "toggle", "name": "Admin"},
            },
        },
        "note": {"type": "text", "name": "Note"},
    }
    rpc.on(
        "package.action.get-input",
        lambda p: {
            "spec": register_spec,
            "action": {},
            "value": {"client": {"name": "", "admin": True}, "note": "kept"},
        },
    )
    rpc.on("package.action.run", lambda p: None)
    log_in(page, server.url, "services")

    tasks = page.get_by_test_id("tasks").get_by_test_id("task")
    expect(tasks).to_have_count(3)  # the inactive one is not listed
    expect(tasks.get_by_test_id("task-severity")).to_have_text(["Required", "Important", "Recommended"])
    expect(tasks.nth(0).get_by_test_id("task-reason")).to_have_text("Get your admin password")
    expect(tasks.nth(0).get_by_test_id("task-service")).to_have_text("Fake App")
    expect(tasks.nth(1)).to_contain_text("Register a client on Fake DB")
    app_row = page.locator('[data-testid="service-row"][data-id="fake-app"]')
    expect(app_row.get_by_test_id("status")).to_have_attribute("data-status", "task-required")
    expect(app_row.get_by_test_id("status")).to_have_text("Task required")
    expect(page.locator('[data-testid="service-row"][data-id="fake-db"]').get_by_test_id("status")).to_have_attribute(
        "data-status", "stopped"
    )
    shot(page, "services-tasks")

    # Run action: the target's form, the task's values laid over the current ones.
    tasks.nth(1).get_by_test_id("task-run").click()
    dialog = page.get_by_test_id("action-form-dialog")
    expect(dialog.locator('[data-path="client/name"] input')).to_have_value("fake-app")
    expect(dialog.locator('[data-path="client/admin"]').get_by_role("switch")).to_be_checked()
    expect(dialog.locator('[data-path="note"] input')).to_have_value("kept")
    assert rpc.params("package.action.get-input") == [{"packageId": "fake-db", "actionId": "register"}]
    dialog.get_by_test_id("form-submit").click()
    page.get_by_test_id("result-dialog").get_by_test_id("result-done").click()
    assert rpc.params("package.action.run") == [
        {
            "packageId": "fake-db",
            "actionId": "register",
            "input": {"client": {"name": "fake-app", "admin": True}, "note": "kept"},
        }
    ]

    # Dismiss: at once for the others, after a confirmation (and with force) for a required one.
    tasks.nth(2).get_by_test_id("task-dismiss").click()
    tasks.nth(0).get_by_test_id("task-dismiss").click()
    confirm = page.get_by_test_id("dismiss-dialog")
    expect(confirm).to_contain_text("Fake App asked for this")
    confirm.get_by_test_id("confirm").click()
    expect(confirm).to_have_count(0)
    assert rpc.params("package.action.clear-task") == [
        {"packageId": "fake-app", "replayId": "optional-one"},
        {"packageId": "fake-app", "replayId": "setup", "force": True},
    ]

    # The list follows the state tree: a task that turns inactive leaves it, and the status with it.
    patch(
        server,
        {"op": "replace", "path": "/public/packageData/fake-app/tasks/setup/active", "value": False},
        {"op": "replace", "path": "/public/packageData/fake-app/statusInfo/summary", "value": "stopped"},
    )
    expect(tasks).to_have_count(2)
    expect(app_row.get_by_test_id("status")).to_have_attribute("data-status", "stopped")

    # A service's page lists the tasks other services made for it.
    page.locator('[data-testid="service-row"][data-id="fake-db"]').click()
    expect(page.get_by_test_id("service-title")).to_have_text("Fake DB")
    on_db = page.get_by_test_id("tasks").get_by_test_id("task")
    expect(on_db).to_have_count(1)
    expect(on_db.get_by_test_id("task-reason")).to_have_text("Register Fake App with Fake DB")
    patch(server, {"op": "remove", "path": "/public/packageData/fake-app/tasks/register"})
    expect(page.get_by_test_id("tasks")).to_have_count(0)


# -- interfaces --------------------------------------------------------------------------------------

INTERFACES = {
    "main": {
        "id": "main",
        "name": "Web UI",
        "description": "The main page",
        "type": "ui",
        "masked": False,
        "addressInfo": {"hostId": "main", "internalPort": 8080, "scheme": "http", "sslScheme": "https", "path": ""},
    },
    "rpc": {
        "id": "rpc",
        "name": "RPC",
        "description": "For wallets",
        "type": "api",
        "masked": True,
        "addressInfo": {"hostId": "main", "internalPort": 9000, "scheme": "http", "sslScheme": "https", "path": ""},
    },
}
HOSTS = {
    "main": {
        "bindings": {
            "8080": {
                "enabled": True,
                "net": {"assignedPort": 49152, "ssl": True},
                "addresses": {
                    "available": [
                        {
                            "kind": "mdns",
                            "hostname": "fake-app.local",
                            "port": 443,
                            "ssl": True,
                            "public": False,
                            "enabled": True,
                            "url": "https://fake-app.local",
                        },
                        {
                            "kind": "ipv4",
                            "hostname": "192.168.1.20",
                            "port": 49152,
                            "ssl": False,
                            "public": False,
                            "enabled": False,
                            "url": "http://192.168.1.20:49152",
                        },
                        {
                            "kind": "ipv6",
                            "hostname": "fe80::1",
                            "port": 49152,
                            "ssl": False,
                            "public": False,
                            "enabled": True,
                            "url": "http://[fe80::1]:49152",
                        },
                    ],
                    "disabled": ["192.168.1.20"],
                },
            },
            "9000": {
                "enabled": True,
                "net": {"assignedPort": 49153, "ssl": False},
                "addresses": {
                    "available": [
                        {
                            "kind": "ipv4",
                            "hostname": "192.168.1.20",
                            "port": 49153,
                            "ssl": False,
                            "public": False,
                            "enabled": True,
                            "url": "http://rpc-secret@192.168.1.20:49153",
                        }
                    ],
                    "disabled": [],
                },
            },
        },
        "publicDomains": {},
        "privateDomains": [],
    },
}


SET_ENABLED = "package.host.binding.set-address-enabled"


def rpc_method(request: Any) -> str | None:
    try:
        return (request.post_data_json or {}).get("method")
    except Exception:  # noqa: BLE001 (not a JSON body)
        return None


def test_interfaces_and_their_address_tables(server: Server, page: Page) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    seed(server, ("fake-app", entry("Fake App", serviceInterfaces=INTERFACES, hosts=copy.deepcopy(HOSTS))))
    rpc = Rpc(page)
    rpc.on("util.qr", qr)
    rpc.on(SET_ENABLED, lambda p: None)
    log_in(page, server.url, "services/fake-app")

    card = page.get_by_test_id("interfaces")
    expect(card.get_by_role("heading", name="Service Interfaces")).to_be_visible()
    main = card.locator('[data-testid="interface"][data-id="main"]')
    expect(main).to_contain_text("Web UI")
    expect(main).to_contain_text("The main page")
    expect(main.get_by_test_id("interface-type")).to_have_text("UI")
    expect(card.locator('[data-id="rpc"]').get_by_test_id("interface-type")).to_have_text("API")
    main.get_by_test_id("interface-open").click()

    rows = main.get_by_test_id("address")
    expect(rows).to_have_count(3)
    mdns, ipv4, ipv6 = rows.nth(0), rows.nth(1), rows.nth(2)
    expect(mdns.get_by_test_id("address-type")).to_have_text("mDNS")
    expect(mdns.get_by_test_id("address-access")).to_have_text("Private")
    expect(mdns.get_by_test_id("address-ca")).to_have_text("Root CA")
    expect(mdns.get_by_test_id("address-url")).to_have_text("https://fake-app.local")
    expect(mdns.get_by_test_id("address-toggle")).to_be_checked()
    expect(mdns.get_by_test_id("address-open")).to_have_attribute("href", "https://fake-app.local")
    expect(mdns.get_by_test_id("address-open")).to_have_attribute("target", "_blank")
    expect(ipv4.get_by_test_id("address-type")).to_have_text("IPv4")
    expect(ipv4.get_by_test_id("address-ca")).to_have_text("None")
    expect(ipv4.get_by_test_id("address-toggle")).not_to_be_checked()  # enabled: false (listed in disabled)
    expect(ipv4.get_by_test_id("address-open")).to_have_count(0)
    expect(ipv6.get_by_test_id("address-type")).to_have_text("IPv6")
    expect(ipv6.get_by_test_id("address-url")).to_have_text("http://[fe80::1]:49152")
    shot(page, "interface-addresses")

    # Toggles ask the server; the table follows the state tree.
    with page.expect_response(lambda r: r.url.endswith("/rpc/v1") and rpc_method(r.request) == SET_ENABLED):
        ipv4.locator("label.switch").click()
    assert rpc.params(SET_ENABLED) == [
        {"package": "fake-app", "host": "main", "internalPort": 8080, "address": "192.168.1.20", "enabled": True}
    ]
    expect(ipv4.get_by_test_id("address-toggle")).not_to_be_checked()  # the state tree still says disabled
    # As the server rewrites a binding's addresses: each one's enabled flag, and the disabled list.
    addresses = copy.deepcopy(HOSTS["main"]["bindings"]["8080"]["addresses"])
    for address in addresses["available"]:
        address["enabled"] = address["hostname"] != "fake-app.local"
    addresses["disabled"] = ["fake-app.local"]
    patch(
        server,
        {
            "op": "replace",
            "path": "/public/packageData/fake-app/hosts/main/bindings/8080/addresses",
            "value": addresses,
        },
    )
    expect(ipv4.get_by_test_id("address-toggle")).to_be_checked()
    expect(mdns.get_by_test_id("address-toggle")).not_to_be_checked()
    expect(mdns.get_by_test_id("address-open")).to_have_count(0)

    # Copy and QR.
    ipv6.get_by_test_id("address-copy").click()
    expect(ipv6.get_by_test_id("address-copy")).to_have_attribute("data-copied", "true")
    assert page.evaluate("navigator.clipboard.readText()") == "http://[fe80::1]:49152"
    ipv6.get_by_test_id("qr").click()
    qr_dialog = page.get_by_test_id("qr-dialog")
    expect(qr_dialog.get_by_test_id("qr-image")).to_have_attribute("src", re.compile(r"^data:image/svg\+xml;base64,"))
    assert rpc.params("util.qr") == [{"text": "http://[fe80::1]:49152"}]
    qr_dialog.get_by_test_id("dialog-close").click()
    expect(qr_dialog).to_have_count(0)

    # A masked interface hides its addresses until revealed.
    secret = card.locator('[data-testid="interface"][data-id="rpc"]')
    secret.get_by_test_id("interface-open").click()
    expect(main.get_by_test_id("addresses")).to_have_count(0)  # one table open at a time
    url = secret.get_by_test_id("address-url")
    expect(url).to_have_attribute("data-masked", "true")
    expect(url).not_to_contain_text("rpc-secret")
    secret.get_by_test_id("reveal").click()
    expect(url).to_have_text("http://rpc-secret@192.168.1.20:49153")


# -- against the real backend: the hello-world example ----------------------------------------------


def install_hello(server: Server, tmp_path: Path) -> None:
    server.install(pack("hello-world", tmp_path / "hello.s9pk"))


def clear_setup_and_start(server: Server) -> None:
    server.result("package.action.run", {"packageId": "hello-world", "actionId": "show-credentials"})
    server.result("package.start", {"id": "hello-world"})


def test_hello_world_set_greeting_refused_by_the_server_then_accepted(
    server: Server, page: Page, tmp_path: Path
) -> None:
    install_hello(server, tmp_path)
    clear_setup_and_start(server)

    # Drop the pattern from the form the browser gets, so only the server checks it.
    def without_patterns(route: Route) -> None:
        body = route.request.post_data_json or {}
        if body.get("method") != "package.action.get-input":
            route.continue_()
            return
        response = route.fetch()
        data = response.json()
        for spec in (data.get("result") or {}).get("spec", {}).values():
            if spec.get("type") == "text":
                spec["patterns"] = []
        route.fulfill(response=response, json=data)

    page.route("**/rpc/v1", without_patterns)
    log_in(page, server.url, "services/hello-world")
    page.locator('[data-testid="action"][data-id="set-greeting"]').click(timeout=SLOW)
    dialog = page.get_by_test_id("action-form-dialog")
    greeting = dialog.locator('[data-path="greeting"] input')
    expect(greeting).to_be_visible(timeout=SLOW)
    greeting.fill("<b>hi</b>")
    dialog.get_by_test_id("form-submit").click()
    # On the field when the server names it, else above the form.
    error = dialog.locator('[data-path="greeting"] [data-testid="field-error"], .alert[data-testid="server-error"]')
    expect(error).to_be_visible(timeout=SLOW)
    expect(error).not_to_be_empty()
    expect(page.get_by_test_id("result-dialog")).to_have_count(0)
    shot(page, "hello-set-greeting-refused")

    greeting.fill("Hi there")
    dialog.locator('[data-path="excited"]').get_by_role("switch").check(force=True)
    dialog.get_by_test_id("form-submit").click()
    expect(page.get_by_test_id("result-dialog")).to_be_visible(timeout=SLOW)
    expect(dialog).to_have_count(0)


def test_hello_world_setup_task_is_required_until_its_action_runs(server: Server, page: Page, tmp_path: Path) -> None:
    install_hello(server, tmp_path)
    # The new required task was announced; its notification opens the service.
    log_in(page, server.url, "notifications")
    note = page.get_by_test_id("notification").filter(has_text="hello-world: required task")
    note.get_by_test_id("notification-link").click()
    expect(page).to_have_url(re.compile(r"#/services/hello-world$"))
    page.evaluate("location.hash = '#/services'")
    setup = page.locator('[data-testid="task"][data-replay-id="hello-world-setup"]')
    expect(setup.get_by_test_id("task-severity")).to_have_text("Required", timeout=SLOW)
    row = page.locator('[data-testid="service-row"][data-id="hello-world"]')
    expect_status(row.get_by_test_id("status"), server, "hello-world", "task-required")
    shot(page, "hello-task")

    setup.get_by_test_id("task-run").click()
    result = page.get_by_test_id("result-dialog")
    expect(result).to_be_visible(timeout=SLOW)
    password = result.locator('[data-testid="result-value"][data-name="Password"]')
    expect(password.get_by_test_id("result-text")).to_have_attribute("data-masked", "true")
    expect(result.locator('[data-testid="result-value"][data-name="Username"]')).to_be_visible()
    expect(setup).to_have_count(0, timeout=SLOW)  # cleared live, with the dialog still open
    result.get_by_test_id("result-done").click()
    expect(page.get_by_test_id("tasks")).to_have_count(0)
    expect_status(row.get_by_test_id("status"), server, "hello-world", "stopped")


def test_hello_world_health_list_shows_the_web_check(server: Server, page: Page, tmp_path: Path) -> None:
    install_hello(server, tmp_path)
    clear_setup_and_start(server)
    log_in(page, server.url, "services/hello-world")
    web = page.get_by_test_id("health-check").filter(has_text=re.compile("web", re.I))
    expect(web.get_by_test_id("health-result")).to_have_attribute("data-result", "success", timeout=SLOW)
    expect(web.get_by_test_id("health-result")).to_have_text("Success")


def test_hello_world_interface_table_copies_and_shows_a_qr(server: Server, page: Page, tmp_path: Path) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    install_hello(server, tmp_path)
    clear_setup_and_start(server)
    log_in(page, server.url, "services/hello-world")
    main = page.locator('[data-testid="interface"][data-id="main"]')
    expect(main.get_by_test_id("interface-type")).to_have_text("UI", timeout=SLOW)
    main.get_by_test_id("interface-open").click()
    row = main.get_by_test_id("address").first
    url = row.get_by_test_id("address-url")
    expect(url).to_have_text(re.compile(r"^https?://"), timeout=SLOW)
    text = url.inner_text()
    row.get_by_test_id("address-copy").click()
    expect(row.get_by_test_id("address-copy")).to_have_attribute("data-copied", "true")
    assert page.evaluate("navigator.clipboard.readText()") == text
    row.get_by_test_id("qr").click()
    image = page.get_by_test_id("qr-dialog").get_by_test_id("qr-image")
    expect(image).to_have_attribute("src", re.compile(r"^data:image/svg\+xml;base64,"), timeout=SLOW)
    shot(page, "hello-interface")

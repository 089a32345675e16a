"""The pages in a real browser: Debian's chromium driven by playwright (never `playwright install`).

An approver signs in, filters the inbox, opens the gate task, is told a rejection needs a
comment, approves, and sees the task gone and the instance advanced. Every page loads without
console errors or page errors. Screenshots (desktop 1280 and phone 390 wide) go to
test-artifacts/ (gitignored).
"""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from engine.adapters import migrations
from engine.bootstrap import Phasegate
from engine.services import definitions, instances, tasks, users
from tests.api_support import GATED_FILES, PASSWORD, PREPARED
from web.app import create_app

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    url = f"sqlite:///{tmp_path / 'browser.sqlite'}"
    migrations.upgrade(url)
    engine_app = Phasegate(url)
    users.add_user(engine_app, "admin", ["admin"], password=PASSWORD, exist_ok=True)
    users.add_user(engine_app, "eve", ["engineer"], password=PASSWORD)
    for name in ("rita", "ray"):
        users.add_user(engine_app, name, ["reviewer"], password=PASSWORD)
    users.add_user(engine_app, "quinn", ["qa_lead"], password=PASSWORD)
    definitions.deploy_files(engine_app, GATED_FILES, "admin")
    for key in ("REL-1", "REL-2"):
        instance = instances.start(engine_app, "gated", business_key=key)
        tasks.complete(engine_app, instance.tasks[0].id, "eve", PREPARED)
    instances.start(engine_app, "gated", business_key="REL-3")  # still being prepared
    flask_app = create_app(phasegate=engine_app, config={"SECRET_KEY": "browser-test"})
    httpd = make_server("127.0.0.1", _free_port(), flask_app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", engine_app
    finally:
        httpd.shutdown()
        thread.join(5)
        engine_app.dispose()


@pytest.fixture
def browser(chromium_executable):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_executable, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Problems:
    """Console errors and warnings, page errors and failed requests of a page."""

    def __init__(self, page):
        self.items: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning") and self.items.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.items.append(f"request failed: {r.url}"))
        page.on("response", lambda r: r.status >= 400 and r.request.resource_type != "document"
                and self.items.append(f"HTTP {r.status}: {r.url}"))


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_approver_filters_opens_gate_task_and_approves(server, browser):
    from playwright.sync_api import expect

    base, engine_app = server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = Problems(page)

    page.goto(base + "/inbox")
    expect(page).to_have_url(base + "/sign-in?next=/inbox")
    shot(page, "desktop-sign-in")
    page.get_by_label("User name").fill("rita")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")  # the keyboard submits
    expect(page.locator("h1")).to_contain_text("My tasks")
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(2)
    shot(page, "desktop-inbox")

    page.get_by_label("Search").fill("rel-2")
    page.get_by_label("Gate").fill("review_gate")
    page.get_by_label("Sort by").select_option("due")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("REL-2")
    expect(rows.first).to_contain_text("Build")

    rows.first.get_by_role("link", name="Quality review (reviewer)").click()
    expect(page.locator("h1")).to_contain_text("Quality review")
    expect(page.locator(".gate")).to_contain_text("quality_bar")
    shot(page, "desktop-gate-task")

    page.get_by_role("button", name="Reject (send back for rework)").click()
    expect(page.locator("#comment-err")).to_contain_text("comment is required")
    expect(page.locator("#comment")).to_have_attribute("aria-invalid", "true")
    shot(page, "desktop-gate-task-error")

    page.get_by_label("Signature: re-enter your password").fill(PASSWORD)
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Decision recorded: Approve on review_gate")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("REL-1")  # REL-2's task is gone

    # ray decides too: the gate passes and REL-2 advances to its end
    [rel2] = [i for i in instances.list_instances(engine_app) if i.business_key == "REL-2"]
    [ray_task] = [t for t in tasks.list_tasks(engine_app, user="ray") if t.instance_id == rel2.id]
    from engine.services import gates

    gates.decide(engine_app, ray_task.id, "ray", "go", password=PASSWORD)
    page.goto(f"{base}/instances/{rel2.id}")
    expect(page.locator("h1")).to_contain_text("completed")
    expect(page.locator(".phasebar")).to_contain_text("Quality review: go")
    expect(page.locator(".history")).to_contain_text("gate decided")
    shot(page, "desktop-instance")

    [rita_task] = tasks.list_tasks(engine_app, user="rita")  # REL-1's, still open
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                storage_state=context.storage_state())
    phone_page = phone.new_page()
    phone_problems = Problems(phone_page)
    for path, name in (("/inbox", "phone-inbox"), (f"/tasks/{rita_task.id}", "phone-task"),
                       (f"/instances/{rel2.id}", "phone-instance")):
        phone_page.goto(base + path)
        shot(phone_page, name)
        width = phone_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
    phone.close()
    context.close()
    assert problems.items == []
    assert phone_problems.items == []

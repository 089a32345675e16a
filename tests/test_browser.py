"""The pages in a real browser: Debian's chromium driven by playwright (never `playwright install`).

- An approver signs in, filters the inbox, opens the gate task, is told a rejection needs a
  comment, approves, and sees the task gone; a second approver completes the quorum in their own
  browser and the instance advances.
- An engineer submits a form with a bad value, sees the error next to the field with the entered
  values kept, corrects it and completes the task.
- An auditor reads every task and instance but has nothing to act with, and a forged POST is refused.
- The whole approval works with the keyboard alone, with a visible focus ring.
- Every page reachable from the navigation, for every kind of user, loads without console errors,
  failed requests or sideways scrolling on a phone.

Screenshots (desktop 1280 and phone 390 wide) go to test-artifacts/ (gitignored).
"""
from __future__ import annotations

import re
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
    users.add_user(engine_app, "audrey", ["auditor"], password=PASSWORD)
    users.add_user(engine_app, "petra", ["pmo"], password=PASSWORD)
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

    page.evaluate("window.notReloaded = true")  # htmx swaps the results in place: the page stays
    page.get_by_label("Search").fill("rel-2")
    page.get_by_label("Gate", exact=True).fill("review_gate")
    page.get_by_label("Sort by").select_option("due")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("REL-2")
    expect(page.locator("#total")).to_have_text("1")
    expect(page).to_have_url(re.compile(r"/inbox\?.*gate=review_gate"))  # a reload shows the same list
    assert page.evaluate("window.notReloaded === true")
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

    # ray, in his own browser, completes the quorum: the gate passes and REL-2 advances to its end
    [rel2] = [i for i in instances.list_instances(engine_app) if i.business_key == "REL-2"]
    second = browser.new_context(viewport={"width": 1280, "height": 900})
    ray = second.new_page()
    ray_problems = Problems(ray)
    sign_in(ray, base, "ray")
    ray.locator("table.tasks tbody tr", has_text="REL-2").get_by_role("link", name="Quality review (reviewer)").click()
    expect(ray.locator(".decisions")).to_contain_text("rita")  # the decision so far
    ray.get_by_label("Signature: re-enter your password").fill(PASSWORD)
    ray.get_by_role("button", name="Approve", exact=True).click()
    expect(ray.locator(".flash")).to_contain_text("The gate is decided: go")
    ray.goto(f"{base}/instances/{rel2.id}")
    expect(ray.locator("h1")).to_contain_text("completed")
    expect(ray.locator(".phasebar")).to_contain_text("Quality review: go")
    expect(ray.locator(".history")).to_contain_text("gate decided")
    shot(ray, "desktop-instance")
    second.close()
    assert ray_problems.items == []

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


def sign_in(page, base: str, user: str, next_path: str = "/inbox") -> None:
    from playwright.sync_api import expect

    page.goto(base + next_path)
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header .who")).to_have_text(user)


def test_form_validation_error_keeps_values_then_completes(server, browser):
    from playwright.sync_api import expect

    base, engine_app = server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = Problems(page)
    sign_in(page, base, "eve")
    page.locator("table.tasks tbody tr", has_text="REL-3").get_by_role("link").first.click()
    page.locator("[name='summary']").fill("Release 1.3")
    page.locator("[name='quality/pass_rate']").fill("1.5")  # above the form's maximum of 1
    page.locator("[name='quality/open_blockers']").fill("0")
    page.get_by_role("button", name="Complete").click()
    expect(page.locator("#form-error")).to_contain_text("Please correct the marked fields")
    field = page.locator(".field.has-error", has=page.locator("[name='quality/pass_rate']"))
    expect(field.locator(".error")).to_contain_text("1")
    expect(page.locator("[name='summary']")).to_have_value("Release 1.3")  # what was typed is kept
    shot(page, "desktop-form-error")

    page.locator("[name='quality/pass_rate']").fill("0.99")
    page.get_by_label("The full regression suite ran on the reviewed build.").check()  # the gate's checklist
    page.get_by_role("button", name="Complete").click()
    expect(page.locator(".flash")).to_contain_text("Done: “Prepare")
    expect(page.locator("table.tasks tbody tr", has_text="REL-3")).to_have_count(0)
    [rel3] = [i for i in instances.list_instances(engine_app) if i.business_key == "REL-3"]
    page.goto(f"{base}/instances/{rel3.id}")
    expect(page.locator(".history")).to_contain_text("completed")
    context.close()
    assert problems.items == []


def test_auditor_reads_but_cannot_act(server, browser):
    from playwright.sync_api import expect

    base, engine_app = server
    [task] = [t for t in tasks.list_tasks(engine_app) if t.kind == "approval"][:1]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = Problems(page)
    sign_in(page, base, "audrey", f"/tasks/{task.id}")
    expect(page.locator("h1")).to_contain_text("Quality review")
    expect(page.locator(".readonly-note")).to_contain_text("Read-only")
    expect(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    expect(page.locator("form.decision, form.taskform")).to_have_count(0)
    shot(page, "desktop-auditor-task")

    # A hand-made POST with a valid CSRF token is refused too, and nothing is recorded.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = context.request.post(f"{base}/tasks/{task.id}/decision", form={
        "csrf_token": token, "outcome": "go", "password": PASSWORD})
    assert "not allowed" in response.text().lower() or "may not" in response.text().lower()
    from engine.services import gates

    [view] = [g for g in gates.gates_view(engine_app, task.instance_id) if g["gate"] == "review_gate"]
    assert view["decisions"] == []
    context.close()
    assert problems.items == []


def test_bulk_approval_reports_each_task(server, browser):
    from playwright.sync_api import expect

    from tests.test_bulk_approve import variant

    base, engine_app = server
    definitions.deploy_files(engine_app, variant("simple_gated"), "admin")  # its gate needs no signature
    simple = instances.start(engine_app, "simple_gated", business_key="SIMPLE-1")
    tasks.complete(engine_app, simple.tasks[0].id, "eve", PREPARED)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = Problems(page)
    sign_in(page, base, "rita")
    for key in ("SIMPLE-1", "REL-1"):
        page.locator("table.tasks tbody tr", has_text=key).get_by_role("checkbox").check()
    page.get_by_label("Comment for every approval").fill("Looks good.")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.locator("h1")).to_have_text("Bulk approval")
    expect(page.locator("tr.result-approved")).to_contain_text("the gate is still open")  # 1 of 2 votes
    expect(page.locator("tr.result-skipped")).to_contain_text("requires an electronic signature")
    shot(page, "desktop-bulk-report")
    page.get_by_role("link", name="My tasks").first.click()
    expect(page.locator("table.tasks tbody tr", has_text="SIMPLE-1")).to_have_count(0)  # decided: gone
    expect(page.locator("table.tasks tbody tr", has_text="REL-1")).to_have_count(1)
    context.close()
    assert problems.items == []


def test_api_docs_page_works_offline(server, browser):
    from playwright.sync_api import expect

    base, _engine_app = server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = Problems(page)
    page.goto(base + "/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Phasegate API")  # vendored, no CDN
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    expect(page.locator("#phasegate-api-offline")).to_be_hidden()
    shot(page, "desktop-api-docs")
    context.close()
    assert problems.items == []


def _tab_to(page, predicate_js: str, limit: int = 80) -> None:
    """Press Tab until the focused element satisfies `predicate_js` (a JS expression over `el`)."""
    check = f"(() => {{ const el = document.activeElement; return !!({predicate_js}); }})()"
    if page.evaluate(check):
        return
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(check):
            return
    raise AssertionError(f"Tab never reached an element with {predicate_js}")


def _focus_ring_visible(page) -> bool:
    return page.evaluate("getComputedStyle(document.activeElement).outlineStyle !== 'none'")


def test_keyboard_only_approval(server, browser):
    from playwright.sync_api import expect

    base, engine_app = server
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = Problems(page)
    page.goto(base + "/inbox")
    _tab_to(page, "el.name === 'username'")
    page.keyboard.type("rita")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("My tasks")

    page.keyboard.press("Tab")  # the first stop on every page: the skip link, then into the content
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    _tab_to(page, "el.tagName === 'A' && el.textContent.includes('Quality review')")
    assert _focus_ring_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Quality review")
    _tab_to(page, "el.id === 'password'")
    page.keyboard.type(PASSWORD)
    _tab_to(page, "el.tagName === 'BUTTON' && el.textContent.trim() === 'Approve'")
    assert _focus_ring_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Decision recorded: Approve on review_gate")
    context.close()
    assert problems.items == []


# Pages a crawl must not follow: they act (sign-out is a POST anyway) or leave the product.
NOT_CRAWLED = ("/api/", "/static/", "/sign-in", "/sign-out")


def _crawl(context, base: str, start: str, limit: int = 60) -> dict[str, list[str]]:
    """Visit every same-origin page linked from `start` (breadth first, one URL per path shape:
    digits stand for ids) and return each page's problems."""
    import re

    page = context.new_page()
    problems = Problems(page)
    seen_shapes, queue, found = set(), [start], {}
    while queue and len(found) < limit:
        url = queue.pop(0)
        shape = re.sub(r"\d+", "N", url.split("#")[0])
        if shape in seen_shapes:
            continue
        seen_shapes.add(shape)
        problems.items = []
        response = page.goto(base + url)
        page.wait_for_load_state("networkidle")
        issues = list(problems.items)
        if response is None or response.status >= 400:
            issues.append(f"HTTP {response.status if response else '?'}")
        width = page.evaluate("document.documentElement.scrollWidth")
        viewport = page.viewport_size["width"]
        if width > viewport:
            issues.append(f"scrolls sideways: {width}px on a {viewport}px screen")
        found[url] = issues
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
            if href.startswith("/") and not href.startswith(NOT_CRAWLED) and href not in found:
                queue.append(href)
    page.close()
    return found


@pytest.mark.parametrize("user", ["admin", "rita", "eve", "audrey", "petra"])
def test_every_page_loads_cleanly_for_every_kind_of_user(server, browser, user):
    base, _engine_app = server
    for viewport, mobile in (({"width": 1280, "height": 900}, False), ({"width": 390, "height": 844}, True)):
        context = browser.new_context(viewport=viewport, is_mobile=mobile, has_touch=mobile)
        page = context.new_page()
        sign_in(page, base, user)
        page.close()
        found = _crawl(context, base, "/inbox")
        context.close()
        assert len(found) >= 3, found
        bad = {url: issues for url, issues in found.items() if issues}
        assert bad == {}, f"{user} at {viewport['width']}px: {bad}"

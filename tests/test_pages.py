"""The server-rendered pages through Flask's test client (SQLite and PostgreSQL, `db_url`):
sign-in, CSRF, the failed sign-in limit, the inbox, task forms and gate decisions.

Model: tests/models/gated.bpmn with its gates file and forms (prepare by an engineer → gate
review_gate: 2 reviewers and a qa_lead, quorum 2, signature).
"""
from __future__ import annotations

import re

import pytest

from engine.bootstrap import Phasegate
from engine.services import definitions, instances, tasks, users
from tests.api_support import GATED_FILES, PASSWORD, PREPARED
from web.app import create_app


class Browser:
    """A test client that signs in and posts forms with the CSRF token of the last page."""

    def __init__(self, engine_app: Phasegate, **config):
        self.flask = create_app(phasegate=engine_app, config={"TESTING": True, "SECRET_KEY": "test", **config})
        self.client = self.flask.test_client()
        self.token = None

    def get(self, path, **kw):
        response = self.client.get(path, **kw)
        match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(self, path, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, **kw)

    def sign_in(self, user, password=PASSWORD):
        self.get("/sign-in")
        return self.post("/sign-in", {"username": user, "password": password})


@pytest.fixture
def engine_app(db_url):
    app = Phasegate(db_url)
    users.add_user(app, "admin", ["admin"], password=PASSWORD, exist_ok=True)
    users.add_user(app, "eve", ["engineer"], password=PASSWORD)
    for name in ("rita", "ray"):
        users.add_user(app, name, ["reviewer"], password=PASSWORD)
    users.add_user(app, "quinn", ["qa_lead"], password=PASSWORD)
    definitions.deploy_files(app, GATED_FILES, "admin")
    yield app
    app.dispose()


@pytest.fixture
def browser(engine_app):
    return Browser(engine_app)


def start(engine_app, key="G-1", prepared=False):
    instance = instances.start(engine_app, "gated", business_key=key)
    if prepared:
        tasks.complete(engine_app, instance.tasks[0].id, "eve", PREPARED)
    return instance


def html(response) -> str:
    return response.get_data(as_text=True)


def test_pages_need_sign_in_and_healthz_is_public(browser):
    response = browser.get("/inbox?sort=due")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")
    from urllib.parse import parse_qs, urlsplit

    assert parse_qs(urlsplit(response.headers["Location"]).query)["next"] == ["/inbox?sort=due"]
    assert browser.get("/tasks/1").status_code == 302
    assert browser.get("/healthz").get_json() == {"status": "ok"}
    assert browser.get("/sign-in").status_code == 200


def test_sign_in_sets_a_safe_cookie_goes_to_next_and_signs_out(browser):
    browser.get("/sign-in")
    response = browser.post("/sign-in", {"username": "rita", "password": PASSWORD, "next": "/inbox?sort=age"})
    assert response.status_code == 302 and response.headers["Location"] == "/inbox?sort=age"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = browser.get("/inbox")
    assert page.status_code == 200 and "rita" in html(page)
    # an outside `next` is ignored
    browser.post("/sign-out")
    browser.get("/sign-in")
    outside = browser.post("/sign-in", {"username": "rita", "password": PASSWORD, "next": "//evil.example/"})
    assert outside.headers["Location"] == "/inbox"
    assert browser.post("/sign-out").status_code == 400  # sign-in changed the CSRF token: a new page has it
    browser.get("/inbox")
    signed_out = browser.post("/sign-out")
    assert signed_out.status_code == 302
    assert browser.get("/inbox").status_code == 302


def test_secure_cookies_by_environment(engine_app, monkeypatch):
    monkeypatch.setenv("PHASEGATE_SECURE_COOKIES", "1")
    browser = Browser(engine_app)
    assert "Secure" in browser.sign_in("rita").headers["Set-Cookie"]


def test_bad_password_and_unknown_user(browser):
    browser.get("/sign-in")
    bad = browser.post("/sign-in", {"username": "rita", "password": "wrong"})
    assert bad.status_code == 200 and "wrong password" in html(bad)  # a form with its error: 200
    assert 'value="rita"' in html(bad)  # the user name is kept
    assert "wrong password" in html(browser.post("/sign-in", {"username": "nobody", "password": "x"}))
    assert browser.get("/inbox").status_code == 302


def test_failed_sign_ins_are_rate_limited_per_user(engine_app):
    browser = Browser(engine_app, SIGN_IN_MAX_FAILURES=3)
    browser.get("/sign-in")
    for _ in range(3):
        assert "wrong password" in html(browser.post("/sign-in", {"username": "rita", "password": "wrong"}))
    limited = browser.post("/sign-in", {"username": "rita", "password": PASSWORD})  # even the right one
    assert limited.status_code == 429 and "Too many failed sign-ins" in html(limited)
    assert int(limited.headers["Retry-After"]) > 0
    assert browser.post("/sign-in", {"username": "ray", "password": PASSWORD}).status_code == 302  # others may


def test_post_without_csrf_token_is_400(browser, engine_app):
    instance = start(engine_app, prepared=True)
    browser.sign_in("rita")
    [review] = tasks.list_tasks(engine_app, user="rita")
    missing = browser.post(f"/tasks/{review.id}/claim", csrf=False)
    assert missing.status_code == 400 and "CSRF" in html(missing)
    wrong = browser.post(f"/tasks/{review.id}/claim", {"csrf_token": "forged"})
    assert wrong.status_code == 400
    assert tasks.get_task(engine_app, review.id).assignee is None
    assert Browser(engine_app).post("/sign-in", {"username": "rita", "password": PASSWORD},
                                    csrf=False).status_code == 400
    assert instance.id


def test_inbox_filters_counts_and_claim(browser, engine_app):
    start(engine_app, "G-1", prepared=True)
    start(engine_app, "G-2", prepared=True)
    start(engine_app, "G-3")  # prepare: engineers only
    browser.sign_in("rita")
    page = html(browser.get("/inbox"))
    assert "G-1" in page and "G-2" in page and "G-3" not in page
    assert re.search(r'id="total">2<', page)
    filtered = html(browser.get("/inbox?q=g-2&gate=review_gate&sort=due"))
    assert "G-2" in filtered and "G-1" not in filtered
    assert "G-1" not in html(browser.get("/inbox?gate=other_gate"))
    assert "No tasks match" in html(browser.get("/inbox?overdue=1"))
    assert "Unknown sort" in html(browser.get("/inbox?sort=bogus")) or "unknown sort" in html(browser.get("/inbox?sort=bogus"))
    paged = html(browser.get("/inbox?per_page=10&page=1"))
    assert "G-1" in paged

    # Gate approvals stay with the whole group: no Claim button, and a forged claim is refused.
    [approval] = tasks.list_tasks(engine_app, user="rita", limit=1)
    assert ">Claim<" not in html(browser.get("/inbox"))
    browser.post(f"/tasks/{approval.id}/claim")
    assert "cannot be claimed" in html(browser.get("/inbox"))
    assert tasks.get_task(engine_app, approval.id).assignee is None

    engineer = Browser(engine_app)
    engineer.sign_in("eve")
    [prepare] = tasks.list_tasks(engine_app, user="eve", limit=1)
    engineer.get("/inbox")
    claimed = engineer.post(f"/tasks/{prepare.id}/claim", {"next": "/inbox?sort=due"})
    assert claimed.status_code == 302 and claimed.headers["Location"] == "/inbox?sort=due"
    assert tasks.get_task(engine_app, prepare.id).assignee == "eve"
    assert "Unclaim" in html(engineer.get("/inbox"))
    engineer.post(f"/tasks/{prepare.id}/unclaim")
    assert tasks.get_task(engine_app, prepare.id).assignee is None


def test_task_form_error_keeps_values_and_names_the_field(browser, engine_app):
    instance = start(engine_app)
    prepare = instance.tasks[0].id
    browser.sign_in("eve")
    page = html(browser.get(f"/tasks/{prepare}"))
    assert 'name="summary"' in page and 'name="quality/pass_rate"' in page
    bad = browser.post(f"/tasks/{prepare}", {"summary": "My summary", "quality/pass_rate": "2",
                                             "quality/open_blockers": "many"})
    assert bad.status_code == 200 and "Please correct the marked fields" in html(bad)
    body = html(bad)
    assert 'value="My summary"' in body and 'value="many"' in body  # entered values kept
    pass_rate = body[body.index('id="f-quality-pass_rate"'):]
    assert "2 is greater than the maximum of 1" in pass_rate[:600]
    assert 'id="f-quality-open_blockers-err"' in body and "is not of type" in body
    assert tasks.get_task(engine_app, prepare).state == "ready"

    # the gate ahead's checklist is on the form; an unticked item is refused next to its checkbox
    unmet = html(browser.post(f"/tasks/{prepare}", {"summary": "ok", "quality/pass_rate": "0.97",
                                                    "quality/open_blockers": "0"}))
    assert 'id="f-checklist-tests_run-err"' in unmet


def test_gate_decision_via_the_page(browser, engine_app):
    instance = start(engine_app, prepared=True)
    [review] = tasks.list_tasks(engine_app, user="rita")
    browser.sign_in("rita")
    page = html(browser.get(f"/tasks/{review.id}"))
    assert "Quality review" in page and "quality_bar" in page and "quality.pass_rate = 0.97" in page
    assert "Approve" in page and "Reject (send back for rework)" in page and "Approve with conditions" not in page
    assert "ray, rita" in page  # who may still decide

    no_comment = browser.post(f"/tasks/{review.id}/decision", {"outcome": "recycle", "password": PASSWORD})
    assert 'id="comment-err"' in html(no_comment)
    unsigned = browser.post(f"/tasks/{review.id}/decision", {"outcome": "go", "comment": "kept"})
    assert "signature" in html(unsigned) and ">kept</textarea>" in html(unsigned)

    approved = browser.post(f"/tasks/{review.id}/decision", {"outcome": "go", "password": PASSWORD})
    assert approved.status_code == 302 and approved.headers["Location"] == "/inbox"
    inbox = html(browser.get("/inbox"))
    assert "Decision recorded: Approve on review_gate" in inbox and "G-1" not in inbox

    [ray_task] = tasks.list_tasks(engine_app, user="ray")
    browser.get("/inbox")
    browser.post("/sign-out")
    browser.sign_in("ray")
    browser.get(f"/tasks/{ray_task.id}")
    assert browser.post(f"/tasks/{ray_task.id}/decision", {"outcome": "go", "password": PASSWORD}).status_code == 302
    assert "The gate is decided: go" in html(browser.get("/inbox"))
    assert instances.show(engine_app, instance.id).state == "completed"

    shown = html(browser.get(f"/instances/{instance.id}"))
    assert "Quality review" in shown and "decision" in shown and "phase-" in shown
    assert "no diagram layout" in shown  # gated.bpmn has no BPMN DI


def test_conditional_go_conditions_are_parsed():
    from web.formfields import parse_conditions

    assert parse_conditions("Fix docs | rita | 2026-04-01\nTag it | ray") == (
        [{"text": "Fix docs", "owner": "rita", "due": "2026-04-01"}, {"text": "Tag it", "owner": "ray", "due": None}],
        {})
    assert parse_conditions("just text")[1] == {"conditions": ["line 1: write 'text | owner | due' (due optional)"]}


def test_instance_page_for_participants_only(browser, engine_app):
    instance = start(engine_app, prepared=True)
    browser.sign_in("rita")
    page = browser.get(f"/instances/{instance.id}")
    assert page.status_code == 200 and "phase-current" in html(page) and "G-1" in html(page)
    # Open tasks link to their page only for those who may open it: rita's reviewer approval, not
    # the qa_lead's (the task page would refuse her).
    shown = {t.role: t.id for t in instances.show(engine_app, instance.id).tasks}
    assert f'href="/tasks/{shown["reviewer"]}"' in html(page) and f'href="/tasks/{shown["qa_lead"]}"' not in html(page)
    other = start(engine_app, "G-9")
    assert browser.get(f"/instances/{other.id}").status_code == 403
    assert browser.get("/instances/999").status_code == 404
    assert browser.get("/overview").status_code == 403  # admins and auditors

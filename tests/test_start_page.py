"""Starting an instance from the web (/start, /start/<process key>) through Flask's test client,
on SQLite and PostgreSQL (`db_url`).

Models: the flagship (processes/: started by the Project Manager, with the start form
crm_project_start; its phases' start events lie in other lanes), lane_start (started by
builders, no form) and gated (no start role: admins only).
"""
from __future__ import annotations

import re

import pytest

from engine.bootstrap import Phasegate
from engine.domain.errors import Forbidden
from engine.domain.permissions import Actor
from engine.services import definitions, instances, users
from tests.api_support import GATED_FILES, LANE_START_FILES, PASSWORD
from tests.test_flagship import PROCESSES
from tests.test_pages import Browser, html

PM = "project-manager"


@pytest.fixture
def app(db_url):
    engine_app = Phasegate(db_url)
    for name, roles in [("admin", ["admin"]), ("ada", ["builder"]), (PM, ["Project Manager"]), ("tina", ["Trainer"]),
                        ("audrey", ["auditor"]), ("paula", ["pmo"])]:
        users.add_user(engine_app, name, roles, password=PASSWORD, exist_ok=True)
    definitions.deploy(engine_app, PROCESSES, "admin")
    for files in (GATED_FILES, LANE_START_FILES):
        definitions.deploy_files(engine_app, files, "admin")
    yield engine_app
    engine_app.dispose()


def signed_in(app, user) -> Browser:
    browser = Browser(app)
    browser.sign_in(user)
    return browser


def listed(page: str) -> list[str]:
    return re.findall(r'<li class="startable" data-process="([^"]+)"', page)


def test_the_start_list_shows_what_each_user_may_start(app):
    admin = html(signed_in(app, "admin").get("/start"))
    assert listed(admin) == ["crm_implementation", "gated", "lane_start"]  # by name
    assert 'href="/start" aria-current="page">Start<' in admin

    builder = signed_in(app, "ada")
    page = html(builder.get("/start"))
    assert listed(page) == ["lane_start"] and "started by builder" in page
    assert 'href="/start/lane_start"' in page

    pm_page = html(signed_in(app, PM).get("/start"))
    assert listed(pm_page) == ["crm_implementation"] and "with a start form" in pm_page
    assert "started by Project Manager ·" in pm_page

    # the go-live phase's start event lies in the Trainer lane: that does not start the project
    trainer = html(signed_in(app, "tina").get("/start"))
    assert listed(trainer) == [] and "None of your roles (Trainer) starts a deployed process" in trainer
    with pytest.raises(Forbidden):
        instances.start(app, "crm_implementation", data={"project_name": "x"}, actor=Actor("tina", {"Trainer"}))

    for reader in ("audrey", "paula"):  # auditors and the pmo role start nothing
        browser = signed_in(app, reader)
        assert ">Start<" not in html(browser.get("/inbox"))
        assert browser.get("/start").status_code == 403
    assert ">Start<" in html(builder.get("/inbox"))


def test_the_start_form_shows_errors_next_to_fields_and_keeps_values(app):
    browser = signed_in(app, PM)
    page = html(browser.get("/start/crm_implementation"))
    assert "Start a CRM implementation project" in page and 'name="business_key"' in page
    assert 'name="project_name"' in page and 'type="date" value=""' in page
    assert re.search(r'id="f-iterations" name="iterations"[^>]*value="3"', page)  # the form's default

    bad = browser.post("/start/crm_implementation", {"business_key": "CRM-1", "iterations": "0",
                                                     "target_go_live": "2026-10-01"})
    body = html(bad)
    assert bad.status_code == 200 and "Please correct the marked fields" in body
    assert 'id="f-project_name-err"' in body and "project_name" in body
    iterations = body[body.index('id="f-iterations"'):]
    assert 'value="0"' in iterations[:400] and "0 is less than the minimum of 1" in iterations[:1200]
    assert 'value="CRM-1"' in body and 'value="2026-10-01"' in body
    too_long = html(browser.post("/start/crm_implementation", {"business_key": "K" * 256, "project_name": "x"}))
    assert 'id="business_key-err"' in too_long and "at most 255 characters" in too_long
    assert 'value="x"' in too_long
    assert instances.list_instances(app) == []

    started = browser.post("/start/crm_implementation", {"business_key": " CRM-1 ", "project_name": "Nordwind",
                                                         "iterations": "2"})
    assert started.status_code == 302
    [instance] = instances.list_instances(app)
    assert started.headers["Location"] == f"/instances/{instance.id}"
    assert (instance.business_key, instance.started_by, instance.key) == ("CRM-1", PM, "crm_implementation")
    assert instance.data["project_name"] == "Nordwind" and instance.data["iterations"] == 2
    shown = html(browser.get(started.headers["Location"]))
    assert "Started “CRM implementation” CRM-1. Next:" in shown and "(Project Manager)" in shown


def test_a_process_without_a_form_and_the_refusals(app):
    browser = signed_in(app, "ada")
    page = html(browser.get("/start/lane_start"))
    assert 'name="business_key"' in page and 'class="field' in page and 'name="f-' not in page
    started = browser.post("/start/lane_start", {"business_key": ""})
    [instance] = instances.list_instances(app)
    assert started.headers["Location"] == f"/instances/{instance.id}" and instance.business_key is None
    assert f"Started “Started by builders” #{instance.id}." in html(browser.get(started.headers["Location"]))

    refused = browser.get("/start/gated")
    assert refused.status_code == 403 and "may not start &#39;gated&#39;" in html(refused)
    assert browser.post("/start/gated", {"business_key": "X"}).status_code == 403
    assert browser.get("/start/nope").status_code == 404
    assert browser.post("/start/lane_start", {"business_key": "X"}, csrf=False).status_code == 400
    assert len(instances.list_instances(app)) == 1

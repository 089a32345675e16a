"""The task form on its page (Flask test client, SQLite and PostgreSQL): drafts, array editors that
work without JavaScript, and the checklist of the gate a task leads to.

Models: tests/models/gated.bpmn (prepare by an engineer → gate review_gate with the checklist item
tests_run and the criterion quality_bar) and TEAM below: one task `plan` whose form has a list of
team members (objects, at least one), a list of tags (at most two) and a checklist of its own.
"""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from engine.adapters import tables
from engine.bootstrap import Phasegate
from engine.domain.drafts import MAX_DRAFT_BYTES
from engine.services import definitions, drafts, instances, tasks, users
from tests.api_support import GATED_FILES, PASSWORD, PREPARED
from tests.test_pages import Browser, html

TEAM_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Plan the team",
    "type": "object",
    "required": ["team", "checklist"],
    "properties": {
        "team": {"type": "array", "title": "Team members", "minItems": 1, "items": {
            "type": "object", "required": ["name", "role"], "properties": {
                "name": {"type": "string", "title": "Name", "minLength": 1},
                "role": {"type": "string", "title": "Role", "enum": ["lead", "member"]},
                "share": {"type": "number", "title": "Share (%)", "minimum": 0, "maximum": 100}}}},
        "tags": {"type": "array", "title": "Tags", "maxItems": 2, "items": {"type": "string"}},
        "checklist": {"type": "object", "title": "Checklist", "required": ["budget_checked"], "properties": {
            "budget_checked": {"type": "boolean", "title": "The budget covers the team", "const": True}}},
    },
}
TEAM_FILES = {
    "team.bpmn": """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="team_defs" targetNamespace="http://phasegate.test/team">
  <bpmn:process id="team" name="Team planning" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="plan" name="Plan the team" camunda:candidateGroups="planner" camunda:formKey="team_form">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="check" name="Check the plan" camunda:candidateGroups="planner">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="plan"/>
    <bpmn:sequenceFlow id="f2" sourceRef="plan" targetRef="check"/>
    <bpmn:sequenceFlow id="f3" sourceRef="check" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
""",
    "forms/team_form.json": json.dumps(TEAM_FORM),
}


@pytest.fixture
def engine_app(db_url):
    app = Phasegate(db_url)
    users.add_user(app, "admin", ["admin"], password=PASSWORD, exist_ok=True)
    for name in ("eve", "eric"):
        users.add_user(app, name, ["engineer"], password=PASSWORD)
    users.add_user(app, "rita", ["reviewer"], password=PASSWORD)
    users.add_user(app, "ray", ["reviewer"], password=PASSWORD)
    users.add_user(app, "quinn", ["qa_lead"], password=PASSWORD)
    users.add_user(app, "pat", ["planner"], password=PASSWORD)
    definitions.deploy_files(app, GATED_FILES, "admin")
    definitions.deploy_files(app, TEAM_FILES, "admin")
    yield app
    app.dispose()


def signed_in(engine_app, user: str) -> Browser:
    browser = Browser(engine_app)
    browser.sign_in(user)
    return browser


def prepare_task(engine_app) -> int:
    return instances.start(engine_app, "gated", business_key="G-1").tasks[0].id


def plan_task(engine_app) -> int:
    return instances.start(engine_app, "team", business_key="T-1").tasks[0].id


def section(page: str, element_id: str, length: int = 700) -> str:
    """The HTML from the element with `element_id` on, `length` characters of it."""
    start = page.index(f'id="{element_id}"')
    return page[start:start + length]


def draft_rows(engine_app, task_id: int) -> int:
    with engine_app.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(tables.task_draft)
                           .where(tables.task_draft.c.task_id == task_id))


# -- drafts -----------------------------------------------------------------------------------

def test_save_draft_restore_and_discard(engine_app):
    task = prepare_task(engine_app)
    eve = signed_in(engine_app, "eve")
    page = html(eve.get(f"/tasks/{task}"))
    assert f'formaction="/tasks/{task}/draft"' in page and ">Save draft</button>" in page
    assert "Restored your draft" not in page and "Discard draft" not in page

    saved = eve.post(f"/tasks/{task}/draft", {"summary": "Half done", "quality/pass_rate": "ninety",
                                              "checklist/tests_run": "on"})
    assert saved.status_code == 302 and saved.headers["Location"] == f"/tasks/{task}"
    after = html(eve.get(f"/tasks/{task}"))
    assert re.search(r"Draft saved at \d\d:\d\d UTC", after)
    assert "The form shows your draft" in after and "Discard draft" in after
    assert 'value="Half done"' in after and 'value="ninety"' in after  # kept as entered, even invalid
    assert re.search(r'name="checklist/tests_run"[^>]*checked', after)

    reopened = html(eve.get(f"/tasks/{task}"))  # later: no flash, the draft is restored
    assert re.search(r"Restored your draft saved at \d\d:\d\d UTC", reopened)
    assert 'value="Half done"' in reopened and "Draft saved at" not in reopened
    draft = drafts.get_draft(engine_app, task, users_actor(engine_app, "eve"))
    assert draft.data == {"summary": "Half done", "quality": {"pass_rate": "ninety", "open_blockers": None},
                          "test_report": None, "checklist": {"tests_run": True}}

    discarded = eve.post(f"/tasks/{task}/draft/discard")
    assert discarded.status_code == 302
    fresh = html(eve.get(f"/tasks/{task}"))
    assert "Draft discarded" in fresh and 'value="Half done"' not in fresh and "Restored your draft" not in fresh
    assert draft_rows(engine_app, task) == 0
    assert tasks.get_task(engine_app, task).state == "ready"


def users_actor(engine_app, name: str):
    from engine.services import auth

    return auth.authenticate(engine_app, session_user=name)


def test_a_draft_is_private_to_its_author(engine_app):
    task = prepare_task(engine_app)
    eve = signed_in(engine_app, "eve")
    eve.get(f"/tasks/{task}")
    eve.post(f"/tasks/{task}/draft", {"summary": "eve's secret plan"})
    eric = signed_in(engine_app, "eric")  # an engineer too: may work on the same task
    page = html(eric.get(f"/tasks/{task}"))
    assert "eve's secret plan" not in page and "Restored your draft" not in page
    assert drafts.get_draft(engine_app, task, users_actor(engine_app, "eric")) is None
    rita = signed_in(engine_app, "rita")  # not an engineer: not even the task
    assert rita.get(f"/tasks/{task}").status_code == 403
    assert rita.post(f"/tasks/{task}/draft", {"summary": "x"}).status_code == 403
    assert drafts.get_draft(engine_app, task, users_actor(engine_app, "eve")).data["summary"] == "eve's secret plan"


def test_drafts_are_deleted_when_the_task_is_completed(engine_app):
    task = prepare_task(engine_app)
    eve = signed_in(engine_app, "eve")
    eve.get(f"/tasks/{task}")
    eve.post(f"/tasks/{task}/draft", {"summary": "draft"})
    eric = signed_in(engine_app, "eric")
    eric.get(f"/tasks/{task}")
    eric.post(f"/tasks/{task}/draft", {"summary": "another draft"})
    assert draft_rows(engine_app, task) == 2
    events_before = len(instances.history(engine_app, tasks.get_task(engine_app, task).instance_id))
    assert events_before == 1  # started: drafts are not in the event log

    done = eve.post(f"/tasks/{task}", {"summary": "Release 1.2", "quality/pass_rate": "0.97",
                                       "quality/open_blockers": "0", "checklist/tests_run": "on"})
    assert done.status_code == 302, html(done)
    assert tasks.get_task(engine_app, task).state == "completed"
    assert draft_rows(engine_app, task) == 0  # everyone's
    assert eve.post(f"/tasks/{task}/draft", {"summary": "too late"}).status_code == 200  # refused, shown
    assert draft_rows(engine_app, task) == 0


def test_a_draft_too_large_is_refused_with_a_clear_message(engine_app):
    task = prepare_task(engine_app)
    eve = signed_in(engine_app, "eve")
    eve.get(f"/tasks/{task}")
    big = "x" * (MAX_DRAFT_BYTES + 10)
    refused = eve.post(f"/tasks/{task}/draft", {"summary": big})
    assert refused.status_code == 200
    assert "Your draft was not saved: the draft is too large" in html(refused) and "at most 256 KiB" in html(refused)
    assert draft_rows(engine_app, task) == 0
    autosave = eve.post(f"/tasks/{task}/draft", {"summary": big}, headers={"HX-Request": "true"})
    assert autosave.status_code == 200 and html(autosave).startswith("Draft not saved: the draft is too large")


def test_autosave_answers_with_the_status_line_only(engine_app):
    task = prepare_task(engine_app)
    eve = signed_in(engine_app, "eve")
    page = html(eve.get(f"/tasks/{task}"))
    form = page[page.index('class="taskform"') - 120:page.index('class="taskform"') + 400]
    assert f'hx-post="/tasks/{task}/draft"' in form and 'hx-trigger="change delay:1s"' in form
    assert 'hx-target="#draft-status"' in form and 'id="draft-status"' in page
    saved = eve.post(f"/tasks/{task}/draft", {"summary": "typed"}, headers={"HX-Request": "true"})
    assert saved.status_code == 200 and re.fullmatch(r"Draft saved at \d\d:\d\d UTC\.", html(saved))
    assert drafts.get_draft(engine_app, task, users_actor(engine_app, "eve")).data["summary"] == "typed"
    tasks.claim(engine_app, task, "eric")
    refused = eve.post(f"/tasks/{task}/draft", {"summary": "more"}, headers={"HX-Request": "true"})
    assert refused.status_code == 200 and "Draft not saved" in html(refused) and "claimed by" in html(refused)


def test_the_page_of_a_finished_task_offers_no_draft(engine_app):
    task = prepare_task(engine_app)
    tasks.complete(engine_app, task, "eve", PREPARED)
    page = html(signed_in(engine_app, "eve").get(f"/tasks/{task}"))
    assert "Save draft" not in page and "forms.js" not in page


# -- array editor -----------------------------------------------------------------------------

def test_the_array_editor_without_javascript(engine_app):
    task = plan_task(engine_app)
    pat = signed_in(engine_app, "pat")
    page = html(pat.get(f"/tasks/{task}"))
    assert 'name="team/0/name"' in page and 'name="team/1/name"' not in page  # minItems 1: one row
    assert '<label for="f-team-0-name" class="cell-label">Name<span class="sr-only">, row <span class="row-number">1</span>' in page
    assert re.search(r'<select id="f-team-0-role" name="team/0/role"', page)  # enum in a row: a select
    assert 'value="remove:team:0"' in page and re.search(r'value="remove:team:0"[^>]*disabled', page)
    assert 'value="add:team"' in page and 'value="add:tags"' in page and "No rows yet." in page
    assert '<template class="row-template">' in page and 'name="team/__row__/name"' in page
    assert '<script src="/static/forms.js" defer></script>' in page

    added = pat.post(f"/tasks/{task}", {"_row": "team/0", "team/0/name": "Ann", "team/0/role": "lead",
                                       "team/0/share": "lots", "_array_action": "add:team"})
    body = html(added)
    assert added.status_code == 200
    assert 'value="Ann"' in body and 'value="lots"' in body and re.search(r'<option value="lead" selected>', body)
    assert re.search(r'id="f-team-1-name" name="team/1/name"[^>]*autofocus', body)
    assert 'class="error"' not in body and "Please correct" not in body  # no validation on this round trip
    assert not re.search(r'value="remove:team:0"[^>]*disabled', body)  # two rows: either may go

    removed = pat.post(f"/tasks/{task}", {"_row": ["team/0", "team/1"], "team/0/name": "Ann", "team/1/name": "Bob",
                                         "team/1/role": "member", "_array_action": "remove:team:0"})
    body = html(removed)
    assert 'value="Ann"' not in body and re.search(r'id="f-team-0-name" name="team/0/name"[^>]*value="Bob"', body)
    assert 'name="team/1/name"' not in body and re.search(r'value="add:team"[^>]*autofocus', body)

    tags = {"_row": ["team/0", "tags/0", "tags/1"], "team/0/name": "Ann", "tags/0": "crm", "tags/1": "erp"}
    full = html(pat.post(f"/tasks/{task}", {**tags, "_array_action": "add:tags"}))
    assert 'name="tags/2"' not in full and re.search(r'value="add:tags"[^>]*disabled', full)  # maxItems 2
    assert "At most 2 rows." in full
    assert tasks.get_task(engine_app, task).state == "ready"


def test_array_rows_are_submitted_as_lists(engine_app):
    task = plan_task(engine_app)
    pat = signed_in(engine_app, "pat")
    pat.get(f"/tasks/{task}")
    done = pat.post(f"/tasks/{task}", {
        "_row": ["team/0", "team/1", "team/2", "tags/0"], "team/0/name": "Ann", "team/0/role": "lead",
        "team/0/share": "60", "team/1/name": "", "team/2/name": "Bob", "team/2/role": "member", "tags/0": "crm",
        "checklist/budget_checked": "on"})
    assert done.status_code == 302, html(done)
    data = instances.show(engine_app, tasks.get_task(engine_app, task).instance_id).data
    assert data["team"] == [{"name": "Ann", "role": "lead", "share": 60}, {"name": "Bob", "role": "member"}]
    assert data["tags"] == ["crm"]


def test_array_errors_are_shown_next_to_the_item_field(engine_app):
    task = plan_task(engine_app)
    pat = signed_in(engine_app, "pat")
    pat.get(f"/tasks/{task}")
    bad = pat.post(f"/tasks/{task}", {"_row": ["team/0", "team/1"], "team/0/name": "Ann", "team/0/role": "lead",
                                     "team/1/name": "Bob", "team/1/share": "150", "checklist/budget_checked": "on"})
    body = html(bad)
    assert bad.status_code == 200 and "Please correct the marked fields" in body
    role = section(body, "f-team-1-role-err", 200)
    assert "&#39;role&#39; is a required property" in role
    share_cell = body[body.index('id="f-team-1-share"'):]
    assert "150 is greater than the maximum of 100" in share_cell[:700]
    assert 'aria-describedby="f-team-1-share-err' in body
    assert 'value="Bob"' in body and 'value="150"' in body
    top = body[body.index('id="form-error"'):body.index('class="layout"')]
    assert "team/1" not in top  # nothing left over for the list above the form

    empty = html(pat.post(f"/tasks/{task}", {"_row": "team/0", "team/0/name": "", "checklist/budget_checked": "on"}))
    assert "add at least 1 row" in section(empty, "f-team-err", 120)
    assert tasks.get_task(engine_app, task).state == "ready"


def test_a_form_checklist_item_left_unticked_is_named_next_to_it(engine_app):
    task = plan_task(engine_app)
    pat = signed_in(engine_app, "pat")
    page = html(pat.get(f"/tasks/{task}"))
    assert '<fieldset class="group checklist" id="f-checklist">' in page
    bad = html(pat.post(f"/tasks/{task}", {"_row": "team/0", "team/0/name": "Ann", "team/0/role": "lead"}))
    assert "True was expected" in section(bad, "f-checklist-budget_checked-err", 120)


# -- the gate checklist and criteria ----------------------------------------------------------

def test_the_gate_checklist_is_ticked_on_the_task_before_the_gate(engine_app):
    task = prepare_task(engine_app)
    eve = signed_in(engine_app, "eve")
    page = html(eve.get(f"/tasks/{task}"))
    checklist = section(page, "f-checklist", 900)
    assert "<legend>Checklist</legend>" in checklist and "“Quality review” does not open" in checklist
    assert '<input id="f-checklist-tests_run" name="checklist/tests_run" type="checkbox">' in checklist
    assert '<label for="f-checklist-tests_run">The full regression suite ran on the reviewed build.' in checklist
    assert "Before “Quality review” opens" in page and "At least 95% of the tests pass" in page

    valid = {"summary": "Release 1.2", "quality/pass_rate": "0.97", "quality/open_blockers": "0"}
    unticked = html(eve.post(f"/tasks/{task}", valid))
    assert "Please correct the marked fields" in unticked
    item = section(unticked, "f-checklist-tests_run", 500)
    assert 'aria-invalid="true"' in item and 'aria-describedby="f-checklist-tests_run-err"' in item
    assert "not confirmed: The full regression suite ran on the reviewed build." in section(
        unticked, "f-checklist-tests_run-err", 200)
    top = unticked[unticked.index('id="form-error"'):unticked.index('class="layout"')]
    assert "checklist" not in top  # shown at the item, not in the list above the form
    assert 'value="Release 1.2"' in unticked

    low = html(eve.post(f"/tasks/{task}", {**valid, "quality/pass_rate": "0.5", "checklist/tests_run": "on"}))
    assert "quality.pass_rate = 0.5" in section(low, "criterion-quality_bar", 400)
    assert re.search(r'name="checklist/tests_run"[^>]*checked', low)

    done = eve.post(f"/tasks/{task}", {**valid, "checklist/tests_run": "on"})
    assert done.status_code == 302
    assert tasks.get_task(engine_app, task).state == "completed"


def test_an_approval_shows_the_checklist_as_confirmed(engine_app):
    task = prepare_task(engine_app)
    tasks.complete(engine_app, task, "eve", PREPARED)
    [review] = tasks.list_tasks(engine_app, user="rita")
    page = html(signed_in(engine_app, "rita").get(f"/tasks/{review.id}"))
    gate = page[page.index('class="gate"'):page.index("Decisions so far")]
    assert "<h4>Checklist</h4>" in gate
    assert re.search(r'<span class="ok">confirmed</span> The full regression suite ran on the reviewed build\.', gate)
    assert "Save draft" not in page and "f-checklist" not in page  # a decision, not the form

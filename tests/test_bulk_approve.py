"""Bulk approval of gate approvals: each task decided like a single decision in its own unit of
work, gates needing a signature or approval forms with required fields skipped, a report per
task — the service, the API and the inbox page (SQLite and PostgreSQL, `db_url`).

Models: tests/models/gated.bpmn (its review gate asks for a signature) and two variants made
here: `simple_gated` (no signature) and `formed_gated` (no signature, but the approval form
requires review notes).
"""
from __future__ import annotations

import json

import pytest

from engine.bootstrap import Phasegate
from engine.domain.errors import InvalidInput
from engine.services import definitions, gates, instances, tasks, users
from tests.api_support import GATED_FILES, PASSWORD, PREPARED, Api
from tests.test_pages import Browser, html

PEOPLE = {"admin": ["admin"], "eve": ["engineer"], "rita": ["reviewer"], "ray": ["reviewer"], "quinn": ["qa_lead"],
          "audrey": ["auditor"]}
SIGNATURE = "    signature:\n      meaning: Reviewed; I confirm the work meets the quality bar.\n"


def variant(key: str, *, required_form: bool = False) -> dict[str, str]:
    """gated's files as process `key` whose review gate asks for no signature; with `required_form`
    its approval form requires a field."""
    assert SIGNATURE in GATED_FILES["gated.gates.yaml"]
    bpmn = GATED_FILES["gated.bpmn"].replace('<bpmn:process id="gated" name="Gated work"',
                                             f'<bpmn:process id="{key}" name="{key}"')
    gates_yaml = GATED_FILES["gated.gates.yaml"].replace("process: gated", f"process: {key}").replace(SIGNATURE, "")
    files = {f"{key}.bpmn": bpmn, f"{key}.gates.yaml": gates_yaml,
             "forms/gated_prepare.json": GATED_FILES["forms/gated_prepare.json"],
             "forms/gated_review.json": GATED_FILES["forms/gated_review.json"]}
    if required_form:
        files[f"{key}.bpmn"] = bpmn.replace('camunda:formKey="gated_review"', 'camunda:formKey="review_required"')
        form = json.loads(GATED_FILES["forms/gated_review.json"])
        form["required"] = ["review_notes"]
        files["forms/review_required.json"] = json.dumps(form)
    return files


@pytest.fixture
def app(db_url):
    engine_app = Phasegate(db_url)
    for name, roles in PEOPLE.items():
        users.add_user(engine_app, name, roles, password=PASSWORD, exist_ok=True)
    for files in (GATED_FILES, variant("simple_gated"), variant("formed_gated", required_form=True)):
        definitions.deploy_files(engine_app, files, "admin")
    yield engine_app
    engine_app.dispose()


def open_gate(app, key: str, business_key: str) -> dict:
    """An instance of `key` with its review gate open: {instance, reviewer, qa_lead} task ids."""
    instance = instances.start(app, key, business_key=business_key)
    tasks.complete(app, instance.tasks[0].id, "eve", PREPARED)
    open_tasks = instances.show(app, instance.id).tasks
    return {"instance": instance.id, "reviewer": next(t.id for t in open_tasks if t.role == "reviewer"),
            "qa_lead": next(t.id for t in open_tasks if t.role == "qa_lead"), "prepare": instance.tasks[0].id}


def decisions_of(app, instance_id):
    return [d for g in gates.gates_view(app, instance_id) for d in g["decisions"]]


def test_a_mix_is_reported_task_by_task(app):
    simple = open_gate(app, "simple_gated", "S-1")
    signed = open_gate(app, "gated", "G-1")
    formed = open_gate(app, "formed_gated", "F-1")
    other = open_gate(app, "simple_gated", "S-2")
    ids = [simple["reviewer"], signed["reviewer"], formed["reviewer"], other["qa_lead"], simple["prepare"], 99999,
           simple["reviewer"]]
    results = gates.decide_many(app, ids, "rita", comment="  looks good  ")
    assert [r["task"] for r in results] == ids[:-1]  # in order, a duplicate once
    by_task = {r["task"]: r for r in results}

    ok = by_task[simple["reviewer"]]
    assert (ok["ok"], ok["status"], ok["gate"], ok["round"]) == (True, "approved", "review_gate", 1)
    assert ok["decided"] is False  # one approval of a quorum of 2
    assert (ok["instance"], ok["business_key"], ok["name"]) == (simple["instance"], "S-1", "Quality review (reviewer)")

    skipped = by_task[signed["reviewer"]]
    assert (skipped["ok"], skipped["status"], skipped["code"]) == (False, "skipped", "not_simple")
    assert "requires an electronic signature" in skipped["error"] and skipped["gate"] == "review_gate"
    form = by_task[formed["reviewer"]]
    assert form["status"] == "skipped" and "form 'review_required' requires review_notes" in form["error"]

    not_allowed = by_task[other["qa_lead"]]
    assert (not_allowed["status"], not_allowed["code"]) == ("failed", "forbidden")
    assert not_allowed["error"] == "rita may not decide gate 'review_gate': not an approver of this gate"
    not_approval = by_task[simple["prepare"]]
    assert (not_approval["status"], not_approval["code"]) == ("failed", "conflict")
    unknown = by_task[99999]
    assert (unknown["status"], unknown["code"], unknown["error"]) == ("failed", "not_found", "unknown task 99999")

    # only the simple approval was recorded, with the common comment
    [decision] = decisions_of(app, simple["instance"])
    assert (decision["user"], decision["outcome"], decision["comment"]) == ("rita", "go", "looks good")
    assert decisions_of(app, signed["instance"]) == [] and decisions_of(app, formed["instance"]) == []


def test_one_refusal_rolls_nothing_else_back_and_a_bulk_decision_can_decide_the_gate(app):
    first = open_gate(app, "simple_gated", "S-1")
    second = open_gate(app, "simple_gated", "S-2")
    results = gates.decide_many(app, [first["reviewer"], first["qa_lead"], second["reviewer"]], "rita")
    assert [r["status"] for r in results] == ["approved", "failed", "approved"]
    assert len(decisions_of(app, first["instance"])) == 1 and len(decisions_of(app, second["instance"])) == 1
    # the same approver again: one vote per person, checked as for a single decision
    again = gates.decide_many(app, [first["reviewer"]], "rita")
    assert again[0]["status"] == "failed" and again[0]["code"] in ("forbidden", "conflict")
    # ray's approvals make the quorum of 2: each gate is decided and its instance moves on
    decided = gates.decide_many(app, [first["reviewer"], second["reviewer"]], "ray")
    assert [(r["status"], r["decided"], r["outcome"]) for r in decided] == [("approved", True, "go")] * 2
    assert instances.show(app, first["instance"]).state == "completed"
    assert instances.show(app, second["instance"]).state == "completed"


def test_bulk_input_is_checked_as_a_whole(app):
    gate = open_gate(app, "simple_gated", "S-1")
    with pytest.raises(InvalidInput, match="only approve") as refused:
        gates.decide_many(app, [gate["reviewer"]], "rita", outcome="recycle")
    assert refused.value.fields == {"outcome": ["only go"]}
    with pytest.raises(InvalidInput, match="unknown outcome"):
        gates.decide_many(app, [gate["reviewer"]], "rita", outcome="maybe")
    with pytest.raises(InvalidInput, match="at least one"):
        gates.decide_many(app, [], "rita")
    with pytest.raises(InvalidInput, match="at most 100"):
        gates.decide_many(app, list(range(1, 102)), "rita")
    assert gates.decide_many(app, [gate["reviewer"]], "rita", outcome="approve")[0]["status"] == "approved"


def test_auditors_cannot_bulk_approve(app):
    gate = open_gate(app, "simple_gated", "S-1")
    result = gates.decide_many(app, [gate["reviewer"]], "audrey")  # the service checks each task's rules
    assert result[0]["status"] == "failed" and result[0]["code"] == "forbidden"
    api = Api(app)
    api.add_user("audrey", ["auditor"])
    refused = api.post("/tasks/bulk-decision", "audrey", json={"tasks": [gate["reviewer"]]})
    assert refused.status_code == 403 and refused.get_json()["code"] == "forbidden"
    browser = Browser(app)
    browser.sign_in("audrey")
    page = html(browser.get("/inbox"))
    assert "S-1" in page and 'form="bulk-approve"' not in page and 'id="bulk-approve"' not in page
    assert browser.post("/tasks/bulk-decision", {"task": str(gate["reviewer"])}).status_code == 403
    assert decisions_of(app, gate["instance"]) == []


def test_api_bulk_decision(app):
    simple = open_gate(app, "simple_gated", "S-1")
    signed = open_gate(app, "gated", "G-1")
    api = Api(app)
    api.add_user("rita", ["reviewer"])
    response = api.post("/tasks/bulk-decision", "rita",
                        json={"tasks": [simple["reviewer"], signed["reviewer"], simple["qa_lead"]], "comment": "ok"})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["approved"], body["skipped"], body["failed"]) == (1, 1, 1)
    assert [r["status"] for r in body["results"]] == ["approved", "skipped", "failed"]
    assert body["results"][0]["decided"] is False and body["results"][2]["code"] == "forbidden"
    assert api.post("/tasks/bulk-decision", "rita", json={"tasks": []}).status_code == 422
    bad = api.post("/tasks/bulk-decision", "rita", json={"tasks": [simple["reviewer"]], "outcome": "recycle"})
    assert bad.status_code == 422 and "outcome" in bad.get_json()["details"]["fields"]
    assert api.post("/tasks/bulk-decision", "rita", json={"tasks": ["x"]}).status_code == 422
    assert "/api/v1/tasks/bulk-decision" in api.get("/openapi.json").get_json()["paths"]


def test_bulk_approval_from_the_inbox(app):
    simple = open_gate(app, "simple_gated", "S-1")
    signed = open_gate(app, "gated", "G-1")
    other = open_gate(app, "simple_gated", "S-2")
    browser = Browser(app)
    browser.sign_in("rita")
    page = html(browser.get("/inbox"))
    assert 'id="bulk-approve"' in page and "Approve selected" in page
    for task_id in (simple["reviewer"], signed["reviewer"]):
        assert f'name="task" value="{task_id}" form="bulk-approve"' in page

    nothing = browser.post("/tasks/bulk-decision", {"comment": "x"})
    assert nothing.status_code == 302 and nothing.headers["Location"] == "/inbox"
    assert "Select at least one gate approval" in html(browser.get("/inbox"))

    report = browser.post("/tasks/bulk-decision", {"task": [str(simple["reviewer"]), str(signed["reviewer"]),
                                                            str(other["qa_lead"])], "comment": "fine"})
    assert report.status_code == 200
    body = html(report)
    assert "1 approved, 1 skipped, 1 refused." in body
    row = body[body.index(f'data-task="{simple["reviewer"]}"'):]
    assert "Approved" in row[:900] and "the gate is still open" in row[:900]
    row = body[body.index(f'data-task="{signed["reviewer"]}"'):]
    assert "Skipped" in row[:900] and "requires an electronic signature" in row[:900]
    row = body[body.index(f'data-task="{other["qa_lead"]}"'):]
    assert "Refused" in row[:900] and "may not decide" in row[:900]
    # the approved one left rita's inbox; the signed one stays for its own page
    inbox = html(browser.get("/inbox"))
    assert "S-1" not in inbox and "G-1" in inbox


def test_no_bulk_form_without_approvals_on_the_page(app):
    instances.start(app, "simple_gated", business_key="S-1")  # waiting on an engineer: no gate yet
    browser = Browser(app)
    browser.sign_in("eve")
    page = html(browser.get("/inbox"))
    assert "S-1" in page and 'id="bulk-approve"' not in page

"""GET/PUT/DELETE /api/v1/tasks/<id>/draft (SQLite and PostgreSQL): a draft is private to its author,
checked for shape and size only, kept out of the event log, and gone once the task is completed.

Model: tests/models/gated.bpmn (`prepare`, form gated_prepare: summary, quality, test_report).
Who may call at all is in tests/test_api_authz.py.
"""
from __future__ import annotations

import pytest

from engine.bootstrap import Phasegate
from engine.domain.drafts import MAX_DRAFT_BYTES
from engine.services import definitions, instances, tasks
from tests.api_support import GATED_FILES, PREPARED, Api


@pytest.fixture
def api(db_url):
    engine_app = Phasegate(db_url)
    client = Api(engine_app)
    client.add_user("admin", ["admin"])
    client.add_user("eve", ["engineer"])
    client.add_user("eric", ["engineer"])
    client.add_user("rita", ["reviewer"])
    client.add_user("audrey", ["auditor"])
    definitions.deploy_files(engine_app, GATED_FILES, "admin")
    yield client
    engine_app.dispose()


def prepare_task(api) -> tuple[int, int]:
    instance = instances.start(api.engine, "gated", business_key="G-1")
    return instance.id, instance.tasks[0].id


def put(api, task: int, data, as_="eve"):
    return api.call("PUT", f"/tasks/{task}/draft", as_, json={"data": data})


def test_put_get_replace_and_delete_my_draft(api):
    instance, task = prepare_task(api)
    assert api.get(f"/tasks/{task}/draft", as_="eve").status_code == 404

    half = {"summary": "half", "quality": {"pass_rate": "not a number yet"}}  # not validated: a draft
    saved = put(api, task, half)
    assert saved.status_code == 200
    body = saved.get_json()
    assert (body["task"], body["user"], body["data"]) == (task, "eve", half) and body["saved_at"]
    assert api.get(f"/tasks/{task}/draft", as_="eve").get_json()["data"] == half

    assert put(api, task, {"summary": "more"}).status_code == 200  # replaces it
    assert api.get(f"/tasks/{task}/draft", as_="eve").get_json()["data"] == {"summary": "more"}
    assert [e.type for e in instances.history(api.engine, instance)] == ["started"]  # no event for drafts

    deleted = api.delete(f"/tasks/{task}/draft", as_="eve")
    assert deleted.status_code == 200 and deleted.get_json() == {"task": task, "deleted": True}
    assert api.get(f"/tasks/{task}/draft", as_="eve").status_code == 404
    assert api.delete(f"/tasks/{task}/draft", as_="eve").get_json()["code"] == "not_found"


def test_a_draft_is_private_to_its_author(api):
    _instance, task = prepare_task(api)
    put(api, task, {"summary": "eve's"})
    put(api, task, {"summary": "eric's"}, as_="eric")
    assert api.get(f"/tasks/{task}/draft", as_="eve").get_json()["data"] == {"summary": "eve's"}
    assert api.get(f"/tasks/{task}/draft", as_="eric").get_json()["data"] == {"summary": "eric's"}
    assert api.get(f"/tasks/{task}/draft", as_="admin").status_code == 404  # admins read no one else's
    for outsider in ("rita", "audrey"):  # not the task's role / read-only
        assert api.get(f"/tasks/{task}/draft", as_=outsider).status_code == 403
        assert put(api, task, {"summary": "x"}, as_=outsider).status_code == 403
    assert api.delete(f"/tasks/{task}/draft", as_="eric").status_code == 200
    assert api.get(f"/tasks/{task}/draft", as_="eve").status_code == 200  # eve's is still there


def test_only_the_form_fields_and_a_bounded_size(api):
    _instance, task = prepare_task(api)
    unknown = put(api, task, {"summary": "ok", "salary": 1})
    assert unknown.status_code == 422
    assert unknown.get_json()["details"]["fields"] == {"salary": ["not a field of the form"]}
    assert put(api, task, {"checklist": {"tests_run": True}}).status_code == 200  # the gate's confirmations
    too_big = put(api, task, {"summary": "x" * MAX_DRAFT_BYTES})
    assert too_big.status_code == 422
    error = too_big.get_json()
    assert error["code"] == "invalid_input" and "too large" in error["message"] and "256 KiB" in error["message"]
    not_an_object = api.call("PUT", f"/tasks/{task}/draft", "eve", json={"data": ["a"]})
    assert not_an_object.status_code == 422
    assert api.call("PUT", f"/tasks/{task}/draft", "eve", json={}).status_code == 422  # data is required
    assert api.get(f"/tasks/{task}/draft", as_="eve").get_json()["data"] == {"checklist": {"tests_run": True}}


def test_drafts_need_a_task_one_may_work_on_now(api):
    _instance, task = prepare_task(api)
    put(api, task, {"summary": "before"}, as_="eric")
    tasks.claim(api.engine, task, "eve")
    claimed = put(api, task, {"summary": "mine"}, as_="eric")
    assert claimed.status_code == 403 and "claimed by 'eve'" in claimed.get_json()["message"]
    assert put(api, 999, {}).status_code == 404

    assert put(api, task, {"summary": "mine"}).status_code == 200
    tasks.complete(api.engine, task, "eve", PREPARED)
    for user in ("eve", "eric"):
        assert api.get(f"/tasks/{task}/draft", as_=user).status_code == 404  # deleted with the completion
    done = put(api, task, {"summary": "late"})
    assert done.status_code == 409 and "not ready" in done.get_json()["message"]

    [approval] = [t for t in tasks.list_tasks(api.engine, user="rita")]
    api.add_user("ray", ["reviewer"])
    gate = put(api, approval.id, {}, as_="ray")
    assert gate.status_code == 409 and "gate approval" in gate.get_json()["message"]

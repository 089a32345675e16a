"""The REST API end to end through Flask's test client, on SQLite and PostgreSQL (`db_url`).

Users call with real personal API tokens (tests/api_support.py). Models: tests/models/loops.bpmn
(seq_loop: build → test → review, roles builder/tester/reviewer; par_loop) and
tests/models/gated.bpmn with its gates file and forms (prepare by engineer → gate review_gate:
2 reviewers and a qa_lead, quorum 2, signature).
"""
from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.adapters import tables
from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.services import auth, definitions, gates, instances, tasks
from tests.api_support import GATED_FILES, LANE_START_FILES, LOOPS_FILES, MODELS, PASSWORD, PREPARED, Api
from tests.clock_support import frozen_at

ERROR_KEYS = {"code", "message", "details"}
WEDNESDAY = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def frozen():
    yield from frozen_at(WEDNESDAY)


@pytest.fixture
def api(db_url, frozen):
    engine_app = Phasegate(db_url)
    client = Api(engine_app)
    client.add_user("admin", ["admin"])
    client.add_user("dora", ["designer"])
    client.add_user("audrey", ["auditor"])
    client.add_user("bob", ["builder"])
    client.add_user("bill", ["builder"])
    client.add_user("tina", ["tester"])
    client.add_user("eve", ["engineer"])
    yield client
    engine_app.dispose()


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == ERROR_KEYS and body["code"] == code, body
    return body


def ids(response) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [t["id"] for t in response.get_json()]


def row_counts(engine_app: Phasegate) -> dict[str, int]:
    with engine_app.engine.connect() as conn:
        return {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in tables.metadata.sorted_tables}


def set_due(engine_app: Phasegate, task_id: int, due: datetime | None) -> None:
    with engine_app.engine.begin() as conn:
        conn.execute(sa.update(tables.human_task).where(tables.human_task.c.id == task_id).values(due=due))


# ------------------------------------------------------------------------------ definitions


def test_deploy_multipart_json_and_zip_then_list(api):
    upload = api.post("/definitions", "dora", content_type="multipart/form-data",
                      data={"file": (io.BytesIO(LOOPS_FILES["loops.bpmn"].encode()), "loops.bpmn")})
    assert upload.status_code == 200, upload.get_json()
    assert sorted((d["key"], d["version"], d["new"]) for d in upload.get_json()["deployed"]) == [
        ("par_loop", 1, True), ("seq_loop", 1, True)]

    again = api.post("/definitions", "dora", json={"files": LOOPS_FILES})
    assert sorted((d["key"], d["new"]) for d in again.get_json()["deployed"]) == [("par_loop", False),
                                                                                  ("seq_loop", False)]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, text in GATED_FILES.items():
            zipped.writestr(f"package/{name}", text)
        zipped.writestr("package/README.md", "skipped")
    zipped_upload = api.post("/definitions", "admin", content_type="multipart/form-data",
                             data={"file": (io.BytesIO(archive.getvalue()), "gated.zip")})
    assert zipped_upload.status_code == 200, zipped_upload.get_json()
    [gated] = zipped_upload.get_json()["deployed"]
    assert (gated["key"], gated["new"], gated["gates"]["new"]) == ("gated", True, True)

    listed = api.get("/definitions", "bob")
    assert listed.get_json() == [d.to_dict() for d in definitions.list_definitions(api.engine)]
    assert [d["key"] for d in api.get("/definitions?latest=true", "bob").get_json()] == ["gated", "par_loop",
                                                                                         "seq_loop"]
    assert api.get("/definitions/seq_loop", "bob").get_json()["version"] == 1
    assert api.get("/definitions/seq_loop/1", "bob").get_json()["key"] == "seq_loop"
    error_of(api.get("/definitions/seq_loop/2", "bob"), 404, "not_found")
    error_of(api.get("/definitions/nope", "bob"), 404, "not_found")
    with api.engine.engine.connect() as conn:  # the deployment names the upload, not a temporary folder
        assert conn.scalar(sa.select(tables.deployment.c.source).order_by(tables.deployment.c.id)) == "upload: loops.bpmn"


def test_deploy_refusals(api):
    broken = api.post("/definitions", "dora", json={"files": {"bad.bpmn": "<not-bpmn"}})
    body = error_of(broken, 422, "model_rejected")
    assert body["details"]["issues"][0]["path"] == "bad.bpmn"
    unsafe = error_of(api.post("/definitions", "dora", json={"files": {"../x.bpmn": "x", "notes.txt": "x"}}),
                      422, "invalid_input")
    assert set(unsafe["details"]["fields"]) == {"files/../x.bpmn", "files/notes.txt"}
    error_of(api.post("/definitions", "dora", json={"files": {}}), 422, "invalid_input")
    unknown = error_of(api.post("/definitions", "dora", json={"files": LOOPS_FILES, "extra": 1}), 422, "invalid_input")
    assert unknown["details"]["fields"] == {"extra": ["Unknown field."]}
    error_of(api.post("/definitions", "dora", data="{oops", content_type="application/json"), 422, "invalid_input")
    malformed = error_of(api.post("/instances", "admin", data="{oops", content_type="application/json"),
                         400, "bad_request")
    assert malformed["details"] == {"fields": {"(body)": ["Invalid JSON body."]}}
    assert error_of(api.post("/instances", "admin", json=[1]), 422, "invalid_input")["details"] == {
        "fields": {"(body)": ["Invalid input type."]}}
    assert row_counts(api.engine)["definition"] == 0


# ------------------------------------------------------------------------------ instances and tasks


@pytest.fixture
def loops(api):
    definitions.deploy_files(api.engine, LOOPS_FILES, "admin")
    first = api.post("/instances", "admin", json={"key": "seq_loop", "business_key": "CRM-alpha",
                                                  "data": {"i": 0, "n": 2}})
    assert first.status_code == 201, first.get_json()
    second = api.post("/instances", "admin", json={"key": "par_loop", "business_key": "OPS-beta",
                                                   "data": {"i": 0, "n": 1}})
    return first.get_json(), second.get_json()


def test_start_returns_the_instance_shape(api, loops):
    first, _second = loops
    assert first == instances.show(api.engine, first["id"]).to_dict()
    assert (first["state"], first["business_key"], [t["element_id"] for t in first["tasks"]]) == (
        "running", "CRM-alpha", ["build"])
    error_of(api.post("/instances", "admin", json={"key": "nope"}), 404, "not_found")
    bad = error_of(api.post("/instances", "admin", json={"key": "seq_loop", "data": [1]}), 422, "invalid_input")
    assert "data" in bad["details"]["fields"]


def test_show_history_and_list_match_the_cli_shapes(api, loops):
    first, second = loops
    shown = api.get(f"/instances/{first['id']}?history=true", "audrey")
    assert shown.status_code == 200
    expected = instances.show(api.engine, first["id"]).to_dict()  # as `phasegate show --history --json`
    expected["phases"] = instances.phases(api.engine, first["id"])
    expected["gates"] = gates.gates_view(api.engine, first["id"])
    expected["history"] = [e.to_dict() for e in instances.history(api.engine, first["id"])]
    assert shown.get_json() == expected
    assert "history" not in api.get(f"/instances/{first['id']}", "bob").get_json()
    assert api.get(f"/instances/{first['id']}/history", "bob").get_json() == expected["history"]
    listed = api.get("/instances", "audrey").get_json()
    assert [i["id"] for i in listed] == [second["id"], first["id"]]
    assert listed == [i.to_dict() for i in instances.list_instances(api.engine)]
    assert [i["id"] for i in api.get("/instances?key=seq_loop&state=running", "admin").get_json()] == [first["id"]]
    assert [i["id"] for i in api.get("/instances?per_page=1&page=2", "admin").get_json()] == [first["id"]]
    error_of(api.get("/instances?state=sleeping", "admin"), 422, "invalid_input")


def test_my_tasks_filters_sorting_paging_and_count(api, loops, frozen):
    first, second = loops
    build = first["tasks"][0]["id"]
    p_build = second["tasks"][0]["id"]
    assert ids(api.get("/tasks", "bob")) == [build, p_build]
    assert ids(api.get("/tasks", "tina")) == []
    assert ids(api.get("/tasks", "admin")) == [build, p_build]  # admins and auditors see every task
    assert ids(api.get("/tasks", "audrey")) == [build, p_build]
    assert ids(api.get("/tasks?process=seq_loop", "bob")) == [build]
    assert ids(api.get("/tasks?q=crm", "bob")) == [build]  # business key, case-insensitive substring
    assert ids(api.get(f"/tasks?q={second['id']}", "bob")) == [p_build]  # or instance id
    assert ids(api.get("/tasks?role=builder", "bob")) == [build, p_build]
    assert ids(api.get("/tasks?role=tester", "bob")) == []
    assert ids(api.get("/tasks?phase=Nowhere", "bob")) == []

    set_due(api.engine, build, WEDNESDAY + timedelta(days=2))  # Friday: this week
    set_due(api.engine, p_build, WEDNESDAY - timedelta(hours=1))  # overdue, and this week
    assert ids(api.get("/tasks?overdue=true", "bob")) == [p_build]
    assert ids(api.get("/tasks?due_this_week=true", "bob")) == [build, p_build]
    frozen.advance(days=5)  # next Monday: Friday's task is overdue too, nothing is due this week
    assert ids(api.get("/tasks?overdue=true&sort=due", "bob")) == [p_build, build]
    assert ids(api.get("/tasks?due_this_week=true", "bob")) == []
    set_due(api.engine, build, None)
    assert ids(api.get("/tasks?sort=due", "bob")) == [p_build, build]  # no due date: last
    assert ids(api.get("/tasks?sort=age", "bob")) == [build, p_build]
    assert ids(api.get("/tasks?sort=priority", "bob")) == [p_build, build]

    page = api.get("/tasks?per_page=1&page=2", "bob")
    assert ids(page) == [p_build]
    assert (page.headers["X-Total-Count"], page.headers["X-Page"], page.headers["X-Per-Page"]) == ("2", "2", "1")
    assert api.get("/tasks?per_page=1", "bob").headers["X-Total-Count"] == "2"
    assert api.get("/tasks?page=9", "bob").headers["X-Total-Count"] == "2"
    assert api.get("/tasks/count", "bob").get_json() == {"count": 2}
    assert api.get("/tasks/count?process=par_loop&overdue=1", "bob").get_json() == {"count": 1}
    assert api.get("/tasks/count", "tina").get_json() == {"count": 0}
    bad = error_of(api.get("/tasks?sort=random&per_page=0&color=red", "bob"), 422, "invalid_input")
    assert set(bad["details"]["fields"]) == {"sort", "per_page", "color"}


def test_roles_are_resolved_at_read_time(api, loops):
    first, _second = loops
    assert api.get("/tasks/count", "tina").get_json() == {"count": 0}
    granted = api.post("/users/tina/roles", "admin", json={"role": "builder"})
    assert granted.status_code == 200 and granted.get_json()["roles"] == ["builder", "tester"]
    assert api.get("/tasks/count", "tina").get_json() == {"count": 2}
    assert api.get(f"/instances/{first['id']}", "tina").status_code == 200
    revoked = api.delete("/users/tina/roles/builder", "admin")
    assert revoked.status_code == 200 and revoked.get_json()["roles"] == ["tester"]
    assert api.get("/tasks/count", "tina").get_json() == {"count": 0}
    error_of(api.get(f"/instances/{first['id']}", "tina"), 403, "forbidden")
    error_of(api.delete("/users/tina/roles/builder", "admin"), 404, "not_found")


def test_claim_conflicts_and_unknown_ids(api, loops):
    first, _second = loops
    build = first["tasks"][0]["id"]
    claimed = api.post(f"/tasks/{build}/claim", "bob")
    assert claimed.status_code == 200 and claimed.get_json()["assignee"] == "bob"
    assert claimed.get_json() == tasks.get_task(api.engine, build).to_dict()
    assert api.post(f"/tasks/{build}/claim", "bob").status_code == 200  # claiming again is harmless
    assert "claimed by 'bob'" in error_of(api.post(f"/tasks/{build}/claim", "bill"), 409, "conflict")["message"]
    assert build not in ids(api.get("/tasks", "bill"))  # left the other builders' list
    error_of(api.post(f"/tasks/{build}/complete", "bill", json={}), 403, "forbidden")
    error_of(api.post(f"/tasks/{build}/claim", "tina"), 403, "forbidden")  # not a builder
    unclaimed = api.post(f"/tasks/{build}/unclaim", "bob")
    assert unclaimed.status_code == 200 and unclaimed.get_json()["assignee"] is None
    error_of(api.post(f"/tasks/{build}/unclaim", "bob"), 409, "conflict")

    done = api.post(f"/tasks/{build}/complete", "bill", json={"data": {"note": "built"}})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["path"][0] == "build" and done.get_json()["data"]["note"] == "built"
    error_of(api.post(f"/tasks/{build}/claim", "bob"), 409, "conflict")  # completed
    error_of(api.post(f"/tasks/{build}/complete", "bob", json={}), 409, "conflict")
    assert api.get(f"/tasks/{build}", "bob").get_json()["state"] == "completed"

    for method, path, body in [
            ("GET", "/tasks/999", None), ("POST", "/tasks/999/claim", None), ("POST", "/tasks/999/unclaim", None),
            ("POST", "/tasks/999/complete", {}), ("POST", "/tasks/999/decision", {"outcome": "go"}),
            ("GET", "/instances/999", None), ("GET", "/instances/999/history", None),
            ("GET", "/instances/999/gates", None), ("GET", "/instances/999/action-items", None),
            ("POST", "/instances/999/cancel", {"reason": "x"}), ("POST", "/instances/999/messages", {"name": "m"}),
            ("POST", "/action-items/999/close", {}), ("DELETE", "/tokens/999", None),
            ("POST", "/users/ghost/roles", {"role": "r"}), ("DELETE", "/users/ghost/roles/r", None),
            ("GET", "/no/such/endpoint", None)]:
        error_of(api.call(method, path, "admin", json=body), 404, "not_found")
    error_of(api.call("PUT", "/tasks/1", "admin"), 405, "method_not_allowed")


def test_cancel_and_messages(api, loops):
    first, _second = loops
    error_of(api.post(f"/instances/{first['id']}/cancel", "admin", json={"reason": "  "}), 422, "invalid_input")
    error_of(api.post(f"/instances/{first['id']}/cancel", "admin", json={}), 422, "invalid_input")
    cancelled = api.post(f"/instances/{first['id']}/cancel", "admin", json={"reason": "budget withdrawn"})
    assert cancelled.status_code == 200
    assert (cancelled.get_json()["state"], cancelled.get_json()["cancel_reason"]) == ("cancelled", "budget withdrawn")
    error_of(api.post(f"/instances/{first['id']}/cancel", "admin", json={"reason": "again"}), 409, "conflict")
    error_of(api.post(f"/instances/{first['id']}/messages", "admin", json={"name": "x"}), 409, "conflict")

    definitions.deploy(api.engine, MODELS / "event_subprocess.bpmn", "admin")
    risky = instances.start(api.engine, "with_risks")
    sent = api.post(f"/instances/{risky.id}/messages", "admin",
                    json={"name": "raise_risk", "data": {"title": "vendor late", "response": "escalate"}})
    assert sent.status_code == 200, sent.get_json()
    assert "assess_risk" in [t["element_id"] for t in sent.get_json()["tasks"]]


# ------------------------------------------------------------------------------ forms and gates


@pytest.fixture
def gated(api):
    for name in ("rita", "ray"):
        api.add_user(name, ["reviewer"], password=PASSWORD)
    api.add_user("quinn", ["qa_lead"], password=PASSWORD)
    definitions.deploy_files(api.engine, GATED_FILES, "admin")
    return instances.start(api.engine, "gated", business_key="G-1")


def test_complete_with_a_form_error_is_422_and_writes_nothing(api, gated):
    prepare = gated.tasks[0].id
    before = row_counts(api.engine)
    history = api.get(f"/instances/{gated.id}/history", "admin").get_json()
    bad = error_of(api.post(f"/tasks/{prepare}/complete", "eve",
                            json={"data": {"summary": "", "quality": {"pass_rate": 2}}}), 422, "invalid_input")
    assert set(bad["details"]["fields"]) == {"summary", "quality/pass_rate", "quality/open_blockers"}
    error_of(api.post(f"/tasks/{prepare}/complete", "eve", json={"data": "text"}), 422, "invalid_input")
    assert row_counts(api.engine) == before
    assert api.get(f"/instances/{gated.id}/history", "admin").get_json() == history
    assert api.get(f"/tasks/{prepare}", "eve").get_json()["state"] == "ready"

    unmet = error_of(api.post(f"/tasks/{prepare}/complete", "eve",
                              json={"data": {**PREPARED, "checklist": {}}}), 422, "invalid_input")
    assert "checklist/tests_run" in unmet["details"]["fields"]  # the gate cannot open: nothing written
    assert row_counts(api.engine) == before

    done = api.post(f"/tasks/{prepare}/complete", "eve", json={"data": PREPARED})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["path"] == ["prepare", "score"]
    assert sorted((t["role"], t["kind"]) for t in done.get_json()["tasks"]) == [("qa_lead", "approval"),
                                                                               ("reviewer", "approval")]


def test_gate_decisions(api, gated):
    prepare = gated.tasks[0].id
    api.post(f"/tasks/{prepare}/complete", "eve", json={"data": PREPARED})
    [review] = ids(api.get("/tasks?gate=review_gate", "rita"))
    assert ids(api.get("/tasks?gate=other_gate", "rita")) == []
    assert api.get("/tasks/count?gate=review_gate", "admin").get_json() == {"count": 2}
    [view] = api.get(f"/instances/{gated.id}/gates", "rita").get_json()
    assert view == gates.gates_view(api.engine, gated.id)[0]
    assert (view["state"], view["eligible"]) == ("open", ["quinn", "ray", "rita"])

    error_of(api.post(f"/tasks/{review}/decision", "rita", json={"outcome": "go"}), 403, "forbidden")  # unsigned
    error_of(api.post(f"/tasks/{review}/decision", "rita", json={"outcome": "go", "password": "wrong"}),
             403, "forbidden")
    error_of(api.post(f"/tasks/{review}/decision", "rita", json={"outcome": "maybe", "password": PASSWORD}),
             422, "invalid_input")
    error_of(api.post(f"/tasks/{review}/decision", "rita", json={"outcome": "recycle", "password": PASSWORD}),
             422, "invalid_input")  # a reason is required
    error_of(api.post(f"/tasks/{review}/decision", "bob", json={"outcome": "go"}), 403, "forbidden")
    error_of(api.post(f"/tasks/{prepare}/decision", "eve", json={"outcome": "go"}), 409, "conflict")  # not a gate

    first = api.post(f"/tasks/{review}/decision", "rita", json={"outcome": "go", "password": PASSWORD})
    assert first.status_code == 200, first.get_json()
    assert (first.get_json()["decided"], first.get_json()["gate"], first.get_json()["instance"]) == (
        False, "review_gate", gated.id)
    assert review not in ids(api.get("/tasks", "rita"))  # decided: it left her list
    error_of(api.post(f"/tasks/{review}/decision", "rita", json={"outcome": "go", "password": PASSWORD}),
             403, "forbidden")  # deciding twice
    second = api.post(f"/tasks/{review}/decision", "ray", json={"outcome": "go", "password": PASSWORD,
                                                                 "comment": "fine"})
    assert second.status_code == 200, second.get_json()
    [after] = api.get(f"/instances/{gated.id}/gates", "audrey").get_json()
    assert [d["user"] for d in after["decisions"]] == ["rita", "ray"]
    assert api.get(f"/instances/{gated.id}/action-items", "rita").get_json() == []


def test_action_items_close_by_owner_or_admin(api, gated):
    prepare = gated.tasks[0].id
    api.post(f"/tasks/{prepare}/complete", "eve", json={"data": PREPARED})
    with api.engine.uow() as uow:
        [gate_row] = uow.gates.for_instance(gated.id)
        uow.gates.add_action_items([{"instance_id": gated.id, "gate_id": gate_row.id, "text": "fix the docs",
                                     "owner": "rita", "state": "open", "created_at": clock.now()},
                                    {"instance_id": gated.id, "gate_id": gate_row.id, "text": "tag it",
                                     "owner": "ray", "state": "open", "created_at": clock.now()}])
        uow.commit()
    items = api.get(f"/instances/{gated.id}/action-items", "rita").get_json()
    assert [(i["text"], i["state"]) for i in items] == [("fix the docs", "open"), ("tag it", "open")]
    error_of(api.post(f"/action-items/{items[0]['id']}/close", "ray", json={}), 403, "forbidden")
    error_of(api.post(f"/action-items/{items[0]['id']}/close", "audrey", json={}), 403, "forbidden")
    closed = api.post(f"/action-items/{items[0]['id']}/close", "rita", json={"note": "done"})
    assert closed.status_code == 200 and (closed.get_json()["state"], closed.get_json()["note"]) == ("closed", "done")
    error_of(api.post(f"/action-items/{items[0]['id']}/close", "rita", json={}), 409, "conflict")
    assert api.post(f"/action-items/{items[1]['id']}/close", "admin", json={}).get_json()["closed_by"] == "admin"


def test_who_may_start(api):
    definitions.deploy_files(api.engine, {**LANE_START_FILES, **GATED_FILES}, "admin")
    started = api.post("/instances", "bob", json={"key": "lane_start"})  # its start event is in the builder lane
    assert started.status_code == 201 and started.get_json()["started_by"] == "bob"
    assert api.get(f"/instances/{started.get_json()['id']}", "bob").status_code == 200  # he takes part
    assert "builder" in error_of(api.post("/instances", "tina", json={"key": "lane_start"}), 403, "forbidden")["message"]
    error_of(api.post("/instances", "eve", json={"key": "gated"}), 403, "forbidden")  # no start role: admins
    error_of(api.post("/instances", "audrey", json={"key": "lane_start"}), 403, "forbidden")
    assert api.post("/instances", "admin", json={"key": "gated"}).status_code == 201


# ------------------------------------------------------------------------------ users, tokens, auth


def test_users_and_roles(api):
    created = api.post("/users", "admin", json={"name": "kim", "display_name": "Kim", "roles": ["Sponsor"],
                                                 "password": "s3cret"})
    assert created.status_code == 201
    assert created.get_json() == {"name": "kim", "display_name": "Kim", "roles": ["Sponsor"], "active": True}
    assert auth.verify_password(api.engine, "kim", "s3cret") and not auth.verify_password(api.engine, "kim", "x")
    error_of(api.post("/users", "admin", json={"name": "kim"}), 409, "conflict")
    error_of(api.post("/users", "admin", json={"name": "bad name!"}), 422, "invalid_input")
    error_of(api.post("/users", "admin", json={}), 422, "invalid_input")
    assert "kim" in [u["name"] for u in api.get("/users", "audrey").get_json()]
    roles = {r["name"]: r["members"] for r in api.get("/roles", "audrey").get_json()}
    assert roles["Sponsor"] == ["kim"] and roles["builder"] == ["bill", "bob"]
    assert "password" not in json.dumps(api.get("/users", "admin").get_json())


def test_tokens_are_hashed_listed_and_revoked(api):
    created = api.post("/tokens", "bob", json={"name": "CI pipeline"})
    assert created.status_code == 201
    token = created.get_json()
    assert token["token"].startswith("pg_") and token["prefix"] == token["token"][:11]
    assert (token["user"], token["name"], token["active"], token["last_used_at"]) == ("bob", "CI pipeline", True, None)
    with api.engine.engine.connect() as conn:
        stored = conn.execute(sa.select(tables.api_token).where(tables.api_token.c.id == token["id"])).one()
    assert stored.token_hash == auth.hash_token(token["token"]) and token["token"] not in str(tuple(stored))

    as_new = {"Authorization": f"Bearer {token['token']}"}
    assert api.get("/me", headers=as_new).get_json()["user"]["name"] == "bob"
    listed = api.get("/tokens", "bob").get_json()
    assert [t["name"] for t in listed] == ["tests", "CI pipeline"]
    assert all("token" not in t for t in listed) and listed[1]["last_used_at"] is not None

    error_of(api.delete(f"/tokens/{token['id']}", "tina"), 403, "forbidden")  # someone else's
    revoked = api.delete(f"/tokens/{token['id']}", "bob")
    assert revoked.status_code == 200 and revoked.get_json()["active"] is False
    error_of(api.get("/me", headers=as_new), 401, "unauthenticated")
    error_of(api.delete(f"/tokens/{token['id']}", "bob"), 404, "not_found")
    other = api.post("/tokens", "tina", json={"name": "x"}).get_json()
    assert api.delete(f"/tokens/{other['id']}", "admin").status_code == 200  # admins revoke anyone's
    error_of(api.post("/tokens", "bob", json={"name": "  "}), 422, "invalid_input")


def test_authentication_failures(api):
    for headers in ({}, {"Authorization": "Bearer pg_nope"}, {"Authorization": "Basic Ym9iOng="},
                    {"Authorization": "Bearer "}, {"Authorization": "Bearer not-a-token"}):
        response = api.get("/tasks", headers=headers)
        error_of(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    api.post("/users/bob/roles", "admin", json={"role": "x"})
    with api.engine.engine.begin() as conn:  # a deactivated user's tokens stop working
        conn.execute(sa.update(tables.user).where(tables.user.c.name == "bob").values(active=False))
    error_of(api.get("/tasks", "bob"), 401, "unauthenticated")


def test_browser_session_authenticates_and_needs_the_csrf_header_to_write(api):
    with api.client.session_transaction() as session:
        session["user"] = "admin"
    assert api.get("/me").get_json()["user"]["name"] == "admin"
    refused = error_of(api.post("/tokens", json={"name": "from a page"}), 403, "forbidden")
    assert refused["details"] == {"reason": "csrf"}
    assert api.post("/tokens", json={"name": "from a page"}, headers={"X-Requested-With": "fetch"}).status_code == 201
    with api.client.session_transaction() as session:
        session["user"] = "ghost"
    error_of(api.get("/me"), 401, "unauthenticated")


def test_pages_keep_their_own_errors(api):
    missing = api.client.get("/no-such-page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"


def test_cli_tokens(api):
    from engine.cli import main

    runner = CliRunner()
    url = api.engine.engine.url.render_as_string(hide_password=False)
    created = runner.invoke(main, ["--database-url", url, "tokens", "create", "tina", "--name", "laptop"])
    assert created.exit_code == 0, created.output
    plain = created.stdout.strip().splitlines()[0]
    assert plain.startswith("pg_") and auth.authenticate_token(api.engine, plain) == "tina"
    listed = runner.invoke(main, ["--database-url", url, "tokens", "list", "tina", "--json"])
    records = json.loads(listed.stdout)
    assert [r["name"] for r in records] == ["tests", "laptop"] and plain not in listed.stdout
    revoked = runner.invoke(main, ["--database-url", url, "tokens", "revoke", str(records[1]["id"]), "--json"])
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["active"] is False
    missing = runner.invoke(main, ["--database-url", url, "tokens", "create", "ghost", "--name", "x"])
    assert missing.exit_code == 1 and "ghost" in missing.stderr


# ------------------------------------------------------------------------------ the OpenAPI document


def test_openapi_document_and_docs_page(api):
    response = api.get("/api/v1/openapi.json")  # public, like the docs page
    assert response.status_code == 200
    spec = json.loads(response.get_data(as_text=True))
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "Phasegate API"
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]

    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item
                  if method in ("get", "post", "put", "patch", "delete")}
    served = set()
    for rule in api.flask.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint.split(".")[0] != "api-docs":
            path = rule.rule
            for converter in rule.arguments:
                path = path.replace(f"<int:{converter}>", f"{{{converter}}}").replace(f"<{converter}>",
                                                                                      f"{{{converter}}}")
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented

    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":  # the path's own parameters
                continue
            assert operation.get("summary") and operation.get("x-permission", path == "/api/v1/me"), (path, method)
            body = operation.get("requestBody")
            if body:
                for media, content in body["content"].items():
                    ref = content["schema"].get("$ref", "")
                    assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, (path, media)
            for status, answer in operation["responses"].items():
                if status.startswith("2"):
                    schema = (answer.get("content") or {}).get("application/json", {}).get("schema", {})
                    ref = schema.get("$ref") or schema.get("items", {}).get("$ref", "")
                    assert ref.rsplit("/", 1)[-1] in schemas, (path, method, status)
    assert set(spec["paths"]["/api/v1/definitions"]["post"]["requestBody"]["content"]) == {
        "application/json", "multipart/form-data"}
    assert set(schemas["Error"]["properties"]) == {"code", "message", "details"}

    docs = api.get("/api/v1/docs")
    page = docs.get_data(as_text=True)
    assert docs.status_code == 200 and "/api/v1/openapi.json" in page
    assert "phasegate-api-fallback" in page and 'href="/api/v1/openapi.json"' in page  # works without the CDN

"""Every API endpoint × every kind of caller → the expected status (the allow/deny matrix).

`test_every_endpoint_has_a_row` enumerates the application's URL map under /api/v1: a new
endpoint without a row in MATRIX fails it. Each persona walks every row in its own database; a
row's `prepare` makes the object the request acts on (a fresh instance, task, token...) through
the services, so rows never depend on each other.

Personas: anonymous (no token), admin, designer, auditor, an approver holding the task's role
(ada: builder and reviewer) and an approver without it (otto: outsider).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import pytest

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import PhasegateError
from engine.services import definitions, instances, tasks, users
from tests.api_support import GATED_FILES, LANE_START_FILES, LOOPS_FILES, PASSWORD, PREPARED, RISKS_FILES, Api
from web.app import create_app

PERSONAS = {"anonymous": None, "admin": "admin", "designer": "dora", "auditor": "audrey",
            "approver with the role": "ada", "approver without it": "otto"}
ANON, ADMIN, DESIGNER, AUDITOR, WITH, WITHOUT = PERSONAS


def expect(ok: int, *allowed: str, public: bool = False) -> dict[str, int]:
    """`ok` for the allowed personas, 403 for the other authenticated ones, 401 anonymously."""
    return {p: ok if p in allowed or public else (401 if p == ANON else 403) for p in PERSONAS}


EVERYONE = (ADMIN, DESIGNER, AUDITOR, WITH, WITHOUT)
READERS = (ADMIN, AUDITOR, WITH)  # of an instance or task the approver takes part in
WORKERS = (ADMIN, WITH)


class World:
    """The models deployed and the people; makes fresh objects for each request."""

    def __init__(self, api: Api):
        self.api, self.engine = api, api.engine
        self.counter = itertools.count(1)
        for name, roles in [("admin", ["admin"]), ("dora", ["designer"]), ("audrey", ["auditor"]),
                            ("ada", ["builder", "reviewer"]), ("otto", ["outsider"]), ("eve", ["engineer"]),
                            ("quinn", ["qa_lead"])]:
            api.add_user(name, roles, password=PASSWORD if name == "ada" else None)
        for files in (LOOPS_FILES, GATED_FILES, RISKS_FILES, LANE_START_FILES):
            definitions.deploy_files(self.engine, files, "admin")

    def build_task(self) -> tuple[int, int]:
        """A running seq_loop instance and its ready `build` task (role builder)."""
        inst = instances.start(self.engine, "seq_loop", data={"i": 0, "n": 1})
        return inst.id, inst.tasks[0].id

    def open_gate(self) -> tuple[int, int, int]:
        """A gated instance whose review gate is open: (instance, reviewer approval task, gate row)."""
        inst = instances.start(self.engine, "gated")
        done = tasks.complete(self.engine, inst.tasks[0].id, "eve", PREPARED)
        approval = next(t for t in instances.show(self.engine, done.instance_id).tasks if t.role == "reviewer")
        return inst.id, approval.id, approval.gate_id

    def action_item(self, owner: str) -> int:
        instance_id, _task, gate_id = self.open_gate()
        with self.engine.uow() as uow:
            uow.gates.add_action_items([{"instance_id": instance_id, "gate_id": gate_id, "text": "follow up",
                                         "owner": owner, "state": "open", "created_at": clock.now()}])
            uow.commit()
            return uow.gates.action_items(instance_id)[-1].id

    def target_user(self, role: str | None = None) -> str:
        name = f"target-{next(self.counter)}"
        users.add_user(self.engine, name, [role] if role else [])
        return name


@dataclass
class Row:
    method: str
    rule: str
    prepare: Callable[[World, str | None], tuple[str, dict]]
    expected: dict[str, int]


def fixed(url: str, **kwargs):
    return lambda world, user: (url, kwargs)


def on_build_task(suffix: str, **kwargs):
    def prepare(world, user):
        _instance, task = world.build_task()
        return f"/api/v1/tasks/{task}{suffix}", kwargs
    return prepare


def on_instance(suffix: str, **kwargs):
    def prepare(world, user):
        instance, _task = world.build_task()
        return f"/api/v1/instances/{instance}{suffix}", kwargs
    return prepare


def on_gated_instance(suffix: str):
    def prepare(world, user):
        instance, _task, _gate = world.open_gate()
        return f"/api/v1/instances/{instance}{suffix}", {}
    return prepare


def unclaim(world, user):
    _instance, task = world.build_task()
    if user:
        try:
            tasks.claim(world.engine, task, user)
        except PhasegateError:
            pass  # may not claim it: unclaiming is refused the same way
    return f"/api/v1/tasks/{task}/unclaim", {}


def assign_to_builder(world, user):
    _instance, task = world.build_task()
    return f"/api/v1/tasks/{task}/assign", {"json": {"user": world.target_user("builder")}}


def delegate_to_builder(world, user):
    _instance, task = world.build_task()
    return f"/api/v1/tasks/{task}/delegate", {"json": {"to": world.target_user("builder")}}


def bulk_decision(world, user):
    _instance, task, _gate = world.open_gate()
    return "/api/v1/tasks/bulk-decision", {"json": {"tasks": [task]}}


def own_draft(world, user):
    """A build task with a draft by `user` when they may work on it (for the others: nothing to read)."""
    from engine.services import auth, drafts

    _instance, task = world.build_task()
    if user:
        try:
            drafts.save_draft(world.engine, task, auth.authenticate(world.engine, session_user=user), {"i": 0})
        except PhasegateError:
            pass
    return f"/api/v1/tasks/{task}/draft", {}


def decision(world, user):
    _instance, task, _gate = world.open_gate()
    return f"/api/v1/tasks/{task}/decision", {"json": {"outcome": "go", "password": PASSWORD}}


def message(world, user):
    inst = instances.start(world.engine, "with_risks")
    return f"/api/v1/instances/{inst.id}/messages", {"json": {"name": "raise_risk",
                                                              "data": {"title": "t", "response": "r"}}}


def close_item(world, user):
    return f"/api/v1/action-items/{world.action_item('ada')}/close", {"json": {"note": "done"}}


def new_user(world, user):
    return "/api/v1/users", {"json": {"name": f"new-{next(world.counter)}", "roles": ["builder"]}}


def grant(world, user):
    return f"/api/v1/users/{world.target_user()}/roles", {"json": {"role": "builder"}}


def revoke(world, user):
    return f"/api/v1/users/{world.target_user('builder')}/roles/builder", {}


def own_token(world, user):
    from engine.services import auth

    _plain, record = auth.create_token(world.engine, user or "admin", "to revoke")
    return f"/api/v1/tokens/{record.id}", {}


MATRIX = [
    Row("GET", "/api/v1/definitions", fixed("/api/v1/definitions"), expect(200, *EVERYONE)),
    Row("POST", "/api/v1/definitions", fixed("/api/v1/definitions", json={"files": LOOPS_FILES}),
        expect(200, ADMIN, DESIGNER)),
    Row("GET", "/api/v1/definitions/<key>", fixed("/api/v1/definitions/seq_loop"), expect(200, *EVERYONE)),
    Row("GET", "/api/v1/definitions/<key>/<int:version>", fixed("/api/v1/definitions/seq_loop/1"),
        expect(200, *EVERYONE)),

    Row("GET", "/api/v1/instances", fixed("/api/v1/instances"), expect(200, ADMIN, AUDITOR)),
    # lane_start's start event lies in the builder lane: builders and admins start it.
    Row("POST", "/api/v1/instances", fixed("/api/v1/instances", json={"key": "lane_start"}),
        expect(201, ADMIN, WITH)),
    Row("GET", "/api/v1/instances/<int:instance_id>", on_instance(""), expect(200, *READERS)),
    Row("POST", "/api/v1/instances/<int:instance_id>/cancel", on_instance("/cancel", json={"reason": "test"}),
        expect(200, ADMIN)),
    Row("GET", "/api/v1/instances/<int:instance_id>/history", on_instance("/history"), expect(200, *READERS)),
    Row("POST", "/api/v1/instances/<int:instance_id>/messages", message, expect(200, ADMIN)),

    Row("GET", "/api/v1/tasks", fixed("/api/v1/tasks"), expect(200, *EVERYONE)),
    Row("GET", "/api/v1/tasks/count", fixed("/api/v1/tasks/count?overdue=true"), expect(200, *EVERYONE)),
    Row("GET", "/api/v1/tasks/<int:task_id>", on_build_task(""), expect(200, *READERS)),
    Row("POST", "/api/v1/tasks/<int:task_id>/claim", on_build_task("/claim"), expect(200, *WORKERS)),
    Row("POST", "/api/v1/tasks/<int:task_id>/unclaim", unclaim, expect(200, *WORKERS)),
    Row("POST", "/api/v1/tasks/<int:task_id>/complete", on_build_task("/complete", json={"data": {}}),
        expect(200, *WORKERS)),
    # Drafts are private scratch of whoever may work on the task (the author alone reads theirs).
    Row("GET", "/api/v1/tasks/<int:task_id>/draft", own_draft, expect(200, *WORKERS)),
    Row("PUT", "/api/v1/tasks/<int:task_id>/draft", on_build_task("/draft", json={"data": {"i": 0}}),
        expect(200, *WORKERS)),
    Row("DELETE", "/api/v1/tasks/<int:task_id>/draft", own_draft, expect(200, *WORKERS)),
    Row("POST", "/api/v1/tasks/<int:task_id>/assign", assign_to_builder, expect(200, *WORKERS)),
    Row("POST", "/api/v1/tasks/<int:task_id>/delegate", delegate_to_builder, expect(200, *WORKERS)),

    Row("GET", "/api/v1/instances/<int:instance_id>/gates", on_gated_instance("/gates"), expect(200, *READERS)),
    Row("GET", "/api/v1/instances/<int:instance_id>/action-items", on_gated_instance("/action-items"),
        expect(200, *READERS)),
    # A gate decision is a personal, signed act of an approver: admins hold no approver role here.
    Row("POST", "/api/v1/tasks/<int:task_id>/decision", decision, expect(200, WITH)),
    # Each task of a bulk decision is checked on its own and reported (200); only read-only callers are
    # refused outright.
    Row("POST", "/api/v1/tasks/bulk-decision", bulk_decision, expect(200, ADMIN, DESIGNER, WITH, WITHOUT)),
    Row("POST", "/api/v1/action-items/<int:item_id>/close", close_item, expect(200, ADMIN, WITH)),  # ada owns it

    Row("GET", "/api/v1/users", fixed("/api/v1/users"), expect(200, ADMIN, AUDITOR)),
    Row("POST", "/api/v1/users", new_user, expect(201, ADMIN)),
    Row("POST", "/api/v1/users/<name>/roles", grant, expect(200, ADMIN)),
    Row("DELETE", "/api/v1/users/<name>/roles/<role>", revoke, expect(200, ADMIN)),
    Row("GET", "/api/v1/roles", fixed("/api/v1/roles"), expect(200, ADMIN, AUDITOR)),

    Row("GET", "/api/v1/tokens", fixed("/api/v1/tokens"), expect(200, *EVERYONE)),
    Row("POST", "/api/v1/tokens", fixed("/api/v1/tokens", json={"name": "another"}), expect(201, *EVERYONE)),
    Row("DELETE", "/api/v1/tokens/<int:token_id>", own_token, expect(200, *EVERYONE)),
    Row("GET", "/api/v1/me", fixed("/api/v1/me"), expect(200, *EVERYONE)),

    # Admins, auditors and the pmo role (tests/test_portfolio.py covers pmo).
    Row("GET", "/api/v1/portfolio", fixed("/api/v1/portfolio?overdue=true"), expect(200, ADMIN, AUDITOR)),

    Row("GET", "/api/v1/openapi.json", fixed("/api/v1/openapi.json"), expect(200, public=True)),
    Row("GET", "/api/v1/docs", fixed("/api/v1/docs"), expect(200, public=True)),
]


def api_endpoints(flask_app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in flask_app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_endpoint_has_a_row(sqlite_url):
    flask_app = create_app(sqlite_url, config={"SECRET_KEY": "test"})
    rows = [(r.method, r.rule) for r in MATRIX]
    assert len(rows) == len(set(rows)), "a row is listed twice"
    assert api_endpoints(flask_app) == set(rows), "add a MATRIX row for every new endpoint (and remove stale ones)"
    flask_app.extensions["phasegate"].dispose()


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_matrix(db_url, persona):
    engine_app = Phasegate(db_url)
    try:
        world = World(Api(engine_app))
        user = PERSONAS[persona]
        wrong = []
        for row in MATRIX:
            url, kwargs = row.prepare(world, user)
            response = world.api.call(row.method, url, user, **kwargs)
            if response.status_code != row.expected[persona]:
                wrong.append(f"{row.method} {url}: {response.status_code}, expected {row.expected[persona]}: "
                             f"{response.get_data(as_text=True)[:200]}")
            elif response.status_code >= 400:
                assert set(response.get_json()) == {"code", "message", "details"}
        assert not wrong, f"{persona}:\n" + "\n".join(wrong)
    finally:
        engine_app.dispose()

"""Who sees which task, read through the inbox queries (engine.adapters.repositories
`HumanTaskRepository._visible`), checked against a plain Python rule over every ready task; and
the cheap paths an API request takes (one-statement authentication, SQLite plans that read a
user's tasks through indexes). On SQLite and PostgreSQL (`db_url`)."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from engine.adapters.database import StatementCounter
from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.inbox import SORTS, TaskFilter, week_bounds
from engine.domain.permissions import Actor
from engine.services import auth, definitions, instances, tasks, users
from tests.clock_support import frozen_at

# One instance puts seven tasks in the inbox at once: a (r1), b (r2 first, also r1), c (r3,
# assigned to u), d (r1, claimed by other below), e (r1 and r4), f (r5), g (no role: admins).
FANOUT = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="vis" targetNamespace="http://phasegate.test/vis">
  <bpmn:process id="visibility" name="Visibility" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="split"/>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f0</bpmn:incoming>{outgoing}</bpmn:parallelGateway>
    {tasks}
    <bpmn:parallelGateway id="join">{incoming}<bpmn:outgoing>f9</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:sequenceFlow id="f9" sourceRef="join" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f9</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
TASKS = {  # id: (attributes, phase)
    "a": ('camunda:candidateGroups="r1" camunda:dueDate="P1D"', "one"),
    "b": ('camunda:candidateGroups="r2,r1" camunda:dueDate="P3D"', "two"),
    "c": ('camunda:candidateGroups="r3" camunda:assignee="u" camunda:dueDate="PT2H"', "one"),
    "d": ('camunda:candidateGroups="r1" camunda:dueDate="P10D"', "two"),
    "e": ('camunda:candidateGroups="r1,r4"', "one"),
    "f": ('camunda:candidateGroups="r5" camunda:dueDate="P2D"', "two"),
    "g": ('camunda:dueDate="P1D"', "one"),
}
PEOPLE = {"admin": ["admin"], "u": ["r1", "r2"], "other": ["r1"], "v": ["r4"], "w": [], "x": ["r3"]}
START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)  # a Monday


def fanout_bpmn() -> str:
    def task(element_id: str) -> str:
        attributes, phase = TASKS[element_id]
        return (f'<bpmn:userTask id="{element_id}" name="Task {element_id}" {attributes}><bpmn:extensionElements>'
                f'<camunda:properties><camunda:property name="phase" value="{phase}"/></camunda:properties>'
                f'</bpmn:extensionElements><bpmn:incoming>s_{element_id}</bpmn:incoming>'
                f'<bpmn:outgoing>j_{element_id}</bpmn:outgoing></bpmn:userTask>'
                f'<bpmn:sequenceFlow id="s_{element_id}" sourceRef="split" targetRef="{element_id}"/>'
                f'<bpmn:sequenceFlow id="j_{element_id}" sourceRef="{element_id}" targetRef="join"/>')

    return FANOUT.format(outgoing="".join(f"<bpmn:outgoing>s_{k}</bpmn:outgoing>" for k in TASKS),
                         incoming="".join(f"<bpmn:incoming>j_{k}</bpmn:incoming>" for k in TASKS),
                         tasks="\n    ".join(task(k) for k in TASKS))


@pytest.fixture
def frozen():
    yield from frozen_at(START)


@pytest.fixture
def app(db_url, tmp_path, frozen):
    """Three instances started a day apart (CUST-1 oldest), task d of each claimed by `other`."""
    application = Phasegate(db_url)
    for name, roles in PEOPLE.items():
        users.add_user(application, name, roles)
    (tmp_path / "visibility.bpmn").write_text(fanout_bpmn())
    definitions.deploy(application, tmp_path / "visibility.bpmn", "admin")
    for n in range(1, 4):
        inst = instances.start(application, "visibility", business_key=f"CUST-{n}", user="admin")
        tasks.claim(application, next(t.id for t in inst.tasks if t.element_id == "d"), "other")
        frozen.advance(days=1)
    yield application
    application.dispose()


def expected(app: Phasegate, user: str, f: TaskFilter = TaskFilter()) -> list[int]:
    """The rule, in Python: routed to a role the user holds or assigned to them, not claimed by
    someone else; then the filters, then the order of `f.sort`."""
    roles = set(PEOPLE[user])
    now = clock.now()
    found = []
    for t in tasks.list_tasks(app):  # every ready task
        task_roles = set(t.candidate_roles) | ({t.role} if t.role else set())
        if "admin" not in roles and not (task_roles & roles or t.assignee == user):
            continue
        if "admin" not in roles and t.assignee not in (None, user):
            continue
        if f.overdue and not (t.due and t.due < now):
            continue
        if f.due_this_week and not (t.due and week_bounds(now)[0] <= t.due < week_bounds(now)[1]):
            continue
        if f.role and f.role not in task_roles:
            continue
        if f.phase and t.phase != f.phase:
            continue
        if f.q and f.q.lower() not in (t.business_key or "").lower():
            continue
        found.append(t)
    never = datetime.max.replace(tzinfo=timezone.utc)
    keys = {None: lambda t: t.id, "due": lambda t: (t.due or never, t.id), "age": lambda t: (t.created_at, t.id),
            "priority": lambda t: (t.kind != "approval", t.due or never, t.created_at, t.id)}
    return [t.id for t in sorted(found, key=keys[f.sort])]


FILTERS = [TaskFilter(), TaskFilter(overdue=True), TaskFilter(due_this_week=True), TaskFilter(role="r1"),
           TaskFilter(role="r4"), TaskFilter(phase="two"), TaskFilter(q="cust-2"), TaskFilter(overdue=True, role="r2"),
           *(TaskFilter(sort=s) for s in SORTS)]


@pytest.mark.parametrize("user", ["u", "other", "v", "w", "x", "admin"])
def test_my_tasks_and_counts_follow_the_visibility_rule(app, user):
    who = Actor(user, frozenset(PEOPLE[user]))
    for f in FILTERS:
        want = expected(app, user, f)
        pages, total, page = [], None, 1
        while True:  # two per page: the pages, put together, are the whole list, in order
            found, total = tasks.my_tasks(app, who, f, page=page, per_page=2)
            if not found:
                break
            pages += [t.id for t in found]
            page += 1
        assert pages == want, f
        assert total == len(want) and tasks.count_my_tasks(app, who, f) == len(want), f
    counts = {"all": len(expected(app, user)), "overdue": len(expected(app, user, TaskFilter(overdue=True))),
              "due_this_week": len(expected(app, user, TaskFilter(due_this_week=True)))}
    assert tasks.inbox_counts(app, who) == counts
    for f in FILTERS:  # the inbox page: a page, the total, and the counts (from the same pass without filters)
        for page in (1, 2, 99):
            found, total = tasks.my_tasks(app, who, f, page=page, per_page=3)
            assert tasks.inbox_page(app, who, f, page=page, per_page=3) == (found, total, counts), (f, page)


def test_the_rule_is_what_the_fixture_says(app):
    by_element = {t.id: t.element_id for t in tasks.list_tasks(app)}
    assert sorted({by_element[i] for i in expected(app, "u")}) == ["a", "b", "c", "e"]
    assert sorted({by_element[i] for i in expected(app, "other")}) == ["a", "b", "d", "e"]
    assert sorted({by_element[i] for i in expected(app, "v")}) == ["e"]
    assert expected(app, "w") == [] and len(expected(app, "admin")) == 21
    # c is assigned to u, so x (r3) no longer sees it; e counts once for u, who holds r1 only once
    assert expected(app, "x") == [] and len(expected(app, "u")) == 12


def test_a_page_past_the_end_still_counts(app):
    found, total = tasks.my_tasks(app, Actor("u", frozenset(PEOPLE["u"])), page=99, per_page=5)
    assert found == [] and total == 12


def test_authentication_is_one_statement(app):
    plain, _record = auth.create_token(app, "u", "tests")
    assert auth.authenticate(app, token=plain) == Actor("u", frozenset({"r1", "r2"}))  # records the use
    counter = StatementCounter(app.engine)
    try:
        assert auth.authenticate(app, token=plain).roles == {"r1", "r2"}
        assert counter.count == 1
        counter.reset()
        assert auth.authenticate(app, session_user="w") == Actor("w", frozenset())  # no roles at all
        assert counter.count == 1
    finally:
        counter.close()


def test_complete_and_show_gives_the_instance_as_show_does(app):
    task = next(t for t in tasks.list_tasks(app) if t.element_id == "a")
    shown = tasks.complete_and_show(app, task.id, "u", {"ok": True})
    assert shown["path"] == ["a"]
    expected_instance = instances.show(app, task.instance_id).to_dict()
    assert {k: v for k, v in shown.items() if k != "path"} == expected_instance
    assert task.id not in [t["id"] for t in shown["tasks"]] and len(shown["tasks"]) == 6


def _sqlite_plans(app: Phasegate, run) -> list[str]:
    """EXPLAIN QUERY PLAN of every statement on human_task that `run` sends (SQLite only)."""
    sent = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM human_task" in statement and not executemany:
            sent.append((statement, parameters))

    sa.event.listen(app.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(app.engine, "before_cursor_execute", capture)
    with app.engine.connect() as conn:
        return ["\n".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
                for statement, parameters in sent]


def test_sqlite_reads_a_users_tasks_through_indexes(app, db_url):
    """Without statistics SQLite once read every task for an inbox (an OR over roles, candidate
    roles and assignee, or a due-date window through the (state, due) index): 100,000 open tasks
    made the inbox 10x slower than its 50 ms budget (bench/api.py)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("query plans of SQLite")
    who = Actor("u", frozenset(PEOPLE["u"]))
    plans = _sqlite_plans(app, lambda: [
        tasks.my_tasks(app, who, f, per_page=2) for f in FILTERS] + [tasks.inbox_counts(app, who),
                                                                     tasks.inbox_page(app, who)])
    assert plans
    for plan in plans:
        assert not re.search(r"SCAN human_task\b", plan) and "ix_human_task_state_due" not in plan, plan

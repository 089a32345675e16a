"""Reassignment: assign and delegate tasks, who holds a task and whom it waits on — the domain rule,
the services, the API, the pages and the CLI (SQLite and PostgreSQL, `db_url`).

Model: tests/models/gated.bpmn (prepare by an engineer → gate review_gate: 2 reviewers and a
qa_lead, quorum 2, signature, delegation allowed).
"""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.adapters import tables as t
from engine.bootstrap import Phasegate
from engine.cli import main as cli_main
from engine.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.domain.events import GENESIS, event_hash
from engine.domain.permissions import Actor, assign_refusal, may_hold_task
from engine.services import definitions, instances, tasks, users
from tests.api_support import GATED_FILES, PASSWORD, PREPARED, Api
from tests.test_pages import Browser, html

PEOPLE = {"admin": ["admin"], "eve": ["engineer"], "emma": ["engineer"], "rita": ["reviewer"], "ray": ["reviewer"],
          "quinn": ["qa_lead"], "olga": [], "audrey": ["auditor"]}


@pytest.fixture
def app(db_url):
    engine_app = Phasegate(db_url)
    for name, roles in PEOPLE.items():
        users.add_user(engine_app, name, roles, password=PASSWORD, exist_ok=True)
    definitions.deploy_files(engine_app, GATED_FILES, "admin")
    yield engine_app
    engine_app.dispose()


def start(app, key="G-1"):
    """A gated instance waiting on its `prepare` task (role engineer): (instance id, task id)."""
    instance = instances.start(app, "gated", business_key=key)
    return instance.id, instance.tasks[0].id


def open_gate(app, key="G-1"):
    """A gated instance with its review gate open: (instance id, reviewer approval, qa_lead approval)."""
    instance_id, prepare = start(app, key)
    tasks.complete(app, prepare, "eve", PREPARED)
    open_tasks = instances.show(app, instance_id).tasks
    reviewer = next(t for t in open_tasks if t.role == "reviewer")
    qa = next(t for t in open_tasks if t.role == "qa_lead")
    return instance_id, reviewer.id, qa.id


def events(app, instance_id, event_type):
    with app.uow() as uow:
        return [e for e in uow.events.for_instance(instance_id) if e.type == event_type]


def assert_chain_intact(app, instance_id):
    """Every event links to the one before and hashes its own content (the audit chain)."""
    previous = GENESIS
    with app.uow() as uow:
        history = uow.events.for_instance(instance_id)
    for e in history:
        assert e.prev_hash == previous
        assert e.hash == event_hash(previous, instance_id=e.instance_id, seq=e.seq, at=e.at, actor=e.actor,
                                    type=e.type, task_id=e.task_id, element_id=e.element_id, payload=e.payload)
        previous = e.hash


def visible_ids(app, user):
    found, _total = tasks.my_tasks(app, Actor(user, frozenset()))
    return {t.id for t in found}


# -------------------------------------------------------------------------------- domain rules


def test_who_may_assign_is_a_pure_rule():
    roles = ["engineer"]
    assert assign_refusal(Actor("boss", {"admin"}), roles, "someone") is None  # admins always
    assert assign_refusal(Actor("eve", {"engineer"}), roles, None) is None  # a member, task unclaimed
    assert assign_refusal(Actor("eve", {"engineer"}), roles, "eve") is None  # her own
    assert assign_refusal(Actor("pat", set()), roles, "pat") is None  # the holder, even without the role
    assert "claimed by 'emma'" in assign_refusal(Actor("eve", {"engineer"}), roles, "emma")
    assert "does not hold role 'engineer'" in assign_refusal(Actor("rita", {"reviewer"}), roles, None)
    assert "read-only" in assign_refusal(Actor("audrey", {"auditor"}), roles, None)
    assert "role 'admin' (the task has no role)" in assign_refusal(Actor("rita", {"reviewer"}), [], None)


def test_who_may_be_given_a_task_is_a_pure_rule():
    assert may_hold_task({"engineer"}, ["engineer", "reviewer"])
    assert may_hold_task({"reviewer", "x"}, ["engineer", "reviewer"])
    assert not may_hold_task({"admin"}, ["engineer"])  # an admin may work on it, but is not given it
    assert not may_hold_task(set(), ["engineer"])
    assert may_hold_task({"admin"}, [])  # a task without a role is the admins'
    assert not may_hold_task({"engineer"}, [])


# ------------------------------------------------------------------------------------ services


def test_a_role_member_assigns_an_unclaimed_task_recorded_from_and_to(app):
    instance_id, task_id = start(app)
    task = tasks.assign(app, task_id, "eve", "emma")
    assert task.assignee == "emma"
    [assigned] = events(app, instance_id, "assigned")
    assert (assigned.actor, assigned.task_id, assigned.element_id) == ("eve", task_id, "prepare")
    assert assigned.payload == {"from": None, "to": "emma"}
    # it left eve's list (claimed by someone else) and is emma's now
    assert task_id not in visible_ids(app, "eve") and task_id in visible_ids(app, "emma")
    # assigning it to its holder again changes nothing and records nothing
    assert tasks.assign(app, task_id, "emma", "emma").assignee == "emma"
    assert len(events(app, instance_id, "assigned")) == 1
    assert_chain_intact(app, instance_id)


def test_assigning_to_someone_without_the_role_is_refused_naming_user_and_role(app):
    instance_id, task_id = start(app)
    with pytest.raises(InvalidInput) as refused:
        tasks.assign(app, task_id, "eve", "rita")
    assert "user 'rita' does not hold role 'engineer'" in refused.value.message
    assert refused.value.fields == {"user": ["does not hold role 'engineer'"]}
    with pytest.raises(InvalidInput, match="user 'admin' does not hold role 'engineer'"):
        tasks.assign(app, task_id, "admin", "admin")  # admins may work on it, but it is not theirs to be given
    with pytest.raises(NotFound, match="unknown user 'nobody'"):
        tasks.assign(app, task_id, "eve", "nobody")
    assert tasks.get_task(app, task_id).assignee is None
    assert events(app, instance_id, "assigned") == []


def test_who_may_assign_in_the_service(app):
    instance_id, task_id = start(app)
    with pytest.raises(Forbidden, match="user 'rita' may not assign task .*does not hold role 'engineer'"):
        tasks.assign(app, task_id, "rita", "emma")
    with pytest.raises(Forbidden, match="read-only"):
        tasks.assign(app, task_id, "audrey", "emma")
    tasks.claim(app, task_id, "emma")
    with pytest.raises(Forbidden, match="claimed by 'emma'"):
        tasks.assign(app, task_id, "eve", "eve")  # a colleague's claim is theirs
    # the holder hands it on; an admin reassigns whatever the claim
    assert tasks.assign(app, task_id, "emma", "eve").assignee == "eve"
    assert tasks.assign(app, task_id, "admin", "emma").assignee == "emma"
    payloads = [(e.actor, e.payload) for e in events(app, instance_id, "assigned")]
    assert payloads == [("emma", {"from": "emma", "to": "eve"}), ("admin", {"from": "eve", "to": "emma"})]
    with pytest.raises(NotFound):
        tasks.assign(app, 9999, "admin", "emma")


def test_gate_approvals_are_not_assigned_and_finished_tasks_not_reassigned(app):
    instance_id, reviewer_task, _qa = open_gate(app)
    with pytest.raises(Conflict, match="gate approval.*delegate their decision"):
        tasks.assign(app, reviewer_task, "rita", "ray")
    [prepare] = [t for t in tasks.list_tasks(app, instance_id=instance_id, states=("completed",))]
    with pytest.raises(Conflict, match="is not ready: it is completed"):
        tasks.assign(app, prepare.id, "admin", "emma")


def test_delegating_a_task_hands_it_on(app):
    instance_id, task_id = start(app)
    tasks.claim(app, task_id, "eve")
    with pytest.raises(Forbidden, match="claimed by 'eve'"):
        tasks.delegate(app, task_id, "emma", "eve")  # not hers to delegate
    with pytest.raises(InvalidInput, match="to themselves"):
        tasks.delegate(app, task_id, "eve", "eve")
    with pytest.raises(InvalidInput, match="user 'olga' does not hold role 'engineer'") as refused:
        tasks.delegate(app, task_id, "eve", "olga")
    assert refused.value.fields == {"to": ["does not hold role 'engineer'"]}
    result = tasks.delegate(app, task_id, "eve", "emma")
    assert result == {"task": task_id, "kind": "task", "delegator": "eve", "delegate": "emma"}
    assert tasks.get_task(app, task_id).assignee == "emma"
    [delegated] = events(app, instance_id, "delegated")
    assert (delegated.actor, delegated.payload) == ("eve", {"from": "eve", "to": "emma", "previous_assignee": "eve"})
    # the delegate works on it
    tasks.complete(app, task_id, "emma", PREPARED)
    assert tasks.get_task(app, task_id).state == "completed"


def test_delegating_a_gate_approval_uses_the_gate_delegation(app):
    instance_id, reviewer_task, _qa = open_gate(app)
    result = tasks.delegate(app, reviewer_task, "rita", "olga")
    assert result == {"task": reviewer_task, "delegator": "rita", "delegate": "olga", "kind": "approval"}
    [delegated] = events(app, instance_id, "delegated")
    assert (delegated.actor, delegated.payload["to"]) == ("rita", "olga")
    # separation of duties stays enforced there: eve submitted the work
    with pytest.raises(Forbidden, match="separation of duties"):
        tasks.delegate(app, reviewer_task, "ray", "eve")
    with pytest.raises(Forbidden, match="does not hold role 'reviewer'"):
        tasks.delegate(app, reviewer_task, "quinn", "olga")


def test_a_revoked_role_takes_the_task_out_of_the_inbox_at_once(app):
    _instance_id, task_id = start(app)
    assert task_id in visible_ids(app, "emma")
    users.revoke(app, "emma", "engineer")
    assert task_id not in visible_ids(app, "emma")
    with pytest.raises(Forbidden):
        tasks.claim(app, task_id, "emma")
    with pytest.raises(InvalidInput, match="user 'emma' does not hold role 'engineer'"):
        tasks.assign(app, task_id, "eve", "emma")
    users.grant(app, "olga", "engineer")
    assert task_id in visible_ids(app, "olga")
    assert tasks.assign(app, task_id, "eve", "olga").assignee == "olga"


def test_candidate_people_counts_active_role_holders_in_one_query(app):
    ids = []
    for n in range(3):
        instance_id, reviewer_task, qa_task = open_gate(app, f"G-{n}")
        ids += [reviewer_task, qa_task]
    _other, prepare = start(app, "G-9")
    ids.append(prepare)
    with app.uow() as uow:
        statements = []
        sa.event.listen(uow.conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        counts = uow.tasks.candidate_people(ids)
        assert len(statements) == 1  # the whole page, one statement
        uow.conn.execute(sa.update(t.user).where(t.user.c.name == "ray").values(active=False))
        uow.commit()
    assert [counts[i] for i in ids] == [2, 1, 2, 1, 2, 1, 2]  # reviewer: rita, ray; qa_lead: quinn; engineer
    after = tasks.candidate_people(app, ids)
    assert after[ids[0]] == 1  # ray was deactivated
    assert tasks.candidate_people(app, []) == {}


def test_reassign_options_for_the_task_page(app):
    _instance_id, task_id = start(app)
    task = tasks.get_task(app, task_id)
    eve = Actor("eve", {"engineer"})
    assert tasks.reassign_options(app, task, eve) == {"action": "assign", "people": ["emma"], "holder": None,
                                                      "roles": ["engineer"], "members": 2}
    assert tasks.reassign_options(app, task, Actor("audrey", {"auditor"}))["action"] is None
    tasks.claim(app, task_id, "eve")
    task = tasks.get_task(app, task_id)
    assert tasks.reassign_options(app, task, eve)["action"] == "delegate"
    assert tasks.reassign_options(app, task, Actor("emma", {"engineer"}))["action"] is None  # eve's claim
    admin = tasks.reassign_options(app, task, Actor("admin", {"admin"}))
    assert (admin["action"], admin["people"]) == ("assign", ["emma"])
    _instance_id, reviewer_task, _qa = open_gate(app, "G-2")
    approval = tasks.reassign_options(app, tasks.get_task(app, reviewer_task), Actor("rita", {"reviewer"}))
    assert approval["action"] == "delegate" and "olga" in approval["people"] and "rita" not in approval["people"]


# ------------------------------------------------------------------------------------------ API


def test_api_assign_and_delegate(app):
    api = Api(app)
    for name in ("eve", "emma", "rita", "audrey"):
        api.add_user(name, PEOPLE[name])
    _instance_id, task_id = start(app)
    refused = api.post(f"/tasks/{task_id}/assign", "eve", json={"user": "rita"})
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["code"] == "invalid_input" and "rita" in body["message"] and "engineer" in body["message"]
    assert body["details"]["fields"] == {"user": ["does not hold role 'engineer'"]}
    assert api.post(f"/tasks/{task_id}/assign", "eve", json={}).status_code == 422  # `user` is required
    assert api.post(f"/tasks/{task_id}/assign", "audrey", json={"user": "emma"}).status_code == 403
    assigned = api.post(f"/tasks/{task_id}/assign", "eve", json={"user": "emma"})
    assert assigned.status_code == 200 and assigned.get_json()["assignee"] == "emma"
    delegated = api.post(f"/tasks/{task_id}/delegate", "emma", json={"to": "eve"})
    assert delegated.status_code == 200
    assert delegated.get_json() == {"task": task_id, "kind": "task", "delegator": "emma", "delegate": "eve"}
    assert api.post(f"/tasks/{task_id}/delegate", "rita", json={"to": "eve"}).status_code == 403
    assert api.post(f"/tasks/{task_id}/delegate", "eve", json={"too": "x"}).status_code == 422
    spec = api.get("/openapi.json").get_json()
    assert "/api/v1/tasks/{task_id}/assign" in spec["paths"] and "/api/v1/tasks/{task_id}/delegate" in spec["paths"]


# ---------------------------------------------------------------------------------------- pages


def test_inbox_shows_who_holds_a_task_and_whom_it_waits_on(app):
    _i1, claimed = start(app, "G-1")
    _i2, waiting = start(app, "G-2")
    tasks.claim(app, claimed, "emma")
    browser = Browser(app)
    browser.sign_in("admin")
    page = html(browser.get("/inbox"))
    row = page[page.index(f'data-task="{claimed}"'):]
    assert "Claimed by emma" in row[:800]
    row = page[page.index(f'data-task="{waiting}"'):]
    assert "Waiting on: engineer (2 people)" in row[:800]
    browser = Browser(app)
    browser.sign_in("emma")
    assert "Claimed by emma (you)" in html(browser.get("/inbox"))


def test_a_revoked_role_empties_the_inbox_page_at_once(app):
    start(app, "G-7")
    browser = Browser(app)
    browser.sign_in("emma")
    assert "G-7" in html(browser.get("/inbox"))
    users.revoke(app, "emma", "engineer")
    page = html(browser.get("/inbox"))  # the same session: roles are read per request
    assert "G-7" not in page and "No tasks match" in page


def test_assign_and_delegate_from_the_task_page(app):
    instance_id, task_id = start(app)
    browser = Browser(app)
    browser.sign_in("eve")
    page = html(browser.get(f"/tasks/{task_id}"))
    assert "Waiting on: engineer (2 people)" in page
    form = page[page.index('class="reassign-form"'):]
    assert f'action="/tasks/{task_id}/assign"' in page and "Assign to…" in form
    assert "<option>emma</option>" in form and "<option>rita</option>" not in form

    refused = browser.post(f"/tasks/{task_id}/assign", {"user": "rita"})
    assert refused.status_code == 302 and refused.headers["Location"] == f"/tasks/{task_id}"
    assert "user &#39;rita&#39; does not hold role &#39;engineer&#39;" in html(browser.get(f"/tasks/{task_id}"))
    empty = browser.post(f"/tasks/{task_id}/assign", {"user": ""})
    assert empty.headers["Location"] == f"/tasks/{task_id}"
    assert "Choose whom to assign" in html(browser.get(f"/tasks/{task_id}"))

    done = browser.post(f"/tasks/{task_id}/assign", {"user": "emma"})
    assert done.status_code == 302 and done.headers["Location"] == "/inbox"
    assert "is assigned to emma" in html(browser.get("/inbox"))
    assert tasks.get_task(app, task_id).assignee == "emma"

    emma = Browser(app)
    emma.sign_in("emma")
    page = html(emma.get(f"/tasks/{task_id}"))
    assert "Claimed by <b>emma</b> (you)" in page and "Delegate to…" in page
    assert emma.post(f"/tasks/{task_id}/delegate", {"to": "eve"}).headers["Location"] == "/inbox"
    assert tasks.get_task(app, task_id).assignee == "eve"

    history = html(emma.get(f"/instances/{instance_id}"))
    assert "assigned" in history and "from its role to emma" in history
    assert "delegated" in history and "from emma to eve" in history


def test_delegate_a_gate_decision_from_the_task_page(app):
    instance_id, reviewer_task, _qa = open_gate(app)
    browser = Browser(app)
    browser.sign_in("rita")
    page = html(browser.get(f"/tasks/{reviewer_task}"))
    assert "Delegate my decision to…" in page and "<option>olga</option>" in page
    refused = browser.post(f"/tasks/{reviewer_task}/delegate", {"to": "eve"})
    assert refused.headers["Location"] == f"/tasks/{reviewer_task}"
    assert "separation of duties" in html(browser.get(f"/tasks/{reviewer_task}"))
    assert browser.post(f"/tasks/{reviewer_task}/delegate", {"to": "olga"}).headers["Location"] == "/inbox"
    assert "olga may now decide" in html(browser.get("/inbox"))
    assert "decides on their behalf" in html(browser.get(f"/instances/{instance_id}"))


def test_auditors_see_no_reassign_form_and_cannot_post_it(app):
    _instance_id, task_id = start(app)
    browser = Browser(app)
    browser.sign_in("audrey")
    page = html(browser.get(f"/tasks/{task_id}"))
    assert "Waiting on: engineer" in page and 'class="reassign-form"' not in page
    refused = browser.post(f"/tasks/{task_id}/assign", {"user": "emma"})
    assert refused.status_code == 302 and refused.headers["Location"] == f"/tasks/{task_id}"
    assert "auditors are read-only" in html(browser.get(f"/tasks/{task_id}"))
    assert tasks.get_task(app, task_id).assignee is None


# ------------------------------------------------------------------------------------------ CLI


def test_cli_assign_and_delegate(app, db_url):
    _instance_id, task_id = start(app)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli_main, ["--database-url", db_url, *args], catch_exceptions=False)

    result = run("assign", str(task_id), "--to", "emma", "--user", "eve", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["assignee"] == "emma"
    refused = run("assign", str(task_id), "--to", "rita", "--user", "emma")
    assert refused.exit_code == 1
    assert "user 'rita' does not hold role 'engineer'" in refused.output and "Traceback" not in refused.output
    # --user defaults to $PHASEGATE_USER, else admin: admins reassign whatever the claim
    result = runner.invoke(cli_main, ["--database-url", db_url, "assign", str(task_id), "--to", "eve"],
                           env={"PHASEGATE_USER": "admin"}, catch_exceptions=False)
    assert result.exit_code == 0 and re.search(r"\beve\b", result.output)
    delegated = run("delegate", str(task_id), "--user", "eve", "--to", "emma")
    assert delegated.exit_code == 0 and delegated.output.strip() == f"task {task_id}: delegated by eve to emma"
    assert tasks.get_task(app, task_id).assignee == "emma"
    assert run("assign", "--help").exit_code == 0


def test_a_gate_approval_cannot_be_claimed_it_stays_with_the_whole_group(app):
    instance_id, reviewer_task, _qa = open_gate(app)
    with pytest.raises(Conflict) as caught:
        tasks.claim(app, reviewer_task, "rita")
    assert "gate approval" in caught.value.message and "cannot be claimed" in caught.value.message
    assert reviewer_task in visible_ids(app, "ray")  # still in every reviewer's inbox
    assert events(app, instance_id, "claimed") == []


def test_a_revoked_role_releases_the_tasks_the_user_held(app):
    instance_id, task_id = start(app)
    other_id, other_task = start(app, "G-2")
    tasks.claim(app, task_id, "emma")
    tasks.assign(app, other_task, "eve", "emma")
    users.grant(app, "emma", "reviewer")  # another role: it does not let her work on prepare tasks
    users.revoke(app, "emma", "engineer", actor="admin")
    for held, instance in ((task_id, instance_id), (other_task, other_id)):
        assert tasks.get_task(app, held).assignee is None
        assert held in visible_ids(app, "eve")  # back in the engineers' inbox
        [released] = events(app, instance, "unclaimed")
        assert (released.actor, released.task_id, released.payload) == (
            "admin", held, {"previous_assignee": "emma", "reason": "role 'engineer' revoked"})
        assert_chain_intact(app, instance)
    assert visible_ids(app, "emma") == set()

"""The portfolio (engine.services.portfolio, /portfolio, GET /api/v1/portfolio): every running
instance by phase and gate status, overdue first, with counts per phase; on SQLite and
PostgreSQL (`db_url`).

Model: tests/models/gated.bpmn (phase Build; prepare by an engineer -> gate review_gate: 2
reviewers and a qa_lead, quorum 2, qa_lead veto, signature, due P3D) and the flagship
(processes/, eight phases) for real phase order and gates.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from engine.adapters.database import StatementCounter
from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import Forbidden, InvalidInput
from engine.domain.gate_config import gate_from_dict
from engine.domain.permissions import Action, Actor, allowed
from engine.services import definitions, gates, instances, portfolio, scenarios, tasks, users
from tests.api_support import GATED_FILES, PASSWORD, PREPARED, Api
from tests.test_pages import Browser, html
from tests.clock_support import frozen_at

ADMIN = Actor("admin", {"admin"})
PMO = Actor("paula", {"pmo"})
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def frozen():
    yield from frozen_at(T0)


@pytest.fixture
def app(db_url, frozen):
    engine_app = Phasegate(db_url)
    users.add_user(engine_app, "admin", ["admin"], password=PASSWORD, exist_ok=True)
    for name, roles in [("eve", ["engineer"]), ("rita", ["reviewer"]), ("ray", ["reviewer"]), ("quinn", ["qa_lead"]),
                        ("audrey", ["auditor"]), ("paula", ["pmo"]), ("dora", ["designer"]), ("otto", ["outsider"])]:
        users.add_user(engine_app, name, roles, password=PASSWORD)
    definitions.deploy_files(engine_app, GATED_FILES, "admin")
    yield engine_app
    engine_app.dispose()


def start(app, key, prepared=False, user="admin"):
    instance = instances.start(app, "gated", business_key=key, user=user)
    if prepared:
        tasks.complete(app, instance.tasks[0].id, "eve", PREPARED)
    return instance


def approval(app, instance_id, role):
    return next(t for t in instances.show(app, instance_id).tasks if t.role == role)


def keys(view) -> list[str]:
    return [e.business_key for e in view.entries]


def three_instances(app, frozen):
    """G-2 at its gate since T0 (approvals due T0+3d), G-3 at its gate since T0+2d, G-1 still
    being prepared (no due date); the clock at T0+4d, so only G-2 is overdue."""
    g2 = start(app, "G-2", prepared=True)
    frozen.advance(days=2)
    g3 = start(app, "G-3", prepared=True)
    g1 = start(app, "G-1", user="paula")
    frozen.advance(days=2)
    return g1, g2, g3


# ------------------------------------------------------------------------------- the service


def test_overdue_first_then_by_due_date_with_counts_per_phase(app, frozen):
    g1, g2, g3 = three_instances(app, frozen)
    view = portfolio.portfolio(app, ADMIN)
    assert keys(view) == ["G-2", "G-3", "G-1"]
    first, second, third = view.entries
    assert (first.overdue, first.open_tasks, first.overdue_tasks) == (True, 2, 2)  # reviewer and qa_lead groups
    assert first.oldest_due == T0 + timedelta(days=3)
    assert (second.overdue, second.oldest_due) == (False, T0 + timedelta(days=5))
    assert (third.open_tasks, third.oldest_due, third.gate_status) == (1, None, "none")
    assert (first.phase, first.phase_since) == ("Build", T0)  # entered Build when started (prepare)
    assert third.phase_since == T0 + timedelta(days=2)
    assert view.total == 3 and view.counts == {"active": 3, "overdue": 1, "at_gate": 2, "blocked": 0, "errors": 0}
    [pipeline] = view.pipelines
    assert (pipeline.key, pipeline.name, [(p.phase, p.instances, p.overdue) for p in pipeline.phases]) == (
        "gated", "Gated work", [("Build", 3, 1)])
    assert view.phases == ["Build"] and view.processes == [("gated", "Gated work")]

    [gate] = first.open_gates
    assert (gate.title, gate.round, gate.state, gate.approvals, gate.needed, gate.overdue) == (
        "Quality review", 1, "open", 0, 2, True)
    gates.decide(app, approval(app, g2.id, "reviewer").id, "rita", "go", password=PASSWORD)
    [gate] = portfolio.portfolio(app, ADMIN).entries[0].open_gates
    assert (gate.approvals, gate.against, gate.needed) == (1, 0, 2)

    # a completed instance leaves the portfolio
    gates.decide(app, approval(app, g3.id, "reviewer").id, "rita", "go", password=PASSWORD)
    gates.decide(app, approval(app, g3.id, "reviewer").id, "ray", "go", password=PASSWORD)
    assert instances.show(app, g3.id).state == "completed"
    assert keys(portfolio.portfolio(app, ADMIN)) == ["G-2", "G-1"]
    assert g1.id


def test_filters_and_pages(app, frozen):
    three_instances(app, frozen)
    overdue = portfolio.portfolio(app, ADMIN, overdue_only=True)
    assert keys(overdue) == ["G-2"] and overdue.total == 1
    assert overdue.counts["active"] == 3  # the counts ignore the phase and overdue filters
    assert keys(portfolio.portfolio(app, ADMIN, phase="Build")) == ["G-2", "G-3", "G-1"]
    nowhere = portfolio.portfolio(app, ADMIN, phase="Design")
    assert (nowhere.entries, nowhere.total, nowhere.pages) == ([], 0, 1)
    assert keys(portfolio.portfolio(app, ADMIN, process="gated")) == ["G-2", "G-3", "G-1"]
    other = portfolio.portfolio(app, ADMIN, process="other")
    assert (other.entries, other.pipelines, other.counts["active"]) == ([], [], 0)

    first = portfolio.portfolio(app, ADMIN, per_page=2)
    second = portfolio.portfolio(app, ADMIN, per_page=2, page=2)
    assert (keys(first), keys(second), first.total, first.pages) == (["G-2", "G-3"], ["G-1"], 3, 2)
    with pytest.raises(InvalidInput):
        portfolio.portfolio(app, ADMIN, per_page=0)


def test_decided_blocked_and_on_hold_gates(app, frozen):
    g2 = start(app, "G-2", prepared=True)
    # the qa_lead's veto decides the gate at once: back to prepare
    gates.decide(app, approval(app, g2.id, "qa_lead").id, "quinn", "recycle", comment="blockers", password=PASSWORD)
    [entry] = portfolio.portfolio(app, ADMIN).entries
    assert entry.gate_status == "decided" and entry.open_gates == []
    assert (entry.last_gate.title, entry.last_gate.outcome, entry.last_gate.round) == ("Quality review", "recycle", 1)

    # an open action item (of an earlier conditional go) blocks the gate when it opens again
    [decided] = [g for g in gates.gates_view(app, g2.id) if g["state"] == "rejected"]
    with app.uow() as uow:
        gate_id = uow.gates.for_instance(g2.id)[0].id
        uow.gates.add_action_items([{"instance_id": g2.id, "gate_id": gate_id, "text": "sign the test plan",
                                     "owner": "eve", "state": "open", "created_at": clock.now()}])
        uow.commit()
    assert decided["outcome"] == "recycle"
    [rework] = instances.show(app, g2.id).tasks
    tasks.complete(app, rework.id, "eve", PREPARED)
    view = portfolio.portfolio(app, ADMIN)
    [entry] = view.entries
    assert entry.gate_status == "blocked" and entry.action_items_open == 1
    [gate] = entry.open_gates
    assert (gate.state, gate.round) == ("blocked", 2)
    assert entry.last_gate.outcome == "recycle"
    assert (view.counts["blocked"], view.counts["at_gate"]) == (1, 0)

    # a Hold decision leaves the instance on hold until the gate is decided again
    with app.uow() as uow:
        uow.gates.update(gate_id, outcome="hold")
        uow.gates.update(uow.gates.for_instance(g2.id)[1].id, state="withdrawn")
        uow.commit()
    [entry] = portfolio.portfolio(app, ADMIN).entries
    assert entry.gate_status == "on-hold" and entry.last_gate.outcome == "hold"


def test_approvals_needed_by_rule():
    def needed(rule, approvers=({"role": "a", "count": 2}, {"role": "b"})):
        return portfolio.approvals_needed(gate_from_dict("g", {"approvers": list(approvers), "rule": rule}))

    assert needed({"kind": "any"}) == 1
    assert needed({"kind": "quorum", "quorum": 2}) == 2
    assert needed({"kind": "all"}) == 3 and needed({"kind": "n_of_m"}) == 3
    assert needed({"kind": "percentage", "percentage": 60}) is None


def test_who_may_read_it(app, frozen):
    three_instances(app, frozen)
    assert allowed(ADMIN, Action.PORTFOLIO) and allowed(PMO, Action.PORTFOLIO)
    assert allowed(Actor("audrey", {"auditor"}), Action.PORTFOLIO)
    for outsider in (Actor("otto", {"outsider"}), Actor("dora", {"designer"}), Actor("rita", {"reviewer"})):
        with pytest.raises(Forbidden):
            portfolio.portfolio(app, outsider)
    assert all(e.readable for e in portfolio.portfolio(app, Actor("audrey", {"auditor"})).entries)
    # the pmo role reads the portfolio and opens every instance from it; an outsider's would not open
    readable = {e.business_key: e.readable for e in portfolio.portfolio(app, PMO).entries}
    assert readable == {"G-1": True, "G-2": True, "G-3": True}
    for entry in portfolio.portfolio(app, PMO).entries:
        instances.detail(app, entry.id, actor=PMO)  # no Forbidden
    assert not allowed(PMO, Action.START) and PMO.process_roles == frozenset()


def test_a_bounded_number_of_statements_whatever_the_number_of_instances(app, frozen):
    start(app, "S-1", prepared=True)
    start(app, "S-2")
    portfolio.portfolio(app, PMO)  # loads the process's phase order once (cached)
    counter = StatementCounter(app.engine)
    counter.keep_text = True
    try:
        few = {}
        for who in (ADMIN, PMO):
            counter.reset()
            portfolio.portfolio(app, who)
            few[who.name] = counter.count
        for n in range(12):
            instance = start(app, f"M-{n}", prepared=n % 2 == 0)
            if n % 4 == 0:
                gates.decide(app, approval(app, instance.id, "reviewer").id, "rita", "go", password=PASSWORD)
        many = {}
        for who in (ADMIN, PMO):
            counter.reset()
            view = portfolio.portfolio(app, who)
            many[who.name] = counter.count
        statements = list(counter.statements)
    finally:
        counter.close()
    assert view.total == 14
    assert many == few, statements
    assert many["admin"] <= 5 and many["paula"] <= 6, statements


# ---------------------------------------------------------------------------------- flagship


def drive(app, tmp_path, business_key: str, steps: int) -> int:
    """A flagship instance started like processes/scenarios/happy_path.yaml and driven through
    its first `steps` steps (a gate step: decided by its approvers)."""
    scenario = yaml.safe_load((scenarios_dir() / "happy_path.yaml").read_text())
    scenario["business_key"] = business_key
    scenario["steps"] = scenario["steps"][:steps]
    scenario.pop("expect", None)
    path = tmp_path / f"{business_key}.yaml"
    path.write_text(yaml.safe_dump(scenario, allow_unicode=True))
    return scenarios.run_scenario(app, "crm_implementation", path).instance_id


def scenarios_dir():
    from tests.test_flagship import SCENARIOS

    return SCENARIOS


def test_flagship_phases_in_process_order_with_gates(app, frozen, tmp_path):
    from tests.test_flagship import prepare

    prepare(app)
    at_gate = drive(app, tmp_path, "CRM-GATE", 3)  # the charter is written: its approval gate is open
    past_gate = drive(app, tmp_path, "CRM-REQ", 4)  # the charter approved: in Requirements
    just_started = drive(app, tmp_path, "CRM-NEW", 0)
    view = portfolio.portfolio(app, ADMIN, process="crm_implementation")
    [pipeline] = view.pipelines
    assert [p.phase for p in pipeline.phases] == [
        "Kickoff", "Requirements", "System Selection", "Design", "Iterative Build", "Deployment",
        "Training and Go-Live", "Closure"]
    assert [(p.phase, p.instances) for p in pipeline.phases if p.instances] == [("Kickoff", 2), ("Requirements", 1)]
    assert view.phases == [p.phase for p in pipeline.phases]
    entries = {e.id: e for e in view.entries}
    [gate] = entries[at_gate].open_gates
    assert (gate.title, gate.round, gate.approvals, gate.needed) == ("Project charter approval", 1, 0, 1)
    assert entries[at_gate].phase == "Kickoff"
    assert entries[past_gate].phase == "Requirements" and entries[past_gate].gate_status == "decided"
    assert (entries[past_gate].last_gate.title, entries[past_gate].last_gate.outcome) == (
        "Project charter approval", "go")
    assert entries[just_started].gate_status == "none" and entries[just_started].open_tasks == 1
    assert set(entries) == {at_gate, past_gate, just_started}
    # with the gated model deployed too, both processes have their own row
    start(app, "G-1")
    assert [p.key for p in portfolio.portfolio(app, ADMIN).pipelines] == ["crm_implementation", "gated"]


# ------------------------------------------------------------------------------ page and API


def test_portfolio_page_for_admins_auditors_and_pmo(app, frozen):
    g1, g2, g3 = three_instances(app, frozen)
    browser = Browser(app)
    browser.sign_in("admin")
    page = html(browser.get("/portfolio"))
    assert 'href="/portfolio" aria-current="page">Portfolio<' in page
    order = [int(n) for n in re.findall(r'<tr data-instance="(\d+)"', page)]
    assert order == [g2.id, g3.id, g1.id]
    assert f'href="/instances/{g2.id}"' in page and "Quality review" in page and "0/2 approvals" in page
    assert "(overdue)" in page and 'class="pipeline" data-process="gated"' in page
    assert 'href="/portfolio?process=gated&amp;phase=Build"' in page
    assert re.search(r'id="active-count">3<', page)

    assert [int(n) for n in re.findall(r'data-instance="(\d+)"', html(browser.get("/portfolio?overdue=1")))] == [g2.id]
    assert "No running instances match" in html(browser.get("/portfolio?phase=Design"))
    paged = html(browser.get("/portfolio?per_page=25&page=abc&process=gated"))  # a bad page number: page 1
    assert paged.count("<tr data-instance=") == 3
    assert html(browser.get("/portfolio?per_page=7")).count("<tr data-instance=") == 3  # unknown size: default

    pmo = Browser(app)
    pmo.sign_in("paula")
    page = html(pmo.get("/portfolio"))
    assert ">Portfolio<" in page and ">Overview<" not in page and ">Start<" not in page
    assert f'href="/instances/{g1.id}"' in page and f'href="/instances/{g2.id}"' in page  # every project opens
    assert pmo.get(f"/instances/{g2.id}").status_code == 200

    auditor = Browser(app)
    auditor.sign_in("audrey")
    assert auditor.get("/portfolio").status_code == 200

    reviewer = Browser(app)
    reviewer.sign_in("rita")
    assert ">Portfolio<" not in html(reviewer.get("/inbox"))
    refused = reviewer.get("/portfolio")
    assert refused.status_code == 403 and "read the portfolio" in html(refused)


def test_portfolio_api(app, frozen):
    g1, g2, g3 = three_instances(app, frozen)
    api = Api(app)
    for name in ("admin", "paula", "rita"):
        api.add_user(name)
    response = api.get("/portfolio?per_page=2", as_="paula")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["total"], body["pages"], body["page"]) == (3, 2, 1)
    assert [e["business_key"] for e in body["instances"]] == ["G-2", "G-3"]
    first = body["instances"][0]
    assert first["overdue"] is True and first["readable"] is True and first["gate_status"] == "open"
    assert first["gates"][0]["needed"] == 2 and first["gates"][0]["title"] == "Quality review"
    assert datetime.fromisoformat(first["oldest_due"]) == T0 + timedelta(days=3)
    assert body["pipelines"] == [{"key": "gated", "name": "Gated work", "version": 1, "instances": 3, "overdue": 1,
                                  "phases": [{"phase": "Build", "instances": 3, "overdue": 1}]}]
    assert body["counts"]["at_gate"] == 2
    overdue = api.get("/portfolio?overdue=true&phase=Build", as_="admin").get_json()
    assert [e["id"] for e in overdue["instances"]] == [g2.id]
    assert api.get("/portfolio", as_="rita").status_code == 403
    bad = api.get("/portfolio?per_page=0&colour=red", as_="admin")
    assert bad.status_code == 422 and set(bad.get_json()["details"]["fields"]) == {"per_page", "colour"}

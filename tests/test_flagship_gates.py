"""The flagship's phase gates with their real configuration (processes/crm_implementation.gates.yaml).

Every gate of processes/crm_implementation.bpmn is configured and decided on the happy path
(states, outcomes, rounds, who decided, signatures, the entry criteria values recorded);
every main-line gate rejected once and passed in round 2 (approval tasks and events of round 2);
a Conditional Go whose action items keep the next gate blocked until their owners close them,
then a Kill; Hold and Kill at go/no-go, the automatic Hold when the Sponsor does not decide; a
Kill ending side work; entry criteria refusing what does not meet them with the values named;
the quality bar routing failed tests straight back to fixing; separation of duties on the
flagship's own tasks; overrides a small project uses. On SQLite and PostgreSQL (`db_url`).

The expectations are written out here, not derived from a run.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from lxml import etree

from engine.adapters.gate_files import load_gate_config
from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.errors import Forbidden, InvalidInput
from engine.domain.routing import parse_duration
from engine.services import definitions, gates, instances, scenarios, tasks, users
from tests.test_flagship import prepare
from engine.services.scenarios import ScenarioFailed
from tests.clock_support import frozen_at

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"
SCENARIOS = PROCESSES / "scenarios"
BPMN = PROCESSES / "crm_implementation.bpmn"
GATES_FILE = PROCESSES / "crm_implementation.gates.yaml"
KEY = "crm_implementation"
BPMN_NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
           "camunda": "http://camunda.org/schema/1.0/bpmn"}

SP, PM, BC, TL, QL, TR, KU = ("Sponsor", "Project Manager", "Business Consultant", "Technical Lead",
                              "Quality Lead", "Trainer", "Key User")
ROLES = {SP, PM, BC, TL, QL, TR, KU}

# gate id -> (gate task, approver groups, the flows its outcomes take)
GATES = {
    "charter_approval": ("gate_charter_approval", [SP], {
        "go": "flow_kickoff_charter_approved_to_kickoff_end",
        "conditional-go": "flow_kickoff_charter_approved_to_kickoff_end",
        "recycle": "flow_kickoff_charter_approved_to_kickoff_revise_charter",
        "kill": "flow_kickoff_charter_approved_to_kickoff_killed"}),
    "requirements_signoff": ("gate_requirements_signoff", [SP, BC], {
        "go": "flow_req_signed_off_to_req_end", "conditional-go": "flow_req_signed_off_to_req_end",
        "recycle": "flow_req_signed_off_to_req_revise_requirements", "kill": "flow_req_signed_off_to_req_killed"}),
    "selection_approval": ("gate_selection_approval", [SP], {
        "go": "flow_sel_approved_to_sel_end", "conditional-go": "flow_sel_approved_to_sel_end",
        "recycle": "flow_sel_approved_to_sel_revise_shortlist", "kill": "flow_sel_approved_to_sel_killed"}),
    "design_review": ("gate_design_review", [KU, QL], {
        "go": "flow_design_approved_to_design_end", "conditional-go": "flow_design_approved_to_design_end",
        "recycle": "flow_design_approved_to_design_rework"}),
    "quality_review": ("gate_quality_review", [QL], {
        "go": "flow_build_quality_ok_to_build_user_training",
        "conditional-go": "flow_build_quality_ok_to_build_user_training",
        "recycle": "flow_build_quality_ok_to_build_fix_defects"}),
    "go_no_go": ("gate_go_no_go", [SP], {
        "go": "flow_deploy_go_to_deploy_production_migration",
        "conditional-go": "flow_deploy_go_to_deploy_production_migration",
        "hold": "flow_deploy_go_to_deploy_hold_wait", "recycle": "flow_deploy_go_to_deploy_resolve_blockers",
        "kill": "flow_deploy_go_to_deploy_killed"}),
    "golive_signoff": ("gate_golive_signoff", [SP], {
        "go": "flow_golive_signed_off_to_golive_end", "conditional-go": "flow_golive_signed_off_to_golive_end",
        "recycle": "flow_golive_signed_off_to_golive_extend_support"}),
    "final_acceptance": ("gate_final_acceptance", [SP], {
        "go": "flow_closure_accepted_to_closure_end", "conditional-go": "flow_closure_accepted_to_closure_end",
        "recycle": "flow_closure_accepted_to_closure_resolve_acceptance_issues"}),
    "change_approval": ("gate_change_approval", [SP], {
        outcome: "flow_gate_change_approval_to_change_merge" for outcome in ("go", "conditional-go", "hold", "recycle")}),
}
SIGNED = {"go_no_go": "Go-live decision signed as Sponsor (go = approved go-live as Sponsor).",
          "final_acceptance": "Final acceptance decision signed as Sponsor (go = project result accepted)."}


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
def frozen_clock():
    yield from frozen_at(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def app(db_url, frozen_clock):
    application = Phasegate(db_url)
    prepare(application)
    yield application
    application.dispose()


class Drive:
    """A scenario file step by step, as `run_scenario` does it, stopping where a test wants."""

    def __init__(self, app: Phasegate, name: str, *, gate_overrides: dict | None = None):
        self.app = app
        scenario = scenarios.load_scenario(SCENARIOS / f"{name}.yaml")
        start = scenario["start"]
        self.id = instances.start(app, KEY, data=start["data"], business_key=scenario.get("business_key"),
                                  user=start["user"], gate_overrides=gate_overrides).id
        self.steps = list(scenarios._flatten(scenario["steps"]))
        self.run = scenarios.ScenarioRun(self.id)
        self.expect = scenario.get("expect", {})

    def next_step(self) -> dict:
        return self.steps[0][1]

    def step(self, **changes) -> None:
        """Do the next step; `changes` replace keys of it (another user, other data)."""
        label, step = self.steps.pop(0)
        scenarios.run_step(self.app, self.run, label, {**step, **changes}, instances.show(self.app, self.id),
                           default_user="project-manager")

    def until(self, element: str, occurrence: int = 1) -> None:
        """Do the steps before the `occurrence`-th step on `element` (a task, or a `close_action`)."""
        seen = 0
        while True:
            step = self.next_step()
            if element in (step.get("task"), step.get("close_action")):
                seen += 1
                if seen == occurrence:
                    return
            self.step()

    def finish(self) -> None:
        while self.steps:
            self.step()

    def gate(self, gate_id: str, round_no: int | None = None) -> dict:
        rounds = [g for g in gates.gates_view(self.app, self.id) if g["gate"] == gate_id]
        return rounds[-1] if round_no is None else next(g for g in rounds if g["round"] == round_no)

    def approvals(self, element: str) -> list:
        return [t for t in instances.show(self.app, self.id).tasks if t.element_id == element]


def summary(app: Phasegate, instance_id: int) -> list[tuple]:
    """gates_view as (gate, round, state, outcome, submitter, [(user, group, vote)])."""
    return [(g["gate"], g["round"], g["state"], g.get("outcome"), g.get("submitter"),
             [(d["user"], d["role"], d["outcome"]) for d in g["decisions"]])
            for g in gates.gates_view(app, instance_id)]


def gate_events(app: Phasegate, instance_id: int, kind: str = "gate_decided") -> list[tuple]:
    return [(e.payload["gate"], e.payload["round"], e.payload["outcome"], e.actor)
            for e in instances.history(app, instance_id) if e.type == kind]


# ------------------------------------------------------------------------- the configuration


def test_every_gate_of_the_flagship_is_configured_and_checks_clean():
    config = load_gate_config(GATES_FILE)
    assert config.process == KEY
    assert sorted(config.gates) == sorted(GATES)

    # Every gate task of the BPMN carries a configured gate; nothing else does.
    tree = etree.parse(str(BPMN))
    carried = {prop.getparent().getparent().getparent().get("id"): prop.get("value")
               for prop in tree.iterfind(".//camunda:property[@name='gate']", BPMN_NS)}
    assert carried == {task: gate_id for gate_id, (task, _groups, _flows) in GATES.items()}

    for gate_id, (_task, groups, flows) in GATES.items():
        gate = config.gates[gate_id]
        # Roles are the process's lanes; one member per group decides, so one demo user per
        # role can decide every gate.
        assert [g.role for g in gate.approvers] == groups, gate_id
        assert all(g.count == 1 for g in gate.approvers), gate_id
        assert {gate.escalation.reassign_to, gate.rework.escalate_to} - {None} <= ROLES, gate_id
        assert dict(gate.outcomes) == flows, gate_id
        assert gate.due and gate.escalation.remind_after, gate_id
        assert gate.rule.allow_abstain is False, gate_id
        assert gate.signature == SIGNED.get(gate_id), gate_id

    requirements = config.gates["requirements_signoff"]
    assert (requirements.rule.kind, requirements.rule.veto_roles) == ("n_of_m", (SP,))
    assert (requirements.rework.max_rounds, requirements.rework.escalate_to) == (3, SP)
    design = config.gates["design_review"]
    assert design.rule.kind == "n_of_m" and design.separation.submitter_may_not_approve is False
    assert set(design.separation.exclude_completers_of) == {
        "design_business_processes", "design_data_model", "design_integrations", "design_rework"}
    assert (design.escalation.reassign_after, design.escalation.reassign_to) == ("P7D", PM)
    quality = config.gates["quality_review"]
    assert set(quality.separation.exclude_completers_of) == {"build_develop", "build_fix_defects"}
    assert quality.rework.max_rounds is None  # reached once per iteration: see the comment in the file
    assert (config.gates["go_no_go"].escalation.auto_decide_after,
            config.gates["go_no_go"].escalation.auto_decide) == ("P5D", "hold")
    assert "approvers" in requirements.overridable  # a small project signs off with the Sponsor alone

    # `phasegate check processes/` reads the gates file with the model: no error, no warning.
    package, issues = definitions.check(PROCESSES)
    assert package is not None
    assert issues == []


def test_the_quality_bar_before_the_gate_is_the_gates_entry_criteria():
    """build_tests_green routes results below the bar to fixing; the bar is the quality review's
    entry criteria, joined by `and` - so the gate never refuses the last tester's results."""
    criteria = [c.expression for c in load_gate_config(GATES_FILE).gates["quality_review"].criteria]
    tree = etree.parse(str(BPMN))
    [flow] = tree.xpath("//bpmn:sequenceFlow[@sourceRef='build_tests_green'][@targetRef='gate_quality_review']",
                        namespaces=BPMN_NS)
    assert flow.findtext("bpmn:conditionExpression", namespaces=BPMN_NS) == " and ".join(criteria)
    [gateway] = tree.xpath("//bpmn:exclusiveGateway[@id='build_tests_green']", namespaces=BPMN_NS)
    assert gateway.get("default") == "flow_build_tests_green_to_build_fix_defects"


def test_kill_leaves_each_phase_through_a_terminate_end():
    """A killed phase ends at its "Project killed" end event; the gateway after the phase goes to
    "Project stopped", a terminate end event of the process (not of the phase)."""
    tree = etree.parse(str(BPMN))
    [process] = tree.xpath("/bpmn:definitions/bpmn:process", namespaces=BPMN_NS)
    for key, end in (("kickoff", "kickoff_killed"), ("requirements", "req_killed"),
                     ("system_selection", "sel_killed"), ("deployment", "deploy_killed")):
        [inner] = tree.xpath(f"//bpmn:endEvent[@id='{end}']", namespaces=BPMN_NS)
        assert inner.get("name") == "Project killed" and inner.getparent().get("id") == f"phase_{key}"
        [stopped] = process.xpath(f"bpmn:endEvent[@id='stopped_{key}']", namespaces=BPMN_NS)
        assert stopped.get("name") == "Project stopped"
        assert stopped.find("bpmn:terminateEventDefinition", BPMN_NS) is not None
        [check] = process.xpath(f"bpmn:sequenceFlow[@sourceRef='check_{key}_killed'][@targetRef='stopped_{key}']",
                                namespaces=BPMN_NS)
        assert check.findtext("bpmn:conditionExpression", namespaces=BPMN_NS) == 'gate_outcome == "kill"'


# ------------------------------------------------------------------------ the happy path


def test_happy_path_decides_every_gate(app):
    run = scenarios.run_scenario(app, KEY, SCENARIOS / "happy_path.yaml")
    assert summary(app, run.instance_id) == [
        ("charter_approval", 1, "passed", "go", "project-manager", [("sponsor", SP, "go")]),
        ("requirements_signoff", 1, "passed", "go", "key-user",
         [("sponsor", SP, "go"), ("business-consultant", BC, "go")]),
        ("selection_approval", 1, "passed", "go", "project-manager", [("sponsor", SP, "go")]),
        # The last review's author (the Key User) opens the gate and decides it: the submitter
        # rule is off there, the designers are excluded instead.
        ("design_review", 1, "passed", "go", "key-user", [("key-user", KU, "go"), ("quality-lead", QL, "go")]),
        # Reached once per build iteration: a round each.
        # Each iteration's quality review is a new review, round 1 (rounds count rework, not loops).
        ("quality_review", 1, "passed", "go", "key-user", [("quality-lead", QL, "go")]),
        ("quality_review", 1, "passed", "go", "key-user", [("quality-lead", QL, "go")]),
        ("quality_review", 1, "passed", "go", "key-user", [("quality-lead", QL, "go")]),
        ("go_no_go", 1, "passed", "go", "technical-lead", [("sponsor", SP, "go")]),
        ("golive_signoff", 1, "passed", "go", "trainer", [("sponsor", SP, "go")]),
        ("final_acceptance", 1, "passed", "go", "business-consultant", [("sponsor", SP, "go")]),
        ("change_approval", 0, "not opened", None, None, []),   # no change request in this project
    ]
    view: dict = {}
    for g in gates.gates_view(app, run.instance_id):
        view.setdefault((g["gate"], g["round"]), g)  # the first of a gate's round-1 reviews
    # Signed where the file says so, with its meaning.
    for (gate_id, _round), entry in view.items():
        assert [d["signature"] for d in entry["decisions"]] == [SIGNED.get(gate_id)] * len(entry["decisions"])
    # The entry criteria values each round saw.
    assert view[("charter_approval", 1)]["criteria"] == {
        "budget_requested": {"met": True, "values": {"budget": 850000}, "expression": "budget > 0"}}
    assert view[("selection_approval", 1)]["criteria"]["cost_stated"]["values"] == {"five_year_cost": 760000}
    assert view[("go_no_go", 1)]["criteria"]["rehearsal_passed"]["values"] == {"rehearsal_result": "pass"}
    assert view[("quality_review", 1)]["criteria"]["pass_rates"] == {
        "met": True, "expression": "min(functional_pass_rate, performance_pass_rate, security_pass_rate) >= 95",
        "values": {"functional_pass_rate": 97.5, "performance_pass_rate": 100, "security_pass_rate": 100}}
    # Due dates as configured, counted from the moment each gate opened.
    for (gate_id, _round), entry in view.items():
        if entry["state"] != "not opened":
            due = datetime.fromisoformat(entry["due"]) - datetime.fromisoformat(entry["opened_at"])
            assert due == parse_duration(load_gate_config(GATES_FILE).gates[gate_id].due), gate_id

    # One gate_decided event per round; every approval task completed, none left or withdrawn.
    assert gate_events(app, run.instance_id) == [
        ("charter_approval", 1, "go", "sponsor"), ("requirements_signoff", 1, "go", "business-consultant"),
        ("selection_approval", 1, "go", "sponsor"), ("design_review", 1, "go", "quality-lead"),
        ("quality_review", 1, "go", "quality-lead"), ("quality_review", 1, "go", "quality-lead"),
        ("quality_review", 1, "go", "quality-lead"), ("go_no_go", 1, "go", "sponsor"),
        ("golive_signoff", 1, "go", "sponsor"), ("final_acceptance", 1, "go", "sponsor")]
    approvals = [t for t in tasks.list_tasks(app, instance_id=run.instance_id,
                                             states=("ready", "completed", "withdrawn", "cancelled"))
                 if t.kind == "approval"]
    assert len(approvals) == 12 and {t.state for t in approvals} == {"completed"}
    final = instances.show(app, run.instance_id)
    assert (final.state, final.outcome, final.data["gate_outcome"], final.data["decision"]) == (
        "completed", None, "go", "approve")
    assert gates.action_items(app, run.instance_id) == []


# -------------------------------------------------------------------------- rejections


def test_rejection_at_every_gate_goes_to_round_2(app):
    run = scenarios.run_scenario(app, KEY, SCENARIOS / "rejection_at_every_gate.yaml")
    assert summary(app, run.instance_id) == [
        ("charter_approval", 1, "rejected", "recycle", "project-manager", [("sponsor", SP, "recycle")]),
        ("charter_approval", 2, "passed", "go", "project-manager", [("sponsor", SP, "go")]),
        # The Sponsor's veto decides at once; the Business Consultant's approval is withdrawn.
        ("requirements_signoff", 1, "rejected", "recycle", "key-user", [("sponsor", SP, "recycle")]),
        ("requirements_signoff", 2, "passed", "go", "key-user",
         [("sponsor", SP, "go"), ("business-consultant", BC, "go")]),
        ("selection_approval", 1, "rejected", "recycle", "project-manager", [("sponsor", SP, "recycle")]),
        ("selection_approval", 2, "passed", "go", "project-manager", [("sponsor", SP, "go")]),
        # The technical group can no longer approve: decided without the business reviewer.
        ("design_review", 1, "rejected", "recycle", "key-user", [("quality-lead", QL, "recycle")]),
        ("design_review", 2, "passed", "go", "key-user", [("key-user", KU, "go"), ("quality-lead", QL, "go")]),
        ("quality_review", 1, "passed", "go", "key-user", [("quality-lead", QL, "go")]),          # iteration 1
        ("quality_review", 1, "rejected", "recycle", "key-user", [("quality-lead", QL, "recycle")]),  # iteration 2
        ("quality_review", 2, "passed", "go", "key-user", [("quality-lead", QL, "go")]),          # after the fix
        ("go_no_go", 1, "rejected", "recycle", "technical-lead", [("sponsor", SP, "recycle")]),
        ("go_no_go", 2, "passed", "go", "technical-lead", [("sponsor", SP, "go")]),
        ("golive_signoff", 1, "rejected", "recycle", "trainer", [("sponsor", SP, "recycle")]),
        ("golive_signoff", 2, "passed", "go", "trainer", [("sponsor", SP, "go")]),
        ("final_acceptance", 1, "rejected", "recycle", "business-consultant", [("sponsor", SP, "recycle")]),
        ("final_acceptance", 2, "passed", "go", "project-manager", [("sponsor", SP, "go")]),
        ("change_approval", 0, "not opened", None, None, []),
    ]
    view = {(g["gate"], g["round"]): g for g in gates.gates_view(app, run.instance_id)}
    assert view[("requirements_signoff", 1)]["reason"] == "veto by sponsor (Sponsor)"
    assert view[("charter_approval", 1)]["decisions"][0]["comment"].startswith("Budget of EUR 1.2 m exceeds")
    # Round 2 records what changed since round 1: the revised budget.
    assert view[("charter_approval", 2)]["changes"]["budget"] == {"before": 1200000, "after": 980000}
    assert view[("charter_approval", 2)]["criteria"]["budget_requested"]["values"] == {"budget": 980000}

    # Round 2 is visible on the approval tasks ...
    approvals = [(t.element_id, t.name, t.round, t.state)
                 for t in tasks.list_tasks(app, instance_id=run.instance_id, states=("completed", "withdrawn"))
                 if t.kind == "approval" and t.element_id in ("gate_charter_approval", "gate_requirements_signoff",
                                                               "gate_design_review")]
    assert approvals == [
        ("gate_charter_approval", "Project charter approval (Sponsor)", 1, "completed"),
        ("gate_charter_approval", "Project charter approval (Sponsor, round 2)", 2, "completed"),
        ("gate_requirements_signoff", "Requirements sign-off (Sponsor)", 1, "completed"),
        ("gate_requirements_signoff", "Requirements sign-off (Business Consultant)", 1, "withdrawn"),
        ("gate_requirements_signoff", "Requirements sign-off (Sponsor, round 2)", 2, "completed"),
        ("gate_requirements_signoff", "Requirements sign-off (Business Consultant, round 2)", 2, "completed"),
        ("gate_design_review", "Cross-department design review (Key User)", 1, "withdrawn"),
        ("gate_design_review", "Cross-department design review (Quality Lead)", 1, "completed"),
        ("gate_design_review", "Cross-department design review (Key User, round 2)", 2, "completed"),
        ("gate_design_review", "Cross-department design review (Quality Lead, round 2)", 2, "completed"),
    ]
    # ... and on the events: every decision and every gate decided, with its round.
    assert gate_events(app, run.instance_id) == [
        ("charter_approval", 1, "recycle", "sponsor"), ("charter_approval", 2, "go", "sponsor"),
        ("requirements_signoff", 1, "recycle", "sponsor"), ("requirements_signoff", 2, "go", "business-consultant"),
        ("selection_approval", 1, "recycle", "sponsor"), ("selection_approval", 2, "go", "sponsor"),
        ("design_review", 1, "recycle", "quality-lead"), ("design_review", 2, "go", "quality-lead"),
        ("quality_review", 1, "go", "quality-lead"), ("quality_review", 1, "recycle", "quality-lead"),
        ("quality_review", 2, "go", "quality-lead"),
        ("go_no_go", 1, "recycle", "sponsor"), ("go_no_go", 2, "go", "sponsor"),
        ("golive_signoff", 1, "recycle", "sponsor"), ("golive_signoff", 2, "go", "sponsor"),
        ("final_acceptance", 1, "recycle", "sponsor"), ("final_acceptance", 2, "go", "sponsor")]
    decisions = gate_events(app, run.instance_id, "decision")
    assert decisions.count(("requirements_signoff", 2, "go", "sponsor")) == 1
    assert ("design_review", 2, "go", "key-user") in decisions
    recycles = [e for e in instances.history(app, run.instance_id)
                if e.type == "decision" and e.payload["outcome"] == "recycle"]
    assert len(recycles) == 8 and all(e.payload["comment"].strip() for e in recycles)
    # The signed gates carry the signature on every decision, the rejection included.
    assert [e.payload["signature"] for e in instances.history(app, run.instance_id)
            if e.type == "decision" and e.payload["gate"] == "go_no_go"] == [SIGNED["go_no_go"]] * 2


def test_a_rejection_needs_a_reason(app):
    drive = Drive(app, "happy_path")
    drive.until("gate_charter_approval")
    [approval] = drive.approvals("gate_charter_approval")
    with pytest.raises(InvalidInput) as caught:
        gates.decide(app, approval.id, "sponsor", "recycle")
    assert caught.value.message == "a reason is required to recycle"
    with pytest.raises(InvalidInput) as caught:
        gates.decide(app, approval.id, "sponsor", "abstain")
    assert "does not allow abstaining" in caught.value.message
    with pytest.raises(InvalidInput) as caught:  # no Hold at the charter
        gates.decide(app, approval.id, "sponsor", "hold", comment="Wait for the budget round.")
    assert "allowed: conditional-go, go, kill, recycle" in caught.value.message
    assert drive.gate("charter_approval")["decisions"] == []


# ------------------------------------------------------------- conditional go, then kill


def test_conditional_go_blocks_the_next_gate_until_its_action_items_are_closed_then_kill(app):
    drive = Drive(app, "conditional_go_and_kill")
    drive.until("data-protection impact assessment")
    charter = drive.gate("charter_approval")
    assert (charter["state"], charter["outcome"]) == ("passed", "conditional-go")
    items = gates.action_items(app, drive.id)
    assert [(i["text"], i["owner"], i["due"], i["state"]) for i in items] == [
        ("Add a data-protection impact assessment (DPIA) for the customer data to the plan", "project-manager",
         "2026-01-23T00:00:00+00:00", "open"),
        ("Name a Finance key user for the requirements interviews", "business-consultant",
         "2026-01-16T00:00:00+00:00", "open")]
    assert [i["id"] for i in charter["action_items"]] == [i["id"] for i in items]

    # The Requirements work went on; its gate is blocked: no approval task in any inbox.
    signoff = drive.gate("requirements_signoff")
    assert (signoff["state"], signoff["round"], signoff["decisions"]) == ("blocked", 1, [])
    assert drive.approvals("gate_requirements_signoff") == []
    assert tasks.list_tasks(app, user="sponsor", instance_id=drive.id) == []
    with pytest.raises(Forbidden) as caught:     # only the owner (or an admin) closes an item
        gates.close_action_item(app, items[0]["id"], "sponsor")
    assert "only the owner (project-manager)" in caught.value.message

    drive.step()                                 # the project manager closes the DPIA item
    assert drive.gate("requirements_signoff")["state"] == "blocked"   # one item still open
    drive.step()                                 # two days later...
    drive.step()                                 # ...the business consultant closes the other
    signoff = drive.gate("requirements_signoff")
    assert signoff["state"] == "open" and signoff["opened_at"] == "2026-01-07T09:00:00+00:00"
    assert [(i["state"], i["closed_by"], i["note"]) for i in gates.action_items(app, drive.id)] == [
        ("closed", "project-manager", "DPIA added to the plan."),
        ("closed", "business-consultant", "R. Olsen (credit control).")]
    # The approval tasks appear now, due five days after the gate opened.
    assert sorted((t.role, t.due.isoformat()) for t in drive.approvals("gate_requirements_signoff")) == [
        (BC, "2026-01-12T09:00:00+00:00"), (SP, "2026-01-12T09:00:00+00:00")]
    assert [e.type for e in instances.history(app, drive.id)].count("action_item_closed") == 2

    drive.finish()   # sign-off, selection, and the Sponsor kills the project
    final = instances.show(app, drive.id)
    assert (final.state, final.outcome, final.phase, final.tasks) == ("completed", "killed", "System Selection", [])
    assert final.data["gate_outcome"] == "kill" and final.data["decision"] == "reject"
    assert drive.run.path[-2:] == ["sel_recommendation", "gate_selection_approval"]
    assert len(drive.run.path) == 17
    selection = drive.gate("selection_approval")
    assert (selection["state"], selection["outcome"]) == ("rejected", "kill")
    assert selection["decisions"][0]["comment"].startswith("Every candidate that fits costs twice")

    # The runner alone does the same, closing the items with the scenario's close_action steps.
    whole = scenarios.run_scenario(app, KEY, SCENARIOS / "conditional_go_and_kill.yaml")
    assert [re.sub(r"item \d+", "item N", line) for line in whole.log if "closed action item" in line] == [
        "step 8: closed action item N (Add a data-protection impact assessment (DPIA) for the customer data to the plan)",
        "step 10: closed action item N (Name a Finance key user for the requirements interviews)"]
    assert instances.show(app, whole.instance_id).outcome == "killed"

    # Nothing after the selection ever opened.
    assert {g["gate"] for g in gates.gates_view(app, drive.id) if g["state"] == "not opened"} == {
        "design_review", "quality_review", "go_no_go", "golive_signoff", "final_acceptance", "change_approval"}
    assert final.data["requirements_round"] == 1 and "processes" not in final.data


def test_hold_then_kill_at_go_no_go(app, frozen_clock):
    run = scenarios.run_scenario(app, KEY, SCENARIOS / "killed_at_go_no_go.yaml")
    final = instances.show(app, run.instance_id)
    assert (final.state, final.outcome, final.phase, final.tasks) == ("completed", "killed", "Deployment", [])
    assert final.ended_at == datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)   # after `advance: P7D`
    assert run.path[-3:] == ["deploy_migration_rehearsal", "gate_go_no_go", "gate_go_no_go"]
    assert len(run.path) == 35
    rounds = [(g["round"], g["state"], g["outcome"], [d["outcome"] for d in g["decisions"]])
              for g in gates.gates_view(app, run.instance_id) if g["gate"] == "go_no_go"]
    assert rounds == [(1, "rejected", "hold", ["hold"]), (2, "rejected", "kill", ["kill"])]
    # Round 2 was opened by the hold timer, exactly seven days after the hold.
    second = next(g for g in gates.gates_view(app, run.instance_id) if g["gate"] == "go_no_go" and g["round"] == 2)
    assert second["opened_at"] == "2026-01-12T09:00:00+00:00" and second["submitter"] == "timer"
    assert [t.name for t in tasks.list_tasks(app, instance_id=run.instance_id, states=("completed",))
            if t.kind == "approval"][-2:] == ["Go/no-go decision (Sponsor)", "Go/no-go decision (Sponsor, round 2)"]
    assert final.data["gate_outcome"] == "kill" and final.data["rehearsal"] == 1
    assert "migration_result" not in final.data
    assert {g["gate"]: g["state"] for g in gates.gates_view(app, run.instance_id)}["golive_signoff"] == "not opened"


def test_a_kill_withdraws_the_work_still_running(app):
    """"Project stopped" is a terminate end event: a change request being assessed and the
    milestone reminder of the killed phase are withdrawn, and the instance ends."""
    drive = Drive(app, "happy_path")
    drive.until("gate_selection_approval")
    clock.current().advance(timedelta(days=31))           # System Selection passed its 30 days
    instances.fire_due_timers(app)
    instances.send_message(app, drive.id, "change_request", {"summary": "Add field service"}, user="key-user")
    assert sorted(t.element_id for t in instances.show(app, drive.id).tasks) == [
        "change_assess", "gate_selection_approval", "remind_system_selection_overrun"]
    drive.step(outcome="kill", comment="The group's CRM is rolled out to all subsidiaries instead.")
    final = instances.show(app, drive.id)
    assert (final.state, final.outcome, final.tasks) == ("completed", "killed", [])
    withdrawn = {t.element_id: t.state for t in tasks.list_tasks(app, instance_id=drive.id,
                                                                 states=("cancelled", "withdrawn"))}
    assert withdrawn == {"change_assess": "cancelled", "remind_system_selection_overrun": "cancelled"}


# ---------------------------------------------------------------------- escalation, hold


def test_go_no_go_is_put_on_hold_when_the_sponsor_does_not_decide(app, frozen_clock):
    drive = Drive(app, "happy_path")
    drive.until("gate_go_no_go")
    opened = frozen_clock.now()
    frozen_clock.advance(timedelta(days=1, minutes=1))        # remind after P1D
    instances.fire_due_timers(app)
    assert [(e.type, e.payload["waiting_on"]) for e in instances.history(app, drive.id)
            if e.type == "gate_reminder"] == [("gate_reminder", [SP])]
    frozen_clock.advance(timedelta(days=4))                   # auto-decide after P5D: hold
    instances.fire_due_timers(app)
    first = drive.gate("go_no_go", 1)
    assert (first["state"], first["outcome"], first["decisions"]) == ("rejected", "hold", [])
    assert first["reason"] == "decided automatically (hold) after P5D without a decision"
    assert drive.approvals("gate_go_no_go") == []
    frozen_clock.advance(timedelta(days=7, minutes=1))        # the hold timer (P7D): decided again
    instances.fire_due_timers(app)
    second = drive.gate("go_no_go", 2)
    assert second["state"] == "open" and second["opened_at"] == (opened + timedelta(days=12, minutes=2)).isoformat()
    assert [t.name for t in drive.approvals("gate_go_no_go")] == ["Go/no-go decision (Sponsor, round 2)"]
    drive.finish()
    assert instances.show(app, drive.id).state == "completed"


def test_a_silent_design_reviewer_is_replaced_by_the_project_manager(app, frozen_clock):
    drive = Drive(app, "happy_path")
    drive.until("gate_design_review")
    [business, technical] = sorted(drive.approvals("gate_design_review"), key=lambda t: t.role)
    gates.decide(app, technical.id, "quality-lead", "go")
    frozen_clock.advance(timedelta(days=7, minutes=1))
    instances.fire_due_timers(app)   # reminder (P2D) and reassignment (P7D) are both due
    assert [e.type for e in instances.history(app, drive.id) if e.type.startswith("gate_")][-2:] == [
        "gate_reminder", "gate_reassigned"]
    routed = {t.id: t.role for t in drive.approvals("gate_design_review")}
    assert routed[business.id] == PM
    gates.decide(app, business.id, "project-manager", "go", comment="Decided in the review meeting.")
    review = drive.gate("design_review")
    assert (review["state"], [(d["user"], d["role"]) for d in review["decisions"]]) == (
        "passed", [("quality-lead", QL), ("project-manager", KU)])


# ------------------------------------------------------------------------- entry criteria


def test_entry_criteria_refuse_a_charter_without_budget_and_a_recommendation_without_cost(app):
    drive = Drive(app, "happy_path")
    drive.until("kickoff_plan_milestones")
    plan = copy.deepcopy(drive.next_step()["data"])
    del plan["budget"]
    with pytest.raises(ScenarioFailed) as caught:
        drive.step(data=plan)
    message = caught.value.message
    assert "gate 'charter_approval' cannot open" in message
    assert "budget_requested: `budget > 0` could not be evaluated" in message and "budget = '(missing)'" in message
    # Nothing was saved: the plan is still to do, no gate round exists.
    assert [t.element_id for t in instances.show(app, drive.id).tasks] == ["kickoff_plan_milestones"]
    assert drive.gate("charter_approval")["state"] == "not opened"
    drive.steps.insert(0, ("retry", {"task": "kickoff_plan_milestones", "data": dict(plan, budget=0)}))
    with pytest.raises(ScenarioFailed) as caught:
        drive.step()
    assert "budget_requested: `budget > 0` is not met (budget = 0)" in caught.value.message
    drive.steps.insert(0, ("retry", {"task": "kickoff_plan_milestones", "data": dict(plan, budget=850000)}))
    drive.step()
    assert drive.gate("charter_approval")["criteria"]["budget_requested"]["met"] is True

    drive.until("sel_recommendation")
    recommendation = {k: v for k, v in drive.next_step()["data"].items() if k != "five_year_cost"}
    with pytest.raises(ScenarioFailed) as caught:
        drive.step(data=recommendation)
    assert "gate 'selection_approval' cannot open: cost_stated:" in caught.value.message
    assert "five_year_cost = '(missing)'" in caught.value.message


@pytest.mark.parametrize("results, named", [
    ({"security_pass_rate": 91, "security_open_blockers": 0},
     "min(functional_pass_rate, performance_pass_rate, security_pass_rate) >= 95"),
    ({"security_pass_rate": 100, "security_open_blockers": 2},
     "functional_open_blockers + performance_open_blockers + security_open_blockers == 0"),
])
def test_test_results_below_the_bar_go_straight_back_to_fixing(app, results, named):
    """With the real configuration the quality review only opens on results that meet its entry
    criteria: build_tests_green sends the others to fixing (the gate is not reached)."""
    drive = Drive(app, "happy_path")
    drive.until("build_test_security")
    drive.step(data=dict(drive.next_step()["data"], **results))
    drive.step()                                      # functional testing: the last result
    assert [t.element_id for t in instances.show(app, drive.id).tasks] == ["build_fix_defects"]
    assert drive.gate("quality_review")["state"] == "not opened"
    drive.step(task="build_fix_defects", data={"fixed_defects": [{"defect": "SEC-3", "fix": named[:20]}]})
    assert sorted(t.element_id for t in instances.show(app, drive.id).tasks) == [
        "build_test_functional", "build_test_performance", "build_test_security"]


def test_quality_review_entry_criteria_refuse_bad_results_with_the_values(db_url, frozen_clock):
    """A site that deploys a stricter bar (99 % functional) than the model's gateway (95 %): the
    last test result that would open the gate is refused, naming each unmet criterion and the
    values it saw, and nothing is saved. (This is why the model mirrors the bar in a gateway:
    results recorded by the other testers could not be corrected.)"""
    stricter = {"quality_review": {"entry_criteria": {"expressions": [
        {"id": "functional_bar", "expression": "functional_pass_rate >= 99",
         "description": "A regulated site: 99 % of the functional tests pass."},
        {"id": "no_critical_findings", "expression": "security_critical_findings == 0"}]}}}
    app = Phasegate(db_url)
    try:
        prepare(app, gate_overrides=stricter)
        drive = Drive(app, "happy_path")
        drive.until("build_test_functional")
        with pytest.raises(ScenarioFailed) as caught:
            drive.step()
        message = caught.value.message
        assert message.startswith("step 24.round1.4: task 'build_test_functional' rejected the data: "
                                  "gate 'quality_review' cannot open: ")
        assert "functional_bar: `functional_pass_rate >= 99` is not met (functional_pass_rate = 97.5)" in message
        assert "no_critical_findings" not in message   # the security test reported 0 critical findings
        assert [t.element_id for t in instances.show(app, drive.id).tasks] == ["build_test_functional"]
        assert drive.gate("quality_review")["state"] == "not opened"
        drive.steps.insert(0, ("retest", {"task": "build_test_functional", "data": {
            "functional_test_cases": 120, "functional_pass_rate": 99.2, "functional_open_blockers": 0}}))
        drive.step()
        criteria = drive.gate("quality_review")["criteria"]
        assert criteria == {
            "functional_bar": {"met": True, "values": {"functional_pass_rate": 99.2},
                               "expression": "functional_pass_rate >= 99"},
            "no_critical_findings": {"met": True, "values": {"security_critical_findings": 0},
                                     "expression": "security_critical_findings == 0"}}
    finally:
        app.dispose()


# --------------------------------------------------------------------- separation of duties


def test_the_project_manager_who_wrote_the_charter_cannot_approve_it(app):
    """A small company: the managing director is Sponsor and Project Manager at once. Having
    planned the charter, they may not approve it; the demo Sponsor may."""
    users.add_user(app, "director", [SP, PM])
    drive = Drive(app, "happy_path")
    drive.step(user="director")                         # define goals
    drive.step()
    drive.step(user="director")                         # plan milestones: the submitter
    [approval] = drive.approvals("gate_charter_approval")
    view = drive.gate("charter_approval")
    assert view["submitter"] == "director"
    assert {e["user"]: e["reason"] for e in view["excluded"]}["director"].startswith("submitted")
    assert "director" not in view["eligible"] and "sponsor" in view["eligible"]
    with pytest.raises(Forbidden) as caught:
        gates.decide(app, approval.id, "director", "go")
    assert caught.value.message.startswith("separation of duties: director")
    drive.step()                                         # the demo sponsor approves
    assert drive.gate("charter_approval")["outcome"] == "go"


def test_whoever_completed_an_excluded_task_is_excluded_even_in_another_role(app):
    # A consultant who is also a key user interviewed nobody but reviewed the requirements with
    # the departments: they may not sign off as Business Consultant.
    users.add_user(app, "kim", [BC, KU])
    # A technical lead who is also the quality lead designed the data model / built the
    # increment: they may decide neither the design review nor the quality review.
    users.add_user(app, "tariq", [TL, QL])
    drive = Drive(app, "happy_path")
    drive.until("req_department_review")
    drive.step(user="kim")
    view = drive.gate("requirements_signoff")
    assert {e["user"] for e in view["excluded"]} == {"kim"}
    business = next(t for t in drive.approvals("gate_requirements_signoff") if t.role == BC)
    with pytest.raises(Forbidden):
        gates.decide(app, business.id, "kim", "go")

    drive.until("design_data_model")
    drive.step(user="tariq")
    drive.until("gate_design_review")
    view = drive.gate("design_review")
    reasons = {e["user"]: e["reason"] for e in view["excluded"]}
    assert reasons == {"tariq": "completed task design_data_model"}
    assert view["eligible"] == ["key-user", "kim", "quality-lead"]   # kim reviewed nothing here
    technical = next(t for t in drive.approvals("gate_design_review") if t.role == QL)
    with pytest.raises(Forbidden) as caught:
        gates.decide(app, technical.id, "tariq", "go")
    assert "design_data_model" in caught.value.message
    drive.step()

    drive.until("build_develop")
    drive.step(user="tariq")
    drive.until("gate_quality_review")
    [quality] = drive.approvals("gate_quality_review")
    with pytest.raises(Forbidden) as caught:
        gates.decide(app, quality.id, "tariq", "go")
    assert "build_develop" in caught.value.message
    # The Quality Lead ran the security tests herself and still decides (submitter rule off).
    gates.decide(app, quality.id, "quality-lead", "go")


def test_go_no_go_is_signed_in_person(app):
    drive = Drive(app, "happy_path")
    drive.until("gate_go_no_go")
    [approval] = drive.approvals("gate_go_no_go")
    with pytest.raises(Forbidden) as caught:
        gates.decide(app, approval.id, "sponsor", "go")
    assert "requires an electronic signature" in caught.value.message
    with pytest.raises(Forbidden) as caught:
        gates.decide(app, approval.id, "sponsor", "go", password="wrong")
    assert caught.value.message == "the signature password is not correct"
    with pytest.raises(Forbidden) as caught:                 # delegation: false
        gates.delegate_task(app, approval.id, "sponsor", "project-manager")
    assert "does not allow delegation" in caught.value.message
    result = gates.decide(app, approval.id, "sponsor", "go", password="demo")
    assert (result["decided"], result["outcome"]) == (True, "go")
    assert drive.gate("go_no_go")["decisions"][0]["signature"] == SIGNED["go_no_go"]


# -------------------------------------------------------------------------------- overrides


def test_a_small_project_signs_off_requirements_with_the_sponsor_alone(app):
    drive = Drive(app, "one_iteration", gate_overrides={
        "requirements_signoff": {"approvers": [{"role": SP}]}, "go_no_go": {"due": "P1D"}})
    drive.until("gate_requirements_signoff")
    assert [t.role for t in drive.approvals("gate_requirements_signoff")] == [SP]
    drive.step()
    view = drive.gate("requirements_signoff")
    assert [(d["user"], d["outcome"]) for d in view["decisions"]] == [("sponsor", "go")]
    assert view["approvers"] == [{"role": SP, "count": 1}]
    drive.until("gate_go_no_go")
    go = drive.gate("go_no_go")
    assert datetime.fromisoformat(go["due"]) - datetime.fromisoformat(go["opened_at"]) == timedelta(days=1)

    # What a gate does not list in `overridable` cannot be changed at start.
    with pytest.raises(InvalidInput) as caught:
        instances.start(app, KEY, data={"project_name": "x"}, user="project-manager",
                        gate_overrides={"charter_approval": {"approvers": [{"role": PM}]}})
    assert "gate 'charter_approval' does not allow overriding 'approvers'" in caught.value.message


def test_scenario_gate_steps_use_the_configured_outcomes():
    """Every gate step of the scenario files votes an outcome its gate allows, gives a reason for
    hold, recycle and kill, conditions for a conditional go, and a password where it is signed."""
    config = load_gate_config(GATES_FILE)
    by_task = {task: gate_id for gate_id, (task, _g, _f) in GATES.items()}
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenario = yaml.safe_load(path.read_text(encoding="utf-8"))
        for label, step in scenarios._flatten(scenario["steps"]):
            gate_id = by_task.get(step.get("task"))
            if gate_id is None:
                continue
            assert "data" not in step, f"{path.name} {label}: a gate is decided, its form is not submitted"
            for decision in step.get("decisions") or [step]:
                outcome = decision.get("outcome") or step["outcome"]
                assert outcome in config.gates[gate_id].outcomes, (path.name, label)
                if outcome in ("hold", "recycle", "kill"):
                    assert (decision.get("comment") or step.get("comment", "")).strip(), (path.name, label)
                if outcome == "conditional-go":
                    assert decision.get("conditions") or step.get("conditions"), (path.name, label)
                if gate_id in SIGNED:
                    assert decision.get("password") == "demo", (path.name, label)

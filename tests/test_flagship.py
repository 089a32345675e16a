"""The flagship process (processes/crm_implementation.bpmn) driven end to end by its scenario files.

Every scenario in processes/scenarios/ that completes the project runs through the real engine,
with the real gate configuration (processes/crm_implementation.gates.yaml), on SQLite and
PostgreSQL (`db_url`) and must take exactly the path written down here (not derived from a run):
the completed tasks and gate decisions in order, the role each was routed to (for a gate: the
approver group), the phase it belongs to, who did it, and the final state and data (iteration
count, review rounds, migration rehearsals, knowledge base, risk register and change request
log). The gates themselves - outcomes, rounds, action items, kills, entry criteria, separation
of duties - are tested in tests/test_flagship_gates.py.

Also here: a restart in the middle of build iteration 2 (a new `Phasegate` with empty caches
continues the instance and ends exactly as an uninterrupted run), every crm_* form rejecting
invalid data and naming the field, the scenario runner's failure messages, and the real
`phasegate run-scenario` command.
"""
from __future__ import annotations

import copy
import functools
import json
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from engine.bootstrap import Phasegate
from engine.domain.errors import InvalidInput
from engine.domain.forms import validate_submission
from engine.services import definitions, demo, gates, instances, scenarios, tasks, users
from engine.services.scenarios import ScenarioFailed
from tests.test_cli import phasegate_command
from tests.clock_support import frozen_at

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"
SCENARIOS = PROCESSES / "scenarios"
FORMS = ROOT / "forms"
KEY = "crm_implementation"

# ------------------------------------------------------------------------------------ the model

SP, PM, BC, TL, QL, TR, KU = ("Sponsor", "Project Manager", "Business Consultant", "Technical Lead",
                              "Quality Lead", "Trainer", "Key User")
DEMO_USER = {SP: "sponsor", PM: "project-manager", BC: "business-consultant", TL: "technical-lead",
             QL: "quality-lead", TR: "trainer", KU: "key-user"}

# Every user task of the flagship: the role (lane) it is routed to and its phase (None: the
# risk and change request handlers, which can run during any phase). A gate task is not routed
# itself: its approval tasks go to its approver groups (GATE_DECIDERS); its lane is listed here.
TASKS = {
    # Kickoff
    "kickoff_define_goals": (PM, "Kickoff"),
    "kickoff_assign_team": (PM, "Kickoff"),
    "kickoff_plan_milestones": (PM, "Kickoff"),
    "gate_charter_approval": (SP, "Kickoff"),
    "kickoff_revise_charter": (PM, "Kickoff"),
    # Requirements
    "req_stakeholder_interviews": (BC, "Requirements"),
    "req_compile_requirements": (BC, "Requirements"),
    "req_department_review": (KU, "Requirements"),
    "gate_requirements_signoff": (SP, "Requirements"),
    "req_revise_requirements": (BC, "Requirements"),
    # System Selection
    "sel_identify_candidates": (BC, "System Selection"),
    "sel_eval_function_fit": (BC, "System Selection"),
    "sel_eval_vendor": (PM, "System Selection"),
    "sel_eval_cost": (PM, "System Selection"),
    "sel_eval_architecture": (TL, "System Selection"),
    "sel_eval_integration": (TL, "System Selection"),
    "sel_trial": (KU, "System Selection"),
    "sel_recommendation": (PM, "System Selection"),
    "gate_selection_approval": (SP, "System Selection"),
    "sel_revise_shortlist": (BC, "System Selection"),
    # Design
    "design_business_processes": (BC, "Design"),
    "design_data_model": (TL, "Design"),
    "design_integrations": (TL, "Design"),
    "design_review_technical": (QL, "Design"),
    "design_review_business": (KU, "Design"),
    "gate_design_review": (PM, "Design"),
    "design_rework": (TL, "Design"),
    # Iterative Build
    "build_develop": (TL, "Iterative Build"),
    "build_test_performance": (TL, "Iterative Build"),
    "build_test_security": (QL, "Iterative Build"),
    "build_test_functional": (KU, "Iterative Build"),
    "gate_quality_review": (QL, "Iterative Build"),
    "build_fix_defects": (TL, "Iterative Build"),
    "build_user_training": (TR, "Iterative Build"),
    "build_collect_feedback": (KU, "Iterative Build"),
    # Deployment
    "deploy_prepare_environment": (TL, "Deployment"),
    "deploy_clean_data": (BC, "Deployment"),
    "deploy_migration_rehearsal": (TL, "Deployment"),
    "gate_go_no_go": (SP, "Deployment"),
    "deploy_resolve_blockers": (PM, "Deployment"),
    "deploy_production_migration": (TL, "Deployment"),
    "deploy_rollback": (TL, "Deployment"),
    # Training and Go-Live
    "golive_training_plans": (TR, "Training and Go-Live"),
    "golive_super_users": (PM, "Training and Go-Live"),
    "golive_end_user_training": (TR, "Training and Go-Live"),
    "golive_onsite_support": (TL, "Training and Go-Live"),
    "golive_super_user_support": (KU, "Training and Go-Live"),
    "golive_collect_feedback": (TR, "Training and Go-Live"),
    "gate_golive_signoff": (SP, "Training and Go-Live"),
    "golive_extend_support": (PM, "Training and Go-Live"),
    # Closure
    "closure_review_goals": (PM, "Closure"),
    "closure_archive_documents": (PM, "Closure"),
    "closure_lessons_learned": (PM, "Closure"),
    "closure_improvement_backlog": (BC, "Closure"),
    "gate_final_acceptance": (SP, "Closure"),
    "closure_resolve_acceptance_issues": (PM, "Closure"),
    # Milestone reminder (outside its phase's sub-process, but carrying the phase)
    "remind_system_selection_overrun": (PM, "System Selection"),
    # Event sub-processes: any time
    "risk_assess": (PM, None),
    "change_assess": (PM, None),
    "gate_change_approval": (SP, None),
}

# Who decides each gate when it passes (go), in the order the scenario runner asks them: the
# approver groups of processes/crm_implementation.gates.yaml, one demo user each.
GATE_DECIDERS = {
    "gate_charter_approval": [SP],
    "gate_requirements_signoff": [SP, BC],
    "gate_selection_approval": [SP],
    "gate_design_review": [KU, QL],
    "gate_quality_review": [QL],
    "gate_go_no_go": [SP],
    "gate_golive_signoff": [SP],
    "gate_final_acceptance": [SP],
    "gate_change_approval": [SP],
}


def with_decisions(path: list[str], rounds: dict[tuple[str, int], list[str]] | None = None):
    """The path with each gate round expanded into its decisions: (element, role, phase, user).

    A gate appears on the path once per decided round; `rounds` names the deciding groups of a
    round that is not decided the default way, by (gate element, n-th time on the path), e.g.
    a Recycle vetoed by the Sponsor alone.
    """
    rounds = rounds or {}
    seen: dict[str, int] = {}
    steps = []
    for element in path:
        if element in GATE_DECIDERS:
            seen[element] = seen.get(element, 0) + 1
            groups = rounds.get((element, seen[element]), GATE_DECIDERS[element])
            steps += [(element, role, TASKS[element][1], DEMO_USER[role]) for role in groups]
        else:
            steps.append((element, *TASKS[element], DEMO_USER[TASKS[element][0]]))
    return steps


# The first-time-right path through each phase.
KICKOFF = ["kickoff_define_goals", "kickoff_assign_team", "kickoff_plan_milestones", "gate_charter_approval"]
REQUIREMENTS = ["req_stakeholder_interviews", "req_compile_requirements", "req_department_review",
                "gate_requirements_signoff"]
EVALUATION = ["sel_eval_function_fit", "sel_eval_vendor", "sel_eval_cost", "sel_eval_architecture",
              "sel_eval_integration", "sel_trial", "sel_recommendation", "gate_selection_approval"]
SELECTION = ["sel_identify_candidates"] + EVALUATION
DESIGN_REVIEW = ["design_review_technical", "design_review_business", "gate_design_review"]
DESIGN = ["design_business_processes", "design_data_model", "design_integrations"] + DESIGN_REVIEW
TESTS = ["build_test_performance", "build_test_security", "build_test_functional", "gate_quality_review"]
ITERATION = ["build_develop"] + TESTS + ["build_user_training", "build_collect_feedback"]
DEPLOYMENT = ["deploy_prepare_environment", "deploy_clean_data", "deploy_migration_rehearsal", "gate_go_no_go",
              "deploy_production_migration"]
SUPPORT = ["golive_onsite_support", "golive_super_user_support", "golive_collect_feedback", "gate_golive_signoff"]
GOLIVE = ["golive_training_plans", "golive_super_users", "golive_end_user_training"] + SUPPORT
CLOSURE = ["closure_review_goals", "closure_archive_documents", "closure_lessons_learned",
           "closure_improvement_backlog", "gate_final_acceptance"]


def first_time_right(iterations: int) -> list[str]:
    return KICKOFF + REQUIREMENTS + SELECTION + DESIGN + ITERATION * iterations + DEPLOYMENT + GOLIVE + CLOSURE


HAPPY_PATH = first_time_right(3)

REJECTION_AT_EVERY_GATE = (
    KICKOFF + ["kickoff_revise_charter", "gate_charter_approval"]
    + REQUIREMENTS + ["req_revise_requirements", "req_department_review", "gate_requirements_signoff"]
    + SELECTION + ["sel_revise_shortlist"] + EVALUATION
    + DESIGN + ["design_rework"] + DESIGN_REVIEW
    + ITERATION
    + ["build_develop"] + TESTS + ["build_fix_defects"] + TESTS + ["build_user_training", "build_collect_feedback"]
    + ["deploy_prepare_environment", "deploy_clean_data", "deploy_migration_rehearsal", "gate_go_no_go",
       "deploy_resolve_blockers", "deploy_migration_rehearsal", "gate_go_no_go", "deploy_production_migration"]
    + GOLIVE + ["golive_extend_support"] + SUPPORT
    + CLOSURE + ["closure_resolve_acceptance_issues", "gate_final_acceptance"]
)

FAILED_MIGRATION_ROLLBACK = (
    KICKOFF + REQUIREMENTS + SELECTION + DESIGN + ITERATION * 2
    + ["deploy_prepare_environment", "deploy_clean_data",
       "deploy_migration_rehearsal",                                     # 1: fail
       "deploy_migration_rehearsal", "gate_go_no_go",                    # 2: pass, go
       "deploy_production_migration", "deploy_rollback",                 # failed, rolled back
       "deploy_migration_rehearsal", "gate_go_no_go",                    # 3: pass, go
       "deploy_production_migration"]                                    # success
    + GOLIVE + CLOSURE
)

RISKS_AND_CHANGE_REQUESTS = (
    KICKOFF
    + ["req_stakeholder_interviews", "risk_assess", "req_compile_requirements", "req_department_review",
       "gate_requirements_signoff"]
    + ["sel_identify_candidates", "remind_system_selection_overrun"] + EVALUATION
    + ["design_business_processes", "change_assess", "gate_change_approval", "design_data_model",
       "design_integrations"] + DESIGN_REVIEW
    + ITERATION * 3
    + DEPLOYMENT
    + ["golive_training_plans", "change_assess", "golive_super_users", "golive_end_user_training"] + SUPPORT
    + CLOSURE
)

# Written out once more as plain lists, so a slip in the building blocks above cannot hide.
assert HAPPY_PATH[:23] == [
    "kickoff_define_goals", "kickoff_assign_team", "kickoff_plan_milestones", "gate_charter_approval",
    "req_stakeholder_interviews", "req_compile_requirements", "req_department_review", "gate_requirements_signoff",
    "sel_identify_candidates", "sel_eval_function_fit", "sel_eval_vendor", "sel_eval_cost", "sel_eval_architecture",
    "sel_eval_integration", "sel_trial", "sel_recommendation", "gate_selection_approval",
    "design_business_processes", "design_data_model", "design_integrations", "design_review_technical",
    "design_review_business", "gate_design_review"]
assert HAPPY_PATH[23:30] == ["build_develop", "build_test_performance", "build_test_security",
                             "build_test_functional", "gate_quality_review", "build_user_training",
                             "build_collect_feedback"]
assert HAPPY_PATH[44:] == [
    "deploy_prepare_environment", "deploy_clean_data", "deploy_migration_rehearsal", "gate_go_no_go",
    "deploy_production_migration", "golive_training_plans", "golive_super_users", "golive_end_user_training",
    "golive_onsite_support", "golive_super_user_support", "golive_collect_feedback", "gate_golive_signoff",
    "closure_review_goals", "closure_archive_documents", "closure_lessons_learned", "closure_improvement_backlog",
    "gate_final_acceptance"]

# The rejections of rejection_at_every_gate.yaml that one approver decides: the Sponsor's veto
# on the requirements, the technical reviewer on the design (round 1 of each).
REJECTION_ROUNDS = {("gate_requirements_signoff", 1): [SP], ("gate_design_review", 1): [QL]}

# scenario file -> expected sequence, task count, final data
EXPECTED = {
    "happy_path": dict(
        path=HAPPY_PATH, count=61, project="Nordwind CRM rollout", business_key="CRM-2026-HAPPY",
        data={"iterations": 3, "iteration": 3, "requirements_round": 1, "rehearsal": 1, "decision": "approve",
              "gate_outcome": "go", "rehearsal_result": "pass", "migration_result": "success"},
        lessons=3, risks=0, change_requests=0, overruns=0),
    "rejection_at_every_gate": dict(
        path=REJECTION_AT_EVERY_GATE, count=87, project="Hansa Medical Supplies - service CRM",
        business_key="CRM-2026-REWORK", rounds=REJECTION_ROUNDS,
        data={"iterations": 2, "iteration": 2, "requirements_round": 2, "rehearsal": 2, "decision": "approve",
              "budget": 980000, "extension_days": 5, "recommended_candidate": "Veeva CRM"},
        lessons=2, risks=0, change_requests=0, overruns=0),
    "failed_migration_rollback": dict(
        path=FAILED_MIGRATION_ROLLBACK, count=59, project="Baltic Freight Services CRM",
        business_key="CRM-2026-ROLLBACK",
        data={"iterations": 2, "iteration": 2, "requirements_round": 1, "rehearsal": 3, "rehearsal_result": "pass",
              "migration_result": "success", "rollback_completed": True},
        lessons=2, risks=0, change_requests=0, overruns=0),
    "one_iteration": dict(
        path=first_time_right(1), count=47, project="Kessler Dental Lab - customer CRM",
        business_key="CRM-2026-SMALL",
        data={"iterations": 1, "iteration": 1, "requirements_round": 1, "rehearsal": 1},
        lessons=1, risks=0, change_requests=0, overruns=0),
    "five_iterations": dict(
        path=first_time_right(5), count=75, project="Meridian Energy - customer service and sales CRM",
        business_key="CRM-2026-LARGE",
        data={"iterations": 5, "iteration": 5, "requirements_round": 1, "rehearsal": 1},
        lessons=2, risks=0, change_requests=0, overruns=0),
    "risks_and_change_requests": dict(
        path=RISKS_AND_CHANGE_REQUESTS, count=66, project="Rheintal Insurance Brokers CRM",
        business_key="CRM-2026-RISKS",
        data={"iterations": 3, "iteration": 3, "requirements_round": 1, "rehearsal": 1},
        lessons=2, risks=1, change_requests=2, overruns=1),
}


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
def frozen_clock():
    yield from frozen_at(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))


def prepare(app: Phasegate, gate_overrides: dict | None = None) -> None:
    users.add_user(app, "admin", ["admin"], exist_ok=True)
    definitions.deploy(app, PROCESSES, "admin", gate_overrides=gate_overrides)
    # The go/no-go and the final acceptance are signed: the Sponsor needs the demo password the
    # scenarios re-enter. Everybody else needs no password, which spares 9 argon2 hashes.
    users.add_user(app, "sponsor", [SP], password="demo")
    demo.create_demo_users(app, password="")


@pytest.fixture
def app(db_url, frozen_clock):
    application = Phasegate(db_url)
    prepare(application)
    yield application
    application.dispose()


def completed_in_order(app: Phasegate, instance_id: int) -> list[tuple]:
    """The instance's completed tasks and gate decisions in order (the order of their events):
    (element id, role, phase, user) - for a gate decision the approver group and who decided."""
    rows = {t.id: t for t in tasks.list_tasks(app, instance_id=instance_id, states=("completed",))}
    events = [e for e in instances.history(app, instance_id) if e.type in ("completed", "decision")]
    assert sorted(e.task_id for e in events) == sorted(rows), \
        "every completed task has exactly one completion or decision event"
    steps = []
    for event in events:
        row = rows[event.task_id]
        assert row.state == "completed" and row.process_key == KEY
        assert (row.kind == "approval") == (event.type == "decision")
        steps.append((row.element_id, row.role, row.phase, event.actor if row.kind == "approval" else row.completed_by))
    return steps


def registers(data: dict) -> dict:
    """The BPMN data objects (risk register, change request log, overrun log) of a finished instance."""
    return data.get("data_objects") or {}


# ---------------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("name", list(EXPECTED))
def test_scenario_end_to_end(app, name, db_url):
    expected = EXPECTED[name]
    started = time.perf_counter()
    run = scenarios.run_scenario(app, KEY, SCENARIOS / f"{name}.yaml")
    elapsed = time.perf_counter() - started

    # The path the runner reports (a gate once per decided round), and the tasks completed and
    # the gate decisions taken, in order, with role (approver group), phase and who.
    assert run.path == expected["path"]
    assert len(run.path) == expected["count"]
    assert completed_in_order(app, run.instance_id) == with_decisions(expected["path"], expected.get("rounds"))
    done = tasks.list_tasks(app, instance_id=run.instance_id, states=("completed",))
    assert {t.business_key for t in done} == {expected["business_key"]}

    final = instances.show(app, run.instance_id)
    assert final.state == "completed"
    assert final.phase == "Closure"
    assert final.tasks == []
    assert final.error is None
    assert final.business_key == expected["business_key"]
    for key, value in expected["data"].items():
        assert final.data.get(key) == value, key
    assert final.data["project_name"] == expected["project"]

    # The lessons learned went into the knowledge base, tagged with the project.
    lessons = final.data["lessons"]
    assert len(lessons) == expected["lessons"]
    assert final.data["knowledge_base"] == [dict(lesson, project=expected["project"]) for lesson in lessons]

    registered = registers(final.data)
    assert len(registered.get("risks") or []) == expected["risks"]
    assert len(registered.get("change_requests") or []) == expected["change_requests"]
    assert len(registered.get("overruns") or []) == expected["overruns"]

    # Nothing is left waiting: no open inbox rows, no timers.
    assert tasks.list_tasks(app, instance_id=run.instance_id) == []

    if name == "happy_path" and db_url.startswith("sqlite"):
        # About 1.4 s: 0.5 s of it are the two signed decisions (go/no-go, final acceptance), each
        # an argon2 password check of about 0.25 s.
        assert elapsed < 3.0, f"the flagship took {elapsed:.2f} s on SQLite"


def test_phases_come_in_process_order_on_every_database(app):
    # The instance page's phase bar; PostgreSQL's JSONB would reorder a stored mapping.
    started = instances.start(app, KEY, data={"project_name": "Order", "iterations": 1}, user="project-manager")
    assert instances.diagram(app, started.id)["phases"] == [
        "Kickoff", "Requirements", "System Selection", "Design", "Iterative Build", "Deployment",
        "Training and Go-Live", "Closure"]


def test_iterations_pass_feedback_on(app):
    """Five iterations: each one's must/should feedback is the next one's input; 'later' is deferred."""
    run = scenarios.run_scenario(app, KEY, SCENARIOS / "five_iterations.yaml")
    data = instances.show(app, run.instance_id).data
    inputs = data["iteration_inputs"]
    assert sorted(inputs, key=int) == ["1", "2", "3", "4", "5", "6"]
    # Iteration 1 builds the signed-off must and should requirements, not the 'later' one.
    assert [r["id"] for r in inputs["1"]] == ["REQ-101", "REQ-102", "REQ-103", "REQ-104", "REQ-105", "REQ-106"]
    for n in range(2, 7):
        assert inputs[str(n)] == [{"title": f"Pilot feedback {n - 1}: fewer clicks to open a case",
                                   "department": "Customer Service", "priority": "must",
                                   "source_iteration": n - 1}]
    assert [(f["title"], f["source_iteration"]) for f in data["deferred_feedback"]] == [
        (f"Pilot feedback {n}: dark mode", n) for n in range(1, 6)]


def test_risk_change_request_and_overrun_registers(app, frozen_clock):
    start = frozen_clock.now()
    run = scenarios.run_scenario(app, KEY, SCENARIOS / "risks_and_change_requests.yaml")
    final = instances.show(app, run.instance_id)
    registered = registers(final.data)

    [risk] = registered["risks"]
    assert risk["id"] == "R-1"
    assert (risk["category"], risk["probability"], risk["impact"], risk["score"]) == ("schedule", "high", "medium", 6)
    assert risk["response"] == "reduce" and risk["owner"] == PM
    assert risk["reported"] == {"summary": "Brokers are at the autumn trade fairs in the review weeks",
                                "reported_by": "Jan Keller"}

    approved, minor = registered["change_requests"]
    assert (approved["id"], approved["title"], approved["needs_sponsor_approval"]) == (
        "CR-1", "Marketing consent management", True)
    # The Sponsor's gate decision (the comment stays with the decision: phasegate gates).
    assert (approved["sponsor_decision"], approved["status"], approved["cost_impact"]) == ("go", "approved", 28000)
    assert "sponsor_comment" not in approved
    [change_gate] = [g for g in gates.gates_view(app, run.instance_id) if g["gate"] == "change_approval"]
    assert [(d["user"], d["outcome"], d["comment"]) for d in change_gate["decisions"]] == [
        ("sponsor", "go", "Approved; cover the EUR 28,000 from the contingency reserve.")]
    # The handler's gate result stays in the change request log, not in the project's data.
    assert final.data["gate_outcome"] == "go" and final.data["gate_reason"] == "approved by sponsor"
    assert (minor["id"], minor["needs_sponsor_approval"], minor["sponsor_decision"], minor["status"]) == (
        "CR-2", False, None, "accept")

    [overrun] = registered["overruns"]
    assert overrun["phase"] == "System Selection"
    assert overrun["inform_sponsor"] is True and overrun["new_forecast"] == "2026-04-03"

    # The reminder went to the Project Manager when the 30-day milestone passed (clock + 31 days).
    assert frozen_clock.now() - start == timedelta(days=31)
    events = instances.history(app, run.instance_id)
    timer = [e for e in events if e.type == "timer"]
    assert len(timer) == 1 and timer[0].actor == "timer"
    assert [e.payload["message"] for e in events if e.type == "message"] == [
        "raise_risk", "change_request", "change_request"]
    reminder = next(t for t in tasks.list_tasks(app, instance_id=run.instance_id, states=("completed",))
                    if t.element_id == "remind_system_selection_overrun")
    assert (reminder.role, reminder.phase, reminder.completed_by) == (PM, "System Selection", "project-manager")
    assert reminder.created_at == start + timedelta(days=31)


def test_parallel_branches_in_loops_keep_the_newest_values(app):
    run = scenarios.run_scenario(app, KEY, SCENARIOS / "rejection_at_every_gate.yaml")
    data = instances.show(app, run.instance_id).data
    # What the second pass through each parallel section submitted:
    assert data["technical_recommendation"] == "approve"      # design review after the rework
    assert data["must_coverage_percent"] == 100               # second evaluation of the candidates
    assert data["critical_incidents"] == 0                    # extended go-live support


# ------------------------------------------------------------------------------------ restart


def test_restart_in_the_middle_of_an_iteration(db_url, frozen_clock):
    """A new Phasegate (empty process and workflow caches) takes over in the middle of build
    iteration 2 — the performance test done, security and functional tests open — and the
    instance ends exactly like an uninterrupted run of the same scenario."""
    scenario = scenarios.load_scenario(SCENARIOS / "happy_path.yaml")
    steps = list(scenarios._flatten(scenario["steps"]))
    cut = next(i for i, (label, _) in enumerate(steps) if label.endswith("round2.3"))
    assert steps[cut][1]["task"] == "build_test_security"

    def work(app: Phasegate, instance_id: int, part):
        """The steps one by one (tasks completed, gates decided) as the scenario runner does them."""
        run = scenarios.ScenarioRun(instance_id)
        for label, step in part:
            scenarios._complete_step(app, run, label, step, instances.show(app, instance_id))

    first = Phasegate(db_url)
    try:
        prepare(first)
        reference = scenarios.run_scenario(first, KEY, SCENARIOS / "happy_path.yaml")
        inst = instances.start(first, KEY, data=scenario["start"]["data"], business_key="CRM-2026-RESTART",
                               user=scenario["start"]["user"])
        work(first, inst.id, steps[:cut])
        middle = instances.show(first, inst.id)
    finally:
        first.dispose()
    assert middle.phase == "Iterative Build" and middle.data["iteration"] == 2
    assert sorted(t.element_id for t in middle.tasks) == ["build_test_functional", "build_test_security"]

    second = Phasegate(db_url)
    try:
        assert second.live.take(inst.id, 0) is None and second.cached_process(middle.definition_id) is None
        work(second, inst.id, steps[cut:])
        final = instances.show(second, inst.id)
        expected = instances.show(second, reference.instance_id)
        assert final.state == expected.state == "completed"
        assert completed_in_order(second, inst.id) == with_decisions(HAPPY_PATH)
        assert completed_in_order(second, inst.id) == completed_in_order(second, reference.instance_id)
        assert final.data == expected.data
        assert (final.data["iteration"], final.data["rehearsal"], len(final.data["knowledge_base"])) == (3, 1, 3)
    finally:
        second.dispose()


# --------------------------------------------------------------------------------------- forms


def _element_forms() -> dict[str, str]:
    package, issues = definitions.check(PROCESSES)
    assert package is not None, issues
    [process] = [p for p in package.processes if p.key == KEY]
    return {eid: info.form for eid, info in process.elements.items() if info.form}


def _gate_sample(step: dict) -> dict:
    """A gate form's data for a scenario's gate step: the (first) decision as approve/reject."""
    decision = {**step, **(step.get("decisions") or [{}])[0]}
    sample = {"decision": "approve" if decision["outcome"] in ("go", "conditional-go") else "reject"}
    if decision.get("comment"):
        sample["comment"] = decision["comment"]
    return sample


@functools.cache
def valid_samples() -> dict[str, dict]:
    """A valid submission for every crm_* form: the first one some scenario file makes (for a
    gate form: the first decision some scenario takes there, as the form's approve/reject)."""
    forms_of = _element_forms()
    samples: dict[str, dict] = {}
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenario = yaml.safe_load(path.read_text(encoding="utf-8"))
        samples.setdefault(forms_of["start_crm_project"], scenario["start"]["data"])
        for _label, step in scenarios._flatten(scenario["steps"]):
            if "task" not in step:
                continue
            form = forms_of[step["task"]]
            gate = "decision" in _load_form(form)["properties"]
            samples.setdefault(form, _gate_sample(step) if gate else step.get("data", {}))
    return samples


CRM_FORMS = sorted(p.name.removesuffix(".json") for p in FORMS.glob("crm_*.json")
                   if not p.name.endswith(".uischema.json"))


def _load_form(name: str) -> dict:
    return json.loads((FORMS / f"{name}.json").read_text(encoding="utf-8"))


def _rejects(form: dict, data: dict, name: str) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as caught:
        validate_submission(form, data, name)
    assert f"form '{name}'" in caught.value.message
    return caught.value.fields


def _bad_choices(form: dict, sample: dict):
    """(field path, invalid data) for every choice (enum) in the form, top level or inside list items."""
    for key, spec in form["properties"].items():
        if spec.get("readOnly"):
            continue
        if "enum" in spec:
            yield key, dict(copy.deepcopy(sample), **{key: "not-a-choice"})
        items = spec.get("items") if spec.get("type") == "array" else None
        if not isinstance(items, dict):
            continue
        if "enum" in items:
            yield f"{key}/0", dict(copy.deepcopy(sample), **{key: ["not-a-choice"]})
        for sub, sub_spec in (items.get("properties") or {}).items():
            if "enum" in sub_spec:
                first = copy.deepcopy((sample.get(key) or [{}])[0])
                yield f"{key}/0/{sub}", dict(copy.deepcopy(sample), **{key: [dict(first, **{sub: "not-a-choice"})]})


def test_there_are_61_crm_forms_and_the_scenarios_fill_them_all():
    assert len(CRM_FORMS) == 61
    assert sorted(valid_samples()) == CRM_FORMS


@pytest.mark.parametrize("name", CRM_FORMS)
def test_form_rejects_invalid_data(name):
    form = _load_form(name)
    sample = valid_samples()[name]
    assert validate_submission(form, copy.deepcopy(sample), name) is not None

    # Every required field, left out, is named.
    required = form.get("required") or []
    assert required, f"{name} requires nothing"
    fields = _rejects(form, {}, name)
    assert set(required) <= set(fields)
    for field in required:
        data = copy.deepcopy(sample)
        data.pop(field, None)
        assert field in _rejects(form, data, name), field

    # Every choice, given a value outside it, is named (inside lists by its path, e.g. team/0/role).
    for path, data in _bad_choices(form, sample):
        fields = _rejects(form, data, name)
        assert path in fields, (path, fields)
        assert any("is not one of" in message for message in fields[path]), fields[path]

    # A wrong type for the first required field is named too.
    data = copy.deepcopy(sample)
    data[required[0]] = {"unexpected": "object"}
    assert required[0] in _rejects(form, data, name)

    # Gates: a rejection needs a comment that says something.
    if "decision" in form["properties"]:
        assert form["properties"]["decision"]["enum"] == ["approve", "reject"]
        base = {k: v for k, v in sample.items() if k != "comment"}
        assert "comment" in _rejects(form, dict(base, decision="reject"), name)
        assert "comment" in _rejects(form, dict(base, decision="reject", comment="   "), name)
        assert validate_submission(form, dict(base, decision="reject", comment="Rework the budget."), name)
        assert validate_submission(form, dict(base, decision="approve"), name)


def test_read_only_counters_cannot_be_overwritten():
    form = _load_form("crm_department_review")
    data = validate_submission(form, dict(valid_samples()["crm_department_review"], requirements_round=99))
    assert "requirements_round" not in data


# ------------------------------------------------------------------------- failure messages


def _scenario_file(tmp_path: Path, steps: list[dict]) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"process": KEY, "start": {"user": "project-manager",
                                                               "data": {"project_name": "Broken"}},
                                    "steps": steps}), encoding="utf-8")
    return path


GOALS = {"goals": [{"goal": "Sales lead conversion +20 %", "metric": "won / qualified leads", "target": "24 %"}]}


@pytest.mark.parametrize("task, ready", [("gate_charter_approval", "kickoff_assign_team"),
                                         ("kickoff_asign_team", "kickoff_assign_team")])
def test_a_task_that_never_becomes_ready_fails_clearly(app, tmp_path, task, ready):
    path = _scenario_file(tmp_path, [{"task": "kickoff_define_goals", "data": GOALS}, {"task": task}])
    with pytest.raises(ScenarioFailed) as caught:
        scenarios.run_scenario(app, None, path)
    message = caught.value.message
    assert message.startswith(f"step 2: task '{task}' is not ready")
    assert f"ready now: {ready}" in message
    assert "path so far: kickoff_define_goals" in message


def test_data_the_form_rejects_fails_clearly(app, tmp_path):
    goals = copy.deepcopy(GOALS)
    del goals["goals"][0]["target"]
    path = _scenario_file(tmp_path, [
        {"task": "kickoff_define_goals", "data": GOALS},
        {"task": "kickoff_assign_team",
         "data": {"team": [{"name": "Petra Lindqvist", "role": "Project Lead"}]}}])
    with pytest.raises(ScenarioFailed) as caught:
        scenarios.run_scenario(app, None, path)
    message = caught.value.message
    assert message.startswith("step 2: task 'kickoff_assign_team' rejected the data")
    assert "team/0/role" in message and "'Project Lead' is not one of" in message

    # Inside a repeat block the step label says which round.
    path = _scenario_file(tmp_path, [{"repeat": 2, "steps": [{"task": "kickoff_define_goals", "data": goals}]}])
    with pytest.raises(ScenarioFailed) as caught:
        scenarios.run_scenario(app, None, path)
    assert caught.value.message.startswith("step 1.round1.1: task 'kickoff_define_goals' rejected the data")
    assert "goals/0/target" in caught.value.message


# ------------------------------------------------------------------------------------------ CLI


def test_cli_run_scenario_prints_the_instance_and_its_path(tmp_path):
    command = phasegate_command() + ["--database-url", f"sqlite:///{tmp_path / 'cli.sqlite'}"]

    def phasegate(*args: str) -> str:
        done = subprocess.run(command + list(args), cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr or done.stdout
        return done.stdout

    phasegate("db", "upgrade")
    phasegate("deploy", str(PROCESSES))
    phasegate("demo-users")
    started = time.perf_counter()
    out = phasegate("run-scenario", KEY, str(SCENARIOS / "happy_path.yaml"), "--json")
    elapsed = time.perf_counter() - started
    result = json.loads(out)
    assert result["state"] == "completed"
    assert result["path"] == HAPPY_PATH
    assert result["key"] == KEY and result["business_key"] == "CRM-2026-HAPPY"
    assert result["tasks"] == [] and result["data"]["iteration"] == 3
    assert elapsed < 10, f"run-scenario took {elapsed:.1f} s"

    # Without --json it prints the path taken.
    human = phasegate("run-scenario", KEY, str(SCENARIOS / "one_iteration.yaml"))
    assert "path: " + " > ".join(first_time_right(1)) in human
    assert "state=completed" in human

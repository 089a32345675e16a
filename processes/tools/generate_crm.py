#!/usr/bin/env python3
"""Generate the flagship process model `processes/crm_implementation.bpmn` and its forms.

The model is too big to draw by hand and keep tidy, so it is described here compactly (each
element with its lane and column inside its phase) and this script writes:

* ``processes/crm_implementation.bpmn`` — one executable process in a pool with one lane per
  role, eight phase sub-processes, two event sub-processes (risks, change requests), milestone
  timers, and complete BPMN DI (every shape, edge and label has bounds);
* ``forms/crm_*.json`` (JSON Schema 2020-12) and ``forms/crm_*.uischema.json`` for every user
  task and the start event.

Run it from anywhere: ``python processes/tools/generate_crm.py``. ``--check`` regenerates into
memory and fails if the files on disk differ (for CI). The layout is checked before anything is
written: no two shapes overlap, no flow runs through a shape it does not connect, no two flows
share a stretch of line, and every label sits clear of shapes, flows, other labels and lines.

Modelling choices the engine relies on (see the report in the pull request):

* Lanes: every flow node lists its lane in the pool's single laneSet, including the nodes
  inside the (embedded) phase sub-processes; the sub-process elements themselves are in no
  lane. SpiffWorkflow 3.2.0 hands a sub-process's own lane down to everything inside it, so a
  phase sub-process in a lane would put all its tasks in that lane; left out, each inner task
  gets its own lane from the document-wide flowNodeRef index. ``camunda:candidateGroups``
  repeats the role on every user task.
* Phases: each phase is an embedded sub-process with a ``phase`` property; the milestone
  reminder tasks outside the sub-processes carry the ``phase`` property themselves.
* Risks and change requests are non-interrupting message event sub-processes (messages
  ``raise_risk`` and ``change_request``; the message payload arrives as ``risk_report`` /
  ``change_report``). An event sub-process starts with its own data, not the phases' data, so
  the registers are BPMN data objects (``risks``, ``change_requests``, and ``overruns`` for the
  milestone reminders) kept in the workflow's ``data["data_objects"]`` and written through data
  associations by the recording scripts.
* Gates: each gate task (property ``gate``) is configured in ``processes/crm_implementation.gates.yaml``
  and followed by an exclusive gateway that routes on ``gate_outcome`` (``gate_outcomes``): go and
  conditional-go on one flow, recycle as the default flow back to rework, kill to the phase's
  "Project killed" end event - the gateway after that phase (``check_<phase>_killed``) then ends
  the project at "Project stopped", a terminate end event of the process - and, at go/no-go,
  hold to a seven-day timer and back to the gate. The gates file names these flows by id
  (``flow_<source>_to_<target>``). Test results below the quality bar skip the quality review
  (``build_tests_green``, the same bar as the gate's entry criteria; docs/flagship.md says why).
* Side branches (milestone reminders, risks, change requests) end with a script that drops the
  branch's own form fields once they are recorded in their register, so that a side branch's
  `decision` or `comment` never lands in the project's data when the branches join at the end
  (Phasegate's joins merge what each branch changed; data the branch only carried is left alone).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
BPMN_PATH = ROOT / "processes" / "crm_implementation.bpmn"
FORMS_DIR = ROOT / "forms"
PROCESS_ID = "crm_implementation"

# --------------------------------------------------------------------------- roles and geometry

ROLES = ["Sponsor", "Project Manager", "Business Consultant", "Technical Lead", "Quality Lead",
         "Trainer", "Key User"]
SP, PM, BC, TL, QL, TR, KU = range(len(ROLES))
LANE_IDS = ["lane_sponsor", "lane_project_manager", "lane_business_consultant", "lane_technical_lead",
            "lane_quality_lead", "lane_trainer", "lane_key_user"]

POOL_X, POOL_Y = 160, 80
POOL_HEADER = 30          # the pool's name strip
LANE_HEADER = 30          # each lane's name strip
LANE_H = 150
COLW = 150                # column pitch inside a sub-process
PAD = 30                  # sub-process inner margin (left/right)
PHASE_GAP = 490           # between two phase sub-processes (room for the overrun reminder)
SIZES = {
    "userTask": (100, 80), "scriptTask": (100, 80),
    "startEvent": (36, 36), "endEvent": (36, 36), "boundaryEvent": (36, 36), "intermediateCatchEvent": (36, 36),
    "exclusiveGateway": (50, 50), "parallelGateway": (50, 50),
    "dataObjectReference": (36, 50),
}
CHAR_W = 6.0              # average width of an 11px label character
LABEL_CHARS = 15          # characters per line of a 90px wide external label


def row_top(row: int) -> float:
    return POOL_Y + row * LANE_H


def row_cy(row: int) -> float:
    return row_top(row) + LANE_H / 2


# --------------------------------------------------------------------------- model description


@dataclass
class Node:
    id: str
    kind: str
    name: str | None
    row: int
    col: float
    form: str | None = None
    gate: str | None = None
    phase: str | None = None
    script: str | None = None
    doc: str | None = None
    message: str | None = None
    message_var: str | None = None
    timer: str | None = None
    attached_to: str | None = None
    killed: bool = False              # end events: the phase ends here because its gate killed the project
    terminate: bool = False           # end events: a terminate end event
    data_object: str | None = None
    data_inputs: list[str] = field(default_factory=list)
    data_outputs: list[str] = field(default_factory=list)
    default: str | None = None
    # geometry, filled by the layout
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0
    label: tuple | None = None

    @property
    def role(self) -> str | None:
        return ROLES[self.row] if self.kind == "userTask" else None

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def bounds(self) -> tuple:
        return (self.x, self.y, self.w, self.h)


@dataclass
class Flow:
    id: str
    src: str
    tgt: str
    name: str | None = None
    cond: str | None = None
    route: object = "auto"
    waypoints: list = field(default_factory=list)
    label: tuple | None = None


@dataclass
class Container:
    """A bpmn:process or an embedded/event sub-process."""

    id: str
    name: str
    rows: tuple[int, int] = (SP, KU)
    phase: str | None = None
    due: str | None = None
    triggered: bool = False
    message: str | None = None    # event sub-processes: the name of the message that starts them
    nodes: dict[str, Node] = field(default_factory=dict)
    flows: list[Flow] = field(default_factory=list)
    children: list["Container"] = field(default_factory=list)
    data_objects: list[tuple[str, str]] = field(default_factory=list)
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0

    # -- builders ---------------------------------------------------------------------------

    def add(self, node: Node) -> Node:
        assert node.id not in self.nodes, node.id
        self.nodes[node.id] = node
        return node

    def start(self, id, row, col, name, **kw):
        return self.add(Node(id, "startEvent", name, row, col, **kw))

    def end(self, id, row, col, name, **kw):
        return self.add(Node(id, "endEvent", name, row, col, **kw))

    def user(self, id, row, col, name, form, doc, **kw):
        return self.add(Node(id, "userTask", name, row, col, form=form, doc=doc, **kw))

    def gate(self, id, row, col, name, form, gate, doc, **kw):
        return self.add(Node(id, "userTask", name, row, col, form=form, gate=gate, doc=doc, **kw))

    def script(self, id, row, col, name, script, doc=None, **kw):
        return self.add(Node(id, "scriptTask", name, row, col, script=textwrap.dedent(script).strip(),
                             doc=doc, **kw))

    def xor(self, id, row, col, name=None, **kw):
        return self.add(Node(id, "exclusiveGateway", name, row, col, **kw))

    def par(self, id, row, col, name=None, **kw):
        return self.add(Node(id, "parallelGateway", name, row, col, **kw))

    def data_ref(self, id, row, col, name, data_object, **kw):
        return self.add(Node(id, "dataObjectReference", name, row, col, data_object=data_object, **kw))

    def flow(self, src, tgt, name=None, cond=None, default=False, route="auto"):
        flow = Flow(f"flow_{src}_to_{tgt}", src, tgt, name, cond, route)
        self.flows.append(flow)
        if default:
            self.nodes[src].default = flow.id
        return flow

    def chain(self, *ids):
        for src, tgt in zip(ids, ids[1:]):
            self.flow(src, tgt)

    @property
    def cols(self) -> int:
        return int(max(n.col for n in self.nodes.values())) + 1

    def col_cx(self, col: float) -> float:
        return self.x + PAD + COLW * col + COLW / 2


def gate_outcomes(container: Container, gateway: str, go_to: str, recycle_to: str, *, kill_to: str | None = None,
                  hold_to: str | None = None, go="go", recycle="recycle", go_route="auto", recycle_route="auto",
                  hold_route="auto"):
    """Flows out of the exclusive gateway after a gate task, routed on the gate's outcome.

    Phasegate completes a configured gate task with `gate_outcome` (go, conditional-go, hold,
    recycle, kill) and `decision` (approve/reject). Go and Conditional Go continue; Recycle is the
    default flow (back to the rework task); Kill goes to the phase's "Project killed" error end
    event (the phase's error boundary event ends the project); Hold waits and returns to the gate.
    The flow ids are the ones `processes/crm_implementation.gates.yaml` wires the outcomes to.
    """
    container.flow(gateway, go_to, go, 'gate_outcome in ("go", "conditional-go")', route=go_route)
    container.flow(gateway, recycle_to, recycle, default=True, route=recycle_route)
    if kill_to:
        container.flow(gateway, kill_to, "kill", 'gate_outcome == "kill"', route=("above",))
    if hold_to:
        container.flow(gateway, hold_to, "hold", 'gate_outcome == "hold"', route=hold_route)


KILLED = 'gate_outcome == "kill"'


def killed_end(container: Container, id: str, row: int, col: float) -> Node:
    """The phase's "Project killed" end event; the gateway after the phase then ends the project."""
    return container.end(id, row, col, "Project killed", killed=True)


# --------------------------------------------------------------------------- the process

def build_model() -> Container:
    process = Container(PROCESS_ID, "CRM implementation")
    process.data_objects = [("risks", "Risk register"), ("change_requests", "Change request log"),
                            ("overruns", "Phase overrun log")]

    process.start("start_crm_project", PM, 0, "CRM project started", form="crm_project_start")
    process.script("init_project", PM, 1, "Initialise project data", """
        # Start data may choose the number of build iterations; default 3.
        try:
            iterations = int(iterations)
        except (NameError, TypeError, ValueError):
            iterations = 3
        if iterations < 1:
            iterations = 3
        if "project_name" not in globals():
            project_name = "CRM implementation"
        if "knowledge_base" not in globals():
            knowledge_base = []
        iteration = 0
        requirements_round = 0
        rehearsal = 0
        iteration_inputs = {}
        deferred_feedback = []
    """, doc="Sets the defaults: 3 build iterations unless the start data says otherwise; counters "
             "for requirement review rounds, build iterations and migration rehearsals.")

    phases = [kickoff(), requirements(), system_selection(), design(), iterative_build(), deployment(),
              training_golive(), closure()]
    process.children.extend(phases)
    process.children.extend([change_request_handler(), risk_handler()])

    process.flow("start_crm_project", "init_project")
    process.flow("init_project", phases[0].id)
    for before, after in zip(phases, phases[1:]):
        # Kill: a phase whose gate can stop the project ends at its "Project killed" end event with
        # gate_outcome "kill"; the gateway after the phase then ends the project at "Project
        # stopped", a terminate end event that also withdraws running risk and change request
        # handlers and overrun reminders. (A terminate end event inside the phase would end only
        # the phase sub-process, and an error boundary event on the phase would drop the data
        # the phase gathered, the kill decision included.)
        if any(node.killed for node in before.nodes.values()):
            key = before.id.removeprefix("phase_")
            process.xor(f"check_{key}_killed", TL, 0, "Project killed?")
            process.end(f"stopped_{key}", QL, 0, "Project stopped", terminate=True,
                        doc=f"The project was stopped (Kill) at the {before.name} gate.")
            process.flow(before.id, f"check_{key}_killed")
            process.flow(f"check_{key}_killed", f"stopped_{key}", "kill", KILLED)
            process.flow(f"check_{key}_killed", after.id, default=True)
        else:
            process.flow(before.id, after.id)
    process.end("end_crm_project", TL, 0, "CRM project closed")
    process.flow(phases[-1].id, "end_crm_project")

    # Milestone timers: a non-interrupting timer on each phase reminds the Project Manager.
    for phase in phases:
        key = phase.id.removeprefix("phase_")
        days = int(phase.due.strip("PD"))
        process.add(Node(f"timer_{key}_overrun", "boundaryEvent", f"{phase.name} due ({days} days)", PM, 0,
                         timer=f'"{phase.due}"', attached_to=phase.id))
        process.user(f"remind_{key}_overrun", PM, 0, f"Handle {phase.name} phase overrun", "crm_phase_overrun",
                     f"The {phase.name} phase has passed its milestone date ({days} days). Record the cause, "
                     "a new forecast and the recovery measures.", phase=phase.phase)
        process.data_ref(f"overruns_{key}_ref", SP, 0, "Phase overrun log", "overruns")
        process.script(f"log_{key}_overrun", PM, 0, "Log overrun", f"""
            overruns = list(overruns or []) + [{{
                "phase": {phase.phase!r},
                "cause": cause,
                "new_forecast": new_forecast,
                "recovery": globals().get("recovery", ""),
                "inform_sponsor": globals().get("inform_sponsor", False),
            }}]
            # Recorded in the overrun log: this branch's form fields must not reach the project data.
            for name in {form_fields("crm_phase_overrun")!r}:
                globals().pop(name, None)
        """, doc="Appends the overrun to the phase overrun log and drops the reminder's form fields.",
                       data_inputs=[f"overruns_{key}_ref"], data_outputs=[f"overruns_{key}_ref"])
        process.end(f"end_{key}_overrun", PM, 0, "Overrun handled")
        process.chain(f"timer_{key}_overrun", f"remind_{key}_overrun", f"log_{key}_overrun", f"end_{key}_overrun")
    return process


def phase(id, name, due, rows=(SP, KU)) -> Container:
    return Container(id, name, rows=rows, phase=name, due=due)


def kickoff() -> Container:
    c = phase("phase_kickoff", "Kickoff", "P14D")
    c.start("kickoff_start", PM, 0, "Kickoff started")
    c.user("kickoff_define_goals", PM, 1, "Define measurable project goals", "crm_project_goals",
           "Agree measurable goals with the Sponsor, e.g. \"sales lead conversion +20 %\".")
    c.user("kickoff_assign_team", PM, 2, "Assign team and roles", "crm_team_assignment",
           "Name the project team and assign each member a project role.")
    c.user("kickoff_plan_milestones", PM, 3, "Plan milestones and dates", "crm_project_plan",
           "Draft the project plan: one milestone per phase with its due date.")
    c.xor("kickoff_charter_merge", SP, 4)
    c.gate("gate_charter_approval", SP, 5, "Approve project charter", "crm_charter_approval", "charter_approval",
           "The Sponsor approves the charter (goals, team, plan and budget), sends it back for rework or stops "
           "the project.")
    c.xor("kickoff_charter_approved", SP, 6, "Charter approved?")
    c.end("kickoff_end", SP, 7, "Charter approved")
    killed_end(c, "kickoff_killed", SP, 8)
    c.user("kickoff_revise_charter", PM, 6, "Revise charter and plan", "crm_charter_revision",
           "Rework the charter and plan as the Sponsor's comment asks.")
    c.chain("kickoff_start", "kickoff_define_goals", "kickoff_assign_team", "kickoff_plan_milestones")
    c.flow("kickoff_plan_milestones", "kickoff_charter_merge", route="Z")
    c.chain("kickoff_charter_merge", "gate_charter_approval", "kickoff_charter_approved")
    gate_outcomes(c, "kickoff_charter_approved", "kickoff_end", "kickoff_revise_charter", kill_to="kickoff_killed")
    c.flow("kickoff_revise_charter", "kickoff_charter_merge", route="L")
    return c


def requirements() -> Container:
    c = phase("phase_requirements", "Requirements", "P30D")
    c.start("req_start", BC, 0, "Requirements started")
    c.user("req_stakeholder_interviews", BC, 1, "Interview stakeholders per department",
           "crm_stakeholder_interviews", "Interview the stakeholders of every department and record their needs.")
    c.user("req_compile_requirements", BC, 2, "Compile and classify requirements", "crm_requirement_list",
           "Turn the interviews into one requirement list, each classified must / should / later.")
    c.xor("req_round_merge", BC, 3)
    c.script("req_next_round", BC, 4, "Open review round", "requirements_round = requirements_round + 1",
             doc="Counts the review rounds with the departments.")
    c.user("req_department_review", KU, 5, "Review requirements with departments", "crm_department_review",
           "Review the requirement list with your department (the round number is shown) and report agreement "
           "or change requests.")
    c.gate("gate_requirements_signoff", SP, 6, "Sign off requirements", "crm_requirements_signoff",
           "requirements_signoff", "The Sponsor signs off the requirement list (the Business Consultant confirms "
           "it), asks for another review round or stops the project.")
    c.xor("req_signed_off", SP, 7, "Requirements signed off?")
    c.end("req_end", SP, 8, "Requirements signed off")
    killed_end(c, "req_killed", SP, 9)
    c.user("req_revise_requirements", BC, 7, "Revise requirement list", "crm_requirements_revision",
           "Revise the requirement list as the Sponsor asked; a new review round follows.")
    c.chain("req_start", "req_stakeholder_interviews", "req_compile_requirements", "req_round_merge",
            "req_next_round", "req_department_review", "gate_requirements_signoff", "req_signed_off")
    gate_outcomes(c, "req_signed_off", "req_end", "req_revise_requirements", kill_to="req_killed")
    c.flow("req_revise_requirements", "req_round_merge", route=("below",))
    return c


def system_selection() -> Container:
    c = phase("phase_system_selection", "System Selection", "P30D")
    c.start("sel_start", BC, 0, "Selection started")
    c.user("sel_identify_candidates", BC, 1, "Identify candidate systems", "crm_candidate_longlist",
           "List the CRM products to evaluate.")
    c.xor("sel_evaluation_merge", BC, 2)
    c.par("sel_evaluation_split", BC, 3)
    c.user("sel_eval_function_fit", BC, 4, "Evaluate function fit", "crm_eval_function_fit",
           "Score each candidate on how well it covers the must and should requirements.")
    c.user("sel_eval_vendor", PM, 4, "Evaluate vendor strength", "crm_eval_vendor_strength",
           "Score each vendor's stability, references, support and roadmap.")
    c.user("sel_eval_cost", PM, 5, "Evaluate total cost of ownership", "crm_eval_total_cost",
           "Estimate licences, implementation and operation over five years per candidate.")
    c.user("sel_eval_architecture", TL, 4, "Evaluate architecture and performance", "crm_eval_architecture",
           "Score each candidate's architecture, scalability and measured performance.")
    c.user("sel_eval_integration", TL, 5, "Evaluate integration with existing systems", "crm_eval_integration",
           "Assess how each candidate integrates with ERP, e-mail, telephony and the data warehouse.")
    c.par("sel_evaluation_join", BC, 6)
    c.user("sel_trial", KU, 7, "Run trial with key users", "crm_trial_results",
           "Try the leading candidate(s) on real scenarios and report the findings.")
    c.user("sel_recommendation", PM, 8, "Prepare selection recommendation", "crm_selection_recommendation",
           "Consolidate the evaluations and the trial into one recommendation.")
    c.gate("gate_selection_approval", SP, 9, "Approve system selection", "crm_selection_approval",
           "selection_approval", "The Sponsor approves the recommended system, sends the evaluation back or stops "
           "the project.")
    c.xor("sel_approved", SP, 10, "Selection approved?")
    c.end("sel_end", SP, 11, "System selected")
    killed_end(c, "sel_killed", SP, 12)
    c.user("sel_revise_shortlist", BC, 10, "Revise candidate shortlist", "crm_shortlist_revision",
           "Revise the candidates and criteria as the Sponsor asked; the evaluation is repeated.")
    c.chain("sel_start", "sel_identify_candidates", "sel_evaluation_merge", "sel_evaluation_split")
    for first, second in (("sel_eval_vendor", "sel_eval_cost"), ("sel_eval_architecture", "sel_eval_integration"),
                          ("sel_eval_function_fit", None)):
        c.flow("sel_evaluation_split", first)
        if second:
            c.flow(first, second)
        c.flow(second or first, "sel_evaluation_join")
    c.flow("sel_evaluation_join", "sel_trial", route="Z")
    c.chain("sel_trial", "sel_recommendation", "gate_selection_approval", "sel_approved")
    gate_outcomes(c, "sel_approved", "sel_end", "sel_revise_shortlist", kill_to="sel_killed")
    c.flow("sel_revise_shortlist", "sel_evaluation_merge", route=("below",))
    return c


def design() -> Container:
    c = phase("phase_design", "Design", "P21D")
    c.start("design_start", BC, 0, "Design started")
    c.user("design_business_processes", BC, 1, "Design business processes", "crm_design_business_processes",
           "Describe the future sales, marketing and service processes.")
    c.user("design_data_model", TL, 2, "Design data model", "crm_design_data_model",
           "Define the CRM entities, their key attributes, sources and owners.")
    c.user("design_integrations", TL, 3, "Design integrations", "crm_design_integrations",
           "Define every interface to existing systems.")
    c.xor("design_review_merge", TL, 4)
    c.par("design_review_split", QL, 5)
    c.user("design_review_technical", QL, 6, "Technical design review", "crm_design_review_technical",
           "Review the solution design as technical reviewer (architecture, data, integration, security).")
    c.user("design_review_business", KU, 6, "Business design review", "crm_design_review_business",
           "Review the solution design as business reviewer for your department.")
    c.par("design_review_join", QL, 7)
    c.gate("gate_design_review", PM, 8, "Decide cross-department design review", "crm_design_review_decision",
           "design_review", "The business reviewer (Key User) and the technical reviewer (Quality Lead) decide: "
           "both accept the design, or it goes back for rework.")
    c.xor("design_approved", PM, 9, "Design accepted?")
    c.end("design_end", PM, 10, "Design accepted")
    c.user("design_rework", TL, 9, "Rework solution design", "crm_design_rework",
           "Rework the design as the review asked; it is reviewed again.")
    c.chain("design_start", "design_business_processes", "design_data_model", "design_integrations",
            "design_review_merge")
    c.flow("design_review_merge", "design_review_split")
    c.chain("design_review_split", "design_review_technical", "design_review_join")
    c.chain("design_review_split", "design_review_business", "design_review_join")
    c.chain("design_review_join", "gate_design_review", "design_approved")
    gate_outcomes(c, "design_approved", "design_end", "design_rework")
    c.flow("design_rework", "design_review_merge", route="straight")
    return c


# The quality bar of an iteration's tests: the quality review's entry criteria (pass_rates and
# no_open_blockers in processes/crm_implementation.gates.yaml) joined by `and`.
QUALITY_PASS_RATES = "min(functional_pass_rate, performance_pass_rate, security_pass_rate) >= 95"
QUALITY_NO_BLOCKERS = "functional_open_blockers + performance_open_blockers + security_open_blockers == 0"
QUALITY_BAR = f"{QUALITY_PASS_RATES} and {QUALITY_NO_BLOCKERS}"


def iterative_build() -> Container:
    c = phase("phase_iterative_build", "Iterative Build", "P90D")
    c.start("build_start", TL, 0, "Build started")
    c.xor("build_iteration_merge", TL, 1)
    c.script("build_next_iteration", TL, 2, "Start next iteration", """
        iteration = iteration + 1
        if str(iteration) not in iteration_inputs:
            if iteration == 1:
                # The first iteration builds the signed-off must and should requirements.
                iteration_inputs["1"] = [r for r in globals().get("requirements", [])
                                         if r.get("priority") in ("must", "should")]
            else:
                iteration_inputs[str(iteration)] = []
        input_requirements = [dict(r) for r in iteration_inputs[str(iteration)]]
    """, doc="Counts the iteration and picks its input requirements (the feedback of the previous one).")
    c.user("build_develop", TL, 3, "Build iteration increment", "crm_build_increment",
           "Configure and develop this iteration's input requirements.")
    c.xor("build_qc_merge", TL, 4)
    c.par("build_qc_split", QL, 5)
    c.user("build_test_performance", TL, 6, "Performance testing", "crm_test_performance",
           "Load-test the increment and record the result.")
    c.user("build_test_security", QL, 6, "Security testing", "crm_test_security",
           "Test access rights, data protection and vulnerabilities of the increment.")
    c.user("build_test_functional", KU, 6, "Functional testing", "crm_test_functional",
           "Run the functional test cases of this iteration and record the result.")
    c.par("build_qc_join", QL, 7)
    c.xor("build_tests_green", QL, 8, "Quality bar met?")
    c.gate("gate_quality_review", QL, 9, "Quality review of the iteration", "crm_quality_review",
           "quality_review", "Review the three test results; approve the increment or send it back for fixes.")
    c.xor("build_quality_ok", QL, 10, "Quality approved?")
    c.user("build_fix_defects", TL, 10, "Fix blocking defects", "crm_defect_fixes",
           "Fix the blockers the tests or the quality review found; the increment is tested again.")
    c.user("build_user_training", TR, 11, "Train users on the increment", "crm_iteration_training",
           "Train the users on what this iteration delivered.")
    c.user("build_collect_feedback", KU, 12, "Collect user feedback", "crm_iteration_feedback",
           "Collect the users' feedback; it becomes the next iteration's input requirements.")
    c.script("build_record_feedback", BC, 13, "Record feedback as next iteration's input", """
        iteration_inputs[str(iteration + 1)] = [dict(item, source_iteration=iteration) for item in feedback_items
                                                if item.get("priority") in ("must", "should")]
        deferred_feedback = deferred_feedback + [dict(item, source_iteration=iteration) for item in feedback_items
                                                 if item.get("priority") == "later"]
    """, doc="Must/should feedback becomes the next iteration's input; 'later' goes to the improvement backlog.")
    c.xor("build_more_iterations", BC, 14, "More iterations?")
    c.end("build_end", BC, 15, "All iterations built")
    c.chain("build_start", "build_iteration_merge", "build_next_iteration", "build_develop", "build_qc_merge")
    c.flow("build_qc_merge", "build_qc_split", route="Z")
    for test in ("build_test_performance", "build_test_security", "build_test_functional"):
        c.chain("build_qc_split", test, "build_qc_join")
    # Results below the bar go straight back to fixing: the gate's entry criteria (the same bar, in
    # crm_implementation.gates.yaml) would refuse to open it, and a refusal rolls back the last
    # tester's submission - the other testers could not correct theirs (see docs/flagship.md).
    c.chain("build_qc_join", "build_tests_green")
    c.flow("build_tests_green", "gate_quality_review", "bar met", QUALITY_BAR)
    c.flow("build_tests_green", "build_fix_defects", "below the bar", default=True)
    c.chain("gate_quality_review", "build_quality_ok")
    gate_outcomes(c, "build_quality_ok", "build_user_training", "build_fix_defects")
    c.flow("build_fix_defects", "build_qc_merge", route=("above",))
    c.chain("build_user_training", "build_collect_feedback", "build_record_feedback", "build_more_iterations")
    c.flow("build_more_iterations", "build_iteration_merge", "next iteration", "iteration < iterations",
           route=("above",))
    c.flow("build_more_iterations", "build_end", "all done", default=True)
    return c


def deployment() -> Container:
    c = phase("phase_deployment", "Deployment", "P21D")
    c.start("deploy_start", TL, 0, "Deployment started")
    c.par("deploy_preparation_split", TL, 1)
    c.user("deploy_prepare_environment", TL, 2, "Prepare production environment", "crm_environment_preparation",
           "Set up and verify the production environment, backups and monitoring.")
    c.user("deploy_clean_data", BC, 2, "Clean legacy data", "crm_data_cleaning",
           "Clean the legacy customer data (duplicates, gaps, outdated records) with the departments.")
    c.par("deploy_preparation_join", TL, 3)
    c.xor("deploy_retry_merge", PM, 4)
    c.xor("deploy_rehearsal_merge", TL, 4)
    c.script("deploy_next_rehearsal", TL, 5, "Count rehearsal", "rehearsal = rehearsal + 1",
             doc="Counts the migration rehearsals.")
    c.user("deploy_migration_rehearsal", TL, 6, "Migration rehearsal", "crm_migration_rehearsal",
           "Rehearse the data migration on a copy of production and record whether it passed.")
    c.xor("deploy_rehearsal_passed", TL, 7, "Rehearsal passed?")
    c.xor("deploy_go_merge", SP, 8)
    c.gate("gate_go_no_go", SP, 9, "Go/no-go decision", "crm_go_no_go", "go_no_go",
           "The Sponsor decides whether the production migration and go-live may start: go, no-go (resolve the "
           "blockers, rehearse again), hold (decide again in a week) or stop the project. Signed.")
    c.xor("deploy_go", SP, 10, "Go?")
    c.add(Node("deploy_hold_wait", "intermediateCatchEvent", "On hold: decide again in 7 days", SP, 11,
               timer='"P7D"', doc="Go-live is on hold; the go/no-go decision is taken again after a week."))
    killed_end(c, "deploy_killed", SP, 12)
    c.user("deploy_resolve_blockers", PM, 10, "Resolve go-live blockers", "crm_go_live_blockers",
           "Resolve what stopped the go decision; another rehearsal follows.")
    c.user("deploy_production_migration", TL, 11, "Migrate production data", "crm_production_migration",
           "Run the production migration and reconcile the result.")
    c.xor("deploy_migration_ok", TL, 12, "Migration succeeded?")
    c.user("deploy_rollback", TL, 13, "Roll back production migration", "crm_rollback",
           "Restore the legacy systems and data; the migration is rehearsed again.")
    c.end("deploy_end", QL, 13, "System live")
    c.chain("deploy_start", "deploy_preparation_split", "deploy_prepare_environment", "deploy_preparation_join")
    c.chain("deploy_preparation_split", "deploy_clean_data", "deploy_preparation_join")
    c.chain("deploy_preparation_join", "deploy_rehearsal_merge", "deploy_next_rehearsal",
            "deploy_migration_rehearsal", "deploy_rehearsal_passed")
    c.flow("deploy_rehearsal_passed", "deploy_go_merge", "pass", 'rehearsal_result == "pass"')
    c.flow("deploy_rehearsal_passed", "deploy_rehearsal_merge", "fail", default=True,
           route=("below",))
    c.chain("deploy_go_merge", "gate_go_no_go", "deploy_go")
    gate_outcomes(c, "deploy_go", "deploy_production_migration", "deploy_resolve_blockers", recycle="no-go",
                  kill_to="deploy_killed", hold_to="deploy_hold_wait", go_route=("bottom-right", 75),
                  hold_route="straight")
    c.flow("deploy_hold_wait", "deploy_go_merge", route=("below",))
    c.flow("deploy_resolve_blockers", "deploy_retry_merge", route="straight")
    c.flow("deploy_retry_merge", "deploy_rehearsal_merge")
    c.flow("deploy_production_migration", "deploy_migration_ok")
    c.flow("deploy_migration_ok", "deploy_end", "success", 'migration_result == "success"')
    c.flow("deploy_migration_ok", "deploy_rollback", "failed", default=True)
    c.flow("deploy_rollback", "deploy_retry_merge", route=("channel", row_top(PM) + 14))
    return c


def training_golive() -> Container:
    c = phase("phase_training_golive", "Training and Go-Live", "P30D")
    c.start("golive_start", TR, 0, "Go-live preparation started")
    c.user("golive_training_plans", TR, 1, "Create role-based training plans", "crm_training_plans",
           "Plan the training for each user role.")
    c.user("golive_super_users", PM, 2, "Form super-user group", "crm_super_user_group",
           "Nominate the super users who support their colleagues at go-live.")
    c.user("golive_end_user_training", TR, 3, "Train end users", "crm_end_user_training",
           "Run the role-based training sessions.")
    c.xor("golive_support_merge", TL, 4)
    c.par("golive_support_split", TL, 5)
    c.user("golive_onsite_support", TL, 6, "Provide on-site go-live support", "crm_onsite_support",
           "Support the users on site during the first days of live operation.")
    c.user("golive_super_user_support", KU, 6, "Super-user floor support", "crm_super_user_support",
           "Help colleagues in your department and report recurring problems.")
    c.par("golive_support_join", TL, 7)
    c.user("golive_collect_feedback", TR, 8, "Collect go-live feedback", "crm_golive_feedback",
           "Survey the users about the training and the first weeks with the new system.")
    c.gate("gate_golive_signoff", SP, 9, "Sign off go-live support", "crm_golive_signoff", "golive_signoff",
           "The Sponsor confirms stable operation and ends the go-live support, or extends it.")
    c.xor("golive_signed_off", SP, 10, "Operation stable?")
    c.end("golive_end", SP, 11, "Go-live support ended")
    c.user("golive_extend_support", PM, 10, "Extend go-live support", "crm_support_extension",
           "Plan the extended support the Sponsor asked for.")
    c.chain("golive_start", "golive_training_plans", "golive_super_users", "golive_end_user_training",
            "golive_support_merge", "golive_support_split", "golive_onsite_support", "golive_support_join")
    c.chain("golive_support_split", "golive_super_user_support", "golive_support_join")
    c.flow("golive_support_join", "golive_collect_feedback", route="Z")
    c.chain("golive_collect_feedback", "gate_golive_signoff", "golive_signed_off")
    gate_outcomes(c, "golive_signed_off", "golive_end", "golive_extend_support", go="stable", recycle="extend")
    c.flow("golive_extend_support", "golive_support_merge", route="L")
    return c


def closure() -> Container:
    c = phase("phase_closure", "Closure", "P14D")
    c.start("closure_start", PM, 0, "Closure started")
    c.data_ref("closure_risks_ref", SP, 0.8, "Risk register", "risks")
    c.data_ref("closure_change_requests_ref", SP, 1.2, "Change request log", "change_requests")
    c.user("closure_review_goals", PM, 1, "Review results against kickoff goals", "crm_goal_review",
           "Compare the results with the goals set at kickoff; the risk register and change log are shown.",
           data_inputs=["closure_risks_ref", "closure_change_requests_ref"])
    c.user("closure_archive_documents", PM, 2, "Archive project documents", "crm_document_archive",
           "Archive the project documents and record where they are kept.")
    c.user("closure_lessons_learned", PM, 3, "Capture lessons learned", "crm_lessons_learned",
           "Collect the lessons learned from the whole project.")
    c.script("closure_update_knowledge_base", PM, 4, "Add lessons to knowledge base", """
        knowledge_base = knowledge_base + [dict(lesson, project=project_name) for lesson in lessons]
    """, doc="Appends the lessons learned to the knowledge base kept in the instance data.")
    c.user("closure_improvement_backlog", BC, 5, "Create improvement backlog", "crm_improvement_backlog",
           "List the improvements for after the project, including deferred user feedback.")
    c.xor("closure_acceptance_merge", SP, 6)
    c.gate("gate_final_acceptance", SP, 7, "Final acceptance", "crm_final_acceptance", "final_acceptance",
           "The Sponsor accepts the project result and closes the project, or names what is missing.")
    c.xor("closure_accepted", SP, 8, "Accepted?")
    c.end("closure_end", SP, 9, "Project accepted")
    c.user("closure_resolve_acceptance_issues", PM, 8, "Resolve acceptance issues", "crm_acceptance_issues",
           "Resolve what the Sponsor named as missing for acceptance.")
    c.chain("closure_start", "closure_review_goals", "closure_archive_documents", "closure_lessons_learned",
            "closure_update_knowledge_base", "closure_improvement_backlog")
    c.flow("closure_improvement_backlog", "closure_acceptance_merge", route="Z")
    c.chain("closure_acceptance_merge", "gate_final_acceptance", "closure_accepted")
    gate_outcomes(c, "closure_accepted", "closure_end", "closure_resolve_acceptance_issues", go="accept")
    c.flow("closure_resolve_acceptance_issues", "closure_acceptance_merge", route="L")
    return c


def change_request_handler() -> Container:
    c = Container("change_request_handling", "Change request", rows=(SP, PM), triggered=True,
                  message="change_request")
    c.start("change_requested", PM, 0, "Change requested", message="msg_change_request",
            message_var="change_report")
    c.user("change_assess", PM, 1, "Assess change request", "crm_change_assessment",
           "Assess scope, schedule and cost impact of the change and whether the Sponsor must approve it.")
    c.xor("change_needs_approval", PM, 2, "Sponsor approval needed?")
    c.gate("gate_change_approval", SP, 3, "Approve change request", "crm_change_approval", "change_approval",
           "The Sponsor approves the change request (possibly with conditions), defers it (hold) or rejects it "
           "(recycle).")
    c.xor("change_merge", PM, 4)
    c.data_ref("change_requests_ref", SP, 5, "Change request log", "change_requests")
    c.script("change_record", PM, 5, "Record change request", """
        change_requests = list(change_requests or []) + [{
            "id": "CR-%d" % (len(change_requests or []) + 1),
            "title": change_title,
            "description": change_description,
            "requested_by": requested_by,
            "schedule_impact_days": globals().get("schedule_impact_days", 0),
            "cost_impact": globals().get("cost_impact", 0),
            "recommendation": recommendation,
            "needs_sponsor_approval": needs_sponsor_approval,
            "reported": globals().get("change_report"),
            "sponsor_decision": gate_outcome if needs_sponsor_approval else None,
            "status": STATUS[gate_outcome] if needs_sponsor_approval else recommendation,
        }]
        # Recorded in the change request log: drop the handler's form fields and the gate's result.
        for name in FORM_FIELDS:
            globals().pop(name, None)
    """.replace("FORM_FIELDS", repr(form_fields("crm_change_assessment") + form_fields("crm_change_approval")
                                   + GATE_RESULT)).replace("STATUS", repr(CHANGE_STATUS)),
             doc="Appends the change request and its outcome (the Sponsor's gate decision) to the change request log.",
             data_inputs=["change_requests_ref"], data_outputs=["change_requests_ref"])
    c.end("change_recorded", PM, 6, "Change request recorded")
    c.chain("change_requested", "change_assess", "change_needs_approval")
    c.flow("change_needs_approval", "gate_change_approval", "yes", "needs_sponsor_approval")
    c.flow("change_needs_approval", "change_merge", "no", default=True)
    c.flow("gate_change_approval", "change_merge")
    c.chain("change_merge", "change_record", "change_recorded")
    return c


def risk_handler() -> Container:
    c = Container("risk_handling", "Risk", rows=(SP, PM), triggered=True, message="raise_risk")
    c.start("risk_raised", PM, 0, "Risk raised", message="msg_raise_risk", message_var="risk_report")
    c.user("risk_assess", PM, 1, "Assess risk", "crm_risk_assessment",
           "Assess probability and impact of the risk and choose a response: avoid, reduce, transfer or accept.")
    c.data_ref("risks_ref", SP, 2, "Risk register", "risks")
    c.script("risk_record", PM, 2, "Record risk", """
        levels = {"low": 1, "medium": 2, "high": 3}
        risks = list(risks or []) + [{
            "id": "R-%d" % (len(risks or []) + 1),
            "title": risk_title,
            "description": risk_description,
            "category": risk_category,
            "probability": probability,
            "impact": impact,
            "score": levels[probability] * levels[impact],
            "response": response,
            "response_plan": response_plan,
            "owner": risk_owner,
            "review_date": globals().get("review_date"),
            "reported": globals().get("risk_report"),
        }]
        # Recorded in the risk register: drop the handler's form fields.
        for name in FORM_FIELDS:
            globals().pop(name, None)
    """.replace("FORM_FIELDS", repr(form_fields("crm_risk_assessment"))), doc="Appends the assessed risk to the risk register.",
             data_inputs=["risks_ref"], data_outputs=["risks_ref"])
    c.end("risk_recorded", PM, 3, "Risk recorded")
    c.chain("risk_raised", "risk_assess", "risk_record", "risk_recorded")
    return c


MESSAGES = [("msg_raise_risk", "raise_risk"), ("msg_change_request", "change_request")]
# What Phasegate sets when it completes a gate task (besides `decision`).
GATE_RESULT = ["gate_outcome", "gate_round", "gate_reason"]
# The change request's status by the outcome of the Sponsor's change approval gate.
CHANGE_STATUS = {"go": "approved", "conditional-go": "approved with conditions", "hold": "deferred",
                 "recycle": "rejected"}


# --------------------------------------------------------------------------- layout


class Layout:
    """Places every node, routes every flow and places every label; collects layout problems."""

    def __init__(self, process: Container):
        self.process = process
        self.containers: dict[str, Container] = {c.id: c for c in process.children}
        self.node_container: dict[str, Container] = {}
        self.all_nodes: dict[str, Node] = {}
        for container in [process, *process.children]:
            for node in container.nodes.values():
                self.all_nodes[node.id] = node
                self.node_container[node.id] = container
        self.pool = (0, 0, 0, 0)
        self.problems: list[str] = []

    # -- shapes ------------------------------------------------------------------------------

    def place(self) -> None:
        process = self.process
        content_x = POOL_X + POOL_HEADER + LANE_HEADER
        start = process.nodes["start_crm_project"]
        init = process.nodes["init_project"]
        self._put(start, content_x + 60, row_cy(PM))
        self._put(init, content_x + 60 + COLW, row_cy(PM))
        x = init.x + init.w + 80
        phases = [c for c in process.children if not c.triggered]
        for container in phases:
            self._place_container(container, x)
            right = container.x + container.w
            key = container.id.removeprefix("phase_")
            timer = process.nodes[f"timer_{key}_overrun"]
            self._put(timer, right, row_cy(PM))
            self._put(process.nodes[f"remind_{key}_overrun"], right + 175, row_cy(PM))
            self._put(process.nodes[f"log_{key}_overrun"], right + 325, row_cy(PM))
            self._put(process.nodes[f"overruns_{key}_ref"], right + 325, row_cy(SP))
            self._put(process.nodes[f"end_{key}_overrun"], right + 433, row_cy(PM))
            if f"check_{key}_killed" in process.nodes:
                self._put(process.nodes[f"check_{key}_killed"], right + 110, row_cy(TL))
                self._put(process.nodes[f"stopped_{key}"], right + 110, row_cy(QL))
            x = right + PHASE_GAP
        last_right = phases[-1].x + phases[-1].w
        self._put(process.nodes["end_crm_project"], last_right + 175, row_cy(TL))
        x = last_right + PHASE_GAP
        for container in [c for c in process.children if c.triggered]:
            self._place_container(container, x)
            x = container.x + container.w + 60
        pool_w = x - POOL_X
        pool_h = len(ROLES) * LANE_H
        self.pool = (POOL_X, POOL_Y, pool_w, pool_h)

    def _place_container(self, container: Container, x: float) -> None:
        container.x = x
        container.w = 2 * PAD + container.cols * COLW
        top, bottom = container.rows
        container.y = row_top(top) + 8
        container.h = row_top(bottom) + LANE_H - 8 - container.y
        for node in container.nodes.values():
            self._put(node, container.col_cx(node.col), row_cy(node.row))

    @staticmethod
    def _put(node: Node, cx: float, cy: float) -> None:
        node.w, node.h = SIZES[node.kind]
        if node.kind == "dataObjectReference":
            cy = cy - 12
        node.x, node.y = cx - node.w / 2, cy - node.h / 2

    # -- flows -------------------------------------------------------------------------------

    def shape_of(self, ref: str) -> tuple:
        if ref in self.containers:
            c = self.containers[ref]
            return (c.x, c.y, c.w, c.h)
        return self.all_nodes[ref].bounds

    def is_gateway(self, ref: str) -> bool:
        node = self.all_nodes.get(ref)
        return node is not None and node.kind.endswith("Gateway")

    def route(self) -> None:
        for container in [self.process, *self.process.children]:
            for flow in container.flows:
                flow.waypoints = self._route(flow, container)

    def _route(self, flow: Flow, container: Container) -> list[tuple]:
        sx, sy, sw, sh = self.shape_of(flow.src)
        tx, ty, tw, th = self.shape_of(flow.tgt)
        scx, scy, tcx, tcy = sx + sw / 2, sy + sh / 2, tx + tw / 2, ty + th / 2
        if container is self.process:
            # top level: sub-process to sub-process along the Technical Lead row, others straight
            if flow.src in self.containers and flow.tgt in self.containers:
                y = row_cy(TL)
                return [(sx + sw, y), (tx, y)]
            if abs(scx - tcx) < 1:               # a gateway after a phase -> "Project stopped" below it
                return [(scx, sy + sh), (tcx, ty)]
            if flow.tgt in self.containers:      # init -> first phase
                return [(sx + sw, scy), (tx, scy)]
            if flow.src in self.containers:      # last phase -> end
                return [(sx + sw, tcy), (tx, tcy)]
            return [(sx + sw, scy), (tx, tcy)]
        route = flow.route
        if route == "auto":
            if abs(scy - tcy) < 1:
                route = "straight"
            elif self.is_gateway(flow.src) and tcx > scx + 1:
                route = "gateway-out"
            elif abs(scx - tcx) < 1:
                route = "vertical"
            elif self.is_gateway(flow.tgt) and tcx > scx:
                route = "gateway-in"
            else:
                route = "Z"
        if route == "straight":
            if tcx > scx:
                return [(sx + sw, scy), (tx, tcy)]
            return [(sx, scy), (tx + tw, tcy)]
        if route == "vertical":
            if tcy > scy:
                return [(scx, sy + sh), (tcx, ty)]
            return [(scx, sy), (tcx, ty + th)]
        if route == "gateway-out":     # leave a gateway upwards/downwards, then right into the target
            start = (scx, sy) if tcy < scy else (scx, sy + sh)
            return [start, (scx, tcy), (tx, tcy)]
        if route == "gateway-in":      # right, then up/down into a joining gateway
            end = (tcx, ty + th) if scy > tcy else (tcx, ty)
            return [(sx + sw, scy), (tcx, scy), end]
        if route == "Z":
            xm = ((sx + sw) + tx) / 2
            return [(sx + sw, scy), (xm, scy), (xm, tcy), (tx, tcy)]
        if route == "L":               # left along the source row, then into the target from below/above
            end = (tcx, ty + th) if scy > tcy else (tcx, ty)
            return [(sx, scy), (tcx, scy), end]
        kind = route[0]
        if kind == "bottom-right":     # leave a gateway's bottom corner to the right, turn down at scx + dx
            x = scx + route[1]
            return [(scx, sy + sh), (x, sy + sh), (x, tcy), (tx, tcy)]
        if kind == "below":
            y = row_top(self.all_nodes[flow.src].row) + LANE_H - 14
            return [(scx, sy + sh), (scx, y), (tcx, y), (tcx, ty + th)]
        if kind == "above":
            y = row_top(min(self.all_nodes[flow.src].row, self.all_nodes[flow.tgt].row)) + 14
            return [(scx, sy), (scx, y), (tcx, y), (tcx, ty)]
        if kind == "channel":
            y = route[1]
            return [(scx, sy), (scx, y), (tcx, y), (tcx, ty)]
        raise ValueError(f"unknown route {route!r} for {flow.id}")

    def data_edges(self) -> list[tuple[str, list[tuple]]]:
        """DI edges of data associations: (association id, waypoints)."""
        edges = []
        for node in self.all_nodes.values():
            # a reference both read and written gets two parallel edges, 16px apart
            for ref in node.data_inputs:
                r = self.all_nodes[ref]
                x = r.cx - 8 if ref in node.data_outputs else r.cx
                edges.append((f"{node.id}_input_{ref}", [(x, r.y + r.h), (x, node.y)]))
            for ref in node.data_outputs:
                r = self.all_nodes[ref]
                edges.append((f"{node.id}_output_{ref}", [(r.cx + 8, node.y), (r.cx + 8, r.y + r.h)]))
        return edges

    # -- labels ------------------------------------------------------------------------------

    def obstacles(self) -> tuple[list[tuple], list[tuple]]:
        """(rectangles, segments) that labels must keep clear of."""
        rects = [n.bounds for n in self.all_nodes.values()]
        for c in self.process.children:  # the sub-process's own name, drawn centred at its top (bpmn-js)
            width = 20 + len(c.name) * 7.5
            rects.append((c.x + (c.w - width) / 2, c.y, width, 26))
        segments = []
        for container in [self.process, *self.process.children]:
            for flow in container.flows:
                segments.extend(zip(flow.waypoints, flow.waypoints[1:]))
        for _id, points in self.data_edges():
            segments.extend(zip(points, points[1:]))
        for c in self.process.children:
            x, y, w, h = c.x, c.y, c.w, c.h
            segments += [((x, y), (x + w, y)), ((x + w, y), (x + w, y + h)), ((x, y + h), (x + w, y + h)),
                         ((x, y), (x, y + h))]
        px, py, pw, ph = self.pool
        for r in range(1, len(ROLES)):
            segments.append(((px + POOL_HEADER, row_top(r)), (px + pw, row_top(r))))
        return rects, segments

    def place_labels(self) -> None:
        rects, segments = self.obstacles()
        placed: list[tuple] = []

        def free(box, own=()):
            if any(_overlap(box, r, 2) for r in rects if r not in own):
                return False
            if any(_overlap(box, p, 2) for p in placed):
                return False
            if any(_segment_hits(a, b, box, 2) for a, b in segments):
                return False
            px, py, pw, ph = self.pool
            return box[0] > px + POOL_HEADER + LANE_HEADER and box[0] + box[2] < px + pw and \
                box[1] > py and box[1] + box[3] < py + ph

        for node in self.all_nodes.values():
            if not node.name or node.kind in ("userTask", "scriptTask"):
                continue
            w, h, _lines = label_size(node.name)
            x0, y0, nw, nh = node.bounds
            cx = x0 + nw / 2
            gap = 4
            below = (cx - w / 2, y0 + nh + gap, w, h)
            above = (cx - w / 2, y0 - gap - h, w, h)
            if node.kind == "boundaryEvent":    # sits on the sub-process border: label outside, to the right
                candidates = [(x0 + nw + gap, y0 - h + 6, w, h), (x0 + nw + gap, y0 + nh - 6, w, h)]
            elif node.kind.endswith("Gateway"):
                candidates = [above, below]
            else:
                candidates = [below, above]
            candidates += [
                (x0 - gap - w, y0 - h, w, h), (x0 + nw + gap, y0 - h, w, h),
                (x0 - gap - w, y0 + nh, w, h), (x0 + nw + gap, y0 + nh, w, h),
                (x0 + nw + gap, y0 + nh / 2 + 6, w, h), (x0 - gap - w, y0 + nh / 2 + 6, w, h),
            ]
            for box in candidates:
                if free(box, own=(node.bounds,)):
                    node.label = box
                    placed.append(box)
                    break
            else:
                self.problems.append(f"no free place for the label of {node.id}")
                node.label = candidates[0]
                placed.append(candidates[0])

        for container in [self.process, *self.process.children]:
            for flow in container.flows:
                if not flow.name:
                    continue
                w, h, _lines = label_size(flow.name, wrap=False)
                pts = flow.waypoints
                candidates = []
                for (ax, ay), (bx, by) in list(zip(pts, pts[1:]))[:2]:
                    if abs(ay - by) < 1:      # horizontal segment
                        left = ax + 6 if bx > ax else ax - 6 - w
                        candidates += [(left, ay - 4 - h, w, h), (left, ay + 4, w, h)]
                    else:                     # vertical segment
                        top = ay + 6 if by > ay else ay - 6 - h
                        candidates += [(ax + 5, top, w, h), (ax - 5 - w, top, w, h)]
                for box in candidates:
                    if free(box):
                        flow.label = box
                        placed.append(box)
                        break
                else:
                    self.problems.append(f"no free place for the label of {flow.id}")
                    flow.label = candidates[0]

    # -- checks ------------------------------------------------------------------------------

    def check(self) -> None:
        nodes = list(self.all_nodes.values())
        for i, a in enumerate(nodes):
            for b in nodes[i + 1:]:
                if a.kind == "boundaryEvent" or b.kind == "boundaryEvent":
                    host = a.attached_to or b.attached_to
                    other = b if a.kind == "boundaryEvent" else a
                    if other.id == host:
                        continue
                if _overlap(a.bounds, b.bounds, 10):
                    self.problems.append(f"shapes {a.id} and {b.id} overlap")
        subs = self.process.children
        for i, a in enumerate(subs):
            for b in subs[i + 1:]:
                if _overlap((a.x, a.y, a.w, a.h), (b.x, b.y, b.w, b.h), 0):
                    self.problems.append(f"sub-processes {a.id} and {b.id} overlap")
            for node in a.nodes.values():
                if not _inside(node.bounds, (a.x, a.y, a.w, a.h), 10):
                    self.problems.append(f"{node.id} sticks out of {a.id}")
                if not _inside(node.bounds, (a.x, row_top(node.row), a.w, LANE_H), 8) \
                        and node.kind != "dataObjectReference":
                    self.problems.append(f"{node.id} sticks out of its lane")
        for node in self.process.nodes.values():
            if node.kind == "boundaryEvent":
                continue
            for c in subs:
                if _overlap(node.bounds, (c.x, c.y, c.w, c.h), 0):
                    self.problems.append(f"{node.id} overlaps sub-process {c.id}")
        # flows: no shape in the way, no shared stretches
        all_segments = []
        for container in [self.process, *self.process.children]:
            for flow in container.flows:
                ends = {flow.src, flow.tgt}
                for a, b in zip(flow.waypoints, flow.waypoints[1:]):
                    if a[0] != b[0] and a[1] != b[1]:
                        self.problems.append(f"{flow.id} has a diagonal segment")
                    for node in nodes:
                        if node.id in ends or (node.kind == "boundaryEvent" and node.id in ends):
                            continue
                        if _segment_hits(a, b, node.bounds, -1):
                            self.problems.append(f"{flow.id} runs through {node.id}")
                    for c in subs:
                        if c.id in ends or c is container:
                            continue
                        if _segment_hits(a, b, (c.x, c.y, c.w, c.h), -1):
                            self.problems.append(f"{flow.id} runs through sub-process {c.id}")
                    all_segments.append((flow.id, a, b))
        for i, (fa, a1, a2) in enumerate(all_segments):
            for fb, b1, b2 in all_segments[i + 1:]:
                if fa != fb and _collinear_overlap(a1, a2, b1, b2):
                    self.problems.append(f"flows {fa} and {fb} share a stretch of line")


def label_size(text: str, wrap: bool = True) -> tuple[float, float, list[str]]:
    lines = textwrap.wrap(text, LABEL_CHARS) if wrap else [text]
    width = 90 if wrap else round(len(text) * CHAR_W + 4)
    return width, 13 * len(lines) + 1, lines


def _overlap(a, b, margin=0) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw + margin and bx < ax + aw + margin and ay < by + bh + margin and by < ay + ah + margin


def _inside(inner, outer, margin=0) -> bool:
    ix, iy, iw, ih = inner
    ox, oy, ow, oh = outer
    return ix >= ox + margin and iy >= oy + margin and ix + iw <= ox + ow - margin and iy + ih <= oy + oh - margin


def _segment_hits(a, b, box, margin=0) -> bool:
    """Does the axis-parallel segment a-b cross the box (grown by margin; negative shrinks)?"""
    x, y, w, h = box
    x0, x1 = x - margin, x + w + margin
    y0, y1 = y - margin, y + h + margin
    (ax, ay), (bx, by) = a, b
    lo_x, hi_x = min(ax, bx), max(ax, bx)
    lo_y, hi_y = min(ay, by), max(ay, by)
    return lo_x < x1 and hi_x > x0 and lo_y < y1 and hi_y > y0


def _collinear_overlap(a1, a2, b1, b2) -> bool:
    if a1[1] == a2[1] == b1[1] == b2[1]:
        lo = max(min(a1[0], a2[0]), min(b1[0], b2[0]))
        hi = min(max(a1[0], a2[0]), max(b1[0], b2[0]))
        return hi - lo > 1
    if a1[0] == a2[0] == b1[0] == b2[0]:
        lo = max(min(a1[1], a2[1]), min(b1[1], b2[1]))
        hi = min(max(a1[1], a2[1]), max(b1[1], b2[1]))
        return hi - lo > 1
    return False


# --------------------------------------------------------------------------- XML

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}


def q(prefix: str, tag: str) -> str:
    return f"{{{NS[prefix]}}}{tag}"


def sub(parent, prefix: str, tag: str, text: str | None = None, **attrs):
    element = etree.SubElement(parent, q(prefix, tag))
    for key, value in attrs.items():
        if value is None:
            continue
        if ":" in key:
            p, k = key.split(":")
            element.set(q(p, k), str(value))
        else:
            element.set(key, str(value))
    if text is not None:
        element.text = text
    return element


def num(value: float) -> str:
    return str(int(round(value)))


def write_xml(process: Container, layout: Layout) -> str:
    root = etree.Element(q("bpmn", "definitions"), nsmap=NS)
    root.set("id", "crm_implementation_definitions")
    root.set("targetNamespace", "http://bpmn.io/schema/bpmn")
    root.set("exporter", "Phasegate processes/tools/generate_crm.py")
    root.set("exporterVersion", "1")

    collaboration = sub(root, "bpmn", "collaboration", id="crm_collaboration")
    sub(collaboration, "bpmn", "participant", id="crm_participant", name="CRM implementation project",
        processRef=PROCESS_ID)
    for message_id, name in MESSAGES:
        sub(root, "bpmn", "message", id=message_id, name=name)

    proc = sub(root, "bpmn", "process", id=PROCESS_ID, name=process.name, isExecutable="true")
    sub(proc, "bpmn", "documentation",
        "CRM implementation in eight phases, each ending in a phase gate (configured in "
        "crm_implementation.gates.yaml) that routes on gate_outcome: go and conditional go continue, recycle "
        "goes back to rework, kill stops the project, hold waits. Start data: project_name, iterations "
        "(default 3). Risks and change requests can be raised at any time with the messages raise_risk and "
        "change_request.")
    lane_set = sub(proc, "bpmn", "laneSet", id="crm_lanes")
    lanes = [sub(lane_set, "bpmn", "lane", id=LANE_IDS[i], name=role) for i, role in enumerate(ROLES)]
    for node in layout.all_nodes.values():
        if node.kind != "dataObjectReference":
            sub(lanes[node.row], "bpmn", "flowNodeRef", node.id)

    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for container in [process, *process.children]:
        for flow in container.flows:
            outgoing.setdefault(flow.src, []).append(flow.id)
            incoming.setdefault(flow.tgt, []).append(flow.id)

    def write_container(parent, container: Container):
        for data_id, name in container.data_objects:
            sub(parent, "bpmn", "dataObject", id=data_id, name=name)
        for node in container.nodes.values():
            write_node(parent, node)
        for child in container.children:
            attrs = {"id": child.id, "name": child.name}
            if child.triggered:
                attrs["triggeredByEvent"] = "true"
            element = sub(parent, "bpmn", "subProcess", **attrs)
            if child.phase:
                sub(element, "bpmn", "documentation",
                    f"{child.name} phase; the milestone reminder fires after {child.due[1:-1]} days.")
                ext = sub(element, "bpmn", "extensionElements")
                props = sub(ext, "camunda", "properties")
                sub(props, "camunda", "property", name="phase", value=child.phase)
            else:
                sub(element, "bpmn", "documentation",
                    f"Non-interrupting: runs whenever the message '{child.message}' arrives, alongside the phases.")
            for flow_id in incoming.get(child.id, []):
                sub(element, "bpmn", "incoming", flow_id)
            for flow_id in outgoing.get(child.id, []):
                sub(element, "bpmn", "outgoing", flow_id)
            write_container(element, child)
        for flow in container.flows:
            element = sub(parent, "bpmn", "sequenceFlow", id=flow.id, name=flow.name, sourceRef=flow.src,
                          targetRef=flow.tgt)
            if flow.cond:
                sub(element, "bpmn", "conditionExpression", flow.cond, **{"xsi:type": "bpmn:tFormalExpression"})

    def write_node(parent, node: Node):
        tag = node.kind
        attrs = {"id": node.id, "name": node.name}
        if tag == "userTask":
            attrs["camunda:candidateGroups"] = node.role
        if tag == "scriptTask":
            attrs["scriptFormat"] = "python"
        if tag == "boundaryEvent":
            attrs["attachedToRef"] = node.attached_to
            attrs["cancelActivity"] = "false"
        if tag == "startEvent" and node.message:
            attrs["isInterrupting"] = "false"
        if tag == "dataObjectReference":
            attrs["dataObjectRef"] = node.data_object
        if node.default:
            attrs["default"] = node.default
        element = sub(parent, "bpmn", tag, **attrs)
        if node.doc:
            sub(element, "bpmn", "documentation", node.doc)
        properties = [(k, v) for k, v in (("form", node.form), ("gate", node.gate), ("phase", node.phase)) if v]
        if properties:
            ext = sub(element, "bpmn", "extensionElements")
            props = sub(ext, "camunda", "properties")
            for key, value in properties:
                sub(props, "camunda", "property", name=key, value=value)
        if tag == "dataObjectReference":
            return
        for flow_id in incoming.get(node.id, []):
            sub(element, "bpmn", "incoming", flow_id)
        for flow_id in outgoing.get(node.id, []):
            sub(element, "bpmn", "outgoing", flow_id)
        if node.data_inputs:
            sub(element, "bpmn", "property", id=f"{node.id}_input_target", name="__targetRef_placeholder")
        for ref in node.data_inputs:
            association = sub(element, "bpmn", "dataInputAssociation", id=f"{node.id}_input_{ref}")
            sub(association, "bpmn", "sourceRef", ref)
            sub(association, "bpmn", "targetRef", f"{node.id}_input_target")
        for ref in node.data_outputs:
            association = sub(element, "bpmn", "dataOutputAssociation", id=f"{node.id}_output_{ref}")
            sub(association, "bpmn", "targetRef", ref)
        if tag == "scriptTask":
            sub(element, "bpmn", "script", node.script)
        if node.message:
            definition = sub(element, "bpmn", "messageEventDefinition", id=f"{node.id}_definition",
                             messageRef=node.message)
            if node.message_var:  # SpiffWorkflow's parser stores the message payload under this name
                ext = sub(definition, "bpmn", "extensionElements")
                sub(ext, "spiffworkflow", "messageVariable", node.message_var)
        if node.timer:
            definition = sub(element, "bpmn", "timerEventDefinition", id=f"{node.id}_definition")
            sub(definition, "bpmn", "timeDuration", node.timer, **{"xsi:type": "bpmn:tFormalExpression"})
        if node.terminate:
            sub(element, "bpmn", "terminateEventDefinition", id=f"{node.id}_definition")

    write_container(proc, process)

    # -- diagram interchange -------------------------------------------------------------------
    diagram = sub(root, "bpmndi", "BPMNDiagram", id="crm_diagram", name="CRM implementation")
    plane = sub(diagram, "bpmndi", "BPMNPlane", id="crm_plane", bpmnElement="crm_collaboration")

    def bounds(parent, box):
        x, y, w, h = box
        sub(parent, "dc", "Bounds", x=num(x), y=num(y), width=num(w), height=num(h))

    def shape(element_id, box, label=None, **attrs):
        element = sub(plane, "bpmndi", "BPMNShape", id=f"{element_id}_di", bpmnElement=element_id, **attrs)
        bounds(element, box)
        if label is not None:
            bounds(sub(element, "bpmndi", "BPMNLabel"), label)

    def edge(element_id, points, label=None):
        element = sub(plane, "bpmndi", "BPMNEdge", id=f"{element_id}_di", bpmnElement=element_id)
        for x, y in points:
            sub(element, "di", "waypoint", x=num(x), y=num(y))
        if label is not None:
            bounds(sub(element, "bpmndi", "BPMNLabel"), label)

    px, py, pw, ph = layout.pool
    shape("crm_participant", layout.pool, isHorizontal="true")
    for i in range(len(ROLES)):
        shape(LANE_IDS[i], (px + POOL_HEADER, row_top(i), pw - POOL_HEADER, LANE_H), isHorizontal="true")

    def shapes_of(container: Container):
        for node in container.nodes.values():
            if node.kind == "boundaryEvent":
                continue
            shape(node.id, node.bounds, node.label)
        for child in container.children:
            shape(child.id, (child.x, child.y, child.w, child.h), isExpanded="true")
            shapes_of(child)
        for node in container.nodes.values():
            if node.kind == "boundaryEvent":
                shape(node.id, node.bounds, node.label)

    shapes_of(process)
    for container in [process, *process.children]:
        for flow in container.flows:
            edge(flow.id, flow.waypoints, flow.label)
    for association_id, points in layout.data_edges():
        edge(association_id, points)

    body = etree.tostring(root, pretty_print=True, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


# --------------------------------------------------------------------------- forms

PRIORITY = ["must", "should", "later"]
PRIORITY_NAMES = ["Must have", "Should have", "Later"]
DEPARTMENTS = ["Sales", "Marketing", "Customer Service", "Finance", "IT", "Management", "Other"]
LEVELS = ["low", "medium", "high"]
LEVEL_NAMES = ["Low", "Medium", "High"]
PHASES = ["Kickoff", "Requirements", "System Selection", "Design", "Iterative Build", "Deployment",
          "Training and Go-Live", "Closure"]


def text(title, description, min_length=1, long=False, max_length=None):
    schema = {"type": "string", "title": title, "description": description}
    if min_length:
        schema["minLength"] = min_length
    if max_length:
        schema["maxLength"] = max_length
    if long:
        schema["_ui"] = {"ui:widget": "textarea"}
    return schema


def integer(title, description, minimum=None, maximum=None, default=None):
    schema = {"type": "integer", "title": title, "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    if default is not None:
        schema["default"] = default
    return schema


def number(title, description, minimum=0, maximum=None):
    schema = {"type": "number", "title": title, "description": description, "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def percent(title, description):
    return number(title, description, 0, 100)


def date(title, description):
    return {"type": "string", "format": "date", "title": title, "description": description,
            "_ui": {"ui:widget": "date"}}


def boolean(title, description, default=None):
    schema = {"type": "boolean", "title": title, "description": description}
    if default is not None:
        schema["default"] = default
    return schema


def choice(title, description, values, names=None, default=None):
    schema = {"type": "string", "title": title, "description": description, "enum": list(values)}
    if default is not None:
        schema["default"] = default
    if names:
        schema["_ui"] = {"ui:enumNames": list(names)}
    return schema


def priority(description="must: needed for go-live; should: wanted, can slip one iteration; later: after go-live."):
    return choice("Priority", description, PRIORITY, PRIORITY_NAMES)


def score(title, description):
    return integer(title, description, 1, 5)


def items(title, description, properties, required, min_items=1):
    schema = {"type": "array", "title": title, "description": description, "minItems": min_items,
              "items": {"type": "object", "properties": properties, "required": list(required)}}
    return schema


def counter(title, description):
    return {"type": "integer", "title": title, "description": description, "readOnly": True,
            "_ui": {"ui:readonly": True}}


def report(title, message):
    return {"type": "object", "title": title, "readOnly": True,
            "description": f"What was sent with the '{message}' message that started this task (set by the process)."}


ITERATION = counter("Iteration", "The build iteration this task belongs to (set by the process).")
ITERATIONS = counter("Planned iterations", "How many build iterations the project runs (chosen at start).")
REHEARSAL = counter("Rehearsal run", "The number of this migration rehearsal (set by the process).")
ROUND = counter("Review round", "The number of this requirements review round (set by the process).")


@dataclass
class Form:
    name: str
    title: str
    description: str
    properties: dict
    required: list = field(default_factory=list)
    gate: bool = False
    decision_names: tuple = ("Approve", "Reject")

    def documents(self) -> tuple[dict, dict]:
        properties = {}
        ui: dict = {}
        if self.gate:
            # A configured gate is decided in its approval tasks (go, conditional go, hold, recycle,
            # kill; crm_implementation.gates.yaml); Phasegate then completes the task with
            # gate_outcome and decision approve/reject. The form shows the decision that way.
            properties["decision"] = choice(
                "Decision", "approve: go or conditional go, the project continues; reject: hold, recycle (back "
                "for rework) or kill.", ["approve", "reject"], list(self.decision_names))
            properties["decision"]["_ui"]["ui:widget"] = "radio"
            properties["comment"] = text("Comment", "Why you decided so. Required on rejection: say what must "
                                                    "be reworked.", min_length=0, long=True)
        properties.update(copy.deepcopy(self.properties))
        # read-only context (iteration, round, the reported risk) first, then the decision, then the rest
        order = sorted(properties, key=lambda key: not properties[key].get("readOnly"))
        for key, schema in properties.items():
            _extract_ui(schema, ui, key)
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.title,
            "description": self.description,
            "type": "object",
            "properties": properties,
            "required": (["decision"] if self.gate else []) + list(self.required),
        }
        if self.gate:
            schema["if"] = {"properties": {"decision": {"const": "reject"}}, "required": ["decision"]}
            schema["then"] = {"required": ["comment"],
                              "properties": {"comment": {"minLength": 1, "pattern": "\\S"}}}
        ui_schema = {"ui:order": order + ["*"], **ui}
        return schema, ui_schema


def _extract_ui(schema: dict, ui: dict, key: str) -> None:
    own = schema.pop("_ui", None)
    if own:
        ui.setdefault(key, {}).update(own)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        item_ui: dict = {}
        for sub_key, sub_schema in schema["items"].get("properties", {}).items():
            _extract_ui(sub_schema, item_ui, sub_key)
        if item_ui:
            ui.setdefault(key, {})["items"] = item_ui


def form_fields(name: str) -> list[str]:
    """The field names a form submits (gate forms: decision and comment too)."""
    form = next(f for f in build_forms() if f.name == name)
    return (["decision", "comment"] if form.gate else []) + list(form.properties)


def build_forms() -> list[Form]:
    requirement = {
        "id": text("ID", "Short reference, e.g. REQ-012."),
        "title": text("Requirement", "What the CRM must do, in the users' words."),
        "department": choice("Department", "The department that needs it.", DEPARTMENTS),
        "priority": priority(),
        "acceptance_criterion": text("Acceptance criterion", "How we will know it is met.", min_length=0),
    }
    candidate_scores = lambda what: items(  # noqa: E731
        "Scores per candidate", f"One score (1 = poor, 5 = excellent) per candidate for {what}.",
        {"candidate": text("Candidate", "Product as named in the candidate list."),
         "score": score("Score", f"{what.capitalize()}: 1 = poor, 5 = excellent."),
         "notes": text("Notes", "Evidence and remarks.", min_length=0, long=True)},
        ["candidate", "score"])
    test_result = lambda prefix, kind: {  # noqa: E731
        "iteration": ITERATION,
        f"{prefix}_test_cases": integer("Test cases run", f"Number of {kind} test cases executed.", 0),
        f"{prefix}_pass_rate": percent("Pass rate (%)", f"Share of {kind} test cases passed."),
        f"{prefix}_open_blockers": integer("Open blockers", f"{kind.capitalize()} defects that block release.", 0),
        f"{prefix}_report": text("Report", "Link to or summary of the test report.", min_length=0, long=True),
    }
    test_required = lambda prefix: [f"{prefix}_pass_rate", f"{prefix}_open_blockers"]  # noqa: E731
    roles = choice("Project role", "Role in the project (decides whose inbox a task goes to).", ROLES)

    return [
        Form("crm_project_start", "Start a CRM implementation project",
             "What the project is called and how many build iterations it runs.",
             {"project_name": text("Project name", "Shown on every task of the project.", max_length=120),
              "iterations": integer("Build iterations", "How many build iterations the Iterative Build phase "
                                    "runs (build, test, review, train, feedback).", 1, 20, 3),
              "target_go_live": date("Target go-live", "The go-live date the Sponsor expects.")},
             ["project_name"]),
        # ---------------------------------------------------------------- Kickoff
        Form("crm_project_goals", "Define measurable project goals",
             "Each goal names a metric, its baseline and its target, e.g. \"sales lead conversion +20 %\".",
             {"goals": items("Project goals", "Measurable goals the project is judged against at closure.",
                             {"goal": text("Goal", "e.g. Sales lead conversion +20 %"),
                              "metric": text("Metric", "How it is measured, e.g. won leads / all leads."),
                              "baseline": text("Baseline", "Today's value.", min_length=0),
                              "target": text("Target", "The value to reach."),
                              "due_date": date("Measured by", "When the target is measured.")},
                             ["goal", "metric", "target"])},
             ["goals"]),
        Form("crm_team_assignment", "Assign team and roles", "The project team and each member's role.",
             {"team": items("Team members", "Everyone working on the project.",
                            {"name": text("Name", "Person's name."),
                             "role": roles,
                             "department": choice("Department", "Home department.", DEPARTMENTS),
                             "allocation_percent": percent("Allocation (%)", "Share of working time for the project.")},
                            ["name", "role"])},
             ["team"]),
        Form("crm_project_plan", "Plan milestones and dates", "The project plan: a milestone with a date per phase.",
             {"start_date": date("Project start", "First day of the project."),
              "go_live_date": date("Planned go-live", "Date the new CRM goes live."),
              "budget": number("Budget (EUR)", "Total approved budget requested."),
              "iterations": ITERATIONS,
              "milestones": items("Milestones", "One milestone per phase, in order.",
                                  {"phase": choice("Phase", "The phase the milestone ends.", PHASES),
                                   "name": text("Milestone", "e.g. Requirements signed off."),
                                   "due_date": date("Due date", "Planned date.")},
                                  ["phase", "name", "due_date"], min_items=len(PHASES))},
             ["start_date", "go_live_date", "milestones"]),
        Form("crm_charter_approval", "Approve project charter",
             "Approve the charter (goals, team, plan, budget), possibly with conditions, send it back with a "
             "comment, or stop the project.", {}, gate=True),
        Form("crm_charter_revision", "Revise charter and plan",
             "Rework the charter and plan; the Sponsor decides again.",
             {"changes": text("Changes made", "What was changed in answer to the Sponsor's comment.", long=True),
              "budget": number("Revised budget (EUR)", "The budget requested now, if it changed.")},
             ["changes"]),
        # ---------------------------------------------------------------- Requirements
        Form("crm_stakeholder_interviews", "Interview stakeholders per department",
             "One entry per department interviewed.",
             {"interviews": items("Interviews", "At least one interview per affected department.",
                                  {"department": choice("Department", "Department interviewed.", DEPARTMENTS),
                                   "interviewees": text("Interviewees", "Names and functions."),
                                   "date": date("Date", "Date of the interview."),
                                   "needs": text("Needs", "What the department needs from the CRM.", long=True),
                                   "pain_points": text("Pain points", "What does not work today.", min_length=0,
                                                       long=True)},
                                  ["department", "interviewees", "needs"])},
             ["interviews"]),
        Form("crm_requirement_list", "Compile and classify requirements",
             "The requirement list, each requirement classified must / should / later.",
             {"requirements": items("Requirements", "All requirements gathered in the interviews.",
                                    requirement, ["id", "title", "department", "priority"])},
             ["requirements"]),
        Form("crm_department_review", "Review requirements with departments",
             "Review the requirement list with the departments; the round number is shown.",
             {"requirements_round": ROUND,
              "department_feedback": items("Feedback per department", "One entry per department that reviewed.",
                                           {"department": choice("Department", "Reviewing department.", DEPARTMENTS),
                                            "agrees": boolean("Agrees with the list", "The department accepts the "
                                                              "list as it is."),
                                            "change_requests": text("Requested changes", "What should change.",
                                                                    min_length=0, long=True)},
                                           ["department", "agrees"]),
              "open_issues": integer("Open issues", "Issues still unresolved after this round.", 0)},
             ["department_feedback", "open_issues"]),
        Form("crm_requirements_signoff", "Sign off requirements",
             "Sign off the requirement list, or reject it for another review round (the comment says why).",
             {"requirements_round": ROUND}, gate=True),
        Form("crm_requirements_revision", "Revise requirement list",
             "Update the requirement list as the Sponsor asked; another review round follows.",
             {"requirements": items("Requirements", "The revised requirement list.", requirement,
                                    ["id", "title", "department", "priority"]),
              "changes": text("Changes made", "What changed since the last round.", long=True)},
             ["requirements", "changes"]),
        # ---------------------------------------------------------------- System selection
        Form("crm_candidate_longlist", "Identify candidate systems", "The CRM products to be evaluated.",
             {"candidates": items("Candidates", "Products to evaluate (at least two).",
                                  {"vendor": text("Vendor", "Company."),
                                   "product": text("Product", "Product and edition."),
                                   "deployment": choice("Deployment", "How it is operated.",
                                                        ["saas", "on_premises", "hybrid"],
                                                        ["SaaS", "On premises", "Hybrid"])},
                                  ["vendor", "product", "deployment"], min_items=2)},
             ["candidates"]),
        Form("crm_eval_function_fit", "Evaluate function fit",
             "How well each candidate covers the requirement list.",
             {"function_fit": candidate_scores("function fit"),
              "must_coverage_percent": percent("Must coverage of the best candidate (%)",
                                               "Share of must requirements the best candidate covers out of the box.")},
             ["function_fit"]),
        Form("crm_eval_architecture", "Evaluate architecture and performance",
             "Architecture, scalability, security model and measured performance per candidate.",
             {"architecture": candidate_scores("architecture and performance")},
             ["architecture"]),
        Form("crm_eval_integration", "Evaluate integration with existing systems",
             "How each candidate connects to ERP, e-mail/groupware, telephony and the data warehouse.",
             {"integration": candidate_scores("integration with existing systems"),
              "systems_checked": items("Systems checked", "Existing systems and how they would connect.",
                                       {"system": text("System", "e.g. ERP, e-mail, telephony, data warehouse."),
                                        "approach": choice("Integration approach", "How data would flow.",
                                                           ["api", "middleware", "file", "manual"],
                                                           ["API", "Middleware", "File transfer", "Manual"])},
                                       ["system", "approach"], min_items=0)},
             ["integration"]),
        Form("crm_eval_vendor_strength", "Evaluate vendor strength",
             "Financial stability, references, support and roadmap of each vendor.",
             {"vendor_strength": candidate_scores("vendor strength")},
             ["vendor_strength"]),
        Form("crm_eval_total_cost", "Evaluate total cost of ownership",
             "Cost over five years per candidate.",
             {"total_cost": items("Cost per candidate", "Five-year cost estimate per candidate (EUR).",
                                  {"candidate": text("Candidate", "Product as named in the candidate list."),
                                   "licences": number("Licences / subscriptions", "Five-year total."),
                                   "implementation": number("Implementation", "Project cost incl. partner."),
                                   "operations": number("Operations", "Five-year running cost."),
                                   "score": score("Score", "Total cost: 1 = most expensive, 5 = cheapest.")},
                                  ["candidate", "licences", "implementation", "operations", "score"])},
             ["total_cost"]),
        Form("crm_trial_results", "Run trial with key users",
             "Results of trying the leading candidate(s) on real business scenarios.",
             {"trials": items("Trials", "One entry per candidate tried.",
                              {"candidate": text("Candidate", "Product tried."),
                               "scenarios": text("Scenarios", "Business scenarios played through.", long=True),
                               "usability": score("Usability", "1 = poor, 5 = excellent."),
                               "findings": text("Findings", "What worked and what did not.", min_length=0,
                                                long=True),
                               "recommended": boolean("Recommended", "The key users would work with it.")},
                              ["candidate", "scenarios", "usability", "recommended"])},
             ["trials"]),
        Form("crm_selection_recommendation", "Prepare selection recommendation",
             "The recommended system and why, from all evaluations and the trial.",
             {"recommended_candidate": text("Recommended system", "Product as named in the candidate list."),
              "rationale": text("Rationale", "Why this system, across function fit, architecture, vendor, cost and "
                                             "integration.", long=True),
              "five_year_cost": number("Five-year cost (EUR)", "Total cost of ownership of the recommendation.")},
             ["recommended_candidate", "rationale"]),
        Form("crm_selection_approval", "Approve system selection",
             "Approve the recommended system or send the evaluation back.", {}, gate=True),
        Form("crm_shortlist_revision", "Revise candidate shortlist",
             "Change candidates or criteria as the Sponsor asked; the evaluation runs again.",
             {"changes": text("Changes made", "Candidates added or removed, criteria changed.", long=True)},
             ["changes"]),
        # ---------------------------------------------------------------- Design
        Form("crm_design_business_processes", "Design business processes",
             "The future business processes the CRM supports.",
             {"processes": items("Business processes", "e.g. lead to opportunity, quote to order, complaint handling.",
                                 {"name": text("Process", "Name of the process."),
                                  "department": choice("Owning department", "Who owns the process.", DEPARTMENTS),
                                  "description": text("Future process", "How it will work with the CRM.",
                                                      long=True),
                                  "changes": text("Changes from today", "What changes for the users.",
                                                  min_length=0, long=True)},
                                 ["name", "department", "description"])},
             ["processes"]),
        Form("crm_design_data_model", "Design data model", "Entities of the CRM data model.",
             {"entities": items("Entities", "e.g. Account, Contact, Lead, Opportunity, Case.",
                                {"entity": text("Entity", "Name."),
                                 "key_attributes": text("Key attributes", "The attributes that matter."),
                                 "source_system": text("Source system", "Where existing data comes from.",
                                                       min_length=0),
                                 "owner": choice("Data owner", "Department responsible for quality.", DEPARTMENTS)},
                                ["entity", "key_attributes", "owner"])},
             ["entities"]),
        Form("crm_design_integrations", "Design integrations", "Every interface between the CRM and other systems.",
             {"interfaces": items("Interfaces", "One entry per interface.",
                                  {"system": text("System", "e.g. ERP, e-mail, telephony, data warehouse."),
                                   "direction": choice("Direction", "Direction of the data flow.",
                                                       ["inbound", "outbound", "bidirectional"],
                                                       ["Into the CRM", "Out of the CRM", "Both ways"]),
                                   "mechanism": choice("Mechanism", "Technical means.",
                                                       ["api", "middleware", "file", "database"],
                                                       ["REST/SOAP API", "Middleware", "File transfer",
                                                        "Database link"]),
                                   "frequency": choice("Frequency", "How often data moves.",
                                                       ["real_time", "hourly", "daily", "on_demand"],
                                                       ["Real time", "Hourly", "Daily", "On demand"]),
                                   "data": text("Data exchanged", "Entities and fields.")},
                                  ["system", "direction", "mechanism", "frequency", "data"])},
             ["interfaces"]),
        Form("crm_design_review_business", "Business design review",
             "Review of the solution design from the business side (your department).",
             {"business_reviewer_department": choice("Department", "The department you review for.", DEPARTMENTS),
              "business_findings": text("Findings", "Gaps and problems found.", min_length=0, long=True),
              "business_recommendation": choice("Recommendation", "Your advice to the review decision.",
                                                ["approve", "rework"], ["Approve", "Rework needed"])},
             ["business_reviewer_department", "business_recommendation"]),
        Form("crm_design_review_technical", "Technical design review",
             "Review of the solution design from the technical side: architecture, data, integration, security.",
             {"technical_findings": text("Findings", "Gaps and problems found.", min_length=0, long=True),
              "technical_recommendation": choice("Recommendation", "Your advice to the review decision.",
                                                 ["approve", "rework"], ["Approve", "Rework needed"])},
             ["technical_recommendation"]),
        Form("crm_design_review_decision", "Decide cross-department design review",
             "Accept the design in the light of the business and technical reviews, or send it back.", {},
             gate=True, decision_names=("Accept design", "Send back for rework")),
        Form("crm_design_rework", "Rework solution design", "Rework the design as the review asked.",
             {"changes": text("Changes made", "What changed in processes, data model or integrations.", long=True)},
             ["changes"]),
        # ---------------------------------------------------------------- Iterative build
        Form("crm_build_increment", "Build iteration increment",
             "Configure and develop this iteration's input requirements.",
             {"iteration": ITERATION, "iterations": ITERATIONS,
              "implemented": items("Implemented requirements", "What this increment delivers.",
                                   {"title": text("Requirement", "As in the input list."),
                                    "status": choice("Status", "How far it got.", ["done", "partial", "not_started"],
                                                     ["Done", "Partly done", "Not started"])},
                                   ["title", "status"], min_items=0),
              "build_version": text("Build / release", "Version or release label of the increment."),
              "notes": text("Notes", "Anything testers should know.", min_length=0, long=True)},
             ["build_version"]),
        Form("crm_test_functional", "Functional testing", "Result of the functional tests of this iteration.",
             test_result("functional", "functional"), test_required("functional")),
        Form("crm_test_performance", "Performance testing", "Result of the performance tests of this iteration.",
             {**test_result("performance", "performance"),
              "performance_p95_ms": integer("95th percentile response time (ms)", "Measured under target load.", 0),
              "performance_concurrent_users": integer("Concurrent users", "Load the test simulated.", 0)},
             test_required("performance")),
        Form("crm_test_security", "Security testing", "Result of the security tests of this iteration.",
             {**test_result("security", "security"),
              "security_critical_findings": integer("Critical findings", "Critical vulnerabilities found.", 0)},
             test_required("security")),
        Form("crm_quality_review", "Quality review of the iteration",
             "Approve the increment after functional, performance and security testing, or send it back to fix "
             "the blockers.", {"iteration": ITERATION}, gate=True),
        Form("crm_defect_fixes", "Fix blocking defects", "The blockers fixed; the increment is tested again.",
             {"iteration": ITERATION,
              "fixed_defects": items("Fixed defects", "Defects fixed for the re-test.",
                                     {"defect": text("Defect", "ID or title."),
                                      "fix": text("Fix", "What was done.", min_length=0)},
                                     ["defect"])},
             ["fixed_defects"]),
        Form("crm_iteration_training", "Train users on the increment", "Training given at the end of the iteration.",
             {"iteration": ITERATION,
              "sessions": integer("Sessions", "Training sessions held.", 0),
              "participants": integer("Participants", "People trained.", 0),
              "topics": text("Topics", "What was trained.", long=True)},
             ["sessions", "participants", "topics"]),
        Form("crm_iteration_feedback", "Collect user feedback",
             "The users' feedback on this iteration; must/should items become the next iteration's input "
             "requirements, later items go to the improvement backlog.",
             {"iteration": ITERATION,
              "satisfaction": score("Satisfaction", "Overall user satisfaction, 1 = poor, 5 = excellent."),
              "feedback_items": items("Feedback", "One entry per piece of feedback.",
                                      {"title": text("Feedback", "What the users asked for or reported."),
                                       "department": choice("Department", "Where it came from.", DEPARTMENTS),
                                       "priority": priority()},
                                      ["title", "priority"], min_items=0)},
             ["satisfaction", "feedback_items"]),
        # ---------------------------------------------------------------- Deployment
        Form("crm_environment_preparation", "Prepare production environment",
             "Readiness of the environments for migration and go-live.",
             {"environments": items("Environments", "Each environment and whether it is ready.",
                                    {"environment": choice("Environment", "Which one.",
                                                           ["test", "staging", "production"],
                                                           ["Test", "Staging", "Production"]),
                                     "ready": boolean("Ready", "Installed, configured and verified.")},
                                    ["environment", "ready"]),
              "backup_verified": boolean("Backup and restore verified", "A restore was tested."),
              "monitoring_ready": boolean("Monitoring ready", "Alerts and dashboards are in place.")},
             ["environments", "backup_verified"]),
        Form("crm_data_cleaning", "Clean legacy data", "Result of cleaning the legacy customer data.",
             {"source_systems": text("Source systems", "Systems the data came from."),
              "records_total": integer("Records checked", "Records in scope.", 0),
              "duplicates_removed": integer("Duplicates removed", "Merged or deleted duplicates.", 0),
              "records_rejected": integer("Records rejected", "Records not to be migrated.", 0),
              "quality_score": percent("Data quality (%)", "Share of records passing the quality rules.")},
             ["source_systems", "records_total", "quality_score"]),
        Form("crm_migration_rehearsal", "Migration rehearsal",
             "Result of this migration rehearsal on a copy of production; a failed rehearsal is repeated.",
             {"rehearsal": REHEARSAL,
              "rehearsal_result": choice("Result", "pass: migrated completely and reconciled; fail: repeat.",
                                         ["pass", "fail"], ["Passed", "Failed"]),
              "records_migrated": integer("Records migrated", "Records loaded into the CRM.", 0),
              "errors": integer("Errors", "Records that failed to load.", 0),
              "duration_hours": number("Duration (hours)", "Wall-clock time of the run."),
              "issues": text("Issues", "What went wrong and what will change.", min_length=0, long=True)},
             ["rehearsal_result"]),
        Form("crm_go_no_go", "Go/no-go decision",
             "Decide whether the production migration and go-live may start (approve = go, reject = no-go, hold "
             "or stop the project). The decision is signed.",
             {"rehearsal": REHEARSAL},
             gate=True, decision_names=("Go", "No-go")),
        Form("crm_go_live_blockers", "Resolve go-live blockers", "What was done about the no-go reasons.",
             {"actions": text("Actions taken", "How each blocker was resolved.", long=True)},
             ["actions"]),
        Form("crm_production_migration", "Migrate production data",
             "Result of the production migration; a failure leads to a rollback.",
             {"migration_result": choice("Result", "success: data migrated and reconciled; failed: roll back.",
                                         ["success", "failed"], ["Succeeded", "Failed"]),
              "records_migrated": integer("Records migrated", "Records loaded into the CRM.", 0),
              "reconciliation_ok": boolean("Reconciliation passed", "Counts and totals match the legacy systems."),
              "issues": text("Issues", "Problems seen.", min_length=0, long=True)},
             ["migration_result"]),
        Form("crm_rollback", "Roll back production migration", "Restore the legacy state after a failed migration.",
             {"rollback_completed": boolean("Legacy systems restored", "Users can work in the legacy systems."),
              "cause": text("Cause", "Why the migration failed.", long=True)},
             ["rollback_completed", "cause"]),
        # ---------------------------------------------------------------- Training and go-live
        Form("crm_training_plans", "Create role-based training plans", "One training plan per user role.",
             {"plans": items("Training plans", "Per user role.",
                             {"user_role": text("User role", "e.g. sales rep, sales manager, service agent."),
                              "modules": text("Modules", "Training content.", long=True),
                              "duration_hours": number("Duration (hours)", "Per participant."),
                              "format": choice("Format", "How it is delivered.",
                                               ["classroom", "e_learning", "on_the_job"],
                                               ["Classroom", "E-learning", "On the job"])},
                             ["user_role", "modules", "format"])},
             ["plans"]),
        Form("crm_super_user_group", "Form super-user group", "Super users who support colleagues at go-live.",
             {"super_users": items("Super users", "At least one per department.",
                                   {"name": text("Name", "Person's name."),
                                    "department": choice("Department", "Department supported.", DEPARTMENTS)},
                                   ["name", "department"])},
             ["super_users"]),
        Form("crm_end_user_training", "Train end users", "Training delivered before go-live.",
             {"sessions": integer("Sessions", "Sessions held.", 0),
              "participants": integer("Participants", "People trained.", 0),
              "completion_rate": percent("Completion (%)", "Share of planned users trained.")},
             ["sessions", "participants", "completion_rate"]),
        Form("crm_onsite_support", "Provide on-site go-live support", "Support given on site after go-live.",
             {"support_days": integer("Support days", "Days on site.", 0),
              "tickets_opened": integer("Tickets opened", "Support requests raised.", 0),
              "tickets_resolved": integer("Tickets resolved", "Support requests closed.", 0),
              "critical_incidents": integer("Critical incidents", "Incidents stopping work.", 0)},
             ["support_days", "tickets_opened", "tickets_resolved", "critical_incidents"]),
        Form("crm_super_user_support", "Super-user floor support", "Support given by the super users.",
             {"questions_answered": integer("Questions answered", "Colleagues helped.", 0),
              "recurring_problems": text("Recurring problems", "Problems seen more than once.", min_length=0,
                                         long=True)},
             ["questions_answered"]),
        Form("crm_golive_feedback", "Collect go-live feedback", "User feedback on training and the first weeks.",
             {"respondents": integer("Respondents", "Users who answered.", 0),
              "satisfaction": score("Satisfaction", "1 = poor, 5 = excellent."),
              "training_rating": score("Training rating", "1 = poor, 5 = excellent."),
              "top_issues": text("Top issues", "What users struggle with most.", min_length=0, long=True)},
             ["respondents", "satisfaction"]),
        Form("crm_golive_signoff", "Sign off go-live support",
             "Confirm stable operation and end go-live support (approve), or extend support (reject).", {},
             gate=True, decision_names=("Stable: end support", "Extend support")),
        Form("crm_support_extension", "Extend go-live support", "The extended support the Sponsor asked for.",
             {"extension_days": integer("Extra days", "Additional support days.", 1),
              "focus": text("Focus", "Areas or departments to support.", long=True)},
             ["extension_days", "focus"]),
        # ---------------------------------------------------------------- Closure
        Form("crm_goal_review", "Review results against kickoff goals",
             "For every kickoff goal, the value reached; the risk register and change log are shown with the task.",
             {"goal_results": items("Goal results", "One entry per kickoff goal.",
                                    {"goal": text("Goal", "As defined at kickoff."),
                                     "target": text("Target", "As defined at kickoff."),
                                     "achieved": text("Achieved", "The measured value."),
                                     "met": boolean("Met", "The target was reached.")},
                                    ["goal", "achieved", "met"]),
              "summary": text("Summary", "Overall assessment.", long=True)},
             ["goal_results", "summary"]),
        Form("crm_document_archive", "Archive project documents", "Where the project documents are archived.",
             {"archive_location": text("Archive location", "Path or link of the archive."),
              "documents": items("Documents", "Archived documents.",
                                 {"document": choice("Document", "Type.",
                                                     ["charter", "requirements", "selection", "design", "test_reports",
                                                      "training_material", "migration", "other"],
                                                     ["Charter", "Requirement list", "Selection report",
                                                      "Solution design", "Test reports", "Training material",
                                                      "Migration records", "Other"]),
                                  "location": text("Location", "Path or link.", min_length=0)},
                                 ["document"]),
              "retention_years": integer("Retention (years)", "How long the archive is kept.", 1, 30, 10)},
             ["archive_location", "documents"]),
        Form("crm_lessons_learned", "Capture lessons learned",
             "Lessons from the whole project; they are added to the knowledge base.",
             {"lessons": items("Lessons learned", "One entry per lesson.",
                               {"category": choice("Category", "Area of the lesson.",
                                                   ["planning", "requirements", "vendor", "technical", "testing",
                                                    "migration", "training", "change_management"],
                                                   ["Planning", "Requirements", "Vendor", "Technical", "Testing",
                                                    "Migration", "Training", "Change management"]),
                                "lesson": text("Lesson", "What happened and what we learned.", long=True),
                                "recommendation": text("Recommendation", "What to do next time.", long=True)},
                               ["category", "lesson", "recommendation"])},
             ["lessons"]),
        Form("crm_improvement_backlog", "Create improvement backlog",
             "Improvements for after the project, including deferred user feedback.",
             {"backlog": items("Improvement backlog", "One entry per improvement.",
                               {"title": text("Improvement", "What should be improved."),
                                "priority": priority("must: next release; should: soon; later: when possible."),
                                "owner": choice("Owner role", "Who drives it.", ROLES)},
                               ["title", "priority"], min_items=0)},
             ["backlog"]),
        Form("crm_final_acceptance", "Final acceptance",
             "Accept the project result and close the project (conditions become action items), or reject "
             "naming what is missing. The decision is signed.", {},
             gate=True, decision_names=("Accept", "Reject")),
        Form("crm_acceptance_issues", "Resolve acceptance issues", "What was done about the acceptance issues.",
             {"actions": text("Actions taken", "How each issue was resolved.", long=True)},
             ["actions"]),
        # ---------------------------------------------------------------- Cross-cutting
        Form("crm_phase_overrun", "Handle phase overrun",
             "The phase passed its milestone date: record the cause, the new forecast and the recovery.",
             {"acknowledged": {"type": "boolean", "const": True, "title": "Overrun acknowledged",
                               "description": "I have seen the overrun and take action."},
              "cause": text("Cause", "Why the phase is late.", long=True),
              "new_forecast": date("New forecast", "Expected end of the phase."),
              "recovery": text("Recovery measures", "What is done to catch up.", min_length=0, long=True),
              "inform_sponsor": boolean("Inform the Sponsor", "The delay affects the go-live date.", False)},
             ["acknowledged", "cause", "new_forecast"]),
        Form("crm_risk_assessment", "Assess risk",
             "Assess the risk's probability and impact and choose a response: avoid, reduce, transfer or accept.",
             {"risk_report": report("Reported risk", "raise_risk"),
              "risk_title": text("Risk", "Short name of the risk."),
              "risk_description": text("Description", "Cause, event and effect.", long=True),
              "risk_category": choice("Category", "Area the risk belongs to.",
                                      ["scope", "schedule", "budget", "technical", "vendor", "data", "adoption",
                                       "compliance"],
                                      ["Scope", "Schedule", "Budget", "Technical", "Vendor", "Data", "User adoption",
                                       "Compliance"]),
              "probability": choice("Probability", "How likely it is to happen.", LEVELS, LEVEL_NAMES),
              "impact": choice("Impact", "How bad it would be.", LEVELS, LEVEL_NAMES),
              "response": choice("Response", "avoid: remove the cause; reduce: lower probability or impact; "
                                             "transfer: shift to a third party (vendor, insurance); accept: live "
                                             "with it.", ["avoid", "reduce", "transfer", "accept"],
                                 ["Avoid", "Reduce", "Transfer", "Accept"]),
              "response_plan": text("Response plan", "The actions of the chosen response.", long=True),
              "risk_owner": choice("Owner", "Role responsible for the response.", ROLES),
              "review_date": date("Review date", "When the risk is looked at again.")},
             ["risk_title", "risk_description", "risk_category", "probability", "impact", "response",
              "response_plan", "risk_owner"]),
        Form("crm_change_assessment", "Assess change request",
             "Impact of the requested change and whether the Sponsor must approve it.",
             {"change_report": report("Requested change", "change_request"),
              "change_title": text("Change", "Short name of the change."),
              "change_description": text("Description", "What should change and why.", long=True),
              "requested_by": text("Requested by", "Person or department."),
              "affected_phases": {"type": "array", "title": "Affected phases", "description": "Phases the change "
                                  "touches.", "items": {"type": "string", "enum": PHASES}, "uniqueItems": True},
              "schedule_impact_days": integer("Schedule impact (days)", "Delay caused; 0 if none.", 0),
              "cost_impact": number("Cost impact (EUR)", "Additional cost; 0 if none."),
              "recommendation": choice("Recommendation", "The Project Manager's advice.",
                                       ["accept", "defer", "reject"], ["Accept", "Defer", "Reject"]),
              "needs_sponsor_approval": boolean("Needs Sponsor approval",
                                                "Changes to scope, budget or go-live date need the Sponsor.")},
             ["change_title", "change_description", "requested_by", "recommendation", "needs_sponsor_approval"]),
        Form("crm_change_approval", "Approve change request",
             "Approve the change request (possibly with conditions), defer it (hold) or reject it (recycle).", {},
             gate=True),
    ]


# --------------------------------------------------------------------------- main

def generate() -> dict[Path, str]:
    process = build_model()
    layout = Layout(process)
    layout.place()
    layout.route()
    layout.place_labels()
    layout.check()
    if layout.problems:
        raise SystemExit("layout problems:\n  " + "\n  ".join(layout.problems))
    outputs = {BPMN_PATH: write_xml(process, layout)}
    forms = build_forms()
    names = {f.name for f in forms}
    used = {n.form for n in layout.all_nodes.values() if n.form}
    if used - names:
        raise SystemExit(f"forms missing: {sorted(used - names)}")
    if names - used:
        raise SystemExit(f"forms not used by the model: {sorted(names - used)}")
    for form in forms:
        schema, ui_schema = form.documents()
        outputs[FORMS_DIR / f"{form.name}.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        outputs[FORMS_DIR / f"{form.name}.uischema.json"] = json.dumps(ui_schema, indent=2, ensure_ascii=False) + "\n"
    return outputs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the files on disk are not up to date")
    args = parser.parse_args(argv)
    outputs = generate()
    if args.check:
        stale = [str(p.relative_to(ROOT)) for p, text in outputs.items()
                 if not p.exists() or p.read_text(encoding="utf-8") != text]
        if stale:
            print("out of date (run processes/tools/generate_crm.py):\n  " + "\n  ".join(stale), file=sys.stderr)
            return 1
        return 0
    for path, content in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    print(f"wrote {BPMN_PATH.relative_to(ROOT)} and {len(outputs) - 1} form files")
    return 0


if __name__ == "__main__":
    sys.exit(main())

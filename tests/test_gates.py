"""Phase gates end to end through the service layer, on SQLite and PostgreSQL (`db_url`).

The model is a copy of tests/models/gated.bpmn (engineer `prepare`s, a script scores, the gate
`review_gate` on task `review`, an exclusive gateway on gate_outcome) extended with the flows
the original leaves out:

    go             -> end `done`
    recycle        -> back to `prepare` (a new round)
    kill           -> `archive` (qa_lead) -> end `killed`
    hold           -> `resume` (engineer) -> end `resumed`
    conditional-go -> a second gate `release_gate` on task `release` (phase Release)
                      -> go: end `released`, kill: end `release_stopped`

Each test writes the gates file it needs (`deploy(review={...}, release={...})`): settings not
given take BASE_REVIEW (one reviewer's vote decides, every outcome wired, no criteria, no
signature).
The engine clock is frozen for every test (`frozen`) and only moves when a test advances it.
"""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from engine.bootstrap import Phasegate
from engine.domain.errors import Conflict, Forbidden, InvalidInput, ModelRejected, NotFound
from engine.services import definitions, gates, instances, tasks, users
from tests.clock_support import frozen_at

MODELS = Path(__file__).parent / "models"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)

PEOPLE = {
    "admin": ["admin"],
    "eve": ["engineer"],  # prepares the work (the usual submitter)
    "ed": ["engineer"],
    "rita": ["reviewer"],
    "rob": ["reviewer"],
    "ray": ["reviewer"],
    "dana": ["qa_lead"],
    "quinn": ["qa_lead"],
    "max": ["manager"],  # escalation role
    "olga": [],  # no role at all: only ever a delegate
}
REVIEWERS = ["ray", "rita", "rob"]


def password(user: str) -> str:
    return f"pw-{user}-secret"


# The gateway after `review` routes the outcomes the original model leaves out.
EXTRA_OUTGOING = "<bpmn:outgoing>to_hold</bpmn:outgoing><bpmn:outgoing>to_next</bpmn:outgoing>"
EXTRA_ELEMENTS = """
    <bpmn:userTask id="resume" name="Resume the held work" camunda:candidateGroups="engineer">
      <bpmn:incoming>to_hold</bpmn:incoming><bpmn:outgoing>f_resumed</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="resumed" name="Resumed"><bpmn:incoming>f_resumed</bpmn:incoming></bpmn:endEvent>
    <bpmn:userTask id="release" name="Release the work" camunda:candidateGroups="qa_lead">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="phase" value="Release"/>
        <camunda:property name="gate" value="release_gate"/>
      </camunda:properties></bpmn:extensionElements>
      <bpmn:incoming>to_next</bpmn:incoming><bpmn:outgoing>f_released</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="release_decided" name="Released?">
      <bpmn:incoming>f_released</bpmn:incoming>
      <bpmn:outgoing>release_go</bpmn:outgoing><bpmn:outgoing>release_kill</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="released" name="Released"><bpmn:incoming>release_go</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="release_stopped" name="Not released"><bpmn:incoming>release_kill</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="to_hold" name="hold" sourceRef="review_decided" targetRef="resume">
      <bpmn:conditionExpression>gate_outcome == "hold"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_next" name="conditional go" sourceRef="review_decided" targetRef="release">
      <bpmn:conditionExpression>gate_outcome == "conditional-go"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_resumed" sourceRef="resume" targetRef="resumed"/>
    <bpmn:sequenceFlow id="f_released" sourceRef="release" targetRef="release_decided"/>
    <bpmn:sequenceFlow id="release_go" sourceRef="release_decided" targetRef="released">
      <bpmn:conditionExpression>gate_outcome == "go"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="release_kill" sourceRef="release_decided" targetRef="release_stopped">
      <bpmn:conditionExpression>gate_outcome == "kill"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
  </bpmn:process>"""


def extended_bpmn(process_id: str = "gated") -> str:
    text = (MODELS / "gated.bpmn").read_text()
    gateway_out = "<bpmn:outgoing>to_kill</bpmn:outgoing>\n    </bpmn:exclusiveGateway>"
    assert gateway_out in text and text.count("</bpmn:process>") == 1, "tests/models/gated.bpmn changed shape"
    text = text.replace(gateway_out, "<bpmn:outgoing>to_kill</bpmn:outgoing>" + EXTRA_OUTGOING
                        + "\n    </bpmn:exclusiveGateway>")
    text = text.replace("</bpmn:process>", EXTRA_ELEMENTS)
    if process_id != "gated":
        text = text.replace('<bpmn:process id="gated"', f'<bpmn:process id="{process_id}"')
    return text


BASE_REVIEW = {
    "title": "Quality review",
    "approvers": [{"role": "reviewer"}],
    "rule": {"kind": "all"},  # the one reviewer's vote decides, whichever way
    "outcomes": {"go": "to_done", "conditional-go": "to_next", "hold": "to_hold", "recycle": "to_rework",
                 "kill": "to_kill"},
}
BASE_RELEASE = {
    "title": "Release",
    "approvers": [{"role": "qa_lead"}],
    "outcomes": {"go": "release_go", "kill": "release_kill"},
}
QUALITY_CRITERIA = {
    "checklist": [{"id": "tests_run", "text": "The full regression suite ran on the reviewed build."},
                  {"id": "notes_written", "text": "Release notes are written."}],
    "expressions": [
        {"id": "quality_bar", "expression": "quality.pass_rate >= 0.95 and quality.open_blockers == 0",
         "description": "At least 95% of the tests pass and no blocker is open."},
        {"id": "scored", "expression": "score >= 95"},
    ],
}


def gates_document(review: dict | None = None, release: dict | None = None, process: str = "gated") -> dict:
    """A gates file: BASE_REVIEW with `review`'s keys replacing its own (and a release gate if given)."""
    document = {"process": process, "gates": {"review_gate": {**BASE_REVIEW, **(review or {})}}}
    if release is not None:
        document["gates"]["release_gate"] = {**BASE_RELEASE, **release}
    return document


def write_gates(folder: Path, review: dict | None = None, release: dict | None = None,
                process: str = "gated") -> Path:
    path = folder / f"{process}.gates.yaml"
    path.write_text(yaml.safe_dump(gates_document(review, release, process), sort_keys=False))
    return path


def work(summary: str = "first cut", pass_rate: float = 0.99, blockers: int = 0, checklist=None) -> dict:
    """What `prepare` submits: its form (summary, quality) plus the checklist confirmations."""
    return {"summary": summary, "quality": {"pass_rate": pass_rate, "open_blockers": blockers},
            "checklist": {"tests_run": True, "notes_written": True} if checklist is None else checklist}


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def frozen():
    yield from frozen_at(T0)


@pytest.fixture
def app(db_url):
    application = Phasegate(db_url)
    for name, roles in PEOPLE.items():
        users.add_user(application, name, roles, password=password(name))
    yield application
    application.dispose()


@pytest.fixture
def package(tmp_path) -> Path:
    folder = tmp_path / "package"
    (folder / "forms").mkdir(parents=True)
    (folder / "gated.bpmn").write_text(extended_bpmn())
    for form in (MODELS / "forms").glob("gated_*.json"):
        shutil.copy(form, folder / "forms" / form.name)
    return folder


@pytest.fixture
def deploy(app, package):
    """deploy(review=..., release=..., **deploy options): write the gates file, deploy the package."""

    def run(review: dict | None = None, release: dict | None = None, **options) -> dict:
        write_gates(package, review, release)
        [entry] = definitions.deploy(app, package, "admin", **options)
        return entry

    return run


# ------------------------------------------------------------------------------------ helpers


def start(app, *, user: str = "eve", gate_overrides: dict | None = None) -> int:
    return instances.start(app, "gated", user=user, gate_overrides=gate_overrides).id


def ready(app, instance_id: int) -> list:
    return tasks.list_tasks(app, instance_id=instance_id)


def prepare_task(app, instance_id: int):
    [task] = [t for t in ready(app, instance_id) if t.element_id == "prepare"]
    return task


def submit(app, instance_id: int, data: dict | None = None, user: str = "eve"):
    return tasks.complete(app, prepare_task(app, instance_id).id, user, work() if data is None else data)


def opened(app, *, user: str = "eve", data: dict | None = None, gate_overrides: dict | None = None) -> int:
    """A new instance whose review gate is open (the work submitted by `user`)."""
    instance_id = start(app, user=user, gate_overrides=gate_overrides)
    submit(app, instance_id, data, user)
    return instance_id


def approvals(app, instance_id: int, element_id: str = "review") -> dict[str, object]:
    """The ready approval tasks of the instance's gate at `element_id`, by the role they are routed to."""
    found = {}
    for task in ready(app, instance_id):
        if task.kind == "approval" and task.element_id == element_id:
            assert task.role not in found, "two ready approval tasks with one role"
            found[task.role] = task
    return found


def approval(app, instance_id: int, role: str = "reviewer", element_id: str = "review"):
    return approvals(app, instance_id, element_id)[role]


def decide(app, task, user: str, outcome: str, **options) -> dict:
    if outcome in ("hold", "recycle", "kill", "reject") and "comment" not in options:
        options["comment"] = f"{user} says {outcome}"
    return gates.decide(app, task.id, user, outcome, **options)


def rounds(app, instance_id: int, gate: str = "review_gate") -> list[dict]:
    return [g for g in gates.gates_view(app, instance_id) if g["gate"] == gate]


def current(app, instance_id: int, gate: str = "review_gate") -> dict:
    return rounds(app, instance_id, gate)[-1]


def events(app, instance_id: int, event_type: str | None = None) -> list:
    found = instances.history(app, instance_id)
    return [e for e in found if event_type is None or e.type == event_type]


def footprint(app, instance_id: int) -> tuple:
    """Everything a refused command must leave as it was."""
    with app.uow() as uow:
        row = uow.instances.get_row(instance_id)
        gate_rows = uow.gates.for_instance(instance_id)
        decisions = uow.gates.decisions_for_gates([g.id for g in gate_rows])
        task_rows = uow.tasks.query(instance_id=instance_id, states=("ready", "completed", "withdrawn", "cancelled"))
        items = uow.gates.action_items(instance_id)
    return (row.revision, row.event_seq, row.state, len(gate_rows), sum(len(d) for d in decisions.values()),
            sorted((t.id, t.state, t.role) for t in task_rows), [(i.id, i.state) for i in items],
            [(g.id, g.state) for g in gate_rows])


def refused(app, instance_id: int, error: type, match: str, call, *args, **kwargs):
    """`call` is refused with `error` (message matching `match`) and writes nothing."""
    before = footprint(app, instance_id)
    with pytest.raises(error, match=match) as info:
        call(*args, **kwargs)
    assert footprint(app, instance_id) == before
    return info.value


def state(app, instance_id: int):
    return instances.show(app, instance_id)


def stored_decisions(app, instance_id: int) -> list:
    with app.uow() as uow:
        gate_rows = uow.gates.for_instance(instance_id)
        return [d for g in gate_rows for d in uow.gates.decisions(g.id)]


# ------------------------------------------------------------------------------ opening a gate


def test_the_gate_opens_with_one_approval_task_per_group(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}, {"role": "qa_lead"}],
            "rule": {"kind": "n_of_m"}, "due": "P3D"})
    instance_id = opened(app)
    open_tasks = approvals(app, instance_id)
    assert sorted(open_tasks) == ["qa_lead", "reviewer"]
    assert [t.element_id for t in ready(app, instance_id)] == ["review", "review"]  # no plain `review` task
    reviewer = open_tasks["reviewer"]
    assert reviewer.name == "Quality review (reviewer)"
    assert (reviewer.kind, reviewer.round, reviewer.phase, reviewer.due) == ("approval", 1, "Build",
                                                                           T0 + timedelta(days=3))
    assert reviewer.form == "gated_review"
    assert (state(app, instance_id).state, state(app, instance_id).phase) == ("running", "Build")
    assert (1, "review") in {(t.instance_id, t.element_id) for t in tasks.list_tasks(app, user="rita")}
    assert not [t for t in tasks.list_tasks(app, user="eve") if t.kind == "approval"]

    view = current(app, instance_id)
    assert view["state"] == "open" and view["round"] == 1 and view["phase"] == "Build"
    assert view["submitter"] == "eve" and view["config_version"] == 1
    assert view["approvers"] == [{"role": "reviewer", "count": 2}, {"role": "qa_lead", "count": 1}]
    assert view["eligible"] == ["dana", "quinn", "ray", "rita", "rob"]
    assert view["waiting_on"] == {"reviewer": REVIEWERS, "qa_lead": ["dana", "quinn"]}
    assert view["decisions"] == [] and view["excluded"] == [] and view["changes"] is None
    assert view["due"] == (T0 + timedelta(days=3)).isoformat()
    assert view["rule"] == "the required approvals in every group"


def test_gates_view_lists_gates_not_opened_yet(app, deploy):
    deploy(release={})
    instance_id = start(app)
    view = {g["gate"]: g for g in gates.gates_view(app, instance_id)}
    assert set(view) == {"review_gate", "release_gate"}
    for gate in view.values():
        assert (gate["state"], gate["round"], gate["decisions"], gate["eligible"], gate["excluded"]) == \
            ("not opened", 0, [], [], [])
    assert view["release_gate"]["approvers"] == [{"role": "qa_lead", "count": 1}]
    submit(app, instance_id)
    view = {g["gate"]: g for g in gates.gates_view(app, instance_id)}
    assert view["review_gate"]["state"] == "open" and view["release_gate"]["state"] == "not opened"
    with pytest.raises(NotFound):
        gates.gates_view(app, 999)


# --------------------------------------------------------------------------------- the rules


def test_any_one_approval_decides_go(app, deploy):
    deploy({"rule": {"kind": "any"}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    result = decide(app, task, "rita", "go", comment="looks good")
    assert result == {"gate": "review_gate", "round": 1, "decided": True, "outcome": "go",
                      "reason": "approved by rita", "instance": instance_id}
    inst = state(app, instance_id)
    assert inst.state == "completed" and inst.outcome != "killed"
    assert inst.data["gate_outcome"] == "go" and inst.data["decision"] == "approve"
    assert (inst.data["gate_round"], inst.data["gate_reason"]) == (1, "approved by rita")
    view = current(app, instance_id)
    assert (view["state"], view["outcome"], view["reason"]) == ("passed", "go", "approved by rita")
    assert view["decided_at"] == T0.isoformat()
    [d] = view["decisions"]
    assert (d["user"], d["on_behalf_of"], d["role"], d["outcome"], d["comment"], d["at"]) == \
        ("rita", None, "reviewer", "go", "looks good", T0.isoformat())
    # The approval task the decision was taken on is completed, not withdrawn.
    finished = tasks.list_tasks(app, instance_id=instance_id, states=("completed", "withdrawn"))
    assert [(t.id, t.state) for t in finished if t.kind == "approval"] == [(task.id, "completed")]
    decided = events(app, instance_id, "gate_decided")
    assert [(e.actor, e.payload["outcome"], e.payload["round"]) for e in decided] == [("rita", "go", 1)]


def test_any_waits_for_another_approver_after_a_rejection_then_recycles(app, deploy):
    deploy({"rule": {"kind": "any"}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    assert decide(app, task, "rita", "recycle")["decided"] is False
    assert current(app, instance_id)["eligible"] == ["ray", "rob"]
    assert decide(app, task, "rob", "kill")["decided"] is False
    result = decide(app, task, "ray", "recycle")
    # recycle 2 : kill 1 - the most common negative vote.
    assert (result["decided"], result["outcome"], result["reason"]) == (
        True, "recycle", "nobody approved (rita: recycle, rob: kill, ray: recycle)")
    assert [t.element_id for t in ready(app, instance_id)] == ["prepare"]


@pytest.mark.parametrize("votes, outcome, reason", [
    (["go", "go"], "go", "all 2 required approvals"),
    (["go", "hold"], "hold", "rob voted hold"),
])
def test_all_needs_every_slot_and_the_first_negative_decides(app, deploy, votes, outcome, reason):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    first = decide(app, task, "rita", votes[0])
    assert (first["decided"], first["reason"]) == (False, "1 of 2 approvals")
    second = decide(app, task, "rob", votes[1])
    assert (second["decided"], second["outcome"], second["reason"]) == (True, outcome, reason)
    assert current(app, instance_id)["outcome"] == outcome


def test_quorum_reached(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 3}], "rule": {"kind": "quorum", "quorum": 2}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    assert decide(app, task, "rita", "go")["reason"] == "1 of 2 approvals"
    assert decide(app, task, "rob", "abstain")["decided"] is False
    result = decide(app, task, "ray", "go")
    assert (result["outcome"], result["reason"]) == ("go", "quorum of 2 reached")
    assert state(app, instance_id).state == "completed"


def test_quorum_no_longer_reachable_takes_the_more_severe_negative_on_a_tie(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 3}], "rule": {"kind": "quorum", "quorum": 2}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    assert decide(app, task, "rita", "recycle")["decided"] is False
    result = decide(app, task, "rob", "hold")
    assert (result["decided"], result["outcome"], result["reason"]) == (
        True, "hold", "a quorum of 2 can no longer be reached")
    assert [t.element_id for t in ready(app, instance_id)] == ["resume"]


@pytest.mark.parametrize("last, outcome", [("abstain", "go"), ("recycle", "recycle")])
def test_percentage_counts_deciding_votes_only(app, deploy, last, outcome):
    deploy({"approvers": [{"role": "reviewer", "count": 3}], "rule": {"kind": "percentage", "percentage": 70}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    assert decide(app, task, "rita", "go")["decided"] is False
    # 2 of 2 so far, but a third vote against would make it 67% < 70%: still open.
    assert decide(app, task, "rob", "go")["reason"] == "2 of 2 deciding votes approve so far"
    result = decide(app, task, "ray", last)
    assert (result["decided"], result["outcome"]) == (True, outcome)


def test_percentage_decides_early_when_the_rest_cannot_change_it(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 3}], "rule": {"kind": "percentage", "percentage": 60}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    decide(app, task, "rita", "go")
    result = decide(app, task, "rob", "go")  # 2 of 3 is 67% even if ray votes against
    assert (result["decided"], result["outcome"]) == (True, "go")
    assert "60% needed" in result["reason"]


def test_n_of_m_waits_for_every_group(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}, {"role": "qa_lead"}], "rule": {"kind": "n_of_m"}})
    instance_id = opened(app)
    by_role = approvals(app, instance_id)
    decide(app, by_role["reviewer"], "rita", "go")
    assert decide(app, by_role["reviewer"], "rob", "go")["reason"] == "waiting for qa_lead 0/1"
    view = current(app, instance_id)
    assert view["waiting_on"] == {"reviewer": ["ray"], "qa_lead": ["dana", "quinn"]}
    result = decide(app, by_role["qa_lead"], "dana", "go")
    assert (result["outcome"], result["reason"]) == ("go", "every group gave its required approvals")
    assert [d["role"] for d in current(app, instance_id)["decisions"]] == ["reviewer", "reviewer", "qa_lead"]


def test_n_of_m_decides_negatively_when_a_group_cannot_give_its_count(app, deploy):
    deploy({"approvers": [{"role": "reviewer"}, {"role": "qa_lead"}], "rule": {"kind": "n_of_m"}})
    instance_id = opened(app)
    by_role = approvals(app, instance_id)
    decide(app, by_role["reviewer"], "rita", "go")
    assert decide(app, by_role["qa_lead"], "dana", "recycle")["decided"] is False
    result = decide(app, by_role["qa_lead"], "quinn", "hold")
    assert (result["outcome"], result["reason"]) == ("hold", "qa_lead can no longer give 1 approval(s)")


def test_a_veto_kills_at_once_and_the_instance_is_marked_killed(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}, {"role": "qa_lead"}],
            "rule": {"kind": "n_of_m", "veto_roles": ["qa_lead"]}})
    instance_id = opened(app)
    by_role = approvals(app, instance_id)
    result = decide(app, by_role["qa_lead"], "dana", "kill", comment="unsafe")
    assert (result["decided"], result["outcome"], result["reason"]) == (True, "kill", "veto by dana (qa_lead)")
    inst = state(app, instance_id)
    assert (inst.state, inst.outcome) == ("running", "killed")
    assert inst.data["decision"] == "reject"
    # The reviewers' task (nobody decided on it) is withdrawn, the qa_lead's completed; the kill path runs.
    states = {t.role: t.state for t in tasks.list_tasks(app, instance_id=instance_id,
                                                        states=("completed", "withdrawn")) if t.kind == "approval"}
    assert states == {"reviewer": "withdrawn", "qa_lead": "completed"}
    [archive] = ready(app, instance_id)
    assert archive.element_id == "archive"
    tasks.complete(app, archive.id, "dana", {})
    inst = state(app, instance_id)
    assert (inst.state, inst.outcome) == ("completed", "killed")


def test_a_veto_role_voting_for_does_not_decide(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}, {"role": "qa_lead"}],
            "rule": {"kind": "n_of_m", "veto_roles": ["qa_lead"]}})
    instance_id = opened(app)
    by_role = approvals(app, instance_id)
    assert decide(app, by_role["qa_lead"], "dana", "go")["decided"] is False
    assert decide(app, by_role["reviewer"], "rita", "recycle")["decided"] is False  # not a veto role
    assert current(app, instance_id)["state"] == "open"


def test_min_participation_waits_and_abstentions_count(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "any", "min_participation": 2}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    first = decide(app, task, "rita", "go")
    assert (first["decided"], first["reason"]) == (False, "waiting for 1 more vote(s)")
    result = decide(app, task, "rob", "abstain", comment="not my area")
    assert (result["decided"], result["outcome"]) == (True, "go")
    assert [d["outcome"] for d in current(app, instance_id)["decisions"]] == ["go", "abstain"]


def test_min_participation_out_of_reach_is_decided_negatively(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 3}], "rule": {"kind": "any", "min_participation": 3}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    assert decide(app, task, "rita", "go")["decided"] is False
    # Recusals do not take part: rita's vote + ray's are fewer than 3.
    result = decide(app, task, "rob", "recuse")
    assert result["decided"] is True and result["outcome"] == "recycle"
    assert result["reason"] == "fewer than 3 people can still take part"


def test_abstaining_can_be_forbidden(app, deploy):
    deploy({"rule": {"kind": "any", "allow_abstain": False}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    error = refused(app, instance_id, InvalidInput, "does not allow abstaining", decide, app, task, "rita", "abstain")
    assert "outcome" in error.fields
    assert decide(app, task, "rita", "go")["decided"] is True


def test_a_recusal_steps_aside_and_leaves_too_few_approvers(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 3}], "rule": {"kind": "all"}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    decide(app, task, "rita", "go")
    result = decide(app, task, "rob", "recuse", comment="I wrote half of it")
    assert (result["decided"], result["outcome"]) == (True, "recycle")
    assert result["reason"] == "only 2 of 3 required approvals are still possible"
    decisions = rounds(app, instance_id)[0]["decisions"]
    assert [(d["user"], d["outcome"]) for d in decisions] == [("rita", "go"), ("rob", "recuse")]


def test_a_recused_approver_is_listed_as_excluded(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "quorum", "quorum": 1}})
    instance_id = opened(app)
    assert decide(app, approval(app, instance_id), "rob", "recuse")["decided"] is False
    view = current(app, instance_id)
    assert view["eligible"] == ["ray", "rita"]
    assert view["excluded"] == [{"user": "rob", "reason": "recused"}]
    refused(app, instance_id, Forbidden, "already decided", decide, app, approval(app, instance_id), "rob", "go")


# ------------------------------------------------------------------------------ the outcomes


def test_recycle_goes_back_to_the_work_and_the_next_round_is_numbered(app, deploy):
    deploy({"approvers": [{"role": "reviewer"}, {"role": "qa_lead"}], "rule": {"kind": "n_of_m"}})
    instance_id = opened(app)
    by_role = approvals(app, instance_id)
    result = decide(app, by_role["reviewer"], "rita", "reject", comment="the tests are flaky")
    assert result["decided"] is False  # reject = recycle; rob or ray can still approve
    decide(app, by_role["reviewer"], "rob", "recycle")
    result = decide(app, by_role["reviewer"], "ray", "recycle")
    assert (result["outcome"], result["round"]) == ("recycle", 1)
    assert [t.element_id for t in ready(app, instance_id)] == ["prepare"]
    assert state(app, instance_id).data["decision"] == "reject"
    assert [d["outcome"] for d in rounds(app, instance_id)[0]["decisions"]] == ["recycle"] * 3

    submit(app, instance_id, work("second cut"))
    second = approvals(app, instance_id)
    assert {t.round for t in second.values()} == {2}
    assert second["reviewer"].name == "Quality review (reviewer, round 2)"
    assert [(g["round"], g["state"], g["outcome"]) for g in rounds(app, instance_id)] == [
        (1, "rejected", "recycle"), (2, "open", None)]
    decide(app, second["qa_lead"], "dana", "go")
    decide(app, second["reviewer"], "rita", "go")
    inst = state(app, instance_id)
    assert inst.state == "completed" and inst.data["gate_round"] == 2
    gate_events = [e for e in events(app, instance_id) if e.type in ("decision", "gate_decided")]
    assert [(e.type, e.payload["round"]) for e in gate_events] == [
        ("decision", 1), ("decision", 1), ("decision", 1), ("gate_decided", 1),
        ("decision", 2), ("decision", 2), ("gate_decided", 2)]
    finished = tasks.list_tasks(app, instance_id=instance_id, states=("completed", "withdrawn"))
    assert sorted((t.round, t.role, t.state) for t in finished if t.kind == "approval") == [
        (1, "qa_lead", "withdrawn"), (1, "reviewer", "completed"),
        (2, "qa_lead", "completed"), (2, "reviewer", "completed")]


def test_hold_goes_to_the_waiting_point(app, deploy):
    deploy()
    instance_id = opened(app)
    result = decide(app, approval(app, instance_id), "rita", "hold", comment="waiting for the vendor fix")
    assert result["decided"] is True and result["outcome"] == "hold"
    inst = state(app, instance_id)
    assert inst.state == "running" and inst.outcome is None
    assert [t.element_id for t in inst.tasks] == ["resume"]
    view = current(app, instance_id)
    assert (view["state"], view["outcome"]) == ("rejected", "hold")
    assert view["decisions"][0]["comment"] == "waiting for the vendor fix"


def test_kill_ends_the_instance_as_killed(app, deploy):
    deploy()
    instance_id = opened(app)
    decide(app, approval(app, instance_id), "rita", "kill", comment="no longer needed")
    inst = state(app, instance_id)
    assert inst.outcome == "killed" and inst.data["gate_outcome"] == "kill"
    tasks.complete(app, only_ready(app, instance_id, "archive").id, "dana", {})
    inst = state(app, instance_id)
    assert (inst.state, inst.outcome) == ("completed", "killed")


def only_ready(app, instance_id: int, element_id: str):
    [task] = ready(app, instance_id)
    assert task.element_id == element_id
    return task


def test_an_outcome_the_gate_does_not_list_is_refused(app, deploy):
    deploy({"outcomes": {"go": "to_done", "recycle": "to_rework"}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    error = refused(app, instance_id, InvalidInput, "does not allow the outcome 'kill'", decide, app, task,
                    "rita", "kill")
    assert "go, recycle" in error.message
    refused(app, instance_id, InvalidInput, "unknown outcome 'maybe'", gates.decide, app, task.id, "rita", "maybe")


def test_negative_votes_need_a_reason(app, deploy):
    deploy()
    instance_id = opened(app)
    task = approval(app, instance_id)
    for outcome in ("hold", "recycle", "kill", "reject"):
        refused(app, instance_id, InvalidInput, "a reason is required", gates.decide, app, task.id, "rita", outcome,
                comment="  ")


# ---------------------------------------------------------------- conditional go, action items


CONDITIONS = [
    {"text": "Add load tests", "owner": "eve", "due": "2026-04-01"},
    {"text": "Document the rollback", "owner": "ed"},
]


def test_conditional_go_creates_action_items_and_blocks_the_next_gate_until_they_are_closed(app, deploy, frozen):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "quorum", "quorum": 2}},
           release={"escalation": {"remind_after": "PT1H"}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    decide(app, task, "rita", "conditional-go", conditions=CONDITIONS[:1], comment="ok with load tests")
    result = decide(app, task, "rob", "conditional-go", conditions=CONDITIONS[1:])
    assert (result["decided"], result["outcome"]) == (True, "conditional-go")
    inst = state(app, instance_id)
    assert inst.data["gate_outcome"] == "conditional-go" and inst.data["decision"] == "approve"

    items = gates.action_items(app, instance_id)
    assert [(i["text"], i["owner"], i["state"]) for i in items] == [
        ("Add load tests", "eve", "open"), ("Document the rollback", "ed", "open")]
    assert items[0]["due"].startswith("2026-04-01") and items[1]["due"] is None
    review = rounds(app, instance_id)[0]
    assert (review["state"], review["outcome"]) == ("passed", "conditional-go")
    assert [i["id"] for i in review["action_items"]] == [i["id"] for i in items]

    # The release gate opened blocked: no approval task, no escalation clock.
    release = current(app, instance_id, "release_gate")
    assert (release["state"], release["phase"], release["round"]) == ("blocked", "Release", 1)
    assert approvals(app, instance_id, "release") == {} and ready(app, instance_id) == []
    frozen.advance(hours=3)
    instances.fire_due_timers(app)
    assert events(app, instance_id, "gate_reminder") == []

    refused(app, instance_id, Forbidden, r"only the owner \(eve\) or an admin", gates.close_action_item, app,
            items[0]["id"], "ed")
    closed = gates.close_action_item(app, items[0]["id"], "eve", "load tests added")
    assert (closed["state"], closed["closed_by"], closed["note"]) == ("closed", "eve", "load tests added")
    assert current(app, instance_id, "release_gate")["state"] == "blocked"
    refused(app, instance_id, Conflict, "already closed", gates.close_action_item, app, items[0]["id"], "eve")

    gates.close_action_item(app, items[1]["id"], "admin", "closed on ed's behalf")
    release = current(app, instance_id, "release_gate")
    assert release["state"] == "open" and release["eligible"] == ["dana", "quinn"]
    assert sorted(approvals(app, instance_id, "release")) == ["qa_lead"]
    assert [e.payload["item"] for e in events(app, instance_id, "action_item_closed")] == [i["id"] for i in items]

    # Its escalation clock starts now.
    instances.fire_due_timers(app)
    assert events(app, instance_id, "gate_reminder") == []
    frozen.advance(hours=1)
    assert instance_id in instances.fire_due_timers(app)
    assert len(events(app, instance_id, "gate_reminder")) == 1

    decide(app, approval(app, instance_id, "qa_lead", "release"), "dana", "go")
    assert state(app, instance_id).state == "completed"
    assert "released" in events(app, instance_id, "gate_decided")[-1].payload["path"]


def test_a_conditional_go_needs_well_formed_conditions(app, deploy):
    deploy()
    instance_id = opened(app)
    task = approval(app, instance_id)
    refused(app, instance_id, InvalidInput, "needs at least one condition", decide, app, task, "rita",
            "conditional-go")
    refused(app, instance_id, InvalidInput, "needs at least one condition", decide, app, task, "rita",
            "conditional-go", conditions=[])
    refused(app, instance_id, InvalidInput, "owner is required", decide, app, task, "rita", "conditional-go",
            conditions=[{"text": "x"}])
    refused(app, instance_id, InvalidInput, "not an ISO 8601 date", decide, app, task, "rita", "conditional-go",
            conditions=[{"text": "x", "owner": "eve", "due": "next week"}])


def test_a_go_vote_next_to_a_conditional_one_still_makes_a_conditional_go(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}}, release={})
    instance_id = opened(app)
    task = approval(app, instance_id)
    decide(app, task, "rita", "go")
    assert decide(app, task, "rob", "conditional-go", conditions=CONDITIONS[:1])["outcome"] == "conditional-go"
    assert len(gates.action_items(app, instance_id)) == 1


# --------------------------------------------------------------------- separation of duties


def test_the_submitter_may_not_approve(app, deploy):
    users.grant(app, "ed", "reviewer")
    deploy()
    instance_id = opened(app, user="ed")
    view = current(app, instance_id)
    assert view["excluded"] == [{"user": "ed", "reason": "submitted the work under review"}]
    assert "ed" not in view["eligible"]
    refused(app, instance_id, Forbidden, "ed submitted the work under review", decide, app,
            approval(app, instance_id), "ed", "go")


def test_the_submitter_may_approve_when_the_gate_allows_it(app, deploy):
    users.grant(app, "ed", "reviewer")
    deploy({"separation_of_duties": {"submitter_may_not_approve": False}})
    instance_id = opened(app, user="ed")
    assert "ed" in current(app, instance_id)["eligible"]
    assert decide(app, approval(app, instance_id), "ed", "go")["decided"] is True


def test_exclude_completers_of(app, deploy):
    users.grant(app, "ed", "reviewer")
    deploy({"separation_of_duties": {"submitter_may_not_approve": False, "exclude_completers_of": ["prepare"]}})
    instance_id = opened(app, user="ed")
    assert current(app, instance_id)["excluded"] == [{"user": "ed", "reason": "completed task prepare"}]
    refused(app, instance_id, Forbidden, "ed completed task prepare", decide, app, approval(app, instance_id),
            "ed", "go")


def test_exclude_completers_of_covers_earlier_rounds(app, deploy):
    users.grant(app, "ed", "reviewer")
    deploy({"separation_of_duties": {"exclude_completers_of": ["prepare"]}})
    instance_id = opened(app, user="ed")  # round 1 prepared by ed
    decide(app, approval(app, instance_id), "rita", "recycle")
    submit(app, instance_id, work("second cut"), user="eve")  # round 2 prepared by eve
    view = current(app, instance_id)
    assert view["submitter"] == "eve"
    assert {"user": "ed", "reason": "completed task prepare"} in view["excluded"]


def test_exclude_phase_participants(app, deploy):
    users.grant(app, "ed", "reviewer")
    deploy({"separation_of_duties": {"submitter_may_not_approve": False, "exclude_phase_participants": True}})
    instance_id = opened(app, user="ed")
    assert current(app, instance_id)["excluded"] == [{"user": "ed", "reason": "worked on a task in this phase"}]
    refused(app, instance_id, Forbidden, "worked on a task in this phase", decide, app,
            approval(app, instance_id), "ed", "go")


def test_distinct_across_rounds(app, deploy):
    deploy({"separation_of_duties": {"distinct_across_rounds": True}})
    instance_id = opened(app)
    decide(app, approval(app, instance_id), "rita", "recycle")
    submit(app, instance_id, work("second cut"))
    view = current(app, instance_id)
    assert view["round"] == 2 and view["eligible"] == ["ray", "rob"]
    assert view["excluded"] == [{"user": "rita", "reason": "decided this gate in an earlier round"}]
    refused(app, instance_id, Forbidden, "rita decided this gate in an earlier round", decide, app,
            approval(app, instance_id), "rita", "go")


def test_one_person_cannot_fill_two_approver_slots(app, deploy):
    users.grant(app, "rita", "qa_lead")
    deploy({"approvers": [{"role": "reviewer"}, {"role": "qa_lead"}], "rule": {"kind": "n_of_m"}})
    instance_id = opened(app)
    by_role = approvals(app, instance_id)
    assert decide(app, by_role["reviewer"], "rita", "go")["decided"] is False
    assert current(app, instance_id)["waiting_on"]["qa_lead"] == ["dana", "quinn"]
    refused(app, instance_id, Forbidden, "rita has already decided this gate", decide, app, by_role["qa_lead"],
            "rita", "go")
    assert decide(app, by_role["qa_lead"], "dana", "go")["outcome"] == "go"


def test_deciding_twice_is_refused_and_nothing_is_recorded(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    decide(app, task, "rita", "go")
    decisions_before, events_before = len(stored_decisions(app, instance_id)), len(events(app, instance_id))
    for outcome in ("go", "recycle", "abstain", "recuse"):
        refused(app, instance_id, Forbidden, "rita has already decided this gate", decide, app, task, "rita", outcome)
    assert len(stored_decisions(app, instance_id)) == decisions_before == 1
    assert len(events(app, instance_id)) == events_before
    # The task leaves rita's inbox once she decided, and stays in the others'.
    assert not [t for t in tasks.list_tasks(app, user="rita") if t.instance_id == instance_id]
    assert [t.id for t in tasks.list_tasks(app, user="rob") if t.instance_id == instance_id] == [task.id]


def test_a_decision_on_a_withdrawn_approval_task_is_refused(app, deploy):
    deploy({"approvers": [{"role": "reviewer"}, {"role": "qa_lead"}], "rule": {"kind": "any"}})
    instance_id = opened(app)
    by_role = approvals(app, instance_id)
    decide(app, by_role["reviewer"], "rita", "go")
    assert state(app, instance_id).state == "completed"
    error = refused(app, instance_id, Conflict, "can no longer be decided", decide, app, by_role["qa_lead"],
                    "dana", "go")
    assert "withdrawn" in error.message
    # ... also the task that was decided (completed).
    refused(app, instance_id, Conflict, "can no longer be decided: it is completed", decide, app,
            by_role["reviewer"], "rob", "go")


def test_a_cancelled_instance_withdraws_its_gate(app, deploy):
    deploy()
    instance_id = opened(app)
    task = approval(app, instance_id)
    instances.cancel(app, instance_id, reason="project stopped")
    assert current(app, instance_id)["state"] == "withdrawn"
    refused(app, instance_id, Conflict, "can no longer be decided", decide, app, task, "rita", "go")


def test_people_who_are_not_approvers_are_refused(app, deploy):
    deploy()
    instance_id = opened(app)
    task = approval(app, instance_id)
    refused(app, instance_id, Forbidden, "dana may not decide gate 'review_gate': not an approver", decide, app,
            task, "dana", "go")
    refused(app, instance_id, NotFound, "unknown user 'ghost'", decide, app, task, "ghost", "go")
    refused(app, instance_id, NotFound, "unknown task 999", gates.decide, app, 999, "rita", "go")


def test_an_ordinary_task_is_not_decided(app, deploy):
    deploy()
    instance_id = start(app)
    refused(app, instance_id, Conflict, "not a gate approval", gates.decide, app, prepare_task(app, instance_id).id,
            "eve", "go")


# ---------------------------------------------------------------------------- entry criteria


def test_unmet_criteria_refuse_the_submission_naming_each_criterion_and_its_values(app, deploy):
    deploy({"entry_criteria": QUALITY_CRITERIA})
    instance_id = start(app)
    task = prepare_task(app, instance_id)
    before = footprint(app, instance_id)
    events_before = len(events(app, instance_id))
    with pytest.raises(InvalidInput) as info:
        tasks.complete(app, task.id, "eve", work(pass_rate=0.91, blockers=2))
    message = info.value.message
    assert message.startswith("gate 'review_gate' cannot open: ")
    assert "quality_bar: `quality.pass_rate >= 0.95 and quality.open_blockers == 0` is not met " \
           "(quality.pass_rate = 0.91, quality.open_blockers = 2)" in message
    assert "scored: `score >= 95` is not met (score = 91)" in message
    assert set(info.value.fields) == {"criteria/quality_bar", "criteria/scored"}
    # Nothing is written: the same revision and events, `prepare` still ready, no gate round.
    assert footprint(app, instance_id) == before
    assert len(events(app, instance_id)) == events_before
    assert prepare_task(app, instance_id).id == task.id
    assert current(app, instance_id)["state"] == "not opened"
    assert state(app, instance_id).data.get("summary") is None

    # Fixed: the gate opens and records the values each criterion saw.
    tasks.complete(app, task.id, "eve", work(pass_rate=0.97))
    view = current(app, instance_id)
    assert view["state"] == "open"
    assert view["criteria"] == {
        "quality_bar": {"met": True, "values": {"quality.pass_rate": 0.97, "quality.open_blockers": 0},
                        "expression": "quality.pass_rate >= 0.95 and quality.open_blockers == 0"},
        "scored": {"met": True, "values": {"score": 97}, "expression": "score >= 95"},
    }


def test_one_unmet_criterion_is_named_alone(app, deploy):
    deploy({"entry_criteria": QUALITY_CRITERIA})
    instance_id = start(app)
    with pytest.raises(InvalidInput) as info:
        submit(app, instance_id, work(pass_rate=0.99, blockers=1))
    assert set(info.value.fields) == {"criteria/quality_bar"}
    assert "quality.open_blockers = 1" in info.value.message and "scored" not in info.value.message


def test_a_criterion_reading_missing_data_is_unmet_and_says_so(app, deploy):
    deploy({"entry_criteria": {"expressions": [{"id": "covered", "expression": "quality.coverage >= 0.8"}]}})
    instance_id = start(app)
    with pytest.raises(InvalidInput) as info:
        submit(app, instance_id)
    assert "covered: `quality.coverage >= 0.8` could not be evaluated" in info.value.message
    assert "quality.coverage = '(missing)'" in info.value.message
    assert current(app, instance_id)["state"] == "not opened"


def test_unconfirmed_checklist_items_refuse_the_submission(app, deploy):
    deploy({"entry_criteria": QUALITY_CRITERIA})
    instance_id = start(app)
    before = footprint(app, instance_id)
    with pytest.raises(InvalidInput) as info:
        submit(app, instance_id, work(checklist={"tests_run": True, "notes_written": False}))
    assert "checklist item notes_written not confirmed: Release notes are written." in info.value.message
    assert set(info.value.fields) == {"checklist/notes_written"}
    with pytest.raises(InvalidInput) as info:
        submit(app, instance_id, work(checklist=None) | {"checklist": []})
    assert set(info.value.fields) == {"checklist/tests_run", "checklist/notes_written"}
    assert footprint(app, instance_id) == before
    # A list of confirmed item ids works as well as a mapping.
    submit(app, instance_id, work(checklist=["tests_run", "notes_written"]))
    assert current(app, instance_id)["state"] == "open"


def test_decisions_keep_the_criteria_values_and_the_hash_of_the_form_shown(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"},
            "entry_criteria": QUALITY_CRITERIA})
    instance_id = opened(app, data=work(pass_rate=0.96))
    decide(app, approval(app, instance_id), "rita", "go", comment="fine")
    [stored] = stored_decisions(app, instance_id)
    assert stored.criteria["quality_bar"]["values"] == {"quality.pass_rate": 0.96, "quality.open_blockers": 0}
    assert stored.criteria["scored"] == {"met": True, "values": {"score": 96}, "expression": "score >= 95"}
    assert re.fullmatch(r"[0-9a-f]{64}", stored.form_hash)
    assert (stored.user_name, stored.on_behalf_of, stored.comment, stored.at) == ("rita", None, "fine", T0)
    [event] = events(app, instance_id, "decision")
    assert event.payload["form_hash"] == stored.form_hash and event.payload["round"] == 1

    # Another instance with other data shows another form (other data): another hash.
    other = opened(app, data=work(pass_rate=0.98))
    decide(app, approval(app, other), "rob", "go")
    [other_decision] = stored_decisions(app, other)
    assert other_decision.form_hash != stored.form_hash


# --------------------------------------------------------------------------------- signature


SIGNED = {"signature": {"meaning": "Reviewed; I confirm the work meets the quality bar."}}


def test_a_signed_gate_needs_the_approvers_password_and_stores_the_meaning(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}, **SIGNED})
    instance_id = opened(app)
    task = approval(app, instance_id)
    refused(app, instance_id, Forbidden, "requires an electronic signature", decide, app, task, "rita", "go")
    refused(app, instance_id, Forbidden, "password is not correct", decide, app, task, "rita", "go",
            password="wrong")
    refused(app, instance_id, Forbidden, "password is not correct", decide, app, task, "rita", "go",
            password=password("rob"))  # someone else's password
    assert decide(app, task, "rita", "go", password=password("rita"))["decided"] is False
    [d] = current(app, instance_id)["decisions"]
    assert d["signature"] == SIGNED["signature"]["meaning"]
    [event] = events(app, instance_id, "decision")
    assert event.payload["signature"] == SIGNED["signature"]["meaning"]


def test_an_unsigned_gate_stores_no_signature(app, deploy):
    deploy()
    instance_id = opened(app)
    decide(app, approval(app, instance_id), "rita", "go")
    assert rounds(app, instance_id)[0]["decisions"][0]["signature"] is None


# ------------------------------------------------------------------------------- escalation


ESCALATING = {"due": "PT4H", "escalation": {"remind_after": "PT2H", "reassign_after": "PT6H",
                                            "reassign_to": "manager", "auto_decide_after": "PT10H",
                                            "auto_decide": "hold"}}


def test_escalation_reminds_then_reassigns_then_decides_automatically(app, deploy, frozen):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}, **ESCALATING})
    instance_id = opened(app)
    decide(app, approval(app, instance_id), "rita", "go")

    frozen.advance(hours=1, minutes=59)
    assert instances.fire_due_timers(app) == []
    frozen.advance(minutes=1)
    assert instances.fire_due_timers(app) == [instance_id]
    [reminder] = events(app, instance_id, "gate_reminder")
    assert (reminder.actor, reminder.payload) == ("system", {"gate": "review_gate", "round": 1,
                                                             "waiting_on": ["reviewer"]})
    assert instances.fire_due_timers(app) == []  # once only

    frozen.advance(hours=4)  # 6 hours after the gate opened
    assert instances.fire_due_timers(app) == [instance_id]
    [reassigned] = events(app, instance_id, "gate_reassigned")
    assert reassigned.payload == {"gate": "review_gate", "round": 1, "to": "manager"}
    assert sorted(approvals(app, instance_id)) == ["manager"]
    view = current(app, instance_id)
    assert view["eligible"] == ["max"] and view["state"] == "open"
    refused(app, instance_id, Forbidden, "rob may not decide", decide, app, approval(app, instance_id, "manager"),
            "rob", "go")
    assert [t.id for t in tasks.list_tasks(app, user="max")] == [approval(app, instance_id, "manager").id]

    frozen.advance(hours=4)  # 10 hours
    assert instances.fire_due_timers(app) == [instance_id]
    [auto] = events(app, instance_id, "gate_auto_decided")
    assert auto.actor == "system" and auto.payload["outcome"] == "hold"
    view = current(app, instance_id)
    assert (view["state"], view["outcome"]) == ("rejected", "hold")
    assert "decided automatically (hold)" in view["reason"]
    assert [t.element_id for t in ready(app, instance_id)] == ["resume"]
    [decided] = events(app, instance_id, "gate_decided")
    assert decided.actor == "system"
    # Only rita's decision is a person's; the automatic one is not signed by anybody.
    assert [d["user"] for d in view["decisions"]] == ["rita"]
    frozen.advance(days=30)
    assert instances.fire_due_timers(app) == []


def test_one_sweep_after_a_long_pause_runs_every_step_that_is_due(app, deploy, frozen):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}, **ESCALATING})
    instance_id = opened(app)
    frozen.advance(days=3)
    assert instances.fire_due_timers(app) == [instance_id]
    assert [e.type for e in events(app, instance_id)][-4:] == [
        "gate_reminder", "gate_reassigned", "gate_auto_decided", "gate_decided"]
    assert (current(app, instance_id)["outcome"], only_ready(app, instance_id, "resume").role) == ("hold", "engineer")
    assert instances.fire_due_timers(app) == []


def test_the_reminder_comes_at_due_without_remind_after(app, deploy, frozen):
    deploy({"due": "P1D"})
    instance_id = opened(app)
    frozen.advance(hours=23)
    assert instances.fire_due_timers(app) == []
    frozen.advance(hours=1)
    assert instances.fire_due_timers(app) == [instance_id]
    assert len(events(app, instance_id, "gate_reminder")) == 1


def test_the_escalation_role_decides_after_the_reassignment(app, deploy, frozen):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}, **ESCALATING})
    instance_id = opened(app)
    decide(app, approval(app, instance_id), "rob", "go")
    frozen.advance(hours=6)
    assert instances.fire_due_timers(app) == [instance_id]  # one sweep: the reminder and the reassignment
    assert [e.type for e in events(app, instance_id)][-2:] == ["gate_reminder", "gate_reassigned"]
    result = decide(app, approval(app, instance_id, "manager"), "max", "go")
    assert (result["decided"], result["outcome"]) == (True, "go")
    assert state(app, instance_id).state == "completed"
    assert [(d["user"], d["role"]) for d in current(app, instance_id)["decisions"]] == [
        ("rob", "reviewer"), ("max", "reviewer")]
    frozen.advance(hours=10)
    assert instances.fire_due_timers(app) == []  # decided: nothing left to escalate


def test_auto_decide_go_moves_the_process_on(app, deploy, frozen):
    deploy({"escalation": {"auto_decide_after": "P2D", "auto_decide": "go"}})
    instance_id = opened(app)
    frozen.advance(days=2)
    assert instances.fire_due_timers(app) == [instance_id]
    inst = state(app, instance_id)
    assert inst.state == "completed" and inst.data["gate_outcome"] == "go"
    assert approvals(app, instance_id) == {}
    withdrawn = tasks.list_tasks(app, instance_id=instance_id, states=("withdrawn",))
    assert [t.kind for t in withdrawn] == ["approval"]


def test_reassigning_to_an_approver_role_keeps_each_task_in_its_group(app, deploy, frozen):
    deploy({"approvers": [{"role": "reviewer"}, {"role": "qa_lead"}],
            "rule": {"kind": "n_of_m", "veto_roles": ["qa_lead"]},
            "escalation": {"reassign_after": "PT1H", "reassign_to": "qa_lead"}})
    instance_id = opened(app)
    qa_task = approval(app, instance_id, "qa_lead")
    frozen.advance(hours=1)
    instances.fire_due_timers(app)
    routed = [t for t in ready(app, instance_id) if t.kind == "approval"]
    assert [t.role for t in routed] == ["qa_lead", "qa_lead"]
    # dana decides on the qa_lead group's own task: still the qa_lead veto.
    result = decide(app, qa_task, "dana", "kill", comment="unsafe")
    assert (result["decided"], result["outcome"], result["reason"]) == (True, "kill", "veto by dana (qa_lead)")
    assert [d["role"] for d in current(app, instance_id)["decisions"]] == ["qa_lead"]


# ------------------------------------------------------------------------------- delegation


def test_a_delegate_decides_on_behalf_of_the_approver(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}})
    instance_id = opened(app)
    task = approval(app, instance_id)
    refused(app, instance_id, Forbidden, "olga may not decide", decide, app, task, "olga", "go")
    assert gates.delegate_task(app, task.id, "rita", "olga") == {"task": task.id, "delegator": "rita",
                                                                 "delegate": "olga"}
    [delegated] = events(app, instance_id, "delegated")
    assert (delegated.actor, delegated.payload) == ("rita", {"to": "olga", "gate": "review_gate", "round": 1})
    view = current(app, instance_id)
    assert "olga" in view["eligible"]

    assert decide(app, task, "olga", "go", on_behalf_of="rita")["decided"] is False
    [d] = current(app, instance_id)["decisions"]
    assert (d["user"], d["on_behalf_of"], d["role"]) == ("olga", "rita", "reviewer")
    [event] = events(app, instance_id, "decision")
    assert (event.actor, event.payload["on_behalf_of"]) == ("olga", "rita")
    # That was rita's one vote: neither she nor olga (again) may decide.
    refused(app, instance_id, Forbidden, "rita has already decided", decide, app, task, "rita", "go")
    refused(app, instance_id, Forbidden, "already decided", decide, app, task, "olga", "go", on_behalf_of="rita")
    assert decide(app, task, "rob", "go")["outcome"] == "go"


def test_a_delegate_with_one_delegation_needs_not_say_for_whom(app, deploy):
    deploy()
    instance_id = opened(app)
    task = approval(app, instance_id)
    gates.delegate_task(app, task.id, "rob", "olga")
    decide(app, task, "olga", "go")
    [d] = current(app, instance_id)["decisions"]
    assert (d["user"], d["on_behalf_of"]) == ("olga", "rob")


def test_a_delegate_may_not_act_for_someone_who_did_not_delegate(app, deploy):
    deploy()
    instance_id = opened(app)
    task = approval(app, instance_id)
    gates.delegate_task(app, task.id, "rob", "olga")
    refused(app, instance_id, Forbidden, "olga may not decide on behalf of rita", decide, app, task, "olga", "go",
            on_behalf_of="rita")


def test_separation_of_duties_applies_to_the_delegate(app, deploy):
    deploy()
    instance_id = opened(app)  # submitted by eve
    task = approval(app, instance_id)
    refused(app, instance_id, Forbidden, "separation of duties: eve submitted the work under review",
            gates.delegate_task, app, task.id, "rita", "eve")
    # Nor can the submitter decide claiming to act for an approver.
    refused(app, instance_id, Forbidden, "eve submitted the work under review", decide, app, task, "eve", "go",
            on_behalf_of="rita")


def test_delegation_refusals(app, deploy):
    deploy({"delegation": False})
    instance_id = opened(app)
    task = approval(app, instance_id)
    refused(app, instance_id, Forbidden, "does not allow delegation", gates.delegate_task, app, task.id, "rita",
            "olga")
    refused(app, instance_id, Forbidden, "dana does not hold role 'reviewer'", gates.delegate_task, app, task.id,
            "dana", "olga")
    refused(app, instance_id, NotFound, "unknown user 'ghost'", gates.delegate_task, app, task.id, "rita", "ghost")
    refused(app, instance_id, NotFound, "unknown gate approval task", gates.delegate_task, app,
            prepare_task_id_of(app), "eve", "olga")


def prepare_task_id_of(app) -> int:
    other = start(app)
    return prepare_task(app, other).id


def test_out_of_office_delegation_holds_only_in_its_window(app, deploy, frozen):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}})
    window = gates.set_out_of_office(app, "rita", "olga", until=T0 + timedelta(days=2),
                                     starts=T0 + timedelta(days=1))
    assert (window["delegator"], window["delegate"]) == ("rita", "olga")
    first = opened(app)
    task = approval(app, first)
    # Before the window: olga is nobody's delegate yet.
    assert "olga" not in current(app, first)["eligible"]
    refused(app, first, Forbidden, "olga may not decide", decide, app, task, "olga", "go", on_behalf_of="rita")

    frozen.advance(days=1, hours=1)  # in the window
    assert "olga" in current(app, first)["eligible"]
    decide(app, task, "olga", "go")
    [d] = current(app, first)["decisions"]
    assert (d["user"], d["on_behalf_of"]) == ("olga", "rita")

    frozen.advance(days=1)  # the window has ended
    second = opened(app)
    assert "olga" not in current(app, second)["eligible"]
    refused(app, second, Forbidden, "olga may not decide", decide, app, approval(app, second), "olga", "go",
            on_behalf_of="rita")
    refused(app, second, Forbidden, "olga may not decide", decide, app, approval(app, second), "olga", "go")


def test_an_out_of_office_delegate_excluded_by_separation_of_duties_is_listed(app, deploy):
    deploy()
    gates.set_out_of_office(app, "rita", "eve", until=T0 + timedelta(days=1))
    instance_id = opened(app)  # eve submits
    view = current(app, instance_id)
    assert "eve" not in view["eligible"]
    assert {"user": "eve", "reason": "eve submitted the work under review"} in view["excluded"]


def test_out_of_office_needs_a_period_and_two_people(app):
    with pytest.raises(InvalidInput, match="must end after it starts"):
        gates.set_out_of_office(app, "rita", "olga", until=T0 - timedelta(hours=1))
    with pytest.raises(InvalidInput, match="cannot delegate to themselves"):
        gates.set_out_of_office(app, "rita", "rita", until=T0 + timedelta(days=1))
    with pytest.raises(NotFound, match="ghost"):
        gates.set_out_of_office(app, "rita", "ghost", until=T0 + timedelta(days=1))


# ------------------------------------------------------------------------------------ rework


def recycle_round(app, instance_id: int, task=None, *, go: str = "rita", no: str = "rob"):
    """Round decided recycle under `all` of 2: `go` approves, `no` recycles."""
    task = task or approval(app, instance_id)
    decide(app, task, go, "go")
    assert decide(app, task, no, "recycle")["outcome"] == "recycle"


def test_votes_reset_for_the_next_round_and_the_changes_are_shown(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}})
    instance_id = opened(app, data=work("first cut", pass_rate=0.96))
    recycle_round(app, instance_id)
    submit(app, instance_id, work("second cut", pass_rate=0.99))
    first, second = rounds(app, instance_id)
    assert first["changes"] is None
    assert second["changes"] == {
        "quality": {"before": {"pass_rate": 0.96, "open_blockers": 0},
                    "after": {"pass_rate": 0.99, "open_blockers": 0}},
        "score": {"before": 96, "after": 99},
        "summary": {"before": "first cut", "after": "second cut"},
    }
    assert second["decisions"] == [] and second["eligible"] == REVIEWERS
    task = approval(app, instance_id)
    assert decide(app, task, "rita", "go")["decided"] is False  # her round-1 approval does not count
    assert decide(app, task, "ray", "go")["outcome"] == "go"


def test_carried_over_approvals_count_and_their_approvers_need_not_decide_again(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"},
            "rework": {"votes": "carry_over"}})
    instance_id = opened(app)
    recycle_round(app, instance_id)
    submit(app, instance_id, work("second cut"))
    view = current(app, instance_id)
    [carried] = view["decisions"]
    assert (carried["user"], carried["outcome"], carried["carried_over"]) == ("rita", "go", True)
    assert view["eligible"] == ["ray", "rob"]
    task = approval(app, instance_id)
    # One vote per person: rita's carried approval is her vote in this round.
    refused(app, instance_id, Forbidden, "rita has already decided", decide, app, task, "rita", "go")
    result = decide(app, task, "ray", "go")
    assert (result["decided"], result["outcome"], result["reason"]) == (True, "go", "all 2 required approvals")


def test_carry_over_does_not_carry_negative_votes(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"},
            "rework": {"votes": "carry_over"}})
    instance_id = opened(app)
    recycle_round(app, instance_id)
    submit(app, instance_id, work("second cut"))
    assert [d["user"] for d in current(app, instance_id)["decisions"]] == ["rita"]
    assert decide(app, approval(app, instance_id), "rob", "go")["outcome"] == "go"


def test_max_rounds_escalates_to_the_configured_role(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"},
            "rework": {"max_rounds": 2, "escalate_to": "manager"}})
    instance_id = opened(app)
    recycle_round(app, instance_id)
    submit(app, instance_id, work("second cut"))
    assert sorted(approvals(app, instance_id)) == ["reviewer"]
    recycle_round(app, instance_id, go="ray", no="rita")
    submit(app, instance_id, work("third cut"))
    third = current(app, instance_id)
    assert third["round"] == 3
    assert third["approvers"] == [{"role": "manager", "count": 1}]
    assert third["rule"] == "any one approval" and third["eligible"] == ["max"]
    [task] = approvals(app, instance_id).values()
    assert (task.role, task.round, task.name) == ("manager", 3, "Quality review (manager, round 3)")
    refused(app, instance_id, Forbidden, "rob may not decide", decide, app, task, "rob", "go")
    assert decide(app, task, "max", "go")["outcome"] == "go"
    assert state(app, instance_id).state == "completed"


# ----------------------------------------------------------------------------------- overrides


def test_a_deployment_may_override_any_key(app, deploy):
    entry = deploy({"rule": {"kind": "any"}},
                   gate_overrides={"review_gate": {"approvers": [{"role": "qa_lead"}],
                                                   "rule": {"kind": "any", "allow_abstain": False}}})
    assert entry["gates"]["new"] is True
    instance_id = opened(app)
    assert sorted(approvals(app, instance_id)) == ["qa_lead"]
    task = approval(app, instance_id, "qa_lead")
    refused(app, instance_id, InvalidInput, "does not allow abstaining", decide, app, task, "dana", "abstain")
    assert decide(app, task, "dana", "go")["decided"] is True


def test_deployment_overrides_are_checked(app, deploy):
    with pytest.raises(ModelRejected, match="gate 'nope' is not configured"):
        deploy(gate_overrides={"nope": {"due": "P1D"}})
    with pytest.raises(ModelRejected) as info:
        deploy(gate_overrides={"review_gate": {"rule": {"kind": "quorum", "quorum": 5}}})
    assert any("quorum" in str(issue) for issue in info.value.issues)
    assert definitions.list_definitions(app) == []


def test_an_instance_may_override_the_keys_its_gate_lists(app, deploy):
    deploy({"due": "P5D", "overridable": ["due", "approvers"]})
    instance_id = opened(app, gate_overrides={"review_gate": {"due": "P1D", "approvers": [{"role": "qa_lead"}]}})
    view = current(app, instance_id)
    assert view["due"] == (T0 + timedelta(days=1)).isoformat()
    assert view["approvers"] == [{"role": "qa_lead", "count": 1}]
    assert sorted(approvals(app, instance_id)) == ["qa_lead"]
    # Another instance without overrides keeps the file's settings.
    other = opened(app)
    assert current(app, other)["due"] == (T0 + timedelta(days=5)).isoformat()
    assert sorted(approvals(app, other)) == ["reviewer"]


@pytest.mark.parametrize("overrides, message", [
    ({"review_gate": {"rule": {"kind": "all"}}}, "gate 'review_gate' does not allow overriding 'rule' "
                                                 r"\(overridable: due\)"),
    ({"elsewhere": {"due": "P1D"}}, "gate 'elsewhere' is not configured"),
    ({"review_gate": {"due": "tomorrow"}}, "gate overrides are not valid settings"),
])
def test_instance_overrides_outside_overridable_are_refused(app, deploy, overrides, message):
    deploy({"overridable": ["due"]})
    with pytest.raises(InvalidInput, match=message):
        start(app, gate_overrides=overrides)
    assert instances.list_instances(app) == []


def test_instance_overrides_need_a_gate_configuration(app, package):
    (package / "gated.gates.yaml").unlink(missing_ok=True)
    definitions.deploy(app, package, "admin")
    with pytest.raises(InvalidInput, match="has no gate configuration"):
        start(app, gate_overrides={"review_gate": {"due": "P1D"}})


# ----------------------------------------------------------------------------------- versions


def test_a_redeployed_configuration_applies_to_gates_opened_afterwards(app, deploy):
    first = deploy({"rule": {"kind": "any"}})
    assert first["gates"] == {"version": 1, "hash": first["gates"]["hash"], "new": True}
    assert deploy({"rule": {"kind": "any"}})["gates"]["new"] is False  # unchanged file: no new version
    old = opened(app)

    second = deploy({"approvers": [{"role": "qa_lead"}], "rule": {"kind": "any"}})
    assert (second["gates"]["version"], second["gates"]["new"], second["new"]) == (2, True, False)
    # The gate already open keeps deciding under its settings ...
    view = current(app, old)
    assert view["config_version"] == 1 and view["approvers"] == [{"role": "reviewer", "count": 1}]
    assert sorted(approvals(app, old)) == ["reviewer"]
    # ... a gate opened afterwards (in a new or a running instance) uses the new ones.
    new = opened(app)
    assert current(app, new)["config_version"] == 2 and sorted(approvals(app, new)) == ["qa_lead"]
    assert decide(app, approval(app, old), "rita", "go")["decided"] is True
    assert decide(app, approval(app, new, "qa_lead"), "dana", "go")["decided"] is True


def test_a_running_instance_reaching_the_gate_again_takes_the_new_version(app, deploy):
    deploy({"rule": {"kind": "any"}})
    instance_id = opened(app)
    for reviewer in REVIEWERS:
        decide(app, approval(app, instance_id), reviewer, "recycle")
    deploy({"rule": {"kind": "any"}, "due": "P1D"})
    submit(app, instance_id, work("second cut"))
    assert [(g["round"], g["config_version"]) for g in rounds(app, instance_id)] == [(1, 1), (2, 2)]
    assert current(app, instance_id)["due"] is not None


def test_apply_to_open_gates_changes_the_settings_of_open_gates(app, deploy):
    deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "all"}})
    instance_id = opened(app)
    entry = deploy({"approvers": [{"role": "reviewer", "count": 2}], "rule": {"kind": "any"}},
                   apply_to_open_gates=True)
    assert entry["gates"]["version"] == 2
    view = current(app, instance_id)
    assert view["config_version"] == 2 and view["rule"] == "any one approval"
    result = decide(app, approval(app, instance_id), "rita", "go")
    assert (result["decided"], result["outcome"]) == (True, "go")


def test_config_version_is_the_process_own_version(app, deploy, tmp_path):
    # Another process with gates deployed first: row ids and versions differ from here on.
    other = tmp_path / "other"
    (other / "forms").mkdir(parents=True)
    (other / "gated_other.bpmn").write_text(extended_bpmn("gated_other"))
    for form in (MODELS / "forms").glob("gated_*.json"):
        shutil.copy(form, other / "forms" / form.name)
    write_gates(other, process="gated_other")
    definitions.deploy(app, other, "admin")
    assert deploy()["gates"]["version"] == 1
    instance_id = opened(app)
    assert current(app, instance_id)["config_version"] == 1


# ----------------------------------------------------------------- the flagship file, as shipped


def test_the_shipped_example_configuration_runs(app, package):
    """tests/models/gated.gates.yaml: quorum 2 with a qa_lead veto, signature, carry-over."""
    shutil.copy(MODELS / "gated.gates.yaml", package / "gated.gates.yaml")
    definitions.deploy(app, package, "admin")
    instance_id = opened(app)
    by_role = approvals(app, instance_id)
    assert sorted(by_role) == ["qa_lead", "reviewer"]
    view = current(app, instance_id)
    assert view["rule"] == "2 approvals; veto: qa_lead; at least 2 votes"
    assert view["criteria"]["scored"]["met"] is True
    decide(app, by_role["reviewer"], "rita", "go", password=password("rita"))
    result = decide(app, by_role["qa_lead"], "dana", "go", password=password("dana"))
    assert (result["decided"], result["outcome"]) == (True, "go")
    assert state(app, instance_id).state == "completed"
    assert json.dumps(gates.gates_view(app, instance_id), default=str)  # JSON-serialisable

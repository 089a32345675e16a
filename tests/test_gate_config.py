"""Gate configuration files: schema errors with lines, checks against the BPMN, overrides.

The model is tests/models/gated.bpmn (prepare -> score -> gate task `review` -> exclusive
gateway on gate_outcome: go ends, recycle back to prepare, kill stops) with its valid
configuration tests/models/gated.gates.yaml; each test breaks one thing.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from engine.adapters.gate_files import (
    find_gate_files,
    gate_config_from_text,
    gate_schema,
    key_path,
    line_of,
    load_gate_config,
    parse_gate_document,
    parse_gate_document_with_lines,
    validate_gate_document,
)
from engine.bpmn.gate_binding import (
    EXPRESSION_BUILTINS,
    check_gate_config,
    expression_names,
    known_data_names,
    process_roles,
)
from engine.bpmn.loader import load_files, load_path
from engine.domain.errors import ModelRejected
from engine.domain.gate_config import GateConfigSet, apply_overrides, from_document

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(__file__).parent / "models"
BPMN = (MODELS / "gated.bpmn").read_text()
YAML = (MODELS / "gated.gates.yaml").read_text()
FORMS = {f"forms/{p.name}": p.read_text() for p in (MODELS / "forms").glob("gated_*.json")}
NAME = "gated.gates.yaml"
ROLES = {"engineer", "reviewer", "qa_lead"}


def edit(text: str, old: str, new: str) -> str:
    assert old in text, f"test setup: {old!r} not in the text"
    return text.replace(old, new, 1)


def line_with(text: str, fragment: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in the text")


def rejected(text: str) -> list:
    with pytest.raises(ModelRejected) as caught:
        parse_gate_document(text, NAME)
    return caught.value.issues


def package(bpmn: str = BPMN):
    return load_files({"gated.bpmn": bpmn, **FORMS})


def check(yaml_text: str = YAML, bpmn: str = BPMN, roles: set[str] = ROLES):
    loaded = package(bpmn)
    return check_gate_config(gate_config_from_text(yaml_text, NAME), loaded, loaded.processes[0], roles)


def errors(issues):
    return [i for i in issues if i.severity == "error"]


def warnings(issues):
    return [i for i in issues if i.severity == "warning"]


def only(issues, key: str):
    found = [i for i in issues if i.element_id == key]
    assert found, f"no issue for {key}; got: {[str(i) for i in issues]}"
    return found[0]


# --------------------------------------------------------------------------- reading the file


def test_valid_file_reads_into_records():
    config = load_gate_config(MODELS / "gated.gates.yaml")
    assert config.process == "gated"
    assert config.hash == hashlib.sha256(YAML.encode()).hexdigest()
    assert config.path == str(MODELS / "gated.gates.yaml")
    assert config.raw == parse_gate_document(YAML, NAME)
    gate = config.gates["review_gate"]
    assert [(g.role, g.count) for g in gate.approvers] == [("reviewer", 2), ("qa_lead", 1)]
    assert gate.slots == 3
    assert (gate.rule.kind, gate.rule.quorum, gate.rule.veto_roles) == ("quorum", 2, ("qa_lead",))
    assert gate.outcomes == {"go": "to_done", "recycle": "to_rework", "kill": "to_kill"}
    assert gate.signature.startswith("Reviewed")
    assert gate.escalation.reassign_to == "qa_lead" and gate.rework.votes == "carry_over"
    assert config.lines["gates.review_gate.rule.quorum"] == line_with(YAML, "quorum: 2")


def test_load_names_the_file_as_told(tmp_path):
    (tmp_path / "x.gates.yaml").write_text(edit(YAML, "count: 2", "count: two"))
    with pytest.raises(ModelRejected) as caught:
        load_gate_config(tmp_path / "x.gates.yaml", name="pkg/x.gates.yaml")
    assert str(caught.value.issues[0]).startswith("pkg/x.gates.yaml:")


def test_wrong_type_names_file_line_and_key():
    issues = rejected(edit(YAML, "count: 2", "count: two"))
    assert len(issues) == 1
    issue = issues[0]
    assert issue.line == line_with(YAML, "count: 2")
    assert issue.element_id == "gates.review_gate.approvers[0].count"
    assert "must be an integer, not a string ('two')" in issue.message
    assert str(issue) == f"{NAME}:{issue.line}: gates.review_gate.approvers[0].count: {issue.message}"


def test_unknown_key_is_named_with_its_line_and_a_suggestion():
    text = edit(YAML, "    delegation: true", "    delegation: true\n    dalegation: false")
    issue = only(rejected(text), "gates.review_gate.dalegation")
    assert issue.line == line_with(text, "dalegation")
    assert "unknown key 'dalegation'" in issue.message and "did you mean 'delegation'" in issue.message


def test_unknown_top_level_key():
    issue = only(rejected(YAML + "version: 2\n"), "version")
    assert issue.line == YAML.count("\n") + 1


def test_missing_approvers():
    text = re.sub(r"    approvers:\n(      .*\n)+", "", YAML)
    issue = only(rejected(text), "gates.review_gate.approvers")
    assert "missing required key 'approvers'" in issue.message
    assert issue.line == line_with(text, "review_gate:")


def test_empty_approver_list():
    text = re.sub(r"    approvers:\n(      .*\n)+", "    approvers: []\n", YAML)
    issue = only(rejected(text), "gates.review_gate.approvers")
    assert "at least 1" in issue.message


def test_bad_duration():
    issue = only(rejected(edit(YAML, "due: P3D", "due: 3 days")), "gates.review_gate.due")
    assert issue.line == line_with(YAML, "due: P3D")
    assert "ISO 8601 duration" in issue.message and "'3 days'" in issue.message


@pytest.mark.parametrize("value", ["PT4H", "P3D", "P1W", "P1DT12H", "PT0.5S", "P1Y2M"])
def test_good_durations(value):
    parse_gate_document(edit(YAML, "due: P3D", f"due: {value}"), NAME)


@pytest.mark.parametrize("value", ["P", "PT", "P1DT", "pt4h", "4h", "P1.5D"])
def test_bad_durations(value):
    assert only(rejected(edit(YAML, "due: P3D", f"due: {value}")), "gates.review_gate.due")


def test_quorum_kind_without_quorum():
    text = edit(YAML, "      quorum: 2\n", "")
    issue = only(rejected(text), "gates.review_gate.rule.quorum")
    assert "missing required key 'quorum'" in issue.message and "rule kind 'quorum'" in issue.message
    assert issue.line == line_with(text, "rule:")


def test_percentage_kind_needs_a_valid_percentage():
    text = edit(YAML, "kind: quorum\n      quorum: 2", "kind: percentage")
    assert "percentage" in only(rejected(text), "gates.review_gate.rule.percentage").message
    text = edit(YAML, "kind: quorum\n      quorum: 2", "kind: percentage\n      percentage: 0")
    assert "more than 0" in only(rejected(text), "gates.review_gate.rule.percentage").message
    text = edit(YAML, "kind: quorum\n      quorum: 2", "kind: percentage\n      percentage: 150")
    assert "at most 100" in only(rejected(text), "gates.review_gate.rule.percentage").message


def test_unknown_rule_kind():
    issue = only(rejected(edit(YAML, "kind: quorum", "kind: majority")), "gates.review_gate.rule.kind")
    assert "must be one of: any, all, quorum, percentage, n_of_m" in issue.message


def test_outcomes_need_go_and_a_negative_one():
    text = re.sub(r"      recycle: to_rework\n      kill: to_kill\n", "", YAML)
    issue = only(rejected(text), "gates.review_gate.outcomes")
    assert "at least one negative outcome" in issue.message
    text = edit(YAML, "      go: to_done\n", "")
    assert "missing required key 'go'" in only(rejected(text), "gates.review_gate.outcomes.go").message
    text = edit(YAML, "kill: to_kill", "abort: to_kill")
    assert "unknown key 'abort'" in only(rejected(text), "gates.review_gate.outcomes.abort").message


def test_escalation_keys_come_in_pairs():
    text = edit(YAML, "      reassign_to: qa_lead\n", "")
    issue = only(rejected(text), "gates.review_gate.escalation.reassign_after")
    assert "'reassign_after' needs 'reassign_to'" in issue.message
    text = edit(YAML, "      remind_after: P2D", "      remind_after: P2D\n      auto_decide: hold")
    assert "needs 'auto_decide_after'" in only(rejected(text), "gates.review_gate.escalation.auto_decide").message


def test_overridable_keys_are_a_fixed_list():
    issue = only(rejected(edit(YAML, "[approvers, due, escalation]", "[approvers, outcomes]")),
                 "gates.review_gate.overridable[1]")
    assert "must be one of" in issue.message and "'outcomes'" in issue.message


def test_bad_gate_id():
    text = edit(YAML, "  review_gate:", "  review gate:")
    issue = only(rejected(text), "gates.review gate")
    assert "gate id" in issue.message


def test_every_problem_is_reported_at_once_in_line_order():
    text = edit(edit(edit(YAML, "count: 2", "count: 0"), "due: P3D", "due: soon"), "votes: carry_over", "votes: keep")
    issues = rejected(text)
    assert [i.element_id for i in issues] == ["gates.review_gate.approvers[0].count", "gates.review_gate.due",
                                              "gates.review_gate.rework.votes"]
    assert [i.line for i in issues] == sorted(i.line for i in issues)


def test_duplicate_key():
    text = edit(YAML, "    due: P3D\n", "    due: P3D\n    due: P4D\n")
    issue = only(rejected(text), "gates.review_gate.due")
    assert f"first on line {line_with(YAML, 'due: P3D')}" in issue.message


def test_yaml_syntax_error_has_a_line():
    text = edit(YAML, "    title: Quality review", "    title: [Quality review")
    issues = rejected(text)
    assert len(issues) == 1 and issues[0].line is not None and "not valid YAML" in issues[0].message


@pytest.mark.parametrize("text, fragment", [("", "empty"), ("- a\n- b\n", "must be a mapping"),
                                            ("gates: {}\n", "missing required key 'process'")])
def test_not_a_gates_document(text, fragment):
    issues = rejected(text)
    assert any(fragment in i.message for i in issues), [str(i) for i in issues]


def test_alias_bomb_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 8)]
    issues = rejected("\n".join(lines) + "\nprocess: gated\n")
    assert "too large" in issues[0].message


def test_keys_are_read_as_written():
    # YAML 1.1 would read `on` and `no` as booleans; gate ids and keys are names.
    text = edit(YAML, "review_gate:", "on:")
    assert "on" in parse_gate_document(text, NAME)["gates"]


def test_key_paths_and_lines():
    assert key_path(["gates", "g", "approvers", 0, "role"]) == "gates.g.approvers[0].role"
    lines = {"": 1, "gates": 3, "gates.g": 4, "gates.g.approvers[0]": 6}
    assert line_of(lines, "gates.g.approvers[0].role") == 6
    assert line_of(lines, "gates.g.rule.quorum") == 4
    assert line_of(lines, "process") == 1
    assert line_of(None, "gates") is None


def test_validate_a_document_without_lines():
    doc = parse_gate_document(YAML, NAME)
    assert validate_gate_document(doc, NAME) == []
    doc["gates"]["review_gate"]["rule"]["quorum"] = "two"
    issues = validate_gate_document(doc, NAME)
    assert [(i.element_id, i.line) for i in issues] == [("gates.review_gate.rule.quorum", None)]


# --------------------------------------------------------------------------- finding the files


def test_find_gate_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("a.gates.yaml", "sub/b.gates.yml", ".git/c.gates.yaml", "order.bpmn", "order.gates.yaml.bak",
                 "legacy.bpmn20.xml", "legacy.gates.yml"):
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_gate_files(tmp_path)] == \
        ["a.gates.yaml", "legacy.gates.yml", "sub/b.gates.yml"]
    assert find_gate_files(tmp_path / "order.bpmn") == []
    (tmp_path / "order.gates.yaml").write_text("x")
    assert find_gate_files(tmp_path / "order.bpmn") == [tmp_path / "order.gates.yaml"]
    assert find_gate_files(tmp_path / "legacy.bpmn20.xml") == [tmp_path / "legacy.gates.yml"]
    assert find_gate_files(tmp_path / "a.gates.yaml") == [tmp_path / "a.gates.yaml"]
    assert find_gate_files(tmp_path / "missing") == []
    assert find_gate_files(MODELS / "gated.bpmn") == [MODELS / "gated.gates.yaml"]


# --------------------------------------------------------------------------- against the process


def test_valid_configuration_fits_the_model():
    loaded = load_path(MODELS / "gated.bpmn")
    process = loaded.processes[0]
    config = load_gate_config(MODELS / "gated.gates.yaml")
    assert check_gate_config(config, loaded, process, process_roles(process)) == []
    assert check_gate_config(config, loaded, None, ROLES) == []  # the process looked up by key
    assert process_roles(process) == {"engineer", "reviewer", "qa_lead"}


def test_process_not_in_package():
    issues = check(edit(YAML, "process: gated", "process: gate"))
    assert len(issues) == 1
    assert issues[0].element_id == "process" and issues[0].line == 2
    assert "process 'gate' is not in the package (its processes: gated)" in issues[0].message


def test_gate_id_not_in_the_bpmn():
    issues = check(edit(YAML, "  review_gate:", "  qa_gate:"))
    issue = only(errors(issues), "gates.qa_gate")
    assert "no BPMN element" in issue.message and "gates in the BPMN: review_gate" in issue.message
    assert issue.line == line_with(YAML, "review_gate:")
    # ... and the BPMN's own gate is now unconfigured: a warning on the BPMN element.
    warning = only(warnings(issues), "review")
    assert warning.path == "gated.bpmn" and warning.line == line_with(BPMN, 'id="review"')
    assert "runs as a plain user task" in warning.message


def test_gate_element_without_configuration_is_a_warning():
    bpmn = edit(BPMN, '<camunda:property name="phase" value="Build"/></camunda:properties>',
                '<camunda:property name="phase" value="Build"/><camunda:property name="gate" value="entry_gate"/>'
                '</camunda:properties>')
    issues = check(bpmn=bpmn)
    assert errors(issues) == []
    warning = only(warnings(issues), "prepare")
    assert "gate 'entry_gate'" in warning.message and warning.line == line_with(bpmn, 'id="prepare"')


def test_unknown_roles():
    issues = check(roles={"engineer", "reviewer"})
    assert {i.element_id for i in errors(issues)} == {
        "gates.review_gate.approvers[1].role", "gates.review_gate.escalation.reassign_to",
        "gates.review_gate.rework.escalate_to"}
    issue = only(issues, "gates.review_gate.approvers[1].role")
    assert "unknown role 'qa_lead'" in issue.message and "known roles: engineer, reviewer" in issue.message
    assert issue.line == line_with(YAML, "- role: qa_lead")


def test_veto_role_must_be_an_approver_role():
    issue = only(check(edit(YAML, "veto_roles: [qa_lead]", "veto_roles: [engineer]")),
                 "gates.review_gate.rule.veto_roles[0]")
    assert "veto role 'engineer' is not an approver role" in issue.message


def test_same_role_in_two_groups():
    issue = only(check(edit(YAML, "- role: qa_lead", "- role: reviewer")), "gates.review_gate.approvers[1].role")
    assert "already approver group 0" in issue.message


def test_quorum_larger_than_the_slots():
    issue = only(check(edit(YAML, "quorum: 2", "quorum: 4")), "gates.review_gate.rule.quorum")
    assert "quorum 4 is larger than the 3 approver slot(s) (2 reviewer + 1 qa_lead)" in issue.message
    assert issue.line == line_with(YAML, "quorum: 2")
    assert errors(check(edit(YAML, "quorum: 2", "quorum: 3"))) == []


def test_min_participation_larger_than_the_slots():
    issue = only(check(edit(YAML, "min_participation: 2", "min_participation: 5")),
                 "gates.review_gate.rule.min_participation")
    assert "min_participation 5 is larger than the 3 approver slot(s)" in issue.message


def test_n_of_m_with_a_single_group_is_fine():
    text = re.sub(r"      kind: quorum\n      quorum: 2\n      veto_roles: \[qa_lead\]\n", "      kind: n_of_m\n", YAML)
    text = edit(text, "      - role: qa_lead\n", "")
    assert check(text) == []


def test_outcome_flow_that_does_not_exist():
    issue = only(check(edit(YAML, "kill: to_kill", "kill: to_stop")), "gates.review_gate.outcomes.kill")
    assert "no sequence flow 'to_stop'" in issue.message
    assert "flows after the gate: f_decided, to_done, to_kill, to_rework" in issue.message
    assert issue.line == line_with(YAML, "kill: to_kill")


def test_outcome_flow_elsewhere_in_the_process():
    issue = only(check(edit(YAML, "kill: to_kill", "kill: f_score")), "gates.review_gate.outcomes.kill")
    assert "sequence flow 'f_score' (prepare → score) does not leave the gate task" in issue.message


def test_outcome_flow_whose_condition_does_not_mention_the_outcome():
    bpmn = edit(BPMN, 'gate_outcome == "recycle"', 'gate_outcome == "rework"')
    issues = check(bpmn=bpmn)
    assert errors(issues) == []
    issue = only(warnings(issues), "gates.review_gate.outcomes.recycle")
    assert "condition of flow 'to_rework' (gate_outcome == \"rework\") does not hold" in issue.message
    assert "no flow of gateway 'review_decided' applies" in issue.message


def test_outcomes_wired_to_the_wrong_flows():
    text = edit(edit(YAML, "go: to_done", "go: to_rework"), "recycle: to_rework", "recycle: to_done")
    issues = check(text)
    assert errors(issues) == []
    go = only(warnings(issues), "gates.review_gate.outcomes.go")
    assert "gateway 'review_decided' takes flow 'to_done' instead" in go.message
    assert only(warnings(issues), "gates.review_gate.outcomes.recycle")


def test_conditions_the_check_cannot_evaluate_must_mention_the_outcome():
    bpmn = edit(BPMN, 'gate_outcome == "kill"', 'score &lt; 10')
    issue = only(warnings(check(bpmn=bpmn)), "gates.review_gate.outcomes.kill")
    assert "does not mention 'kill'" in issue.message
    bpmn = edit(BPMN, 'gate_outcome == "kill"', 'gate_outcome == "kill" and score &lt; 10')
    assert check(bpmn=bpmn) == []


def test_routing_on_decision_with_a_default_flow():
    # The flagship models route on `decision` (approve/reject) with the negative path as default.
    bpmn = edit(BPMN, '<bpmn:exclusiveGateway id="review_decided" name="Outcome?">',
                '<bpmn:exclusiveGateway id="review_decided" name="Outcome?" default="to_rework">')
    bpmn = edit(bpmn, 'gate_outcome == "go"', 'decision == "approve"')
    bpmn = edit(bpmn, '<bpmn:conditionExpression>gate_outcome == "recycle"</bpmn:conditionExpression>', '')
    text = edit(YAML, "      kill: to_kill\n", "")
    assert check(text, bpmn) == []
    assert check(YAML, bpmn) == []  # kill still has its own condition
    # recycle takes the default flow: wired to the kill flow, that is reported.
    issue = only(warnings(check(edit(YAML, "recycle: to_rework", "recycle: to_kill"), bpmn)),
                 "gates.review_gate.outcomes.recycle")
    assert "does not hold for gate_outcome == \"recycle\" (decision == \"reject\")" in issue.message
    assert "takes flow 'to_rework' instead" in issue.message


def test_juel_conditions_are_understood():
    bpmn = edit(BPMN, 'gate_outcome == "go"', '${gate_outcome == "go"}')
    assert check(bpmn=bpmn) == []


def test_outcome_on_a_flow_leaving_the_gate_task_directly():
    # One flow out of the task: fine (e.g. the engine routes nothing there but the diagram says so).
    assert check(edit(YAML, "go: to_done", "go: f_decided")) == []


def test_expression_that_does_not_parse():
    issue = only(check(edit(YAML, "quality.open_blockers == 0", "quality.open_blockers = = 0")),
                 "gates.review_gate.entry_criteria.expressions[0].expression")
    assert "does not parse as Python" in issue.message
    assert issue.line == line_with(YAML, "expression: quality.pass_rate")


def test_expression_with_unknown_data():
    issue = only(check(edit(YAML, "quality.open_blockers == 0", "qualty.open_blockers == 0 and budget.ok")),
                 "gates.review_gate.entry_criteria.expressions[0].expression")
    assert "expression names unknown data: budget, qualty" in issue.message
    assert "quality" in issue.message  # the names the process does define are listed


def test_expression_names_come_from_forms_scripts_and_data_objects():
    loaded = package()
    names = known_data_names(loaded, loaded.processes[0])
    assert {"summary", "quality", "test_report", "review_notes"} <= names  # forms
    assert {"score", "blockers", "count"} <= names  # script assignments and loop targets
    assert {"risk_register", "risks"} <= names  # data object id and name
    assert {"gate_outcome", "decision"} <= names and EXPRESSION_BUILTINS <= names
    expression = "all(c > 0 for c in [score, blockers]) and sum(x for x in range(3)) > 0"
    issue = only(check(edit(YAML, "score >= 95 and len(risks or []) < 10", expression)),
                 "gates.review_gate.entry_criteria.expressions[1].expression")
    assert "unknown data: range" in issue.message  # comprehension variables c, x are not data


def test_expression_names():
    assert expression_names("quality.pass_rate >= 0.95 and quality.open_blockers == 0") == {"quality"}
    assert expression_names("[t for t in tests if t.ok and t.owner != me]") == {"tests", "me"}
    assert expression_names("{k: v for k, v in pairs}") == {"pairs"}
    assert expression_names("(lambda x, y=default: x + y + z)(1)") == {"default", "z"}
    assert expression_names("(n := len(items)) > 2 and n < 9") == {"len", "items"}
    with pytest.raises(SyntaxError):
        expression_names("a ==")


def test_duplicate_checklist_and_criterion_ids():
    text = edit(YAML, "        - id: scored", "        - id: quality_bar")
    issue = only(check(text), "gates.review_gate.entry_criteria.expressions[1].id")
    assert "'quality_bar' is used twice" in issue.message


def test_exclude_completers_of_unknown_element():
    issue = only(check(edit(YAML, "exclude_completers_of: [prepare]", "exclude_completers_of: [prepair]")),
                 "gates.review_gate.separation_of_duties.exclude_completers_of[0]")
    assert "no element 'prepair'" in issue.message and "user and manual tasks: archive, prepare, review" in issue.message
    issue = only(check(edit(YAML, "exclude_completers_of: [prepare]", "exclude_completers_of: [score]")),
                 "gates.review_gate.separation_of_duties.exclude_completers_of[0]")
    assert issue.severity == "warning" and "scriptTask" in issue.message


def test_auto_decide_must_be_one_of_the_gate_outcomes():
    text = edit(YAML, "      reassign_to: qa_lead\n",
                "      reassign_to: qa_lead\n      auto_decide_after: P10D\n      auto_decide: hold\n")
    issue = only(check(text), "gates.review_gate.escalation.auto_decide")
    assert "auto_decide 'hold' is not one of the gate's outcomes (go, kill, recycle)" in issue.message
    text = edit(YAML, "      reassign_to: qa_lead\n",
                "      reassign_to: qa_lead\n      auto_decide_after: P10D\n      auto_decide: kill\n")
    assert check(text) == []


def test_escalation_order_is_checked():
    issue = only(check(edit(YAML, "remind_after: P2D", "remind_after: P5D")),
                 "gates.review_gate.escalation.remind_after")
    assert issue.severity == "warning" and "not earlier than reassign_after (P4D)" in issue.message


def test_durations_and_rules_are_checked_even_without_the_schema():
    # Configurations built from a document (e.g. after overrides) get the same checks.
    doc = parse_gate_document(YAML, NAME)
    gate = doc["gates"]["review_gate"]
    gate["due"] = "three days"
    gate["rule"] = {"kind": "quorum"}
    config = GateConfigSet("gated", from_document(doc), doc, path=NAME)
    loaded = package()
    issues = check_gate_config(config, loaded, loaded.processes[0], ROLES)
    assert {i.element_id for i in errors(issues)} == {"gates.review_gate.due", "gates.review_gate.rule.quorum"}
    assert all(i.line is None for i in issues)


# --------------------------------------------------------------------------- overrides


def test_deployment_may_override_anything():
    doc = parse_gate_document(YAML, NAME)
    merged = apply_overrides(doc, {"review_gate": {"rule": {"kind": "all"}, "delegation": False}},
                             only_overridable=False)
    assert merged["gates"]["review_gate"]["rule"] == {"kind": "all"}
    assert merged["gates"]["review_gate"]["delegation"] is False
    assert doc["gates"]["review_gate"]["rule"]["kind"] == "quorum"  # the original is untouched
    assert validate_gate_document(merged, NAME) == []


def test_instance_may_override_only_overridable_keys():
    doc = parse_gate_document(YAML, NAME)
    merged = apply_overrides(doc, {"review_gate": {"due": "P1D", "approvers": [{"role": "qa_lead"}]}},
                             only_overridable=True)
    gate = from_document(merged)["review_gate"]
    assert gate.due == "P1D" and [g.role for g in gate.approvers] == ["qa_lead"]
    with pytest.raises(PermissionError, match="does not allow overriding 'rule'"):
        apply_overrides(doc, {"review_gate": {"rule": {"kind": "all"}}}, only_overridable=True)


def test_override_of_an_unknown_gate():
    doc = parse_gate_document(YAML, NAME)
    with pytest.raises(KeyError):
        apply_overrides(doc, {"other": {"due": "P1D"}}, only_overridable=False)


def test_overridden_document_is_validated_again():
    doc = parse_gate_document(YAML, NAME)
    merged = apply_overrides(doc, {"review_gate": {"due": "tomorrow"}}, only_overridable=True)
    issues = validate_gate_document(merged, NAME)
    assert [i.element_id for i in issues] == ["gates.review_gate.due"]


# --------------------------------------------------------------------------- the published schema


def test_docs_schema_is_the_packaged_schema():
    docs = (ROOT / "docs" / "schemas" / "gates.schema.json").read_bytes()
    packaged = (ROOT / "engine" / "domain" / "schemas" / "gates.schema.json").read_bytes()
    assert docs == packaged
    assert json.loads(docs) == gate_schema()
    assert '"domain/schemas/*.json"' in (ROOT / "pyproject.toml").read_text()  # shipped with the package


def test_schema_is_valid_2020_12_and_documents_every_property():
    schema = gate_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                if not (isinstance(sub, dict) and sub.get("title") and sub.get("description")):
                    missing.append(f"{where}.{name}")
            if node.get("type") == "object" and "additionalProperties" not in node:
                missing.append(f"{where} (additionalProperties)")
            for key, sub in node.items():
                if key != "if":  # conditions restate properties, they do not define them
                    walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{where}[{index}]")

    walk(schema, "#")
    assert missing == []


def test_gate_keys_are_the_ones_the_records_read():
    gate_keys = set(gate_schema()["$defs"]["gate"]["properties"])
    assert gate_keys == {"title", "approvers", "rule", "separation_of_duties", "entry_criteria", "outcomes",
                         "signature", "due", "escalation", "rework", "delegation", "overridable"}


def test_the_guide_example_is_valid():
    guide = (ROOT / "docs" / "gates.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", guide, re.S)
    assert blocks, "docs/gates.md has no yaml example"
    doc, lines = parse_gate_document_with_lines(blocks[0], "docs/gates.md")
    assert doc["gates"]


def test_the_guide_fragments_are_valid_settings():
    guide = (ROOT / "docs" / "gates.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", guide, re.S)[1:]:
        fragment = yaml.safe_load(block)
        if "design_review" in fragment:  # a --gate-overrides file: {gate id: {key: value}}
            doc = apply_overrides(parse_gate_document(blocks_first(guide), NAME), fragment, only_overridable=False)
        else:
            gate = {"approvers": [{"role": "x"}], "outcomes": {"go": "a", "kill": "b"}, **fragment}
            doc = {"process": "p", "gates": {"g": gate}}
        assert validate_gate_document(doc, NAME) == [], block


def blocks_first(guide: str) -> str:
    return re.findall(r"```yaml\n(.*?)```", guide, re.S)[0]

"""The loader's public API: load_path, load_files, check_path, issues, forms and routing facts."""
from __future__ import annotations

import json
import shutil

import pytest

from engine.bpmn.loader import SERIALIZER_CONFIG, check_path, create_serializer, load_files, load_path
from engine.domain.errors import Issue, ModelRejected
from tests.bpmn.builders import HERE, linear, process_xml

ROUNDTRIP = HERE / "roundtrip"


def rejected(files) -> ModelRejected:
    with pytest.raises(ModelRejected) as error:
        load_files(files if isinstance(files, dict) else {"model.bpmn": files})
    return error.value


# --------------------------------------------------------------------------- loading


def test_load_path_folder_relative_names_and_files_per_process():
    package = load_path(ROUNDTRIP)
    assert set(package.files) == {"order.bpmn", "review.bpmn", "dmn/discount.dmn", "forms/approve_order.json",
                                  "forms/approve_order.uischema.json"}
    processes = {p.key: p for p in package.processes}
    assert set(processes) == {"order", "review"}
    order = processes["order"]
    assert order.name == "Order"
    assert order.files == ["order.bpmn", "review.bpmn", "dmn/discount.dmn", "forms/approve_order.json",
                           "forms/approve_order.uischema.json"]
    assert processes["review"].files == ["review.bpmn"]
    assert set(order.subprocess_specs) == {"ship", "review"}
    # every flow node, including those of the embedded sub-process and of the called process
    assert {"start", "approve", "approveTimeout", "ship", "pack", "shipEnd", "callReview", "check"} <= set(order.elements)
    assert package.forms["approve_order"]["uiSchema"] == {"approved": {"ui:widget": "radio"}}
    assert package.warnings == []


def test_load_files_gives_identical_specs_to_load_path():
    from_path = load_path(ROUNDTRIP)
    from_files = load_files(dict(from_path.files))
    serializer = create_serializer()
    for first, second in zip(from_path.processes, from_files.processes):
        assert first.key == second.key
        assert serializer.to_dict(first.spec) == serializer.to_dict(second.spec)
        assert {k: serializer.to_dict(v) for k, v in first.subprocess_specs.items()} == \
            {k: serializer.to_dict(v) for k, v in second.subprocess_specs.items()}
        assert {k: v.to_dict() for k, v in first.elements.items()} == {k: v.to_dict() for k, v in second.elements.items()}
        assert first.files == second.files
    assert from_path.forms == from_files.forms


def test_load_path_single_file_uses_sibling_forms(tmp_path):
    shutil.copytree(ROUNDTRIP, tmp_path / "pkg")
    (tmp_path / "pkg" / "order.bpmn").unlink()
    package = load_path(tmp_path / "pkg" / "review.bpmn")
    assert set(package.files) == {"review.bpmn", "forms/approve_order.json", "forms/approve_order.uischema.json"}
    assert [p.key for p in package.processes] == ["review"]


def test_load_path_single_file_uses_the_repository_forms_dir(tmp_path):
    model = tmp_path / "m.bpmn"
    model.write_text(process_xml(linear('<bpmn:userTask id="t" camunda:candidateGroups="staff">'
                                        '<bpmn:extensionElements><camunda:properties>'
                                        '<camunda:property name="form" value="shared"/>'
                                        '</camunda:properties></bpmn:extensionElements></bpmn:userTask>')))
    with pytest.raises(ModelRejected) as error:
        load_path(model)
    assert "form 'shared' not found (looked in forms/shared.json)" in str(error.value)
    forms = tmp_path / "repo_forms"
    forms.mkdir()
    (forms / "shared.json").write_text(json.dumps({"type": "object", "properties": {"x": {"type": "string"}}}))
    package = load_path(model, forms_dir=forms)
    assert package.processes[0].elements["t"].form == "shared"
    assert "forms/shared.json" in package.files


def test_spiff_style_form_files(tmp_path):
    (tmp_path / "m.bpmn").write_text(process_xml(linear(
        '<bpmn:userTask id="t"><bpmn:extensionElements><spiffworkflow:properties>'
        '<spiffworkflow:property name="formJsonSchemaFilename" value="ask-schema.json"/>'
        '<spiffworkflow:property name="role" value="clerks"/>'
        '</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>')))
    (tmp_path / "ask-schema.json").write_text(json.dumps({"type": "object"}))
    (tmp_path / "ask-uischema.json").write_text(json.dumps({"ui:order": []}))
    package = load_path(tmp_path)
    info = package.processes[0].elements["t"]
    assert info.form == "ask" and info.roles == ["clerks"]
    assert package.forms["ask"]["uiSchema"] == {"ui:order": []}
    assert package.processes[0].files == ["m.bpmn", "ask-schema.json", "ask-uischema.json"]


def test_load_files_with_parsed_forms():
    text = process_xml(linear('<bpmn:userTask id="t" camunda:formKey="app:forms/ask.form" camunda:assignee="ann"/>'))
    package = load_files({"m.bpmn": text}, forms={"ask": {"type": "object"}})
    assert package.processes[0].elements["t"].form == "ask"


def test_check_path_never_raises_for_model_problems(tmp_path):
    (tmp_path / "bad.bpmn").write_text("<definitions")
    package, issues = check_path(tmp_path / "bad.bpmn")
    assert package is None
    assert issues[0].path == "bad.bpmn" and "malformed XML" in issues[0].message and issues[0].line == 1
    package, issues = check_path(tmp_path / "missing.bpmn")
    assert package is None and "no such file" in issues[0].message
    package, issues = check_path(ROUNDTRIP)
    assert package is not None and issues == []


def test_warnings_are_returned_with_the_package():
    text = process_xml(linear('<bpmn:userTask id="t" name="Nobody"/>'))
    package = load_files({"m.bpmn": text})
    (warning,) = package.warnings
    assert warning.severity == "warning" and warning.element_id == "t" and "routed to admins" in warning.message


# --------------------------------------------------------------------------- issues


def test_all_errors_are_reported_not_just_the_first():
    body = linear('<bpmn:serviceTask id="svc1"/>', '<bpmn:scriptTask id="groovy" scriptFormat="groovy">'
                  '<bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>', '<bpmn:complexGateway id="cx"/>')
    error = rejected(process_xml(body))
    assert {"svc1", "groovy", "cx"} <= {i.element_id for i in error.issues}
    assert error.code == "model_rejected"
    assert len(error.details["issues"]) == len(error.issues)


def test_issue_format_names_file_line_and_element():
    error = rejected({"folder/m.bpmn": process_xml(linear('<bpmn:serviceTask id="svc"/>'))})
    (issue,) = error.issues
    text = str(issue)
    assert text.startswith("folder/m.bpmn:") and ": svc: " in text
    assert issue.line == int(text.split(":")[1]) and issue.line > 1


def test_errors_in_several_files_are_all_reported():
    error = rejected({"a.bpmn": process_xml(linear('<bpmn:serviceTask id="svcA"/>'), process_id="a"),
                      "b.bpmn": process_xml(linear('<bpmn:serviceTask id="svcB"/>'), process_id="b")})
    assert {(i.path, i.element_id) for i in error.issues} == {("a.bpmn", "svcA"), ("b.bpmn", "svcB")}


def test_malformed_xml_names_the_line():
    error = rejected({"m.bpmn": '<?xml version="1.0"?>\n<definitions>\n  <process id="p">\n</definitions>\n'})
    (issue,) = error.issues
    assert issue.path == "m.bpmn" and issue.line in (3, 4) and "malformed XML" in issue.message


@pytest.mark.parametrize("text", [
    # billion laughs
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
    '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol2;</definitions>',
    # external entity
    '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">&xxe;</process></definitions>',
    # a bare DOCTYPE
    '<?xml version="1.0"?>\n<!DOCTYPE definitions SYSTEM "http://example.com/bpmn.dtd">\n'
    '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
])
def test_doctype_and_entities_are_refused_not_expanded(text):
    error = rejected({"evil.bpmn": text})
    (issue,) = error.issues
    assert issue.line == 2 and "DOCTYPE" in issue.message
    assert "root:" not in str(error)  # nothing of /etc/passwd


def test_encoding_declarations_are_honoured(tmp_path):
    text = process_xml(linear('<bpmn:userTask id="t" name="Prüfen" camunda:assignee="jörg"/>'))
    text = text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    (tmp_path / "latin.bpmn").write_bytes(text.encode("iso-8859-1"))
    package = load_path(tmp_path / "latin.bpmn")
    assert package.processes[0].elements["t"].name == "Prüfen"


def test_json_that_is_not_a_form_or_not_json(tmp_path):
    error = rejected({"m.bpmn": process_xml(linear()), "forms/broken.json": "{not json"})
    (issue,) = error.issues
    assert issue.path == "forms/broken.json" and issue.line == 1 and "not valid JSON" in issue.message
    error = rejected({"m.bpmn": process_xml(linear()), "forms/bad.json": '{"type": 12}'})
    assert "not a valid JSON Schema" in error.issues[0].message


def test_internal_errors_become_issues(monkeypatch):
    import engine.bpmn.loader as loader

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(loader, "routing_facts", explode)
    package, issues = loader._load({"m.bpmn": process_xml(linear())}, None, [])
    assert package is None and "internal error" in issues[0].message and "boom" in issues[0].message


def test_exceptions_from_spiffworkflow_name_the_element():
    # A multi-instance activity with neither cardinality nor collection: SpiffWorkflow's own check.
    body = linear('<bpmn:userTask id="mi" camunda:assignee="a"><bpmn:multiInstanceLoopCharacteristics/></bpmn:userTask>')
    (issue,) = rejected(process_xml(body)).issues
    assert issue.element_id == "mi" and issue.line and "cardinality" in issue.message


# --------------------------------------------------------------------------- routing facts


def test_routing_facts():
    order = {p.key: p for p in load_path(ROUNDTRIP).processes}["order"]
    approve = order.elements["approve"]
    assert approve.tag == "userTask" and approve.name == "Approve order"
    assert approve.roles == ["managers", "sales"]  # camunda:candidateGroups, trimmed
    assert approve.form == "approve_order"  # embedded:app:forms/approve_order.json
    assert approve.due == "P2D"
    assert approve.phase == "intake"  # from the process
    assert approve.documentation == "Check the order and approve it."
    pack = order.elements["pack"]
    assert pack.phase == "fulfilment"  # from the enclosing sub-process
    assert pack.assignee == "packer" and pack.assignee_expression is True
    check = order.elements["check"]
    assert check.roles == ["Auditors"] and check.lane == "Auditors" and check.process == "review"
    assert order.find_element("check", "review") is check


def test_role_sources_in_priority_order():
    def roles(task: str, lanes: bool = True) -> list[str]:
        body = linear(task)
        if lanes:
            body = ('<bpmn:laneSet id="ls"><bpmn:lane id="lane1" name="Clerks"><bpmn:flowNodeRef>t</bpmn:flowNodeRef>'
                    '</bpmn:lane></bpmn:laneSet>\n') + body
        return load_files({"m.bpmn": process_xml(body)}).processes[0].elements["t"].roles

    prop = ('<bpmn:extensionElements><camunda:properties><camunda:property name="role" value="auditor"/>'
            '</camunda:properties></bpmn:extensionElements>')
    assert roles(f'<bpmn:userTask id="t" camunda:candidateGroups=" a , b ">{prop}</bpmn:userTask>') == ["a", "b"]
    assert roles(f'<bpmn:userTask id="t">{prop}</bpmn:userTask>') == ["auditor"]
    assert roles('<bpmn:manualTask id="t"/>') == ["Clerks"]


def test_candidate_groups_expression_and_zeebe_assignment():
    body = linear('<bpmn:userTask id="t" camunda:candidateGroups="${approverGroups}"/>',
                  '<bpmn:userTask id="z"><bpmn:extensionElements><zeebe:assignmentDefinition assignee="=owner" '
                  'candidateGroups="ops"/></bpmn:extensionElements></bpmn:userTask>')
    package = load_files({"m.bpmn": process_xml(body)})
    elements = package.processes[0].elements
    assert elements["t"].roles == [] and elements["t"].roles_expression == "approverGroups"
    assert elements["z"].roles == ["ops"] and elements["z"].assignee == "owner"
    assert package.warnings == []  # an expression is a routing, not "routed to admins"


def test_external_forms_warn_and_camunda_generated_forms_become_schemas():
    body = linear('<bpmn:userTask id="html" camunda:formKey="embedded:app:forms/approve.html" camunda:assignee="a"/>',
                  '<bpmn:userTask id="gen" camunda:assignee="a"><bpmn:extensionElements><camunda:formData>'
                  '<camunda:formField id="amount" label="Amount" type="long"><camunda:validation>'
                  '<camunda:constraint name="required"/><camunda:constraint name="min" config="1"/>'
                  '</camunda:validation></camunda:formField>'
                  '<camunda:formField id="kind" type="enum"><camunda:value id="a" name="A"/></camunda:formField>'
                  '</camunda:formData></bpmn:extensionElements></bpmn:userTask>')
    package = load_files({"m.bpmn": process_xml(body)})
    elements = package.processes[0].elements
    assert elements["html"].form is None
    assert any(w.element_id == "html" and "external form" in w.message for w in package.warnings)
    assert elements["gen"].form == "p.gen"
    schema = package.forms["p.gen"]
    assert schema["required"] == ["amount"]
    assert schema["properties"]["amount"] == {"type": "integer", "title": "Amount", "minimum": 1}
    assert schema["properties"]["kind"]["oneOf"] == [{"const": "a", "title": "A"}]


def test_missing_json_form_is_an_error():
    body = linear('<bpmn:userTask id="t" camunda:formKey="approve" camunda:assignee="a"/>')
    error = rejected(process_xml(body))
    assert error.issues[0].element_id == "t"
    assert "form 'approve' not found (looked in forms/approve.json)" in error.issues[0].message


def test_element_ids_reused_by_a_called_process_stay_apart():
    caller = process_xml(linear('<bpmn:callActivity id="call" calledElement="helper"/>',
                                '<bpmn:userTask id="t" camunda:candidateGroups="callers"/>'), process_id="main")
    helper = process_xml(linear('<bpmn:userTask id="t" camunda:candidateGroups="helpers"/>'), process_id="helper")
    main = {p.key: p for p in load_files({"main.bpmn": caller, "helper.bpmn": helper}).processes}["main"]
    assert main.find_element("t", "main").roles == ["callers"]
    assert main.find_element("t", "helper").roles == ["helpers"]
    assert main.elements["helper:t"].roles == ["helpers"]


def test_serializer_config_covers_the_parser_classes():
    from engine.bpmn.parser import DecisionTask, MessageEventDefinition, ParallelMultiInstanceTask

    for cls in (DecisionTask, MessageEventDefinition, ParallelMultiInstanceTask):
        assert cls in SERIALIZER_CONFIG


def test_issue_type_is_the_shared_one():
    error = rejected(process_xml(linear('<bpmn:serviceTask id="svc"/>')))
    assert all(isinstance(i, Issue) for i in error.issues)


def test_user_and_manual_tasks_are_manual_specs():
    order = {p.key: p for p in load_path(ROUNDTRIP).processes}["order"]
    assert order.spec.task_specs["approve"].manual is True
    assert order.subprocess_specs["review"].task_specs["check"].manual is True
    assert order.spec.task_specs["prepare"].manual is False


def test_spiff_arena_pre_and_post_scripts_run():
    from SpiffWorkflow.bpmn import BpmnWorkflow

    task = ('<bpmn:scriptTask id="s"><bpmn:extensionElements>'
            '<spiffworkflow:preScript>before = 1</spiffworkflow:preScript>'
            '<spiffworkflow:postScript>after = during + 1</spiffworkflow:postScript>'
            '</bpmn:extensionElements><bpmn:script>during = before + 1</bpmn:script></bpmn:scriptTask>')
    process = load_files({"m.bpmn": process_xml(linear(task))}).processes[0]
    workflow = BpmnWorkflow(process.spec, process.subprocess_specs)
    workflow.do_engine_steps()
    assert workflow.completed and workflow.data == {"before": 1, "during": 2, "after": 3}

"""One test (or more) per known trap of the BPMN corpus README (traps 1–12).

Each trap is a way SpiffWorkflow 3.2.0 silently mis-runs or unclearly rejects a model; the tests
check that Phasegate either runs the model correctly or rejects it naming the element. Models
come from the corpus (skipped when it is missing) or are written inline.
"""
from __future__ import annotations

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.loader import check_path, load_files, load_path
from engine.domain.errors import ModelRejected
from tests.bpmn.builders import HERE, linear, process_xml
from tests.conformance.harness import CORPUS, corpus_available, package_for

needs_corpus = pytest.mark.skipif(not corpus_available(), reason=f"BPMN corpus not found at {CORPUS}")


def rejected(files: dict[str, str] | str) -> ModelRejected:
    if isinstance(files, str):
        files = {"model.bpmn": files}
    with pytest.raises(ModelRejected) as error:
        load_files(files)
    return error.value


def assert_names(error: ModelRejected, element_id: str, *words: str) -> None:
    matching = [i for i in error.issues if i.element_id == element_id]
    assert matching, f"no issue names {element_id}: {error}"
    text = " ".join(i.message for i in matching)
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    assert all(i.line for i in matching), "issues carry the line"


def start(process) -> BpmnWorkflow:
    workflow = BpmnWorkflow(process.spec, process.subprocess_specs)
    workflow.do_engine_steps()
    return workflow


def ready(workflow) -> list[str]:
    return sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY))


def complete(workflow, element_id: str, **data) -> None:
    task = next(t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.bpmn_id == element_id)
    task.data.update(data)
    task.run()
    workflow.do_engine_steps()


# --------------------------------------------------------------------------- trap 1


@needs_corpus
def test_trap1_holiday_request_is_rejected_for_its_service_tasks_not_silently_dropped():
    error = rejected(package_for("regression/holidayRequest.bpmn20.xml"))
    assert_names(error, "externalSystemCall", "flowable:class", "not available in Phasegate")
    assert_names(error, "sendRejectionMail", "flowable:class")
    # no other complaint: the flows without ids were kept
    assert {i.element_id for i in error.issues} == {"externalSystemCall", "sendRejectionMail"}


def test_trap1_flows_without_ids_are_kept_and_the_approval_task_runs():
    package = load_path(HERE / "holiday_request_no_service.bpmn20.xml")
    (process,) = package.processes
    assert process.elements["approveTask"].roles == ["managers"]
    assert process.elements["holidayApprovedTask"].assignee == "employee"
    workflow = start(process)
    assert ready(workflow) == ["approveTask"]
    complete(workflow, "approveTask", approved=True, employee="kermit")
    assert ready(workflow) == ["holidayApprovedTask"]
    complete(workflow, "holidayApprovedTask")
    assert workflow.completed

    workflow = start(process)
    complete(workflow, "approveTask", approved=False)
    assert workflow.completed  # `${!approved}` took the reject branch


def test_trap1_generated_flow_ids_are_deterministic():
    text = (HERE / "holiday_request_no_service.bpmn20.xml").read_text()
    first = load_files({"h.bpmn20.xml": text}).processes[0].spec
    second = load_files({"h.bpmn20.xml": text}).processes[0].spec
    assert sorted(first.task_specs) == sorted(second.task_specs)
    assert [o.name for o in first.task_specs["decision"].outputs] == \
        [o.name for o in second.task_specs["decision"].outputs]


# --------------------------------------------------------------------------- trap 2

LINKED = linear(
    '<bpmn:userTask id="before"/>',
    '<bpmn:intermediateThrowEvent id="goTo" name="Jump"><bpmn:linkEventDefinition name="L1"/></bpmn:intermediateThrowEvent>',
    end='<bpmn:endEvent id="unused"/>',
).replace('<bpmn:sequenceFlow id="f3" sourceRef="goTo" targetRef="unused"/>', "") + """
    <bpmn:intermediateCatchEvent id="landing" name="Jump"><bpmn:linkEventDefinition name="L1"/></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="after"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="g1" sourceRef="landing" targetRef="after"/>
    <bpmn:sequenceFlow id="g2" sourceRef="after" targetRef="end"/>
"""


def test_trap2_link_events_run_as_a_flow_from_throw_to_catch():
    body = LINKED.replace('<bpmn:endEvent id="unused"/>', "")
    package = load_files({"links.bpmn": process_xml(body)})
    (process,) = package.processes
    assert process.elements["goTo"].tag == "intermediateThrowEvent"  # ids and tags kept
    assert process.elements["landing"].tag == "intermediateCatchEvent"
    workflow = start(process)
    complete(workflow, "before")
    assert ready(workflow) == ["after"]
    complete(workflow, "after")
    assert workflow.completed


def test_trap2_unpaired_link_events_are_rejected_by_element():
    body = LINKED.replace('<bpmn:endEvent id="unused"/>', "").replace('name="L1"/></bpmn:intermediateCatchEvent>',
                                                                      'name="L2"/></bpmn:intermediateCatchEvent>')
    error = rejected(process_xml(body))
    assert_names(error, "goTo", "no link catch event")
    assert_names(error, "landing", "no link throw event")


@needs_corpus
def test_trap2_corpus_link_model_is_not_silently_run():
    # B.2.0 is not executable; forced executable it is still rejected for other reasons, by element.
    files = package_for("regression/B.2.0.bpmn")
    text = files["B.2.0.bpmn"].replace('isExecutable="false"', 'isExecutable="true"')
    error = rejected({"B.2.0.bpmn": text})
    assert all(i.element_id for i in error.issues)
    assert not any("link" in i.message for i in error.issues)  # the link pair itself was understood


# --------------------------------------------------------------------------- trap 3


def test_trap3_compensation_throw_events_are_rejected():
    body = linear('<bpmn:intermediateThrowEvent id="undo"><bpmn:compensateEventDefinition/></bpmn:intermediateThrowEvent>')
    assert_names(rejected(process_xml(body)), "undo", "compensation")
    body = linear(end='<bpmn:endEvent id="end"><bpmn:compensateEventDefinition/></bpmn:endEvent>')
    assert_names(rejected(process_xml(body)), "end", "compensation")


def test_trap3_compensation_boundary_and_handlers_are_rejected():
    body = linear('<bpmn:task id="book"/>') + """
    <bpmn:boundaryEvent id="onUndo" attachedToRef="book"><bpmn:compensateEventDefinition/></bpmn:boundaryEvent>
    <bpmn:task id="cancelBooking" isForCompensation="true"/>
    <bpmn:association id="a1" sourceRef="onUndo" targetRef="cancelBooking"/>"""
    error = rejected(process_xml(body))
    assert_names(error, "onUndo", "compensation")
    assert_names(error, "cancelBooking", "compensation")


# --------------------------------------------------------------------------- trap 4


def test_trap4_missing_is_executable_means_not_executable():
    error = rejected(process_xml(linear('<bpmn:userTask id="t"/>'), process_id="draft", executable=None))
    (issue,) = error.issues
    assert issue.element_id == "draft"
    assert "draft (isExecutable=missing)" in issue.message
    assert 'isExecutable="true"' in issue.message


def test_trap4_lists_every_process_of_the_file():
    text = process_xml(linear(), process_id="a", executable="false",
                       after='<bpmn:process id="b"><bpmn:startEvent id="s2"/></bpmn:process>\n')
    (issue,) = rejected(text).issues
    assert "a (isExecutable=\"false\")" in issue.message and "b (isExecutable=missing)" in issue.message


def test_trap4_called_processes_must_be_executable_too():
    caller = process_xml(linear('<bpmn:callActivity id="call" calledElement="helper"/>'))
    helper = process_xml(linear(), process_id="helper", executable=None)
    error = rejected({"main.bpmn": caller, "helper.bpmn": helper})
    assert_names(error, "call", "called process 'helper'", "not executable")


@needs_corpus
def test_trap4_corpus_file_with_only_unmarked_processes_is_rejected():
    package, issues = check_path(CORPUS / "spiffworkflow-tests/bpmn/data/Approvals.bpmn")
    assert package is None
    (issue,) = issues
    assert "Approvals (isExecutable=missing)" in issue.message and issue.line


@needs_corpus
def test_trap4_corpus_file_runs_only_its_marked_process():
    package, issues = check_path(CORPUS / "spiffworkflow-tests/bpmn/data/conditional_event.bpmn")
    assert [p.key for p in package.processes] == ["intermediate"]  # not "boundary" (no attribute)


# --------------------------------------------------------------------------- trap 5 and 6


def test_trap5_juel_and_feel_conditions_are_translated_at_load_time():
    body = """
    <bpmn:startEvent id="start"/>
    <bpmn:exclusiveGateway id="g" default="other"/>
    <bpmn:userTask id="big"/><bpmn:userTask id="small"/>
    <bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="g"/>
    <bpmn:sequenceFlow id="toBig" sourceRef="g" targetRef="big">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${amount gt 1000 &amp;&amp; !blocked}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="other" sourceRef="g" targetRef="small"/>
    <bpmn:sequenceFlow id="f2" sourceRef="big" targetRef="e1"/>
    <bpmn:sequenceFlow id="f3" sourceRef="small" targetRef="e2"/>"""
    process = load_files({"m.bpmn": process_xml(body)}).processes[0]
    for data, expected in (({"amount": 5000, "blocked": False}, ["big"]), ({"amount": 5, "blocked": False}, ["small"])):
        workflow = BpmnWorkflow(process.spec, process.subprocess_specs)
        workflow.get_tasks(state=TaskState.READY)[0].data.update(data)
        workflow.do_engine_steps()
        assert ready(workflow) == expected


def test_trap5_untranslatable_expressions_are_rejected_naming_the_flow():
    body = linear('<bpmn:exclusiveGateway id="g" default="f2"/>') + """
    <bpmn:endEvent id="other"/>
    <bpmn:sequenceFlow id="cond" sourceRef="g" targetRef="other">
      <bpmn:conditionExpression>${execution.getVariable("approved")}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>"""
    assert_names(rejected(process_xml(body)), "cond", "${execution.getVariable", "another BPMN engine")


def test_trap6_unquoted_iso_timer_values_run():
    body = linear('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
                  '<bpmn:timeDuration>PT0S</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>',
                  '<bpmn:userTask id="after"/>')
    workflow = start(load_files({"m.bpmn": process_xml(body)}).processes[0])
    workflow.refresh_timers()
    workflow.do_engine_steps()
    assert ready(workflow) == ["after"]  # no "Error evaluating expression 'PT0S'"


def test_trap6_cron_and_empty_timers_are_rejected():
    cron = linear('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
                  '<bpmn:timeCycle>0 0/5 * * * ?</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
    assert_names(rejected(process_xml(cron)), "wait", "cron")
    empty = linear('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition/></bpmn:intermediateCatchEvent>')
    assert_names(rejected(process_xml(empty)), "wait", "no timeDate, timeDuration or timeCycle")


# --------------------------------------------------------------------------- trap 7


@needs_corpus
def test_trap7_a_failed_build_is_reported_every_time():
    path = CORPUS / "spiffworkflow-tests/bpmn/data/Test-Workflows/Parallel-Multiple-Splits.bpmn20.xml"
    for _ in range(2):  # the second load must not hand out the half-built spec
        package, issues = check_path(path)
        assert package is None
        assert any("without a condition" in i.message and i.element_id for i in issues)


# --------------------------------------------------------------------------- trap 8


@pytest.mark.parametrize("definition, attribute", [
    ("messageEventDefinition", "messageRef"),
    ("signalEventDefinition", "signalRef"),
])
def test_trap8_unresolved_catch_references_are_rejected(definition, attribute):
    body = linear(f'<bpmn:intermediateCatchEvent id="wait"><bpmn:{definition} {attribute}="nowhere"/>'
                  '</bpmn:intermediateCatchEvent>')
    assert_names(rejected(process_xml(body)), "wait", f"{attribute} 'nowhere'", "does not resolve")


@pytest.mark.parametrize("definition, attribute", [
    ("errorEventDefinition", "errorRef"),
    ("escalationEventDefinition", "escalationRef"),
    ("messageEventDefinition", "messageRef"),
])
def test_trap8_unresolved_end_event_references_are_rejected(definition, attribute):
    body = linear(end=f'<bpmn:endEvent id="end"><bpmn:{definition} {attribute}="nowhere"/></bpmn:endEvent>')
    assert_names(rejected(process_xml(body)), "end", attribute, "does not resolve")


@needs_corpus
def test_trap8_pizza_collaboration_forced_executable_names_elements():
    files = package_for("regression/pizza-collaboration.bpmn")
    text = files["pizza-collaboration.bpmn"].replace('isExecutable="false"', 'isExecutable="true"')
    error = rejected({"pizza-collaboration.bpmn": text})
    assert all(i.element_id for i in error.issues)
    assert not any("TypeError" in i.message for i in error.issues)


# --------------------------------------------------------------------------- trap 9


@pytest.mark.parametrize("task", [
    '<bpmn:businessRuleTask id="decide"/>',
    '<bpmn:businessRuleTask id="decide" camunda:decisionRef="unknownDecision"/>',
    '<bpmn:businessRuleTask id="decide"><bpmn:extensionElements><zeebe:calledDecision decisionId="nope" '
    'resultVariable="r"/></bpmn:extensionElements></bpmn:businessRuleTask>',
    '<bpmn:businessRuleTask id="decide"><bpmn:extensionElements><spiffworkflow:calledDecisionId>nope'
    '</spiffworkflow:calledDecisionId></bpmn:extensionElements></bpmn:businessRuleTask>',
])
def test_trap9_business_rule_tasks_without_a_resolvable_decision_are_rejected(task):
    error = rejected(process_xml(linear(task)))
    assert_names(error, "decide", "decision")
    assert not any("KeyError" in i.message for i in error.issues)


# --------------------------------------------------------------------------- trap 10


@needs_corpus
def test_trap10_imports_resolve_inside_the_package():
    files = package_for("regression/C.9.0.bpmn")
    assert {"C.9.0.bpmn", "C.9.1.bpmn", "C.9.2.bpmn"} <= set(files)
    error = rejected(files)
    assert not any("imported file" in i.message for i in error.issues)
    assert all(i.element_id for i in error.issues)


@needs_corpus
def test_trap10_missing_import_target_is_rejected_naming_the_import():
    text = (CORPUS / "miwg/bpmn.io_Camunda_Modeler_18.6.1/C.9.0-roundtrip.bpmn").read_text()
    error = rejected({"C.9.0-roundtrip.bpmn": text})
    imports = [i for i in error.issues if "imported file 'C.9.1.bpmn'" in i.message]
    assert imports and imports[0].line


def test_trap10_call_activity_target_missing_from_the_package():
    error = rejected(process_xml(linear('<bpmn:callActivity id="call" calledElement="elsewhere"/>')))
    assert_names(error, "call", "called process 'elsewhere' is not defined")


def test_trap10_recursive_call_activities_are_rejected():
    body = linear('<bpmn:callActivity id="again" calledElement="p"/>')
    assert_names(rejected(process_xml(body)), "again", "recursively")


# --------------------------------------------------------------------------- trap 11


@pytest.mark.parametrize("task, shown", [
    ('<bpmn:serviceTask id="svc" camunda:class="org.example.Delegate"/>', "camunda:class=org.example.Delegate"),
    ('<bpmn:serviceTask id="svc" camunda:delegateExpression="${bean}"/>', "camunda:delegateExpression"),
    ('<bpmn:serviceTask id="svc" camunda:expression="${svc.run()}"/>', "camunda:expression"),
    ('<bpmn:serviceTask id="svc" camunda:type="external" camunda:topic="mail"/>', "camunda:type=external (topic mail)"),
    ('<bpmn:serviceTask id="svc"><bpmn:extensionElements><zeebe:taskDefinition type="mailer"/>'
     '</bpmn:extensionElements></bpmn:serviceTask>', "zeebe:taskDefinition type=mailer"),
    ('<bpmn:serviceTask id="svc"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="http/get"/>'
     '</bpmn:extensionElements></bpmn:serviceTask>', "spiffworkflow:serviceTaskOperator http/get"),
    ('<bpmn:sendTask id="svc" camunda:class="org.example.Mailer"/>', "camunda:class=org.example.Mailer"),
])
def test_trap11_service_task_implementations_are_rejected(task, shown):
    assert_names(rejected(process_xml(linear(task))), "svc", shown, "is not available in Phasegate")


def test_trap11_service_task_without_implementation_is_rejected():
    assert_names(rejected(process_xml(linear('<bpmn:serviceTask id="svc"/>'))), "svc", "silently do nothing")


# --------------------------------------------------------------------------- trap 12


def test_trap12_complex_gateway_is_rejected_even_when_unreachable():
    body = linear() + '\n    <bpmn:complexGateway id="cx"/>'
    assert_names(rejected(process_xml(body)), "cx", "complex gateways are not supported")


@needs_corpus
def test_trap12_kitchen_sink_forced_executable_is_rejected_by_element():
    text = (CORPUS / "bpmn-js-examples/theming/resources/kitchen-sink.bpmn").read_text()
    text = text.replace('isExecutable="false"', 'isExecutable="true"')
    error = rejected({"kitchen-sink.bpmn": text})
    assert all(i.element_id for i in error.issues)
    messages = " ".join(i.message for i in error.issues)
    assert "complex gateways are not supported" in messages
    assert "compensation" in messages


# --------------------------------------------------------------------------- the silent-drop file


@needs_corpus
def test_no_manifest_silent_drop_file_loads_with_missing_nodes():
    from tests.conformance.harness import classify, manifest

    for entry in [m for m in manifest() if m.get("verdict") == "SILENT-DROP"]:
        outcome = classify(entry["path"])
        assert outcome.kind in ("rejected", "runs", "runs-error-named"), outcome.detail


def test_unreachable_elements_are_reported_by_the_silent_drop_guard():
    body = linear('<bpmn:userTask id="t"/>') + '\n    <bpmn:userTask id="orphan"/>'
    assert_names(rejected(process_xml(body)), "orphan", "would not run", "not reachable from a start event")

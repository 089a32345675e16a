"""Classes of models SpiffWorkflow would mis-run: each is rejected naming the element (or warned about)."""
from __future__ import annotations

import pytest

from engine.bpmn.loader import load_files
from engine.domain.errors import ModelRejected
from tests.bpmn.builders import linear, process_xml


def issues_of(files) -> list:
    files = files if isinstance(files, dict) else {"m.bpmn": files}
    with pytest.raises(ModelRejected) as error:
        load_files(files)
    return error.value.issues


def only(files, element_id: str, *words: str):
    found = issues_of(files)
    assert [i.element_id for i in found] == [element_id], found
    for word in words:
        assert word in found[0].message, found[0].message
    assert found[0].line
    return found[0]


# --------------------------------------------------------------------------- implementations


@pytest.mark.parametrize("script_format", ["groovy", "javascript", "Javascript", "juel", "xslt"])
def test_non_python_scripts_are_rejected(script_format):
    body = linear(f'<bpmn:scriptTask id="s" scriptFormat="{script_format}"><bpmn:script>x</bpmn:script></bpmn:scriptTask>')
    only(process_xml(body), "s", f"script format '{script_format}'", "Python scripts only")


@pytest.mark.parametrize("script_format", ["", "python", "py", "Python"])
def test_python_scripts_are_accepted(script_format):
    body = linear(f'<bpmn:scriptTask id="s" scriptFormat="{script_format}"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>')
    assert load_files({"m.bpmn": process_xml(body)}).processes


def test_script_syntax_errors_name_the_task_and_script_line():
    body = linear('<bpmn:scriptTask id="s"><bpmn:script>x = 1\nif x\n  y = 2</bpmn:script></bpmn:scriptTask>')
    only(process_xml(body), "s", "not valid Python on line 2")


@pytest.mark.parametrize("task, words", [
    ('<bpmn:scriptTask id="s"/>', "has no script"),
    ('<bpmn:scriptTask id="s" camunda:resource="deployment://check.py"/>', "external script resources"),
])
def test_scripts_that_cannot_run(task, words):
    only(process_xml(linear(task)), "s", words)


@pytest.mark.parametrize("extension, words", [
    ('<camunda:executionListener class="org.example.Audit" event="start"/>', "executionListener"),
    ('<camunda:taskListener event="create" expression="${assigner.assign(task)}"/>', "taskListener"),
    ('<camunda:inputOutput><camunda:inputParameter name="x">1</camunda:inputParameter></camunda:inputOutput>',
     "input/output variable mappings"),
    ('<zeebe:ioMapping><zeebe:input source="=a" target="b"/></zeebe:ioMapping>', "input/output variable mappings"),
])
def test_engine_extensions_that_run_code_are_rejected(extension, words):
    body = linear(f'<bpmn:userTask id="t" camunda:assignee="a"><bpmn:extensionElements>{extension}'
                  '</bpmn:extensionElements></bpmn:userTask>')
    only(process_xml(body), "t", words, "not supported")


def test_call_activity_variable_mappings():
    helper = process_xml(linear(), process_id="helper")

    def call(mapping: str) -> str:
        return process_xml(linear(f'<bpmn:callActivity id="call" calledElement="helper"><bpmn:extensionElements>'
                                  f'{mapping}</bpmn:extensionElements></bpmn:callActivity>'), process_id="main")

    assert load_files({"main.bpmn": call('<camunda:in variables="all"/><camunda:out variables="all"/>'
                                         '<camunda:in businessKey="#{execution.processBusinessKey}"/>'),
                       "helper.bpmn": helper}).processes
    only({"main.bpmn": call('<camunda:in source="a" target="b"/>'), "helper.bpmn": helper}, "call", "variable mapping")


# --------------------------------------------------------------------------- data stores


STORE = '<bpmn:dataStore id="store" name="Customers"/>\n'


def test_data_stores_read_or_written_are_rejected():
    body = linear('<bpmn:task id="t"><bpmn:dataOutputAssociation id="a1"><bpmn:targetRef>ref</bpmn:targetRef>'
                  '</bpmn:dataOutputAssociation></bpmn:task>') + \
        '\n    <bpmn:dataStoreReference id="ref" dataStoreRef="store"/>'
    only(process_xml(body, extra=STORE), "ref", "Phasegate has no data store implementations")


def test_data_stores_nobody_uses_only_warn():
    body = linear('<bpmn:task id="t"/>') + '\n    <bpmn:dataStoreReference id="ref" dataStoreRef="store"/>'
    package = load_files({"m.bpmn": process_xml(body, extra=STORE)})
    assert [(w.element_id, w.severity) for w in package.warnings] == [("ref", "warning")]


def test_data_stores_of_processes_that_do_not_run_are_ignored():
    other = '<bpmn:process id="other"><bpmn:dataStoreReference id="ref" dataStoreRef="store"/></bpmn:process>\n'
    assert load_files({"m.bpmn": process_xml(linear(), extra=STORE, after=other)}).processes


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize("event, words", [
    ('<bpmn:intermediateThrowEvent id="e"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M</bpmn:timeDuration>'
     '</bpmn:timerEventDefinition></bpmn:intermediateThrowEvent>', "timer intermediate throw events"),
    ('<bpmn:intermediateThrowEvent id="e"><bpmn:errorEventDefinition/></bpmn:intermediateThrowEvent>',
     "error intermediate throw events"),
    ('<bpmn:intermediateCatchEvent id="e"><bpmn:errorEventDefinition/></bpmn:intermediateCatchEvent>',
     "error intermediate catch events"),
    ('<bpmn:intermediateThrowEvent id="e" eventDefinitionRefs="x"/>', "global) event definitions"),
])
def test_event_definitions_spiffworkflow_would_ignore(event, words):
    only(process_xml(linear(event)), "e", words, "not supported")


def test_error_start_events_of_event_subprocesses_are_rejected():
    # SpiffWorkflow parses them as none start events: the handler would start with the process.
    body = linear() + """
    <bpmn:subProcess id="handler" triggeredByEvent="true">
      <bpmn:startEvent id="onError"><bpmn:errorEventDefinition/></bpmn:startEvent>
      <bpmn:endEvent id="handled"/>
      <bpmn:sequenceFlow id="h1" sourceRef="onError" targetRef="handled"/>
    </bpmn:subProcess>"""
    found = issues_of(process_xml(body))
    assert {i.element_id for i in found} == {"onError"}
    assert any("error start events are not supported" in i.message for i in found)


def test_boundary_events_need_a_definition_and_an_activity():
    body = linear('<bpmn:userTask id="t" camunda:assignee="a"/>') + \
        '\n    <bpmn:boundaryEvent id="b" attachedToRef="t"/>' + \
        '\n    <bpmn:boundaryEvent id="c" attachedToRef="nowhere"><bpmn:timerEventDefinition>' \
        '<bpmn:timeDuration>PT1M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
    found = {i.element_id: i.message for i in issues_of(process_xml(body))}
    assert "needs an event definition" in found["b"]
    assert "not an activity of the same process" in found["c"]


def test_message_tasks_need_a_message():
    only(process_xml(linear('<bpmn:sendTask id="s"/>')), "s", "no messageRef")
    only(process_xml(linear('<bpmn:receiveTask id="r"/>')), "r", "no messageRef")
    only(process_xml(linear('<bpmn:receiveTask id="r" messageRef="gone"/>')), "r", "does not resolve")


# --------------------------------------------------------------------------- flows and gateways


def test_flows_to_nonexistent_elements():
    body = linear() + '\n    <bpmn:sequenceFlow id="bad" sourceRef="start" targetRef="ghost"/>'
    only(process_xml(body), "bad", "nonexistent element (target 'ghost')")


def test_gateway_flows_without_condition_that_are_not_default():
    body = linear('<bpmn:exclusiveGateway id="g"/>') + \
        '\n    <bpmn:endEvent id="other"/><bpmn:sequenceFlow id="f9" sourceRef="g" targetRef="other"/>'
    found = issues_of(process_xml(body))
    assert {i.element_id for i in found} == {"f2", "f9"}
    assert all("without a condition and is not its default flow" in i.message for i in found)


def test_a_gateway_with_one_unconditioned_flow_is_fine():
    assert load_files({"m.bpmn": process_xml(linear('<bpmn:inclusiveGateway id="g"/>'))}).processes


def test_default_must_be_an_outgoing_flow():
    only(process_xml(linear('<bpmn:exclusiveGateway id="g" default="f1"/>')), "g", "default flow 'f1'")


def test_conditional_flows_out_of_tasks_are_rejected():
    body = linear('<bpmn:task id="t"/>').replace(
        '<bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="end"/>',
        '<bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="end"><bpmn:conditionExpression>x</bpmn:conditionExpression>'
        '</bpmn:sequenceFlow>')
    only(process_xml(body), "f2", "conditional sequence flow", "exclusive or inclusive gateway")


def test_conditions_on_parallel_gateway_flows_warn():
    body = linear('<bpmn:parallelGateway id="g"/>').replace(
        '<bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="end"/>',
        '<bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="end"><bpmn:conditionExpression>x</bpmn:conditionExpression>'
        '</bpmn:sequenceFlow>')
    package = load_files({"m.bpmn": process_xml(body)})
    assert [(w.element_id, "ignored" in w.message) for w in package.warnings] == [("f2", True)]


def test_event_based_gateways_must_lead_to_catch_events():
    body = linear('<bpmn:eventBasedGateway id="g"/>')
    only(process_xml(body), "f2", "must lead to catch events")


def test_untranslatable_conditions_name_the_flow_not_the_expression_element():
    body = linear('<bpmn:exclusiveGateway id="g" default="f2"/>') + """
    <bpmn:endEvent id="other"/>
    <bpmn:sequenceFlow id="cond" sourceRef="g" targetRef="other">
      <bpmn:conditionExpression id="expr1" language="groovy">x == 1</bpmn:conditionExpression>
    </bpmn:sequenceFlow>"""
    only(process_xml(body), "cond", "language 'groovy'")


# --------------------------------------------------------------------------- structure


def test_unknown_elements_and_elements_without_ids():
    body = linear() + '\n    <bpmn:choreographyTask id="x"/>\n    <bpmn:task name="anonymous"/>\n' \
                      '    <custom:thing xmlns:custom="urn:x" id="y"/>'
    found = {i.element_id: i.message for i in issues_of(process_xml(body))}
    assert "not supported inside a process" in found["x"]
    assert "has no id" in found["task"]
    assert "unknown element" in found["y"]


def test_duplicate_process_ids_across_files():
    text = process_xml(linear())
    found = issues_of({"a.bpmn": text, "b.bpmn": text})
    assert [(i.path, i.element_id) for i in found] == [("b.bpmn", "p")]
    assert "also defined in a.bpmn" in found[0].message


def test_start_quantity_other_than_one():
    only(process_xml(linear('<bpmn:task id="t" startQuantity="2"/>')), "t", "startQuantity=2")


def test_no_bpmn_file_at_all():
    found = issues_of({"forms/a.json": '{"type": "object"}'})
    assert "no BPMN file" in found[0].message


# --------------------------------------------------------------------------- DMN


DMN_HEAD = '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="urn:t">'


def table(decision_id: str, hit_policy: str = "UNIQUE", extra: str = "") -> str:
    return (f'<decision id="{decision_id}" name="{decision_id}">{extra}<decisionTable id="t_{decision_id}" '
            f'hitPolicy="{hit_policy}"><input id="i_{decision_id}"><inputExpression id="e_{decision_id}"><text>x</text>'
            f'</inputExpression></input><output id="o_{decision_id}" name="y"/><rule id="r_{decision_id}">'
            f'<inputEntry id="ie_{decision_id}"><text>1</text></inputEntry><outputEntry id="oe_{decision_id}">'
            f'<text>2</text></outputEntry></rule></decisionTable></decision>')


def with_decision(decision: str, dmn: str) -> dict:
    return {"m.bpmn": process_xml(linear(f'<bpmn:businessRuleTask id="rule" camunda:decisionRef="{decision}"/>')),
            "d.dmn": dmn}


def test_several_decisions_per_dmn_file():
    dmn = DMN_HEAD + table("first") + table("second") + "</definitions>"
    assert load_files(with_decision("second", dmn)).processes


@pytest.mark.parametrize("hit_policy", ["PRIORITY", "RULE ORDER", "OUTPUT ORDER"])
def test_unsupported_hit_policies(hit_policy):
    dmn = DMN_HEAD + table("dec", hit_policy) + "</definitions>"
    only(with_decision("dec", dmn), "rule", f"hit policy {hit_policy} is not supported")


def test_collect_aggregation_and_required_decisions():
    dmn = DMN_HEAD + table("dec", "COLLECT").replace('hitPolicy="COLLECT"', 'hitPolicy="COLLECT" aggregation="SUM"') \
        + "</definitions>"
    only(with_decision("dec", dmn), "rule", "aggregation SUM")
    requirement = '<informationRequirement id="ir"><requiredDecision href="#other"/></informationRequirement>'
    dmn = DMN_HEAD + table("dec", extra=requirement) + table("other") + "</definitions>"
    only(with_decision("dec", dmn), "rule", "requires decision(s) other")


def test_decision_without_table():
    dmn = DMN_HEAD + '<decision id="lit" name="lit"><literalExpression id="l"><text>1</text></literalExpression>' \
                     '</decision></definitions>'
    only(with_decision("lit", dmn), "rule", "no decision table")


def test_untranslatable_dmn_entries_name_the_rule():
    dmn = DMN_HEAD + table("dec").replace("<text>1</text>", "<text>[1..</text>") + "</definitions>"
    only(with_decision("dec", dmn), "r_dec", "input entry '[1..'")


def test_unused_and_broken_dmn_files_only_warn():
    dmn = DMN_HEAD + '<decision id="lit" name="lit"/></definitions>'
    package = load_files({"m.bpmn": process_xml(linear()), "unused.dmn": dmn})
    assert [(w.path, "not used" in w.message) for w in package.warnings] == [("unused.dmn", True)]


# --------------------------------------------------------------------------- the silent-drop guard


def test_guard_reports_nodes_missing_from_specs_and_unwired_flows():
    from lxml import etree

    from engine.bpmn.validation import check_specs_complete

    process = etree.fromstring(process_xml(linear('<bpmn:task id="t"/>')).encode())[0]

    class Spec:
        def __init__(self, name, outputs=()):
            self.name, self.outputs = name, [Spec(o) for o in outputs]

    class ProcessSpec:
        task_specs = {"start": Spec("start", ["t"]), "t": Spec("t", [])}  # t -> end lost, end missing

    found = check_specs_complete({"p": "m.bpmn"}, {"p": process}, {"p": ProcessSpec()})
    assert {(i.element_id, "would not run" in i.message) for i in found} == {("end", True)}
    ProcessSpec.task_specs["end"] = Spec("end")
    (issue,) = check_specs_complete({"p": "m.bpmn"}, {"p": process}, {"p": ProcessSpec()})
    assert issue.element_id == "f2" and "would never be taken" in issue.message


def test_interrupting_event_subprocesses_are_rejected():
    # SpiffWorkflow starts the handler beside the running process and never interrupts it.
    def model(attribute: str) -> str:
        return process_xml(linear('<bpmn:userTask id="work" camunda:assignee="a"/>') + f"""
    <bpmn:subProcess id="handler" triggeredByEvent="true">
      <bpmn:startEvent id="onMessage"{attribute}><bpmn:messageEventDefinition messageRef="m"/></bpmn:startEvent>
      <bpmn:endEvent id="handled"/>
      <bpmn:sequenceFlow id="h1" sourceRef="onMessage" targetRef="handled"/>
    </bpmn:subProcess>""", after='<bpmn:message id="m" name="cancel"/>\n')

    only(model(""), "onMessage", "interrupting event sub-processes are not supported")
    only(model(' isInterrupting="true"'), "onMessage", "interrupting")
    assert load_files({"m.bpmn": model(' isInterrupting="false"')}).processes


def test_flows_out_of_end_events_or_into_start_events():
    body = linear('<bpmn:task id="t"/>') + '\n    <bpmn:task id="after"/>' \
        '\n    <bpmn:sequenceFlow id="out" sourceRef="end" targetRef="after"/>' \
        '\n    <bpmn:sequenceFlow id="in" sourceRef="t" targetRef="start"/>'
    found = {i.element_id: i.message for i in issues_of(process_xml(body))}
    assert "cannot have outgoing flows" in found["out"]
    assert "cannot have incoming flows" in found["in"]

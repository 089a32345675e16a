"""Classes of vendor-dialect problems the XML pre-pass fixes, each shown by running the model."""
from __future__ import annotations

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.loader import load_files
from engine.bpmn.spiff_config import message_event, signal_event
from engine.domain.errors import ModelRejected
from tests.bpmn.builders import linear, process_xml


def run(files, data: dict | None = None, process: str | None = None) -> BpmnWorkflow:
    package = load_files(files if isinstance(files, dict) else {"m.bpmn": files})
    loaded = package.processes[0] if process is None else next(p for p in package.processes if p.key == process)
    workflow = BpmnWorkflow(loaded.spec, loaded.subprocess_specs)
    if data:
        workflow.get_tasks(state=TaskState.READY)[0].data.update(data)
    workflow.do_engine_steps()
    return workflow


def ready(workflow) -> list[str]:
    return sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY))


def complete_all(workflow, limit: int = 20) -> None:
    for _ in range(limit):
        tasks = workflow.get_tasks(state=TaskState.READY)
        if not tasks:
            return
        tasks[0].run()
        workflow.do_engine_steps()


def test_qualified_references_and_unnamed_messages():
    body = linear('<bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="tns:Msg_1"/>'
                  '</bpmn:intermediateCatchEvent>', '<bpmn:userTask id="after"/>')
    workflow = run(process_xml(body, after='<bpmn:message id="Msg_1"/>\n'))
    workflow.send_event(message_event("Msg_1"))  # the message is named after its id
    workflow.do_engine_steps()
    assert ready(workflow) == ["after"]


def test_camunda_multi_instance_collection_iterates_the_items():
    body = linear('<bpmn:userTask id="each" camunda:assignee="${item}">'
                  '<bpmn:multiInstanceLoopCharacteristics camunda:collection="${reviewers}" '
                  'camunda:elementVariable="item"/></bpmn:userTask>')
    workflow = run(process_xml(body), {"reviewers": ["ann", "bob", "cy"]})
    items = sorted(t.data["item"] for t in workflow.get_tasks(state=TaskState.READY))
    assert items == ["ann", "bob", "cy"]


def test_zeebe_multi_instance_with_output_collection():
    body = linear('<bpmn:scriptTask id="each"><bpmn:multiInstanceLoopCharacteristics isSequential="true">'
                  '<bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=numbers" inputElement="n" '
                  'outputCollection="doubled" outputElement="=result"/></bpmn:extensionElements>'
                  '</bpmn:multiInstanceLoopCharacteristics><bpmn:script>result = n * 2</bpmn:script></bpmn:scriptTask>')
    workflow = run(process_xml(body), {"numbers": [1, 2, 3]})
    assert workflow.completed
    assert workflow.data["doubled"] == [2, 4, 6]


def test_multi_instance_collection_must_be_a_variable():
    body = linear('<bpmn:userTask id="each"><bpmn:multiInstanceLoopCharacteristics '
                  'camunda:collection="${order.items}" camunda:elementVariable="item"/></bpmn:userTask>')
    with pytest.raises(ModelRejected) as error:
        load_files({"m.bpmn": process_xml(body)})
    assert error.value.issues[0].element_id == "each" and "must be a variable name" in error.value.issues[0].message


def test_missing_parallel_multi_instance_input_fails_naming_the_task():
    from SpiffWorkflow.bpmn.exceptions import WorkflowDataException

    body = linear('<bpmn:userTask id="each"><bpmn:multiInstanceLoopCharacteristics '
                  'camunda:collection="items" camunda:elementVariable="item"/></bpmn:userTask>')
    with pytest.raises(WorkflowDataException) as error:
        run(process_xml(body))
    assert error.value.task_spec.bpmn_id == "each"


def test_juel_loop_cardinality_and_completion_condition():
    body = linear('<bpmn:scriptTask id="each"><bpmn:multiInstanceLoopCharacteristics isSequential="true">'
                  '<bpmn:loopCardinality>${count}</bpmn:loopCardinality>'
                  '<bpmn:completionCondition>${done}</bpmn:completionCondition>'
                  '</bpmn:multiInstanceLoopCharacteristics><bpmn:script>done = False</bpmn:script></bpmn:scriptTask>')
    workflow = run(process_xml(body), {"count": 3})
    assert workflow.completed


def test_zeebe_script_task_expression():
    body = linear('<bpmn:scriptTask id="calc"><bpmn:extensionElements>'
                  '<zeebe:script expression="=price * quantity" resultVariable="total"/>'
                  '</bpmn:extensionElements></bpmn:scriptTask>')
    workflow = run(process_xml(body), {"price": 3, "quantity": 4})
    assert workflow.completed and workflow.data["total"] == 12


def test_zeebe_called_element():
    caller = process_xml(linear('<bpmn:callActivity id="call"><bpmn:extensionElements>'
                                '<zeebe:calledElement processId="helper"/></bpmn:extensionElements></bpmn:callActivity>'),
                         process_id="main")
    helper = process_xml(linear('<bpmn:scriptTask id="s"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>'),
                         process_id="helper")
    workflow = run({"main.bpmn": caller, "helper.bpmn": helper}, process="main")
    assert workflow.completed and workflow.data["x"] == 1


def test_empty_condition_elements_are_no_condition():
    body = linear('<bpmn:exclusiveGateway id="g"/>').replace(
        '<bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="end"/>',
        '<bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="end"><bpmn:conditionExpression/></bpmn:sequenceFlow>')
    assert run(process_xml(body)).completed


def test_signal_end_events_throw_their_signal():
    body = """
    <bpmn:startEvent id="start"/>
    <bpmn:parallelGateway id="split"/>
    <bpmn:userTask id="work"/>
    <bpmn:endEvent id="announce"><bpmn:signalEventDefinition signalRef="sig"/></bpmn:endEvent>
    <bpmn:intermediateCatchEvent id="listen"><bpmn:signalEventDefinition signalRef="sig"/></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="after"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="split"/>
    <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="work"/>
    <bpmn:sequenceFlow id="f3" sourceRef="split" targetRef="listen"/>
    <bpmn:sequenceFlow id="f4" sourceRef="work" targetRef="announce"/>
    <bpmn:sequenceFlow id="f5" sourceRef="listen" targetRef="after"/>
    <bpmn:sequenceFlow id="f6" sourceRef="after" targetRef="end"/>"""
    workflow = run(process_xml(body, after='<bpmn:signal id="sig" name="ready"/>\n'))
    workflow.get_tasks(state=TaskState.READY)[0].run()
    workflow.do_engine_steps()
    assert ready(workflow) == ["after"]


def test_external_signals_reach_waiting_events():
    body = linear('<bpmn:intermediateCatchEvent id="listen"><bpmn:signalEventDefinition signalRef="sig"/>'
                  '</bpmn:intermediateCatchEvent>', '<bpmn:userTask id="after"/>')
    workflow = run(process_xml(body, after='<bpmn:signal id="sig" name="go"/>\n'))
    workflow.send_event(signal_event("go"))
    workflow.do_engine_steps()
    assert ready(workflow) == ["after"]


def test_implicit_parallel_split_and_uncontrolled_merge_follow_bpmn():
    body = """
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="a"/><bpmn:userTask id="b"/><bpmn:userTask id="c"/><bpmn:userTask id="d"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="a"/>
    <bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="b"/>
    <bpmn:sequenceFlow id="f3" sourceRef="a" targetRef="c"/>
    <bpmn:sequenceFlow id="f4" sourceRef="b" targetRef="d"/>
    <bpmn:sequenceFlow id="f5" sourceRef="c" targetRef="d"/>
    <bpmn:sequenceFlow id="f6" sourceRef="d" targetRef="end"/>"""
    workflow = run(process_xml(body))
    workflow.get_tasks(state=TaskState.READY)[0].run()
    workflow.do_engine_steps()
    assert ready(workflow) == ["b", "c"]  # both flows out of a task are taken
    runs_of_d = 0
    for _ in range(10):
        tasks = workflow.get_tasks(state=TaskState.READY)
        if not tasks:
            break
        runs_of_d += tasks[0].task_spec.bpmn_id == "d"
        tasks[0].run()
        workflow.do_engine_steps()
    assert runs_of_d == 2 and workflow.completed  # each arriving token runs d once


def test_event_based_gateway_takes_the_first_event_only():
    body = """
    <bpmn:startEvent id="start"/>
    <bpmn:eventBasedGateway id="g"/>
    <bpmn:intermediateCatchEvent id="paid"><bpmn:messageEventDefinition messageRef="m"/></bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="late"><bpmn:timerEventDefinition><bpmn:timeDuration>P1D</bpmn:timeDuration>
    </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="ship"/><bpmn:userTask id="remind"/>
    <bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="g"/>
    <bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="paid"/>
    <bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="late"/>
    <bpmn:sequenceFlow id="f4" sourceRef="paid" targetRef="ship"/>
    <bpmn:sequenceFlow id="f5" sourceRef="late" targetRef="remind"/>
    <bpmn:sequenceFlow id="f6" sourceRef="ship" targetRef="e1"/>
    <bpmn:sequenceFlow id="f7" sourceRef="remind" targetRef="e2"/>"""
    workflow = run(process_xml(body, after='<bpmn:message id="m" name="payment"/>\n'))
    workflow.send_event(message_event("payment"))
    workflow.do_engine_steps()
    assert ready(workflow) == ["ship"]
    complete_all(workflow)
    assert workflow.completed  # the timer branch was withdrawn


# --------------------------------------------------------------------------- DMN


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="http://t">
  <decision id="approvers" name="Approvers">
    <decisionTable id="t" hitPolicy="{hit_policy}">
      <input id="i1"><inputExpression id="e1"><text>category</text></inputExpression></input>
      <input id="i2"><inputExpression id="e2"><text>${{amount}}</text></inputExpression></input>
      <output id="o1" name="group"/>
      <rule id="r1"><inputEntry id="r1i1"><text>"travel","meals"</text></inputEntry>
        <inputEntry id="r1i2"><text>[0..500]</text></inputEntry><outputEntry id="r1o"><text>"team-lead"</text></outputEntry></rule>
      <rule id="r2"><inputEntry id="r2i1"><text>not("hardware")</text></inputEntry>
        <inputEntry id="r2i2"><text>-</text></inputEntry><outputEntry id="r2o"><text>"finance"</text></outputEntry></rule>
      <rule id="r3"><inputEntry id="r3i1"><text>-</text></inputEntry>
        <inputEntry id="r3i2"><text>&gt; 500</text></inputEntry><outputEntry id="r3o"><text>"director"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def decide(hit_policy: str, mapping: str | None, data: dict):
    attributes = 'camunda:decisionRef="approvers"'
    if mapping:
        attributes += f' camunda:resultVariable="result" camunda:mapDecisionResult="{mapping}"'
    text = process_xml(linear(f'<bpmn:businessRuleTask id="decide" {attributes}/>'))
    workflow = run({"m.bpmn": text, "approvers.dmn": DMN.format(hit_policy=hit_policy)}, data)
    assert workflow.completed
    return workflow.data


@pytest.mark.parametrize("hit_policy, mapping, data, expected", [
    ("FIRST", None, {"category": "meals", "amount": 20}, {"group": "team-lead"}),
    ("FIRST", "singleEntry", {"category": "meals", "amount": 20}, "team-lead"),
    ("FIRST", "singleResult", {"category": "hardware", "amount": 900}, {"group": "director"}),
    ("COLLECT", "collectEntries", {"category": "meals", "amount": 900}, ["finance", "director"]),
    ("COLLECT", "resultList", {"category": "travel", "amount": 100}, [{"group": "team-lead"}, {"group": "finance"}]),
    ("COLLECT", None, {"category": "travel", "amount": 100}, {"group": ["team-lead", "finance"]}),
    ("UNIQUE", "singleEntry", {"category": "hardware", "amount": 10}, None),
])
def test_camunda_decisions_with_feel_tests_and_result_mapping(hit_policy, mapping, data, expected):
    result = decide(hit_policy, mapping, data)
    if mapping:
        assert result["result"] == expected
    else:
        assert {k: result[k] for k in expected} == expected


def test_single_entry_with_several_matches_fails_naming_the_task():
    from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

    with pytest.raises(WorkflowTaskException) as error:
        decide("COLLECT", "singleEntry", {"category": "meals", "amount": 900})
    assert error.value.task_spec.bpmn_id == "decide"


def test_gateway_conditions_are_evaluated_in_document_order_not_diagram_position():
    body = """
    <bpmn:startEvent id="start"/>
    <bpmn:exclusiveGateway id="g"/>
    <bpmn:userTask id="first"/><bpmn:userTask id="second"/>
    <bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="g"/>
    <bpmn:sequenceFlow id="toFirst" sourceRef="g" targetRef="first"><bpmn:conditionExpression>x &gt; 1</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="toSecond" sourceRef="g" targetRef="second"><bpmn:conditionExpression>x &gt; 0</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f2" sourceRef="first" targetRef="e1"/>
    <bpmn:sequenceFlow id="f3" sourceRef="second" targetRef="e2"/>"""
    # "second" is drawn above "first": SpiffWorkflow alone would test its condition first.
    diagram = """<bpmndi:BPMNDiagram xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
      xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" id="d"><bpmndi:BPMNPlane id="pl" bpmnElement="p">
      <bpmndi:BPMNShape id="s1" bpmnElement="first"><dc:Bounds x="0" y="500" width="10" height="10"/></bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="s2" bpmnElement="second"><dc:Bounds x="0" y="100" width="10" height="10"/></bpmndi:BPMNShape>
    </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
"""
    workflow = run(process_xml(body, after=diagram), {"x": 5})
    assert ready(workflow) == ["first"]

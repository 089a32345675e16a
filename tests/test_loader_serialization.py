"""Workflows built from loaded packages survive BpmnWorkflowSerializer.to_dict/from_dict at every step.

The model (tests/bpmn/roundtrip) uses a timer boundary event, a message catch event, user and
manual tasks, an embedded sub-process with a multi-instance task, a call activity and a business
rule task with a Camunda result variable — the spec and event-definition classes the parser makes.
"""
from __future__ import annotations

import json

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.loader import SERIALIZER_CONFIG, load_path
from engine.bpmn.spiff_config import message_event
from tests.bpmn.builders import HERE

SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SERIALIZER_CONFIG))


def round_trip(workflow: BpmnWorkflow) -> BpmnWorkflow:
    dct = SERIALIZER.to_dict(workflow)
    text = json.dumps(dct)  # must be plain JSON
    restored = SERIALIZER.from_dict(json.loads(text))
    assert SERIALIZER.to_dict(restored) == dct
    return restored


def ready(workflow) -> list[str]:
    return sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY))


def test_order_process_round_trips_at_every_step():
    order = {p.key: p for p in load_path(HERE / "roundtrip").processes}["order"]
    workflow = BpmnWorkflow(order.spec, order.subprocess_specs)
    workflow.do_engine_steps()
    workflow = round_trip(workflow)

    # the business rule task stored its result the Camunda way; the timer boundary event waits
    (approve,) = workflow.get_tasks(state=TaskState.READY)
    assert approve.task_spec.bpmn_id == "approve" and approve.data["discount"] == 0.1
    timer = [t for t in workflow.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == "approveTimeout"]
    assert timer and timer[0].internal_data.get("event_value")  # the due time survived

    approve.data.update(approved=True, packer="bob")
    approve.run()
    workflow.do_engine_steps()
    workflow = round_trip(workflow)
    assert ready(workflow) == ["pack", "pack"]
    assert sorted(t.data["item"] for t in workflow.get_tasks(state=TaskState.READY)) == ["a", "b"]

    for task in workflow.get_tasks(state=TaskState.READY):
        task.run()
    workflow.do_engine_steps()
    workflow = round_trip(workflow)
    assert [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.WAITING)] == ["payment"]

    workflow.send_event(message_event("paymentReceived", {"paid": True}))
    workflow.do_engine_steps()
    workflow = round_trip(workflow)
    (check,) = workflow.get_tasks(state=TaskState.READY)
    assert check.task_spec.bpmn_id == "check" and check.workflow.spec.name == "review"

    check.run()
    workflow.do_engine_steps()
    workflow = round_trip(workflow)
    assert workflow.completed


def test_timer_boundary_event_fires_after_a_round_trip():
    order = {p.key: p for p in load_path(HERE / "roundtrip").processes}["order"]
    workflow = BpmnWorkflow(order.spec, order.subprocess_specs)
    workflow.do_engine_steps()
    (timer,) = [t for t in workflow.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == "approveTimeout"]
    timer.internal_data["event_value"] = "2000-01-01T00:00:00+00:00"  # long overdue
    workflow = round_trip(workflow)
    workflow.refresh_timers()
    workflow.do_engine_steps()
    assert workflow.completed  # the interrupting timer ended the instance at timedOut

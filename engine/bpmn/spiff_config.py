"""Serializer configuration for the specs the Phasegate parser produces.

The runtime stores running workflows with
``BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SERIALIZER_CONFIG))``. The config maps
every spec and event-definition class `parser.PhasegateParser` can create to its converter:
SpiffWorkflow's "spiff" configuration (spec classes with pre/post scripts, spiff event
definitions with payloads) plus Phasegate's `DecisionTask`. Adding a spec class to the parser
means adding it here; `tests/test_loader_serialization.py` round-trips a model that uses them.
"""
from __future__ import annotations

from copy import deepcopy

from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.event_definition import MessageEventDefinitionConverter
from SpiffWorkflow.spiff.serializer.task_spec import BusinessRuleTaskConverter, SpiffMultiInstanceConverter

from .parser import DecisionTask, MessageEventDefinition, ParallelMultiInstanceTask


class DecisionTaskConverter(BusinessRuleTaskConverter):
    """The spiff business rule task converter plus where and how the result is stored."""

    def to_dict(self, spec):
        dct = super().to_dict(spec)
        dct["result_variable"] = spec.result_variable
        dct["map_decision_result"] = spec.map_decision_result
        return dct


SERIALIZER_CONFIG = deepcopy(SPIFF_CONFIG)
SERIALIZER_CONFIG[DecisionTask] = DecisionTaskConverter
SERIALIZER_CONFIG[ParallelMultiInstanceTask] = SpiffMultiInstanceConverter
SERIALIZER_CONFIG[MessageEventDefinition] = MessageEventDefinitionConverter


def create_serializer():
    """A BpmnWorkflowSerializer that handles every workflow built from a loaded package."""
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer

    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SERIALIZER_CONFIG))


def message_event(name: str, payload=None, correlations: dict | None = None):
    """A BpmnEvent delivering message `name` to a workflow (``workflow.send_event(...)``)."""
    from SpiffWorkflow.bpmn.util.event import BpmnEvent

    return BpmnEvent(MessageEventDefinition(name), payload if payload is not None else {}, correlations or {})


def signal_event(name: str, payload=None):
    """A BpmnEvent broadcasting signal `name` to a workflow (``workflow.send_event(...)``)."""
    from SpiffWorkflow.bpmn.util.event import BpmnEvent
    from SpiffWorkflow.spiff.specs.event_definitions import SignalEventDefinition

    return BpmnEvent(SignalEventDefinition(name), payload)

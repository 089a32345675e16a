"""The SpiffWorkflow parser Phasegate builds specs with.

One parser for Camunda Modeler, spiff-arena and plain BPMN files. It reads the canonical tree
that `normalize.py` produces, so it only has to know one dialect, and it produces SpiffWorkflow's
"spiff" spec classes (which carry spiff-arena pre/post scripts) plus a business rule task that
can store a decision result the way Camunda does. `spiff_config.py` registers exactly these
classes with the serializer.

Differences from the parsers that ship with SpiffWorkflow, and why:

* only ``isExecutable="true"`` makes a process executable (SpiffWorkflow treats a missing
  attribute as true; BPMN gives no default and other engines skip such processes — trap 4);
* business rule tasks read the decision from the canonical ``pg:decision`` attribute and fail
  with an error naming the element when there is none (CamundaParser dies with a bare
  KeyError — trap 9);
* each decision of a DMN file is registered on its own (SpiffWorkflow only sees the first);
* end events may throw signals (SpiffWorkflow parses them as none events and drops the signal);
* tasks may have several unconditioned outgoing flows (a BPMN implicit parallel split, which
  SpiffWorkflow's task specs run correctly; conditional flows out of tasks are rejected by
  validation before the parser sees them);
* outgoing flows keep their document order (SpiffWorkflow orders them by diagram position,
  which decides which of several true gateway conditions wins);
* a parallel multi-instance task with a missing collection and a message event whose
  correlation cannot be computed fail naming their task (SpiffWorkflow raises bare
  TypeError/NameError there);
* service tasks never parse: Phasegate has no service connectors, and validation rejects them
  with a better message first — the parser class is only a safety net.

Build with a fresh `PhasegateParser` every time: after a failed `get_spec` SpiffWorkflow's
process parser keeps the half-built spec and would hand it out on the next call (trap 7).
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CANCEL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TERMINATION_EVENT_XPATH,
    EndEventParser,
    EventBasedGatewayParser,
)
from SpiffWorkflow.bpmn.parser.task_parsers import AdHocSubprocessParser, ConditionalGatewayParser, GatewayParser
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.specs.data_spec import TaskDataReference
from SpiffWorkflow.bpmn.specs.defaults import (
    AdHocSubprocess,
    BoundaryEvent,
    EndEvent,
    EventBasedGateway,
    ExclusiveGateway,
    InclusiveGateway,
    IntermediateCatchEvent,
    IntermediateThrowEvent,
    ParallelGateway,
    StartEvent,
)
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition as BaseMessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask as _SubWorkflowMixin
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser
from SpiffWorkflow.dmn.parser.DMNParser import DMNParser
from SpiffWorkflow.dmn.specs import BusinessRuleTaskMixin
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffEventDefinitionParser,
    SpiffIntermediateCatchEventParser,
    SpiffIntermediateThrowEventParser,
    SpiffReceiveTaskParser,
    SpiffSendTaskParser,
    SpiffStartEventParser,
)
from SpiffWorkflow.spiff.parser.process import SpiffProcessParser
from SpiffWorkflow.spiff.parser.task_spec import (
    CallActivityParser,
    ScriptTaskParser,
    SpiffTaskParser,
    SubWorkflowParser,
    UserTaskParser,
)
from SpiffWorkflow.spiff.specs.defaults import (
    CallActivity,
    ManualTask,
    NoneTask,
    ReceiveTask,
    ScriptTask,
    SendTask,
    ServiceTask,
    SubWorkflowTask,
    TransactionSubprocess,
    UserTask,
)
from SpiffWorkflow.spiff.specs.defaults import ParallelMultiInstanceTask as SpiffParallelMultiInstanceTask
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition as SpiffMessageEventDefinition
from SpiffWorkflow.spiff.specs.spiff_task import SpiffBpmnTask

from .normalize import NSMAP, bpmn, pg

# --------------------------------------------------------------------------- spec classes

# DMN hit policies whose result SpiffWorkflow's engine computes correctly (UNIQUE stops at the
# first match, FIRST/ANY take the first of the matches, COLLECT lists them all).
SUPPORTED_HIT_POLICIES = ("UNIQUE", "FIRST", "ANY", "COLLECT")
SINGLE_HIT_POLICIES = ("UNIQUE", "FIRST", "ANY")


class DecisionTask(BusinessRuleTaskMixin, SpiffBpmnTask):
    """A business rule task that can also store its result the way Camunda does.

    Without a result variable the decision's outputs are merged into the task data (the
    SpiffWorkflow behaviour). With one (``camunda:resultVariable`` or Zeebe's ``resultVariable``)
    the result is stored under that name, shaped by ``map_decision_result``:
    ``singleEntry`` (the one output value of the one matched rule), ``singleResult`` (that rule's
    outputs as a dict), ``collectEntries`` (the one output of every matched rule, as a list),
    ``resultList`` (every matched rule's outputs, a list of dicts) or ``zeebe`` (Camunda 8: a
    value or a dict for single-hit tables, a list for COLLECT).
    """

    def __init__(self, wf_spec, name, dmnEngine, result_variable=None, map_decision_result=None, **kwargs):
        super().__init__(wf_spec, name, dmnEngine, **kwargs)
        self.result_variable = result_variable
        self.map_decision_result = map_decision_result

    def _run_hook(self, my_task):
        if self.result_variable is None:
            return super()._run_hook(my_task)
        try:
            my_task.data[self.result_variable] = self._mapped_result(my_task)
        except SpiffWorkflowException as error:
            error.add_note(f"Business Rule Task '{my_task.task_spec.bpmn_name}'.")
            raise
        except Exception as error:
            wrapped = WorkflowTaskException(str(error), task=my_task, exception=error)
            wrapped.add_note(f"Business Rule Task '{my_task.task_spec.bpmn_name}'.")
            raise wrapped from error
        return super(BusinessRuleTaskMixin, self)._run_hook(my_task)

    def _mapped_result(self, my_task):
        table = self.dmnEngine.decision_table
        rules = self.dmnEngine.decide(my_task)
        single_hit = (table.hit_policy or "UNIQUE").upper() in SINGLE_HIT_POLICIES
        if single_hit:
            rules = rules[:1]
        results = [rule.output_as_dict(my_task) for rule in rules]
        mode = self.map_decision_result or "resultList"
        if mode == "resultList":
            return results
        if mode == "singleResult":
            return self._at_most_one(results)
        if mode == "zeebe":
            values = [self._only_value(r) if len(table.outputs) == 1 else r for r in results]
            return values if not single_hit else (values[0] if values else None)
        if mode == "collectEntries":
            return [self._only_value(result) for result in results]
        if mode == "singleEntry":
            result = self._at_most_one(results)
            return None if result is None else self._only_value(result)
        raise ValueError(f"unknown mapDecisionResult '{mode}'")

    @staticmethod
    def _at_most_one(results):
        if len(results) > 1:
            raise ValueError(f"the decision matched {len(results)} rules where one result was expected")
        return results[0] if results else None

    @staticmethod
    def _only_value(result):
        if len(result) != 1:
            raise ValueError(f"the decision result has {len(result)} outputs where one was expected")
        return next(iter(result.values()))


class ParallelMultiInstanceTask(SpiffParallelMultiInstanceTask):
    """Checks its input collection before iterating it.

    SpiffWorkflow's parallel multi-instance task iterates a missing collection and fails with a
    bare TypeError that names no task; this one raises a WorkflowDataException naming the task
    (the sequential variant already does).
    """

    def create_children(self, my_task):
        if self.data_input is not None and hasattr(self.data_input, "exists"):
            if not self.data_input.exists(my_task):
                self.raise_data_exception(f"Missing data input '{self.data_input.bpmn_id}' for multiinstance task",
                                          my_task)
            if not isinstance(self.data_input.get(my_task), Iterable):
                self.raise_data_exception(f"Multiinstance data input '{self.data_input.bpmn_id}' must be iterable",
                                          my_task)
        super().create_children(my_task)


class MessageEventDefinition(SpiffMessageEventDefinition):
    """A spiff message event whose correlation/payload failures name the task.

    Correlation expressions are evaluated by SpiffWorkflow outside its error wrapping, so a
    missing variable surfaces as a bare NameError; here it becomes a WorkflowTaskException.
    """

    @classmethod
    def from_spiff(cls, event):
        return cls(event.name, event.correlation_properties, event.expression, event.message_var,
                   event.process_correlations, description=event.description)

    def __eq__(self, other):
        # Catch messages built with any MessageEventDefinition class (an application sending a
        # message need not know this subclass); SpiffWorkflow compares classes exactly.
        return isinstance(other, BaseMessageEventDefinition) and self.name == other.name

    def update_task_data(self, my_task):
        # A message without a spiffworkflow:messageVariable would drop its payload; a Camunda or
        # plain BPMN model expects the payload's fields as process data, so merge an object in.
        if self.message_var is None:
            payload = my_task.internal_data.pop(self.name, None)
            if isinstance(payload, dict):
                my_task.data.update(payload)
            return
        super().update_task_data(my_task)

    def throw(self, my_task):
        self._named(super().throw, my_task)

    def update_task(self, my_task):
        self._named(super().update_task, my_task)

    def _named(self, method, my_task):
        try:
            method(my_task)
        except SpiffWorkflowException:
            raise
        except Exception as error:
            raise WorkflowTaskException(f"message '{self.name}': {type(error).__name__}: {error}",
                                        task=my_task, exception=error) from error


# --------------------------------------------------------------------------- tasks


class _OutgoingFlowsMixin:
    """BPMN: several unconditioned flows out of an activity or event fork the token.

    Also keeps outgoing flows in document order. SpiffWorkflow sorts them by the y coordinate of
    their targets in the diagram, and an exclusive gateway takes the first flow whose condition
    holds — so with overlapping conditions, moving a shape would change which branch runs.
    BPMN engines evaluate in the order the flows are defined, and so does Phasegate.
    """

    def handles_multiple_outgoing(self):
        return True

    def get_position(self, node=None):
        return {"x": 0.0, "y": 0.0}  # equal positions: the stable sort keeps document order


class _CanonicalLoopMixin:
    """Multi-instance activities described by Camunda/Zeebe attributes (copied to pg: by normalize)."""

    PARALLEL_MI_CLASS = ParallelMultiInstanceTask

    def _add_multiinstance_task(self, loop_characteristics):
        collection = loop_characteristics.get(pg("collection"))
        if collection is None:
            return super()._add_multiinstance_task(loop_characteristics)
        element = loop_characteristics.get(pg("elementVariable"))
        output_collection = loop_characteristics.get(pg("outputCollection"))
        output_element = loop_characteristics.get(pg("outputElement"))
        condition = self.xpath("./bpmn:multiInstanceLoopCharacteristics/bpmn:completionCondition")
        condition = condition[0].text if condition else None
        params = {
            "task_spec": "",
            "cardinality": None,
            "data_input": TaskDataReference(collection),
            "data_output": TaskDataReference(output_collection) if output_collection else None,
            "input_item": TaskDataReference(element) if element else None,
            "output_item": TaskDataReference(output_element) if output_element else None,
            "condition": condition,
        }
        original = self.spec.task_specs.pop(self.task.name)
        if loop_characteristics.get("isSequential") == "true":
            self.task = self.SEQUENTIAL_MI_CLASS(self.spec, original.name, description="Sequential MultiInstance", **params)
        else:
            self.task = self.PARALLEL_MI_CLASS(self.spec, original.name, description="Parallel MultiInstance", **params)
        self._copy_task_attrs(original, loop_characteristics)


class TaskParser(_CanonicalLoopMixin, _OutgoingFlowsMixin, SpiffTaskParser):
    pass


class HumanTaskParser(_CanonicalLoopMixin, _OutgoingFlowsMixin, UserTaskParser):
    pass


class PythonScriptTaskParser(_CanonicalLoopMixin, _OutgoingFlowsMixin, ScriptTaskParser):
    def create_task(self):
        scripts = [child for child in self.node if child.tag == bpmn("script")]
        script = scripts[0].text if scripts else None
        if not (script or "").strip():
            raise ValidationException("script task has no script", node=self.node, file_name=self.filename)
        extensions = self.parse_extensions()
        return self.spec_class(self.spec, self.bpmn_id, script, prescript=extensions.get("preScript"),
                               postscript=extensions.get("postScript"), **self.bpmn_attributes)


class EmbeddedSubprocessParser(_CanonicalLoopMixin, _OutgoingFlowsMixin, SubWorkflowParser):
    pass


class CalledProcessParser(_CanonicalLoopMixin, _OutgoingFlowsMixin, CallActivityParser):
    pass


class AdHocParser(_CanonicalLoopMixin, _OutgoingFlowsMixin, AdHocSubprocessParser, SpiffTaskParser):
    pass


class ExclusiveOrInclusiveGatewayParser(_OutgoingFlowsMixin, ConditionalGatewayParser):
    pass


class ParallelGatewayParser(_OutgoingFlowsMixin, GatewayParser):
    pass


class EventGatewayParser(_OutgoingFlowsMixin, EventBasedGatewayParser):
    pass


class UnavailableServiceTaskParser(SpiffTaskParser):
    def create_task(self):
        raise ValidationException("service task implementations are not available in Phasegate",
                                  node=self.node, file_name=self.filename)


class DecisionTaskParser(_CanonicalLoopMixin, _OutgoingFlowsMixin, SpiffTaskParser):
    """A business rule task evaluating the DMN decision named by `pg:decision`."""

    def create_task(self):
        decision_id = self.get_decision_ref(self.node)
        if not decision_id:
            raise ValidationException("business rule task has no decision reference", node=self.node,
                                      file_name=self.filename)
        engine = self.process_parser.parser.get_engine(decision_id, self.node)
        extensions = self.parse_extensions()
        return DecisionTask(
            self.spec,
            self.bpmn_id,
            dmnEngine=engine,
            result_variable=self.node.get(pg("resultVariable")),
            map_decision_result=self.node.get(pg("mapDecisionResult")),
            prescript=extensions.get("preScript"),
            postscript=extensions.get("postScript"),
            **self.bpmn_attributes,
        )

    @staticmethod
    def get_decision_ref(node):
        return node.get(pg("decision"))


# --------------------------------------------------------------------------- events


class _CheckedMessagesMixin:
    def parse_message_event(self, message_event):
        with warnings.catch_warnings():
            # spiff-arena's older payload placement still works; the deprecation is SpiffWorkflow's business
            warnings.simplefilter("ignore", DeprecationWarning)
            definition = super().parse_message_event(message_event)
        return MessageEventDefinition.from_spiff(definition)


class StartParser(_CheckedMessagesMixin, _OutgoingFlowsMixin, SpiffStartEventParser):
    pass


class EndParser(_CheckedMessagesMixin, _OutgoingFlowsMixin, SpiffEventDefinitionParser, EndEventParser):
    """End events, including signal end events (which SpiffWorkflow's parser ignores)."""

    def create_task(self):
        event_definition = self.get_event_definition([
            MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, CANCEL_EVENT_XPATH, ERROR_EVENT_XPATH,
            ESCALATION_EVENT_XPATH, TERMINATION_EVENT_XPATH,
        ])
        task = self._create_task(event_definition)
        task.connect(self.spec.end)
        return task


class CatchParser(_CheckedMessagesMixin, _OutgoingFlowsMixin, SpiffIntermediateCatchEventParser):
    pass


class ThrowParser(_CheckedMessagesMixin, _OutgoingFlowsMixin, SpiffIntermediateThrowEventParser):
    pass


class BoundaryParser(_CheckedMessagesMixin, _OutgoingFlowsMixin, SpiffBoundaryEventParser):
    pass


class SendParser(_CheckedMessagesMixin, _CanonicalLoopMixin, _OutgoingFlowsMixin, SpiffSendTaskParser):
    pass


class ReceiveParser(_CheckedMessagesMixin, _CanonicalLoopMixin, _OutgoingFlowsMixin, SpiffReceiveTaskParser):
    pass


# --------------------------------------------------------------------------- processes and DMN


class ProcessParser(SpiffProcessParser):
    """Only `isExecutable="true"` makes a bpmn:process executable; sub-process bodies always are."""

    def __init__(self, p, node, nsmap, data_stores, filename=None, lane=None):
        super().__init__(p, node, nsmap, data_stores, filename=filename, lane=lane)
        if node.tag == bpmn("process"):
            self.process_executable = node.get("isExecutable") == "true"
        else:
            self.process_executable = True


class SingleDecisionParser(DMNParser):
    """SpiffWorkflow's DMN parser, pointed at one decision of a (possibly multi-decision) file."""

    def __init__(self, p, definitions, decision, nsmap, filename=None):
        super().__init__(p, definitions, nsmap, filename=filename)
        self.decision_node = decision

    def parse(self):
        if self.decision is None:
            self.decision = self._parse_decision([self.decision_node])

    @property
    def bpmn_id(self):
        return self.decision_node.get("id")

    def get_name(self):
        return self.decision_node.get("name")


class PhasegateParser(BpmnDmnParser):
    """Builds Phasegate's specs; use a fresh instance per build (a failed build poisons it — trap 7)."""

    PROCESS_PARSER_CLASS = ProcessParser
    OVERRIDE_PARSER_CLASSES = {
        full_tag("task"): (TaskParser, NoneTask),
        full_tag("userTask"): (HumanTaskParser, UserTask),
        full_tag("manualTask"): (TaskParser, ManualTask),
        full_tag("scriptTask"): (PythonScriptTaskParser, ScriptTask),
        full_tag("serviceTask"): (UnavailableServiceTaskParser, ServiceTask),
        full_tag("sendTask"): (SendParser, SendTask),
        full_tag("receiveTask"): (ReceiveParser, ReceiveTask),
        full_tag("businessRuleTask"): (DecisionTaskParser, DecisionTask),
        full_tag("subProcess"): (EmbeddedSubprocessParser, SubWorkflowTask),
        full_tag("transaction"): (EmbeddedSubprocessParser, TransactionSubprocess),
        full_tag("adHocSubProcess"): (AdHocParser, AdHocSubprocess),
        full_tag("callActivity"): (CalledProcessParser, CallActivity),
        full_tag("startEvent"): (StartParser, StartEvent),
        full_tag("endEvent"): (EndParser, EndEvent),
        full_tag("intermediateCatchEvent"): (CatchParser, IntermediateCatchEvent),
        full_tag("intermediateThrowEvent"): (ThrowParser, IntermediateThrowEvent),
        full_tag("boundaryEvent"): (BoundaryParser, BoundaryEvent),
        full_tag("exclusiveGateway"): (ExclusiveOrInclusiveGatewayParser, ExclusiveGateway),
        full_tag("inclusiveGateway"): (ExclusiveOrInclusiveGatewayParser, InclusiveGateway),
        full_tag("parallelGateway"): (ParallelGatewayParser, ParallelGateway),
        full_tag("eventBasedGateway"): (EventGatewayParser, EventBasedGateway),
    }

    def __init__(self):
        super().__init__(namespaces=dict(NSMAP))

    def add_dmn_xml(self, node, filename=None):
        namespaces = dict(self.namespaces)
        namespaces.update({k: v for k, v in node.nsmap.items() if k is not None})
        if None in node.nsmap:
            namespaces["dmn"] = node.nsmap[None]
        for decision in node.xpath(".//dmn:decision", namespaces=namespaces):
            decision_parser = SingleDecisionParser(self, node, decision, namespaces, filename=filename)
            self.dmn_parsers[decision_parser.bpmn_id] = decision_parser
            self.dmn_parsers_by_name[decision_parser.get_name()] = decision_parser

    def get_engine(self, decision_ref, node):
        decision_parser = self.dmn_parsers.get(decision_ref)
        if decision_parser is None:
            known = ", ".join(sorted(self.dmn_parsers)) or "none"
            raise ValidationException(f"decision '{decision_ref}' is not defined in any DMN file "
                                      f"of the package (decisions found: {known})", node=node)
        decision_parser.parse()
        tables = decision_parser.decision.decisionTables
        if len(tables) != 1:
            raise ValidationException(f"decision '{decision_ref}' has no decision table", node=node)
        return DMNEngine(tables[0])

    def get_subprocess_specs(self, name, specs=None, require_call_activity_specs=True):
        # The stock method stops recursing when the caller passes its own dict (it passes
        # `used` but never forwards `require_call_activity_specs`); this one does both.
        used = specs if specs is not None else {}
        wf_spec = self.get_spec(name)
        for task_spec in wf_spec.task_specs.values():
            if isinstance(task_spec, _SubWorkflowMixin) and task_spec.spec not in used:
                subprocess_spec = self.get_spec(task_spec.spec, required=require_call_activity_specs)
                used[task_spec.spec] = subprocess_spec
                if subprocess_spec is not None:
                    self.get_subprocess_specs(task_spec.spec, used, require_call_activity_specs)
        return used

"""Load-time checks: everything SpiffWorkflow would run wrongly, or reject without naming an element.

Two kinds of checks live here:

* `check_document` looks at the (normalized) XML of the processes Phasegate will execute and
  reports constructs SpiffWorkflow cannot run correctly — unsupported elements and event
  definitions, compensation, implementations Phasegate does not have (service tasks, Java
  delegates, listeners, non-Python scripts), unresolved references, flows that point nowhere,
  gateway flows without a condition. Each finding names the element.

* `check_specs_complete` is the catch-all run after the specs are built (the "silent-drop
  guard"): every flow node of every executed process must be in the built specs and every
  sequence flow between two present nodes must be wired. Whatever class of problem nobody
  foresaw, if it makes SpiffWorkflow leave part of a model out, it is reported here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from posixpath import dirname, join, normpath

from engine.domain.errors import Issue

from .expressions import ExpressionError, check_python_script
from .normalize import (
    ACTIVITI_NS,
    ACTIVITY_TAGS,
    BPMN_NS,
    CAMUNDA_NS,
    CONTAINER_TAGS,
    DMN_NAMESPACES,
    EVENT_TAGS,
    FLOW_NODE_TAGS,
    FLOWABLE_NS,
    SPIFF_NS,
    ZEEBE_NS,
    children,
    describe,
    engine_attribute,
    engine_extension_elements,
    extension_elements,
    is_bpmn,
    issue_at,
    local_name,
    pg,
)
from .parser import SUPPORTED_HIT_POLICIES

# --------------------------------------------------------------------------- package index


@dataclass
class PackageIndex:
    """What the checks need to know about the whole package."""

    # process id -> (relative path, bpmn:process element)
    processes: dict[str, tuple[str, object]] = field(default_factory=dict)
    # decision id -> (relative path, dmn:decision element)
    decisions: dict[str, tuple[str, object]] = field(default_factory=dict)
    # relative names of every file of the package
    files: set[str] = field(default_factory=set)


# Elements a process (or sub-process) may contain besides flow nodes; everything else is unknown.
_ALLOWED_CONTAINER_CHILDREN = frozenset({
    "sequenceFlow", "laneSet", "dataObject", "dataObjectReference", "dataStoreReference",
    "textAnnotation", "association", "group", "property", "ioSpecification", "ioBinding",
    "documentation", "extensionElements", "auditing", "monitoring", "incoming", "outgoing",
    "correlationSubscription", "resourceRole", "performer", "humanPerformer", "potentialOwner",
    "completionCondition", "standardLoopCharacteristics", "multiInstanceLoopCharacteristics",
    "dataInputAssociation", "dataOutputAssociation", "supports", "categoryValue",
})
_UNSUPPORTED_FLOW_NODES = {
    "complexGateway": "complex gateways are not supported",
}

# Event definitions SpiffWorkflow 3.2.0 (with Phasegate's parser) runs, per event element.
# Anything else would be silently parsed as a none event.
_EVENT_DEFINITIONS_RUN = {
    "startEvent": {"messageEventDefinition", "signalEventDefinition", "timerEventDefinition",
                   "conditionalEventDefinition"},
    "endEvent": {"messageEventDefinition", "signalEventDefinition", "cancelEventDefinition",
                 "errorEventDefinition", "escalationEventDefinition", "terminateEventDefinition"},
    "intermediateCatchEvent": {"messageEventDefinition", "signalEventDefinition", "timerEventDefinition",
                               "conditionalEventDefinition"},
    "intermediateThrowEvent": {"messageEventDefinition", "signalEventDefinition", "escalationEventDefinition"},
    "boundaryEvent": {"cancelEventDefinition", "errorEventDefinition", "escalationEventDefinition",
                      "messageEventDefinition", "signalEventDefinition", "timerEventDefinition",
                      "conditionalEventDefinition"},
}
_EVENT_REFERENCES = {
    "messageEventDefinition": ("messageRef", "message"),
    "signalEventDefinition": ("signalRef", "signal"),
    "errorEventDefinition": ("errorRef", "error"),
    "escalationEventDefinition": ("escalationRef", "escalation"),
}
_PYTHON_SCRIPT_FORMATS = ("", "python", "py", "python3", "text/python", "text/x-python")
_BPMN_IMPORT_TYPES = (BPMN_NS,)


def check_document(path: str, root, index: PackageIndex, scope: set[str]) -> list[Issue]:
    """Check every process of this document whose id is in `scope` (the executed processes)."""
    checker = _DocumentChecker(path, root, index)
    checker.check_imports()
    for process in children(root, "process"):
        if process.get("id") in scope:
            checker.check_container(process)
    return checker.issues


class _DocumentChecker:
    def __init__(self, path: str, root, index: PackageIndex):
        self.path = path
        self.root = root
        self.index = index
        self.issues: list[Issue] = []
        # ids of the document's root elements by tag (message, signal, error, escalation, …)
        self.root_ids: dict[str, set[str]] = {}
        for node in root:
            if isinstance(node.tag, str) and node.get("id"):
                self.root_ids.setdefault(local_name(node), set()).add(node.get("id"))

    def error(self, element, message: str) -> None:
        self.issues.append(issue_at(self.path, element, message))

    def warn(self, element, message: str) -> None:
        self.issues.append(issue_at(self.path, element, message, severity="warning"))

    # ----------------------------------------------------------------- document level

    def check_imports(self) -> None:
        for node in children(self.root, "import"):
            import_type = (node.get("importType") or "").strip()
            location = (node.get("location") or "").strip()
            if import_type not in _BPMN_IMPORT_TYPES + DMN_NAMESPACES:
                continue  # XML Schema / WSDL type imports: Phasegate does not use item definitions
            if not location:
                self.error(node, "import has no location")
                continue
            target = normpath(join(dirname(self.path), location))
            if target not in self.index.files:
                self.error(node, f"imported file '{location}' is not in the package (looked for '{target}')")

    # ----------------------------------------------------------------- containers

    def check_container(self, container) -> None:
        nodes = {}
        for child in container:
            if not isinstance(child.tag, str):
                continue
            tag = local_name(child)
            if not child.tag.startswith(f"{{{BPMN_NS}}}"):
                self.error(child, f"unknown element '{child.tag}' in {describe(container)}")
                continue
            if tag in FLOW_NODE_TAGS:
                if not child.get("id"):
                    self.error(child, f"{tag} at line {child.sourceline} has no id, so no flow can reach it")
                    continue
                nodes[child.get("id")] = child
            elif tag not in _ALLOWED_CONTAINER_CHILDREN:
                self.error(child, f"element '{tag}' is not supported inside a process")
        for node in nodes.values():
            self.check_flow_node(node)
        self.check_flows(container, nodes)
        for node in nodes.values():
            if local_name(node) in CONTAINER_TAGS:
                self.check_container(node)

    # ----------------------------------------------------------------- flow nodes

    def check_flow_node(self, node) -> None:
        tag = local_name(node)
        if tag in _UNSUPPORTED_FLOW_NODES:
            self.error(node, f"{describe(node)}: {_UNSUPPORTED_FLOW_NODES[tag]}")
            return
        if node.get("isForCompensation") == "true":
            self.error(node, f"{describe(node)} is a compensation handler; compensation is not supported")
        for quantity in ("startQuantity", "completionQuantity"):
            if node.get(quantity) not in (None, "1"):
                self.error(node, f"{describe(node)}: {quantity}={node.get(quantity)} is not supported")
        self.check_engine_extensions(node)
        if tag in EVENT_TAGS:
            self.check_event(node)
        checker = getattr(self, f"check_{tag}", None)
        if checker is not None:
            checker(node)
        for characteristics in children(node, "multiInstanceLoopCharacteristics"):
            if characteristics.get("behavior") not in (None, "All"):
                self.error(node, f"{describe(node)}: multi-instance behavior '{characteristics.get('behavior')}' "
                                 "is not supported")

    def check_engine_extensions(self, node) -> None:
        """Extensions that make another engine run code Phasegate cannot run."""
        for name in ("executionListener", "taskListener"):
            for listener in engine_extension_elements(node, name):
                what = _implementation_of(listener) or "a listener"
                self.error(node, f"{describe(node)}: {name} ({what}) is not supported in Phasegate")
        for mapping in engine_extension_elements(node, "inputOutput") + extension_elements(node, ZEEBE_NS, "ioMapping"):
            self.error(node, f"{describe(node)}: input/output variable mappings ({local_name(mapping)}) "
                             "are not supported in Phasegate")
        for connector in engine_extension_elements(node, "connector"):
            self.error(node, f"{describe(node)}: connectors are not available in Phasegate")
        for direction in ("in", "out"):
            for mapping in engine_extension_elements(node, direction):
                if mapping.get("variables") == "all" and not mapping.get("local") == "true":
                    continue
                if direction == "in" and mapping.get("businessKey") is not None:
                    continue  # business keys are not a Phasegate concept; nothing to pass
                self.error(node, f"{describe(node)}: call activity variable mapping <{direction}> other than "
                                 "variables=\"all\" is not supported (the called process sees and returns all data)")

    # ----------------------------------------------------------------- events

    def check_event(self, node) -> None:
        tag = local_name(node)
        definitions = [child for child in node if is_bpmn(child) and local_name(child).endswith("EventDefinition")]
        if node.get("eventDefinitionRefs") or children(node, "eventDefinitionRef"):
            self.error(node, f"{describe(node)}: referenced (global) event definitions are not supported")
        allowed = _EVENT_DEFINITIONS_RUN[tag]
        for definition in definitions:
            kind = local_name(definition)
            if kind == "compensateEventDefinition":
                self.error(node, f"{describe(node)}: compensation events are not supported")
                continue
            if kind == "linkEventDefinition":
                continue  # unmatched link events are reported by the link rewrite
            if kind not in allowed:
                self.error(node, f"{describe(node)}: {kind.replace('EventDefinition', '')} "
                                 f"{_EVENT_ROLE.get(tag, tag)} events are not supported")
                continue
            self.check_event_reference(node, definition)
        if tag == "boundaryEvent":
            if not definitions:
                self.error(node, f"{describe(node)}: a boundary event needs an event definition")
            attached = node.get("attachedToRef")
            parent = node.getparent()
            siblings = {child.get("id") for child in parent if is_bpmn(child) and local_name(child) in ACTIVITY_TAGS}
            if attached not in siblings:
                self.error(node, f"{describe(node)} is attached to '{attached}', which is not an activity "
                                 "of the same process")

    def check_event_reference(self, node, definition) -> None:
        kind = local_name(definition)
        if kind not in _EVENT_REFERENCES:
            return
        attribute, target = _EVENT_REFERENCES[kind]
        reference = definition.get(attribute)
        if reference is None:
            catches = local_name(node) in ("startEvent", "intermediateCatchEvent", "boundaryEvent")
            if kind == "messageEventDefinition" and catches and not node.get("name"):
                self.error(node, f"{describe(node)}: message event has neither a messageRef nor a name "
                                 "to match messages by")
            return
        if reference not in self.root_ids.get(target, set()):
            self.error(node, f"{describe(node)}: {attribute} '{reference}' does not resolve to a "
                             f"bpmn:{target} of this file")

    # ----------------------------------------------------------------- activities

    def check_serviceTask(self, node) -> None:
        implementation = _implementation_of(node)
        if not implementation and node.get("operationRef"):
            implementation = f"operation {node.get('operationRef')}"
        if implementation:
            self.error(node, f"{describe(node)}: service task implementation '{implementation}' "
                             "is not available in Phasegate")
        else:
            self.error(node, f"{describe(node)}: service task has no implementation Phasegate can run "
                             "(it would silently do nothing); use a script task or a user task")

    def check_sendTask(self, node) -> None:
        implementation = _implementation_of(node)
        if implementation:
            self.error(node, f"{describe(node)}: send task implementation '{implementation}' "
                             "is not available in Phasegate")
            return
        self._check_message_task(node, "send")

    def check_receiveTask(self, node) -> None:
        if node.get("instantiate") == "true":
            self.error(node, f"{describe(node)}: instantiating receive tasks are not supported; "
                             "use a message start event")
        self._check_message_task(node, "receive")

    def _check_message_task(self, node, verb: str) -> None:
        reference = node.get("messageRef")
        definitions = children(node, "messageEventDefinition")
        if reference is None and not definitions:
            self.error(node, f"{describe(node)}: {verb} task has no messageRef, so there is no message to {verb}")
            return
        if reference is not None and reference not in self.root_ids.get("message", set()):
            self.error(node, f"{describe(node)}: messageRef '{reference}' does not resolve to a bpmn:message of this file")
        for definition in definitions:
            self.check_event_reference(node, definition)

    def check_businessRuleTask(self, node) -> None:
        implementation = _implementation_of(node)
        if implementation:
            self.error(node, f"{describe(node)}: business rule implementation '{implementation}' "
                             "is not available in Phasegate")
            return
        decision = node.get(pg("decision"))
        if decision is None:
            if engine_attribute(node, "decisionRef") is None and not _has_decision_extension(node):
                self.error(node, f"{describe(node)}: business rule task names no decision "
                                 "(camunda:decisionRef, spiffworkflow:calledDecisionId or zeebe:calledDecision)")
            return  # an expression or bad result variable was reported by the normalizer
        if not decision:
            self.error(node, f"{describe(node)}: the decision reference is empty")
        elif decision not in self.index.decisions:
            known = ", ".join(sorted(self.index.decisions)) or "none"
            self.error(node, f"{describe(node)}: decision '{decision}' is not defined in any DMN file "
                             f"of the package (decisions found: {known})")

    def check_scriptTask(self, node) -> None:
        script_format = (node.get("scriptFormat") or node.get(pg("scriptFormat")) or "").strip().lower()
        if extension_elements(node, ZEEBE_NS, "taskDefinition"):
            self.error(node, f"{describe(node)}: job-worker script tasks (zeebe:taskDefinition) are not available "
                             "in Phasegate")
            return
        if script_format not in _PYTHON_SCRIPT_FORMATS:
            self.error(node, f"{describe(node)}: script format '{node.get('scriptFormat')}' is not supported; "
                             "Phasegate runs Python scripts only")
            return
        if engine_attribute(node, "resource") is not None:
            self.error(node, f"{describe(node)}: external script resources are not supported; "
                             "put the Python script in the model")
            return
        scripts = children(node, "script")
        text = scripts[0].text if scripts else None
        if not (text or "").strip():
            self.error(node, f"{describe(node)}: script task has no script")
            return
        try:
            check_python_script(text)
        except ExpressionError as error:
            self.error(scripts[0], f"{describe(node)}: {error}")
        self._check_spiff_scripts(node)

    def check_userTask(self, node) -> None:
        self._check_spiff_scripts(node)

    def check_manualTask(self, node) -> None:
        self._check_spiff_scripts(node)

    def check_task(self, node) -> None:
        self._check_spiff_scripts(node)

    def _check_spiff_scripts(self, node) -> None:
        for name in ("preScript", "postScript"):
            for script in extension_elements(node, SPIFF_NS, name):
                if (script.text or "").strip():
                    try:
                        check_python_script(script.text)
                    except ExpressionError as error:
                        self.error(node, f"{describe(node)}: spiffworkflow:{name}: {error}")

    def check_callActivity(self, node) -> None:
        called = (node.get("calledElement") or "").strip()
        if not called:
            self.error(node, f"{describe(node)}: call activity names no called process (calledElement)")
            return
        if called.startswith(("${", "#{", "=")):
            self.error(node, f"{describe(node)}: called element '{called}' is an expression; "
                             "it must be a fixed process id")
            return
        if called not in self.index.processes:
            known = ", ".join(sorted(self.index.processes)) or "none"
            self.error(node, f"{describe(node)}: called process '{called}' is not defined in any BPMN file "
                             f"of the package (processes found: {known})")
            return
        called_path, process = self.index.processes[called]
        if process.get("isExecutable") != "true":
            self.error(node, f"{describe(node)}: called process '{called}' ({called_path}) is not executable; "
                             "set isExecutable=\"true\" on it")

    def check_subProcess(self, node) -> None:
        if node.get("triggeredByEvent") != "true":
            return
        for start in children(node, "startEvent"):
            definitions = [c for c in start if is_bpmn(c) and local_name(c).endswith("EventDefinition")]
            if not definitions:
                self.error(start, f"{describe(start)}: the start event of an event sub-process needs an event "
                                  "definition (message, signal, timer or condition)")
            elif start.get("isInterrupting", "true") != "false":
                # SpiffWorkflow runs an event sub-process beside the process it belongs to and never
                # cancels that process, so an interrupting one would silently not interrupt.
                self.error(start, f"{describe(start)}: interrupting event sub-processes are not supported; "
                                  "set isInterrupting=\"false\" (the process then continues beside the handler) "
                                  "or use an interrupting boundary event on a sub-process")

    def check_eventBasedGateway(self, node) -> None:
        if node.get("instantiate") == "true" or node.get("eventGatewayType") == "Parallel":
            self.error(node, f"{describe(node)}: instantiating or parallel event-based gateways are not supported")

    # ----------------------------------------------------------------- flows

    def check_flows(self, container, nodes: dict) -> None:
        outgoing: dict[str, list] = {}
        for flow in children(container, "sequenceFlow"):
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            missing = [f"{role} '{ref}'" if ref else f"no {role}"
                       for role, ref in (("source", source), ("target", target)) if ref not in nodes]
            if missing:
                self.error(flow, f"sequence flow {flow.get('id')} points to a nonexistent element "
                                 f"({' and '.join(missing)}) of {describe(container)}")
                continue
            if local_name(nodes[source]) == "endEvent":
                self.error(flow, f"sequence flow {flow.get('id')} leaves {describe(nodes[source])}; "
                                 "an end event ends its path and cannot have outgoing flows")
                continue
            if local_name(nodes[target]) in ("startEvent", "boundaryEvent"):
                self.error(flow, f"sequence flow {flow.get('id')} leads into {describe(nodes[target])}, "
                                 f"which cannot have incoming flows")
                continue
            outgoing.setdefault(source, []).append(flow)
        for source_id, flows in outgoing.items():
            self.check_outgoing(nodes[source_id], flows, nodes)
        for node_id, node in nodes.items():
            default = node.get("default")
            if default and default not in {f.get("id") for f in outgoing.get(node_id, [])}:
                self.error(node, f"{describe(node)}: default flow '{default}' is not one of its outgoing flows")

    def check_outgoing(self, node, flows: list, nodes: dict) -> None:
        tag = local_name(node)
        default = node.get("default")
        conditional = [f for f in flows if children(f, "conditionExpression")]
        if tag in ("exclusiveGateway", "inclusiveGateway"):
            if len(flows) > 1:
                for flow in flows:
                    if flow.get("id") != default and not children(flow, "conditionExpression"):
                        self.error(flow, f"sequence flow {flow.get('id')} leaves {describe(node)} without a "
                                         "condition and is not its default flow")
            return
        if tag == "eventBasedGateway":
            for flow in flows:
                target = nodes[flow.get("targetRef")]
                if not _is_event_gateway_target(target):
                    self.error(flow, f"{describe(node)}: outgoing flow {flow.get('id')} leads to "
                                     f"{describe(target)}; an event-based gateway must lead to catch events "
                                     "or receive tasks")
        if conditional and tag in ("parallelGateway", "eventBasedGateway"):
            for flow in conditional:
                self.warn(flow, f"the condition on sequence flow {flow.get('id')} is ignored: flows out of "
                                f"a {tag} are always taken")
            return
        for flow in conditional:
            self.error(flow, f"conditional sequence flow {flow.get('id')} out of {describe(node)} is not "
                             "supported; put an exclusive or inclusive gateway after the element")


_EVENT_ROLE = {
    "startEvent": "start",
    "endEvent": "end",
    "intermediateCatchEvent": "intermediate catch",
    "intermediateThrowEvent": "intermediate throw",
    "boundaryEvent": "boundary",
}


def _is_event_gateway_target(node) -> bool:
    if local_name(node) == "receiveTask":
        return True
    if local_name(node) != "intermediateCatchEvent":
        return False
    kinds = {local_name(child) for child in node if local_name(child).endswith("EventDefinition")}
    return bool(kinds) and kinds <= _EVENT_DEFINITIONS_RUN["intermediateCatchEvent"]


def _implementation_of(node) -> str | None:
    """How another engine would run this element's code, or None when there is nothing to run."""
    for attribute in ("class", "delegateExpression", "expression"):
        value = engine_attribute(node, attribute)
        if value:
            return f"{_prefix(node, attribute)}:{attribute}={value}"
    engine_type = engine_attribute(node, "type")
    if engine_type:
        topic = engine_attribute(node, "topic")
        return f"{_prefix(node, 'type')}:type={engine_type}" + (f" (topic {topic})" if topic else "")
    for definition in extension_elements(node, ZEEBE_NS, "taskDefinition"):
        return f"zeebe:taskDefinition type={definition.get('type')}"
    for operator in extension_elements(node, SPIFF_NS, "serviceTaskOperator"):
        return f"spiffworkflow:serviceTaskOperator {operator.get('id')}"
    for connector in engine_extension_elements(node, "connector"):
        return "camunda:connector"
    for script in engine_extension_elements(node, "script"):
        return f"script ({script.get('scriptFormat') or 'unknown language'})"
    implementation = node.get("implementation")
    if implementation and implementation not in ("##unspecified", "##WebService", "##none"):
        return f"implementation={implementation}"
    return None


def _prefix(node, attribute: str) -> str:
    for namespace, prefix in ((CAMUNDA_NS, "camunda"), (ACTIVITI_NS, "activiti"), (FLOWABLE_NS, "flowable")):
        if node.get(f"{{{namespace}}}{attribute}") is not None:
            return prefix
    return "engine"


def _has_decision_extension(node) -> bool:
    return bool(extension_elements(node, SPIFF_NS, "calledDecisionId")
                or extension_elements(node, ZEEBE_NS, "calledDecision"))


# --------------------------------------------------------------------------- silent-drop guard


def check_specs_complete(path_of: dict[str, str], containers: dict[str, object],
                         specs: dict[str, object]) -> list[Issue]:
    """Every flow node of every built container is in its spec, every flow between them is wired.

    `containers` maps a spec name (process id or sub-process id) to its XML element, `specs` the
    same names to the built SpiffWorkflow specs, `path_of` a spec name to its file. A container
    whose spec was not built is skipped: the element that should have built it is reported.
    """
    issues: list[Issue] = []
    for name, container in containers.items():
        spec = specs.get(name)
        if spec is None:
            continue
        path = path_of[name]
        task_specs = spec.task_specs
        present = {}
        for node in container:
            if not is_bpmn(node) or local_name(node) not in FLOW_NODE_TAGS or not node.get("id"):
                continue
            node_id = node.get("id")
            if node_id in task_specs:
                present[node_id] = node
            else:
                issues.append(issue_at(path, node, f"element {node_id} ({local_name(node)}) would not run: "
                                                   "it is not reachable from a start event of "
                                                   f"{describe(container)}, so it is missing from the "
                                                   "built process"))
        for flow in children(container, "sequenceFlow"):
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if source not in present or target not in present:
                continue
            outputs = {output.name for output in task_specs[source].outputs}
            if target in outputs or f"{target}.BoundaryEventSplit" in outputs:
                continue
            issues.append(issue_at(path, flow, f"sequence flow {flow.get('id')} from {source} to {target} "
                                               "would never be taken: it is missing from the built process"))
    return issues


# --------------------------------------------------------------------------- DMN decisions


def decision_problems(decision) -> list[str]:
    """Why SpiffWorkflow could not evaluate this dmn:decision correctly (empty: it can)."""
    problems = []
    tables = [child for child in decision if local_name(child) == "decisionTable"]
    if len(tables) != 1:
        problems.append("it has no decision table (literal expressions, contexts and other "
                        "decision logic are not supported)")
    required = list(dict.fromkeys(node.get("href", "").lstrip("#") for node in decision.iter()
                                  if local_name(node) == "requiredDecision"))
    if required:
        problems.append(f"it requires decision(s) {', '.join(required)}; decision requirement graphs are "
                        "not supported — evaluate each decision in its own business rule task")
    for table in tables:
        hit_policy = (table.get("hitPolicy") or "UNIQUE").upper()
        if hit_policy not in SUPPORTED_HIT_POLICIES:
            problems.append(f"hit policy {hit_policy} is not supported "
                            f"(supported: {', '.join(SUPPORTED_HIT_POLICIES)})")
        if table.get("aggregation"):
            problems.append(f"COLLECT aggregation {table.get('aggregation')} is not supported")
        if not [child for child in table if local_name(child) == "output"]:
            problems.append("its decision table has no output")
    return problems


# --------------------------------------------------------------------------- call graph


def check_call_cycles(index: PackageIndex, roots: list[str]) -> list[Issue]:
    """Recursive call activities: SpiffWorkflow creates the called workflow eagerly and keeps one
    spec per process id, so a process that (directly or indirectly) calls itself never ends."""
    issues: list[Issue] = []
    reported: set[int] = set()

    def calls(process_id: str):
        _, process = index.processes[process_id]
        for node in process.iter():
            if is_bpmn(node, "callActivity") and (node.get("calledElement") or "").strip() in index.processes:
                yield node, node.get("calledElement").strip()

    def visit(process_id: str, chain: list[str]) -> None:
        for call, called in calls(process_id):
            if called in chain:
                if id(call) not in reported:
                    reported.add(id(call))
                    cycle = " → ".join(chain[chain.index(called):] + [called])
                    path = index.processes[process_id][0]
                    issues.append(issue_at(path, call, f"{describe(call)} calls process '{called}' recursively "
                                                       f"({cycle}); recursive call activities are not supported"))
                continue
            visit(called, chain + [called])

    for root in roots:
        visit(root, [root])
    return issues

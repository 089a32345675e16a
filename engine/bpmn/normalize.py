"""The XML pre-pass: read model files safely and rewrite vendor dialects into one canonical form.

SpiffWorkflow's parser understands Python expressions, standard BPMN and a few spiff-arena
extensions. Models from Camunda 7, Camunda 8 (Zeebe), Flowable/Activiti and plain modellers
say the same things differently, and several of the differences make SpiffWorkflow drop or
mis-run parts of a model without any error (see the corpus README, traps 1, 2, 5 and 6).
Instead of teaching every parser class every dialect, this module rewrites the lxml tree once,
before parsing, into the form the Phasegate parser reads:

* sequence flows without an id get a deterministic id (else SpiffWorkflow ignores them);
* QName references (``tns:Message_1``) become plain ids; messages, signals, errors and
  escalations without a name are named after their id (SpiffWorkflow matches by name);
* each link throw/catch pair becomes a sequence flow between the two (now plain) events;
* conditions, timer values, loop/multi-instance expressions and conditional events are
  translated to Python (`expressions.py`);
* vendor extensions that carry execution facts are copied to attributes in the Phasegate
  namespace (`PG_NS`): the decision of a business rule task, how its result is stored, the
  collection a multi-instance activity iterates over;
* DMN decision tables written in FEEL (Camunda's unary tests such as ``[250..1000]``) get the
  Python/``?`` form SpiffWorkflow's DMN engine evaluates.

Everything here is deterministic: the engine re-creates specs from the stored original texts
and must get identical results. Problems found while rewriting are returned as issues naming the
element (`issue_at`); the loader keeps those that fall inside the executed processes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from engine.domain.errors import Issue

from .expressions import ExpressionError, translate_expression, translate_timer, is_identifier

# --------------------------------------------------------------------------- namespaces

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
ACTIVITI_NS = "http://activiti.org/bpmn"
FLOWABLE_NS = "http://flowable.org/bpmn"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
PG_NS = "urn:phasegate:bpmn:normalized"
# Namespaces whose attributes follow the Camunda 7 conventions (Camunda forked Activiti,
# Flowable forked it again; old Camunda models even bind the camunda prefix to Activiti's URI).
JAVA_ENGINE_NAMESPACES = (CAMUNDA_NS, ACTIVITI_NS, FLOWABLE_NS)
DMN_NAMESPACES = (
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
)

NSMAP = {
    "bpmn": BPMN_NS,
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "camunda": CAMUNDA_NS,
    "zeebe": ZEEBE_NS,
    "spiffworkflow": SPIFF_NS,
}

# Flow nodes: everything a sequence flow can connect or a token can sit on.
ACTIVITY_TAGS = frozenset({
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
})
EVENT_TAGS = frozenset({"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"})
GATEWAY_TAGS = frozenset({"exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway"})
FLOW_NODE_TAGS = ACTIVITY_TAGS | EVENT_TAGS | GATEWAY_TAGS
# Containers whose children are parsed as a process of their own by SpiffWorkflow.
CONTAINER_TAGS = frozenset({"process", "subProcess", "transaction", "adHocSubProcess"})


def bpmn(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def pg(name: str) -> str:
    return f"{{{PG_NS}}}{name}"


def local_name(element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def is_bpmn(element, *tags: str) -> bool:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(f"{{{BPMN_NS}}}"):
        return False
    return not tags or local_name(element) in tags


def children(element, tag: str) -> list:
    return [child for child in element if is_bpmn(child, tag)]


def descendants(element, *tags: str) -> list:
    return [node for node in element.iter() if is_bpmn(node, *tags)]


def engine_attribute(element, name: str) -> str | None:
    """`camunda:name` (or the Activiti/Flowable equivalent) of an element."""
    for namespace in JAVA_ENGINE_NAMESPACES:
        value = element.get(f"{{{namespace}}}{name}")
        if value is not None:
            return value
    return None


def extension_elements(element, namespace: str, name: str) -> list:
    """Direct children named {namespace}name of the element's bpmn:extensionElements."""
    found = []
    for extensions in children(element, "extensionElements"):
        found.extend(child for child in extensions if child.tag == f"{{{namespace}}}{name}")
    return found


def engine_extension_elements(element, name: str) -> list:
    found = []
    for namespace in JAVA_ENGINE_NAMESPACES:
        found.extend(extension_elements(element, namespace, name))
    return found


# Parts of an element that an issue does not name: a condition, a timer value or an event
# definition may carry an id of its own, but the modeller knows the sequence flow or event around it.
_DETAIL_TAGS = frozenset({
    "conditionExpression", "condition", "timeDate", "timeDuration", "timeCycle", "loopCardinality",
    "completionCondition", "loopCondition", "multiInstanceLoopCharacteristics", "standardLoopCharacteristics",
    "script", "documentation", "extensionElements", "ioSpecification", "dataInput", "dataOutput", "inputSet",
    "outputSet", "dataInputRefs", "dataOutputRefs", "incoming", "outgoing", "formalExpression", "sourceRef",
    "targetRef", "dataInputAssociation", "dataOutputAssociation", "inputDataItem", "outputDataItem",
    "loopDataInputRef", "loopDataOutputRef", "text", "inputExpression", "inputEntry", "outputEntry",
})


def nearest_with_id(element):
    """The element an issue names: the element itself, or for a detail (a condition, a timer
    value, an event definition, an extension) the element it belongs to."""
    node = element
    while node is not None and _is_detail(node):
        node = node.getparent()
    return node if node is not None else element


def _is_detail(node) -> bool:
    if not isinstance(node.tag, str):
        return True
    tag = local_name(node)
    if tag in _DETAIL_TAGS or tag.endswith("EventDefinition"):
        return True
    if not node.tag.startswith(f"{{{BPMN_NS}}}"):  # vendor extension elements
        ancestor = node.getparent()
        while ancestor is not None:
            if local_name(ancestor) == "extensionElements":
                return True
            ancestor = ancestor.getparent()
    return False


def issue_at(path: str, element, message: str, severity: str = "error") -> Issue:
    """An issue naming the element (its id, or its tag when it has none) — see `nearest_with_id`."""
    named = nearest_with_id(element)
    element_id = named.get("id") if isinstance(named.tag, str) else None
    line = element.sourceline or named.sourceline
    return Issue(path=path, line=line, element_id=element_id or local_name(named) or None,
                 message=message, severity=severity)


def describe(element) -> str:
    """`userTask 'Approve' (Task_1)` — how messages refer to an element."""
    name = element.get("name")
    label = f" '{_one_line(name)}'" if name else ""
    return f"{local_name(element)}{label} ({element.get('id') or 'no id'})"


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- safe reading

_DOCTYPE = re.compile(r"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_DECLARATION = re.compile(r"^(\s*<\?xml[^>]*?)\sencoding\s*=\s*[\"'][^\"']*[\"']")


def _hardened_parser():
    # No DTD loading, no entity expansion, no network, no huge trees: an XML bomb or an
    # external entity must be refused, never expanded (the text check below refuses them first).
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, dtd_validation=False, remove_comments=False)


def decode_model_bytes(data: bytes) -> str:
    """Decode a model file; honours a BOM and the XML declaration's encoding, else UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    head = data[:200].decode("ascii", errors="replace")
    match = re.search(r"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']", head)
    encoding = match.group(1) if match else "utf-8"
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        return data.decode("utf-8")


def parse_xml(text: str, path: str) -> tuple[object | None, list[Issue]]:
    """Parse model text with a hardened parser; (root, []) or (None, [issue with the line])."""
    doctype = _DOCTYPE.search(text)
    if doctype:
        line = text.count("\n", 0, doctype.start()) + 1
        return None, [Issue(path, line, None, "XML with a DOCTYPE or entity declarations is refused "
                                              "(external entities and entity expansion are not allowed)")]
    # lxml refuses str input with an encoding declaration; the text is already decoded.
    data = _DECLARATION.sub(r"\1", text, count=1).encode("utf-8")
    try:
        root = etree.fromstring(data, _hardened_parser())
    except etree.XMLSyntaxError as error:
        line = error.lineno if error.lineno else None
        message = error.msg if hasattr(error, "msg") and error.msg else str(error)
        return None, [Issue(path, line, None, f"malformed XML: {message}")]
    except (ValueError, etree.LxmlError) as error:
        return None, [Issue(path, None, None, f"malformed XML: {error}")]
    if root is None:
        return None, [Issue(path, None, None, "malformed XML: empty document")]
    return root, []


def document_kind(root) -> str | None:
    """'bpmn' for BPMN definitions, 'dmn' for DMN definitions, None for anything else."""
    tag = root.tag if isinstance(root.tag, str) else ""
    if tag == bpmn("definitions"):
        return "bpmn"
    if any(tag == f"{{{namespace}}}definitions" for namespace in DMN_NAMESPACES):
        return "dmn"
    return None


# --------------------------------------------------------------------------- normalization


@dataclass
class NormalizedDocument:
    path: str
    root: object
    issues: list[Issue] = field(default_factory=list)


def normalize_bpmn(root, path: str) -> NormalizedDocument:
    """Rewrite a BPMN tree in place into the canonical form (see the module docstring)."""
    document = NormalizedDocument(path=path, root=root)
    _name_anonymous_flows(document)
    _resolve_qname_references(document)
    _name_event_targets(document)
    _rewrite_link_events(document)
    _translate_expressions(document)
    _canonical_call_activities(document)
    _canonical_business_rules(document)
    _canonical_multi_instance(document)
    _canonical_zeebe_scripts(document)
    return document


def _name_anonymous_flows(document: NormalizedDocument) -> None:
    """Trap 1: SpiffWorkflow indexes nodes by `@id`, so a sequenceFlow without one is dropped."""
    used = {node.get("id") for node in document.root.iter() if isinstance(node.tag, str) and node.get("id")}
    for flow in descendants(document.root, "sequenceFlow"):
        if flow.get("id"):
            continue
        source, target = flow.get("sourceRef") or "none", flow.get("targetRef") or "none"
        number = 1
        while f"Flow_{source}_{target}_{number}" in used:
            number += 1
        flow_id = f"Flow_{source}_{target}_{number}"
        used.add(flow_id)
        flow.set("id", flow_id)


_REFERENCE_ATTRIBUTES = ("messageRef", "signalRef", "errorRef", "escalationRef", "calledElement",
                         "processRef", "dataStoreRef", "attachedToRef", "default")


def _resolve_qname_references(document: NormalizedDocument) -> None:
    """BPMN references are QNames; tools write `tns:Message_1`. SpiffWorkflow wants the bare id."""
    ids = {node.get("id") for node in document.root.iter() if isinstance(node.tag, str) and node.get("id")}
    for node in document.root.iter():
        if not isinstance(node.tag, str):
            continue
        for attribute in _REFERENCE_ATTRIBUTES:
            value = node.get(attribute)
            if value and ":" in value and value not in ids:
                local = value.rsplit(":", 1)[1]
                if local in ids:
                    node.set(attribute, local)


def _name_event_targets(document: NormalizedDocument) -> None:
    """SpiffWorkflow matches messages/signals/errors by name; an unnamed one gets its id as name."""
    for node in descendants(document.root, "message", "signal", "error", "escalation"):
        if node.getparent() is document.root and node.get("id") and not node.get("name"):
            node.set("name", node.get("id"))


def _rewrite_link_events(document: NormalizedDocument) -> None:
    """Trap 2: turn each link throw → link catch pair into a sequence flow between the two events.

    A link pair is a "go to" inside one process level, which is exactly a sequence flow. The
    events keep their ids and tags; without their link definitions SpiffWorkflow runs them as
    none events, which pass the token straight through.
    """
    for container in descendants(document.root, *CONTAINER_TAGS):
        throws, catches = [], {}
        for event in container:
            if not is_bpmn(event, "intermediateThrowEvent", "intermediateCatchEvent"):
                continue
            links = children(event, "linkEventDefinition")
            if not links:
                continue
            if len([d for d in event if local_name(d).endswith("EventDefinition")]) > 1:
                document.issues.append(issue_at(document.path, event,
                                                "a link event cannot have other event definitions"))
                continue
            name = links[0].get("name") or event.get("name") or ""
            name = _one_line(name)
            if is_bpmn(event, "intermediateThrowEvent"):
                throws.append((name, event))
            else:
                catches.setdefault(name, []).append(event)
        matched_catches = set()
        for name, throw in throws:
            targets = catches.get(name, [])
            if not name:
                document.issues.append(issue_at(document.path, throw, "link throw event has no link name"))
                continue
            if not targets:
                document.issues.append(issue_at(
                    document.path, throw,
                    f"link throw event '{name}' has no link catch event with the same name in the same process"))
                continue
            if len(targets) > 1:
                ids = ", ".join(t.get("id") or "?" for t in targets)
                document.issues.append(issue_at(
                    document.path, throw, f"link name '{name}' is caught by more than one event ({ids})"))
                continue
            catch = targets[0]
            matched_catches.add(id(catch))
            _link(document, container, throw, catch)
        for name, events in catches.items():
            for catch in events:
                if id(catch) in matched_catches:
                    continue
                if any(id(other) in matched_catches for other in events):
                    continue  # the ambiguity is reported on the throw event
                document.issues.append(issue_at(
                    document.path, catch,
                    f"link catch event '{name}' has no link throw event with the same name; it can never be reached"))


def _link(document: NormalizedDocument, container, throw, catch) -> None:
    throw_id, catch_id = throw.get("id"), catch.get("id")
    if not throw_id or not catch_id:
        return  # reported as an element without an id by validation
    flow_id = f"Flow_link_{throw_id}_{catch_id}"
    flow = etree.SubElement(container, bpmn("sequenceFlow"))
    flow.set("id", flow_id)
    flow.set("sourceRef", throw_id)
    flow.set("targetRef", catch_id)
    for event, direction in ((throw, "outgoing"), (catch, "incoming")):
        for definition in children(event, "linkEventDefinition"):
            event.remove(definition)
        reference = etree.Element(bpmn(direction))
        reference.text = flow_id
        # incoming/outgoing come right after documentation/extensionElements in the schema
        position = len([c for c in event if local_name(c) in ("documentation", "extensionElements",
                                                             "incoming", "outgoing")])
        event.insert(position, reference)


def _translate_expressions(document: NormalizedDocument) -> None:
    """Trap 5 and 6: JUEL/FEEL conditions and unquoted ISO timer values become Python."""
    path = document.path

    def translate(node, what: str, translator, *args) -> None:
        text = node.text or ""
        try:
            node.text = translator(text, *args)
        except ExpressionError as error:
            shown = _one_line(text)[:120]
            document.issues.append(issue_at(path, node, f"{what} '{shown}' cannot be used: {error}"))

    for flow in descendants(document.root, "sequenceFlow"):
        for condition in children(flow, "conditionExpression"):
            language = (condition.get("language") or "").lower()
            if language and not _is_supported_expression_language(language):
                document.issues.append(issue_at(path, condition,
                                                f"condition language '{condition.get('language')}' is not supported"))
                continue
            if not (condition.text or "").strip():
                flow.remove(condition)  # an empty condition element is no condition (bpmn.io writes these)
                continue
            translate(condition, "condition", translate_expression)
    for timer in descendants(document.root, "timerEventDefinition"):
        values = [child for child in timer if local_name(child) in ("timeDate", "timeDuration", "timeCycle")]
        if not values:
            document.issues.append(issue_at(path, timer,
                                            "timer event has no timeDate, timeDuration or timeCycle"))
        for value in values:
            translate(value, local_name(value), translate_timer, local_name(value))
    for characteristics in descendants(document.root, "multiInstanceLoopCharacteristics"):
        for tag in ("loopCardinality", "completionCondition"):
            for node in children(characteristics, tag):
                if (node.text or "").strip():
                    translate(node, tag, translate_expression)
                else:
                    characteristics.remove(node)
    for characteristics in descendants(document.root, "standardLoopCharacteristics"):
        for node in children(characteristics, "loopCondition"):
            if (node.text or "").strip():
                translate(node, "loopCondition", translate_expression)
            else:
                characteristics.remove(node)
    for definition in descendants(document.root, "conditionalEventDefinition"):
        for node in children(definition, "condition"):
            translate(node, "condition", translate_expression)
    for ad_hoc in descendants(document.root, "adHocSubProcess"):
        for node in children(ad_hoc, "completionCondition"):
            if (node.text or "").strip():
                translate(node, "completionCondition", translate_expression)


def _is_supported_expression_language(language: str) -> bool:
    """Python, and the JUEL/FEEL subsets `expressions.py` translates; not groovy, javascript, xpath."""
    return language in ("el", "python", "py") or any(word in language for word in ("python", "juel", "feel"))


def _canonical_call_activities(document: NormalizedDocument) -> None:
    """Camunda 8 names the called process in zeebe:calledElement processId, not calledElement."""
    for call in descendants(document.root, "callActivity"):
        if call.get("calledElement"):
            continue
        for extension in extension_elements(call, ZEEBE_NS, "calledElement"):
            process_id = (extension.get("processId") or "").strip()
            if process_id.startswith("="):
                try:
                    value = translate_expression(process_id)
                except ExpressionError:
                    value = None
                literal = _string_literal(value)
                if literal is None:
                    document.issues.append(issue_at(document.path, call,
                                                    f"called process '{process_id}' is an expression; "
                                                    "the called process must be a fixed process id"))
                    continue
                process_id = literal
            if process_id:
                call.set("calledElement", process_id)


def _string_literal(python: str | None) -> str | None:
    if python is None:
        return None
    import ast

    try:
        value = ast.literal_eval(python)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


_MAP_DECISION_RESULTS = ("singleEntry", "singleResult", "collectEntries", "resultList")


def _canonical_business_rules(document: NormalizedDocument) -> None:
    """Record the decision and result handling of each business rule task as pg: attributes."""
    for task in descendants(document.root, "businessRuleTask"):
        decision, result_variable, mapping = None, None, None
        camunda_ref = engine_attribute(task, "decisionRef")
        spiff_refs = extension_elements(task, SPIFF_NS, "calledDecisionId")
        zeebe_refs = extension_elements(task, ZEEBE_NS, "calledDecision")
        if camunda_ref is not None:
            decision = camunda_ref.strip()
            result_variable = engine_attribute(task, "resultVariable")
            mapping = engine_attribute(task, "mapDecisionResult") or ("resultList" if result_variable else None)
        elif spiff_refs:
            decision = (spiff_refs[0].text or "").strip()
        elif zeebe_refs:
            decision = (zeebe_refs[0].get("decisionId") or "").strip()
            result_variable = zeebe_refs[0].get("resultVariable")
            mapping = "zeebe" if result_variable else None
        if decision is None:
            continue  # validation reports the missing decision (or the unsupported implementation)
        if decision.startswith(("${", "#{", "=")):
            document.issues.append(issue_at(document.path, task,
                                            f"decision reference '{decision}' is an expression; "
                                            "it must be a fixed decision id"))
            continue
        task.set(pg("decision"), decision)
        if result_variable:
            result_variable = result_variable.strip()
            if not is_identifier(result_variable):
                document.issues.append(issue_at(document.path, task,
                                                f"result variable '{result_variable}' is not a variable name"))
                continue
            if mapping not in _MAP_DECISION_RESULTS + ("zeebe",):
                document.issues.append(issue_at(document.path, task,
                                                f"mapDecisionResult '{mapping}' is not supported"))
                continue
            task.set(pg("resultVariable"), result_variable)
            task.set(pg("mapDecisionResult"), mapping)


def _canonical_multi_instance(document: NormalizedDocument) -> None:
    """Camunda's collection/elementVariable and Zeebe's loopCharacteristics as pg: attributes.

    The standard BPMN form (loopDataInputRef/inputDataItem, loopCardinality) is left as it is.
    """
    for characteristics in descendants(document.root, "multiInstanceLoopCharacteristics"):
        activity = characteristics.getparent()
        collection = engine_attribute(characteristics, "collection")
        element = engine_attribute(characteristics, "elementVariable")
        output_collection = output_element = None
        zeebe = extension_elements(characteristics, ZEEBE_NS, "loopCharacteristics")
        if zeebe:
            collection = zeebe[0].get("inputCollection")
            element = zeebe[0].get("inputElement")
            output_collection = zeebe[0].get("outputCollection")
            output_element = zeebe[0].get("outputElement")
        if collection is None:
            continue
        values = {"collection": collection, "elementVariable": element,
                  "outputCollection": output_collection, "outputElement": output_element}
        translated = {}
        for key, value in values.items():
            if value is None or not value.strip():
                continue
            try:
                python = translate_expression(value)
            except ExpressionError as error:
                document.issues.append(issue_at(document.path, activity,
                                                f"multi-instance {key} '{value}' cannot be used: {error}"))
                continue
            if not is_identifier(python):
                document.issues.append(issue_at(
                    document.path, activity,
                    f"multi-instance {key} '{value}' must be a variable name (got the expression '{python}')"))
                continue
            translated[key] = python
        for key, python in translated.items():
            characteristics.set(pg(key), python)


def _canonical_zeebe_scripts(document: NormalizedDocument) -> None:
    """A Zeebe script task (`zeebe:script expression="=a + b" resultVariable="c"`) as Python."""
    for task in descendants(document.root, "scriptTask"):
        scripts = extension_elements(task, ZEEBE_NS, "script")
        if not scripts or children(task, "script"):
            continue
        expression, result = scripts[0].get("expression") or "", (scripts[0].get("resultVariable") or "").strip()
        try:
            python = translate_expression(expression)
        except ExpressionError as error:
            document.issues.append(issue_at(document.path, task, f"script expression '{expression}' cannot be used: {error}"))
            continue
        if not is_identifier(result):
            document.issues.append(issue_at(document.path, task, f"script result variable '{result}' is not a variable name"))
            continue
        script = etree.SubElement(task, bpmn("script"))
        script.text = f"{result} = {python}"
        task.set(pg("scriptFormat"), "python")


# --------------------------------------------------------------------------- DMN


def dmn_children(element, tag: str) -> list:
    return [child for child in element if local_name(child) == tag]


def normalize_dmn(root, path: str) -> NormalizedDocument:
    """Rewrite decision tables into what SpiffWorkflow's DMN engine evaluates (Python, `?` tests).

    Input entries written as FEEL unary tests (`[250..1000]`, `"a","b"`, `not("x")`), FEEL/JUEL
    input expressions and FEEL literals in output entries are translated; anything that cannot be
    is reported naming the rule. Only decisions with problems are affected: the loader reports
    them for the decisions a process uses and warns about the others.
    """
    from .expressions import translate_dmn_expression, translate_dmn_input_entry

    document = NormalizedDocument(path=path, root=root)
    for table in root.iter():
        if local_name(table) != "decisionTable":
            continue
        for clause in dmn_children(table, "input"):
            for expression in dmn_children(clause, "inputExpression"):
                for text in dmn_children(expression, "text"):
                    _translate_dmn_text(document, text, clause, "input expression", translate_dmn_expression)
        for rule in dmn_children(table, "rule"):
            for entry in dmn_children(rule, "inputEntry"):
                for text in dmn_children(entry, "text"):
                    _translate_dmn_text(document, text, rule, "input entry", translate_dmn_input_entry)
            for entry in dmn_children(rule, "outputEntry"):
                for text in dmn_children(entry, "text"):
                    _translate_dmn_text(document, text, rule, "output entry", translate_dmn_expression)
    return document


def _translate_dmn_text(document: NormalizedDocument, node, owner, what: str, translator) -> None:
    try:
        node.text = translator(node.text)
    except ExpressionError as error:
        shown = _one_line(node.text or "")[:120]
        document.issues.append(issue_at(document.path, owner, f"{what} '{shown}' cannot be used: {error}"))


def decision_of(element):
    """The dmn:decision an element of a DMN document belongs to."""
    node = element
    while node is not None:
        if local_name(node) == "decision":
            return node
        node = node.getparent()
    return None

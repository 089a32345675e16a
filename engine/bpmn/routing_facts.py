"""Routing facts: what Phasegate's task routing needs to know about each flow node.

Extracted from the (normalized) XML at load time into `ElementInfo` records that are stored
with a deployment: candidate roles (candidateGroups, a `role` property, or the lane), assignee,
phase (the `phase` property of the element or its innermost enclosing sub-process), form
(`form` property, `camunda:formKey`, spiff-arena's schema file name, or `camunda:formData`
turned into a JSON Schema), due date, gate id and documentation. docs/bpmn-conventions.md
describes the conventions for process designers.
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from engine.domain.errors import Issue

from .expressions import ExpressionError, translate_value
from .normalize import (
    FLOW_NODE_TAGS,
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
)
from .package import ElementInfo

if TYPE_CHECKING:  # the loader's working state; only read here
    from .loader import _Package

HUMAN_TAGS = ("userTask", "manualTask")
_EXTERNAL_FORM_SUFFIXES = (".html", ".htm", ".jsf", ".xhtml", ".jsp", ".vue")
_FORM_KEY_PREFIXES = ("embedded:app:", "embedded:deployment:", "embedded:", "camunda-forms:app:",
                      "camunda-forms:deployment:", "camunda-forms:bpmn:", "camunda-forms:", "deployment:", "app:")


def routing_facts(package: _Package, scope: set[str]
                   ) -> tuple[dict[str, dict[str, ElementInfo]], list[Issue], dict[str, dict]]:
    """ElementInfo for every flow node of the executed processes, per process id."""
    infos: dict[str, dict[str, ElementInfo]] = {}
    issues: list[Issue] = []
    generated_forms: dict[str, dict] = {}
    for process_id in sorted(scope):
        path, process = package.index.processes[process_id]
        lanes = _lanes_by_node(process)
        process_infos: dict[str, ElementInfo] = {}
        for node in process.iter():
            if not is_bpmn(node) or local_name(node) not in FLOW_NODE_TAGS or not node.get("id"):
                continue
            info = _element_info(package, path, process, node, lanes, issues, generated_forms)
            process_infos[info.element_id] = info
        infos[process_id] = process_infos
    return infos, issues, generated_forms


def _lanes_by_node(process) -> dict[str, object]:
    """flow node id -> innermost lane element containing it."""
    lanes: dict[str, object] = {}

    def visit(lane_set) -> None:
        for lane in children(lane_set, "lane"):
            for reference in children(lane, "flowNodeRef"):
                if reference.text:
                    lanes[reference.text.strip()] = lane  # deeper lanes are visited later and win
            for child_set in children(lane, "childLaneSet"):
                visit(child_set)

    for node in process.iter():
        if is_bpmn(node, "laneSet"):
            visit(node)
    return lanes


def _lane_of(node, process, lanes: dict[str, object]):
    """The lane of a flow node; inside a sub-process, the sub-process's lane unless it has its own."""
    current = node
    while current is not None:
        lane = lanes.get(current.get("id")) if isinstance(current.tag, str) else None
        if lane is not None or current is process:
            return lane
        current = current.getparent()
    return None


def _properties(node) -> dict[str, str]:
    """Name/value extension properties: camunda:properties, spiffworkflow:properties, zeebe:properties."""
    result: dict[str, str] = {}
    containers = engine_extension_elements(node, "properties") + extension_elements(node, SPIFF_NS, "properties") \
        + extension_elements(node, ZEEBE_NS, "properties")
    for container in containers:
        for prop in container:
            if local_name(prop) == "property" and prop.get("name") is not None:
                result[prop.get("name")] = prop.get("value") if prop.get("value") is not None else (prop.text or "")
    return result


def _element_info(package: _Package, path: str, process, node, lanes, issues: list[Issue],
                  generated_forms: dict[str, dict]) -> ElementInfo:
    tag = local_name(node)
    properties = _properties(node)
    documentation = children(node, "documentation")
    lane = _lane_of(node, process, lanes)
    info = ElementInfo(
        element_id=node.get("id"),
        tag=tag,
        name=node.get("name"),
        documentation=(documentation[0].text or "").strip() or None if documentation else None,
        lane=(lane.get("name") or lane.get("id")) if lane is not None else None,
        properties=properties,
        phase=_phase(node, process),
        gate=properties.get("gate"),
        process=process.get("id"),
    )
    initiator = engine_attribute(node, "initiator")
    if initiator:
        info.properties = {**properties, "initiator": initiator}
    if tag in HUMAN_TAGS:
        _human_routing(path, node, info, properties, issues)
    if tag in HUMAN_TAGS or tag == "startEvent":
        _form(package, path, process, node, info, properties, issues, generated_forms)
    return info


def _phase(node, process) -> str | None:
    current = node
    while current is not None:
        phase = _properties(current).get("phase") if isinstance(current.tag, str) else None
        if phase:
            return phase
        if current is process:
            break
        current = current.getparent()
    return None


def _human_routing(path: str, node, info: ElementInfo, properties: dict[str, str], issues: list[Issue]) -> None:
    zeebe = extension_elements(node, ZEEBE_NS, "assignmentDefinition")
    candidate_groups = engine_attribute(node, "candidateGroups")
    assignee = engine_attribute(node, "assignee")
    candidate_users = engine_attribute(node, "candidateUsers")
    if zeebe:
        candidate_groups = candidate_groups or zeebe[0].get("candidateGroups")
        assignee = assignee or zeebe[0].get("assignee")
        candidate_users = candidate_users or zeebe[0].get("candidateUsers")
    roles: list[str] = []
    if candidate_groups and candidate_groups.strip():
        try:
            value, is_expression = translate_value(candidate_groups)
        except ExpressionError as error:
            issues.append(issue_at(path, node, f"{describe(node)}: candidate groups '{candidate_groups}' "
                                               f"cannot be used: {error}"))
            value, is_expression = "", False
        if is_expression:
            info.roles_expression = value
        else:
            roles = _split(value)
    if not roles and not info.roles_expression and properties.get("role"):
        roles = _split(properties["role"])
    if not roles and not info.roles_expression and info.lane:
        roles = [info.lane]
    info.roles = roles
    for source, value in (("assignee", assignee), ("candidate users", candidate_users)):
        if not value or not value.strip():
            continue
        try:
            translated, is_expression = translate_value(value)
        except ExpressionError as error:
            issues.append(issue_at(path, node, f"{describe(node)}: {source} '{value}' cannot be used: {error}"))
            break
        info.assignee = translated if is_expression else _split(translated)[0]
        info.assignee_expression = is_expression
        break
    due = properties.get("due") or engine_attribute(node, "dueDate")
    if due:
        try:
            translated, is_expression = translate_value(due)
        except ExpressionError as error:
            issues.append(issue_at(path, node, f"{describe(node)}: due date '{due}' cannot be used: {error}"))
        else:
            if is_expression:
                issues.append(issue_at(path, node, f"{describe(node)}: due date expression '{due}' is ignored; "
                                                   "use an ISO 8601 duration or date", "warning"))
            else:
                info.due = translated
    if not info.roles and not info.assignee and not info.roles_expression:
        issues.append(issue_at(path, node, f"{describe(node)} names no role, lane or assignee: "
                                           "it will be routed to admins", "warning"))


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _form(package: _Package, path: str, process, node, info: ElementInfo, properties: dict[str, str],
          issues: list[Issue], generated_forms: dict[str, dict]) -> None:
    form_property = properties.get("form")
    form_key = engine_attribute(node, "formKey")
    zeebe_forms = extension_elements(node, ZEEBE_NS, "formDefinition")
    if not form_key and zeebe_forms:
        form_key = zeebe_forms[0].get("formKey") or zeebe_forms[0].get("formId")
    spiff_schema = properties.get("formJsonSchemaFilename")
    if form_property:
        candidates = [(form_property.strip(), form_property, False)]
    elif form_key and form_key.strip():
        candidates = [(_form_name_from_key(form_key), form_key, _is_external_form(form_key))]
    elif spiff_schema and spiff_schema.strip():
        candidates = [(_strip_suffixes(PurePosixPath(spiff_schema.strip()).name, ("-schema.json", ".json")),
                       spiff_schema, False)]
    else:
        candidates = []
    form_data = engine_extension_elements(node, "formData")
    for name, written, external in candidates:
        if name in package.forms:
            info.form = name
            return
        if form_data:
            break  # Camunda generated task form: its fields are the form (see below)
        if external:
            issues.append(issue_at(path, node, f"{describe(node)}: form '{written}' is an external form "
                                               f"Phasegate cannot show; add forms/{name}.json to validate "
                                               "the data entered here", "warning"))
            return
        issues.append(issue_at(path, node, f"{describe(node)}: form '{name}' not found "
                                           f"(looked in forms/{name}.json)"))
        return
    if form_data:
        name = f"{process.get('id')}.{node.get('id')}"
        generated_forms[name] = _schema_from_form_data(form_data[0])
        info.form = name


def _form_name_from_key(key: str) -> str:
    value = key.strip()
    for prefix in _FORM_KEY_PREFIXES:
        if value.startswith(prefix):
            value = value[len(prefix):]
            break
    value = PurePosixPath(value).name
    return _strip_suffixes(value, (".json", ".form", ".html", ".htm", ".jsf", ".xhtml"))


def _is_external_form(key: str) -> bool:
    value = key.strip().lower()
    return value.endswith(_EXTERNAL_FORM_SUFFIXES) or value.startswith(("embedded:", "camunda-forms:", "deployment:")) \
        or value.endswith(".form") or "://" in value


def _strip_suffixes(value: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if value.endswith(suffix):
            return value[: -len(suffix)]
    return value


_FORM_FIELD_TYPES = {"string": {"type": "string"}, "long": {"type": "integer"}, "boolean": {"type": "boolean"},
                     "date": {"type": "string"}, "enum": {"type": "string"}}


def _schema_from_form_data(form_data) -> dict:
    """A JSON Schema for Camunda generated task forms (camunda:formData), so their data is validated."""
    properties: dict[str, dict] = {}
    required: list[str] = []
    for field_node in form_data:
        if local_name(field_node) != "formField" or not field_node.get("id"):
            continue
        field_id = field_node.get("id")
        field_type = field_node.get("type") or "string"
        schema = dict(_FORM_FIELD_TYPES.get(field_type, {}))
        if field_node.get("label"):
            schema["title"] = field_node.get("label")
        if field_type == "enum":
            options = [v for v in field_node if local_name(v) == "value" and v.get("id") is not None]
            schema["oneOf"] = [{"const": v.get("id"), "title": v.get("name") or v.get("id")} for v in options]
        default = field_node.get("defaultValue")
        if default is not None and "${" not in default:
            schema["default"] = _typed_default(default, schema.get("type"))
        for validation in [v for v in field_node if local_name(v) == "validation"]:
            for constraint in validation:
                name, config = constraint.get("name"), constraint.get("config")
                if name == "required":
                    required.append(field_id)
                elif name == "readonly":
                    schema["readOnly"] = True
                elif name in ("minlength", "maxlength") and (config or "").isdigit():
                    schema["minLength" if name == "minlength" else "maxLength"] = int(config)
                elif name in ("min", "max") and _is_number(config):
                    schema["minimum" if name == "min" else "maximum"] = float(config) if "." in config else int(config)
        properties[field_id] = schema
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _typed_default(value: str, json_type: str | None):
    if json_type == "integer" and value.lstrip("-").isdigit():
        return int(value)
    if json_type == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _is_number(value: str | None) -> bool:
    try:
        float(value or "")
        return True
    except ValueError:
        return False

"""Does a gate configuration fit the process it configures? Checked at deploy time.

`engine.adapters.gate_files` validates a `*.gates.yaml` file on its own (YAML, JSON Schema).
This module checks it against the loaded BPMN package: the process exists; every configured
gate id is carried by a BPMN element (`gate` property); roles are known; the rule can be met by
the approver slots; each outcome is wired to a sequence flow leaving the gate task or the
exclusive gateway right after it (and that flow's condition routes that outcome there); entry
criteria parse and name data the process has; durations parse. Each problem is an `Issue`
naming the gates file, the line and the key (`gates.review.rule.quorum`); BPMN-side findings
(a gate element without configuration) name the BPMN file, line and element.

Public API: `check_gate_config`, `known_data_names`, `process_roles`, `expression_names`,
`EXPRESSION_BUILTINS`, `GATE_DATA_NAMES`.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Iterable

from engine.domain.criteria import SAFE_FUNCTIONS
from engine.domain.errors import Issue
from engine.domain.gate_config import GateConfig, GateConfigSet, line_of
from engine.domain.gates import NEGATIVE, OUTCOMES, POSITIVE, RULE_KINDS
from engine.domain.routing import parse_duration

from .expressions import ExpressionError, translate_expression
from .normalize import (
    SPIFF_NS,
    ZEEBE_NS,
    children,
    descendants,
    document_kind,
    engine_attribute,
    is_bpmn,
    local_name,
    parse_xml,
)
from .package import ElementInfo, LoadedPackage, LoadedProcess

__all__ = [
    "EXPRESSION_BUILTINS",
    "GATE_DATA_NAMES",
    "check_gate_config",
    "expression_names",
    "known_data_names",
    "process_roles",
]

# Names an entry criterion may use besides the process data: what the evaluator provides.
EXPRESSION_BUILTINS = frozenset(SAFE_FUNCTIONS)
# Data Phasegate itself sets when it completes a gate task (engine.services.gates).
GATE_DATA_NAMES = frozenset({"gate_outcome", "decision", "gate_round", "gate_reason"})

_LIST_LIMIT = 20


def _listing(names: Iterable[str], limit: int = _LIST_LIMIT) -> str:
    ordered = sorted(set(names))
    if not ordered:
        return "none"
    if len(ordered) > limit:
        return ", ".join(ordered[:limit]) + f", … ({len(ordered) - limit} more)"
    return ", ".join(ordered)


# --------------------------------------------------------------------------- the BPMN XML


@dataclass
class _Documents:
    """The parsed BPMN (and DMN) files a process needs, indexed by bpmn:process id."""

    processes: dict[str, tuple[str, Any]] = field(default_factory=dict)  # process id -> (path, element)
    bpmn: list[tuple[str, Any]] = field(default_factory=list)
    dmn: list[tuple[str, Any]] = field(default_factory=list)

    def process_node(self, process_id: str | None):
        entry = self.processes.get(process_id or "")
        return entry[1] if entry else None

    def path_of(self, process_id: str | None) -> str | None:
        entry = self.processes.get(process_id or "")
        return entry[0] if entry else None

    def node(self, process_id: str | None, element_id: str):
        """A flow node or flow with this id inside the bpmn:process (sub-processes included)."""
        process = self.process_node(process_id)
        if process is None:
            return None
        for node in process.iter():
            if isinstance(node.tag, str) and node.get("id") == element_id and is_bpmn(node):
                return node
        return None

    def flow(self, flow_id: str) -> tuple[str, Any] | None:
        """(process id, sequenceFlow) for a flow id in any process of the documents."""
        for process_id, (_, process) in self.processes.items():
            for flow in descendants(process, "sequenceFlow"):
                if flow.get("id") == flow_id:
                    return process_id, flow
        return None


def _is_bpmn_name(name: str) -> bool:
    return name.lower().endswith((".bpmn", ".bpmn20.xml"))


def _documents(package: LoadedPackage, process: LoadedProcess) -> _Documents:
    names = [n for n in process.files if n in package.files]
    if not any(_is_bpmn_name(n) for n in names):  # not expected: fall back to the whole package
        names = list(package.files)
    documents = _Documents()
    for name in names:
        lower = name.lower()
        if not (_is_bpmn_name(name) or lower.endswith(".dmn")):
            continue
        root, problems = parse_xml(package.files[name], name)
        if root is None or problems:
            continue  # the loader reports unreadable files
        kind = document_kind(root)
        if kind == "bpmn":
            documents.bpmn.append((name, root))
            for node in descendants(root, "process"):
                if node.get("id"):
                    documents.processes.setdefault(node.get("id"), (name, node))
        elif kind == "dmn":
            documents.dmn.append((name, root))
    return documents


def _outgoing(node) -> list:
    """Sequence flows leaving `node`, in document order (they live in the node's container)."""
    node_id = node.get("id")
    parent = node.getparent()
    return [flow for flow in children(parent, "sequenceFlow") if flow.get("sourceRef") == node_id] \
        if parent is not None else []


def _condition_text(flow) -> str | None:
    for condition in children(flow, "conditionExpression"):
        text = (condition.text or "").strip()
        if text:
            return text
    return None


def _condition_python(flow) -> str | None:
    text = _condition_text(flow)
    if text is None:
        return None
    try:
        return translate_expression(text)
    except ExpressionError:
        return text


def _describe_flow(flow) -> str:
    return f"'{flow.get('id')}' ({flow.get('sourceRef')} → {flow.get('targetRef')})"


# --------------------------------------------------------------------------- data names


def _assigned_names(target) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        names: set[str] = set()
        for element in target.elts:
            names |= _assigned_names(element)
        return names
    if isinstance(target, ast.Starred):
        return _assigned_names(target.value)
    return set()  # subscripts and attributes change existing data, they add no name


def _script_names(source: str) -> set[str]:
    """Names a Python script leaves in the task data: its top-level assignments and loop targets."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                             ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return  # their names are local to them
        if isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(_assigned_names(target))
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            names.update(_assigned_names(node.target))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            names.update(_assigned_names(node.target))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    names.update(_assigned_names(item.optional_vars))
        elif isinstance(node, ast.NamedExpr):
            names.update(_assigned_names(node.target))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _form_names(schema: dict) -> set[str]:
    names: set[str] = set()
    if not isinstance(schema, dict):
        return names
    properties = schema.get("properties")
    if isinstance(properties, dict):
        names.update(properties)
    for keyword in ("allOf", "anyOf", "oneOf"):  # top-level compositions still describe top-level data
        for part in schema.get(keyword) or ():
            if isinstance(part, dict) and isinstance(part.get("properties"), dict):
                names.update(part["properties"])
    return names


def known_data_names(package: LoadedPackage, process: LoadedProcess) -> set[str]:
    """The data names an entry criterion of this process may use.

    Top-level properties of every form the process (and the processes it calls) uses; names
    assigned by script tasks and spiff-arena pre/post-scripts (assignments, loop targets);
    Zeebe script result variables; data object ids and names; the start event's initiator
    variable; DMN output names and business rule result variables; multi-instance element
    variables; plus `GATE_DATA_NAMES` (gate_outcome, decision, ...) and `EXPRESSION_BUILTINS`.
    """
    names: set[str] = set(GATE_DATA_NAMES) | set(EXPRESSION_BUILTINS)
    for info in process.elements.values():
        if info.form and info.form in package.forms:
            names |= _form_names(package.forms[info.form])
        initiator = info.properties.get("initiator") if info.properties else None
        if initiator:
            names.add(initiator)
    documents = _documents(package, process)
    for _, root in documents.bpmn:
        for script in descendants(root, "script"):
            names |= _script_names(script.text or "")
        for node in root.iter():
            if not isinstance(node.tag, str):
                continue
            name = local_name(node)
            if node.tag in (f"{{{SPIFF_NS}}}preScript", f"{{{SPIFF_NS}}}postScript"):
                names |= _script_names(node.text or "")
            elif node.tag == f"{{{ZEEBE_NS}}}script" and node.get("resultVariable"):
                names.add(node.get("resultVariable"))
            elif is_bpmn(node, "dataObject"):
                names.update(filter(None, (node.get("id"), node.get("name"))))
            elif is_bpmn(node, "businessRuleTask"):
                result = engine_attribute(node, "resultVariable")
                if result:
                    names.add(result)
            elif name == "multiInstanceLoopCharacteristics":
                element = engine_attribute(node, "elementVariable")
                if element:
                    names.add(element)
                for item in children(node, "inputDataItem") + children(node, "outputDataItem"):
                    names.update(filter(None, (item.get("name"), item.get("id"))))
            elif node.tag == f"{{{ZEEBE_NS}}}loopCharacteristics":
                names.update(filter(None, (node.get("inputElement"), node.get("outputCollection"))))
    for _, root in documents.dmn:
        for node in root.iter():
            if isinstance(node.tag, str) and local_name(node) == "output" and node.get("name"):
                names.add(node.get("name"))
    return {name for name in names if name}


def process_roles(process: LoadedProcess) -> set[str]:
    """Roles the process's human tasks are routed to (candidate groups, role property, lanes)."""
    return {role for info in process.elements.values() for role in info.roles}


def expression_names(source: str) -> set[str]:
    """The data names an expression reads: root names, minus comprehension and lambda variables.

    `quality.pass_rate >= 0.95 and all(t.ok for t in tests)` -> {"quality", "all", "tests"}.
    Raises SyntaxError when the text is not a Python expression.
    """
    tree = ast.parse(source.strip(), mode="eval")
    walrus = {node.target.id for node in ast.walk(tree) if isinstance(node, ast.NamedExpr)}
    names: set[str] = set()

    def visit(node, bound: frozenset[str]) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id not in bound and node.id not in walrus:
                names.add(node.id)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = bound
            for index, generator in enumerate(node.generators):
                # The first iterable is evaluated outside the comprehension, later ones inside.
                visit(generator.iter, bound if index == 0 else inner)
                inner = inner | _assigned_names(generator.target)
                for condition in generator.ifs:
                    visit(condition, inner)
            for part in ([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]):
                visit(part, inner)
            return
        if isinstance(node, ast.Lambda):
            arguments = node.args
            for default in arguments.defaults + [d for d in arguments.kw_defaults if d is not None]:
                visit(default, bound)
            parameters = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
            parameters |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
            visit(node.body, bound | parameters)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, bound)

    visit(tree, frozenset())
    return names


# --------------------------------------------------------------------------- routing by outcome

_UNKNOWN = object()


def _evaluate(node, env: dict[str, Any]) -> Any:
    """A condition over gate_outcome/decision only; _UNKNOWN when it reads anything else."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env.get(node.id, _UNKNOWN)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        values = [_evaluate(e, env) for e in node.elts]
        return _UNKNOWN if any(v is _UNKNOWN for v in values) else tuple(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        value = _evaluate(node.operand, env)
        return _UNKNOWN if value is _UNKNOWN else not value
    if isinstance(node, ast.BoolOp):
        unknown = False
        for part in node.values:
            value = _evaluate(part, env)
            if value is _UNKNOWN:
                unknown = True
            elif isinstance(node.op, ast.And) and not value:
                return False
            elif isinstance(node.op, ast.Or) and value:
                return True
        return _UNKNOWN if unknown else isinstance(node.op, ast.And)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, env)
        result: Any = True
        for operator, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, env)
            if left is _UNKNOWN or right is _UNKNOWN:
                result = _UNKNOWN
            else:
                try:
                    holds = {
                        ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
                        ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
                        ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b,
                    }[type(operator)](left, right)
                except (KeyError, TypeError):
                    result = _UNKNOWN
                else:
                    if not holds:
                        return False
            left = right
        return result
    return _UNKNOWN


def _gate_env(outcome: str) -> dict[str, Any]:
    return {"gate_outcome": outcome, "decision": "approve" if outcome in POSITIVE else "reject"}


def _route(gateway, flows: list, outcome: str) -> Any:
    """The flow id an exclusive gateway takes for this outcome; None if none; _UNKNOWN if undecidable."""
    default = gateway.get("default")
    env = _gate_env(outcome)
    for flow in flows:
        if flow.get("id") == default:
            continue
        condition = _condition_python(flow)
        if condition is None:
            if len(flows) == 1:
                return flow.get("id")
            continue  # the loader rejects this; nothing to say here
        try:
            value = _evaluate(ast.parse(condition, mode="eval"), env)
        except SyntaxError:
            return _UNKNOWN
        if value is _UNKNOWN:
            return _UNKNOWN
        if value:
            return flow.get("id")
    return default


def _mentions(condition: str, outcome: str) -> bool:
    if f'"{outcome}"' in condition or f"'{outcome}'" in condition:
        return True
    vote = "approve" if outcome in POSITIVE else "reject"
    return "decision" in condition and (f'"{vote}"' in condition or f"'{vote}'" in condition)


# --------------------------------------------------------------------------- the check


class _Checker:
    def __init__(self, config: GateConfigSet, package: LoadedPackage, process: LoadedProcess,
                 known_roles: set[str], lines: dict[str, int] | None):
        self.config = config
        self.package = package
        self.process = process
        self.known_roles = set(known_roles)
        self.lines = lines
        self.path = config.path or f"{config.process}.gates.yaml"
        self.issues: list[Issue] = []
        self.documents = _documents(package, process)
        self._data_names: set[str] | None = None

    def add(self, key: str, message: str, severity: str = "error") -> None:
        self.issues.append(Issue(self.path, line_of(self.lines, key), key, message, severity))

    def warn(self, key: str, message: str) -> None:
        self.add(key, message, "warning")

    @property
    def data_names(self) -> set[str]:
        if self._data_names is None:
            self._data_names = known_data_names(self.package, self.process)
        return self._data_names

    # -- per gate ---------------------------------------------------------------------------

    def gate_elements(self) -> dict[str, list[ElementInfo]]:
        found: dict[str, list[ElementInfo]] = {}
        for info in self.process.elements.values():
            if info.gate:
                found.setdefault(info.gate, []).append(info)
        return found

    def check(self) -> list[Issue]:
        elements = self.gate_elements()
        for gate_id, gate in self.config.gates.items():
            base = f"gates.{gate_id}"
            carriers = elements.get(gate_id, [])
            if not carriers:
                self.add(base, f"no BPMN element of process '{self.process.key}' has the gate property "
                               f"'{gate_id}' (gates in the BPMN: {_listing(elements)})")
            self.check_roles(base, gate)
            self.check_rule(base, gate)
            self.check_separation(base, gate, carriers)
            self.check_criteria(base, gate)
            self.check_outcomes(base, gate, carriers)
            self.check_timing(base, gate)
        for gate_id, carriers in sorted(elements.items()):
            if gate_id in self.config.gates:
                continue
            for info in carriers:
                path = self.documents.path_of(info.process) or (self.process.files[0] if self.process.files else "-")
                node = self.documents.node(info.process, info.element_id)
                self.issues.append(Issue(
                    path, node.sourceline if node is not None else None, info.element_id,
                    f"the task carries gate '{gate_id}' but {self.path} does not configure it: "
                    f"it runs as a plain user task", "warning"))
        return self.issues

    def role(self, key: str, role: str | None, what: str) -> None:
        if role and role not in self.known_roles:
            self.add(key, f"unknown role '{role}' as {what} (known roles: {_listing(self.known_roles)})")

    def check_roles(self, base: str, gate: GateConfig) -> None:
        if not gate.approvers:
            self.add(f"{base}.approvers", "the gate has no approvers")
        seen: dict[str, int] = {}
        for index, group in enumerate(gate.approvers):
            key = f"{base}.approvers[{index}].role"
            self.role(key, group.role, "approver")
            if group.role in seen:
                self.add(key, f"role '{group.role}' is already approver group {seen[group.role]}; "
                              f"use one group with a larger count")
            seen.setdefault(group.role, index)
            if group.count < 1:
                self.add(f"{base}.approvers[{index}].count", f"count must be at least 1 (not {group.count})")
        self.role(f"{base}.escalation.reassign_to", gate.escalation.reassign_to, "escalation role (reassign_to)")
        self.role(f"{base}.rework.escalate_to", gate.rework.escalate_to, "rework escalation role (escalate_to)")

    def check_rule(self, base: str, gate: GateConfig) -> None:
        rule = gate.rule
        key = f"{base}.rule"
        slots = gate.slots
        approver_roles = [g.role for g in gate.approvers]
        if rule.kind not in RULE_KINDS:
            self.add(f"{key}.kind", f"unknown rule kind '{rule.kind}' (one of: {', '.join(RULE_KINDS)})")
        if rule.kind == "quorum":
            if rule.quorum is None:
                self.add(f"{key}.quorum", "rule kind 'quorum' needs 'quorum': the number of approvals that decide")
            elif rule.quorum > slots:
                self.add(f"{key}.quorum", f"quorum {rule.quorum} is larger than the {slots} approver slot(s) "
                                          f"({self._slots(gate)}): the gate could never pass")
        if rule.kind == "percentage" and rule.percentage is None:
            self.add(f"{key}.percentage", "rule kind 'percentage' needs 'percentage'")
        for index, role in enumerate(rule.veto_roles):
            if role not in approver_roles:
                self.add(f"{key}.veto_roles[{index}]", f"veto role '{role}' is not an approver role of this gate "
                                                       f"(approvers: {_listing(approver_roles)})")
        if rule.min_participation is not None and rule.min_participation > slots:
            self.add(f"{key}.min_participation",
                     f"min_participation {rule.min_participation} is larger than the {slots} approver slot(s) "
                     f"({self._slots(gate)}): the gate could never be decided by its approvers")

    @staticmethod
    def _slots(gate: GateConfig) -> str:
        return " + ".join(f"{g.count} {g.role}" for g in gate.approvers) or "no approvers"

    def check_separation(self, base: str, gate: GateConfig, carriers: list[ElementInfo]) -> None:
        by_id = {info.element_id: info for info in self.process.elements.values()}
        humans = sorted(i.element_id for i in by_id.values() if i.is_human)
        for index, element_id in enumerate(gate.separation.exclude_completers_of):
            key = f"{base}.separation_of_duties.exclude_completers_of[{index}]"
            info = self.process.elements.get(element_id) or by_id.get(element_id)
            if info is None:
                self.add(key, f"no element '{element_id}' in process '{self.process.key}' "
                              f"(user and manual tasks: {_listing(humans)})")
            elif not info.is_human:
                self.warn(key, f"'{element_id}' is a {info.tag}, not a user or manual task: nobody completes it, "
                               f"so nobody is excluded")
        if gate.separation.exclude_phase_participants and carriers and not any(i.phase for i in carriers):
            self.warn(f"{base}.separation_of_duties.exclude_phase_participants",
                      "the gate task has no phase, so no phase participant is excluded")

    def check_criteria(self, base: str, gate: GateConfig) -> None:
        key = f"{base}.entry_criteria"
        seen: set[str] = set()
        for index, item in enumerate(gate.checklist):
            if item.id in seen:
                self.add(f"{key}.checklist[{index}].id", f"checklist id '{item.id}' is used twice")
            seen.add(item.id)
        seen = set()
        for index, criterion in enumerate(gate.criteria):
            item_key = f"{key}.expressions[{index}]"
            if criterion.id in seen:
                self.add(f"{item_key}.id", f"criterion id '{criterion.id}' is used twice")
            seen.add(criterion.id)
            try:
                names = expression_names(criterion.expression)
            except SyntaxError as error:
                detail = error.msg or "invalid syntax"
                self.add(f"{item_key}.expression",
                         f"expression {criterion.expression!r} does not parse as Python: {detail}")
                continue
            unknown = sorted(names - self.data_names)
            if unknown:
                known = self.data_names - EXPRESSION_BUILTINS
                self.add(f"{item_key}.expression",
                         f"expression names unknown data: {', '.join(unknown)} "
                         f"(the process defines: {_listing(known)})")

    def check_timing(self, base: str, gate: GateConfig) -> None:
        durations = {"due": gate.due}
        escalation = gate.escalation
        for name in ("remind_after", "reassign_after", "auto_decide_after"):
            durations[f"escalation.{name}"] = getattr(escalation, name)
        parsed = {}
        for name, value in durations.items():
            if value is None:
                continue
            duration = parse_duration(value) if isinstance(value, str) else None
            if duration is None:
                self.add(f"{base}.{name}", f"{value!r} is not an ISO 8601 duration such as PT4H, P3D or P1W")
            else:
                parsed[name] = duration
        if escalation.auto_decide is not None and escalation.auto_decide not in gate.outcomes:
            self.add(f"{base}.escalation.auto_decide",
                     f"auto_decide '{escalation.auto_decide}' is not one of the gate's outcomes "
                     f"({_listing(gate.outcomes)})")
        order = ["escalation.remind_after", "escalation.reassign_after", "escalation.auto_decide_after"]
        for index, earlier in enumerate(order):
            for later in order[index + 1:]:
                if earlier in parsed and later in parsed and parsed[earlier] >= parsed[later]:
                    self.warn(f"{base}.{earlier}",
                              f"{earlier.split('.')[1]} ({durations[earlier]}) is not earlier than "
                              f"{later.split('.')[1]} ({durations[later]})")

    # -- outcomes and flows -------------------------------------------------------------------

    def check_outcomes(self, base: str, gate: GateConfig, carriers: list[ElementInfo]) -> None:
        key = f"{base}.outcomes"
        for outcome in gate.outcomes:
            if outcome not in OUTCOMES:
                self.add(f"{key}.{outcome}", f"unknown outcome '{outcome}' (one of: {', '.join(OUTCOMES)})")
        if "go" not in gate.outcomes:
            self.add(key, "outcomes need 'go'")
        if not NEGATIVE.intersection(gate.outcomes):
            self.add(key, "outcomes need at least one negative outcome besides go: hold, recycle or kill")
        if not carriers:
            return
        # flow id -> (flow element, exclusive gateway it leaves or None, the gate task it follows)
        allowed: dict[str, tuple[Any, Any, Any]] = {}
        task_flows: dict[str, list] = {}
        for info in carriers:
            node = self.documents.node(info.process, info.element_id)
            if node is None:
                continue
            leaving = _outgoing(node)
            task_flows[info.element_id] = leaving
            for flow in leaving:
                allowed.setdefault(flow.get("id"), (flow, None, node))
                target = self.documents.node(info.process, flow.get("targetRef") or "")
                if target is not None and is_bpmn(target, "exclusiveGateway"):
                    for after in _outgoing(target):
                        allowed.setdefault(after.get("id"), (after, target, node))
        for outcome, flow_id in gate.outcomes.items():
            outcome_key = f"{key}.{outcome}"
            if flow_id not in allowed:
                found = self.documents.flow(flow_id)
                possible = _listing(allowed)
                if found is None:
                    self.add(outcome_key, f"no sequence flow '{flow_id}' in process '{self.process.key}' "
                                          f"(flows after the gate: {possible})")
                else:
                    self.add(outcome_key, f"sequence flow {_describe_flow(found[1])} does not leave the gate task "
                                          f"or the exclusive gateway right after it (flows after the gate: {possible})")
                continue
            flow, gateway, task = allowed[flow_id]
            if gateway is None:
                if len(task_flows.get(task.get("id"), [])) > 1:
                    self.warn(outcome_key, f"flow '{flow_id}' leaves the gate task directly, and all flows leaving a "
                                           f"task run whatever the outcome; route the outcomes with an exclusive "
                                           f"gateway after the gate task (conditions on gate_outcome)")
                continue
            self.check_route(outcome_key, outcome, flow, gateway)

    def check_route(self, key: str, outcome: str, flow, gateway) -> None:
        flows = _outgoing(gateway)
        flow_id = flow.get("id")
        condition = _condition_python(flow)
        shown = f" ({_condition_text(flow)})" if condition is not None else ""
        taken = _route(gateway, flows, outcome)
        if taken is _UNKNOWN:
            if condition is not None and not _mentions(condition, outcome) and flow_id != gateway.get("default"):
                self.warn(key, f"the condition of flow '{flow_id}'{shown} does not mention '{outcome}' "
                               f"(e.g. gate_outcome == \"{outcome}\")")
            return
        if taken == flow_id:
            return
        setting = f"gate_outcome == \"{outcome}\" (decision == \"{_gate_env(outcome)['decision']}\")"
        if condition is not None and flow_id != gateway.get("default"):
            problem = f"the condition of flow '{flow_id}'{shown} does not hold for {setting}"
        elif flow_id == gateway.get("default"):
            problem = f"flow '{flow_id}' is the default flow, taken only when no other condition holds"
        else:
            problem = f"flow '{flow_id}' has no condition"
        where = (f"gateway '{gateway.get('id')}' takes flow '{taken}' instead" if taken
                 else f"no flow of gateway '{gateway.get('id')}' applies and it has no default flow")
        self.warn(key, f"{problem}: {where}")


def check_gate_config(config: GateConfigSet, package: LoadedPackage, process: LoadedProcess | None,
                      known_roles: set[str], lines: dict | None = None) -> list[Issue]:
    """Problems of a gate configuration against the process it configures (errors and warnings).

    `process` is the process the file is deployed with (None: the package's process named by
    `config.process`). `known_roles` are the roles approvers and escalations may name: the roles
    the process's tasks use (`process_roles`) and the roles Phasegate's users have. `lines` maps
    key paths to lines (default: `config.lines`, set when the file was read). Errors reject the
    deployment; warnings are reported only.
    """
    lines = config.lines if lines is None else lines
    path = config.path or f"{config.process}.gates.yaml"
    keys = {p.key: p for p in package.processes}
    if config.process not in keys:
        return [Issue(path, line_of(lines, "process"), "process",
                      f"process '{config.process}' is not in the package (its processes: {_listing(keys)})")]
    target = process if process is not None and process.key == config.process else keys[config.process]
    issues = _Checker(config, package, target, known_roles, lines).check()
    return sorted(issues, key=lambda i: (i.path != path, i.path, i.line or 0, i.element_id or "", i.message))

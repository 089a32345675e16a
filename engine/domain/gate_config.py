"""Gate configuration: what a `*.gates.yaml` file says about each gate of a process.

The file is validated against the published JSON Schema (docs/schemas/gates.schema.json) and
then against the process it configures (`engine.bpmn.gate_binding`); this module holds
the plain records the rest of the engine works with, and how overrides apply to them.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.domain.gates import ApproverGroup, DecisionRule, SeparationOfDuties


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str


@dataclass(frozen=True)
class Criterion:
    """An entry criterion: a Python expression over instance data, e.g. `quality.pass_rate >= 0.95`."""

    id: str
    expression: str
    description: str | None = None


@dataclass(frozen=True)
class Escalation:
    remind_after: str | None = None  # ISO 8601 duration after the gate opened
    reassign_after: str | None = None
    reassign_to: str | None = None  # role that takes over the open approvals
    auto_decide_after: str | None = None
    auto_decide: str | None = None  # outcome recorded by the system


@dataclass(frozen=True)
class Rework:
    votes: str = "reset"  # "reset" | "carry_over": do earlier rounds' approvals still count?
    max_rounds: int | None = None
    escalate_to: str | None = None  # role that decides once max_rounds is exceeded


@dataclass(frozen=True)
class GateConfig:
    gate: str
    title: str | None = None
    approvers: tuple[ApproverGroup, ...] = ()
    rule: DecisionRule = field(default_factory=DecisionRule)
    separation: SeparationOfDuties = field(default_factory=SeparationOfDuties)
    checklist: tuple[ChecklistItem, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    # Outcomes this gate allows -> the id of the BPMN sequence flow each one takes.
    outcomes: dict[str, str] = field(default_factory=dict)
    signature: str | None = None  # meaning of the electronic signature, e.g. "approved as Sponsor"
    due: str | None = None  # ISO 8601 duration after the gate opened
    escalation: Escalation = field(default_factory=Escalation)
    rework: Rework = field(default_factory=Rework)
    delegation: bool = True
    overridable: tuple[str, ...] = ()  # dotted keys an instance may override at start

    @property
    def slots(self) -> int:
        return sum(group.count for group in self.approvers)


@dataclass
class GateConfigSet:
    """All gates of one process, as deployed: the version instances record when a gate opens."""

    process: str
    gates: dict[str, GateConfig]
    raw: dict[str, Any]  # the validated document (overrides apply to it)
    path: str = ""
    hash: str = ""
    # Line of each key in the file ("gates.review.rule.quorum" -> 12), when read from a file:
    # lets deploy-time checks name the line (engine.adapters.gate_files, engine.bpmn.gate_binding).
    lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)


def from_document(doc: dict[str, Any]) -> dict[str, GateConfig]:
    """Records from a schema-valid document (see docs/schemas/gates.schema.json)."""
    return {gate_id: gate_from_dict(gate_id, body) for gate_id, body in (doc.get("gates") or {}).items()}


def gate_from_dict(gate_id: str, body: dict[str, Any]) -> GateConfig:
    rule = body.get("rule") or {}
    sod = body.get("separation_of_duties") or {}
    escalation = body.get("escalation") or {}
    rework = body.get("rework") or {}
    criteria = body.get("entry_criteria") or {}
    signature = body.get("signature")
    return GateConfig(
        gate=gate_id,
        title=body.get("title"),
        approvers=tuple(ApproverGroup(g["role"], int(g.get("count", 1))) for g in body.get("approvers", [])),
        rule=DecisionRule(
            kind=rule.get("kind", "any"),
            quorum=rule.get("quorum"),
            percentage=rule.get("percentage"),
            veto_roles=tuple(rule.get("veto_roles", ())),
            min_participation=rule.get("min_participation"),
            allow_abstain=rule.get("allow_abstain", True),
        ),
        separation=SeparationOfDuties(
            submitter_may_not_approve=sod.get("submitter_may_not_approve", True),
            exclude_completers_of=tuple(sod.get("exclude_completers_of", ())),
            exclude_phase_participants=sod.get("exclude_phase_participants", False),
            distinct_across_rounds=sod.get("distinct_across_rounds", False),
        ),
        checklist=tuple(ChecklistItem(i["id"], i["text"]) for i in criteria.get("checklist", ())),
        criteria=tuple(Criterion(c["id"], c["expression"], c.get("description"))
                       for c in criteria.get("expressions", ())),
        outcomes=dict(body.get("outcomes") or {}),
        signature=(signature or {}).get("meaning") if isinstance(signature, dict) else None,
        due=body.get("due"),
        escalation=Escalation(**{k: escalation.get(k) for k in
                                 ("remind_after", "reassign_after", "reassign_to", "auto_decide_after", "auto_decide")}),
        rework=Rework(votes=rework.get("votes", "reset"), max_rounds=rework.get("max_rounds"),
                      escalate_to=rework.get("escalate_to")),
        delegation=body.get("delegation", True),
        overridable=tuple(body.get("overridable", ())),
    )


def apply_overrides(doc: dict[str, Any], overrides: dict[str, Any], *, only_overridable: bool) -> dict[str, Any]:
    """A copy of `doc` with `overrides` ({gate id: {key: value}}) merged in.

    With `only_overridable` (an instance's overrides at start), each overridden key must be
    listed in that gate's `overridable`; a deployment may override anything.
    """
    merged = copy.deepcopy(doc)
    gates = merged.setdefault("gates", {})
    for gate_id, changes in overrides.items():
        if gate_id not in gates:
            raise KeyError(f"gate '{gate_id}' is not configured")
        allowed = set(gates[gate_id].get("overridable", ()))
        for key, value in changes.items():
            if only_overridable and key not in allowed:
                raise PermissionError(f"gate '{gate_id}' does not allow overriding '{key}' "
                                      f"(overridable: {', '.join(sorted(allowed)) or 'nothing'})")
            gates[gate_id][key] = copy.deepcopy(value)
    return merged


# -- key paths in a gates document (how issues name a setting, and find its line) ----------------

def key_path(parts: Iterable[str | int]) -> str:
    """("gates", "review", "approvers", 0, "role") -> "gates.review.approvers[0].role"."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_KEY_PART = re.compile(r"\[(\d+)\]$|\.([^.\[]+)$|^([^.\[]+)$")


def _parent_key(key: str) -> str | None:
    match = _KEY_PART.search(key)
    if not match or match.start() == 0:
        return None
    return key[: match.start()]


def line_of(lines: dict[str, int] | None, key: str | None) -> int | None:
    """The line of `key`, else of the nearest enclosing key that has one (None without lines)."""
    if not lines:
        return None
    current = key
    while current:
        if current in lines:
            return lines[current]
        current = _parent_key(current)
    return lines.get("")

"""Gate checklists and entry criteria as the task page shows them.

Before a gate: whoever completes the task that leads to a gate confirms its checklist with that
submission (data named `checklist`, docs/gates.md §5), and the gate's entry criteria must hold.
`gates_ahead` says, for a ready task, which configured gates completing it may open and what
each asks for, so the page can offer the checklist as checkboxes and show a refusal next to the
item or criterion it names (`checklist/<id>`, `criteria/<id>`, as `gates.open_ready_gates`
reports them).

At a gate: `round_checklist` gives the checklist of the round an approval task belongs to and
whether each item was confirmed when the round opened.
"""
from __future__ import annotations

from engine.bootstrap import Phasegate
from engine.bpmn.lookahead import gates_ahead as gate_ids_ahead
from engine.domain.gate_config import gate_from_dict
from engine.domain.model import HumanTask


def gates_ahead(app: Phasegate, task: HumanTask, deployed) -> list[dict]:
    """[{gate, title, checklist: [{id, text}], criteria: [{id, description, expression}]}] for the
    configured gates completing `task` may open (with the instance's overrides), in walk order;
    empty for gate approvals and tasks that are not ready."""
    from engine.services.gates import _effective_config

    if task.kind != "task" or task.state != "ready":
        return []
    gate_ids = gate_ids_ahead(deployed.process, task.element_id)
    if not gate_ids:
        return []
    found = []
    with app.uow() as uow:
        overrides = uow.instances.get_row(task.instance_id).gate_overrides or {}
        for gate_id in gate_ids:
            effective = _effective_config(uow, task.process_key, gate_id, overrides)
            if effective is None:
                continue  # a gate property without configuration runs as a plain task
            config = effective[1]
            found.append({
                "gate": gate_id, "title": config.title or gate_id,
                "checklist": [{"id": item.id, "text": item.text} for item in config.checklist],
                "criteria": [{"id": c.id, "description": c.description, "expression": c.expression}
                             for c in config.criteria],
            })
    return found


def checklist_items(ahead: list[dict]) -> list[dict]:
    """The checklist items of every gate ahead, each id once: [{id, text, gate}]."""
    items, seen = [], set()
    for gate in ahead:
        for item in gate["checklist"]:
            if item["id"] not in seen:
                seen.add(item["id"])
                items.append({**item, "gate": gate["title"]})
    return items


def round_checklist(app: Phasegate, task: HumanTask) -> list[dict]:
    """For a gate approval task: [{id, text, confirmed}] of its round's checklist, confirmed as the
    data under review had it when the round opened; empty for other tasks."""
    if task.kind != "approval" or task.gate_id is None:
        return []
    with app.uow() as uow:
        gate_row = uow.gates.get(task.gate_id)
    if gate_row is None:
        return []
    config = gate_from_dict(gate_row.gate, gate_row.config)
    confirmed = (gate_row.data or {}).get("checklist") or {}
    return [{"id": item.id, "text": item.text,
             "confirmed": (confirmed.get(item.id) is True) if isinstance(confirmed, dict) else item.id in confirmed}
            for item in config.checklist]

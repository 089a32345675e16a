"""Persisting one engine step inside the command's unit of work.

Every command that moves a workflow (start, complete, timers, cancel) ends here, so the
rules for what a step writes live in one place: the changed task rows, the instance row
(state, phase, data, error, timers, revision), the inbox rows that appeared or closed, and
exactly one hash-chained event.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from engine.bootstrap import Phasegate
from engine.bpmn.runtime import LiveWorkflow, StepOutcome
from engine.domain import routing
from engine.domain.errors import Conflict
from engine.domain.events import event_hash
from engine.domain.model import Event


@dataclass
class StepContext:
    """What the command knows about the instance before the step."""

    instance_id: int
    revision: int
    process_key: str
    business_key: str | None
    phase: str | None
    event_seq: int
    event_hash: str


@dataclass
class StepResult:
    instance_id: int
    state: str
    phase: str | None
    path: list[str]
    error: dict | None
    new_task_elements: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"instance": self.instance_id, "state": self.state, "phase": self.phase, "path": self.path,
                "error": self.error}


def instance_state(outcome: StepOutcome, cancelled: bool = False) -> str:
    if cancelled:
        return "cancelled"
    if outcome.failure is not None:
        return "error"
    return "completed" if outcome.completed else "running"


def persist_step(app: Phasegate, uow, ctx: StepContext, live: LiveWorkflow, outcome: StepOutcome, *,
                 actor: str, at: datetime, event_type: str, task_id: int | None = None,
                 element_id: str | None = None, payload: dict | None = None,
                 completed_spiff_id: str | None = None, cancelled: bool = False,
                 extra_values: dict | None = None) -> StepResult:
    state = instance_state(outcome, cancelled)
    phase = outcome.phase or ctx.phase
    error = outcome.failure.to_dict() if outcome.failure is not None else None

    # Inbox rows: tasks that left the ready state, then tasks that became ready.
    closing = []
    for spiff_id in outcome.finished:
        done_by_actor = spiff_id == completed_spiff_id
        closing.append({"b_sid": spiff_id, "b_state": "completed" if done_by_actor else "cancelled",
                        "b_at": at, "b_by": actor if done_by_actor else None})
    uow.tasks.close(ctx.instance_id, closing)

    if cancelled or any(spiff_id != completed_spiff_id for spiff_id in outcome.finished):
        # A gate whose task went away without a decision (cancel, an interrupting event) is withdrawn.
        for gate_row in uow.gates.open_for_instance(ctx.instance_id):
            if cancelled or gate_row.spiff_task_id in outcome.finished:
                uow.gates.update(gate_row.id, state="withdrawn", escalate_at=None, decided_at=at)

    from engine.services.gates import open_ready_gates

    gated = open_ready_gates(app, uow, ctx, outcome.ready, actor=actor, at=at,
                             interactive=actor not in ("timer", "system"))
    new_rows, candidates = [], {}
    for ready in outcome.ready:
        if ready.spiff_task_id in gated:
            continue  # a gate: its approval tasks are already in the inbox
        info = ready.element
        route = routing.route(ready.roles, info.assignee, info.due, ready.data, at,
                              getattr(info, "assignee_expression", None))
        new_rows.append({
            "instance_id": ctx.instance_id, "spiff_task_id": ready.spiff_task_id, "process_key": ctx.process_key,
            "business_key": ctx.business_key, "element_id": info.element_id, "name": info.name,
            "role": route.role, "assignee": route.assignee, "phase": info.phase, "form": info.form,
            "due": route.due, "state": "ready", "created_at": at,
        })
        if route.candidate_roles:
            candidates[ready.spiff_task_id] = route.candidate_roles
    uow.tasks.add_ready(new_rows, candidates)

    # One event per command, chained to the previous one.
    event_payload = dict(payload or {})
    if outcome.path:
        event_payload["path"] = outcome.path
    if error:
        event_payload["error"] = error
    seq = ctx.event_seq + 1
    digest = event_hash(ctx.event_hash, instance_id=ctx.instance_id, seq=seq, at=at, actor=actor,
                        type=event_type, task_id=task_id, element_id=element_id, payload=event_payload)
    uow.events.append(Event(ctx.instance_id, seq, at, actor, event_type, task_id, element_id, event_payload,
                            ctx.event_hash, digest))

    values = {
        "state": state, "phase": phase, "error": error, "wake_at": outcome.wake_at if state == "running" else None, "updated_at": at,
        "event_seq": seq, "event_hash": digest,
    }
    if outcome.data is not None:
        values["data"] = outcome.data
    if state in ("completed", "cancelled"):
        values["ended_at"] = at
    if outcome.changes.header:
        values["workflow"] = outcome.changes.header
    values.update(extra_values or {})
    if not uow.instances.save_step(ctx.instance_id, revision=ctx.revision, values=values,
                                   upserts=outcome.changes.upserts, deletes=outcome.changes.deletes):
        raise Conflict(f"instance {ctx.instance_id} was changed by another command; try again")

    if state in ("running", "error"):
        uow.after_commit(lambda: app.live.put(ctx.instance_id, ctx.revision + 1, live))
    return StepResult(ctx.instance_id, state, phase, outcome.path, error,
                      [r.element.element_id for r in outcome.ready])


def append_event(uow, instance_row, *, actor: str, at: datetime, event_type: str, task_id: int | None = None,
                 element_id: str | None = None, payload: dict | None = None) -> None:
    """An event for a command that does not move the workflow (claim, unclaim, assign)."""
    seq = instance_row.event_seq + 1
    payload = payload or {}
    digest = event_hash(instance_row.event_hash, instance_id=instance_row.id, seq=seq, at=at, actor=actor,
                        type=event_type, task_id=task_id, element_id=element_id, payload=payload)
    uow.events.append(Event(instance_row.id, seq, at, actor, event_type, task_id, element_id, payload,
                            instance_row.event_hash, digest))
    # The workflow did not move, so the revision (and any cached live workflow) stays valid.
    if not uow.instances.advance_event_head(instance_row.id, instance_row.event_seq, seq, digest, at):
        raise Conflict(f"instance {instance_row.id} was changed by another command; try again")


def parse_json_object(text: str, field_name: str = "data") -> dict:
    from engine.domain.errors import InvalidInput

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{field_name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                           fields={field_name: [exc.msg]})
    if not isinstance(value, dict):
        raise InvalidInput(f"{field_name} must be a JSON object", fields={field_name: ["expected an object"]})
    return value

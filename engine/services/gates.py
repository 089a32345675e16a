"""Use cases for phase gates: opening a gate, deciding it, who may decide, escalation,
action items and delegation.

Lifecycle
1. A BPMN task carrying a `gate` property becomes ready. Instead of one inbox row, the gate
   opens: entry criteria and the checklist are checked (unmet ones refuse the command that
   would open it, naming each criterion and the value it saw), a gate round is recorded with
   the configuration that applies (its version, and the instance's overrides), the data under
   review and what changed since the previous round, and one approval task per approver group
   goes to the inbox. Open action items of an earlier Conditional Go keep it `blocked`.
2. Each decision is checked (role or delegation, separation of duties against the actor and
   whom they act for, one vote per person, signature) and recorded with the criteria values
   and the hash of the form shown. The rule (engine.domain.gates) says when it is decided.
3. When decided, outstanding approvals are withdrawn and the BPMN task completes with
   `gate_outcome` (and `decision` approve/reject for simple models): the outgoing flow wired to
   that outcome runs — rework on Recycle, the end of the project on Kill.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from engine.bootstrap import Phasegate
from engine.domain import clock
from engine.domain.criteria import evaluate_criterion
from engine.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, PhasegateError
from engine.domain.events import canonical_json
from engine.domain.gate_config import GateConfig, apply_overrides, gate_from_dict
from engine.domain.gates import (
    POSITIVE,
    ApproverGroup,
    GateHistory,
    Vote,
    decision_refusal,
    evaluate,
    exclusion_reason,
    normalise_vote,
)
from engine.domain.passwords import verify_password
from engine.domain.routing import parse_duration

log = logging.getLogger("phasegate.gates")

SYSTEM = "system"


# -- configuration ----------------------------------------------------------------------------

def _effective_config(uow, process_key: str, gate_id: str, overrides: dict | None) -> tuple[Any, GateConfig] | None:
    """(gate_config row, the gate's settings with the instance's overrides), or None if unconfigured."""
    row = uow.gates.latest_config(process_key)
    if row is None or gate_id not in (row.document.get("gates") or {}):
        return None
    document = row.document
    if overrides:
        document = apply_overrides(document, {k: v for k, v in overrides.items() if k == gate_id},
                                   only_overridable=True)
    return row, gate_from_dict(gate_id, document["gates"][gate_id])


def _gate_body(config_row, gate_id: str, overrides: dict | None) -> dict:
    document = config_row.document
    if overrides and gate_id in overrides:
        document = apply_overrides(document, {gate_id: overrides[gate_id]}, only_overridable=True)
    return document["gates"][gate_id]


def _due_after(config: GateConfig, opened_at: datetime) -> datetime | None:
    """When a gate opened at `opened_at` is due, per its `due` duration (None without one)."""
    delta = parse_duration(config.due) if config.due else None
    return opened_at + delta if delta else None


def _escalation_steps(config: GateConfig) -> list[tuple[str, timedelta]]:
    steps = []
    esc = config.escalation
    remind = esc.remind_after or config.due
    for kind, duration in (("remind", remind), ("reassign", esc.reassign_after), ("auto", esc.auto_decide_after)):
        delta = parse_duration(duration) if duration else None
        if delta is not None and (kind != "reassign" or esc.reassign_to) and (kind != "auto" or esc.auto_decide):
            steps.append((kind, delta))
    return sorted(steps, key=lambda s: s[1])


# What the gate itself writes into the instance data when it is decided: not part of the work
# under review, so not a "change" the reviewers of the next round need to see.
_GATE_RESULT_KEYS = frozenset({"gate_outcome", "decision", "gate_round", "gate_reason", "gate_comments",
                               "gate_conditions"})


def _diff(previous: dict | None, current: dict) -> dict | None:
    """What changed in the reviewed data since the previous round (top-level keys)."""
    if previous is None:
        return None
    changed = {k: {"before": previous.get(k), "after": current.get(k)}
               for k in sorted((set(previous) | set(current)) - _GATE_RESULT_KEYS)
               if previous.get(k) != current.get(k)}
    return changed


def _form_hash(form: dict | None, data: dict) -> str:
    return hashlib.sha256(canonical_json({"form": form, "data": data}).encode()).hexdigest()


# -- opening ----------------------------------------------------------------------------------

def open_ready_gates(app: Phasegate, uow, ctx, ready: list, *, actor: str, at: datetime,
                     interactive: bool) -> set[str]:
    """Open a gate for every ready task that carries a configured gate; returns their spiff ids.

    Called while a step is persisted, inside its transaction: a refusal (unmet criteria)
    rolls the whole command back.
    """
    handled: set[str] = set()
    instance_row = None
    for task in ready:
        gate_id = task.element.gate
        if not gate_id:
            continue
        if instance_row is None:
            instance_row = uow.instances.get_row(ctx.instance_id)
        overrides = instance_row.gate_overrides or {}
        found = _effective_config(uow, ctx.process_key, gate_id, overrides)
        if found is None:
            continue  # a gate property without configuration behaves as a plain task (a deploy warning)
        config_row, config = found
        _open_gate(app, uow, ctx, task, config_row, config, _gate_body(config_row, gate_id, overrides),
                   actor=actor, at=at, interactive=interactive)
        handled.add(task.spiff_task_id)
    return handled


def _open_gate(app, uow, ctx, task, config_row, config: GateConfig, body: dict, *, actor, at, interactive):
    data = app.runtime.codec.registry.clean(task.data)
    criteria_results = [evaluate_criterion(c.id, c.expression, data) for c in config.criteria]
    unmet = [r for r in criteria_results if not r.met]
    confirmed = data.get("checklist") or {}
    unchecked = [item for item in config.checklist
                 if not (confirmed.get(item.id) is True if isinstance(confirmed, dict) else item.id in confirmed)]
    if (unmet or unchecked) and interactive:
        fields: dict[str, list[str]] = {}
        for result in unmet:
            fields[f"criteria/{result.id}"] = [result.explain()]
        for item in unchecked:
            fields[f"checklist/{item.id}"] = [f"not confirmed: {item.text}"]
        lines = [r.explain() for r in unmet] + [f"checklist item {i.id} not confirmed: {i.text}" for i in unchecked]
        raise InvalidInput(f"gate '{config.gate}' cannot open: " + "; ".join(lines), fields=fields)

    previous = uow.gates.rework_cycle(ctx.instance_id, config.gate)
    round_no = len(previous) + 1
    approvers = list(config.approvers)
    escalated = False
    if config.rework.max_rounds and round_no > config.rework.max_rounds and config.rework.escalate_to:
        approvers, escalated = [ApproverGroup(config.rework.escalate_to, 1)], True
        body = {**body, "approvers": [{"role": config.rework.escalate_to, "count": 1}], "rule": {"kind": "any"}}
    deployed_form = _form_of(app, uow, ctx.instance_id, task.element.form)
    blocked = [item for item in uow.gates.action_items(ctx.instance_id) if item.state == "open"]
    steps = _escalation_steps(config)
    gate_row_id = uow.gates.add(
        instance_id=ctx.instance_id, gate=config.gate, element_id=task.element.element_id,
        spiff_task_id=task.spiff_task_id, phase=task.element.phase, round=round_no,
        state="blocked" if blocked else "open", config_id=config_row.id, config=body, submitter=actor,
        data=data, changes=_diff(previous[-1].data if previous else None, data),
        criteria={r.id: {"met": r.met, "values": r.values, "expression": r.expression} for r in criteria_results},
        form_hash=_form_hash(deployed_form, data), opened_at=at,
        due_at=_due_after(config, at),
        escalate_at=(at + steps[0][1]) if steps and not blocked else None, escalation_stage=0,
    )
    if escalated:
        log.info("gate %s of instance %s escalated to %s after %s rounds", config.gate, ctx.instance_id,
                 config.rework.escalate_to, config.rework.max_rounds)
    if not blocked:
        _create_approvals(uow, ctx, spiff_task_id=task.spiff_task_id, element_id=task.element.element_id,
                          phase=task.element.phase, form=task.element.form,
                          title=config.title or task.element.name or config.gate, gate_row_id=gate_row_id,
                          round_no=round_no, approvers=approvers, config=config, at=at)
    if config.rework.votes == "carry_over" and previous:
        _carry_over(uow, previous[-1], gate_row_id, at)
    return gate_row_id


def _form_of(app, uow, instance_id: int, form_name: str | None) -> dict | None:
    if not form_name:
        return None
    from engine.services.definitions import deployed_process

    definition_id = uow.instances.get_row(instance_id).definition_id
    return deployed_process(app, uow, definition_id).forms.get(form_name)


def _create_approvals(uow, ctx, *, spiff_task_id: str, element_id: str, phase: str | None, form: str | None,
                      title: str, gate_row_id: int, round_no: int, approvers, config: GateConfig, at):
    """One approval task per approver group, routed to the group's role."""
    due = _due_after(config, at)
    rows = [{
        "instance_id": ctx.instance_id, "spiff_task_id": spiff_task_id, "process_key": ctx.process_key,
        "business_key": ctx.business_key, "element_id": element_id,
        "name": f"{title} ({group.role}{', round ' + str(round_no) if round_no > 1 else ''})",
        "role": group.role, "assignee": None, "phase": phase, "form": form,
        "due": due, "state": "ready", "created_at": at, "kind": "approval", "gate_id": gate_row_id,
        "round": round_no,
    } for group in approvers]
    uow.tasks.add_ready(rows, {})


def _carry_over(uow, previous_round, gate_row_id: int, at) -> None:
    """Approvals of the previous round count again (rework policy `carry_over`)."""
    for decision in uow.gates.decisions(previous_round.id):
        if decision.outcome in POSITIVE:
            uow.gates.add_decision(
                gate_id=gate_row_id, task_id=None, user_name=decision.user_name, on_behalf_of=decision.on_behalf_of,
                role=decision.role, outcome=decision.outcome, comment=decision.comment,
                conditions=decision.conditions, criteria=decision.criteria, form_hash=decision.form_hash,
                signature=decision.signature, carried_over=True, at=at)


# -- who may decide ---------------------------------------------------------------------------

def _history(uow, gate_row, decisions) -> GateHistory:
    completers: dict[str, set[str]] = {}
    phase_participants: set[str] = set()
    for element_id, phase, user in uow.gates.completed_work(gate_row.instance_id):
        completers.setdefault(element_id, set()).add(user)
        if phase and phase == gate_row.phase:
            phase_participants.add(user)
    earlier: set[str] = set()
    for other in uow.gates.rework_cycle(gate_row.instance_id, gate_row.gate, before_id=gate_row.id):
        earlier.update(d.on_behalf_of or d.user_name for d in uow.gates.decisions(other.id))
    # Carried-over approvals (rework `carry_over`) are their approvers' vote in this round too:
    # one vote per person, so they are not eligible again (they "need not decide again").
    voted = {d.on_behalf_of or d.user_name for d in decisions}
    voted |= {d.user_name for d in decisions}
    return GateHistory(submitter=gate_row.submitter, completers=completers, phase_participants=phase_participants,
                       earlier_round_deciders=earlier, voted=voted)


def _approval_roles(uow, gate_row) -> dict[str, str]:
    """Approver group (configured role) -> the role its approval task is routed to now."""
    config = gate_from_dict(gate_row.gate, gate_row.config)
    current = {}
    tasks = uow.gates.approval_tasks(gate_row.id)
    for group, task in zip(config.approvers, tasks):
        current[group.role] = task.role
    for group in config.approvers:
        current.setdefault(group.role, group.role)
    return current


def _eligibility(uow, gate_row, config: GateConfig, decisions, now: datetime):
    """(eligible: {group role: [(user, on_behalf_of)]}, excluded: [(user, reason)], history)."""
    history = _history(uow, gate_row, decisions)
    recused = {d.on_behalf_of or d.user_name for d in decisions if d.outcome == "recuse"}
    routes = _approval_roles(uow, gate_row)
    eligible: dict[str, list[tuple[str, str | None]]] = {}
    excluded: dict[str, str] = {}
    # Out-of-office delegations apply to every group; a per-task delegation (delegate_task) only
    # to the group whose approval task it names.
    task_of_group = {group.role: task.id
                     for group, task in zip(config.approvers, uow.gates.approval_tasks(gate_row.id))}
    out_of_office = uow.gates.active_delegations(now)
    for group in config.approvers:
        task_id = task_of_group.get(group.role)
        delegations = out_of_office if task_id is None else uow.gates.active_delegations(now, task_id=task_id)
        members = sorted(set(uow.users.members_of(routes[group.role])))
        people: list[tuple[str, str | None]] = []
        for member in members:
            if member in recused:  # a recusal is a decision too: checked first, to show the reason
                excluded.setdefault(member, "recused")
                continue
            if member in history.voted:
                continue  # decided already: listed with the decisions, neither eligible nor excluded
            reason = exclusion_reason(member, config.separation, history)
            if reason is not None:
                excluded.setdefault(member, reason)
                continue
            people.append((member, None))
            for d in delegations:
                if d.delegator == member and config.delegation:
                    refusal = decision_refusal(d.delegate, member, config.separation, history)
                    if refusal is None:
                        people.append((d.delegate, member))
                    else:
                        excluded.setdefault(d.delegate, refusal)
        eligible[group.role] = people
    return eligible, [{"user": u, "reason": r} for u, r in sorted(excluded.items())], history


def _still_eligible(eligible: dict[str, list[tuple[str, str | None]]]) -> dict[str, int]:
    """People who could still vote per group (a delegate only stands in for their delegator)."""
    return {role: len({on_behalf or user for user, on_behalf in people}) for role, people in eligible.items()}


def _votes(decisions) -> list[Vote]:
    return [Vote(d.user_name, d.role, d.outcome, d.on_behalf_of, tuple(d.conditions or ())) for d in decisions]


# -- deciding ---------------------------------------------------------------------------------

def _require_conditions(conditions) -> list[dict]:
    if not isinstance(conditions, list) or not conditions:
        raise InvalidInput("a Conditional Go needs at least one condition",
                           fields={"conditions": ["a list of {text, owner, due}"]})
    cleaned = []
    for index, condition in enumerate(conditions):
        problems = []
        if not isinstance(condition, dict):
            raise InvalidInput("each condition must be an object", fields={f"conditions/{index}": ["expected an object"]})
        if not str(condition.get("text", "")).strip():
            problems.append("text is required")
        if not str(condition.get("owner", "")).strip():
            problems.append("owner is required")
        due = condition.get("due")
        if due is not None:
            try:
                datetime.fromisoformat(str(due))
            except ValueError:
                problems.append(f"due '{due}' is not an ISO 8601 date")
        if problems:
            raise InvalidInput(f"condition {index + 1}: " + "; ".join(problems),
                               fields={f"conditions/{index}": problems})
        cleaned.append({"text": str(condition["text"]).strip(), "owner": str(condition["owner"]).strip(),
                        "due": due})
    return cleaned


def decide(app: Phasegate, task_id: int, user: str, outcome: str, *, comment: str | None = None,
           conditions: list | None = None, on_behalf_of: str | None = None, password: str | None = None) -> dict:
    """Record one approver's decision on a gate's approval task, with every check the gate asks for.

    Refusals (not eligible, separation of duties, deciding twice, a withdrawn task, a missing
    signature) write nothing; they are logged.
    """
    try:
        vote = normalise_vote(outcome)
    except ValueError as exc:
        raise InvalidInput(str(exc), fields={"outcome": [str(exc)]})
    now = clock.now()
    with app.uow() as uow:
        try:
            result = _decide(app, uow, task_id, user, vote, comment, conditions, on_behalf_of, password, now)
        except (Forbidden, Conflict, InvalidInput, NotFound) as exc:
            log.warning("gate decision refused: task %s, user %s, outcome %s: %s", task_id, user, vote, exc.message)
            raise
        uow.commit()
    return result


def _decide(app, uow, task_id, user, vote, comment, conditions, on_behalf_of, password, now,
            system: bool = False) -> dict:
    row = uow.tasks.for_action(task_id, user, lock=True)
    if row is None:
        raise NotFound(f"unknown task {task_id}")
    if row.kind != "approval" or row.gate_id is None:
        raise Conflict(f"task {task_id} is not a gate approval (complete it with `phasegate complete`)")
    if not system and not row.user_exists:
        raise NotFound(f"unknown user '{user}'")
    gate_row = uow.gates.get(row.gate_id, for_update=True)
    if row.state != "ready" or gate_row.state not in ("open",):
        state = "withdrawn" if row.state in ("withdrawn", "cancelled") else row.state
        raise Conflict(f"task {task_id} can no longer be decided: it is {state} (gate {gate_row.gate} is "
                       f"{gate_row.state})")
    config = gate_from_dict(gate_row.gate, gate_row.config)
    if vote not in ("abstain", "recuse"):
        allowed = set(config.outcomes) or {"go", "recycle"}
        if vote not in allowed:
            raise InvalidInput(f"gate '{config.gate}' does not allow the outcome '{vote}' "
                               f"(allowed: {', '.join(sorted(allowed))}, abstain, recuse)",
                               fields={"outcome": [f"one of {', '.join(sorted(allowed))}"]})
    if vote == "abstain" and not config.rule.allow_abstain:
        raise InvalidInput(f"gate '{config.gate}' does not allow abstaining", fields={"outcome": ["abstain not allowed"]})
    if vote in ("hold", "recycle", "kill") and not (comment and comment.strip()):
        raise InvalidInput(f"a reason is required to {vote}", fields={"comment": ["required for hold, recycle and kill"]})
    cleaned_conditions = _require_conditions(conditions) if vote == "conditional-go" else None

    decisions = uow.gates.decisions(gate_row.id)
    eligible, excluded, history = _eligibility(uow, gate_row, config, decisions, now)
    group_role = _group_of(uow, gate_row, row.id, row.role, config)
    if system:
        acting_for = None
    else:
        acting_for = _acting_for(user, on_behalf_of, eligible.get(group_role, []), excluded, config, history)
    if config.signature and not system:
        if not password:
            raise Forbidden(f"gate '{config.gate}' requires an electronic signature: re-enter your password")
        if not verify_password(uow.users.password_hash(user), password):
            raise Forbidden("the signature password is not correct")

    uow.gates.add_decision(
        gate_id=gate_row.id, task_id=task_id, user_name=user, on_behalf_of=acting_for, role=group_role,
        outcome=vote, comment=comment, conditions=cleaned_conditions, criteria=gate_row.criteria,
        form_hash=gate_row.form_hash, signature=config.signature if config.signature and not system else None,
        carried_over=False, at=now)
    decisions = uow.gates.decisions(gate_row.id)
    from engine.services.steps import append_event

    instance_row = uow.instances.get_row(gate_row.instance_id, for_update=True)
    append_event(uow, instance_row, actor=user, at=now, event_type="decision", task_id=task_id,
                 element_id=gate_row.element_id, payload={
                     "gate": config.gate, "round": gate_row.round, "outcome": vote, "on_behalf_of": acting_for,
                     "comment": comment, "conditions": cleaned_conditions, "form_hash": gate_row.form_hash,
                     "signature": config.signature if config.signature and not system else None})
    eligible, _excluded, _history_now = _eligibility(uow, gate_row, config, decisions, now)
    result = evaluate(config.rule, list(config.approvers), _votes(decisions), _still_eligible(eligible))
    summary = {"gate": config.gate, "round": gate_row.round, "decided": result.decided, "outcome": result.outcome,
               "reason": result.reason, "instance": gate_row.instance_id}
    if result.decided:
        _close_gate(app, uow, gate_row, result.outcome, result.reason, decisions, actor=user, at=now)
    else:
        _close_satisfied_groups(uow, gate_row, config, decisions, now)
    return summary


# How many approvals one bulk request may decide: a page of the inbox at most.
BULK_LIMIT = 100


def decide_many(app: Phasegate, task_ids: list[int], user: str, outcome: str = "go",
                comment: str | None = None) -> list[dict]:
    """Approve several gate approval tasks at once, each exactly as a single decision would be.

    Every task is checked and decided in its own unit of work, so one refusal rolls back nothing
    else. Only simple approvals qualify: a gate that asks for an electronic signature, or an
    approval whose form requires fields, is skipped (it needs the single decision page).
    Returns one entry per task, in the order given (duplicates once): {task, ok, status
    ("approved" | "skipped" | "failed"), gate, round, instance, name, business_key} plus, when
    approved, {decided, outcome, reason} of the gate, otherwise {code, error}.
    """
    try:
        vote = normalise_vote(outcome)
    except ValueError as exc:
        raise InvalidInput(str(exc), fields={"outcome": [str(exc)]})
    if vote != "go":
        raise InvalidInput(f"bulk decisions only approve (outcome go), not '{outcome}': decide other outcomes "
                           f"one by one", fields={"outcome": ["only go"]})
    ids = list(dict.fromkeys(task_ids))
    if not ids:
        raise InvalidInput("choose at least one gate approval task", fields={"tasks": ["empty"]})
    if len(ids) > BULK_LIMIT:
        raise InvalidInput(f"at most {BULK_LIMIT} tasks per bulk decision (got {len(ids)})",
                           fields={"tasks": [f"at most {BULK_LIMIT}"]})
    comment = comment.strip() if comment and comment.strip() else None
    return [_decide_one_of_many(app, task_id, user, vote, comment) for task_id in ids]


def _decide_one_of_many(app: Phasegate, task_id: int, user: str, vote: str, comment: str | None) -> dict:
    entry: dict[str, Any] = {"task": task_id, "ok": False, "status": "failed", "gate": None, "round": None,
                             "instance": None, "name": None, "business_key": None}
    now = clock.now()
    try:
        with app.uow() as uow:
            task = uow.tasks.get(task_id)
            if task is not None:
                entry.update(instance=task.instance_id, name=task.name or task.element_id,
                             business_key=task.business_key, round=task.round)
            if task is not None and task.kind == "approval" and task.gate_id is not None:
                gate_row = uow.gates.get(task.gate_id)
                entry["gate"] = gate_row.gate
                why_not = _not_simple(app, uow, gate_row, task)
                if why_not is not None:
                    entry.update(status="skipped", code="not_simple", error=why_not)
                    return entry
            summary = _decide(app, uow, task_id, user, vote, comment, None, None, None, now)
            uow.commit()
    except PhasegateError as exc:  # each task on its own: a refusal never stops the others
        log.warning("bulk gate decision refused: task %s, user %s: %s", task_id, user, exc.message)
        entry.update(code=exc.code, error=exc.message)
        return entry
    entry.update(ok=True, status="approved", gate=summary["gate"], round=summary["round"],
                 instance=summary["instance"], decided=summary["decided"], outcome=summary["outcome"],
                 reason=summary["reason"])
    return entry


def _not_simple(app, uow, gate_row, task) -> str | None:
    """Why an approval cannot be decided in bulk (None: it can)."""
    config = gate_from_dict(gate_row.gate, gate_row.config)
    if config.signature:
        return f"gate '{config.gate}' requires an electronic signature: decide it on its own page"
    form = _form_of(app, uow, task.instance_id, task.form)
    required = (form or {}).get("required") or []
    if required:
        return (f"its form '{task.form}' requires {', '.join(map(str, required))}: decide it on its own page")
    return None


def _close_satisfied_groups(uow, gate_row, config: GateConfig, decisions, at: datetime) -> None:
    """A group that gave all the approvals the gate asks of it leaves the inbox (and is not
    reassigned on escalation) while other groups are still waited on."""
    if config.rule.kind not in ("n_of_m", "all"):
        return
    for group, task in zip(config.approvers, uow.gates.approval_tasks(gate_row.id)):
        positives = [d for d in decisions if d.role == group.role and d.outcome in POSITIVE]
        if task.state == "ready" and len(positives) >= group.count:
            uow.gates.set_approval_state(gate_row.id, "completed", at, [task.id],
                                         completed_by={task.id: positives[-1].user_name})


def _group_of(uow, gate_row, task_id: int, task_role: str, config: GateConfig) -> str:
    """The configured approver group an approval task stands for (its role may have been reassigned).

    Matched by the task itself: after a reassignment several groups' tasks may share one role.
    """
    for group, task in zip(config.approvers, uow.gates.approval_tasks(gate_row.id)):
        if task.id == task_id:
            return group.role
    routes = _approval_roles(uow, gate_row)
    for group_role, routed_to in routes.items():
        if routed_to == task_role:
            return group_role
    return config.approvers[0].role if config.approvers else task_role


def _acting_for(user, on_behalf_of, people, excluded, config, history) -> str | None:
    """Check that `user` may decide now, in person or for someone; returns whom they act for."""
    refusal = decision_refusal(user, on_behalf_of, config.separation, history)
    if refusal is not None:
        raise Forbidden(f"separation of duties: {refusal}")
    own = [(u, b) for u, b in people if u == user]
    if on_behalf_of:
        if (user, on_behalf_of) not in people:
            raise Forbidden(f"{user} may not decide on behalf of {on_behalf_of} (no delegation in force, or "
                            f"{on_behalf_of} may not decide this gate)")
        return on_behalf_of
    if (user, None) in own:
        return None
    delegated = [b for u, b in own if b]
    if len(delegated) == 1:
        return delegated[0]
    if len(delegated) > 1:
        raise InvalidInput(f"{user} stands in for several approvers; say for whom",
                           fields={"on_behalf_of": [", ".join(delegated)]})
    reason = next((e["reason"] for e in excluded if e["user"] == user), None)
    raise Forbidden(f"{user} may not decide gate '{config.gate}'" + (f": {reason}" if reason else
                                                                       ": not an approver of this gate"))


def _close_gate(app, uow, gate_row, outcome: str, reason: str, decisions, *, actor: str, at: datetime) -> None:
    """The gate is decided: withdraw what is still open, record action items, move the process on."""
    deciders = {d.task_id: d.user_name for d in decisions if d.task_id is not None}
    uow.gates.set_approval_state(gate_row.id, "completed", at, sorted(deciders), completed_by=deciders)
    uow.gates.set_approval_state(gate_row.id, "withdrawn", at)
    uow.gates.update(gate_row.id, state="passed" if outcome in POSITIVE else "rejected", outcome=outcome,
                     reason=reason, decided_at=at, escalate_at=None)
    if outcome == "conditional-go":
        items = []
        for d in decisions:
            for condition in d.conditions or []:
                due = condition.get("due")
                items.append({"instance_id": gate_row.instance_id, "gate_id": gate_row.id,
                              "text": condition["text"], "owner": condition["owner"],
                              "due": datetime.fromisoformat(str(due)) if due else None, "state": "open",
                              "created_at": at})
        for item in items:
            if item["due"] is not None and item["due"].tzinfo is None:
                item["due"] = item["due"].replace(tzinfo=clock.now().tzinfo)
        uow.gates.add_action_items(items)
    _complete_gate_task(app, uow, gate_row, outcome, reason, decisions, actor=actor, at=at)


def _complete_gate_task(app, uow, gate_row, outcome: str, reason: str, decisions, *, actor: str,
                        at: datetime) -> None:
    from engine.services.instances import load_live
    from engine.services.steps import StepContext, persist_step

    instance_row = uow.instances.get_row(gate_row.instance_id, for_update=True)
    live = load_live(app, uow, instance_row)
    # The process sees the outcome, and what the approvers said (a change log may record it).
    data = {"gate_outcome": outcome, "decision": "approve" if outcome in POSITIVE else "reject",
            "gate_round": gate_row.round, "gate_reason": reason,
            "gate_comments": [{"user": d.user_name, "on_behalf_of": d.on_behalf_of, "outcome": d.outcome,
                               "comment": d.comment} for d in decisions if d.comment],
            "gate_conditions": [c for d in decisions for c in (d.conditions or [])]}
    step = app.runtime.complete(live, gate_row.spiff_task_id, data)
    ctx = StepContext(instance_row.id, instance_row.revision, instance_row.key, instance_row.business_key,
                      instance_row.phase, instance_row.event_seq, instance_row.event_hash)
    extra = {"outcome": "killed"} if outcome == "kill" else None
    persist_step(app, uow, ctx, live, step, actor=actor, at=at, event_type="gate_decided",
                 element_id=gate_row.element_id,
                 payload={"gate": gate_row.gate, "round": gate_row.round, "outcome": outcome, "reason": reason},
                 completed_spiff_id=gate_row.spiff_task_id, extra_values=extra)


# -- views ------------------------------------------------------------------------------------

def gates_view(app: Phasegate, instance_id: int) -> list[dict]:
    """Every configured gate of the instance's process: not opened, or each round with its state,
    decisions so far, who may still decide and who is excluded and why."""
    now = clock.now()
    with app.uow() as uow:
        instance_row = uow.instances.get_row(instance_id)
        if instance_row is None:
            raise NotFound(f"unknown instance {instance_id}")
        rows = uow.gates.for_instance(instance_id)
        decisions = uow.gates.decisions_for_gates([r.id for r in rows])
        items = uow.gates.action_items(instance_id)
        latest_config = uow.gates.latest_config(instance_row.key)
        opened = {r.gate for r in rows}
        versions: dict[int, int | None] = {}
        view = []
        for row in rows:
            config = gate_from_dict(row.gate, row.config)
            gate_decisions = decisions.get(row.id, [])
            entry = {
                "gate": row.gate, "title": config.title, "element_id": row.element_id, "phase": row.phase,
                "state": row.state, "round": row.round, "outcome": row.outcome, "reason": row.reason,
                "rule": config.rule.describe(), "approvers": [{"role": g.role, "count": g.count}
                                                              for g in config.approvers],
                "config_version": _config_version(uow, row.config_id, versions), "submitter": row.submitter,
                "opened_at": row.opened_at.isoformat(), "due": row.due_at.isoformat() if row.due_at else None,
                "decided_at": row.decided_at.isoformat() if row.decided_at else None,
                "criteria": row.criteria, "changes": row.changes,
                "decisions": [{"user": d.user_name, "on_behalf_of": d.on_behalf_of, "role": d.role,
                               "outcome": d.outcome, "comment": d.comment, "conditions": d.conditions,
                               "signature": d.signature, "carried_over": d.carried_over, "at": d.at.isoformat()}
                              for d in gate_decisions],
                "action_items": [_item(i) for i in items if i.gate_id == row.id],
                "eligible": [], "excluded": [],
            }
            if row.state == "open":
                eligible, excluded, _ = _eligibility(uow, row, config, gate_decisions, now)
                entry["eligible"] = sorted({u for people in eligible.values() for u, _b in people})
                entry["excluded"] = excluded
                entry["waiting_on"] = {role: sorted({u for u, _b in people}) for role, people in eligible.items()}
            view.append(entry)
        for gate_id, body in ((latest_config.document.get("gates") or {}).items() if latest_config else []):
            if gate_id not in opened:
                config = gate_from_dict(gate_id, body)
                view.append({"gate": gate_id, "title": config.title, "phase": None, "state": "not opened",
                             "round": 0, "rule": config.rule.describe(),
                             "approvers": [{"role": g.role, "count": g.count} for g in config.approvers],
                             "decisions": [], "eligible": [], "excluded": [], "action_items": []})
        return view


def _config_version(uow, config_id: int | None, cache: dict) -> int | None:
    """The process's gate configuration version a round opened with (`config_id` is the row id,
    which differs from the version as soon as another process has gates too)."""
    if config_id is None:
        return None
    if config_id not in cache:
        config_row = uow.gates.config(config_id)
        cache[config_id] = config_row.version if config_row is not None else None
    return cache[config_id]


def _item(row) -> dict:
    return {"id": row.id, "text": row.text, "owner": row.owner, "due": row.due.isoformat() if row.due else None,
            "state": row.state, "closed_by": row.closed_by,
            "closed_at": row.closed_at.isoformat() if row.closed_at else None, "note": row.note}


# -- action items -----------------------------------------------------------------------------

def action_items(app: Phasegate, instance_id: int) -> list[dict]:
    with app.uow() as uow:
        if uow.instances.get_row(instance_id) is None:
            raise NotFound(f"unknown instance {instance_id}")
        return [_item(i) for i in uow.gates.action_items(instance_id)]


def close_action_item(app: Phasegate, item_id: int, user: str, note: str | None = None) -> dict:
    """Close a Conditional Go's action item (its owner, or an admin); the last one unblocks gates."""
    now = clock.now()
    with app.uow() as uow:
        item = uow.gates.action_item(item_id)
        if item is None:
            raise NotFound(f"unknown action item {item_id}")
        if not uow.users.exists(user):
            raise NotFound(f"unknown user '{user}'")
        if item.state != "open":
            raise Conflict(f"action item {item_id} is already {item.state}")
        if user != item.owner and "admin" not in uow.users.roles_of(user):
            raise Forbidden(f"only the owner ({item.owner}) or an admin may close action item {item_id}")
        uow.gates.close_action_item(item_id, user, now, note)
        from engine.services.steps import append_event

        instance_row = uow.instances.get_row(item.instance_id, for_update=True)
        append_event(uow, instance_row, actor=user, at=now, event_type="action_item_closed",
                     payload={"item": item_id, "text": item.text, "note": note})
        if not [i for i in uow.gates.action_items(item.instance_id) if i.state == "open"]:
            _unblock(app, uow, instance_row, now)
        uow.commit()
        return _item(uow.gates.action_item(item_id))


def _unblock(app, uow, instance_row, at: datetime) -> None:
    """All action items are closed: gates waiting on them open now."""
    from engine.services.steps import StepContext

    ctx = StepContext(instance_row.id, instance_row.revision, instance_row.key, instance_row.business_key,
                      instance_row.phase, instance_row.event_seq, instance_row.event_hash)
    for gate_row in uow.gates.blocked_for_instance(instance_row.id):
        config = gate_from_dict(gate_row.gate, gate_row.config)
        steps = _escalation_steps(config)
        uow.gates.update(gate_row.id, state="open", opened_at=at, due_at=_due_after(config, at),
                         escalate_at=(at + steps[0][1]) if steps else None)
        from engine.services.definitions import deployed_process

        element = deployed_process(app, uow, instance_row.definition_id).process.elements.get(gate_row.element_id)
        form = element.form if element is not None else None
        _create_approvals(uow, ctx, spiff_task_id=gate_row.spiff_task_id, element_id=gate_row.element_id,
                          phase=gate_row.phase, form=form, title=config.title or gate_row.gate,
                          gate_row_id=gate_row.id, round_no=gate_row.round, approvers=list(config.approvers),
                          config=config, at=at)


# -- delegation -------------------------------------------------------------------------------

def delegate_task(app: Phasegate, task_id: int, user: str, to: str) -> dict:
    """`user` hands their decision on one approval task to `to`; recorded, and checked on use."""
    now = clock.now()
    with app.uow() as uow:
        row = uow.tasks.for_action(task_id, user)
        if row is None or row.kind != "approval":
            raise NotFound(f"unknown gate approval task {task_id}")
        if not uow.users.exists(to):
            raise NotFound(f"unknown user '{to}'")
        if not row.holds_role:
            raise Forbidden(f"{user} does not hold role '{row.role}' and has nothing to delegate")
        if row.state != "ready":
            raise Conflict(f"task {task_id} is {row.state}")
        gate_row = uow.gates.get(row.gate_id)
        config = gate_from_dict(gate_row.gate, gate_row.config)
        if not config.delegation:
            raise Forbidden(f"gate '{config.gate}' does not allow delegation")
        history = _history(uow, gate_row, uow.gates.decisions(gate_row.id))
        refusal = decision_refusal(to, user, config.separation, history)
        if refusal is not None:
            raise Forbidden(f"separation of duties: {refusal}")
        uow.gates.add_delegation(delegator=user, delegate=to, task_id=task_id, starts_at=now, ends_at=None,
                                 created_at=now)
        from engine.services.steps import append_event

        instance_row = uow.instances.get_row(row.instance_id, for_update=True)
        append_event(uow, instance_row, actor=user, at=now, event_type="delegated", task_id=task_id,
                     element_id=row.element_id, payload={"to": to, "gate": config.gate, "round": gate_row.round})
        uow.commit()
    return {"task": task_id, "delegator": user, "delegate": to}


def set_out_of_office(app: Phasegate, user: str, delegate: str, until: datetime,
                      starts: datetime | None = None) -> dict:
    now = clock.now()
    starts = starts or now
    if until <= starts:
        raise InvalidInput("the out-of-office period must end after it starts", fields={"until": ["before start"]})
    with app.uow() as uow:
        for name in (user, delegate):
            if not uow.users.exists(name):
                raise NotFound(f"unknown user '{name}'")
        if user == delegate:
            raise InvalidInput("a user cannot delegate to themselves", fields={"delegate": ["same as user"]})
        delegation_id = uow.gates.add_delegation(delegator=user, delegate=delegate, task_id=None, starts_at=starts,
                                                 ends_at=until, created_at=now)
        uow.commit()
    return {"id": delegation_id, "delegator": user, "delegate": delegate, "starts": starts.isoformat(),
            "until": until.isoformat()}


# -- escalation -------------------------------------------------------------------------------

def escalate_due_gates(app: Phasegate, *, limit: int = 100) -> list[dict]:
    """Remind, reassign or auto-decide gates whose next escalation step is due (the timer worker)."""
    now = clock.now()
    with app.uow() as uow:
        due = uow.gates.due_for_escalation(now, limit)
    done = []
    for gate_id, instance_id in due:
        with app.uow() as uow:
            uow.instances.get_row(instance_id, for_update=True)
            gate_row = uow.gates.get(gate_id, for_update=True)
            if gate_row.state != "open" or gate_row.escalate_at is None or gate_row.escalate_at > now:
                continue
            config = gate_from_dict(gate_row.gate, gate_row.config)
            steps = _escalation_steps(config)
            stage = gate_row.escalation_stage
            if stage >= len(steps):
                uow.gates.update(gate_id, escalate_at=None)
                uow.commit()
                continue
            # Every step that is due runs, in order: a sweep after a long pause (or a scenario's
            # `advance: P15D`) reminds, reassigns and auto-decides, not only the first step.
            while stage < len(steps):
                kind = steps[stage][0]
                next_at = gate_row.opened_at + steps[stage + 1][1] if stage + 1 < len(steps) else None
                uow.gates.update(gate_id, escalation_stage=stage + 1, escalate_at=next_at)
                done.append(_escalate(app, uow, gate_row, config, kind, now))
                stage += 1
                if kind == "auto" or next_at is None or next_at > now:
                    break
            uow.commit()
    return done


def _escalate(app, uow, gate_row, config: GateConfig, kind: str, now: datetime) -> dict:
    from engine.services.steps import append_event

    instance_row = uow.instances.get_row(gate_row.instance_id)
    pending = [t for t in uow.gates.approval_tasks(gate_row.id) if t.state == "ready"]
    if kind == "remind":
        append_event(uow, instance_row, actor=SYSTEM, at=now, event_type="gate_reminder",
                     element_id=gate_row.element_id,
                     payload={"gate": gate_row.gate, "round": gate_row.round, "waiting_on": [t.role for t in pending]})
        return {"gate": gate_row.gate, "instance": gate_row.instance_id, "action": "remind"}
    if kind == "reassign":
        uow.gates.reroute_approvals(gate_row.id, config.escalation.reassign_to)
        append_event(uow, instance_row, actor=SYSTEM, at=now, event_type="gate_reassigned",
                     element_id=gate_row.element_id,
                     payload={"gate": gate_row.gate, "round": gate_row.round, "to": config.escalation.reassign_to})
        return {"gate": gate_row.gate, "instance": gate_row.instance_id, "action": "reassign",
                "to": config.escalation.reassign_to}
    outcome = config.escalation.auto_decide
    decisions = uow.gates.decisions(gate_row.id)
    reason = f"decided automatically ({outcome}) after {config.escalation.auto_decide_after} without a decision"
    append_event(uow, instance_row, actor=SYSTEM, at=now, event_type="gate_auto_decided",
                 element_id=gate_row.element_id, payload={"gate": gate_row.gate, "round": gate_row.round,
                                                          "outcome": outcome})
    _close_gate(app, uow, gate_row, outcome, reason, decisions, actor=SYSTEM, at=now)
    return {"gate": gate_row.gate, "instance": gate_row.instance_id, "action": "auto-decide", "outcome": outcome}


def decision_options(app: Phasegate, task_id: int) -> dict | None:
    """What a decision on an approval task may be (the task page's buttons): the gate, its round,
    the allowed outcomes in the order go, conditional-go, hold, recycle, kill (then abstain when the
    rule allows it), and the signature's meaning if the gate asks for one. None for other tasks."""
    with app.uow() as uow:
        task = uow.tasks.get(task_id)
        if task is None:
            raise NotFound(f"unknown task {task_id}")
        if task.kind != "approval" or task.gate_id is None:
            return None
        gate_row = uow.gates.get(task.gate_id)
    config = gate_from_dict(gate_row.gate, gate_row.config)
    allowed = set(config.outcomes) or {"go", "recycle"}
    from engine.domain.gates import OUTCOMES

    outcomes = [o for o in OUTCOMES if o in allowed]
    if config.rule.allow_abstain:
        outcomes.append("abstain")
    return {"gate": gate_row.gate, "title": config.title, "round": gate_row.round, "state": gate_row.state,
            "outcomes": outcomes, "signature": config.signature}

"""Aggregate queries of the portfolio (engine.services.portfolio): every active instance with its
inbox and gate figures, read from the indexed tables (instance, human_task, gate, gate_decision,
action_item) in a fixed number of statements whatever the number of instances. No workflow is
read or deserialised.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

import sqlalchemy as sa

from engine.adapters import tables as t
from engine.domain.gates import NEGATIVE, POSITIVE

# Instances the portfolio shows: those still under way, including those stopped by an error
# (they wait for someone as much as a running one does).
ACTIVE_STATES = ("running", "error")
OPEN_GATE_STATES = ("open", "blocked")
DECIDED_GATE_STATES = ("passed", "rejected")
# Older than any timestamp stored: "no earlier phase" in the phase-entry comparison.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _count_if(condition) -> sa.ColumnElement:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _has_overdue_task(instance, now: datetime):
    ht = t.human_task.c
    return sa.exists().where(ht.instance_id == instance.c.id, ht.state == "ready", ht.due < now)


class PortfolioRepository:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def phase_counts(self, *, now: datetime, process: str | None = None) -> list:
        """(key, phase, instances, overdue, at_gate, blocked, errors) per process and phase of the
        active instances: one grouped statement. `overdue`: instances with a ready task due
        before `now`; `at_gate`: with an open gate; `blocked`: with a gate waiting on action items."""
        i, gate = t.instance, t.gate.c
        at_gate = sa.exists().where(gate.instance_id == i.c.id, gate.state == "open")
        blocked = sa.exists().where(gate.instance_id == i.c.id, gate.state == "blocked")
        query = (
            sa.select(i.c.key, i.c.phase, sa.func.count().label("instances"),
                      _count_if(_has_overdue_task(i, now)).label("overdue"),
                      _count_if(at_gate).label("at_gate"), _count_if(blocked).label("blocked"),
                      _count_if(i.c.state == "error").label("errors"))
            .where(i.c.state.in_(ACTIVE_STATES))
            .group_by(i.c.key, i.c.phase)
        )
        if process:
            query = query.where(i.c.key == process)
        return list(self.conn.execute(query))

    def page(self, *, now: datetime, process: str | None = None, phase: str | None = None,
             overdue_only: bool = False, limit: int = 50, offset: int = 0) -> list:
        """One page of active instances, those with overdue tasks first, then by their oldest due
        date (none last), then by id; one statement.

        Each row: the instance's columns (without its data), `open_tasks`, `overdue_tasks`,
        `oldest_due` (of its ready tasks), `action_items_open` and `phase_since` — when the
        instance entered its current phase, read from the inbox: the first task of that phase
        created after the last task of another phase (loops within a phase keep the date); with no
        task of the phase yet, when the last task of another phase was completed; else its start.
        """
        i, ht, items = t.instance, t.human_task, t.action_item.c
        ready = (
            sa.select(ht.c.instance_id, sa.func.count().label("open_tasks"),
                      _count_if(ht.c.due < now).label("overdue_tasks"),
                      sa.func.min(ht.c.due).label("oldest_due"))
            .where(ht.c.state == "ready")
            .group_by(ht.c.instance_id)
            .subquery("ready")
        )
        other = ht.alias("other_phase")
        other_phase = (other.c.instance_id == i.c.id, other.c.phase.is_not(None), other.c.phase != i.c.phase)
        last_other_created = sa.select(sa.func.max(other.c.created_at)).where(*other_phase) \
            .correlate(i).scalar_subquery()
        last_other_done = sa.select(sa.func.max(other.c.completed_at)).where(*other_phase) \
            .correlate(i).scalar_subquery()
        current = ht.alias("this_phase")
        first_current = sa.select(sa.func.min(current.c.created_at)).where(
            current.c.instance_id == i.c.id, current.c.phase == i.c.phase,
            current.c.created_at >= sa.func.coalesce(last_other_created, sa.literal(_EPOCH, t.human_task.c.created_at.type)),
        ).correlate(i).scalar_subquery()
        open_items = sa.select(sa.func.count()).where(items.instance_id == i.c.id, items.state == "open") \
            .correlate(i).scalar_subquery()
        overdue_tasks = sa.func.coalesce(ready.c.overdue_tasks, 0)
        query = (
            sa.select(
                i.c.id, i.c.key, i.c.version, i.c.business_key, i.c.state, i.c.phase, i.c.error, i.c.started_by,
                i.c.created_at, sa.func.coalesce(ready.c.open_tasks, 0).label("open_tasks"),
                overdue_tasks.label("overdue_tasks"), ready.c.oldest_due,
                sa.func.coalesce(first_current, last_other_done, i.c.created_at).label("phase_since"),
                open_items.label("action_items_open"),
            )
            .select_from(i.outerjoin(ready, ready.c.instance_id == i.c.id))
            .where(i.c.state.in_(ACTIVE_STATES))
            .order_by(sa.case((overdue_tasks > 0, 0), else_=1), ready.c.oldest_due.asc().nulls_last(), i.c.id)
            .limit(limit).offset(offset)
        )
        if process:
            query = query.where(i.c.key == process)
        if phase:
            query = query.where(i.c.phase == phase)
        if overdue_only:
            query = query.where(overdue_tasks > 0)
        return list(self.conn.execute(query))

    def gates(self, instance_ids: Iterable[int]) -> list:
        """The open and blocked gate rounds of the instances, and the last decided round of each,
        with their decision tallies (approvals, against, abstentions); one statement."""
        ids = list(instance_ids)
        if not ids:
            return []
        g, d = t.gate, t.gate_decision.c

        def tally(outcomes) -> sa.ScalarSelect:
            return sa.select(sa.func.count()).where(d.gate_id == g.c.id, d.outcome.in_(tuple(outcomes))) \
                .correlate(g).scalar_subquery()

        decided = g.alias("decided")
        last_decided = (sa.select(sa.func.max(decided.c.id)).where(decided.c.instance_id.in_(ids),
                                                                   decided.c.state.in_(DECIDED_GATE_STATES))
                        .group_by(decided.c.instance_id))
        query = (
            sa.select(g.c.id, g.c.instance_id, g.c.gate, g.c.phase, g.c.round, g.c.state, g.c.outcome, g.c.config,
                      g.c.opened_at, g.c.due_at, g.c.decided_at, tally(POSITIVE).label("approvals"),
                      tally(NEGATIVE).label("against"), tally(("abstain",)).label("abstentions"))
            .where(g.c.instance_id.in_(ids), sa.or_(g.c.state.in_(OPEN_GATE_STATES), g.c.id.in_(last_decided)))
            .order_by(g.c.instance_id, g.c.id)
        )
        return list(self.conn.execute(query))

    def taking_part(self, instance_ids: Iterable[int], user: str) -> set[int]:
        """Which of the instances `user` takes part in — the rule of
        `InstanceRepository.takes_part` (started it, holds a role one of its tasks is or was routed
        to, is or was a task's assignee or completer, owns an action item) — in one statement."""
        ids = list(instance_ids)
        if not ids:
            return set()
        i, ht, cand, ur, items = t.instance, t.human_task.c, t.human_task_candidate.c, t.user_role.c, t.action_item.c
        held = sa.select(ur.role_name).where(ur.user_name == user)
        task = sa.exists().where(ht.instance_id == i.c.id, sa.or_(
            ht.role.in_(held), ht.assignee == user, ht.completed_by == user,
            ht.id.in_(sa.select(cand.task_id).where(cand.role.in_(held)))))
        owner = sa.exists().where(items.instance_id == i.c.id, items.owner == user)
        query = sa.select(i.c.id).where(i.c.id.in_(ids), sa.or_(i.c.started_by == user, task, owner))
        return set(self.conn.execute(query).scalars())

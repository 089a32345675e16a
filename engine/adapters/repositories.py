"""Repositories: the only code that writes SQL. Each works on the unit of work's connection.

Statements are few and batched on purpose (bench/engine.py counts them): a task completion
reads one joined row, then writes changed task rows, the instance row, the inbox rows and one
event — each an `executemany` at most.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.adapters import tables as t
from engine.bpmn.state import TaskRow
from engine.domain.model import ApiToken, Definition, Event, HumanTask, Instance, User


# -- statements on the hot path, built once ---------------------------------------------------
# A statement object built once keeps its compiled form and cache key; building the same
# expression per call costs more than executing it on SQLite.

_UPSERT_TASK: dict[str, sa.Insert] = {}


def _upsert_task(dialect: str):
    stmt = _UPSERT_TASK.get(dialect)
    if stmt is None:
        stmt = (postgresql if dialect == "postgresql" else sqlite).insert(t.workflow_task)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.workflow_task.c.instance_id, t.workflow_task.c.task_id],
            set_={"body": stmt.excluded.body, "workflow_id": stmt.excluded.workflow_id},
        )
        _UPSERT_TASK[dialect] = stmt
    return stmt


_DELETE_TASKS = sa.delete(t.workflow_task).where(
    t.workflow_task.c.instance_id == sa.bindparam("b_instance"),
    t.workflow_task.c.task_id.in_(sa.bindparam("b_ids", expanding=True)),
)
_UPDATE_INSTANCE: dict[frozenset, sa.Update] = {}


def _update_instance(keys: frozenset) -> sa.Update:
    stmt = _UPDATE_INSTANCE.get(keys)
    if stmt is None:
        stmt = (
            sa.update(t.instance)
            .where(t.instance.c.id == sa.bindparam("b_id"), t.instance.c.revision == sa.bindparam("b_revision"))
            .values(revision=sa.bindparam("b_new_revision"), **{k: sa.bindparam(k) for k in keys})
        )
        _UPDATE_INSTANCE[keys] = stmt
    return stmt


def _for_action(lock: bool) -> sa.Select:
    ht, inst, ur, cand = t.human_task, t.instance, t.user_role, t.human_task_candidate
    user = sa.bindparam("b_user")
    holds_role = sa.exists().where(
        ur.c.user_name == user,
        sa.or_(
            ur.c.role_name == ht.c.role,
            ur.c.role_name == "admin",
            ur.c.role_name.in_(sa.select(cand.c.role).where(cand.c.task_id == ht.c.id).correlate(ht).scalar_subquery()),
        ),
    )
    query = (
        sa.select(
            ht,
            inst.c.state.label("instance_state"),
            inst.c.revision.label("instance_revision"),
            inst.c.definition_id.label("definition_id"),
            inst.c.phase.label("instance_phase"),
            inst.c.event_seq.label("event_seq"),
            inst.c.event_hash.label("event_hash"),
            holds_role.label("holds_role"),
            sa.exists().where(t.user.c.name == user, t.user.c.active.is_(True)).label("user_exists"),
            # Whether anyone keeps a draft of it: completing it deletes them, and most tasks have none.
            sa.exists().where(t.task_draft.c.task_id == ht.c.id).label("has_draft"),
        )
        .join(inst, inst.c.id == ht.c.instance_id)
        .where(ht.c.id == sa.bindparam("b_task"))
    )
    return query.with_for_update(of=inst) if lock else query


_FOR_ACTION = {False: _for_action(False), True: _for_action(True)}
_CLOSE_TASKS = (
    sa.update(t.human_task)
    .where(t.human_task.c.instance_id == sa.bindparam("b_instance"),
           t.human_task.c.spiff_task_id == sa.bindparam("b_sid"), t.human_task.c.state == "ready")
    .values(state=sa.bindparam("b_state"), completed_at=sa.bindparam("b_at"), completed_by=sa.bindparam("b_by"))
)
_INSERT_HUMAN_TASK = sa.insert(t.human_task)
_INSERT_EVENT = sa.insert(t.event)
_INSTANCE_ROW = sa.select(t.instance).where(t.instance.c.id == sa.bindparam("b_id"))
_INSTANCE_ROW_LOCKED = _INSTANCE_ROW.with_for_update()
_OPEN_TASK_IDS = (sa.select(t.human_task.c.id).where(t.human_task.c.instance_id == sa.bindparam("b_instance"),
                                                    t.human_task.c.state == "ready")
                   .order_by(t.human_task.c.id).limit(500).subquery("open_ids"))
_OPEN_TASKS = (sa.select(t.human_task, t.human_task_candidate.c.role.label("candidate_role"))
               .join(_OPEN_TASK_IDS, _OPEN_TASK_IDS.c.id == t.human_task.c.id)
               .outerjoin(t.human_task_candidate, t.human_task_candidate.c.task_id == t.human_task.c.id)
               .order_by(t.human_task.c.id, t.human_task_candidate.c.role))
# An instance as `show` gives it, with its open tasks, in one statement: the instance's columns
# (prefixed "i_") repeat on each task's rows; an instance without open tasks has one row.
_SHOWN_INSTANCE_COLUMNS = ("id", "definition_id", "key", "version", "business_key", "state", "phase", "data", "error",
                           "started_by", "created_at", "updated_at", "ended_at", "cancel_reason", "outcome")
_INSTANCE_WITH_OPEN_TASKS = (
    sa.select(*(t.instance.c[name].label(f"i_{name}") for name in _SHOWN_INSTANCE_COLUMNS), t.human_task,
              t.human_task_candidate.c.role.label("candidate_role"))
    .select_from(t.instance.outerjoin(_OPEN_TASK_IDS, sa.true())
                 .outerjoin(t.human_task, t.human_task.c.id == _OPEN_TASK_IDS.c.id)
                 .outerjoin(t.human_task_candidate, t.human_task_candidate.c.task_id == t.human_task.c.id))
    .where(t.instance.c.id == sa.bindparam("b_instance"))
    .order_by(t.human_task.c.id, t.human_task_candidate.c.role)
)
_CANDIDATE_ROLES = sa.select(t.human_task_candidate.c.task_id, t.human_task_candidate.c.role).where(
    t.human_task_candidate.c.task_id.in_(sa.bindparam("b_ids", expanding=True)))
_TOKEN_OWNER = (
    sa.select(t.api_token.c.id, t.api_token.c.user_name, t.api_token.c.revoked_at, t.api_token.c.last_used_at,
              t.user.c.active.label("user_active"), t.user_role.c.role_name)
    .join(t.user, t.user.c.name == t.api_token.c.user_name)
    .outerjoin(t.user_role, t.user_role.c.user_name == t.api_token.c.user_name)
    .where(t.api_token.c.token_hash == sa.bindparam("b_hash"))
)
_ACTIVE_ROLES = (
    sa.select(t.user.c.name, t.user_role.c.role_name)
    .outerjoin(t.user_role, t.user_role.c.user_name == t.user.c.name)
    .where(t.user.c.name == sa.bindparam("b_name"), t.user.c.active.is_(True))
)


def _definition(row) -> Definition:
    return Definition(row.id, row.key, row.version, row.hash, row.name, row.deployed_by, row.deployed_at)


def _task(row, candidates: list[str] | None = None) -> HumanTask:
    return HumanTask(
        id=row.id, instance_id=row.instance_id, process_key=row.process_key, business_key=row.business_key,
        element_id=row.element_id, name=row.name, role=row.role, assignee=row.assignee, phase=row.phase,
        form=row.form, due=row.due, state=row.state, created_at=row.created_at, completed_at=row.completed_at,
        completed_by=row.completed_by, candidate_roles=candidates or [],
        kind=row.kind, gate_id=row.gate_id, round=row.round,
    )


def _with_candidates(rows) -> list[HumanTask]:
    """Tasks from human_task rows joined with their candidate roles (`candidate_role`, NULL if
    none): one row per candidate role, a task's rows next to each other. The roles come with the
    tasks in one statement instead of a second query per list."""
    found: list[HumanTask] = []
    for row in rows:
        if found and found[-1].id == row.id:
            found[-1].candidate_roles.append(row.candidate_role)
        else:
            found.append(_task(row, [row.candidate_role] if row.candidate_role is not None else []))
    return found


_HT = t.human_task.c


def _task_order(c, sort: str | None) -> tuple:
    """Orderings of task lists (engine.domain.inbox.SORTS) on human_task's columns or a subquery's;
    the id makes every order total."""
    if sort == "due":
        return c.due.asc().nulls_last(), c.id
    if sort == "age":
        return c.created_at, c.id
    if sort == "priority":
        return sa.case((c.kind == "approval", 0), else_=1), c.due.asc().nulls_last(), c.created_at, c.id
    return (c.id,)


_TASK_ORDER = {sort: _task_order(_HT, sort) for sort in (None, "due", "age", "priority")}


def _candidate_task_ids(roles: list[str]) -> sa.Select:
    cand = t.human_task_candidate
    return sa.select(cand.c.task_id).where(cand.c.role.in_(roles))


def _with_candidate_role(query: sa.Select, roles: list[str], dialect: str) -> sa.Select:
    """`query` (on human_task) limited to tasks with a candidate role among `roles`, read from the
    candidate rows' side: there are few of them, and human_task has no index to find them by."""
    ht = t.human_task
    if dialect == "postgresql":
        # ANY(ARRAY(...)) makes the ids one value PostgreSQL looks up through the primary key;
        # with IN (...) it hashes them and scans the whole table instead.
        return query.where(ht.c.id == sa.any_(sa.func.array(_candidate_task_ids(roles).scalar_subquery())))
    # SQLite loops over the joined ids and reads each task by rowid; with IN (...) it walked the
    # (state, due) index over every task.
    ids = _candidate_task_ids(roles).distinct().subquery()
    return query.select_from(ids.join(ht, ht.c.id == ids.c.task_id))


def _due_counts(due, now: datetime, week: tuple[datetime, datetime]) -> tuple:
    """The inbox's counts as aggregates over `due`: overdue (before `now`), due within `week`."""
    return (sa.func.count(sa.case((due < now, 1))),
            sa.func.count(sa.case((sa.and_(due >= week[0], due < week[1]), 1))))


def _not_indexed(column: sa.Column) -> sa.ColumnElement:
    """The column as `+table.column`: SQLite's documented way to keep a term from choosing an index."""
    return sa.literal_column(f"+{column.table.name}.{column.name}", type_=column.type)


class DefinitionRepository:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def latest(self, key: str):
        """The newest version's full row (with files and elements), or None."""
        return self.conn.execute(
            sa.select(t.definition).where(t.definition.c.key == key).order_by(t.definition.c.version.desc()).limit(1)
        ).first()

    def get_row(self, definition_id: int):
        return self.conn.execute(sa.select(t.definition).where(t.definition.c.id == definition_id)).first()

    def by_key_version(self, key: str, version: int):
        return self.conn.execute(
            sa.select(t.definition).where(t.definition.c.key == key, t.definition.c.version == version)
        ).first()

    def add_deployment(self, deployed_by: str, at: datetime, source: str | None) -> int:
        return self.conn.execute(
            sa.insert(t.deployment).values(deployed_by=deployed_by, deployed_at=at, source=source)
            .returning(t.deployment.c.id)
        ).scalar_one()

    def add(self, *, key: str, version: int, hash: str, name: str | None, deployment_id: int, deployed_by: str,
            at: datetime, files: dict, elements: dict) -> Definition:
        new_id = self.conn.execute(
            sa.insert(t.definition).values(
                key=key, version=version, hash=hash, name=name, deployment_id=deployment_id, deployed_by=deployed_by,
                deployed_at=at, files=files, elements=elements,
            ).returning(t.definition.c.id)
        ).scalar_one()
        return Definition(new_id, key, version, hash, name, deployed_by, at)

    def roles_in_use(self) -> set[str]:
        """Every role a deployed process routes a task to."""
        roles: set[str] = set()
        for elements in self.conn.execute(sa.select(t.definition.c.elements)).scalars():
            for info in (elements or {}).values():
                roles.update(info.get("roles", []))
        return roles

    def list(self, latest_only: bool = False) -> list[Definition]:
        cols = [t.definition.c[c] for c in ("id", "key", "version", "hash", "name", "deployed_by", "deployed_at")]
        query = sa.select(*cols).order_by(t.definition.c.key, t.definition.c.version)
        rows = [_definition(r) for r in self.conn.execute(query)]
        if latest_only:
            newest: dict[str, Definition] = {}
            for d in rows:
                newest[d.key] = d
            rows = list(newest.values())
        return rows


class InstanceRepository:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def shown(self, instance_id: int) -> Instance | None:
        """The instance with its ready tasks (the rows of `to_instance`), in one statement: every
        API completion answers with it."""
        rows = list(self.conn.execute(_INSTANCE_WITH_OPEN_TASKS, {"b_instance": instance_id}))
        if not rows:
            return None
        head = SimpleNamespace(**{name: getattr(rows[0], f"i_{name}") for name in _SHOWN_INSTANCE_COLUMNS})
        return to_instance(head, _with_candidates(r for r in rows if r.id is not None))

    def add(self, *, definition: Definition, business_key: str | None, started_by: str, at: datetime,
            gate_overrides: dict | None = None) -> int:
        return self.conn.execute(
            sa.insert(t.instance).values(
                definition_id=definition.id, key=definition.key, version=definition.version,
                business_key=business_key, state="running", data={}, workflow="{}", revision=0,
                started_by=started_by, created_at=at, updated_at=at, gate_overrides=gate_overrides,
            ).returning(t.instance.c.id)
        ).scalar_one()

    def get_row(self, instance_id: int, for_update: bool = False):
        return self.conn.execute(_INSTANCE_ROW_LOCKED if for_update else _INSTANCE_ROW, {"b_id": instance_id}).first()

    def workflow_rows(self, instance_id: int) -> list[TaskRow]:
        c = t.workflow_task.c
        return [
            TaskRow(r.task_id, r.workflow_id, r.body)
            for r in self.conn.execute(
                sa.select(c.task_id, c.workflow_id, c.body).where(c.instance_id == instance_id)
            )
        ]

    def save_step(self, instance_id: int, *, revision: int, values: dict, upserts: list[TaskRow],
                  deletes: list[str]) -> bool:
        """Write one step: changed task rows and the instance row. False if someone else wrote first."""
        if upserts:
            self.conn.execute(_upsert_task(self.conn.dialect.name), [
                {"instance_id": instance_id, "task_id": r.task_id, "workflow_id": r.workflow_id, "body": r.body}
                for r in upserts
            ])
        if deletes:
            self.conn.execute(_DELETE_TASKS, {"b_instance": instance_id, "b_ids": deletes})
        result = self.conn.execute(
            _update_instance(frozenset(values)),
            {"b_id": instance_id, "b_revision": revision, "b_new_revision": revision + 1, **values},
        )
        return result.rowcount == 1

    def advance_event_head(self, instance_id: int, old_seq: int, new_seq: int, new_hash: str, at: datetime) -> bool:
        c = t.instance.c
        result = self.conn.execute(
            sa.update(t.instance).where(c.id == instance_id, c.event_seq == old_seq)
            .values(event_seq=new_seq, event_hash=new_hash, updated_at=at)
        )
        return result.rowcount == 1

    def list(self, *, state: str | None = None, key: str | None = None, business_key: str | None = None,
             limit: int = 200, offset: int = 0) -> list:
        c = t.instance.c
        query = sa.select(
            c.id, c.definition_id, c.key, c.version, c.business_key, c.state, c.phase, c.data, c.error,
            c.started_by, c.created_at, c.updated_at, c.ended_at, c.cancel_reason, c.outcome,
        ).order_by(c.id.desc()).limit(limit).offset(offset)
        if state:
            query = query.where(c.state == state)
        if key:
            query = query.where(c.key == key)
        if business_key:
            query = query.where(c.business_key == business_key)
        return list(self.conn.execute(query))

    def takes_part(self, instance_id: int, user: str) -> bool:
        """Whether `user` takes part in the instance: started it, holds a role one of its tasks is
        or was routed to (membership read now), is or was a task's assignee or completer, or owns
        one of its action items. One statement, on the (instance_id, state) index."""
        ht, cand, ur = t.human_task.c, t.human_task_candidate.c, t.user_role.c
        held = sa.select(ur.role_name).where(ur.user_name == user)
        task = sa.exists().where(ht.instance_id == instance_id, sa.or_(
            ht.role.in_(held), ht.assignee == user, ht.completed_by == user,
            ht.id.in_(sa.select(cand.task_id).where(cand.role.in_(held)))))
        started = sa.exists().where(t.instance.c.id == instance_id, t.instance.c.started_by == user)
        owner = sa.exists().where(t.action_item.c.instance_id == instance_id, t.action_item.c.owner == user)
        return bool(self.conn.execute(sa.select(sa.or_(started, task, owner))).scalar())

    def due_for_timers(self, now: datetime, limit: int = 100) -> list[int]:
        c = t.instance.c
        return list(self.conn.execute(
            sa.select(c.id).where(c.state == "running", c.wake_at.is_not(None), c.wake_at <= now)
            .order_by(c.wake_at).limit(limit)
        ).scalars())


def to_instance(row, tasks: list[HumanTask]) -> Instance:
    return Instance(
        id=row.id, definition_id=row.definition_id, key=row.key, version=row.version,
        business_key=row.business_key, state=row.state, phase=row.phase, data=row.data or {},
        error=row.error, started_by=row.started_by, created_at=row.created_at, updated_at=row.updated_at,
        ended_at=row.ended_at, cancel_reason=row.cancel_reason, tasks=tasks,
        outcome=getattr(row, "outcome", None),
    )


class HumanTaskRepository:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def for_action(self, task_id: int, user: str, lock: bool = False):
        """The task, its instance's head and whether `user` may act on it, in one statement."""
        return self.conn.execute(_FOR_ACTION[lock], {"b_task": task_id, "b_user": user}).first()

    def open_for_instance(self, instance_id: int) -> list[HumanTask]:
        """The instance's ready tasks (what `query(instance_id=...)` lists), with a statement built
        once: every API completion shows them."""
        return _with_candidates(self.conn.execute(_OPEN_TASKS, {"b_instance": instance_id}))

    def query(self, *, instance_id: int | None = None, roles: Iterable[str] | None = None, user: str | None = None,
              states: tuple[str, ...] = ("ready",), limit: int = 500, offset: int = 0, sort: str | None = None,
              **filters) -> list[HumanTask]:
        """Tasks by state; with `roles`/`user`, those routed to any of the roles or assigned to the user.

        Keyword filters (all optional, combined with AND; see `_conditions`): process, phase, gate,
        role, due_after, due_before, search. `sort`: None (creation order), "due", "age" or
        "priority" (engine.domain.inbox.SORTS).
        """
        return self._page(instance_id, roles, user, states, limit, offset, sort, False, filters)[0]

    def page(self, *, instance_id: int | None = None, roles: Iterable[str] | None = None, user: str | None = None,
             states: tuple[str, ...] = ("ready",), limit: int = 500, offset: int = 0, sort: str | None = None,
             **filters) -> tuple[list[HumanTask], int | None]:
        """`query`, and how many tasks match in all. With `roles`/`user`, one statement pages
        through the visible tasks' ids and sort keys (`_visible`), counting them on the way, and
        reads only that page's rows; the count is None when that page is empty (nothing counted)."""
        return self._page(instance_id, roles, user, states, limit, offset, sort, True, filters)[:2]

    def page_with_due_counts(self, *, roles: Iterable[str] | None = None, user: str | None = None, now: datetime,
                             week: tuple[datetime, datetime], states: tuple[str, ...] = ("ready",),
                             limit: int = 500, offset: int = 0, sort: str | None = None
                             ) -> tuple[list[HumanTask], int | None, dict[str, int] | None]:
        """`page` without filters, and `count_by_due`'s counts: for a user's tasks taken in the
        same statement (one pass over them instead of two); None, like the total, for an empty page."""
        if roles is None and user is None:
            found, total = self.page(states=states, limit=limit, offset=offset, sort=sort)
            return found, total, self.count_by_due(now=now, week=week, states=states)
        return self._page(None, roles, user, states, limit, offset, sort, True, {}, due_counts=(now, week))

    def _page(self, instance_id, roles, user, states, limit, offset, sort, counted, filters, due_counts=None):
        ht = t.human_task
        if roles is None and user is None:
            # Every task: the state indexes give the page in order, and the count from an index
            # alone (a window count would read every row).
            query = (sa.select(ht).where(*self._conditions(instance_id, states, **filters))
                     .order_by(*_TASK_ORDER[sort]).limit(limit).offset(offset))
            total = self.count(instance_id=instance_id, states=states, **filters) if counted else None
        else:
            # A user's tasks: their ids and sort keys are all read to sort them anyway, so the
            # same pass counts them, and only the page's rows are read in full.
            visible = self._visible(instance_id, roles, user, states, **filters).subquery("visible")
            window = [sa.func.count().over().label("matching")] if counted else []
            if due_counts is not None:
                overdue, this_week = _due_counts(visible.c.due, *due_counts)
                window += [overdue.over().label("overdue"), this_week.over().label("due_this_week")]
            page = (sa.select(visible.c.id, *window).order_by(*_task_order(visible.c, sort))
                    .limit(limit).offset(offset).subquery("page"))
            cand = t.human_task_candidate
            query = (sa.select(ht, cand.c.role.label("candidate_role"), *(page.c[w.name] for w in window))
                     .join(page, page.c.id == ht.c.id).outerjoin(cand, cand.c.task_id == ht.c.id)
                     .order_by(*_TASK_ORDER[sort], cand.c.role))
            rows = list(self.conn.execute(query))
            counts = None
            if due_counts is not None and rows:
                counts = {"all": rows[0].matching, "overdue": rows[0].overdue, "due_this_week": rows[0].due_this_week}
            return _with_candidates(rows), (rows[0].matching if counted and rows else None), counts
        rows = list(self.conn.execute(query))
        candidates = self._candidates([r.id for r in rows]) if rows else {}
        return [_task(r, candidates.get(r.id)) for r in rows], total, None

    def count(self, *, instance_id: int | None = None, roles: Iterable[str] | None = None, user: str | None = None,
              states: tuple[str, ...] = ("ready",), **filters) -> int:
        """How many tasks `query` would list with the same arguments (without paging)."""
        if roles is None and user is None:
            query = sa.select(sa.func.count()).select_from(t.human_task).where(
                *self._conditions(instance_id, states, **filters))
        else:
            query = sa.select(sa.func.count()).select_from(
                self._visible(instance_id, roles, user, states, **filters).subquery())
        return self.conn.execute(query).scalar_one()

    def count_by_due(self, *, roles: Iterable[str] | None = None, user: str | None = None, now: datetime,
                     week: tuple[datetime, datetime], states: tuple[str, ...] = ("ready",)) -> dict[str, int]:
        """{"all", "overdue" (due before `now`), "due_this_week" (due within `week`)}: the inbox's
        counts, in one pass over the tasks `count` would count."""
        if roles is None and user is None:
            tasks = sa.select(t.human_task.c.due).where(*self._conditions(None, states)).subquery()
        else:
            tasks = self._visible(None, roles, user, states).subquery()
        query = sa.select(sa.func.count(), *_due_counts(tasks.c.due, now, week))
        total, overdue, this_week = self.conn.execute(query.select_from(tasks)).one()
        return {"all": total, "overdue": overdue, "due_this_week": this_week}

    def _visible(self, instance_id, roles, user, states, **filters) -> sa.CompoundSelect:
        """The ids and sort keys of the tasks routed to any of `roles` or assigned to `user`.

        Three disjoint parts, each read through its own index, instead of one OR over them, which
        neither database can answer from an index (with 100,000 open tasks every inbox query read
        the whole table; bench/api.py): tasks whose primary role is one of the roles ((state, role)),
        tasks with a candidate role among them but another primary role (human_task_candidate by
        role), and tasks assigned to the user for none of those roles ((state, assignee)).
        """
        ht = t.human_task
        keys = (ht.c.id, ht.c.due, ht.c.created_at, ht.c.kind)
        dialect = self.conn.dialect.name
        common = self._conditions(instance_id, states, dialect=dialect, **filters)
        if user is not None:
            # A task claimed by someone else leaves the other role members' lists, and a gate
            # approval leaves the list of whoever has already decided it (only approvals carry
            # decisions, so other tasks skip the lookup).
            common.append(sa.or_(ht.c.assignee.is_(None), ht.c.assignee == user))
            common.append(sa.or_(ht.c.kind != "approval", ~sa.exists().where(
                t.gate_decision.c.task_id == ht.c.id, t.gate_decision.c.user_name == user)))
        roles = sorted(set(roles or []))
        parts = []
        other_primary = sa.or_(ht.c.role.is_(None), ht.c.role.not_in(roles))
        if roles:
            parts.append(sa.select(*keys).where(ht.c.role.in_(roles), *common))
            parts.append(_with_candidate_role(sa.select(*keys), roles, dialect).where(other_primary, *common))
        if user is not None:
            mine = [ht.c.assignee == user]
            if roles:
                mine += [other_primary, ht.c.id.not_in(_candidate_task_ids(roles))]
            parts.append(sa.select(*keys).where(*mine, *common))
        if not parts:
            parts.append(sa.select(*keys).where(sa.false()))
        return sa.union_all(*parts)

    @staticmethod
    def _conditions(instance_id, states, *, dialect: str | None = None, process: str | None = None,
                    phase: str | None = None, gate: str | None = None, role: str | None = None,
                    due_after: datetime | None = None, due_before: datetime | None = None,
                    search: str | None = None) -> list:
        """WHERE conditions on human_task besides who may see it (`_visible`). The state condition
        leads, so the (state, ...) indexes select the rows; the rest filter them."""
        ht, cand = t.human_task, t.human_task_candidate
        conditions = [ht.c.state.in_(states)]
        if instance_id is not None:
            conditions.append(ht.c.instance_id == instance_id)
        if process is not None:
            conditions.append(ht.c.process_key == process)
        if phase is not None:
            conditions.append(ht.c.phase == phase)
        if gate is not None:
            # Approval tasks of that gate (by its id in the gates file), found through the gate row's key.
            conditions.append(sa.exists().where(t.gate.c.id == ht.c.gate_id, t.gate.c.gate == gate))
        if role is not None:
            conditions.append(sa.or_(ht.c.role == role, ht.c.id.in_(
                sa.select(cand.c.task_id).where(cand.c.role == role))))
        # Within a user's tasks (`dialect` given), SQLite must not read a due-date window through
        # the (state, due) index: without statistics it prefers it to the (state, role) index that
        # selects the user's tasks, and reads every task due in the window instead (10x slower).
        due = _not_indexed(ht.c.due) if dialect == "sqlite" else ht.c.due
        if due_after is not None:
            conditions.append(due >= due_after)
        if due_before is not None:
            conditions.append(due < due_before)
        if search is not None:
            matches = [sa.func.lower(ht.c.business_key).contains(search.lower(), autoescape=True)]
            if search.isdigit():
                matches.append(ht.c.instance_id == int(search))
            conditions.append(sa.or_(*matches))
        return conditions

    def _candidates(self, task_ids: list[int]) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for row in self.conn.execute(_CANDIDATE_ROLES, {"b_ids": task_ids}):
            found.setdefault(row.task_id, []).append(row.role)
        return found

    def get(self, task_id: int) -> HumanTask | None:
        row = self.conn.execute(sa.select(t.human_task).where(t.human_task.c.id == task_id)).first()
        if row is None:
            return None
        return _task(row, self._candidates([row.id]).get(row.id))

    def add_ready(self, rows: list[dict], candidates: dict[str, list[str]]) -> None:
        """Insert newly ready tasks; `candidates` maps spiff task id -> roles for multi-role tasks."""
        if not rows:
            return
        self.conn.execute(_INSERT_HUMAN_TASK, rows)
        if candidates:
            ids = dict(self.conn.execute(
                sa.select(t.human_task.c.spiff_task_id, t.human_task.c.id).where(
                    t.human_task.c.instance_id == rows[0]["instance_id"],
                    t.human_task.c.spiff_task_id.in_(list(candidates)),
                )
            ).all())
            self.conn.execute(sa.insert(t.human_task_candidate), [
                {"task_id": ids[sid], "role": role} for sid, roles in candidates.items() for role in roles
            ])

    def close(self, instance_id: int, closing: list[dict]) -> None:
        """Mark tasks that left the ready state: completed by someone, or cancelled/withdrawn."""
        if not closing:
            return
        self.conn.execute(_CLOSE_TASKS, [{"b_instance": instance_id, **c} for c in closing])

    def set_assignee(self, task_id: int, assignee: str | None) -> None:
        self.conn.execute(sa.update(t.human_task).where(t.human_task.c.id == task_id).values(assignee=assignee))

    def held_without_role(self, user: str) -> list:
        """Ready tasks assigned to `user` although they hold none of the task's roles (nor admin):
        what a revoked role leaves behind. Rows of (id, instance_id, element_id)."""
        ht, ur, cand = t.human_task, t.user_role, t.human_task_candidate
        holds_role = sa.exists().where(
            ur.c.user_name == user,
            sa.or_(ur.c.role_name == ht.c.role, ur.c.role_name == "admin",
                   ur.c.role_name.in_(sa.select(cand.c.role).where(cand.c.task_id == ht.c.id)
                                      .correlate(ht).scalar_subquery())))
        return list(self.conn.execute(
            sa.select(ht.c.id, ht.c.instance_id, ht.c.element_id)
            .where(ht.c.state == "ready", ht.c.assignee == user, ~holds_role).order_by(ht.c.instance_id, ht.c.id)))

    def candidate_people(self, task_ids: list[int]) -> dict[int, int]:
        """Task id -> how many active users hold its role or one of its candidate roles (a task
        without a role: the admins), for a whole page of tasks in one statement (user_role is
        indexed by role). Tasks nobody may take are missing (0)."""
        if not task_ids:
            return {}
        ht, cand, ur, user = t.human_task, t.human_task_candidate, t.user_role, t.user
        routed = sa.union_all(
            sa.select(ht.c.id.label("task_id"), sa.func.coalesce(ht.c.role, "admin").label("role"))
            .where(ht.c.id.in_(task_ids)),
            sa.select(cand.c.task_id.label("task_id"), cand.c.role.label("role")).where(cand.c.task_id.in_(task_ids)),
        ).subquery()
        query = (
            sa.select(routed.c.task_id, sa.func.count(sa.distinct(ur.c.user_name)))
            .select_from(routed.join(ur, ur.c.role_name == routed.c.role)
                         .join(user, sa.and_(user.c.name == ur.c.user_name, user.c.active.is_(True))))
            .group_by(routed.c.task_id)
        )
        return {task_id: count for task_id, count in self.conn.execute(query)}


class EventRepository:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def append(self, event: Event) -> None:
        self.conn.execute(_INSERT_EVENT, {
            "instance_id": event.instance_id, "seq": event.seq, "at": event.at, "actor": event.actor,
            "type": event.type, "task_id": event.task_id, "element_id": event.element_id,
            "payload": event.payload, "prev_hash": event.prev_hash, "hash": event.hash,
        })

    def for_instance(self, instance_id: int) -> list[Event]:
        e = t.event.c
        return [
            Event(r.instance_id, r.seq, r.at, r.actor, r.type, r.task_id, r.element_id, r.payload, r.prev_hash, r.hash)
            for r in self.conn.execute(sa.select(t.event).where(e.instance_id == instance_id).order_by(e.seq))
        ]


class UserRepository:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def exists(self, name: str) -> bool:
        return self.conn.execute(sa.select(t.user.c.name).where(t.user.c.name == name)).first() is not None

    def add(self, name: str, display_name: str, at: datetime, password_hash: str | None = None,
            email: str | None = None) -> None:
        self.conn.execute(sa.insert(t.user).values(
            name=name, display_name=display_name, created_at=at, password_hash=password_hash, email=email,
        ))

    def ensure_role(self, role: str) -> None:
        if self.conn.execute(sa.select(t.role.c.name).where(t.role.c.name == role)).first() is None:
            self.conn.execute(sa.insert(t.role).values(name=role))

    def grant(self, name: str, role: str) -> bool:
        ur = t.user_role.c
        if self.conn.execute(sa.select(ur.user_name).where(ur.user_name == name, ur.role_name == role)).first():
            return False
        self.conn.execute(sa.insert(t.user_role).values(user_name=name, role_name=role))
        return True

    def revoke(self, name: str, role: str) -> bool:
        ur = t.user_role.c
        result = self.conn.execute(sa.delete(t.user_role).where(ur.user_name == name, ur.role_name == role))
        return result.rowcount > 0

    def roles_of(self, name: str) -> list[str]:
        ur = t.user_role.c
        return list(self.conn.execute(sa.select(ur.role_name).where(ur.user_name == name)).scalars())

    def get(self, name: str) -> User | None:
        row = self.conn.execute(sa.select(t.user).where(t.user.c.name == name)).first()
        if row is None:
            return None
        return User(row.name, row.display_name, self.roles_of(name), row.active)

    def password_hash(self, name: str) -> str | None:
        return self.conn.execute(sa.select(t.user.c.password_hash).where(t.user.c.name == name)).scalar()

    def set_password_hash(self, name: str, password_hash: str) -> None:
        self.conn.execute(sa.update(t.user).where(t.user.c.name == name).values(password_hash=password_hash))

    def list(self) -> list[User]:
        roles: dict[str, list[str]] = {}
        for row in self.conn.execute(sa.select(t.user_role)):
            roles.setdefault(row.user_name, []).append(row.role_name)
        return [
            User(r.name, r.display_name, roles.get(r.name, []), r.active)
            for r in self.conn.execute(sa.select(t.user).order_by(t.user.c.name))
        ]

    def all_roles(self) -> list[str]:
        return list(self.conn.execute(sa.select(t.role.c.name)).scalars())

    def roles_with_members(self) -> list[tuple[str, str | None, list[str]]]:
        """(role, description, sorted member names) for every role, by name."""
        members: dict[str, list[str]] = {}
        for row in self.conn.execute(sa.select(t.user_role).order_by(t.user_role.c.user_name)):
            members.setdefault(row.role_name, []).append(row.user_name)
        return [(r.name, r.description, members.get(r.name, []))
                for r in self.conn.execute(sa.select(t.role).order_by(t.role.c.name))]

    def is_active(self, name: str) -> bool:
        return bool(self.conn.execute(sa.select(t.user.c.active).where(t.user.c.name == name)).scalar())

    def active_roles(self, name: str) -> list[str] | None:
        """The roles of an active user; None if the user is unknown or deactivated. One statement
        (every request authenticates with it)."""
        rows = self.conn.execute(_ACTIVE_ROLES, {"b_name": name}).all()
        return [r.role_name for r in rows if r.role_name is not None] if rows else None

    def members_of(self, role: str) -> list[str]:
        ur = t.user_role.c
        return list(self.conn.execute(sa.select(ur.user_name).where(ur.role_name == role)).scalars())

    def active_holders(self, roles: Iterable[str]) -> list[str]:
        """Active users holding any of `roles`, by name (one statement on the user_role index)."""
        ur, user = t.user_role.c, t.user.c
        query = (sa.select(ur.user_name).distinct()
                 .join_from(t.user_role, t.user, user.name == ur.user_name)
                 .where(ur.role_name.in_(list(roles)), user.active.is_(True))
                 .order_by(ur.user_name))
        return list(self.conn.execute(query).scalars())

    def active_names(self) -> list[str]:
        return list(self.conn.execute(sa.select(t.user.c.name).where(t.user.c.active.is_(True))
                                      .order_by(t.user.c.name)).scalars())


class GateRepository:
    """Gate configurations, gate rounds, decisions, action items and delegations."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn

    # -- configurations
    def latest_config(self, process_key: str):
        c = t.gate_config.c
        return self.conn.execute(sa.select(t.gate_config).where(c.process_key == process_key)
                                 .order_by(c.version.desc()).limit(1)).first()

    def config(self, config_id: int):
        return self.conn.execute(sa.select(t.gate_config).where(t.gate_config.c.id == config_id)).first()

    def add_config(self, **values) -> int:
        return self.conn.execute(sa.insert(t.gate_config).values(**values).returning(t.gate_config.c.id)).scalar_one()

    def reconfigure_open_gates(self, process_key: str, config_id: int, gates: dict) -> None:
        """A deployment that applies to open gates: they take the new settings of their gate."""
        c = t.gate.c
        rows = self.conn.execute(sa.select(c.id, c.gate).join(t.instance, t.instance.c.id == c.instance_id).where(
            t.instance.c.key == process_key, c.state.in_(("open", "blocked")))).all()
        for gate_id, gate in rows:
            if gate in gates:
                self.conn.execute(sa.update(t.gate).where(c.id == gate_id).values(config_id=config_id,
                                                                                 config=gates[gate]))

    # -- gate rounds
    def add(self, **values) -> int:
        return self.conn.execute(sa.insert(t.gate).values(**values).returning(t.gate.c.id)).scalar_one()

    def get(self, gate_id: int, for_update: bool = False):
        query = sa.select(t.gate).where(t.gate.c.id == gate_id)
        return self.conn.execute(query.with_for_update() if for_update else query).first()

    def for_instance(self, instance_id: int) -> list:
        c = t.gate.c
        return list(self.conn.execute(sa.select(t.gate).where(c.instance_id == instance_id).order_by(c.id)))

    def rounds_of(self, instance_id: int, gate: str) -> list:
        """Every opening of the gate in the instance, oldest first."""
        c = t.gate.c
        return list(self.conn.execute(sa.select(t.gate).where(c.instance_id == instance_id, c.gate == gate)
                                      .order_by(c.id)))

    def rework_cycle(self, instance_id: int, gate: str, before_id: int | None = None) -> list:
        """The openings of the gate since it last passed (or was killed): the rounds of the current
        rework cycle. A gate reached again in the next loop iteration starts again at round 1."""
        cycle = []
        for row in self.rounds_of(instance_id, gate):
            if before_id is not None and row.id >= before_id:
                break
            if row.state == "passed" or row.outcome == "kill":
                cycle = []
            elif row.state in ("rejected", "withdrawn"):
                cycle.append(row)
        return cycle

    def update(self, gate_id: int, **values) -> None:
        self.conn.execute(sa.update(t.gate).where(t.gate.c.id == gate_id).values(**values))

    def blocked_for_instance(self, instance_id: int) -> list:
        c = t.gate.c
        return list(self.conn.execute(sa.select(t.gate).where(c.instance_id == instance_id, c.state == "blocked")))

    def open_for_instance(self, instance_id: int) -> list:
        c = t.gate.c
        return list(self.conn.execute(sa.select(t.gate).where(c.instance_id == instance_id,
                                                               c.state.in_(("open", "blocked")))))

    def due_for_escalation(self, now: datetime, limit: int = 100) -> list:
        c = t.gate.c
        return list(self.conn.execute(sa.select(t.gate.c.id, c.instance_id).where(
            c.state == "open", c.escalate_at.is_not(None), c.escalate_at <= now).order_by(c.escalate_at).limit(limit)))

    # -- decisions
    def add_decision(self, **values) -> int:
        return self.conn.execute(sa.insert(t.gate_decision).values(**values)
                                 .returning(t.gate_decision.c.id)).scalar_one()

    def decisions(self, gate_id: int) -> list:
        c = t.gate_decision.c
        return list(self.conn.execute(sa.select(t.gate_decision).where(c.gate_id == gate_id).order_by(c.id)))

    def decisions_for_gates(self, gate_ids: list[int]) -> dict[int, list]:
        found: dict[int, list] = {}
        if gate_ids:
            c = t.gate_decision.c
            for row in self.conn.execute(sa.select(t.gate_decision).where(c.gate_id.in_(gate_ids)).order_by(c.id)):
                found.setdefault(row.gate_id, []).append(row)
        return found

    # -- approval tasks
    def approval_tasks(self, gate_id: int) -> list:
        ht = t.human_task.c
        return list(self.conn.execute(sa.select(t.human_task).where(ht.gate_id == gate_id).order_by(ht.id)))

    def set_approval_state(self, gate_id: int, state: str, at: datetime, task_ids: list[int] | None = None,
                           completed_by: dict[int, str] | None = None) -> None:
        """Close ready approval tasks of a gate; `completed_by` names who decided each task."""
        ht = t.human_task.c
        query = sa.update(t.human_task).where(ht.gate_id == gate_id, ht.state == "ready")
        if task_ids is not None:
            query = query.where(ht.id.in_(task_ids))
        if completed_by:
            for task_id, user in completed_by.items():
                self.conn.execute(query.where(ht.id == task_id).values(state=state, completed_at=at, completed_by=user))
        self.conn.execute(query.values(state=state, completed_at=at))

    def reroute_approvals(self, gate_id: int, role: str) -> None:
        ht = t.human_task.c
        self.conn.execute(sa.update(t.human_task).where(ht.gate_id == gate_id, ht.state == "ready")
                          .values(role=role, assignee=None))

    def completed_work(self, instance_id: int) -> list:
        """(element id, phase, completed_by) of every task completed in the instance."""
        ht = t.human_task.c
        return list(self.conn.execute(sa.select(ht.element_id, ht.phase, ht.completed_by).where(
            ht.instance_id == instance_id, ht.state == "completed", ht.completed_by.is_not(None)).order_by(ht.id)))

    # -- action items
    def add_action_items(self, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(sa.insert(t.action_item), rows)

    def action_items(self, instance_id: int) -> list:
        c = t.action_item.c
        return list(self.conn.execute(sa.select(t.action_item).where(c.instance_id == instance_id).order_by(c.id)))

    def action_item(self, item_id: int):
        return self.conn.execute(sa.select(t.action_item).where(t.action_item.c.id == item_id)).first()

    def close_action_item(self, item_id: int, user: str, at: datetime, note: str | None) -> None:
        self.conn.execute(sa.update(t.action_item).where(t.action_item.c.id == item_id)
                          .values(state="closed", closed_by=user, closed_at=at, note=note))

    # -- delegations
    def add_delegation(self, **values) -> int:
        return self.conn.execute(sa.insert(t.delegation).values(**values).returning(t.delegation.c.id)).scalar_one()

    def active_delegations(self, now: datetime, *, delegate: str | None = None, task_id: int | None = None) -> list:
        """Delegations in force now: out-of-office periods, and per-task ones for `task_id`."""
        c = t.delegation.c
        query = sa.select(t.delegation).where(
            c.revoked_at.is_(None), c.starts_at <= now, sa.or_(c.ends_at.is_(None), c.ends_at > now),
            sa.or_(c.task_id.is_(None), c.task_id == task_id) if task_id is not None else c.task_id.is_(None),
        )
        if delegate is not None:
            query = query.where(c.delegate == delegate)
        return list(self.conn.execute(query.order_by(c.id)))


class TokenRepository:
    """Personal API tokens. Only the SHA-256 of a token is stored; lookups go through its unique index."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn

    @staticmethod
    def _token(row) -> ApiToken:
        return ApiToken(row.id, row.user_name, row.name, row.prefix, row.created_at, row.last_used_at, row.revoked_at)

    def add(self, *, user: str, name: str, token_hash: str, prefix: str, at: datetime) -> ApiToken:
        new_id = self.conn.execute(sa.insert(t.api_token).values(
            user_name=user, name=name, token_hash=token_hash, prefix=prefix, created_at=at,
        ).returning(t.api_token.c.id)).scalar_one()
        return ApiToken(new_id, user, name, prefix, at)

    def get(self, token_id: int) -> ApiToken | None:
        row = self.conn.execute(sa.select(t.api_token).where(t.api_token.c.id == token_id)).first()
        return self._token(row) if row is not None else None

    def for_user(self, user: str) -> list[ApiToken]:
        c = t.api_token.c
        return [self._token(r) for r in self.conn.execute(
            sa.select(t.api_token).where(c.user_name == user).order_by(c.id))]

    def by_hash(self, token_hash: str):
        """The token row with its user's `active` flag, or None."""
        c = t.api_token.c
        return self.conn.execute(
            sa.select(t.api_token, t.user.c.active.label("user_active"))
            .join(t.user, t.user.c.name == c.user_name).where(c.token_hash == token_hash)
        ).first()

    def owner(self, token_hash: str):
        """(the token row with its user's `active` flag, the roles the user holds), or None — in
        one statement, as every API request authenticates with it."""
        rows = self.conn.execute(_TOKEN_OWNER, {"b_hash": token_hash}).all()
        if not rows:
            return None
        return rows[0], [r.role_name for r in rows if r.role_name is not None]

    def revoke(self, token_id: int, at: datetime) -> bool:
        c = t.api_token.c
        result = self.conn.execute(sa.update(t.api_token).where(c.id == token_id, c.revoked_at.is_(None))
                                   .values(revoked_at=at))
        return result.rowcount == 1

    def touch(self, token_id: int, at: datetime, every: timedelta) -> None:
        """Record a use, at most once per `every` (an API call should not always write)."""
        c = t.api_token.c
        self.conn.execute(sa.update(t.api_token).where(
            c.id == token_id, sa.or_(c.last_used_at.is_(None), c.last_used_at <= at - every)).values(last_used_at=at))

"""The repository of task drafts (`task_draft`: one row per task and user)."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.adapters import tables as t
from engine.domain.drafts import Draft

_D = t.task_draft.c
_UPSERT: dict[str, sa.Insert] = {}


def _upsert(dialect: str) -> sa.Insert:
    stmt = _UPSERT.get(dialect)
    if stmt is None:
        stmt = (postgresql if dialect == "postgresql" else sqlite).insert(t.task_draft)
        stmt = stmt.on_conflict_do_update(index_elements=[_D.task_id, _D.user_name],
                                          set_={"data": stmt.excluded.data, "saved_at": stmt.excluded.saved_at})
        _UPSERT[dialect] = stmt
    return stmt


class DraftRepository:
    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def get(self, task_id: int, user: str) -> Draft | None:
        row = self.conn.execute(sa.select(t.task_draft).where(_D.task_id == task_id, _D.user_name == user)).first()
        return Draft(row.task_id, row.user_name, row.data, row.saved_at) if row else None

    def save(self, task_id: int, user: str, data: dict, at: datetime) -> Draft:
        """Insert or replace the user's draft of the task (one statement)."""
        self.conn.execute(_upsert(self.conn.dialect.name),
                          {"task_id": task_id, "user_name": user, "data": data, "saved_at": at})
        return Draft(task_id, user, data, at)

    def delete(self, task_id: int, user: str) -> bool:
        result = self.conn.execute(sa.delete(t.task_draft).where(_D.task_id == task_id, _D.user_name == user))
        return result.rowcount > 0

    def delete_for_task(self, task_id: int) -> None:
        """Every user's draft of the task (it was completed)."""
        self.conn.execute(sa.delete(t.task_draft).where(_D.task_id == task_id))

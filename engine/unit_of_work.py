"""One unit of work = one database transaction for one command.

Everything a command changes — workflow task rows, the instance row, inbox rows, the event —
commits together or not at all. Code that leaves the `with` block without calling `commit()`
rolls back, so an exception can never leave a half-written instance behind.
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.adapters.drafts import DraftRepository
from engine.adapters.repositories import (
    DefinitionRepository,
    EventRepository,
    GateRepository,
    HumanTaskRepository,
    InstanceRepository,
    TokenRepository,
    UserRepository,
)


class UnitOfWork:
    def __init__(self, engine: sa.Engine):
        self._engine = engine
        self._after_commit: list = []

    def __enter__(self) -> "UnitOfWork":
        self.conn = self._engine.connect()
        self._tx = self.conn.begin()
        self.definitions = DefinitionRepository(self.conn)
        self.instances = InstanceRepository(self.conn)
        self.tasks = HumanTaskRepository(self.conn)
        self.events = EventRepository(self.conn)
        self.users = UserRepository(self.conn)
        self.gates = GateRepository(self.conn)
        self.tokens = TokenRepository(self.conn)
        self.drafts = DraftRepository(self.conn)
        self._after_commit = []
        return self

    def after_commit(self, callback) -> None:
        """Run `callback` only once the transaction is durable (e.g. publish to an in-memory cache)."""
        self._after_commit.append(callback)

    def commit(self) -> None:
        self._tx.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        if self._tx.is_active:
            self._tx.rollback()

    def __exit__(self, *exc) -> None:
        self.rollback()
        self._after_commit = []
        self.conn.close()

"""Database engines: SQLite (embedded default) and PostgreSQL (production, psycopg 3).

SQLite is tuned for an embedded single-writer service: WAL journal so readers never block
the writer, `synchronous=NORMAL` (durable across application crashes; a power loss may
lose the last transactions but never corrupts the file), foreign keys on, and a busy
timeout so concurrent CLI and web processes queue instead of failing.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

DEFAULT_SQLITE_PATH = "phasegate.sqlite"
SQLITE_MMAP_BYTES = 1 << 30  # up to 1 GiB of the database file is read through the map
ENV_DATABASE_URL = "PHASEGATE_DATABASE_URL"


def resolve_url(url: str | None = None) -> str:
    """The explicit URL, else $PHASEGATE_DATABASE_URL, else ./phasegate.sqlite."""
    url = url or os.environ.get(ENV_DATABASE_URL) or f"sqlite:///{DEFAULT_SQLITE_PATH}"
    # Accept the common libpq-style URL and use psycopg 3 for it.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy drive transactions explicitly (pysqlite's implicit BEGIN is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        # Read the file through a memory map instead of SQLite's small per-connection page cache
        # (2 MB): inbox queries touch rows spread over the whole file, and with 100,000 open
        # tasks they were 3x slower re-reading pages with a system call each (bench/api.py).
        # The map is shared by every connection and process and costs address space, not memory.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    def _begin_immediate(dbapi_connection):
        # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead
        # of one failing later with "database is locked" on upgrade from a read lock.
        cursor = dbapi_connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        cursor.close()

    # On this engine's dialect rather than as a "begin" event listener: any connection event
    # listener makes SQLAlchemy dispatch its execution events around every statement (3-4% of
    # the CPU time of an API task completion, bench/api.py).
    engine.dialect.do_begin = _begin_immediate


def _json_serializer(value) -> str:
    # Task data may hold dates and other values JSON has no type for; store their text.
    return json.dumps(value, default=str, separators=(",", ":"))


def create_engine(url: str | None = None, **kwargs) -> sa.Engine:
    url = resolve_url(url)
    kwargs.setdefault("json_serializer", _json_serializer)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Every unit of work ends in an explicit commit or rollback, so returning a connection to
        # the pool needs no second rollback (it was measurable per task completion).
        kwargs.setdefault("pool_reset_on_return", None)
        engine = sa.create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


class StatementCounter:
    """Counts SQL statements sent through an engine (benchmarks and tests assert on it)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._local = threading.local()
        self.count = 0
        self.statements: list[str] = []
        self.keep_text = False
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        if statement.startswith(("PRAGMA", "BEGIN")):
            return
        self.count += 1
        if self.keep_text:
            self.statements.append(statement)

    def reset(self) -> None:
        self.count = 0
        self.statements.clear()

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)

"""Alembic environment for Phasegate.

Driven programmatically by `engine.adapters.migrations` (no alembic.ini needed) or by the
`alembic` command with the developer alembic.ini at the repository root.

Where the database comes from, first match wins:
  config.attributes["connection"]  an open SQLAlchemy Connection (tests, embedding)
  config.attributes["url"]         a URL (engine.adapters.migrations passes it this way, so a
                                   '%' in a password never meets ConfigParser interpolation)
  sqlalchemy.url main option       alembic -x / ini users
  $PHASEGATE_DATABASE_URL, then the SQLite default (engine.adapters.database.resolve_url)
"""
from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from sqlalchemy import event, pool
from sqlalchemy.sql.elements import False_, True_

from engine.adapters import tables
from engine.adapters.database import create_engine, resolve_url

config = context.config
target_metadata = tables.metadata

# The `alembic` command with the developer alembic.ini: log what autogenerate detects.
# (engine.adapters.migrations has no ini file and leaves the application's logging alone.)
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Any constant: one upgrade at a time per PostgreSQL database (several replicas starting
# together each run `phasegate db upgrade`; the later ones wait, then find nothing to do).
_PG_MIGRATION_LOCK = 0x70686173  # "phas"


def _url() -> str:
    return resolve_url(config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or None)


def _render_item(type_, obj, autogen_context):
    """Autogenerate renders what runs on both databases:
    - tables.JsonType as itself (alembic's own rendering of the variant,
      `postgresql.JSONB(astext_type=Text())`, lacks the `sa.` prefix);
    - server_default=sa.true()/sa.false() as such, not as the dialect's literal
      (`sa.text('1')` from SQLite is an integer, which PostgreSQL refuses for a boolean)."""
    if type_ == "type" and isinstance(obj, sa.JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    if type_ == "server_default":
        arg = getattr(obj, "arg", None)
        if isinstance(arg, True_):
            return "sa.true()"
        if isinstance(arg, False_):
            return "sa.false()"
    return False


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=_render_item,
        # Batch operations are how SQLite alters tables (copy and move); on PostgreSQL they
        # turn into plain ALTERs, so generated migrations always use them.
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: emit the SQL instead of running it."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    _configure(
        connection=connection,
        # SQLite's DDL is transactional once pysqlite stops managing transactions itself
        # (engine.adapters.database does that), so the whole upgrade is one transaction on
        # both databases: a failed upgrade leaves the schema untouched.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        context.run_migrations()
        if sqlite:
            # Foreign keys are off while migrating (see below); refuse to commit a schema
            # change that left dangling references behind.
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"migration left foreign key violations: {problems[:10]}")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return

    engine = create_engine(_url(), poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        # Batch mode recreates tables (create new, copy, drop old, rename). With foreign keys
        # on, dropping the old table would run its ON DELETE CASCADE actions on child rows.
        # The pragma is a no-op inside a transaction, so set it when the connection opens
        # (this listener runs after engine.adapters.database's, which turns them on).
        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()

    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

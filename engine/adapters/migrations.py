"""Schema migrations through alembic's API, without an alembic.ini.

The alembic environment lives in the package (`engine/migrations`), so an installed
Phasegate (wheel, Docker image) migrates its database with `phasegate db upgrade`.

    upgrade(url)            bring the database to the newest schema (idempotent)
    current(url)            the revision the database is at (None: never migrated)
    head()                  the newest revision this code knows
"""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from engine.adapters.database import create_engine, resolve_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def make_config(url: str | None = None, connection: sa.Connection | None = None) -> Config:
    """An alembic Config for the packaged environment.

    The URL travels in `config.attributes` rather than the `sqlalchemy.url` option, which
    goes through ConfigParser interpolation and would choke on a '%' in a password.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = resolve_url(url)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at `url` (default: $PHASEGATE_DATABASE_URL or the SQLite file)
    up to `revision`. Running it again when already there does nothing."""
    command.upgrade(make_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Migrate down to `revision` ("base" drops every Phasegate table)."""
    command.downgrade(make_config(url), revision)


def stamp(url: str | None = None, revision: str = "head") -> None:
    """Record `revision` as current without running anything."""
    command.stamp(make_config(url), revision)


def head() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(make_config()).get_current_head()


def current(url: str | None = None) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_current(url: str | None = None) -> bool:
    """True when the database is at the newest revision."""
    return current(url) == head()

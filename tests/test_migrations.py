"""The alembic migrations build exactly the schema in engine/adapters/tables.py.

When one of these fails after a change to tables.py: add a migration (see
engine/migrations/README), review it, and run this file again.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pprint import pformat

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from engine.adapters import migrations, tables
from engine.adapters.database import create_engine


def _schema_diffs(url: str) -> list:
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return compare_metadata(context, tables.metadata)
    finally:
        engine.dispose()


def _table_names(url: str) -> set[str]:
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _add_user(url: str, name: str) -> None:
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                tables.user.insert().values(
                    name=name, display_name=name.title(), created_at=datetime.now(timezone.utc)
                )
            )
    finally:
        engine.dispose()


def _user_names(url: str) -> list[str]:
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(sa.select(tables.user.c.name).order_by(tables.user.c.name)))
    finally:
        engine.dispose()


def test_one_head():
    """Two branches each adding a migration must be merged (`alembic merge heads`)."""
    heads = ScriptDirectory.from_config(migrations.make_config()).get_heads()
    assert len(heads) == 1, f"several alembic heads {heads}: merge them"
    assert migrations.head() == heads[0]


def test_upgrade_head_matches_tables(empty_db_url):
    assert migrations.current(empty_db_url) is None
    migrations.upgrade(empty_db_url)
    assert migrations.current(empty_db_url) == migrations.head()
    diffs = _schema_diffs(empty_db_url)
    assert not diffs, (
        "the migrated schema differs from engine/adapters/tables.py; add a migration "
        "(see engine/migrations/README):\n" + pformat(diffs)
    )


def test_upgrade_is_idempotent(empty_db_url):
    migrations.upgrade(empty_db_url)
    _add_user(empty_db_url, "alice")
    migrations.upgrade(empty_db_url)
    migrations.upgrade(empty_db_url, "head")
    assert migrations.current(empty_db_url) == migrations.head()
    assert migrations.is_current(empty_db_url)
    assert _user_names(empty_db_url) == ["alice"]
    assert _schema_diffs(empty_db_url) == []


def test_downgrade_base_and_every_step(empty_db_url):
    # Stairway: every revision upgrades, downgrades one step and upgrades again.
    script = ScriptDirectory.from_config(migrations.make_config())
    revisions = [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]
    for revision in revisions:
        migrations.upgrade(empty_db_url, revision)
        migrations.downgrade(empty_db_url, "-1")
        migrations.upgrade(empty_db_url, revision)
        assert migrations.current(empty_db_url) == revision

    _add_user(empty_db_url, "bob")
    migrations.downgrade(empty_db_url, "base")
    assert migrations.current(empty_db_url) is None
    assert _table_names(empty_db_url) <= {"alembic_version"}

    migrations.upgrade(empty_db_url)
    assert _user_names(empty_db_url) == []
    assert _schema_diffs(empty_db_url) == []


@pytest.mark.parametrize("attempt", [1, 2])
def test_db_url_is_migrated_and_empty(db_url, attempt):
    """Run twice: the second run sees none of the first one's rows, and identities restart."""
    assert migrations.current(db_url) == migrations.head()
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            for table in tables.metadata.sorted_tables:
                assert connection.scalar(sa.select(sa.func.count()).select_from(table)) == 0, table.name
            connection.execute(tables.role.insert().values(name="clerk"))
            new_id = connection.execute(
                tables.deployment.insert()
                .values(deployed_by="admin", deployed_at=datetime.now(timezone.utc))
                .returning(tables.deployment.c.id)
            ).scalar_one()
            assert new_id == 1
    finally:
        engine.dispose()


def test_upgrade_uses_environment_url(monkeypatch, sqlite_url):
    monkeypatch.setenv("PHASEGATE_DATABASE_URL", sqlite_url)
    migrations.upgrade()
    assert migrations.current(sqlite_url) == migrations.head()

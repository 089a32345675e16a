"""Shared fixtures: throwaway databases (SQLite always, PostgreSQL when reachable).

Databases
    sqlite_url          function  fresh, empty (unmigrated) SQLite file URL
    db_url              function  migrated (alembic head), empty database URL, parametrized
                                  ["sqlite", "postgresql"]; the postgresql param carries the
                                  `postgres` marker and is skipped when PostgreSQL is down
    empty_db_url        function  like db_url but never migrated (migration tests)
    pg_admin_url        session   URL of the PostgreSQL maintenance database (skips if down)
    postgres_url        session   this session's throwaway PostgreSQL database
                                  (`phasegate_test_<random>`, dropped at the end); db_url
                                  migrates it once and empties it before every test, so
                                  never downgrade or drop tables in it: use empty_db_url
    fresh_postgres_url  function  an own empty PostgreSQL database, dropped after the test

Browsers
    chromium_executable session   path of Debian's chromium for playwright's
                                  `executable_path` (skips if chromium or playwright is
                                  missing; never run `playwright install`)

PostgreSQL is 127.0.0.1:5432 as user postgres (maintenance database `postgres`) unless
$PHASEGATE_TEST_PG_URL names another maintenance database URL, e.g.
postgresql://user:secret@db.example:5432/postgres (the user needs CREATEDB). Throwaway
databases get random names, so concurrent runs (and pytest-xdist workers) never collide.
"""
from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from engine.adapters import migrations
from engine.adapters.database import ENV_DATABASE_URL, create_engine, resolve_url

PG_URL_ENV = "PHASEGATE_TEST_PG_URL"
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHROMIUM_ENV = "PHASEGATE_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

_PG_FIXTURES = {"pg_admin_url", "postgres_url", "fresh_postgres_url"}


# --------------------------------------------------------------------------- pytest hooks


def pytest_configure(config):
    # Tests always say which database they use; a developer's (or production's) database
    # URL in the environment must never be picked up by accident.
    os.environ.pop(ENV_DATABASE_URL, None)


def pytest_collection_modifyitems(config, items):
    # Anything that touches PostgreSQL directly is `postgres`, so `-m "not postgres"` works.
    for item in items:
        if _PG_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    outcomes: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    for category, reports in terminalreporter.stats.items():
        for report in reports:
            keywords = getattr(report, "keywords", None) or {}
            nodeid = getattr(report, "nodeid", None)
            if nodeid and "postgres" in keywords and (category, nodeid) not in seen:
                seen.add((category, nodeid))
                if category:
                    outcomes[category] += 1
    counts = ", ".join(f"{n} {category}" for category, n in sorted(outcomes.items())) or "none selected"

    probe = _pg_probe()
    ran = sum(n for category, n in outcomes.items() if category not in ("skipped", "deselected"))
    if probe.ok and not ran:
        line = f"PostgreSQL reachable at {probe.display}, but no PostgreSQL tests ran ({counts})"
    elif probe.ok:
        line = (
            f"PostgreSQL tests ran against {probe.display} "
            f"(throwaway databases phasegate_test_*, dropped afterwards): {counts}"
        )
    else:
        line = f"{probe.skip_reason} ({counts}; {probe.error})"
    terminalreporter.write_sep("-", "databases")
    terminalreporter.write_line(line)


# ------------------------------------------------------------------------------ PostgreSQL


class _Probe:
    def __init__(self) -> None:
        self.admin_url = resolve_url(os.environ.get(PG_URL_ENV) or DEFAULT_PG_ADMIN_URL)
        url = make_url(self.admin_url)
        self.where = f"{url.host or 'localhost'}:{url.port or 5432}"
        self.display = f"{url.username + '@' if url.username else ''}{self.where}"
        self.skip_reason = f"PostgreSQL not reachable at {self.where} — skipped PostgreSQL tests"
        self.error: str | None = None
        try:
            engine = _admin_engine(self.admin_url)
            try:
                with engine.connect() as connection:
                    connection.exec_driver_sql("SELECT 1")
            finally:
                engine.dispose()
        except Exception as exc:  # driver missing, refused, auth, timeout: all mean "skip"
            self.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        self.ok = self.error is None


_probe: _Probe | None = None


def _pg_probe() -> _Probe:
    global _probe
    if _probe is None:
        _probe = _Probe()
    return _probe


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 5},
    )


def _database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _create_database(admin_url: str, name: str) -> str:
    engine = _admin_engine(admin_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
    finally:
        engine.dispose()
    return _database_url(admin_url, name)


def _drop_database(admin_url: str, name: str) -> None:
    engine = _admin_engine(admin_url)
    try:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        engine.dispose()


def _new_database_name() -> str:
    return f"phasegate_test_{secrets.token_hex(6)}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    probe = _pg_probe()
    if not probe.ok:
        pytest.skip(probe.skip_reason)
    return probe.admin_url


@pytest.fixture(scope="session")
def postgres_url(pg_admin_url):
    name = _new_database_name()
    url = _create_database(pg_admin_url, name)
    try:
        yield url
    finally:
        _drop_database(pg_admin_url, name)


@pytest.fixture
def fresh_postgres_url(pg_admin_url):
    name = _new_database_name()
    url = _create_database(pg_admin_url, name)
    try:
        yield url
    finally:
        _drop_database(pg_admin_url, name)


class _PgReset:
    """Empties the session database between tests and restarts its identity sequences.

    DELETE in dependency order plus ALTER SEQUENCE ... RESTART, in one round trip: about
    4 ms, where TRUNCATE ... RESTART IDENTITY takes ~50 ms (it rewrites every table file).
    """

    _END_IDLE_IN_TRANSACTION = (
        # A connection a previous test left open in a transaction would hold row locks or
        # uncommitted rows (a later insert of the same key would wait forever): end it.
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND state IN ('idle in transaction', 'idle in transaction (aborted)')"
    )
    _END_ALL_OTHERS = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url, pool_size=1, max_overflow=2)
        with self.engine.connect() as connection:
            reflected = sa.MetaData()
            reflected.reflect(connection)
            sequences = connection.exec_driver_sql(
                "SELECT quote_ident(sequence_name) FROM information_schema.sequences"
                " WHERE sequence_schema = current_schema() ORDER BY 1"
            ).scalars().all()
        statements = ["SET LOCAL lock_timeout = '5s'", self._END_IDLE_IN_TRANSACTION]
        statements += [
            f'DELETE FROM "{table.name}"'
            for table in reversed(reflected.sorted_tables)
            if table.name != "alembic_version"
        ]
        statements += [f"ALTER SEQUENCE {name} RESTART" for name in sequences]
        self.script = ";\n".join(statements)

    def __call__(self) -> None:
        try:
            self._reset()
        except sa.exc.OperationalError:
            # Still blocked (lock_timeout): something else holds locks. End every other
            # session on this (per-session, throwaway) database, then try again.
            with self.engine.begin() as connection:
                connection.exec_driver_sql(self._END_ALL_OTHERS)
            self._reset()

    def _reset(self) -> None:
        with self.engine.begin() as connection:
            connection.exec_driver_sql(self.script)

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="session")
def _pg_reset(postgres_url):
    migrations.upgrade(postgres_url)
    reset = _PgReset(postgres_url)
    yield reset
    reset.close()


# ---------------------------------------------------------------------------------- SQLite


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return _sqlite_url(tmp_path / "phasegate.sqlite")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """Migrated once per session; every db_url["sqlite"] is a copy (much cheaper than alembic)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "phasegate.sqlite"
    migrations.upgrade(_sqlite_url(path))
    return path


def _copy_sqlite(source: Path, target: Path) -> None:
    # The backup API copies a consistent snapshot, WAL included.
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


# ------------------------------------------------------------------------- both databases

_DB_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=_DB_PARAMS)
def db_url(request, tmp_path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the session's PostgreSQL database
    with every table emptied and its identity sequences restarted."""
    if request.param == "sqlite":
        path = tmp_path / "phasegate.sqlite"
        _copy_sqlite(request.getfixturevalue("_sqlite_template"), path)
        return _sqlite_url(path)
    reset: _PgReset = request.getfixturevalue("_pg_reset")
    reset()
    return reset.url


@pytest.fixture(params=_DB_PARAMS)
def empty_db_url(request, tmp_path) -> str:
    """An empty database that was never migrated: a fresh SQLite file or an own PostgreSQL
    database (slower: one CREATE DATABASE per test)."""
    if request.param == "sqlite":
        return _sqlite_url(tmp_path / "phasegate.sqlite")
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def db_engine(db_url):
    """An engine (engine.adapters.database.create_engine) on db_url, disposed afterwards."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


# -------------------------------------------------------------------------------- browsers


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        path = shutil.which("chromium") or ""
    if not path:
        pytest.skip(f"chromium not found at {os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM} — skipped browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed — skipped browser tests (pip install -e '.[test]')")
    return path

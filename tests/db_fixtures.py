"""Database fixtures: every test that takes `database_url` runs on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) and
is skipped when that is unset, unless REQUIRE_POSTGRES=1 (CI), which turns the skip into a failure.
Each PostgreSQL test gets a schema of its own, selected through the connection's search_path and dropped
afterwards. A new SQLite file starts as a copy of one migrated once per test process (`migrated_sqlite`); a new
PostgreSQL schema starts from a replay of the SQL one real migration per test process sent (`migrated_postgres`,
devkit/pg_template.py). `database_url` itself stays empty: the migration tests migrate it for real.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.auditing import AUDIT_REDACTOR
from devkit.pg_schemas import temporary_schemas
from devkit.pg_template import MigrationRecording, record_migration
from storage.audit import AuditLog
from storage.db import Database


def _postgres_base_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not url:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
        pytest.skip("TEST_DATABASE_URL is not set (PostgreSQL tests skipped)")
    return url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the newest migration, made once per test process: a harness on a new SQLite
    file starts from a copy of it instead of running every migration again (~0.05 s of CPU per test)."""
    path = tmp_path_factory.mktemp("migrated") / "template.db"
    db = Database(f"sqlite:///{path}")
    try:
        db.upgrade()
    finally:
        db.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[MigrationRecording]:
    """What one real migration of an empty PostgreSQL schema sent, recorded once per test process: a new schema
    starts from its replay (one transaction, no server-wide migration lock) instead of running every migration."""
    with temporary_schemas(_postgres_base_url(), prefix="test_recorded") as (schema,):
        yield record_migration(schema.url, schema.name)


def start_from_migrated(url: str, template: Path, request: pytest.FixtureRequest | None = None) -> None:
    """Copy `template` to `url` when it names a SQLite file that does not exist yet, or (given `request`) replay
    the recorded migration into `url` when it selects an empty PostgreSQL schema; the bot still checks the schema
    at start-up (it finds it at head). Any other database is left to the bot to migrate."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and "?" not in url:
        target = Path(url.removeprefix(prefix))
        if not target.exists():
            shutil.copyfile(template, target)
    elif url.startswith("postgresql") and request is not None:
        recording: MigrationRecording = request.getfixturevalue("migrated_postgres")
        recording.replay_into(url)


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections live in a fresh, empty schema (dropped after the test)."""
    with temporary_schemas(_postgres_base_url()) as (schema,):
        yield schema.url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
def database(database_url: str, migrated_sqlite: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    start_from_migrated(database_url, migrated_sqlite, request)
    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def audit_log(database: Database) -> AuditLog:
    return AuditLog(database, redactor=AUDIT_REDACTOR)


@pytest.fixture
def sqlite_database(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Database]:
    start_from_migrated(f"sqlite:///{tmp_path / 'bot.db'}", migrated_sqlite)
    db = Database(f"sqlite:///{tmp_path / 'bot.db'}")
    db.upgrade()
    yield db
    db.dispose()

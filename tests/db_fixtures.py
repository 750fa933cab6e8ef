"""Database fixtures: every test that takes `database_url` runs on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) and
is skipped when that is unset, unless REQUIRE_POSTGRES=1 (CI), which turns the skip into a failure.
Each PostgreSQL test gets a schema of its own, selected through the connection's search_path and dropped
afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.auditing import AUDIT_REDACTOR
from storage.audit import AuditLog
from storage.db import Database, normalize_url


def _postgres_base_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not url:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
        pytest.skip("TEST_DATABASE_URL is not set (PostgreSQL tests skipped)")
    return url


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections live in a fresh, empty schema (dropped after the test)."""
    base = normalize_url(_postgres_base_url())
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        options = base.query.get("options")
        options = f"{options} -csearch_path={schema}" if isinstance(options, str) else f"-csearch_path={schema}"
        yield base.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def audit_log(database: Database) -> AuditLog:
    return AuditLog(database, redactor=AUDIT_REDACTOR)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'bot.db'}")
    db.upgrade()
    yield db
    db.dispose()

"""A migrated PostgreSQL schema for the price of a replay: the SQL one real migration sent, sent again.

Running every Alembic migration in each test's new schema cost the Python work of Alembic and, worse, the
migrations' advisory lock, which is one for the whole server, so parallel workers migrated one after another.
A test process now migrates one schema for real, recording every statement the migration sent, and replays that
recording into each new schema in one transaction.

Rules this module keeps:
- The recording is what a real `Database.upgrade()` sent, nothing written by hand, so a new migration is in it
  without anyone touching this module. Only the migration lock is left out of the replay: a schema nobody else
  can see yet has no concurrent upgrade to wait for.
- A replay only fills a schema that is empty (no relation in it); anything else is left alone, as a SQLite file
  that already exists is (tests/db_fixtures.py `start_from_migrated`).
- Migrations name no schema (the connection's `search_path` picks it), so the recording replays into any schema;
  if one ever named the recording schema, the replay fails loudly instead of touching another schema.
  tests/unit/storage/test_pg_template.py proves a replayed schema is the same as a migrated one in everything
  pg_catalog shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from storage.db import Database, normalize_url

_MIGRATION_LOCK = "pg_advisory_xact_lock"


@dataclass(frozen=True)
class RecordedStatement:
    sql: str
    parameters: Any  # as the driver received it: a mapping, a sequence, or a list of them for executemany
    many: bool


@dataclass(frozen=True)
class MigrationRecording:
    schema: str  # the schema the recording was made in; no statement may name it
    statements: tuple[RecordedStatement, ...]

    def replay_into(self, url: str) -> bool:
        """Bring the empty schema `url` selects to the recorded migration; False (nothing done) if not empty."""
        engine = sa.create_engine(normalize_url(url))
        try:
            with engine.begin() as conn:
                if conn.exec_driver_sql(_RELATIONS_IN_CURRENT_SCHEMA).scalar_one():
                    return False
                for statement in self.statements:
                    if statement.many:
                        conn.exec_driver_sql(statement.sql, list(statement.parameters))
                    elif statement.parameters:
                        conn.exec_driver_sql(statement.sql, statement.parameters)
                    else:
                        conn.exec_driver_sql(statement.sql)
            return True
        finally:
            engine.dispose()


_RELATIONS_IN_CURRENT_SCHEMA = (
    "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema()"
)


def record_migration(url: str, schema: str) -> MigrationRecording:
    """Migrate the empty schema `schema` (selected by `url`) to head for real and return what it sent."""
    recorded: list[RecordedStatement] = []

    def record(_conn: sa.Connection, _cursor: Any, sql: str, parameters: Any, _context: Any, many: bool) -> None:
        if _MIGRATION_LOCK not in sql:
            recorded.append(RecordedStatement(sql, _frozen(parameters, many), many))

    database = Database(url)
    sa.event.listen(database.engine, "before_cursor_execute", record)
    try:
        database.upgrade()
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", record)
        database.dispose()
    naming = [s.sql for s in recorded if schema in s.sql or schema in repr(s.parameters)]
    if naming:
        raise RuntimeError(f"a migration named its schema, so it cannot be replayed elsewhere: {naming[0]!r}")
    return MigrationRecording(schema, tuple(recorded))


def _frozen(parameters: Any, many: bool) -> Any:
    # The driver may reuse the objects it was handed; keep copies.
    if many and isinstance(parameters, Sequence):
        return [dict(p) if isinstance(p, dict) else tuple(p) for p in parameters]
    if isinstance(parameters, dict):
        return dict(parameters)
    if isinstance(parameters, Sequence) and not isinstance(parameters, str):
        return tuple(parameters)
    return parameters

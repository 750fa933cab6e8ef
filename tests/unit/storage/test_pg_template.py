"""A PostgreSQL schema made by replaying the recorded migration (devkit/pg_template.py) is the schema a real
migration makes, in everything pg_catalog shows: tables, columns, types, defaults, indexes, constraints,
sequences and where they stand, statistics objects, triggers, functions, views, comments and every row."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from devkit.pg_schemas import temporary_schemas
from devkit.pg_template import MigrationRecording
from storage.db import Database, normalize_url
from tests.db_fixtures import _postgres_base_url

pytestmark = pytest.mark.postgres

# Each query reads the schema the connection's search_path selects; names of that schema are masked after.
CATALOG_QUERIES = {
    "tables": "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = current_schema()",
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, udt_name, character_maximum_length,
               numeric_precision, numeric_scale, datetime_precision, is_nullable, column_default, is_identity,
               identity_generation, is_generated, generation_expression, collation_name
        FROM information_schema.columns WHERE table_schema = current_schema()""",
    "column_storage": """
        SELECT c.relname, a.attname, a.attnum, a.atttypmod, a.attstorage, a.attcompression, a.attnotnull,
               a.attstattarget::text
        FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped""",
    "relations": """
        SELECT relname, relkind, relpersistence, reloptions::text, relhasindex, relrowsecurity, relispartition
        FROM pg_catalog.pg_class WHERE relnamespace = current_schema()::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_catalog.pg_indexes WHERE schemaname = current_schema()",
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, condeferrable, condeferred, convalidated,
               pg_catalog.pg_get_constraintdef(oid)
        FROM pg_catalog.pg_constraint WHERE connamespace = current_schema()::regnamespace""",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by, cycle, cache_size,
               last_value
        FROM pg_catalog.pg_sequences WHERE schemaname = current_schema()""",
    "sequence_owners": """
        SELECT s.relname, t.relname, a.attname, d.deptype
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
        JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE s.relnamespace = current_schema()::regnamespace""",
    "statistics": """
        SELECT stxname, pg_catalog.pg_get_statisticsobjdef(oid), stxstattarget::text, stxkind::text
        FROM pg_catalog.pg_statistic_ext WHERE stxnamespace = current_schema()::regnamespace""",
    "triggers": """
        SELECT t.tgname, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal""",
    "functions": """
        SELECT proname, pg_catalog.pg_get_functiondef(oid)
        FROM pg_catalog.pg_proc WHERE pronamespace = current_schema()::regnamespace""",
    "views": "SELECT viewname, definition FROM pg_catalog.pg_views WHERE schemaname = current_schema()",
    "types": """
        SELECT typname, typtype, pg_catalog.format_type(oid, NULL)
        FROM pg_catalog.pg_type WHERE typnamespace = current_schema()::regnamespace""",
    "comments": """
        SELECT c.relname, d.objsubid, d.description
        FROM pg_catalog.pg_description d JOIN pg_catalog.pg_class c ON c.oid = d.objoid
        WHERE c.relnamespace = current_schema()::regnamespace""",
}


def catalog_of(url: str, schema: str) -> dict[str, Any]:
    """What pg_catalog shows of the schema `url` selects, sorted, with its own name masked; plus every row."""
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_schema()").scalar_one() == schema
            seen: dict[str, Any] = {
                name: sorted(tuple(_masked(v, schema) for v in row) for row in conn.exec_driver_sql(query))
                for name, query in CATALOG_QUERIES.items()
            }
            for table, kind in seen["tables"]:
                if kind == "BASE TABLE":
                    rows = conn.exec_driver_sql(f'SELECT * FROM "{table}"').all()
                    seen[f"rows of {table}"] = sorted(tuple(map(repr, row)) for row in rows)
            return seen
    finally:
        engine.dispose()


def _masked(value: object, schema: str) -> object:
    return value.replace(schema, "<schema>") if isinstance(value, str) else value


def test_a_replayed_schema_is_the_schema_a_real_migration_makes(migrated_postgres: MigrationRecording) -> None:
    with temporary_schemas(_postgres_base_url(), count=2, prefix="test_compare") as (migrated, replayed):
        database = Database(migrated.url)
        try:
            database.upgrade()
        finally:
            database.dispose()
        assert migrated_postgres.replay_into(replayed.url)

        expected = catalog_of(migrated.url, migrated.name)
        actual = catalog_of(replayed.url, replayed.name)

    # The comparison has something to compare: the bot's tables, their keys and indexes, the migration's row.
    assert ("audit_events", "BASE TABLE") in expected["tables"]
    assert ("alembic_version", "BASE TABLE") in expected["tables"]
    assert expected["constraints"] and expected["indexes"] and expected["statistics"]
    assert expected["rows of alembic_version"]
    assert sorted(actual) == sorted(expected)
    for part in expected:
        assert actual[part] == expected[part], part


def test_the_comparison_sees_a_difference(migrated_postgres: MigrationRecording) -> None:
    with temporary_schemas(_postgres_base_url(), count=2, prefix="test_compare") as (first, second):
        assert migrated_postgres.replay_into(first.url)
        assert migrated_postgres.replay_into(second.url)
        assert catalog_of(first.url, first.name) == catalog_of(second.url, second.name)
        engine = sa.create_engine(normalize_url(second.url))
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE audit_events ALTER COLUMN action SET DEFAULT 'x'")
        finally:
            engine.dispose()
        assert catalog_of(first.url, first.name)["columns"] != catalog_of(second.url, second.name)["columns"]


def test_a_schema_that_is_not_empty_is_left_alone(migrated_postgres: MigrationRecording) -> None:
    with temporary_schemas(_postgres_base_url(), prefix="test_compare") as (schema,):
        engine = sa.create_engine(normalize_url(schema.url))
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE someone_elses (id integer)")
            assert not migrated_postgres.replay_into(schema.url)
            with engine.connect() as conn:
                tables = conn.exec_driver_sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                ).scalars()
                assert list(tables) == ["someone_elses"]
        finally:
            engine.dispose()


def test_the_database_fixture_starts_at_head_on_postgres(database_url: str, database: Database) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the replay is for PostgreSQL; SQLite starts from a copied file")
    assert database.current_revision() == database.head_revision()

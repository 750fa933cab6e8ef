"""Throwaway PostgreSQL schemas for tests and benchmarks.

Rules this module keeps:
- Each schema is new and empty, named `<prefix>_<random hex>`, so parallel runs (xdist workers, engineers sharing
  one server) never meet; it is dropped with everything in it when the block ends, even after an error.
- The URLs it hands out select the schema through the connection's `search_path` option, added to any options
  the base URL already has, so the code under test needs no schema name of its own.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from storage.db import normalize_url


@dataclass(frozen=True)
class Schema:
    name: str
    url: str  # a database URL whose connections live in this schema


@contextlib.contextmanager
def temporary_schemas(base_url: str, count: int = 1, prefix: str = "test") -> Iterator[list[Schema]]:
    base = normalize_url(base_url)
    names = [f"{prefix}_{uuid.uuid4().hex[:16]}" for _ in range(count)]
    options = base.query.get("options")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        yield [Schema(name, _in_schema(base, options, name)) for name in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


def _in_schema(base: sa.URL, options: object, name: str) -> str:
    search_path = f"-csearch_path={name}"
    merged = f"{options} {search_path}" if isinstance(options, str) and options else search_path
    return base.update_query_dict({"options": merged}).render_as_string(hide_password=False)

"""Every filter combination `/snapshot audit` accepts is an index seek, on SQLite and on PostgreSQL (issue 19 §1).

The statements `AuditLog.query` really sends are captured and handed to each planner over a table big enough
for it to choose as it would in production.

- SQLite (no ANALYZE statistics, as the bot leaves it) plans by rule, so its EXPLAIN QUERY PLAN is checked
  for shape: no SCAN of the table, every SEARCH on a filter column, no sort of a table read.
- PostgreSQL plans by cost (the table is ANALYZEd), and for a handful of matches a bitmap read and a sort is
  its right choice, so its plans are run (EXPLAIN ANALYZE) and judged by the rows each read of the table
  touched: never a sequential scan, never a tenth of the table. This is the weaker check: where the
  planner's estimates for a combination of common values are off, it may read a few thousand rows; the
  benchmark at 1,000,000 events holds every combination to its p99 on both databases.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bench.audit_scale import YearClock, make_entries, plain_rows
from devkit.pg_schemas import temporary_schemas
from storage.audit import AuditEntry, AuditLog, events
from storage.db import Database
from tests.db_fixtures import _postgres_base_url

ROWS = 40_000
USERS, SERVERS = 20, 20  # 2,000 rows each: a whole history stands out from a 21-row page
USER = "U0USER007"
SERVER = 10_010
# Common, rare, a prefix of many names, and a prefix of none: the shapes an admin types.
ACTIONS = ("list", "refused.permission", "restore", "create", "create.timeout", "nothing")
# One xdist worker runs the whole module, so the filled database (the module fixture) is built once per backend.
pytestmark = pytest.mark.xdist_group("audit_plans")


@contextlib.contextmanager
def filled_database(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    prefix: str,
    rows: int,
    batch: Callable[[int], list[AuditEntry]],
) -> Iterator[Database]:
    """A migrated database on `backend` whose audit table holds `rows` rows, `batch(start)` giving 5,000 at a time
    (shaped as the benchmark's), analysed on PostgreSQL so the planner sees them as the tests mean it to."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'bot.db'}"
        else:
            (schema,) = stack.enter_context(temporary_schemas(_postgres_base_url(), prefix=prefix))
            url = schema.url
        db = Database(url)
        stack.callback(db.dispose)
        db.upgrade()
        clock = YearClock(rows)
        filling = [row for start in range(0, rows, 5000) for row in plain_rows(batch(start), clock)]
        with db.begin() as conn:
            insert_all_at_once(conn, filling)
            if db.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE audit_events")
        yield db


def insert_all_at_once(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (in order, ids rising with them) as one INSERT ... SELECT over a JSON array the database
    unpacks itself: the same rows as one insert per row, without the per-row cost of the driver (10 s of setup
    per module under load). Times are stored as the column's own type would bind them."""
    columns = list(rows[0])
    to_stored_time = events.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    document = json.dumps(
        [
            {**row, "created_at": to_stored_time(row["created_at"]) if to_stored_time else row["created_at"]}
            for row in rows
        ],
        default=lambda value: value.isoformat(),
    )
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        result = conn.exec_driver_sql(
            f"INSERT INTO audit_events ({names}) SELECT {names} FROM json_populate_recordset("
            "NULL::audit_events, CAST(%(document)s AS json)) WITH ORDINALITY AS r ORDER BY ordinality",
            {"document": document},
        )
    else:
        picked = ", ".join(f"json_extract(value, '$.{name}')" for name in columns)
        result = conn.exec_driver_sql(
            f"INSERT INTO audit_events ({names}) SELECT {picked} FROM json_each(?) ORDER BY key", (document,)
        )
    assert result.rowcount == len(rows)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with filled_database(
        request.param,
        tmp_path_factory,
        "test_plans",
        ROWS,
        lambda start: list(make_entries(5000, start, USERS, SERVERS)),
    ) as db:
        yield db


def captured_selects(db: Database, call: Any) -> list[tuple[str, Any]]:
    """The SELECT statements (with parameters) the database received while `call()` ran."""
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", grab)
    return seen


# ---- SQLite: EXPLAIN QUERY PLAN rows (id, parent, _, detail) ----------------------------------------------
_TABLE = re.compile(r"^(SCAN|SEARCH) (audit_events|e)\b")
_FILTER_COLUMN = re.compile(r"\((actor_id|server_id|snapshot_id|action)[=>]")


def sqlite_problems(rows: list[tuple[int, int, int, str]], filtered: bool) -> list[str]:
    problems = []
    table_parents = {parent for _, parent, _, detail in rows if _TABLE.match(detail)}
    for _, parent, _, detail in rows:
        if _TABLE.match(detail):
            if detail.startswith("SCAN") and filtered:
                problems.append(f"scans the table: {detail}")
            elif filtered and "ix_audit_action" not in detail and not _FILTER_COLUMN.search(detail):
                problems.append(f"seeks on no filter column: {detail}")  # e.g. the primary key, filtered
        if "TEMP B-TREE" in detail and parent in table_parents:
            problems.append(f"sorts every matching row: {detail}")
    return problems


# ---- PostgreSQL: EXPLAIN (ANALYZE, FORMAT JSON) tree ----------------------------------------------------------
# PostgreSQL plans by cost: for values its statistics call common it may walk the primary key newest-first and
# filter (about 21 ÷ selectivity rows), or AND two bitmaps, instead of seeking the composite index. Those
# reads stay a fraction of the table; a scan does not. (The 1,000,000-event benchmark times every combination.)
TOUCHED_ROWS_BOUND = ROWS // 10


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def postgres_problems(plan: dict[str, Any], filtered: bool) -> list[str]:
    problems = []
    for node in _nodes(plan):
        on_table = node.get("Relation Name") == "audit_events" or node["Node Type"] == "Bitmap Index Scan"
        if not on_table:
            continue
        kind = node["Node Type"]
        condition = node.get("Index Cond") or node.get("Recheck Cond") or ""
        shown = f"{kind} using {node.get('Index Name')}: {condition} / filter {node.get('Filter')}"
        touched = sum(
            node.get(key, 0) for key in ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck")
        )
        if kind == "Seq Scan":
            problems.append(f"scans the table: {shown}")
        elif touched > TOUCHED_ROWS_BOUND:
            problems.append(f"touches {touched} rows for one page: {shown}")
    return problems


def plan_problems(db: Database, statements: list[tuple[str, Any]], filtered: bool) -> list[str]:
    problems = []
    with db.engine.connect() as conn:
        for statement, parameters in statements:
            if db.engine.dialect.name == "sqlite":
                rows = [tuple(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
                found = sqlite_problems(rows, filtered)  # type: ignore[arg-type]
            else:
                explain = "EXPLAIN (ANALYZE, FORMAT JSON) "
                text = conn.exec_driver_sql(explain + statement, parameters).scalar_one()
                found = postgres_problems((json.loads(text) if isinstance(text, str) else text)[0]["Plan"], filtered)
            problems += [f"{problem}\n    in: {' '.join(statement.split())[:300]}" for problem in found]
    return problems


def combinations() -> Iterator[dict[str, Any]]:
    """Every subset of the filters `/snapshot audit` takes, each action shape, with and without paging."""
    keys = ("server_id", "snapshot_id", "actor_id", "action")
    for size in range(len(keys) + 1):
        for chosen in itertools.combinations(keys, size):
            for action in ACTIONS if "action" in chosen else (None,):
                for before_id in (None, ROWS // 2):
                    yield {
                        "server_id": SERVER if "server_id" in chosen else None,
                        "snapshot_id": 500_000 + 123 if "snapshot_id" in chosen else None,
                        "actor_id": USER if "actor_id" in chosen else None,
                        "action": action,
                        "before_id": before_id,
                    }


def test_every_audit_filter_combination_is_an_index_seek(filled: Database) -> None:
    log = AuditLog(filled)
    failures = []
    checked = 0
    for filters in combinations():
        statements = captured_selects(filled, functools.partial(log.query, limit=21, **filters))
        filtered = any(filters[key] is not None for key in ("server_id", "snapshot_id", "actor_id", "action"))
        shown = {key: value for key, value in filters.items() if value is not None}
        failures += [f"{shown}: {problem}" for problem in plan_problems(filled, statements, filtered)]
        checked += len(statements)
    assert checked >= 64
    assert not failures, "\n".join(failures)


def test_rate_limit_count_is_an_index_seek(filled: Database) -> None:
    from datetime import UTC, datetime, timedelta

    log = AuditLog(filled)
    since = datetime.now(UTC) - timedelta(hours=1)
    statements = captured_selects(
        filled, lambda: log.count_actions(USER, ["create.requested", "delete.requested"], since)
    )
    assert statements
    assert plan_problems(filled, statements, filtered=True) == []


def test_the_checker_catches_the_old_prefix_filter(filled: Database) -> None:
    """The query `/snapshot audit action:` used to send (`= X OR LIKE 'X.%'`) fails the check on both databases."""
    column = events.c.action
    old = (
        sa.select(events.c.id)
        .where(sa.or_(column == "create.timeout", column.startswith("create.timeout.", autoescape=True)))
        .order_by(events.c.id.desc())
        .limit(21)
    )
    compiled = old.compile(filled.engine)
    parameters: Any = compiled.params
    if filled.engine.dialect.name == "sqlite":
        parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
    assert plan_problems(filled, [(str(compiled), parameters)], filtered=True)


def test_the_one_statement_fill_stores_what_row_by_row_inserts_store(database: Database) -> None:
    rows = plain_rows(list(make_entries(300, 7, USERS, SERVERS)), YearClock(300))
    with database.begin() as conn:
        conn.execute(sa.insert(events), rows)
        insert_all_at_once(conn, rows)
        # As the driver returns them, so a time stored in another text form would differ too.
        stored = conn.exec_driver_sql(f"SELECT {', '.join(rows[0])} FROM audit_events ORDER BY id").all()
    by_row, at_once = stored[:300], stored[300:]
    assert at_once == by_row
    assert len({row.created_at for row in at_once}) == 300  # every time kept, to the microsecond
    assert {row.server_id for row in at_once} > {None} and {row.snapshot_id for row in at_once} > {None}

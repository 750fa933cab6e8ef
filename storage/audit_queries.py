"""Reading the audit trail: the query plans behind `AuditLog.query` and the spreadsheet-safe CSV cells of the export.

Rules this module keeps:
- Every combination of query filters is an index seek, never a scan: equality on the filter columns, then the
  index's trailing `id` read backwards; an action prefix becomes one seek per matching stored action name.
- An `action:` filter matches a name exactly or as a prefix at a dot (`action_matches`), applied in Python
  whatever the column's collation.
- No CSV cell is a spreadsheet formula (`spreadsheet_safe`), and the rule reverses exactly.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage.audit_rows import _SELECT_COLUMNS, events

MAX_QUERY_LIMIT = 1000


# ---- CSV export ----------------------------------------------------------------------------------------
# OWASP's CSV injection guidance: a cell starting with one of these is a formula to Excel, LibreOffice and
# Google Sheets (`=HYPERLINK(…)` in a Slack display name would run when an auditor opens the export).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that no spreadsheet evaluates: text starting with `= + - @`, tab or CR gets a leading `'`.

    Text already starting with `'` gets one too, so the rule reverses exactly: a cell that starts with `'` had
    one added; drop it to get the stored value. Numbers (ids) are written as they are; None is empty.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith((*_FORMULA_STARTS, "'")):
        return "'" + value
    return value


def action_matches(action_filter: str, name: str) -> bool:
    """`create.requested` matches itself; `create` matches itself and every `create.*` action."""
    return name == action_filter or name.startswith(action_filter + ".")


# Every distinct action in the table, one index seek on ix_audit_action per name (a "skip scan"): a few dozen
# seeks, however many rows there are. Walking the index in its own order finds every name whatever the
# column's collation, so the prefix rule is applied afterwards, in Python, exactly as `action_matches` says.
_DISTINCT_ACTIONS = sa.text(
    """
    WITH RECURSIVE names(name) AS (
        SELECT CAST((SELECT min(action) FROM audit_events) AS TEXT)
        UNION ALL
        SELECT CAST((SELECT min(e.action) FROM audit_events e WHERE e.action > names.name) AS TEXT)
        FROM names WHERE names.name IS NOT NULL
    )
    SELECT name FROM names WHERE name IS NOT NULL
    """
)


def _matching_actions(conn: Connection, action_filter: str) -> list[str]:
    """The stored action names an `action:` filter selects."""
    return [name for name in conn.execute(_DISTINCT_ACTIONS).scalars() if action_matches(action_filter, name)]


@functools.lru_cache(maxsize=512)
def _page_statement(filters: tuple[str, ...], action_arms: int) -> sa.Select[Any]:
    """The query for one combination of filters and number of action names, built once (SQLAlchemy takes
    longer to build a union of subqueries than the database takes to run it); values are bound parameters:
    each filter column by its name, `before_id`, `limit`, and `action_0` … for the action names."""
    limit = sa.bindparam("limit", type_=sa.Integer)
    conditions = [
        events.c.id < sa.bindparam("before_id") if name == "before_id" else events.c[name] == sa.bindparam(name)
        for name in filters
    ]

    def newest(where: list[sa.ColumnElement[bool]]) -> sa.Select[Any]:
        return sa.select(*_SELECT_COLUMNS).where(*where).order_by(events.c.id.desc()).limit(limit)

    if action_arms == 0:
        return newest(conditions)
    arms = [newest([*conditions, events.c.action == sa.bindparam(f"action_{n}")]) for n in range(action_arms)]
    if action_arms == 1:
        return arms[0]
    merged = sa.union_all(*(sa.select(arm.subquery()) for arm in arms)).subquery()
    return sa.select(*merged.c).order_by(merged.c.id.desc()).limit(limit)

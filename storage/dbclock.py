"""The database's clock, as SQL: deadlines shared by several replicas are computed and compared by the database.

Rules this module keeps:
- A deadline (a claim's expiry) is written as `now() + ttl` and compared with `now()` inside the same SQL
  statement that acts on it, so no replica's own clock (skewed, stepped by NTP, paused with its VM) decides
  whether a claim is still held.
- PostgreSQL: `clock_timestamp()` (timestamptz). SQLite has no timestamp type: SQLAlchemy stores `DateTime` as
  text `YYYY-MM-DD HH:MM:SS.ffffff` (UTC, see storage.db), so the expression produces exactly that form
  (`strftime('%f')` gives milliseconds; three zeros pad it to microseconds) and text order is time order.
- `offset` shifts the clock for tests ("an hour later, as the database sees it"); it is zero in production.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%f"


class DbClock:
    def __init__(self, engine: Engine, offset: timedelta = timedelta(0)) -> None:
        self.dialect = engine.dialect.name
        self.offset = offset

    def now(self, plus: timedelta = timedelta(0)) -> sa.ColumnElement[datetime]:
        """SQL for the database's current time plus `plus` (and the test offset), comparable with DateTime columns."""
        seconds = (plus + self.offset).total_seconds()
        if self.dialect == "postgresql":
            return sa.type_coerce(
                sa.func.clock_timestamp() + sa.bindparam(None, timedelta(seconds=seconds), type_=sa.Interval()),
                sa.DateTime(timezone=True),
            )
        text = sa.func.strftime(_SQLITE_FORMAT, "now", f"{seconds:+.6f} seconds").concat("000")
        return sa.type_coerce(text, sa.DateTime(timezone=True))

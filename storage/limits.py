"""Counting what a user started, for the per-user rate limit, from the audit table.

The rule this module keeps: `count_started(..., lock=True)` is called inside the transaction that then writes the
row it counts, and it serialises every such transaction of the same user, so "count, then record" is one atomic
step across threads, processes and replicas:
- PostgreSQL: a transaction-scoped advisory lock keyed by the user id (released at commit or rollback);
- SQLite: the transaction already holds the database's write lock (every write transaction starts with
  BEGIN IMMEDIATE, see storage.db), so writers cannot interleave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import as_utc
from storage.models import AuditEvent

events = AuditEvent.__table__
_LOCK_NAMESPACE = b"snapshot-bot:rate-limit:"


def actor_lock_key(actor_id: str) -> int:
    """A stable signed 64-bit advisory-lock key for one user (same on every replica)."""
    digest = hashlib.sha256(_LOCK_NAMESPACE + actor_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def count_started(
    bind: Session | Connection,
    actor_id: str,
    actions: Iterable[str],
    since: datetime,
    *,
    lock: bool,
    once_per_request: Iterable[str] = (),
) -> int:
    """How many of `actions` `actor_id` started at or after `since`.

    `once_per_request`: actions that count only when they carry no request id (a delete carried out after its
    approval was already counted when it was asked for). With `lock`, first take the user's lock for the rest of
    the caller's transaction (see the module docstring).
    """
    names = sorted({str(action) for action in actions})
    if not names:
        return 0
    conn = bind.connection() if isinstance(bind, Session) else bind
    if lock and conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": actor_lock_key(actor_id)})
    stmt = (
        sa.select(sa.func.count())
        .select_from(events)
        .where(events.c.actor_id == actor_id)
        .where(events.c.action.in_(names))
        .where(events.c.created_at >= as_utc(since))
    )
    repeated = sorted({str(action) for action in once_per_request})
    if repeated:
        stmt = stmt.where(sa.or_(events.c.action.not_in(repeated), events.c.request_id.is_(None)))
    return int(conn.execute(stmt).scalar_one())

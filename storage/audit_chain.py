"""The append machinery of the audit hash chain: the chain head lock, id allocation, linking rows, checking the end.

`chain_rows` seals rows as they are written: SQLite's appends (one writer at a time) take this path. PostgreSQL's
appends are written unsealed and chained by the sealer (storage.audit_seal), which uses `lock_head` too.

Rules this module keeps:
- Appends serialise on the single `audit_chain_head` row (SELECT … FOR UPDATE on PostgreSQL; on SQLite the
  BEGIN IMMEDIATE write transaction does it), and ids, timestamps and hashes are assigned inside that lock, so
  id order is chain order and timestamps never go backwards along it.
- Ids come from the table's sequence on PostgreSQL (moved past any explicit ids), after the highest rowid on SQLite.
- A missing head row with events in the table is evidence of tampering: appends stop (`ChainHeadMissing`), and
  the head is never rebuilt from whatever the table ends with now.
- Nothing here updates or deletes an audit row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from storage.audit_rows import AuditEntry, chain_head, events, row_digest
from storage.db import as_utc

GENESIS_HASH = "0" * 64
HEAD_ID = 1


def _batches(items: Iterable[AuditEntry], size: int) -> Iterator[list[AuditEntry]]:
    batch: list[AuditEntry] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _head_mismatch(head: Any, last_id: int, last_hash: str) -> tuple[int, str] | None:
    """The rows agree among themselves; do they end where the chain head says the chain ends?

    This is what catches the newest rows being deleted, which leaves no gap for the row-by-row walk to see.
    """
    if head is None:  # the migration creates it and nothing deletes it: gone means someone removed it
        return (
            last_id + 1,
            "the audit_chain_head row is missing (deleted?): the newest events may have been cut off unnoticed",
        )
    head_id, head_hash = int(head[0]), str(head[1])
    if head_id > last_id:
        return (
            last_id + 1,
            f"row {last_id + 1}: missing; the chain head records row {head_id} as the last event but "
            f"the table ends at row {last_id} (deleted?)",
        )
    if head_id < last_id:
        return (
            head_id + 1,
            f"row {head_id + 1}: not recorded in the chain head, which ends at row {head_id} "
            "(inserted behind the application's back?)",
        )
    if head_hash != last_hash:
        return last_id, f"row {last_id}: hash does not match the chain head (edited?)"
    return None


_PG_SEQUENCE = "pg_get_serial_sequence('audit_events', 'id')"


def _allocate_ids(conn: Connection, last_id: int, count: int) -> list[int]:
    """Ids for `count` new rows, all above every existing row. Called with the chain head locked.

    On PostgreSQL they come from the table's sequence (so an INSERT relying on it elsewhere cannot collide),
    on SQLite they follow the highest rowid, which is what SQLite itself would pick.
    """
    floor = max(last_id, conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0)
    if conn.dialect.name != "postgresql":
        return list(range(floor + 1, floor + 1 + count))
    take = sa.text(f"SELECT nextval({_PG_SEQUENCE}) FROM generate_series(1, :n)")
    ids = sorted(conn.execute(take, {"n": count}).scalars())
    if ids[0] <= floor:  # the sequence is behind rows written with explicit ids: move it past them
        conn.execute(sa.text(f"SELECT setval({_PG_SEQUENCE}, :floor)"), {"floor": floor})
        ids = sorted(conn.execute(take, {"n": count}).scalars())
    return ids


class ChainHeadMissing(RuntimeError):
    """The chain head row is gone while events exist: appending would hide a cut tail, so appends stop."""


def lock_head(conn: Connection) -> tuple[int, str]:
    """Lock the chain head row and return (last id, last hash); recreated only while there are no events."""
    locked = sa.select(chain_head.c.last_id, chain_head.c.last_hash).where(chain_head.c.id == HEAD_ID)
    head = conn.execute(locked.with_for_update()).first()
    if head is None:
        # The migration creates the row. Gone with events in the table, it is evidence (deleting it and the
        # newest rows cuts the tail unnoticed): never rebuild it from whatever the table ends with now.
        last = conn.execute(sa.select(events.c.id, events.c.hash).order_by(events.c.id.desc()).limit(1)).first()
        if last is not None:
            raise ChainHeadMissing(
                "the audit_chain_head row is missing: refusing to append (run `python -m bot audit verify`, "
                "then `python -m bot audit reanchor` once the trail is accounted for)"
            )
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            insert(chain_head)
            .values(id=HEAD_ID, last_id=0, last_hash=GENESIS_HASH)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        head = conn.execute(locked.with_for_update()).one()
    return int(head[0]), str(head[1])


def chain_rows(conn: Connection, rows: Sequence[dict[str, Any]], clock: Callable[[], datetime]) -> None:
    """Give `rows` ids, timestamps and hashes after the current head, insert them and move the head."""
    last_id, last_hash = lock_head(conn)
    for row, row_id in zip(rows, _allocate_ids(conn, last_id, len(rows)), strict=True):
        last_id = row["id"] = row_id
        # Read inside the lock, so timestamps never go backwards along the chain (a clock permitting).
        row["created_at"] = as_utc(clock())
        row["prev_hash"] = last_hash
        row["hash"] = last_hash = row_digest(row)
    conn.execute(sa.insert(events), list(rows))
    conn.execute(sa.update(chain_head).where(chain_head.c.id == HEAD_ID).values(last_id=last_id, last_hash=last_hash))

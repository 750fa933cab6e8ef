"""The tamper-evident audit trail: every action the bot takes or refuses, in one append-only hash chain.

Each row stores `prev_hash` (the previous row's `hash`, 64 zeros for the first row) and `hash`, the SHA-256 of
a canonical serialisation of all its other columns (`row_digest`). Editing, deleting or reordering rows
breaks the chain, and `AuditLog.verify` names the first row that no longer fits.

On PostgreSQL an append commits its row unsealed (seal columns empty) without waiting for other writers, and
one sealer chains committed rows in id order moments later (storage.audit_seal); on SQLite the BEGIN IMMEDIATE
write transaction serialises appends and each is sealed as it is written (storage.audit_chain). Either way id
order is chain order, with many threads and processes appending at once. A missing head row with events in the
table is treated as tampering: appends stop (`ChainHeadMissing`) and verify fails, until an operator re-anchors
the head.
Nothing here ever deletes an audit row or changes what one says (the sealer fills in an unsealed row's seal
once). Signed checkpoints of the chain live in storage.checkpoints.
Every text is made valid UTF-8 before it is hashed or stored (a lone surrogate from a Slack payload or a VPS.org
answer becomes U+FFFD), so no value can make a row impossible to write.
The idea is split by module, all re-exported here so `from storage.audit import …` keeps working:
storage.audit_actions (the Action/Outcome vocabulary), storage.audit_rows (entry/record types, canonical form,
digest, redaction), storage.audit_chain (the append machinery and chain-head checks), storage.audit_queries
(query plans, CSV safety). This module keeps `AuditLog`, the one entry point, and `verify`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.encoder import encode_basestring as _encode_json_string  # what json.dumps(ensure_ascii=False) uses
from typing import Any, Literal, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.audit_actions import APPROVAL_ACTIONS, Action, Outcome
from storage.audit_chain import (
    GENESIS_HASH,
    HEAD_ID,
    ChainHeadMissing,
    _batches,
    _head_mismatch,
    chain_rows,
    lock_head,
)
from storage.audit_queries import MAX_QUERY_LIMIT, _matching_actions, _page_statement, action_matches, spreadsheet_safe
from storage.audit_rows import (
    _SELECT_COLUMNS,
    EXPORT_COLUMNS,
    NO_REDACTION,
    AuditEntry,
    AuditRecord,
    Redactor,
    _prepare,
    _record,
    canonical_row,
    chain_head,
    events,
    iso_timestamp,
    row_digest,
    valid_utf8,
)
from storage.audit_seal import (
    UNSEALED,
    Sealer,
    defers_sealing,
    hold_appends,
    insert_unsealed,
    seal_pending,
    unsealed_note,
    unsealed_problem,
)
from storage.db import Database, as_utc, utcnow
from storage.limits import count_started

__all__ = [
    "APPROVAL_ACTIONS",
    "EXPORT_COLUMNS",
    "GENESIS_HASH",
    "HEAD_ID",
    "MAX_QUERY_LIMIT",
    "NO_REDACTION",
    "UNSEALED",
    "Action",
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "ChainHeadMissing",
    "Outcome",
    "Redactor",
    "VerifyResult",
    "action_matches",
    "canonical_row",
    "chain_head",
    "events",
    "iso_timestamp",
    "row_digest",
    "spreadsheet_safe",
    "valid_utf8",
]


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int  # rows checked and found intact
    first_bad_id: int | None
    reason: str


class AuditLog:
    def __init__(
        self, db: Database, clock: Callable[[], datetime] = utcnow, *, redactor: Redactor = NO_REDACTION
    ) -> None:
        self.db = db
        self.clock = clock
        self.redactor = redactor  # the bot passes its own (bot.redaction); see `Redactor`
        self._sealer = Sealer(db)

    # ---- writing ---------------------------------------------------------------------------------------
    def append(self, entry: AuditEntry, *, session: Session | None = None) -> AuditRecord:
        """Append one event.

        Without `session` the row is committed before this returns (an intent row must be durable before the
        action it announces starts). With `session` it joins the caller's transaction, so a state change and
        its audit row commit or roll back together; the caller commits.
        """
        row = _prepare(entry, self.redactor)
        if session is not None:
            self._chain(session.connection(), [row])
        else:
            with self.db.begin() as conn:
                self._chain(conn, [row])
        if row["hash"] == UNSEALED:
            self._sealer.request()  # for a caller's session it seals once that commits (the barrier waits)
        return _record(tuple(row[name] for name in EXPORT_COLUMNS))

    def append_many(self, entries: Iterable[AuditEntry], batch_size: int = 1000) -> int:
        """Append many events, chained like single appends; one transaction per batch. Returns the count."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        written = 0
        for batch in _batches(entries, batch_size):
            rows = [
                _prepare(entry, self.redactor) for entry in batch
            ]  # outside the lock: redaction and JSON take the time
            with self.db.begin() as conn:
                self._chain(conn, rows)
            written += len(rows)
            seal_pending(self.db, wait=True)  # chained like single appends, before this returns
        return written

    def seal(self) -> int:
        """Chain every committed unsealed row now, waiting for a sealer at work elsewhere; returns how many.

        On PostgreSQL appends are sealed moments after they commit (storage.audit_seal); this is for whoever
        needs the chain to reach the newest row now: shutdown's checkpoint, a benchmark, a test."""
        return seal_pending(self.db, wait=True) or 0

    def _lock_head(self, conn: Connection) -> tuple[int, str]:
        """Lock the chain head row and return (last id, last hash); see `storage.audit_chain.lock_head`."""
        return lock_head(conn)

    def _chain(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert `rows`: on PostgreSQL unsealed, without waiting for other writers (the sealer chains them
        moments later); on SQLite chained at once, after the current head."""
        if defers_sealing(conn):
            now = as_utc(self.clock())
            for row in rows:
                row["created_at"] = now
            insert_unsealed(conn, rows)
        else:
            chain_rows(conn, rows, self.clock)

    # ---- reading ---------------------------------------------------------------------------------------
    def query(
        self,
        *,
        server_id: int | None = None,
        snapshot_id: int | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        limit: int = 20,
        before_id: int | None = None,
    ) -> list[AuditRecord]:
        """Newest first. `action` matches exactly or as a prefix at a dot; `before_id` pages to older rows.

        Every combination of filters is an index seek, not a scan of the table or of one person's or
        server's whole history: equality on the filter columns, then the index's trailing `id` read backwards
        until the page is full (see the indexes on AuditEvent; tests/unit/storage/test_audit_plans.py checks the plans).
        An action prefix cannot be one such range (`create` and `create.*` are not adjacent in every
        collation, and `OR`/`LIKE` defeat the planners), so it becomes one seek per matching action name,
        each newest-first with the limit, merged.
        """
        limit = max(0, min(limit, MAX_QUERY_LIMIT))
        if limit == 0:
            return []
        given = {"server_id": server_id, "snapshot_id": snapshot_id, "actor_id": actor_id, "before_id": before_id}
        values: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
        values["limit"] = limit
        with self.db.begin(readonly=True) as conn:
            names = _matching_actions(conn, action) if action else []
            if action and not names:
                return []
            values.update({f"action_{n}": name for n, name in enumerate(names)})
            stmt = _page_statement(tuple(name for name in given if name in values), len(names))
            return [_record(row) for row in conn.execute(stmt, values)]

    def export(
        self,
        out: TextIO,
        fmt: Literal["jsonl", "csv"],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor_id: str | None = None,
        server_id: int | None = None,
        action: str | None = None,
    ) -> int:
        """Write matching events oldest first to `out`; returns the number of rows written.

        JSON Lines is exact. CSV cells are made safe to open in a spreadsheet (`spreadsheet_safe`).
        `since` is inclusive, `until` exclusive. `action` matches as in `query` (exactly, or as a prefix at a
        dot): the stored names it selects are found with the index skip scan, then matched with `IN`.
        Rows stream through a server-side cursor (PostgreSQL) or SQLite's incremental cursor, so memory stays
        flat however large the table is.
        """
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown export format {fmt!r}: use jsonl or csv")
        stmt = sa.select(*_SELECT_COLUMNS).order_by(events.c.id)
        if since is not None:
            stmt = stmt.where(events.c.created_at >= as_utc(since))
        if until is not None:
            stmt = stmt.where(events.c.created_at < as_utc(until))
        if actor_id is not None:
            stmt = stmt.where(events.c.actor_id == actor_id)
        if server_id is not None:
            stmt = stmt.where(events.c.server_id == server_id)

        # RFC 4180's CRLF: Python's csv quotes a field holding any line-terminator character, so a stored `\r`
        # (which spreadsheets read as a line break) stays inside its quoted cell instead of forging a row.
        writer = csv.writer(out, lineterminator="\r\n") if fmt == "csv" else None
        if writer is not None:
            writer.writerow(EXPORT_COLUMNS)
        written = 0
        with self.db.begin(readonly=True) as conn:
            if action is not None:
                names = _matching_actions(conn, action)
                stmt = stmt.where(events.c.action.in_(names) if names else sa.false())
            for row in conn.execution_options(yield_per=2000).execute(stmt):
                values = list(row)
                values[1] = iso_timestamp(values[1])
                if writer is not None:
                    writer.writerow([spreadsheet_safe(v) for v in values])
                else:
                    record = dict(zip(EXPORT_COLUMNS, values, strict=True))
                    record["details"] = json.loads(record["details"]) if record["details"] else {}
                    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                    out.write("\n")
                written += 1
        return written

    def verify(self, *, batch_size: int = 10000) -> VerifyResult:
        """Walk the chain in id order and recompute every hash; stops at the first row that does not fit."""
        count = 0
        prev_id: int | None = None
        prev_hash = GENESIS_HASH
        # One snapshot for the head and the whole walk, so appends made meanwhile do not look like tampering.
        with self.db.begin(readonly=True, isolation_level="REPEATABLE READ") as conn:
            head = conn.execute(
                sa.select(chain_head.c.last_id, chain_head.c.last_hash).where(chain_head.c.id == HEAD_ID)
            ).first()
            rows = conn.execution_options(yield_per=batch_size).execute(
                sa.select(*_SELECT_COLUMNS).order_by(events.c.id)
            )
            unsealed = 0
            for row in rows:
                values = dict(zip(EXPORT_COLUMNS, row, strict=True))
                row_id = values["id"]
                seal_problem = unsealed_problem(values, head)
                if seal_problem is not None:
                    return VerifyResult(False, count, row_id, f"row {row_id}: {seal_problem}")
                if values["hash"] == UNSEALED:
                    unsealed += 1
                    continue
                if values["prev_hash"] != prev_hash:
                    after = "the start of the chain" if prev_id is None else f"row {prev_id}"
                    return VerifyResult(
                        False,
                        count,
                        row_id,
                        f"row {row_id}: prev_hash does not match {after} (deleted or reordered?)",
                    )
                if row_digest(values) != values["hash"]:
                    return VerifyResult(False, count, row_id, f"row {row_id}: hash mismatch (edited?)")
                prev_id, prev_hash = row_id, values["hash"]
                count += 1
        problem = _head_mismatch(head, prev_id or 0, prev_hash)
        if problem is not None:
            return VerifyResult(False, count, problem[0], problem[1])
        return VerifyResult(True, count, None, f"audit chain intact: {count} events{unsealed_note(unsealed)}")

    def open_intents(self, older_than: timedelta = timedelta(0)) -> list[AuditRecord]:
        """Intent rows whose operation has no later row with another outcome: actions whose fate is unknown.

        Oldest first. `older_than` skips intents so recent that their outcome may simply not be written yet.
        """
        cutoff = as_utc(self.clock()) - older_than
        later = events.alias("later")
        settled = (
            sa.select(later.c.id)
            .where(later.c.operation_id == events.c.operation_id)
            .where(later.c.outcome != Outcome.INTENT.value)
            .where(later.c.id > events.c.id)
        )
        stmt = (
            sa.select(*_SELECT_COLUMNS)
            .where(events.c.outcome == Outcome.INTENT.value)
            .where(events.c.operation_id.is_not(None))
            .where(events.c.created_at <= cutoff)
            .where(~settled.exists())
            .order_by(events.c.id)
        )
        with self.db.begin(readonly=True) as conn:
            return [_record(row) for row in conn.execute(stmt)]

    def count_actions(self, actor_id: str, actions: Iterable[str], since: datetime) -> int:
        """How many of `actions` (exact names) `actor_id` did since `since` (inclusive): for rate limits."""
        with self.db.begin(readonly=True) as conn:
            return count_started(conn, actor_id, actions, since, lock=False)

    # ---- settling intents (the recovery sweep) -----------------------------------------------------------
    def lock_chain(self, session: Session) -> None:
        """Take the chain head lock in the caller's transaction. Every append (and every other holder) waits
        for it, so a check made now and the row appended next are one step."""
        hold_appends(session.connection())
        session.execute(sa.select(chain_head.c.id).where(chain_head.c.id == HEAD_ID).with_for_update())

    def snapshot_has(self, snapshot_id: int, action: str, *, session: Session) -> bool:
        """Whether a row of `action` names this snapshot (e.g. "it was deleted"), read in the caller's transaction.

        Asked after the caller appended under the chain head lock, it sees every such row committed before it:
        a delete recorded later commits after the caller, and whoever acts on that delete then sees its rows."""
        found = (
            sa.select(events.c.id)
            .where(events.c.snapshot_id == snapshot_id)
            .where(events.c.action == str(action))
            .limit(1)
        )
        return session.execute(found).first() is not None

    def settled(self, intent: AuditRecord, *, session: Session) -> bool:
        """Whether a later row carries the intent's operation id with another outcome (the call's fate is known)."""
        later = (
            sa.select(events.c.id)
            .where(events.c.operation_id == intent.operation_id)
            .where(events.c.outcome != Outcome.INTENT.value)
            .where(events.c.id > intent.id)
            .limit(1)
        )
        return session.execute(later).first() is not None

    def flagged_since(
        self, actions: Iterable[str], since: datetime, *, outcome: str, marker: str, limit: int = 20
    ) -> list[AuditRecord]:
        """Rows of `actions` with `outcome` since `since` whose details set the top-level `marker` to true.

        Newest first. Details are canonical JSON (compact, sorted keys, every string escaped), so `"marker":true`
        appears verbatim in a row that has it and a string value can never fake it (its quotes are escaped). The
        text match narrows the rows in SQL; the decoded details decide.
        """
        names = sorted({str(action) for action in actions})
        if not names:
            return []
        fragment = f"%{_encode_json_string(marker)}:true%"
        stmt = (
            sa.select(*_SELECT_COLUMNS)
            .where(events.c.outcome == str(outcome))
            .where(events.c.action.in_(names))
            .where(events.c.created_at >= as_utc(since))
            .where(events.c.details.like(fragment))
            .order_by(events.c.id.desc())
            .limit(limit)
        )
        with self.db.begin(readonly=True) as conn:
            records = [_record(row) for row in conn.execute(stmt)]
        return [record for record in records if record.details.get(marker) is True]

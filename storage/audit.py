"""The tamper-evident audit trail: every action the bot takes or refuses, in one append-only hash chain.

Each row stores `prev_hash` (the previous row's `hash`, 64 zeros for the first row) and `hash`, the SHA-256 of
a canonical serialisation of all its other columns (`row_digest`). Editing, deleting or reordering rows
breaks the chain, and `AuditLog.verify` names the first row that no longer fits.

Appends serialise on the single `audit_chain_head` row (SELECT … FOR UPDATE on PostgreSQL; on SQLite the
BEGIN IMMEDIATE write transaction does it), and row ids are allocated inside that lock, so id order is chain
order even with many threads and processes appending at once. A missing head row with events in the table is
treated as tampering: appends stop (`ChainHeadMissing`) and verify fails, until an operator re-anchors the head.
Nothing here ever updates or deletes an audit row. Signed checkpoints of the chain live in storage.checkpoints.
Every text is made valid UTF-8 before it is hashed or stored (a lone surrogate from a Slack payload or a VPS.org
answer becomes U+FFFD), so no value can make a row impossible to write.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum, StrEnum
from json.encoder import encode_basestring as _encode_json_string  # what json.dumps(ensure_ascii=False) uses
from typing import Any, Literal, TextIO

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import Database, as_utc, utcnow
from storage.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
HEAD_ID = 1
MAX_QUERY_LIMIT = 1000

events = AuditEvent.__table__
chain_head = AuditChainHead.__table__


class Outcome(StrEnum):
    INTENT = "intent"  # about to call VPS.org; an outcome row with the same operation_id follows
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"
    UNKNOWN = "unknown"  # the call's fate is unknown (timeout, crash): someone must look
    INFO = "info"


class Action(StrEnum):
    """Every audit action name the bot writes: callers use members, never literals (the export and the filters
    of `/snapshot audit` show these names, so they never change)."""

    LIST = "list"
    AUDIT_READ = "audit.read"
    AUDIT_REANCHORED = "audit.reanchored"  # an operator re-anchored the chain head (storage.checkpoints)
    CREATE_REQUESTED = "create.requested"
    CREATE_SUCCEEDED = "create.succeeded"
    CREATE_FAILED = "create.failed"
    CREATE_COMPLETED = "create.completed"
    CREATE_TIMEOUT = "create.timeout"
    CREATE_VANISHED = "create.vanished"
    CREATE_NEEDS_CHECK = "create.needs_check"  # found without outcome after a crash
    DELETE_REQUESTED = "delete.requested"
    DELETE_SUCCEEDED = "delete.succeeded"
    DELETE_FAILED = "delete.failed"
    DELETE_NEEDS_CHECK = "delete.needs_check"
    # A delete under the two-person rule: the request's own steps (the call itself is delete.requested/…).
    DELETE_APPROVAL_REQUESTED = "delete.approval_requested"
    DELETE_APPROVAL_APPROVED = "delete.approval_approved"
    DELETE_APPROVAL_REJECTED = "delete.approval_rejected"
    DELETE_APPROVAL_CANCELLED = "delete.approval_cancelled"
    DELETE_APPROVAL_EXPIRED = "delete.approval_expired"
    DELETE_APPROVAL_NOT_SENT = "delete.approval_not_sent"
    DELETE_APPROVAL_STALE = "delete.approval_stale"
    DELETE_APPROVAL_FAILED = "delete.approval_failed"
    RESTORE_REQUESTED = "restore.requested"
    RESTORE_APPROVED = "restore.approved"
    RESTORE_REJECTED = "restore.rejected"
    RESTORE_CANCELLED = "restore.cancelled"
    RESTORE_EXPIRED = "restore.expired"
    RESTORE_EXECUTING = "restore.executing"
    RESTORE_EXECUTED = "restore.executed"
    RESTORE_FAILED = "restore.failed"
    RESTORE_NEEDS_CHECK = "restore.needs_check"
    RESTORE_NOT_SENT = "restore.not_sent"  # approved, but given up before sending: nothing reached VPS.org
    RESTORE_STALE = "restore.stale"  # approved, but the snapshot no longer matched what the card showed
    RESTORE_FINISHED = "restore.finished"
    RESTORE_TIMEOUT = "restore.timeout"
    RESTORE_VANISHED = "restore.vanished"  # the server disappeared mid-restore
    REFUSED_SELF_APPROVAL = "refused.self_approval"
    REFUSED_PERMISSION = "refused.permission"
    REFUSED_VALIDATION = "refused.validation"
    REFUSED_RATE_LIMITED = "refused.rate_limited"
    REFUSED_CHANNEL = "refused.channel"
    REFUSED_TEAM = "refused.team"
    REFUSED_NOT_PENDING = "refused.not_pending"


# The action of each step of an approval request, by (request kind, step). A delete's outcome after the call is
# written by the delete itself (delete.succeeded / delete.failed), so it has no `executed` step here.
APPROVAL_ACTIONS: dict[tuple[str, str], Action] = {
    ("restore", "requested"): Action.RESTORE_REQUESTED,
    ("restore", "approved"): Action.RESTORE_APPROVED,
    ("restore", "rejected"): Action.RESTORE_REJECTED,
    ("restore", "cancelled"): Action.RESTORE_CANCELLED,
    ("restore", "expired"): Action.RESTORE_EXPIRED,
    ("restore", "not_sent"): Action.RESTORE_NOT_SENT,
    ("restore", "stale"): Action.RESTORE_STALE,
    ("restore", "failed"): Action.RESTORE_FAILED,
    ("restore", "executed"): Action.RESTORE_EXECUTED,
    ("restore", "needs_check"): Action.RESTORE_NEEDS_CHECK,
    ("delete", "requested"): Action.DELETE_APPROVAL_REQUESTED,
    ("delete", "approved"): Action.DELETE_APPROVAL_APPROVED,
    ("delete", "rejected"): Action.DELETE_APPROVAL_REJECTED,
    ("delete", "cancelled"): Action.DELETE_APPROVAL_CANCELLED,
    ("delete", "expired"): Action.DELETE_APPROVAL_EXPIRED,
    ("delete", "not_sent"): Action.DELETE_APPROVAL_NOT_SENT,
    ("delete", "stale"): Action.DELETE_APPROVAL_STALE,
    ("delete", "failed"): Action.DELETE_APPROVAL_FAILED,
    ("delete", "needs_check"): Action.DELETE_NEEDS_CHECK,
}


@dataclass(frozen=True)
class AuditEntry:
    """What callers append. `created_at`, `id` and the hashes are assigned by `AuditLog`."""

    action: str
    outcome: str
    actor_id: str
    actor_name: str = ""
    team_id: str | None = None
    channel_id: str | None = None
    server_id: int | None = None
    snapshot_id: int | None = None
    request_id: int | None = None
    operation_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """What readers get: a stored row, `details` decoded."""

    id: int
    created_at: datetime
    action: str
    outcome: str
    actor_id: str
    actor_name: str
    team_id: str | None
    channel_id: str | None
    server_id: int | None
    snapshot_id: int | None
    request_id: int | None
    operation_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the timestamp in the canonical ISO form."""
        return {name: getattr(self, name) for name in EXPORT_COLUMNS} | {"created_at": iso_timestamp(self.created_at)}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int  # rows checked and found intact
    first_bad_id: int | None
    reason: str


# Export column order (and the fields of AuditRecord).
EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "action",
    "outcome",
    "actor_id",
    "actor_name",
    "team_id",
    "channel_id",
    "server_id",
    "snapshot_id",
    "request_id",
    "operation_id",
    "details",
    "prev_hash",
    "hash",
)
_SELECT_COLUMNS = [events.c[name] for name in EXPORT_COLUMNS]
# Free-text columns and their widths: values are redacted, then cut to fit (PostgreSQL enforces the widths).
_TEXT_COLUMNS: dict[str, int] = {
    name: events.c[name].type.length  # type: ignore[attr-defined]
    for name in ("actor_id", "actor_name", "team_id", "channel_id", "action", "outcome", "operation_id")
}


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


# ---- canonical form and hashing -----------------------------------------------------------------------
def iso_timestamp(value: datetime) -> str:
    """The one timestamp format that is hashed: UTC, microseconds, `Z` (e.g. 2024-05-01T12:00:00.000000Z)."""
    if value.tzinfo is not UTC:
        value = as_utc(value)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"  # drop the "+00:00"


def canonical_row(row: Mapping[str, Any]) -> str:
    """The text that is hashed: sorted-key compact JSON of every column except `hash`.

    Same output as `json.dumps({...}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` (a test
    holds the two together), spelled out because append_many and verify run it once per row.
    `row` holds the column values as stored (details as its JSON text); the timestamp goes in `iso_timestamp`
    form, so what is hashed is exactly what reads back from either database.
    """
    enc = _encode_json_string
    team, channel, op = row["team_id"], row["channel_id"], row["operation_id"]
    request, server, snapshot = row["request_id"], row["server_id"], row["snapshot_id"]
    return (
        f'{{"action":{enc(row["action"])},"actor_id":{enc(row["actor_id"])},'
        f'"actor_name":{enc(row["actor_name"])},"channel_id":{"null" if channel is None else enc(channel)},'
        f'"created_at":"{iso_timestamp(row["created_at"])}","details":{enc(row["details"])},'
        f'"id":{int(row["id"])},"operation_id":{"null" if op is None else enc(op)},'
        f'"outcome":{enc(row["outcome"])},"prev_hash":{enc(row["prev_hash"])},'
        f'"request_id":{"null" if request is None else int(request)},'
        f'"server_id":{"null" if server is None else int(server)},'
        f'"snapshot_id":{"null" if snapshot is None else int(snapshot)},'
        f'"team_id":{"null" if team is None else enc(team)}}}'
    )


def row_digest(row: Mapping[str, Any]) -> str:
    """SHA-256 hex of `canonical_row(row)`."""
    return hashlib.sha256(canonical_row(row).encode("utf-8")).hexdigest()


class Redactor:
    """How credentials are masked before a value is hashed and stored.

    Storage knows no credential patterns: the bot injects its masking functions (`text` for one string,
    `value` for any JSON-like value, recursively). `NO_REDACTION` stores values as given.
    """

    def __init__(self, text: Callable[[str], str], value: Callable[[Any], Any]) -> None:
        self.text = text
        self.value = value
        self._encoder = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=self._json_default
        )

    def _json_default(self, value: Any) -> Any:
        # Details are meant to be plain JSON; anything else is stored as text (redacted: str() of an exception
        # or of a request object may well carry a token).
        if isinstance(value, datetime):
            return iso_timestamp(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, set | frozenset):
            return sorted((self.value(item) for item in value), key=repr)
        return self.text(str(value))

    def details(self, details: Mapping[str, Any] | None) -> str:
        """Details as canonical JSON with every string (keys included) passed through `text`."""
        if not details:
            return "{}"
        plain = details if type(details) is dict else dict(details)
        try:
            text = self._encoder.encode(plain)
            # Fast path: with no escapes in the text every string appears in it verbatim between quotes, so if
            # the masking finds nothing in the whole text it would find nothing in any single string either.
            if "\\" not in text and self.text(text) == text:
                return text
            return self._encoder.encode(self.value(plain))
        except (TypeError, ValueError):  # mixed-type keys, a cycle: keep the event, store the details as text
            return self._encoder.encode({"unserialisable_details": self.text(repr(plain))})


NO_REDACTION = Redactor(text=lambda text: text, value=lambda value: value)


def valid_utf8(text: str) -> str:
    """`text` as valid UTF-8: surrogate pairs joined, lone surrogates replaced by U+FFFD (they cannot be encoded)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _fit(value: Any, width: int) -> str | None:
    """A text column's value, cut to the column width (PostgreSQL enforces it; NUL it refuses outright)."""
    if value is None:
        return None
    text = valid_utf8(value if type(value) is str else str(value))
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:width]


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _prepare(entry: AuditEntry, redactor: Redactor) -> dict[str, Any]:
    """Column values for an entry, redacted and fitted to the schema; id, time and hashes come later."""
    if not entry.actor_id:
        raise ValueError("an audit entry needs an actor_id (a Slack user id, or 'system')")
    widths = _TEXT_COLUMNS
    return {
        "actor_id": _fit(entry.actor_id, widths["actor_id"]),
        "actor_name": _fit(redactor.text(str(entry.actor_name or "")), widths["actor_name"]),
        "team_id": _fit(entry.team_id, widths["team_id"]),
        "channel_id": _fit(entry.channel_id, widths["channel_id"]),
        "action": _fit(entry.action, widths["action"]),
        "outcome": _fit(entry.outcome, widths["outcome"]),
        "server_id": _optional_int(entry.server_id),
        "snapshot_id": _optional_int(entry.snapshot_id),
        "request_id": _optional_int(entry.request_id),
        "operation_id": _fit(entry.operation_id, widths["operation_id"]),
        "details": valid_utf8(redactor.details(entry.details)),
    }


def _record(row: Any) -> AuditRecord:
    values = dict(zip(EXPORT_COLUMNS, row, strict=True))
    values["details"] = json.loads(values["details"]) if values["details"] else {}
    return AuditRecord(**values)


def _batches(items: Iterable[AuditEntry], size: int) -> Iterator[list[AuditEntry]]:
    batch: list[AuditEntry] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


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


class AuditLog:
    def __init__(
        self, db: Database, clock: Callable[[], datetime] = utcnow, *, redactor: Redactor = NO_REDACTION
    ) -> None:
        self.db = db
        self.clock = clock
        self.redactor = redactor  # the bot passes its own (bot.redaction); see `Redactor`

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
        return written

    def _lock_head(self, conn: Connection) -> tuple[int, str]:
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

    def _chain(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Give `rows` ids, timestamps and hashes after the current head, insert them and move the head."""
        last_id, last_hash = self._lock_head(conn)
        for row, row_id in zip(rows, _allocate_ids(conn, last_id, len(rows)), strict=True):
            last_id = row["id"] = row_id
            # Read inside the lock, so timestamps never go backwards along the chain (a clock permitting).
            row["created_at"] = as_utc(self.clock())
            row["prev_hash"] = last_hash
            row["hash"] = last_hash = row_digest(row)
        conn.execute(sa.insert(events), list(rows))
        conn.execute(
            sa.update(chain_head).where(chain_head.c.id == HEAD_ID).values(last_id=last_id, last_hash=last_hash)
        )

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
    ) -> int:
        """Write matching events oldest first to `out`; returns the number of rows written.

        JSON Lines is exact. CSV cells are made safe to open in a spreadsheet (`spreadsheet_safe`).
        `since` is inclusive, `until` exclusive. Rows stream through a server-side cursor (PostgreSQL) or
        SQLite's incremental cursor, so memory stays flat however large the table is.
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
            for row in rows:
                values = dict(zip(EXPORT_COLUMNS, row, strict=True))
                row_id = values["id"]
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
        return VerifyResult(True, count, None, f"audit chain intact: {count} events")

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
        names = sorted({str(action) for action in actions})
        if not names:
            return 0
        stmt = (
            sa.select(sa.func.count())
            .select_from(events)
            .where(events.c.actor_id == actor_id)
            .where(events.c.action.in_(names))
            .where(events.c.created_at >= as_utc(since))
        )
        with self.db.begin(readonly=True) as conn:
            return int(conn.execute(stmt).scalar_one())

    # ---- settling intents (the recovery sweep) -----------------------------------------------------------
    def lock_chain(self, session: Session) -> None:
        """Take the chain head lock in the caller's transaction. Every append (and every other holder) waits
        for it, so a check made now and the row appended next are one step."""
        session.execute(sa.select(chain_head.c.id).where(chain_head.c.id == HEAD_ID).with_for_update())

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

"""storage.audit: appending, reading, exporting, the hash chain under tampering and under concurrency, redaction."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.auditing import AUDIT_REDACTOR
from storage.audit import (
    EXPORT_COLUMNS,
    GENESIS_HASH,
    UNSEALED,
    Action,
    AuditEntry,
    AuditLog,
    ChainHeadMissing,
    Outcome,
    canonical_row,
    events,
    iso_timestamp,
    row_digest,
)
from storage.db import Database
from tests.budgets import examples

PROJECT_ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


class FakeClock:
    """Advances one second per reading, so every row has its own, predictable timestamp."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def log(database: Database, clock: FakeClock) -> AuditLog:
    return AuditLog(database, clock=clock, redactor=AUDIT_REDACTOR)


def entry(
    action: str = Action.LIST, outcome: str = Outcome.OK, actor_id: str = "U0ALICE", **fields: object
) -> AuditEntry:
    return AuditEntry(action=action, outcome=outcome, actor_id=actor_id, **fields)  # type: ignore[arg-type]


def raw_rows(database: Database) -> list[dict[str, object]]:
    with database.begin(readonly=True) as conn:
        return [dict(row._mapping) for row in conn.exec_driver_sql("SELECT * FROM audit_events ORDER BY id")]


# ---- appending ---------------------------------------------------------------------------------------------
def test_append_chains_rows_and_returns_what_is_stored(log: AuditLog, database: Database) -> None:
    first = log.append(
        entry(
            Action.CREATE_REQUESTED,
            Outcome.INTENT,
            actor_name="Alice",
            team_id="T0TEAM",
            channel_id="C0OPS",
            server_id=42,
            operation_id="op-1",
            details={"name": "before-upgrade", "description": "ünïcode ✓"},
        )
    )
    second = log.append(entry(Action.CREATE_SUCCEEDED, Outcome.OK, server_id=42, snapshot_id=7, operation_id="op-1"))
    log.seal()  # on PostgreSQL appends are chained moments after they commit; now, for the test

    stored = log.query(limit=10)
    assert stored[1].prev_hash == GENESIS_HASH
    assert stored[0].prev_hash == stored[1].hash
    assert second.id > first.id
    assert first.created_at == T0 and first.created_at.tzinfo is not None
    assert first.details == {"name": "before-upgrade", "description": "ünïcode ✓"}
    assert first.action == "create.requested" and first.outcome == "intent"
    # Newest first, identical to what append returned, but for the seal (empty until sealed on PostgreSQL).
    assert [
        replace(r, prev_hash=s.prev_hash, hash=s.hash) for r, s in zip([second, first], stored, strict=True)
    ] == stored
    assert {first.hash, second.hash} <= {UNSEALED, stored[0].hash, stored[1].hash}
    assert log.verify().ok


def test_append_is_committed_before_it_returns(log: AuditLog, database_url: str) -> None:
    log.append(entry(Action.DELETE_REQUESTED, Outcome.INTENT, operation_id="op-9"))
    other_process_view = Database(database_url)  # a separate engine and connection pool
    try:
        assert [r.operation_id for r in AuditLog(other_process_view).query()] == ["op-9"]
    finally:
        other_process_view.dispose()


def test_append_in_a_callers_session_commits_or_rolls_back_with_it(log: AuditLog, database: Database) -> None:
    log.append(entry(details={"n": 1}))
    with pytest.raises(RuntimeError), database.session() as session:
        log.append(entry(details={"n": 2}), session=session)
        raise RuntimeError("the state change failed")
    assert [r.details for r in log.query()] == [{"n": 1}]

    with database.session() as session:
        record = log.append(entry(details={"n": 3}), session=session)
    assert [r.details for r in log.query()] == [{"n": 3}, {"n": 1}]
    assert log.query()[0].id == record.id
    log.seal()
    result = log.verify()
    assert result.ok and result.count == 2


def test_append_many_is_chained_with_single_appends(log: AuditLog) -> None:
    log.append(entry(details={"i": -1}))
    written = log.append_many((entry(server_id=i % 3, details={"i": i}) for i in range(25)), batch_size=7)
    log.append(entry(details={"i": 25}))
    log.seal()
    assert written == 25
    rows = log.query(limit=100)
    assert [r.details["i"] for r in reversed(rows)] == list(range(-1, 26))
    assert all(newer.prev_hash == older.hash for newer, older in itertools.pairwise(rows))
    assert log.verify().count == 27


def test_long_values_are_cut_to_the_column_widths(log: AuditLog) -> None:
    record = log.append(entry(actor_name="x" * 500, action="a." + "b" * 100, channel_id="C" * 40))
    assert len(record.actor_name) == 200 and len(record.action) == 64 and len(record.channel_id or "") == 32
    log.seal()  # the sealer thread may seal the row at any moment: compare once it surely has
    stored = log.query()[0]
    # The row as written, but for its seal (`append` returns it before the sealer chains it).
    assert stored == dataclasses.replace(record, prev_hash=stored.prev_hash, hash=stored.hash)
    assert log.verify().ok


def test_a_missing_chain_head_row_stops_appends_and_fails_verify(log: AuditLog, database: Database) -> None:
    """Deleting the head (with the newest rows) must not be papered over by rebuilding it from the cut tail."""
    log.append(entry(details={"n": 1}))
    log.append(entry(details={"n": 2}))
    # Tampered with once sealed: a sealer still chaining row 2 takes the head, then the row, and the delete below
    # takes them the other way round (PostgreSQL then reports a deadlock: it did once under load).
    log.seal()
    with database.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_events WHERE id = 2")
        conn.exec_driver_sql("DELETE FROM audit_chain_head")
    with pytest.raises(ChainHeadMissing):
        log.append(entry(details={"n": 3}))
    result = log.verify()
    assert not result.ok and "audit_chain_head row is missing" in result.reason
    assert [row["id"] for row in raw_rows(database)] == [1]


def test_a_missing_chain_head_row_is_recreated_while_there_are_no_events(log: AuditLog, database: Database) -> None:
    with database.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_chain_head")
    log.append(entry(details={"n": 1}))
    assert log.verify().ok


def test_timestamps_in_other_zones_hash_and_read_back_exactly(database: Database) -> None:
    tokyo = timezone(timedelta(hours=9))
    log = AuditLog(database, clock=lambda: datetime(2024, 5, 2, 3, 4, 5, 999999, tzinfo=tokyo))
    record = log.append(entry())
    assert record.created_at == datetime(2024, 5, 1, 18, 4, 5, 999999, tzinfo=UTC)
    assert iso_timestamp(log.query()[0].created_at) == "2024-05-01T18:04:05.999999Z"
    assert log.verify().ok


def test_in_memory_database_supports_the_audit_log() -> None:
    db = Database("sqlite://")
    try:
        db.upgrade()
        log = AuditLog(db)
        log.append_many(entry(details={"i": i}) for i in range(5))
        assert log.verify().count == 5
    finally:
        db.dispose()


# ---- redaction ------------------------------------------------------------------------------------------------
def test_token_shaped_strings_never_reach_the_table(log: AuditLog, database: Database) -> None:
    secrets = ["1234-5678-abcdefSECRET", "abcdefgh12345SECRET", "999-keySECRET", "A0-valueSECRET", "vpsSECRET123"]
    record = log.append(
        entry(
            Action.CREATE_FAILED,
            Outcome.FAILED,
            actor_name="alice xoxb-1234-5678-abcdefSECRET",
            details={
                "api_message": "Authorization: Bearer vps_abcdefgh12345SECRET rejected",
                "xoxp-999-keySECRET": "a token as a key",
                "nested": {"list": ["xapp-1-A0-valueSECRET"]},
                "error": RuntimeError("token vps_vpsSECRET123 is invalid"),
            },
        )
    )
    stored = json.dumps(raw_rows(database), default=str)
    for secret in secrets:
        assert secret not in stored
    assert "SECRET" not in json.dumps(record.details) + record.actor_name
    assert record.actor_name == "alice xoxb-[redacted]"
    assert record.details["error"] == "token vps_[redacted] is invalid"
    assert record.details["nested"] == {"list": ["xapp-[redacted]"]}
    assert log.verify().ok


# ---- reading --------------------------------------------------------------------------------------------------
@pytest.fixture
def sample(log: AuditLog) -> list[int]:
    entries = [
        entry(Action.LIST, Outcome.OK, "U0ALICE"),
        entry(Action.CREATE_REQUESTED, Outcome.INTENT, "U0ALICE", server_id=1, operation_id="c1"),
        entry(Action.CREATE_SUCCEEDED, Outcome.OK, "U0ALICE", server_id=1, snapshot_id=10, operation_id="c1"),
        entry(Action.DELETE_REQUESTED, Outcome.INTENT, "U0BOB", server_id=2, snapshot_id=20, operation_id="d1"),
        entry(Action.DELETE_FAILED, Outcome.FAILED, "U0BOB", server_id=2, snapshot_id=20, operation_id="d1"),
        entry(Action.RESTORE_REQUESTED, Outcome.INFO, "U0BOB", server_id=1, snapshot_id=10, request_id=5),
        entry("created.weird", Outcome.INFO, "U0CAROL", server_id=3),  # "create" must not match this
        entry(Action.REFUSED_PERMISSION, Outcome.REFUSED, "U0CAROL", server_id=1),
    ]
    ids = [log.append(e).id for e in entries]
    log.seal()  # chained now, not whenever the sealer thread gets to them (the export checks the chain links)
    return ids


def test_query_filters_newest_first(log: AuditLog, sample: list[int]) -> None:
    def ids(**filters: object) -> list[int]:
        return [r.id for r in log.query(**filters)]  # type: ignore[arg-type]

    assert ids() == sample[::-1]
    assert ids(server_id=1) == [sample[7], sample[5], sample[2], sample[1]]
    assert ids(snapshot_id=20) == [sample[4], sample[3]]
    assert ids(actor_id="U0BOB") == [sample[5], sample[4], sample[3]]
    assert ids(action="create") == [sample[2], sample[1]]
    assert ids(action="create.succeeded") == [sample[2]]
    assert ids(action="creat") == []
    assert ids(action="refused") == [sample[7]]
    assert ids(action="list") == [sample[0]]
    assert ids(server_id=1, actor_id="U0ALICE", action="create") == [sample[2], sample[1]]
    assert ids(server_id=99) == []


def test_query_limit_and_paging(log: AuditLog, sample: list[int]) -> None:
    first_page = log.query(limit=3)
    assert [r.id for r in first_page] == sample[::-1][:3]
    second_page = log.query(limit=3, before_id=first_page[-1].id)
    assert [r.id for r in second_page] == sample[::-1][3:6]
    rest = log.query(limit=3, before_id=second_page[-1].id)
    assert [r.id for r in rest] == sample[::-1][6:]
    assert log.query(limit=3, before_id=rest[-1].id) == []
    assert log.query(limit=0) == []


def test_open_intents_lists_intents_without_an_outcome(database: Database) -> None:
    clock = FakeClock(step=timedelta(minutes=1))
    log = AuditLog(database, clock=clock)
    log.append(entry(Action.CREATE_REQUESTED, Outcome.INTENT, operation_id="done"))
    log.append(entry(Action.CREATE_SUCCEEDED, Outcome.OK, operation_id="done"))
    crashed = log.append(entry(Action.DELETE_REQUESTED, Outcome.INTENT, operation_id="crashed", snapshot_id=3))
    log.append(entry(Action.LIST, Outcome.INTENT))  # no operation id: nothing to pair with
    log.append(entry(Action.RESTORE_EXECUTING, Outcome.INTENT, operation_id="unknown"))
    log.append(entry(Action.RESTORE_NEEDS_CHECK, Outcome.UNKNOWN, operation_id="unknown"))
    recent = log.append(entry(Action.CREATE_REQUESTED, Outcome.INTENT, operation_id="in-flight"))

    clock.step = timedelta(0)  # stop the clock one minute after `recent`
    assert [r.operation_id for r in log.open_intents()] == ["crashed", "in-flight"]
    # Only intents older than 2 minutes count as stuck; `recent` may still be waiting for its answer.
    assert [r.id for r in log.open_intents(older_than=timedelta(minutes=2))] == [crashed.id]
    assert recent.id not in [r.id for r in log.open_intents(older_than=timedelta(minutes=2))]


def test_count_actions_for_rate_limits(database: Database) -> None:
    clock = FakeClock(step=timedelta(minutes=10))
    log = AuditLog(database, clock=clock)
    mutating = [Action.CREATE_REQUESTED, Action.DELETE_REQUESTED, Action.RESTORE_REQUESTED]
    log.append(entry(Action.CREATE_REQUESTED, Outcome.INTENT))  # T0
    log.append(entry(Action.DELETE_REQUESTED, Outcome.INTENT))  # T0 + 10 min
    log.append(entry(Action.LIST, Outcome.OK))  # not counted
    log.append(entry(Action.CREATE_REQUESTED, Outcome.INTENT, actor_id="U0BOB"))  # someone else
    log.append(entry(Action.RESTORE_REQUESTED, Outcome.INFO))  # T0 + 40 min

    assert log.count_actions("U0ALICE", mutating, since=T0) == 3
    assert log.count_actions("U0ALICE", mutating, since=T0 + timedelta(minutes=5)) == 2
    assert log.count_actions("U0ALICE", [Action.CREATE_REQUESTED], since=T0) == 1
    assert log.count_actions("U0ALICE", [], since=T0) == 0
    assert log.count_actions("U0NOBODY", mutating, since=T0) == 0


# ---- export ---------------------------------------------------------------------------------------------------
def _export(log: AuditLog, fmt: str, **filters: object) -> tuple[int, str]:
    out = io.StringIO()
    count = log.export(out, fmt, **filters)  # type: ignore[arg-type]
    return count, out.getvalue()


def test_export_jsonl_with_each_filter(log: AuditLog, sample: list[int]) -> None:
    count, text = _export(log, "jsonl")
    lines = [json.loads(line) for line in text.splitlines()]
    assert count == len(lines) == len(sample)
    assert [line["id"] for line in lines] == sample  # oldest first
    assert list(lines[1]) == list(EXPORT_COLUMNS)
    assert lines[1]["created_at"] == "2024-05-01T12:00:01.123456Z"
    assert lines[1]["action"] == "create.requested" and lines[1]["details"] == {}
    assert lines[1]["prev_hash"] == lines[0]["hash"]

    def exported_ids(**filters: object) -> list[int]:
        return [json.loads(line)["id"] for line in _export(log, "jsonl", **filters)[1].splitlines()]

    # The fake clock gives row i the time T0 + i seconds.
    assert exported_ids(since=T0 + timedelta(seconds=5)) == sample[5:]
    assert exported_ids(until=T0 + timedelta(seconds=2)) == sample[:2]
    assert exported_ids(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4)) == sample[2:4]
    assert exported_ids(actor_id="U0BOB") == sample[3:6]
    assert exported_ids(server_id=1) == [sample[1], sample[2], sample[5], sample[7]]
    assert exported_ids(server_id=1, actor_id="U0CAROL") == [sample[7]]
    # A zone other than UTC means the same instant.
    assert exported_ids(since=(T0 + timedelta(seconds=7)).astimezone(timezone(timedelta(hours=-5)))) == sample[7:]


def test_export_csv_with_each_filter(log: AuditLog, sample: list[int]) -> None:
    log.append(entry(Action.CREATE_FAILED, Outcome.FAILED, details={"error": 'comma, "quote"\nnewline'}))
    count, text = _export(log, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert count == len(rows) == len(sample) + 1
    assert [int(r["id"]) for r in rows][:-1] == sample
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert json.loads(rows[-1]["details"]) == {"error": 'comma, "quote"\nnewline'}
    assert rows[0]["server_id"] == "" and rows[1]["server_id"] == "1"

    def exported_ids(**filters: object) -> list[int]:
        return [int(r["id"]) for r in csv.DictReader(io.StringIO(_export(log, "csv", **filters)[1]))]

    assert exported_ids(since=T0 + timedelta(seconds=6), until=T0 + timedelta(seconds=8)) == sample[6:8]
    assert exported_ids(actor_id="U0CAROL") == sample[6:8]
    assert exported_ids(server_id=2) == sample[3:5]
    assert exported_ids(server_id=404) == []
    assert _export(log, "csv", server_id=404)[1].splitlines() == [",".join(EXPORT_COLUMNS)]


def test_export_rejects_an_unknown_format(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        log.export(io.StringIO(), "xml")  # type: ignore[arg-type]


# ---- verification and tampering -------------------------------------------------------------------------------
@pytest.fixture
def chain(log: AuditLog) -> list[int]:
    ids = [log.append(entry(server_id=i, details={"i": i})).id for i in range(6)]
    log.seal()
    return ids


def test_verify_an_intact_chain(log: AuditLog, chain: list[int]) -> None:
    result = log.verify()
    assert (result.ok, result.count, result.first_bad_id) == (True, 6, None)
    assert result.reason == "audit chain intact: 6 events"


def test_verify_an_empty_chain(log: AuditLog) -> None:
    assert log.verify().ok and log.verify().count == 0


def test_verify_detects_an_edited_row(log: AuditLog, database: Database, chain: list[int]) -> None:
    with database.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE id = :id"), {"d": '{"i":99}', "id": chain[2]})
    result = log.verify()
    assert (result.ok, result.first_bad_id, result.count) == (False, chain[2], 2)
    assert result.reason == f"row {chain[2]}: hash mismatch (edited?)"


def test_verify_detects_an_edit_with_a_recomputed_hash(log: AuditLog, database: Database, chain: list[int]) -> None:
    with database.begin() as conn:
        row = dict(conn.execute(sa.select(events).where(events.c.id == chain[2])).one()._mapping)
        row["actor_id"] = "U0MALLORY"
        conn.execute(
            sa.text("UPDATE audit_events SET actor_id = :a, hash = :h WHERE id = :id"),
            {"a": "U0MALLORY", "h": row_digest(row), "id": chain[2]},
        )
    result = log.verify()
    assert result.first_bad_id == chain[3]
    assert result.reason == f"row {chain[3]}: prev_hash does not match row {chain[2]} (deleted or reordered?)"


def test_verify_detects_a_deleted_row(log: AuditLog, database: Database, chain: list[int]) -> None:
    with database.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE id = :id"), {"id": chain[3]})
    result = log.verify()
    assert (result.ok, result.first_bad_id, result.count) == (False, chain[4], 3)
    assert result.reason == f"row {chain[4]}: prev_hash does not match row {chain[2]} (deleted or reordered?)"


def test_verify_detects_a_deleted_first_row(log: AuditLog, database: Database, chain: list[int]) -> None:
    with database.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE id = :id"), {"id": chain[0]})
    result = log.verify()
    assert result.first_bad_id == chain[1]
    assert "prev_hash does not match the start of the chain" in result.reason


def test_verify_detects_deleted_newest_rows(log: AuditLog, database: Database, chain: list[int]) -> None:
    with database.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE id >= :id"), {"id": chain[4]})
    result = log.verify()
    assert (result.ok, result.first_bad_id, result.count) == (False, chain[4], 4)
    assert result.reason.startswith(f"row {chain[4]}: missing")


def test_verify_detects_a_swapped_pair(log: AuditLog, database: Database, chain: list[int]) -> None:
    a, b = chain[2], chain[3]
    with database.begin() as conn:  # swap the ids of two neighbouring rows
        conn.execute(sa.text("UPDATE audit_events SET id = -1 WHERE id = :a"), {"a": a})
        conn.execute(sa.text("UPDATE audit_events SET id = :a WHERE id = :b"), {"a": a, "b": b})
        conn.execute(sa.text("UPDATE audit_events SET id = :b WHERE id = -1"), {"b": b})
    result = log.verify()
    assert (result.ok, result.first_bad_id) == (False, a)
    assert result.reason == f"row {a}: prev_hash does not match row {chain[1]} (deleted or reordered?)"


def test_verify_detects_rows_with_swapped_contents(log: AuditLog, database: Database, chain: list[int]) -> None:
    a, b = chain[2], chain[3]
    columns = [c for c in EXPORT_COLUMNS if c != "id"]
    with database.begin() as conn:
        rows = {
            r.id: r._mapping
            for r in conn.execute(sa.text("SELECT * FROM audit_events WHERE id IN (:a, :b)"), {"a": a, "b": b})
        }
        assignments = ", ".join(f"{c} = :{c}" for c in columns)
        for target, source in ((a, b), (b, a)):
            conn.execute(
                sa.text(f"UPDATE audit_events SET {assignments} WHERE id = :target"),
                {**{c: rows[source][c] for c in columns}, "target": target},
            )
    result = log.verify()
    assert (result.ok, result.first_bad_id) == (False, a)


# ---- canonical form -------------------------------------------------------------------------------------------
_optional_text = st.one_of(st.none(), st.text(max_size=40))
_optional_int = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))


@settings(max_examples=examples(200), deadline=None)
@given(
    text=st.text(max_size=40),
    optional_text=_optional_text,
    number=_optional_int,
    when=st.datetimes(timezones=st.just(UTC)),
)
def test_canonical_row_is_sorted_compact_json(
    text: str, optional_text: str | None, number: int | None, when: datetime
) -> None:
    row = {
        "id": 5,
        "created_at": when,
        "action": text,
        "outcome": "ok",
        "actor_id": text,
        "actor_name": text,
        "team_id": optional_text,
        "channel_id": optional_text,
        "server_id": number,
        "snapshot_id": number,
        "request_id": None,
        "operation_id": optional_text,
        "details": json.dumps({"k": text}),
        "prev_hash": GENESIS_HASH,
        "hash": "ignored",
    }
    reference = {k: v for k, v in row.items() if k != "hash"} | {"created_at": iso_timestamp(when)}
    assert canonical_row(row) == json.dumps(reference, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_iso_timestamp_is_fixed_width_utc_with_microseconds() -> None:
    assert iso_timestamp(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05.000000Z"
    assert iso_timestamp(datetime(2024, 1, 2, 3, 4, 5, 7)) == "2024-01-02T03:04:05.000007Z"
    assert iso_timestamp(datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-01-02T03:04:05.000000Z"
    )


# ---- concurrency ----------------------------------------------------------------------------------------------
def test_concurrent_appends_from_threads_stay_chained(audit_log: AuditLog) -> None:
    threads_count, per_thread = 8, 25
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def work(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(per_thread):
                if i % 5 == 4:
                    audit_log.append_many([entry(actor_id=f"U0T{n}", details={"i": i})], batch_size=1)
                else:
                    audit_log.append(entry(actor_id=f"U0T{n}", details={"i": i}))
        except BaseException as error:  # asserted below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    result = audit_log.verify()
    assert result.ok, result.reason
    assert result.count == threads_count * per_thread
    for n in range(threads_count):
        mine = audit_log.query(actor_id=f"U0T{n}", limit=100)
        assert sorted(r.details["i"] for r in mine) == list(range(per_thread))


_APPENDER = """
import sys
from storage.audit import AuditEntry, AuditLog
from storage.db import Database

url, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = Database(url)
log = AuditLog(db)
print("ready", flush=True)
sys.stdin.readline()  # wait for "go", so both processes append at the same time
for i in range(count):
    log.append(AuditEntry(action="list", outcome="ok", actor_id=tag, details={"i": i}))
log.append_many(AuditEntry(action="list", outcome="ok", actor_id=tag, details={"bulk": i}) for i in range(count))
db.dispose()
print("done", flush=True)
"""


@pytest.fixture
def appender_processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def test_concurrent_appends_from_two_processes_stay_chained(
    audit_log: AuditLog, database_url: str, appender_processes: list[subprocess.Popen[str]]
) -> None:
    per_process = 60
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    for tag in ("U0PROCA", "U0PROCB"):
        appender_processes.append(
            subprocess.Popen(
                [sys.executable, "-c", _APPENDER, database_url, tag, str(per_process)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    for process in appender_processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    for process in appender_processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for i in range(per_process):  # this process appends too, meanwhile
        audit_log.append(entry(actor_id="U0MAIN", details={"i": i}))
    for process in appender_processes:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    audit_log.seal()

    result = audit_log.verify()
    assert result.ok, result.reason
    assert result.count == 5 * per_process
    for tag in ("U0PROCA", "U0PROCB"):
        assert len(audit_log.query(actor_id=tag, limit=1000)) == 2 * per_process

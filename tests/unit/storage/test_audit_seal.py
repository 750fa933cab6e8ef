"""Sealing (storage.audit_seal): appends on PostgreSQL commit unsealed and are chained moments later, by one
sealer that never leaves a row behind it; verify tells the newest unsealed rows from rows put into the past."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from bot.auditing import AUDIT_REDACTOR
from storage.audit import Action, AuditEntry, AuditLog, Outcome
from storage.audit_seal import SealRefused, insert_unsealed
from storage.db import Database, utcnow


def entry(n: int, actor_id: str = "U0ALICE") -> AuditEntry:
    return AuditEntry(action=Action.LIST, outcome=Outcome.OK, actor_id=actor_id, details={"n": n})


def eventually(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.01)


def unsealed_count(database: Database) -> int:
    with database.begin(readonly=True) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM audit_events WHERE hash = ''")).scalar() or 0)


def test_appends_are_sealed_moments_after_they_commit(audit_log: AuditLog, database: Database) -> None:
    ids = [audit_log.append(entry(n)).id for n in range(5)]  # no one calls seal(): the sealer thread does

    eventually(lambda: unsealed_count(database) == 0, "every append sealed")
    result = audit_log.verify()
    assert (result.ok, result.count, result.reason) == (True, 5, "audit chain intact: 5 events")
    assert [r.id for r in audit_log.query()] == ids[::-1]


@pytest.mark.postgres
def test_an_unsealed_newest_row_is_noted_and_sealed_later(postgres_schema_url: str) -> None:
    database = Database(postgres_schema_url)
    database.upgrade()
    try:
        log = AuditLog(database, redactor=AUDIT_REDACTOR)
        log.append(entry(0))
        log.seal()
        with database.begin() as conn:  # an append whose sealer has not come round yet
            insert_unsealed(conn, [{**_row(1), "created_at": utcnow()}])

        result = log.verify()
        assert result.ok and result.count == 1
        assert "1 newer events not sealed into the chain yet" in result.reason

        assert log.seal() == 1
        result = log.verify()
        assert (result.ok, result.count, result.reason) == (True, 2, "audit chain intact: 2 events")
    finally:
        database.dispose()


def _row(n: int) -> dict[str, object]:
    return {
        "actor_id": "U0ALICE",
        "actor_name": "",
        "team_id": None,
        "channel_id": None,
        "action": "list",
        "outcome": "ok",
        "server_id": None,
        "snapshot_id": None,
        "request_id": None,
        "operation_id": None,
        "details": f'{{"n":{n}}}',
    }


def test_a_row_put_into_the_sealed_past_is_reported(audit_log: AuditLog, database: Database) -> None:
    for n in range(3):
        audit_log.append(entry(n))
    audit_log.seal()
    with database.begin() as conn:  # a database administrator's insert, below the chain head, left unsealed
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (id, created_at, actor_id, actor_name, action, outcome, details, prev_hash, "
                "hash) VALUES (-1, :at, 'U0MALLORY', '', 'list', 'ok', '{}', '', '')"
            ),
            {"at": utcnow()},
        )

    result = audit_log.verify()
    assert (result.ok, result.first_bad_id) == (False, -1)
    assert result.reason.startswith("row -1: not sealed, yet inside the sealed chain")
    assert "inserted into the sealed past?" in result.reason


@pytest.mark.postgres
def test_the_sealer_waits_for_an_append_still_open_below_it(postgres_schema_url: str) -> None:
    """An append drew its id but has not committed; a later append has. Sealing the later one first would leave
    the earlier one below the head, unsealable: the sealer must wait for it."""
    database = Database(postgres_schema_url)
    database.upgrade()
    try:
        log = AuditLog(database, redactor=AUDIT_REDACTOR)
        sealer_log = AuditLog(database, redactor=AUDIT_REDACTOR)
        with database.session() as open_append:
            early = log.append(entry(1, "U0EARLY"), session=open_append)
            late = log.append(entry(2, "U0LATE"))
            assert early.id < late.id

            sealing = threading.Thread(target=sealer_log.seal)
            sealing.start()
            eventually(lambda: _seal_lock_held(database), "the sealer at work")
            sealing.join(timeout=0.3)
            assert sealing.is_alive(), "the sealer finished while an append below it was still open"
        sealing.join(timeout=30)
        assert not sealing.is_alive()
        eventually(lambda: unsealed_count(database) == 0, "both appends sealed")

        result = log.verify()
        assert (result.ok, result.count) == (True, 2), result.reason
        assert [r.actor_id for r in log.query()] == ["U0LATE", "U0EARLY"]
    finally:
        database.dispose()


def _seal_lock_held(database: Database) -> bool:
    with database.begin(readonly=True) as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock' "
                    "AND classid = ((hashtextextended(current_schema() || '/snapshot-bot audit seal', 0) >> 32) "
                    "& 4294967295)::oid"
                )
            ).scalar()
        )


@pytest.mark.postgres
def test_the_sealer_refuses_a_sealed_row_above_the_head(postgres_schema_url: str) -> None:
    database = Database(postgres_schema_url)
    database.upgrade()
    try:
        log = AuditLog(database, redactor=AUDIT_REDACTOR)
        log.append(entry(0))
        log.seal()
        with database.begin() as conn:  # an insert behind the bot's back, hashes made up, above the head
            forged = conn.execute(
                sa.text(
                    "INSERT INTO audit_events (created_at, actor_id, actor_name, action, outcome, details, "
                    "prev_hash, hash) VALUES (:at, 'U0MALLORY', '', 'list', 'ok', '{}', :h, :h) RETURNING id"
                ),
                {"at": utcnow(), "h": "ab" * 32},
            ).scalar()
        log.append(entry(1))
        with pytest.raises(SealRefused, match=r"above the chain head .* yet already sealed"):
            log.seal()
        assert unsealed_count(database) == 1  # nothing was sealed over it
        result = log.verify()
        assert (result.ok, result.first_bad_id) == (False, forged)
    finally:
        database.dispose()

"""The claims of reminders and escalations (storage.approval_reminders), on SQLite and PostgreSQL: each (request,
kind, number) is claimed once, whoever asks and however many at once; only pending, unexpired requests wait."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from storage.approval_reminders import ApprovalNudges, NudgeKind
from storage.db import Database
from tests.unit.storage.test_storage import _request

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def _add(db: Database, **overrides: object) -> int:
    with db.session() as session:
        row = _request(**overrides)
        session.add(row)
        session.flush()
        return int(row.id)


def _claim(db: Database, nudges: ApprovalNudges, rid: int, kind: NudgeKind, number: int, owner: str) -> bool:
    with db.session() as session:
        return nudges.claim_in(session, rid, kind, number, due_at=NOW, owner=owner, now=NOW)


def test_a_nudge_is_claimed_once_and_its_number_and_kind_are_separate(database: Database) -> None:
    nudges = ApprovalNudges(database)
    rid = _add(database)
    assert _claim(database, nudges, rid, NudgeKind.REMIND, 1, "a") is True
    assert _claim(database, nudges, rid, NudgeKind.REMIND, 1, "b") is False
    assert _claim(database, nudges, rid, NudgeKind.REMIND, 2, "b") is True
    assert _claim(database, nudges, rid, NudgeKind.ESCALATE, 1, "b") is True
    assert nudges.sent(rid) == {NudgeKind.REMIND: 2, NudgeKind.ESCALATE: 1}


def test_simultaneous_claims_let_exactly_one_through(database: Database) -> None:
    nudges = ApprovalNudges(database)
    rid = _add(database)
    gate = threading.Barrier(6)
    won: list[bool] = []
    lock = threading.Lock()

    def claim(owner: str) -> None:
        gate.wait(5)
        result = _claim(database, nudges, rid, NudgeKind.REMIND, 1, owner)
        with lock:
            won.append(result)

    threads = [threading.Thread(target=claim, args=(f"replica-{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == [False] * 5 + [True]


def test_a_lost_claim_leaves_the_callers_transaction_usable(database: Database) -> None:
    nudges = ApprovalNudges(database)
    rid = _add(database)
    other = _add(database)
    assert _claim(database, nudges, rid, NudgeKind.REMIND, 1, "a")
    with database.session() as session:
        assert not nudges.claim_in(session, rid, NudgeKind.REMIND, 1, due_at=NOW, owner="b", now=NOW)
        assert nudges.claim_in(session, other, NudgeKind.REMIND, 1, due_at=NOW, owner="b", now=NOW)
    assert nudges.sent(other)[NudgeKind.REMIND] == 1


def test_only_pending_unexpired_requests_old_enough_are_waiting(database: Database) -> None:
    nudges = ApprovalNudges(database)
    made = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    old = _add(database, created_at=made)
    _add(database, created_at=NOW - timedelta(minutes=1))  # too young
    _add(database, created_at=made, state="rejected")  # decided
    _add(database, created_at=made, expires_at=NOW - timedelta(seconds=1))  # past its window
    assert _claim(database, nudges, old, NudgeKind.REMIND, 1, "a")
    [waiting] = nudges.waiting(NOW - timedelta(minutes=15), NOW)
    assert (waiting.request_id, waiting.reminded, waiting.escalated) == (old, 1, 0)
    assert waiting.created_at == made

"""storage.checkpoints: a round with no checkpoint due does not walk the chain, and the walk that precedes
every signature still checks every event since the previous checkpoint (also those an earlier round saw)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from storage.audit import AuditEntry, AuditLog
from storage.checkpoints import CheckpointRefused, CheckpointStore
from storage.db import Database
from storage.signing import Signer
from tests.checkpoint_fixtures import EVERY, Clock


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(after_id, head_id) of every walk `create_due` makes."""
    seen: list[tuple[int, int]] = []
    real = CheckpointStore._plan

    def counting(conn: Any, after_id: int, head_id: int, *args: Any) -> Any:
        seen.append((after_id, head_id))
        return real(conn, after_id, head_id, *args)

    monkeypatch.setattr(CheckpointStore, "_plan", staticmethod(counting))
    return seen


def append(log: AuditLog, count: int) -> None:
    log.append_many(
        [AuditEntry(action="list", outcome="ok", actor_id="U0ALICE", details={"n": n}) for n in range(count)],
        batch_size=25,
    )


def tamper(db: Database, event_id: int) -> None:
    """Edit an event's actor without touching its hash (what a careless editor does)."""
    with db.begin() as conn:
        conn.exec_driver_sql(f"UPDATE audit_events SET actor_id = 'U0MALLORY' WHERE id = {event_id}")


def test_no_walk_while_no_checkpoint_can_be_due(
    database: Database, clock: Clock, key: Signer, walks: list[tuple[int, int]]
) -> None:
    log, store = AuditLog(database, clock=clock), CheckpointStore(database, clock=clock)
    append(log, 99)
    assert store.create_due(key, every=EVERY, minutes=None) == []
    assert store.create_due(key, every=EVERY, minutes=15) == []  # the oldest event is seconds old
    assert walks == []
    clock.now += timedelta(minutes=15)
    (made,) = store.create_due(key, every=EVERY, minutes=15)
    assert (made.reason, made.chain_length, walks) == ("time", 99, [(0, 99)])
    append(log, 1)  # the count boundary at 100 still falls on its event after a time checkpoint
    (made,) = store.create_due(key, every=EVERY, minutes=None)
    assert (made.reason, made.chain_length, walks[-1]) == ("count", 100, (99, 100))
    append(log, 99)  # 199 events: the boundary at 200 is not reached yet
    assert store.create_due(key, every=EVERY, minutes=None) == []
    assert len(walks) == 2
    append(log, 1)
    (made,) = store.create_due(key, every=EVERY, minutes=None)
    assert (made.reason, made.chain_length, walks[-1]) == ("count", 200, (100, 200))


def test_final_always_walks_what_is_not_covered(
    database: Database, clock: Clock, key: Signer, walks: list[tuple[int, int]]
) -> None:
    log, store = AuditLog(database, clock=clock), CheckpointStore(database, clock=clock)
    append(log, 5)
    (made,) = store.create_due(key, every=EVERY, minutes=None, final=True)
    assert (made.reason, made.chain_length, walks) == ("shutdown", 5, [(0, 5)])


def test_an_event_edited_after_an_earlier_round_walked_it_is_refused_before_signing(
    database: Database, clock: Clock, key: Signer
) -> None:
    log, store = AuditLog(database, clock=clock), CheckpointStore(database, clock=clock)
    append(log, 150)
    (first,) = store.create_due(key, every=EVERY, minutes=None)  # walks and checks events 1–150
    assert first.chain_length == 100
    tamper(database, 120)  # already checked, not yet in a checkpoint
    append(log, 40)  # 190: nothing due, nothing signed, the edit not seen yet
    assert store.create_due(key, every=EVERY, minutes=None) == []
    append(log, 10)  # 200: due; the walk re-checks 101–200 before signing
    with pytest.raises(CheckpointRefused, match="event 120 does not link"):
        store.create_due(key, every=EVERY, minutes=None)
    with pytest.raises(CheckpointRefused, match="event 120 does not link"):  # and every round after
        store.create_due(key, every=EVERY, minutes=None, final=True)
    assert [c.seq for c in store.after(0)] == [1]


def test_a_time_checkpoint_is_refused_too_when_an_uncovered_event_was_edited(
    database: Database, clock: Clock, key: Signer
) -> None:
    log, store = AuditLog(database, clock=clock), CheckpointStore(database, clock=clock)
    append(log, 30)
    assert store.create_due(key, every=EVERY, minutes=15) == []
    tamper(database, 7)
    clock.now += timedelta(minutes=15)
    with pytest.raises(CheckpointRefused, match="event 7 does not link"):
        store.create_due(key, every=EVERY, minutes=15)
    assert store.after(0) == []

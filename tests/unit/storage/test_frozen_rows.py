"""Repositories hand out frozen rows read inside their own transaction, never live ORM objects: a use case cannot
change a stored row by assigning an attribute, and nothing it holds reloads itself later."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from storage.approvals import ApprovalRequests, RequestKind, RequestRow, RequestState
from storage.db import Database
from storage.frozen import frozen
from storage.operations import Operation, OperationKind, TrackedOperations


def test_tracked_operations_are_frozen_rows(database: Database) -> None:
    operations = TrackedOperations(database)
    now = datetime.now(UTC)
    fields = {"server_id": 7, "server_name": "web-1", "snapshot_id": 801, "actor_id": "U0ALICE"}
    started = operations.insert_once(kind=OperationKind.CREATE, now=now, deadline=now + timedelta(hours=1), **fields)
    again = operations.insert_once(kind=OperationKind.CREATE, now=now, deadline=now + timedelta(hours=1), **fields)
    claimed = operations.claim("replica-a", now, timedelta(minutes=1), limit=10)
    found = [started, again, *claimed, operations.get(started.id), *operations.active()]
    assert all(type(row) is Operation for row in found)
    assert again == started and claimed[0].lease_owner == "replica-a"
    with pytest.raises(dataclasses.FrozenInstanceError):
        started.state = "done"  # type: ignore[misc]


def _add_request(session: Session, requests: ApprovalRequests, **overrides: object) -> RequestRow:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    fields: dict[str, object] = {
        "kind": RequestKind.RESTORE,
        "requester_id": "U0ALICE",
        "requester_name": "alice",
        "snapshot_id": 801,
        "snapshot_name": "nightly",
        "snapshot_status": "available",
        "server_id": 7,
        "server_name": "web-1",
        "approvals_required": 2,
        "created_at": now,
        "expires_at": now + timedelta(hours=1),
        "updated_at": now,
    }
    fields.update(overrides)
    return requests.add(session, **fields)


def test_approval_requests_hand_out_frozen_rows_with_their_approvers(database: Database) -> None:
    requests = ApprovalRequests(database)
    now = datetime.now(UTC)
    with database.session() as session:
        added = _add_request(session, requests)
        requests.votes.add(session, added.id, "U0BOB", "bob", now)
        touched = requests.touch(session, added.id, now)
    with database.session(readonly=True) as session:
        found = [requests.get(session, added.id), *requests.open(session), *requests.open_for_snapshot(session, 801)]
    assert all(type(row) is RequestRow for row in found)
    assert added.approvers == () and added.state is RequestState.PENDING and added.kind is RequestKind.RESTORE
    assert touched.approvers == ("U0BOB",) and all(row == touched for row in found)
    with pytest.raises(dataclasses.FrozenInstanceError):
        touched.state = RequestState.EXECUTED  # type: ignore[misc]


def test_a_change_hands_back_the_request_as_stored_after_it(database: Database) -> None:
    requests = ApprovalRequests(database)
    now = datetime.now(UTC)
    with database.session() as session:
        rid = _add_request(session, requests).id
        requests.votes.add(session, rid, "U0BOB", "bob", now)
        closed = requests.close(session, rid, RequestState.REJECTED, decided_by="U0BOB", now=now, reason="no")
        offered = requests.record_offer(session, rid, "full")
    with database.session(readonly=True) as session:
        stored = requests.get(session, rid)
    assert (closed.state, closed.decided_by, closed.reason, closed.approvers) == ("rejected", "U0BOB", "no", ("U0BOB",))
    assert offered.safety_offer == "full" and offered == stored


def test_a_lost_claim_keeps_nothing_of_the_callers_transaction(database: Database) -> None:
    """The compare-and-set lost: storage rolls back what the caller wrote before it (here a vote), lock and all."""
    requests = ApprovalRequests(database)
    now = datetime.now(UTC)
    with database.session() as session:
        rid = _add_request(session, requests).id
    for lose in (
        lambda session: requests.held_under_lock(session, rid, "not-the-token"),
        lambda session: requests.mark_sending(session, rid, "not-the-token", stale_after=timedelta(minutes=5), now=now),
        lambda session: requests.set_safety(session, rid, "not-the-token", safety_state="creating"),
    ):
        with database.session() as session:
            requests.votes.add(session, rid, "U0BOB", "bob", now)
            assert lose(session) in (None, False)
        with database.session(readonly=True) as session:
            assert requests.votes.approvers(session, rid) == ()


def test_a_won_step_keeps_what_the_caller_wrote(database: Database) -> None:
    """The contrast: with the claim held, the same vote stays (the rollback above is the loss's, not the call's)."""
    requests = ApprovalRequests(database)
    now = datetime.now(UTC)
    with database.session() as session:
        rid = _add_request(session, requests).id
        won = requests.start_executing(
            session, rid, decided_by="U0BOB", now=now, token="tok", claim_ttl=timedelta(minutes=5)
        )
    assert won
    with database.session() as session:
        requests.votes.add(session, rid, "U0BOB", "bob", now)
        held = requests.held_under_lock(session, rid, "tok")
        assert held is not None and held.state is RequestState.EXECUTING and held.claim_token == "tok"
    with database.session(readonly=True) as session:
        assert requests.votes.approvers(session, rid) == ("U0BOB",)


@dataclasses.dataclass(frozen=True)
class _Shape:
    name: str
    count: int
    on: bool
    state: RequestState
    maybe: str | None
    given: str = "default"


def test_the_one_converter_reads_null_columns_as_their_declared_types() -> None:
    """Rows written before a column had its default hold NULL: a `str` reads "", an `int` 0, a bool False."""
    source = SimpleNamespace(name=None, count=None, on=None, state="pending", maybe=None)
    assert frozen(_Shape, source) == _Shape("", 0, False, RequestState.PENDING, None)
    assert frozen(_Shape, source, name="n", given="g").given == "g"
    with pytest.raises(AttributeError, match="'count'"):
        frozen(_Shape, SimpleNamespace(name="n", on=True, state="pending", maybe=None))
    with pytest.raises(ValueError):
        frozen(_Shape, SimpleNamespace(name="n", count=1, on=True, state="no such state", maybe=None))

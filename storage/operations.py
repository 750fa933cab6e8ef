"""Tracked operations (snapshot creations and restores being followed to their end): every SQL statement.

Rules this repository keeps (bot/usecases/tracking.py decides what a poll found; this decides how it is written):
- One row per followed thing: a create is keyed by its snapshot, a restore by its approval request; inserting
  the same one twice returns the existing row.
- Each operation is leased to one replica at a time (`lease_owner` until `lease_expires_at`); `claim` takes the
  free, own or expired ones with `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas claiming at the same
  moment skip each other's rows instead of waiting (SQLite's write transaction is already exclusive).
- A change is written only through a compare-and-set: an ending only while the state is still `tracking`, a
  status change only while the status is still the one the poller saw. The caller's audit row joins the same
  transaction, so an ending is written (and announced) once.
- What it hands out is a frozen `Operation` read inside its own transaction, never a live ORM row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from storage.db import Database, rows_matched
from storage.frozen import frozen
from storage.models import TrackedOperation


class OperationKind(StrEnum):
    CREATE = "create"
    RESTORE = "restore"


class OperationState(StrEnum):
    TRACKING = "tracking"
    DONE = "done"
    FAILED = "failed"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Operation:
    """A tracked operation as stored (no ORM object leaves this module)."""

    id: int
    kind: OperationKind
    state: OperationState
    server_id: int
    server_name: str
    snapshot_id: int | None
    snapshot_name: str
    actor_id: str  # who started it: the creator, or the restore's requester
    team_id: str | None
    channel_id: str | None  # where the message to update (or thread under) lives
    message_ts: str | None
    request_id: int | None
    last_status: str
    started_at: datetime
    deadline: datetime
    lease_owner: str | None
    finished_at: datetime | None


def as_operation(row: TrackedOperation) -> Operation:
    return frozen(Operation, row)


class TrackedOperations:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert_once(self, *, kind: str, now: datetime, deadline: datetime, **fields: Any) -> Operation:
        """Start following one operation, or return the row already following it (a retried delivery)."""
        with self.db.session() as session:
            key = (
                TrackedOperation.request_id == fields["request_id"]
                if kind == OperationKind.RESTORE
                else TrackedOperation.snapshot_id == fields["snapshot_id"]
            )
            existing = session.scalars(
                select(TrackedOperation).where(TrackedOperation.kind == kind, key).limit(1)
            ).first()
            if existing is not None:
                return as_operation(existing)
            row = TrackedOperation(
                kind=kind, state=OperationState.TRACKING, started_at=now, deadline=deadline, **fields
            )
            session.add(row)
            session.flush()
            return as_operation(row)

    def claim(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Operation]:
        """Lease to `owner` every operation still tracked whose lease is free, its own, or expired."""
        with self.db.session() as session:
            stmt = (
                select(TrackedOperation)
                .where(
                    TrackedOperation.state == OperationState.TRACKING,
                    or_(
                        TrackedOperation.lease_owner.is_(None),
                        TrackedOperation.lease_owner == owner,
                        TrackedOperation.lease_expires_at.is_(None),
                        TrackedOperation.lease_expires_at <= now,
                    ),
                )
                .order_by(TrackedOperation.id)
                .limit(limit)
            )
            if self.db.dialect == "postgresql":
                # Rows another replica is claiming right now are skipped, not waited for.
                stmt = stmt.with_for_update(skip_locked=True)
            rows = session.scalars(stmt).all()
            for row in rows:
                row.lease_owner = owner
                row.lease_expires_at = now + lease
            session.flush()
            return [as_operation(row) for row in rows]

    def update_status(self, session: Session, operation_id: int, seen: str, status: str) -> bool:
        """Record a new API status, only if it is still tracked and still shows the status the poller saw."""
        return self._set(session, operation_id, {"last_status": status}, TrackedOperation.last_status == seen)

    def end(self, session: Session, operation_id: int, state: str, last_status: str, now: datetime) -> bool:
        """End the operation in `state`, only if it is still tracked (another replica may have ended it)."""
        values = {
            "state": state,
            "last_status": last_status,
            "finished_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        return self._set(session, operation_id, values)

    def _set(self, session: Session, operation_id: int, values: dict[str, Any], *where: Any) -> bool:
        won = session.execute(
            update(TrackedOperation)
            .where(TrackedOperation.id == operation_id, TrackedOperation.state == OperationState.TRACKING, *where)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return rows_matched(won) == 1

    def active(self, *, actor_id: str | None = None, limit: int = 50) -> list[Operation]:
        """Operations still tracked, newest first."""
        with self.db.session(readonly=True) as session:
            stmt = select(TrackedOperation).where(TrackedOperation.state == OperationState.TRACKING)
            if actor_id is not None:
                stmt = stmt.where(TrackedOperation.actor_id == actor_id)
            return [
                as_operation(row) for row in session.scalars(stmt.order_by(TrackedOperation.id.desc()).limit(limit))
            ]

    def of_request(self, request_id: int) -> Operation | None:
        """The restore followed for an approval request (the newest, should there ever be more than one)."""
        with self.db.session(readonly=True) as session:
            row = session.scalars(
                select(TrackedOperation)
                .where(TrackedOperation.request_id == request_id, TrackedOperation.kind == OperationKind.RESTORE)
                .order_by(TrackedOperation.id.desc())
                .limit(1)
            ).first()
            return as_operation(row) if row is not None else None

    def get(self, operation_id: int) -> Operation | None:
        with self.db.session(readonly=True) as session:
            row = session.get(TrackedOperation, operation_id)
            return as_operation(row) if row is not None else None

    def release(self, owner: str) -> int:
        """Give up `owner`'s leases (graceful shutdown), so another replica or a restart resumes at once."""
        with self.db.session() as session:
            return rows_matched(
                session.execute(
                    update(TrackedOperation)
                    .where(TrackedOperation.state == OperationState.TRACKING, TrackedOperation.lease_owner == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                    .execution_options(synchronize_session=False)
                )
            )

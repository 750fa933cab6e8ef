"""Snapshot schedules and their slot claims: every SQL statement about them.

Rules this repository keeps (bot/usecases/schedules.py and schedule_runner.py decide what to do; this decides how
it is written):
- A slot is claimed by inserting (schedule_id, slot_time) under a UNIQUE constraint. Whoever's insert commits
  runs the slot; everyone else — another replica ticking at the same moment, or this one after a restart — gets
  False and does nothing. A claim is never deleted, so a slot is never run twice.
- A slot's state moves only through compare-and-set (`advance`), so two replicas never both act on one step
  (e.g. both run retention after the same snapshot completed).
- Schedules are never deleted, only disabled: their claims keep proving which snapshots were theirs.
- A schedule's settings change only through a compare-and-set on its `revision` (`change`, `apply_approved`), so
  an approval bound to one revision never applies over a change made meanwhile, and is applied at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.approvals import OPEN_STATES
from storage.db import Database, as_utc, rows_matched
from storage.frozen import frozen
from storage.models import ApprovalRequest, Schedule, ScheduleSlot


class SlotState(StrEnum):
    CLAIMED = "claimed"  # the slot is taken; the snapshot is being asked for
    CREATED = "created"  # VPS.org accepted the snapshot; retention waits for it to complete
    RETAINING = "retaining"  # one replica is running retention after it completed
    KEPT = "kept"  # retention ran (the run is over)
    SKIPPED = "skipped"  # the server was full and on_full=skip (or nothing could be rotated)
    FAILED = "failed"  # the create failed, or the snapshot never completed


@dataclass(frozen=True)
class ScheduleRow:
    id: int
    server_id: int
    server_name: str
    when_spec: str
    keep: int
    on_full: str
    created_by: str
    channel_id: str | None
    created_at: datetime
    enabled: bool
    last_result: str
    last_run_at: datetime | None
    awaiting_approval: bool = False  # stored while its `schedule` request waits; never run until approved
    deletes_approved: bool = False  # its current settings were approved: retention deletes without a card each
    revision: int = 0
    applied_at: datetime | None = None  # when its current settings took effect (no earlier slot is run)


@dataclass(frozen=True)
class SlotRow:
    id: int
    schedule_id: int
    slot_time: datetime
    claimed_at: datetime
    state: str
    snapshot_id: int | None
    snapshot_name: str
    message: str


class Schedules:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- schedules -----------------------------------------------------------------------------------------
    def add(self, **fields: Any) -> ScheduleRow:
        with self.db.session() as session:
            return self.add_in(session, **fields)

    def add_in(self, session: Session, *, enabled: bool = True, **fields: Any) -> ScheduleRow:
        """Insert a schedule in the caller's transaction (`enabled=False, awaiting_approval=True`: a proposal)."""
        row = Schedule(enabled=enabled, last_result="", revision=0, **fields)
        session.add(row)
        session.flush()
        return _schedule(row)

    def get_in(self, session: Session, schedule_id: int) -> ScheduleRow | None:
        row = session.get(Schedule, schedule_id)
        return _schedule(row) if row is not None else None

    def listed(self) -> list[ScheduleRow]:
        """What `/snapshot schedules` shows: the enabled ones and those waiting for their approval."""
        with self.db.session(readonly=True) as session:
            stmt = select(Schedule).where(Schedule.enabled.is_(True) | Schedule.awaiting_approval.is_(True))
            return [_schedule(r) for r in session.scalars(stmt.order_by(Schedule.id)).all()]

    def change(self, schedule_id: int, revision: int, **settings: Any) -> ScheduleRow | None:
        """Compare-and-set an enabled schedule's settings at `revision`; the new row, or None (changed meanwhile)."""
        with self.db.session() as session:
            done = self._set_if(session, schedule_id, revision, Schedule.enabled.is_(True), **settings)
            return self.get_in(session, schedule_id) if done else None

    def apply_approved(self, session: Session, schedule_id: int, revision: int, *, new: bool, **settings: Any) -> bool:
        """In the approval's transaction: enable a proposed schedule (`new`), or change an enabled one, only while
        it is still at `revision`; its deletes are approved from then on. False: changed or removed meanwhile."""
        state = Schedule.awaiting_approval.is_(True) if new else Schedule.enabled.is_(True)
        extra = {"enabled": True, "awaiting_approval": False} if new else {}
        return self._set_if(session, schedule_id, revision, state, deletes_approved=True, **extra, **settings)

    def drop_proposal(self, session: Session, schedule_id: int) -> None:
        """A proposed schedule whose request closed unapproved: it stays off for good."""
        session.execute(
            update(Schedule)
            .where(Schedule.id == schedule_id, Schedule.awaiting_approval.is_(True))
            .values(awaiting_approval=False, enabled=False)
            .execution_options(synchronize_session=False)
        )

    def _set_if(self, session: Session, schedule_id: int, revision: int, state: Any, **values: Any) -> bool:
        done = rows_matched(
            session.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id, Schedule.revision == revision, state)
                .values(revision=Schedule.revision + 1, **values)
                .execution_options(synchronize_session=False)
            )
        )
        return done == 1

    def get(self, schedule_id: int) -> ScheduleRow | None:
        with self.db.session(readonly=True) as session:
            row = session.get(Schedule, schedule_id)
            return _schedule(row) if row is not None else None

    def enabled(self, *, server_id: int | None = None) -> list[ScheduleRow]:
        with self.db.session(readonly=True) as session:
            stmt = select(Schedule).where(Schedule.enabled.is_(True))
            if server_id is not None:
                stmt = stmt.where(Schedule.server_id == server_id)
            return [_schedule(r) for r in session.scalars(stmt.order_by(Schedule.id)).all()]

    def disable(self, schedule_id: int) -> bool:
        """Disable an enabled schedule; False when there is none (unknown, or already disabled)."""
        with self.db.session() as session:
            done = rows_matched(
                session.execute(
                    update(Schedule)
                    .where(Schedule.id == schedule_id, Schedule.enabled.is_(True))
                    .values(enabled=False)
                    .execution_options(synchronize_session=False)
                )
            )
            return done == 1

    def record_result(self, schedule_id: int, result: str, at: datetime) -> None:
        with self.db.session() as session:
            session.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id)
                .values(last_result=result[:1000], last_run_at=at)
                .execution_options(synchronize_session=False)
            )

    # ---- slots -----------------------------------------------------------------------------------------------
    def claim(self, schedule_id: int, slot_time: datetime, owner: str, now: datetime) -> SlotRow | None:
        """Insert the claim of one slot; None when it was already claimed (by anyone, ever)."""
        try:
            with self.db.session() as session:
                row = ScheduleSlot(
                    schedule_id=schedule_id,
                    slot_time=slot_time,
                    claimed_at=now,
                    claimed_by=owner[:64],
                    state=SlotState.CLAIMED,
                    snapshot_name="",
                    message="",
                )
                session.add(row)
                session.flush()
                return _slot(row)
        except IntegrityError:
            return None

    def latest_slot_time(self, schedule_id: int) -> datetime | None:
        with self.db.session(readonly=True) as session:
            return session.scalar(
                select(func.max(ScheduleSlot.slot_time)).where(ScheduleSlot.schedule_id == schedule_id)
            )

    def last_successes(self) -> dict[int, datetime]:
        """Each schedule's newest slot whose snapshot completed (retention ran, or is running): its slot time."""
        done = (SlotState.RETAINING, SlotState.KEPT)
        with self.db.session(readonly=True) as session:
            rows = session.execute(
                select(ScheduleSlot.schedule_id, func.max(ScheduleSlot.slot_time))
                .where(ScheduleSlot.state.in_(done))
                .group_by(ScheduleSlot.schedule_id)
            ).all()
        return {int(schedule_id): as_utc(slot_time) for schedule_id, slot_time in rows}

    def advance(self, slot_id: int, seen: str, state: str, **values: Any) -> bool:
        """Move a slot from `seen` to `state` (with `values`), only if it is still `seen`."""
        with self.db.session() as session:
            won = rows_matched(
                session.execute(
                    update(ScheduleSlot)
                    .where(ScheduleSlot.id == slot_id, ScheduleSlot.state == seen)
                    .values(state=state, **values)
                    .execution_options(synchronize_session=False)
                )
            )
            return won == 1

    def in_state(self, state: str, limit: int = 200) -> list[SlotRow]:
        with self.db.session(readonly=True) as session:
            stmt = select(ScheduleSlot).where(ScheduleSlot.state == state).order_by(ScheduleSlot.id).limit(limit)
            return [_slot(r) for r in session.scalars(stmt).all()]

    def own_snapshot_ids(self, schedule_id: int) -> frozenset[int]:
        """The snapshots this schedule's own claims created (retention deletes nothing else)."""
        with self.db.session(readonly=True) as session:
            ids = session.scalars(
                select(ScheduleSlot.snapshot_id).where(
                    ScheduleSlot.schedule_id == schedule_id, ScheduleSlot.snapshot_id.is_not(None)
                )
            ).all()
            return frozenset(int(i) for i in ids if i is not None)

    def snapshots_in_open_requests(self) -> frozenset[int]:
        """Snapshots an open approval request names (waiting, executing, or needing a check): never deleted."""
        with self.db.session(readonly=True) as session:
            ids = session.scalars(
                select(ApprovalRequest.snapshot_id)
                .where(ApprovalRequest.state.in_(OPEN_STATES), ApprovalRequest.kind != "schedule")
                .distinct()
            ).all()
            return frozenset(int(i) for i in ids)

    def slots(self, schedule_id: int) -> Sequence[SlotRow]:
        with self.db.session(readonly=True) as session:
            stmt = select(ScheduleSlot).where(ScheduleSlot.schedule_id == schedule_id).order_by(ScheduleSlot.id)
            return [_slot(r) for r in session.scalars(stmt).all()]


def _schedule(row: Schedule) -> ScheduleRow:
    return frozen(ScheduleRow, row)


def _slot(row: ScheduleSlot) -> SlotRow:
    return frozen(SlotRow, row)

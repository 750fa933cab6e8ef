"""People's authenticators for the TOTP step-up: the `mfa_enrolments` rows (storage.models.MfaEnrolment).

Rules kept here:
- Only a sealed secret is ever stored (the caller seals it with a key kept outside the database); this module
  never sees a secret in the clear, nor a code.
- Every change is made inside the caller's transaction, on the row read with `locked(...)` first (FOR UPDATE on
  PostgreSQL; SQLite's write transactions hold the database's lock), so two replicas checking a code for the same
  person take turns: a code is accepted for one time step once, and wrong codes are counted exactly.
- Rows leave this module as frozen `MfaRow`s, with their times in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.db import as_utc, rows_matched
from storage.models import MfaEnrolment

table = MfaEnrolment.__table__


class MfaState(StrEnum):
    PENDING = "pending"  # enrolled, not yet proven with a code
    CONFIRMED = "confirmed"  # proven with a code, waiting for an admin's approval
    ACTIVE = "active"  # approved: its codes approve requests


@dataclass(frozen=True)
class MfaRow:
    user_id: str
    sealed_secret: str
    state: MfaState
    created_at: datetime
    confirmed_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    last_step: int
    failures: int
    locked_until: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _row(item: MfaEnrolment) -> MfaRow:
    return MfaRow(
        user_id=item.user_id,
        sealed_secret=item.sealed_secret,
        state=MfaState(item.state),
        created_at=as_utc(item.created_at),
        confirmed_at=_utc(item.confirmed_at),
        approved_by=item.approved_by,
        approved_at=_utc(item.approved_at),
        last_step=int(item.last_step or 0),
        failures=int(item.failures or 0),
        locked_until=_utc(item.locked_until),
    )


class MfaEnrolments:
    def locked(self, session: Session, user_id: str) -> MfaRow | None:
        """The person's row, locked for the rest of the caller's transaction (None when not enrolled)."""
        item = session.scalars(
            select(MfaEnrolment).where(MfaEnrolment.user_id == user_id).with_for_update()
        ).one_or_none()
        return _row(item) if item is not None else None

    def read(self, session: Session, user_id: str) -> MfaRow | None:
        item = session.get(MfaEnrolment, user_id)
        return _row(item) if item is not None else None

    def waiting_for_approval(self, session: Session) -> list[MfaRow]:
        items = session.scalars(
            select(MfaEnrolment).where(MfaEnrolment.state == MfaState.CONFIRMED).order_by(MfaEnrolment.confirmed_at)
        ).all()
        return [_row(item) for item in items]

    def start(self, session: Session, user_id: str, sealed_secret: str, now: datetime) -> None:
        """A new enrolment (replacing one never approved); its failures and lock carry over."""
        before = self.locked(session, user_id)
        session.execute(delete(table).where(table.c.user_id == user_id))
        session.execute(
            table.insert().values(
                user_id=user_id,
                sealed_secret=sealed_secret,
                state=MfaState.PENDING,
                created_at=now,
                last_step=0,
                failures=before.failures if before else 0,
                locked_until=before.locked_until if before else None,
            )
        )

    def confirm(self, session: Session, user_id: str, step: int, now: datetime) -> None:
        session.execute(
            update(table)
            .where(table.c.user_id == user_id)
            .values(state=MfaState.CONFIRMED, confirmed_at=now, last_step=step, failures=0, locked_until=None)
        )

    def activate(self, session: Session, user_id: str, approved_by: str, now: datetime) -> None:
        session.execute(
            update(table)
            .where(table.c.user_id == user_id)
            .values(state=MfaState.ACTIVE, approved_by=approved_by, approved_at=now)
        )

    def accept(self, session: Session, user_id: str, step: int) -> None:
        """A code was right for `step`: no code of this step or an earlier one is accepted again."""
        session.execute(
            update(table).where(table.c.user_id == user_id).values(last_step=step, failures=0, locked_until=None)
        )

    def count_failure(
        self, session: Session, user_id: str, *, lock_after: int, locked_until: datetime
    ) -> tuple[int, datetime | None]:
        """One more wrong code; at `lock_after` of them the person is locked until `locked_until` and the count
        starts again. Returns (wrong codes counted now, the lock's end or None)."""
        row = self.locked(session, user_id)
        if row is None:
            return 0, None
        failures = row.failures + 1
        if failures >= lock_after:
            session.execute(
                update(table).where(table.c.user_id == user_id).values(failures=0, locked_until=locked_until)
            )
            return failures, locked_until
        session.execute(update(table).where(table.c.user_id == user_id).values(failures=failures))
        return failures, None

    def remove(self, session: Session, user_id: str) -> bool:
        return rows_matched(session.execute(delete(table).where(table.c.user_id == user_id))) > 0

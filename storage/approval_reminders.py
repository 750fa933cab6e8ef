"""Reminders and escalation of waiting approval requests: their claims, and every SQL statement about them.

Rules this repository keeps (bot/usecases/approval_reminders.py decides what is due and what to say):
- A nudge is claimed by inserting (request_id, kind, number) under a UNIQUE constraint, inside the caller's
  transaction that holds the request's row lock. Whoever's insert commits sends it; everyone else — another
  replica on the same tick, or this one after a restart — gets False and sends nothing. A claim is never deleted,
  so a nudge is never sent twice.
- The insert runs in a savepoint, so a conflict (the constraint as the last word) leaves the caller's transaction
  usable and is answered False, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.approval_states import RequestState
from storage.db import Database, as_utc
from storage.models import ApprovalNudge, ApprovalRequest


class NudgeKind(StrEnum):
    REMIND = "remind"  # a reply in the card's thread to the approvers who have not acted
    ESCALATE = "escalate"  # once: APPROVAL_ESCALATE_TO mentioned in the thread and told by direct message


@dataclass(frozen=True)
class WaitingRequest:
    """A pending request old enough to be nudged, with the highest number of each kind already claimed."""

    request_id: int
    created_at: datetime
    expires_at: datetime
    reminded: int
    escalated: int


class ApprovalNudges:
    def __init__(self, db: Database) -> None:
        self.db = db

    def waiting(self, created_before: datetime, now: datetime, limit: int = 200) -> list[WaitingRequest]:
        """Pending requests created at or before `created_before` and not expired at `now`, oldest first."""
        with self.db.session(readonly=True) as session:
            rows = session.execute(
                select(ApprovalRequest.id, ApprovalRequest.created_at, ApprovalRequest.expires_at)
                .where(
                    ApprovalRequest.state == RequestState.PENDING,
                    ApprovalRequest.created_at <= created_before,
                    ApprovalRequest.expires_at > now,
                )
                .order_by(ApprovalRequest.created_at)
                .limit(limit)
            ).all()
            claimed = self._claimed(session, [row.id for row in rows])
            return [
                WaitingRequest(
                    request_id=row.id,
                    created_at=as_utc(row.created_at),
                    expires_at=as_utc(row.expires_at),
                    reminded=claimed.get((row.id, NudgeKind.REMIND), 0),
                    escalated=claimed.get((row.id, NudgeKind.ESCALATE), 0),
                )
                for row in rows
            ]

    def claim_in(
        self,
        session: Session,
        request_id: int,
        kind: NudgeKind,
        number: int,
        *,
        due_at: datetime,
        owner: str,
        now: datetime,
    ) -> bool:
        """Claim the `number`-th nudge of `kind` for the request; False when anyone ever claimed it."""
        already = session.scalar(
            select(ApprovalNudge.id).where(
                ApprovalNudge.request_id == request_id, ApprovalNudge.kind == kind, ApprovalNudge.number == number
            )
        )
        if already is not None:
            return False
        try:
            with session.begin_nested():
                session.add(
                    ApprovalNudge(
                        request_id=request_id,
                        kind=kind,
                        number=number,
                        due_at=due_at,
                        claimed_at=now,
                        claimed_by=owner[:64],
                    )
                )
        except IntegrityError:
            return False
        return True

    def sent(self, request_id: int) -> dict[NudgeKind, int]:
        """How many nudges of each kind were claimed for a request (for tests and the operator's questions)."""
        with self.db.session(readonly=True) as session:
            claimed = self._claimed(session, [request_id])
            return {kind: claimed.get((request_id, kind), 0) for kind in NudgeKind}

    @staticmethod
    def _claimed(session: Session, request_ids: list[int]) -> dict[tuple[int, str], int]:
        if not request_ids:
            return {}
        rows = session.execute(
            select(ApprovalNudge.request_id, ApprovalNudge.kind, func.max(ApprovalNudge.number))
            .where(ApprovalNudge.request_id.in_(request_ids))
            .group_by(ApprovalNudge.request_id, ApprovalNudge.kind)
        ).all()
        return {(rid, kind): int(top) for rid, kind, top in rows}

"""The votes on approval requests: who approved, and what each approver chose about the safety snapshot.

Rules kept here: a vote is added in the caller's transaction, with the request row locked by the caller (so one
approver votes once, counted exactly); the votes of an attempt are cleared when it goes back to `pending` (its
votes were spent); a list of requests reads its approvers in one query, never one per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.models import ApprovalVote


class ApprovalVotes:
    def approvers_of(self, session: Session, request_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """`approvers` of many requests in one query (a list of requests must not cost a query per row)."""
        found: dict[int, list[str]] = {request_id: [] for request_id in request_ids}
        if request_ids:
            rows = session.execute(
                select(ApprovalVote.request_id, ApprovalVote.approver_id)
                .where(ApprovalVote.request_id.in_(list(request_ids)))
                .order_by(ApprovalVote.id)
            ).all()
            for request_id, approver_id in rows:
                found[request_id].append(approver_id)
        return {request_id: tuple(ids) for request_id, ids in found.items()}

    def approvers(self, session: Session, request_id: int) -> tuple[str, ...]:
        return tuple(
            session.scalars(
                select(ApprovalVote.approver_id).where(ApprovalVote.request_id == request_id).order_by(ApprovalVote.id)
            ).all()
        )

    def cast_by(self, session: Session, request_id: int, approver_id: str) -> bool:
        already = session.scalar(
            select(ApprovalVote.id).where(
                ApprovalVote.request_id == request_id, ApprovalVote.approver_id == approver_id
            )
        )
        return already is not None

    def add(
        self,
        session: Session,
        request_id: int,
        approver_id: str,
        approver_name: str,
        now: datetime,
        safety_choice: str = "",
    ) -> int:
        """Record one vote (with its approver's safety-snapshot choice); returns how many the request has now."""
        session.add(
            ApprovalVote(
                request_id=request_id,
                approver_id=approver_id,
                approver_name=approver_name,
                created_at=now,
                safety_choice=safety_choice,
            )
        )
        session.flush()
        return session.scalar(select(func.count()).where(ApprovalVote.request_id == request_id)) or 0

    def choices(self, session: Session, request_id: int) -> list[str]:
        """The safety-snapshot choices of the request's current votes, oldest first."""
        return list(
            session.scalars(
                select(ApprovalVote.safety_choice)
                .where(ApprovalVote.request_id == request_id)
                .order_by(ApprovalVote.id)
            ).all()
        )

    def clear(self, session: Session, request_id: int) -> None:
        session.execute(delete(ApprovalVote).where(ApprovalVote.request_id == request_id))

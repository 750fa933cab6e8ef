"""Approval requests and their votes: every SQL statement the two-person rule needs.

Rules this repository keeps (the use cases in bot/usecases/approval_*.py decide *when*; this decides *how*):
- A request is read for a decision only under its row lock (`locked`): SELECT … FOR UPDATE on PostgreSQL; SQLite's
  write transaction is already exclusive.
- A request leaves `pending` only through a compare-and-set on its state (`start_executing`); the winner's claim
  is a fencing token plus a deadline computed by the DATABASE's clock (`Database.clock`), never a replica's.
- Every step of an executor (`renew`, `mark_sending`, `held`) matches its token AND an unexpired claim, so an
  executor whose claim lapsed or was taken over changes nothing.
- An outcome settles a request only while it is `sending` (or already flagged `needs_check`) under the same token.
Methods that take a `session` join the caller's transaction (its audit row commits with the state change);
the others open their own. Rows are returned as ORM objects to the use case that holds the session only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from storage.approval_states import CLAIMED_STATES, OPEN_STATES, RequestKind, RequestState
from storage.approval_votes import ApprovalVotes
from storage.db import Database
from storage.models import ApprovalRequest, TrackedOperation
from storage.operations import OperationKind, OperationState

__all__ = ["CLAIMED_STATES", "OPEN_STATES", "ApprovalRequests", "RequestKind", "RequestState"]


def changed(result: Result[Any]) -> int:
    """How many rows an UPDATE changed (the compare-and-set's verdict)."""
    return int(cast("CursorResult[Any]", result).rowcount)


class ApprovalRequests:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.votes = ApprovalVotes()

    # ---- reading -------------------------------------------------------------------------------------------
    def locked(self, session: Session, request_id: int) -> ApprovalRequest | None:
        return session.scalars(
            select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
        ).one_or_none()

    def get(self, session: Session, request_id: int) -> ApprovalRequest | None:
        return session.get(ApprovalRequest, request_id)

    def open(self, session: Session, limit: int = 100) -> Sequence[ApprovalRequest]:
        return session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.state.in_(OPEN_STATES))
            .order_by(ApprovalRequest.created_at.desc())
            .limit(limit)
        ).all()

    def snapshots_named_by_open_requests(self, session: Session, server_id: int) -> set[int]:
        """The snapshot ids every open request on this server names, however many there are (no page size)."""
        return set(
            session.scalars(
                select(ApprovalRequest.snapshot_id).where(
                    ApprovalRequest.server_id == server_id, ApprovalRequest.state.in_(OPEN_STATES)
                )
            ).all()
        )

    def open_for_snapshot(self, session: Session, snapshot_id: int, limit: int = 20) -> Sequence[ApprovalRequest]:
        """Open requests (any kind) about one snapshot, oldest first: what deleting it would leave behind."""
        return session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.snapshot_id == snapshot_id, ApprovalRequest.state.in_(OPEN_STATES))
            .order_by(ApprovalRequest.created_at, ApprovalRequest.id)
            .limit(limit)
        ).all()

    def open_for_schedule(self, session: Session, schedule_id: int) -> ApprovalRequest | None:
        """The waiting or claimed `schedule` request about this schedule, if any (one at a time per schedule)."""
        return session.scalars(
            select(ApprovalRequest)
            .where(
                ApprovalRequest.kind == RequestKind.SCHEDULE,
                ApprovalRequest.schedule_id == schedule_id,
                ApprovalRequest.state.in_((RequestState.PENDING, *CLAIMED_STATES)),
            )
            .order_by(ApprovalRequest.id.desc())
            .limit(1)
        ).first()

    def in_the_way(
        self, session: Session, *, kind: str, server_id: int, snapshot_id: int, exclude_id: int | None = None
    ) -> Sequence[ApprovalRequest]:
        """Requests a new one of `kind` on this snapshot (and, for a restore, this server) would collide with, newest
        first.

        Waiting or claimed requests of the same kind on the same snapshot (a delete may be asked while a restore of
        the snapshot waits: its confirmation warns, and the delete closes that request); for a restore also waiting or
        claimed restores of the same server, and executed restores of it that are still being followed (the server is
        being restored). Run it after `AuditLog.lock_chain` in the transaction that adds the new request, so two
        requests asked at once cannot both miss each other.
        """
        still_restoring = and_(
            ApprovalRequest.state == RequestState.EXECUTED,
            exists().where(
                TrackedOperation.request_id == ApprovalRequest.id,
                TrackedOperation.kind == OperationKind.RESTORE,
                TrackedOperation.state == OperationState.TRACKING,
            ),
        )
        # `needs_check` is left out: nothing in the bot closes it, so it would block the server for good; a restore
        # it may have started shows as `restoring` in VPS.org's server list instead.
        waiting = (RequestState.PENDING, *CLAIMED_STATES)
        same_snapshot = and_(
            ApprovalRequest.kind == kind,
            ApprovalRequest.snapshot_id == snapshot_id,
            ApprovalRequest.state.in_(waiting),
        )
        matches = [same_snapshot]
        if kind == RequestKind.RESTORE:
            matches.append(
                and_(
                    ApprovalRequest.kind == RequestKind.RESTORE,
                    ApprovalRequest.server_id == server_id,
                    or_(ApprovalRequest.state.in_(waiting), still_restoring),
                )
            )
        stmt = select(ApprovalRequest).where(or_(*matches))
        if exclude_id is not None:
            stmt = stmt.where(ApprovalRequest.id != exclude_id)
        return session.scalars(stmt.order_by(ApprovalRequest.id.desc()).limit(5)).all()

    def pending_restores_waiting_for_a_slot(self, session: Session, server_id: int) -> list[int]:
        """Ids of pending restores of this server whose card says it is full (no slot for a safety snapshot)."""
        return list(
            session.scalars(
                select(ApprovalRequest.id)
                .where(
                    ApprovalRequest.kind == RequestKind.RESTORE,
                    ApprovalRequest.server_id == server_id,
                    ApprovalRequest.state == RequestState.PENDING,
                    ApprovalRequest.safety_offer == "full",
                )
                .order_by(ApprovalRequest.id)
                .limit(20)
            ).all()
        )

    def count_open(self, session: Session) -> dict[str, int]:
        """Requests per open state, one grouped count; states with none are 0."""
        rows = session.execute(
            select(ApprovalRequest.state, func.count())
            .where(ApprovalRequest.state.in_(OPEN_STATES))
            .group_by(ApprovalRequest.state)
        ).all()
        counts = {str(state): 0 for state in OPEN_STATES}
        counts.update({str(state): int(n) for state, n in rows})
        return counts

    def pending_due(self, now: datetime) -> list[int]:
        """Ids of pending requests whose approval window has passed (re-checked under the lock by the caller)."""
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(ApprovalRequest.id).where(
                        ApprovalRequest.state == RequestState.PENDING, ApprovalRequest.expires_at <= now
                    )
                ).all()
            )

    # ---- writing -------------------------------------------------------------------------------------------
    def add(self, session: Session, **fields: Any) -> ApprovalRequest:
        row = ApprovalRequest(state=RequestState.PENDING, **fields)
        session.add(row)
        session.flush()
        return row

    def attach_card(self, request_id: int, channel: str, ts: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(ApprovalRequest).where(ApprovalRequest.id == request_id).values(card_channel=channel, card_ts=ts)
            )

    # ---- state changes on a row the caller holds (under its lock, in its transaction) -----------------------
    def close(self, row: ApprovalRequest, state: str, *, decided_by: str, now: datetime, reason: str) -> None:
        """A decision that ends the request without a call: rejected, cancelled, expired."""
        row.state = state
        row.decided_by = decided_by
        row.decided_at = now
        row.reason = reason
        row.updated_at = now

    def back_to_pending(self, session: Session, row: ApprovalRequest, message: str, now: datetime) -> None:
        """Nothing was sent: release the claim and spend the votes (approving again is a fresh decision)."""
        row.state = RequestState.PENDING
        row.claim_token = None
        row.claim_expires_at = None
        row.decided_by = None
        row.decided_at = None
        row.result_message = message
        row.updated_at = now
        self.votes.clear(session, row.id)

    def end_unsent(self, row: ApprovalRequest, state: str, message: str, now: datetime) -> None:
        """Closed by its executor without a call (`failed` or `stale`)."""
        row.state = state
        row.result_message = message[:2000]
        row.claim_expires_at = None
        row.updated_at = now

    def flag_needs_check(self, row: ApprovalRequest, message: str, now: datetime) -> None:
        """The call may have gone out and nobody recorded its answer: a human must check; never re-sent."""
        row.state = RequestState.NEEDS_CHECK
        row.updated_at = now
        row.result_message = message
        row.claim_expires_at = None

    def set_offer(self, row: ApprovalRequest, offer: str) -> None:
        """What a pending restore's card offers about the safety snapshot, re-checked (the row locked by the caller)."""
        row.safety_offer = offer

    def touch(self, row: ApprovalRequest, now: datetime) -> None:
        row.updated_at = now

    # ---- the claim -----------------------------------------------------------------------------------------
    def start_executing(
        self,
        session: Session,
        request_id: int,
        *,
        decided_by: str,
        now: datetime,
        token: str,
        claim_ttl: timedelta,
        safety_choice: str = "",
    ) -> bool:
        """The compare-and-set `pending` → `executing` that makes execution happen at most once; True if won.

        `safety_choice` records what the approver chose about the safety snapshot ("snapshot" | "none")."""
        won = changed(
            session.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == request_id, ApprovalRequest.state == RequestState.PENDING)
                .values(
                    state=RequestState.EXECUTING,
                    decided_by=decided_by,
                    decided_at=now,
                    updated_at=now,
                    claim_token=token,
                    claim_expires_at=self.db.clock.now(claim_ttl),
                    result_message="",
                    safety_choice=safety_choice,
                )
                .execution_options(synchronize_session=False)
            )
        )
        return won == 1

    def _held(self, request_id: int, token: str, state: str) -> tuple[Any, ...]:
        return (
            ApprovalRequest.id == request_id,
            ApprovalRequest.state == state,
            ApprovalRequest.claim_token == token,
            ApprovalRequest.claim_expires_at > self.db.clock.now(),
        )

    def held(self, session: Session, request_id: int, token: str) -> ApprovalRequest | None:
        """The request, if it is still `executing` under this token's unexpired claim (else None)."""
        return session.scalars(
            select(ApprovalRequest).where(*self._held(request_id, token, RequestState.EXECUTING))
        ).first()

    def renew(self, request_id: int, token: str, claim_ttl: timedelta) -> bool:
        """Extend the claim (database clock) while it is still held; False: it lapsed or was taken over."""
        with self.db.session() as session:
            renewed = changed(
                session.execute(
                    update(ApprovalRequest)
                    .where(*self._held(request_id, token, RequestState.EXECUTING))
                    .values(claim_expires_at=self.db.clock.now(claim_ttl))
                    .execution_options(synchronize_session=False)
                )
            )
        return renewed == 1

    def set_safety(self, session: Session, request_id: int, token: str, **values: Any) -> bool:
        """Record a step of the safety snapshot while this token's claim is unexpired (`executing`); False if lost."""
        allowed = {"safety_state", "safety_snapshot_id"}
        assert set(values) <= allowed, values
        won = changed(
            session.execute(
                update(ApprovalRequest)
                .where(*self._held(request_id, token, RequestState.EXECUTING))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        )
        return won == 1

    def record_safety_outcome(self, session: Session, request_id: int, token: str, **values: Any) -> None:
        """What VPS.org answered to the safety create, under this token even if its claim lapsed meanwhile (the
        answer is a fact about VPS.org; it never makes the request sendable: that needs `set_safety`). A request
        the flagger put back to `pending` meanwhile still learns it, unless another attempt has started since."""
        allowed = {"safety_state", "safety_snapshot_id"}
        assert set(values) <= allowed, values
        released = (
            ApprovalRequest.claim_token.is_(None)
            & (ApprovalRequest.state == RequestState.PENDING)
            & (ApprovalRequest.safety_state == "creating")
        )
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request_id, (ApprovalRequest.claim_token == token) | released)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def mark_sending(
        self, session: Session, request_id: int, token: str, *, stale_after: timedelta, now: datetime
    ) -> bool:
        """The check-and-mark before any call: `executing` → `sending` only while this token's claim is unexpired."""
        won = changed(
            session.execute(
                update(ApprovalRequest)
                .where(*self._held(request_id, token, RequestState.EXECUTING))
                .values(state=RequestState.SENDING, claim_expires_at=self.db.clock.now(stale_after), updated_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        return won == 1

    def settle(self, session: Session, request_id: int, token: str, state: str, message: str, now: datetime) -> None:
        """The final state after VPS.org answered: only while `sending` (or flagged since) under this token."""
        session.execute(
            update(ApprovalRequest)
            .where(
                ApprovalRequest.id == request_id,
                ApprovalRequest.claim_token == token,
                ApprovalRequest.state.in_((RequestState.SENDING, RequestState.NEEDS_CHECK)),
            )
            .values(state=state, result_message=message[:2000], claim_expires_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    def flag_unrecorded(self, request_id: int, token: str, message: str, now: datetime) -> None:
        """Last resort when the outcome could not be written: `needs_check` (own transaction), never `sending`."""
        with self.db.session() as session:
            session.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == request_id, ApprovalRequest.claim_token == token)
                .values(
                    state=RequestState.NEEDS_CHECK, result_message=message[:2000], claim_expires_at=None, updated_at=now
                )
                .execution_options(synchronize_session=False)
            )

    # ---- stale claims (the flagger and the recovery sweep) -------------------------------------------------
    def _stale(self, legacy_before: datetime) -> Any:
        expired = ApprovalRequest.claim_expires_at <= self.db.clock.now()
        legacy = (
            (ApprovalRequest.state == RequestState.EXECUTING)
            & ApprovalRequest.claim_expires_at.is_(None)
            & (ApprovalRequest.updated_at <= legacy_before)
        )
        return (ApprovalRequest.state.in_(CLAIMED_STATES) & expired) | legacy

    def stale_claims(self, legacy_before: datetime) -> list[int]:
        """Requests whose executor's claim expired by the database's clock (or, before claims existed, rows left
        `executing` since `legacy_before`)."""
        with self.db.session() as session:
            return list(session.scalars(select(ApprovalRequest.id).where(self._stale(legacy_before))).all())

    def stale_claim(self, session: Session, request_id: int, legacy_before: datetime) -> ApprovalRequest | None:
        """Re-read one under the caller's lock: the executor may have finished, or renewed, meanwhile."""
        return session.scalars(
            select(ApprovalRequest).where(ApprovalRequest.id == request_id, self._stale(legacy_before))
        ).first()

    def is_claimed(self, session: Session, request_id: int) -> bool:
        """Still under an executor's claim: its expiry, not the recovery sweep, decides when it is flagged."""
        held = (
            select(ApprovalRequest.id)
            .where(ApprovalRequest.id == request_id)
            .where(ApprovalRequest.state.in_(CLAIMED_STATES))
            .where(ApprovalRequest.claim_token.is_not(None))
        )
        return session.execute(held).first() is not None

    def flag_executing(self, session: Session, request_id: int, message: str, now: datetime) -> None:
        """A request left `executing` by a crash becomes `needs_check` (flagged, never re-sent)."""
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request_id, ApprovalRequest.state == RequestState.EXECUTING)
            .values(state=RequestState.NEEDS_CHECK, result_message=message, updated_at=now)
            .execution_options(synchronize_session=False)
        )

"""Approval requests and their votes: every SQL statement the two-person rule needs.

Rules this repository keeps (the use cases in bot/usecases/approval_*.py decide *when*; this decides *how*):
- A request is read for a decision only under its row lock (`locked`): SELECT … FOR UPDATE on PostgreSQL; SQLite's
  write transaction is already exclusive.
- A request leaves `pending` only through a compare-and-set on its state (`start_executing`); the winner's claim
  is a fencing token plus a deadline computed by the DATABASE's clock (`Database.clock`), never a replica's.
- Every step of an executor (`renew`, `mark_sending`, `held`) matches its token AND an unexpired claim, so an
  executor whose claim lapsed or was taken over changes nothing.
- An outcome settles a request only while it is `sending` (or already flagged `needs_check`) under the same token.
- This repository owns the unit of work inside the caller's transaction: a change is written (flushed) before the
  method returns, and the row it hands back is read again after it (a `RequestRow`, frozen: storage.approval_rows);
  a step that loses its compare-and-set (`held_under_lock`, `mark_sending`, `set_safety`) rolls the caller's
  transaction back itself, so nothing of it is kept and the row lock goes at once. No ORM row leaves storage.
Methods that take a `session` join the caller's transaction (its audit row commits with the state change);
the others open their own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.approval_collisions import in_the_way_of
from storage.approval_rows import RequestRow, read_row, read_rows
from storage.approval_states import CLAIMED_STATES, OPEN_STATES, RequestKind, RequestState
from storage.approval_votes import ApprovalVotes
from storage.db import Database, rows_matched
from storage.models import ApprovalRequest

__all__ = ["CLAIMED_STATES", "OPEN_STATES", "ApprovalRequests", "RequestKind", "RequestRow", "RequestState"]


class ApprovalRequests:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.votes = ApprovalVotes()

    # ---- reading -------------------------------------------------------------------------------------------
    def locked(self, session: Session, request_id: int) -> RequestRow | None:
        """The request under its row lock (for the rest of the caller's transaction)."""
        return read_row(session, select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update())

    def get(self, session: Session, request_id: int) -> RequestRow | None:
        return read_row(session, select(ApprovalRequest).where(ApprovalRequest.id == request_id))

    def open(self, session: Session, limit: int = 100) -> list[RequestRow]:
        return read_rows(
            session,
            select(ApprovalRequest)
            .where(ApprovalRequest.state.in_(OPEN_STATES))
            .order_by(ApprovalRequest.created_at.desc())
            .limit(limit),
        )

    def snapshots_named_by_open_requests(self, session: Session, server_id: int) -> set[int]:
        """The snapshot ids every open request on this server names, however many there are (no page size)."""
        return set(
            session.scalars(
                select(ApprovalRequest.snapshot_id).where(
                    ApprovalRequest.server_id == server_id, ApprovalRequest.state.in_(OPEN_STATES)
                )
            ).all()
        )

    def open_for_snapshot(self, session: Session, snapshot_id: int, limit: int = 20) -> list[RequestRow]:
        """Open requests (any kind) about one snapshot, oldest first: what deleting it would leave behind."""
        return read_rows(
            session,
            select(ApprovalRequest)
            .where(ApprovalRequest.snapshot_id == snapshot_id, ApprovalRequest.state.in_(OPEN_STATES))
            .order_by(ApprovalRequest.created_at, ApprovalRequest.id)
            .limit(limit),
        )

    def open_for_schedule(self, session: Session, schedule_id: int) -> RequestRow | None:
        """The waiting or claimed `schedule` request about this schedule, if any (one at a time per schedule)."""
        return read_row(
            session,
            select(ApprovalRequest)
            .where(
                ApprovalRequest.kind == RequestKind.SCHEDULE,
                ApprovalRequest.schedule_id == schedule_id,
                ApprovalRequest.state.in_((RequestState.PENDING, *CLAIMED_STATES)),
            )
            .order_by(ApprovalRequest.id.desc()),
        )

    def in_the_way(
        self, session: Session, *, kind: str, server_id: int, snapshot_id: int, exclude_id: int | None = None
    ) -> list[RequestRow]:
        """Requests a new one would collide with (storage.approval_collisions), newest first. Run it after
        `AuditLog.lock_chain` in the transaction that adds the new request, so two asked at once see each other.
        (A delete may be asked while a restore of the snapshot waits: its confirmation warns, and the delete closes
        that request.)"""
        stmt = in_the_way_of(kind, server_id, snapshot_id)
        if exclude_id is not None:
            stmt = stmt.where(ApprovalRequest.id != exclude_id)
        return read_rows(session, stmt.order_by(ApprovalRequest.id.desc()).limit(5))

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
    def add(self, session: Session, **fields: Any) -> RequestRow:
        row = ApprovalRequest(state=RequestState.PENDING, **fields)
        session.add(row)
        session.flush()
        return self._reread(session, row.id)

    def attach_card(self, request_id: int, channel: str, ts: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(ApprovalRequest).where(ApprovalRequest.id == request_id).values(card_channel=channel, card_ts=ts)
            )

    # ---- state changes of a request the caller holds (under its lock, in its transaction) -------------------
    # Each writes the change and hands back the request as it is now.
    def close(
        self, session: Session, request_id: int, state: str, *, decided_by: str, now: datetime, reason: str
    ) -> RequestRow:
        """A decision that ends the request without a call: rejected, cancelled, expired (or stale, unsent)."""
        return self._write(
            session, request_id, state=state, decided_by=decided_by, decided_at=now, reason=reason, updated_at=now
        )

    def back_to_pending(self, session: Session, request_id: int, message: str, now: datetime) -> RequestRow:
        """Nothing was sent: release the claim and spend the votes (approving again is a fresh decision)."""
        self.votes.clear(session, request_id)
        return self._write(
            session,
            request_id,
            state=RequestState.PENDING,
            claim_token=None,
            claim_expires_at=None,
            decided_by=None,
            decided_at=None,
            result_message=message,
            updated_at=now,
        )

    def end_unsent(self, session: Session, request_id: int, state: str, message: str, now: datetime) -> RequestRow:
        """Closed by its executor without a call (`failed` or `stale`; a schedule applied: `executed`)."""
        return self._write(
            session, request_id, state=state, result_message=message[:2000], claim_expires_at=None, updated_at=now
        )

    def flag_needs_check(self, session: Session, request_id: int, message: str, now: datetime) -> RequestRow:
        """The call may have gone out and nobody recorded its answer: a human must check; never re-sent."""
        return self._write(
            session,
            request_id,
            state=RequestState.NEEDS_CHECK,
            updated_at=now,
            result_message=message,
            claim_expires_at=None,
        )

    def record_offer(self, session: Session, request_id: int, offer: str) -> RequestRow:
        """What a pending restore's card offers about the safety snapshot, re-checked (the row locked by the caller)."""
        return self._write(session, request_id, safety_offer=offer)

    def touch(self, session: Session, request_id: int, now: datetime) -> RequestRow:
        """A vote changed the request without deciding it: its time of change, and the request with its votes."""
        return self._write(session, request_id, updated_at=now)

    def _write(self, session: Session, request_id: int, **values: Any) -> RequestRow:
        _update(session, (ApprovalRequest.id == request_id,), **values)
        return self._reread(session, request_id)

    @staticmethod
    def _reread(session: Session, request_id: int) -> RequestRow:
        row = read_row(session, select(ApprovalRequest).where(ApprovalRequest.id == request_id))
        assert row is not None, f"request #{request_id} vanished inside its own transaction"
        return row

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
        won = _update(
            session,
            (ApprovalRequest.id == request_id, ApprovalRequest.state == RequestState.PENDING),
            state=RequestState.EXECUTING,
            decided_by=decided_by,
            decided_at=now,
            updated_at=now,
            claim_token=token,
            claim_expires_at=self.db.clock.now(claim_ttl),
            result_message="",
            safety_choice=safety_choice,
        )
        return won == 1

    def _held(self, request_id: int, token: str, state: str) -> tuple[Any, ...]:
        return (
            ApprovalRequest.id == request_id,
            ApprovalRequest.state == state,
            ApprovalRequest.claim_token == token,
            ApprovalRequest.claim_expires_at > self.db.clock.now(),
        )

    def held_under_lock(self, session: Session, request_id: int, token: str) -> RequestRow | None:
        """The request under its row lock, if it is still `executing` under this token's unexpired claim.

        None when the claim was lost (or the request is gone): then the caller's transaction is rolled back here,
        nothing of it kept and the lock let go at once, and the caller writes nothing in it."""
        session.execute(select(ApprovalRequest.id).where(ApprovalRequest.id == request_id).with_for_update())
        row = read_row(session, select(ApprovalRequest).where(*self._held(request_id, token, RequestState.EXECUTING)))
        if row is None:
            session.rollback()
        return row

    def renew(self, request_id: int, token: str, claim_ttl: timedelta) -> bool:
        """Extend the claim (database clock) while it is still held; False: it lapsed or was taken over."""
        with self.db.session() as session:
            renewed = _update(
                session,
                self._held(request_id, token, RequestState.EXECUTING),
                claim_expires_at=self.db.clock.now(claim_ttl),
            )
        return renewed == 1

    def set_safety(self, session: Session, request_id: int, token: str, **values: Any) -> bool:
        """Record a step of the safety snapshot while this token's claim is unexpired (`executing`). False if lost:
        then the caller's transaction is rolled back here (nothing of it kept; the caller writes nothing more)."""
        allowed = {"safety_state", "safety_snapshot_id"}
        assert set(values) <= allowed, values
        won = _update(session, self._held(request_id, token, RequestState.EXECUTING), **values)
        return self._won_or_rolled_back(session, won)

    @staticmethod
    def _won_or_rolled_back(session: Session, won: int) -> bool:
        """A compare-and-set that lost leaves nothing of the caller's transaction behind."""
        if won != 1:
            session.rollback()
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
        _update(
            session, (ApprovalRequest.id == request_id, (ApprovalRequest.claim_token == token) | released), **values
        )

    def mark_sending(
        self, session: Session, request_id: int, token: str, *, stale_after: timedelta, now: datetime
    ) -> bool:
        """The check-and-mark before any call: `executing` → `sending` only while this token's claim is unexpired.
        False if lost: then the caller's transaction is rolled back here (nothing of it kept)."""
        won = _update(
            session,
            self._held(request_id, token, RequestState.EXECUTING),
            state=RequestState.SENDING,
            claim_expires_at=self.db.clock.now(stale_after),
            updated_at=now,
        )
        return self._won_or_rolled_back(session, won)

    def settle(
        self, session: Session, request_id: int, token: str, state: str, message: str, now: datetime
    ) -> RequestRow:
        """The final state after VPS.org answered: only while `sending` (or flagged since) under this token. Returns
        the request as it is now, settled or not (another token's outcome stands)."""
        settling = (
            ApprovalRequest.id == request_id,
            ApprovalRequest.claim_token == token,
            ApprovalRequest.state.in_((RequestState.SENDING, RequestState.NEEDS_CHECK)),
        )
        _update(session, settling, state=state, result_message=message[:2000], claim_expires_at=None, updated_at=now)
        return self._reread(session, request_id)

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

    def stale_claim(self, session: Session, request_id: int, legacy_before: datetime) -> RequestRow | None:
        """Lock one and re-read it: the executor may have finished, or renewed, meanwhile (then None)."""
        session.execute(select(ApprovalRequest.id).where(ApprovalRequest.id == request_id).with_for_update())
        return read_row(
            session, select(ApprovalRequest).where(ApprovalRequest.id == request_id, self._stale(legacy_before))
        )

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


def _update(session: Session, where: tuple[Any, ...], **values: Any) -> int:
    """UPDATE the requests `where` matches (bypassing the session: reads re-read, see approval_rows); how many."""
    return rows_matched(
        session.execute(
            update(ApprovalRequest).where(*where).values(**values).execution_options(synchronize_session=False)
        )
    )

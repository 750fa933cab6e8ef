"""A request under its row lock: reading it as a view, closing it, refusing, handing it back to `pending`, and
the executor's claim. Every part of the approval service holds this one object (it replaced the shared base
class), so each part takes only this plus what it uses itself.

Rules kept here:
- A request is read for a decision only under its row lock (`locked`). Storage hands out frozen rows and owns
  the unit of work (writing, re-reading, rolling back a lost claim); this never touches a session itself.
- A view is the stored row plus what the policy says of it (`view`), built the one way rows are (storage.frozen).
- A state change and its audit row share one transaction (`close`, `back_to_pending`); a refusal is recorded even
  though the caller then raises (`refuse` commits it on its own).
- An executor acts only while its token holds an unexpired claim (`held`, `renew`); one that lost it changes
  nothing and says so (`claim_lost`).
- A `schedule` request closed unapproved leaves the schedule it proposed off for good (`close`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from bot.usecases.approval_base import (
    ApprovalPolicy,
    Clocks,
    DecisionOutcome,
    DecisionResult,
    RequestView,
    action_for,
    log,
    snapshot_of,
    state_words,
)
from bot.usecases.approval_terms import RequestKind, RequestState, SafetyMode, chosen
from bot.usecases.context import SYSTEM, Actor
from bot.usecases.errors import NotFoundError, Refused
from bot.usecases.schedule_plan import SchedulePlan
from bot.usecases.wording import Text
from storage.approvals import ApprovalRequests, RequestRow
from storage.audit import Action, AuditLog, Outcome
from storage.db import Database, Transaction, commit_now
from storage.frozen import frozen
from storage.schedules import Schedules


class RequestLedger:
    def __init__(self, *, db: Database, audit: AuditLog, policy: ApprovalPolicy, clocks: Clocks) -> None:
        self.db = db
        self.requests = ApprovalRequests(db)
        self.audit = audit
        self.policy = policy
        self.clocks = clocks

    def now(self) -> datetime:
        return self.clocks.clock()

    # ---- reading -------------------------------------------------------------------------------------------
    def get(self, request_id: int) -> RequestView:
        with self.db.session(readonly=True) as session:
            row = self.requests.get(session, request_id)
        if row is None:
            raise NotFoundError(f"Request #{request_id} does not exist.")
        return self.view(row)

    def locked(self, session: Transaction, rid: int) -> RequestRow:
        row = self.requests.locked(session, rid)
        if row is None:
            raise NotFoundError(f"Request #{rid} does not exist.")
        return row

    def view(self, row: RequestRow) -> RequestView:
        """The request as the rest of the bot sees it: the stored row, its terms typed, and what the policy adds."""
        kind = RequestKind(row.kind)
        return frozen(
            RequestView,
            row,
            safety_choice=chosen(row.safety_choice),
            safety_required=kind == RequestKind.RESTORE and self.policy.safety_mode == SafetyMode.ALWAYS,
            proposal=SchedulePlan.from_json(row.proposal) if kind == RequestKind.SCHEDULE else None,
        )

    # ---- deciding ------------------------------------------------------------------------------------------
    def close(
        self,
        session: Transaction,
        row: RequestRow,
        state: RequestState,
        actor: Actor,
        now: datetime,
        *,
        reason: str = "",
    ) -> RequestView:
        row = self.requests.close(session, row.id, state, decided_by=actor.user_id, now=now, reason=reason)
        self.schedule_closed(session, row)
        self.audit.append(
            actor.entry(
                action_for(row.kind, state),
                Outcome.OK if state != RequestState.EXPIRED else Outcome.INFO,
                server_id=row.server_id,
                snapshot_id=snapshot_of(row),
                request_id=row.id,
                details={"reason": reason} if reason else {},
            ),
            session=session,
        )
        return self.view(row)

    def schedule_closed(self, session: Transaction, row: RequestRow) -> None:
        """A `schedule` request closed unapproved: the schedule it proposed stays off for good (a change of an
        enabled schedule leaves it as it was)."""
        if row.kind == RequestKind.SCHEDULE and row.schedule_id is not None:
            Schedules(self.db).drop_proposal(session, row.schedule_id)

    def require_pending(self, session: Transaction, actor: Actor, row: RequestRow) -> None:
        if row.state != RequestState.PENDING:
            self.refuse(session, actor, row, Action.REFUSED_NOT_PENDING, f"request is {row.state}")
            raise Refused(f"Request #{row.id} is already {state_words(RequestState(row.state))}; nothing was done.")

    def refuse(self, session: Transaction, actor: Actor, row: RequestRow, action: str, reason: str) -> None:
        # A refusal is recorded even though the caller's transaction then raises: write it on its own.
        self.audit.append(
            actor.entry(
                action,
                Outcome.REFUSED,
                server_id=row.server_id,
                snapshot_id=snapshot_of(row),
                request_id=row.id,
                details={"reason": reason},
            ),
            session=session,
        )
        commit_now(session)

    def back_to_pending(
        self, session: Transaction, row: RequestRow, message: Text, *, reason: str, actor: Actor = SYSTEM
    ) -> RequestView:
        approved_by = row.decided_by
        record = str(message)
        # The votes were spent on this attempt: approving again is a fresh decision on a fresh re-check.
        row = self.requests.back_to_pending(session, row.id, record, self.now())
        self.audit.append(
            actor.entry(
                action_for(row.kind, DecisionOutcome.NOT_SENT),
                Outcome.FAILED,
                server_id=row.server_id,
                snapshot_id=snapshot_of(row),
                request_id=row.id,
                details={"reason": reason, "sent": False, "approved_by": approved_by, "message": record},
            ),
            session=session,
        )
        return self.view(row)

    # ---- the executor's claim ------------------------------------------------------------------------------
    @contextmanager
    def held(self, rid: int, token: str) -> Iterator[tuple[Transaction, RequestRow | None]]:
        """The request under its row lock while `token` still holds its claim; None when the claim was lost (then
        storage has rolled the transaction back and nothing is written in it: the caller answers `claim_lost`)."""
        with self.db.session() as session:
            yield session, self.requests.held_under_lock(session, rid, token)

    def renew(self, rid: int, token: str) -> bool:
        """Extend the claim (database clock) while `token` still holds it; False: it lapsed or was taken over."""
        return self.requests.renew(rid, token, self.policy.claim_ttl)

    def give_up(self, actor: Actor, rid: int, token: str, message: Text, reason: str) -> DecisionResult:
        """Nothing was sent: release the claim and put the request back to `pending` for a fresh approval."""
        with self.held(rid, token) as (session, row):
            if row is None:
                return self.claim_lost(rid)
            view = self.back_to_pending(session, row, message, reason=reason, actor=actor)
        return DecisionResult(view, DecisionOutcome.NOT_SENT, message)

    def claim_lost(self, rid: int) -> DecisionResult:
        view = self.get(rid)
        log.warning("request #%s: claim lost before sending (now %s); this executor sent nothing", rid, view.state)
        return DecisionResult(
            view,
            DecisionOutcome.CLAIM_LOST,
            Text("Request #{} was taken over meanwhile; nothing was sent by this attempt.").format(rid),
        )

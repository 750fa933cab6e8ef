"""What every step of an approval request shares: the views it hands out, what an approval is bound to, and
closing, refusing and reading a request under its row lock.

Rules kept here:
- No ORM row leaves the use cases: callers get `RequestView` / `DecisionResult`, built while the row is held.
- A state change and its audit row share one transaction (`_close`, `_back_to_pending`); a refusal is recorded
  even though the caller then raises (`_refuse` commits it on its own).
- The approval is bound to `bound_digest`: exactly what the card showed (snapshot id, server id, name,
  created_at, the requester's reason).
- Audit action names come from the vocabulary in storage.audit (`action_for` is a lookup, never a format).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.usecases.context import SYSTEM, Actor, utcnow
from bot.usecases.errors import (
    InvalidInput,
    NotFoundError,
    Refused,
)
from bot.usecases.guard import Guard
from bot.usecases.schedule_plan import SchedulePlan
from bot.usecases.server_state import ServerStates
from bot.usecases.snapshots import SnapshotService
from bot.usecases.validation import parse_id
from bot.usecases.wording import Text, code, sentence
from bot.vps.client import VpsClient
from storage.approvals import ApprovalRequests, RequestState
from storage.audit import APPROVAL_ACTIONS, Action, AuditLog, Outcome, valid_utf8
from storage.db import Database, Transaction
from storage.models import ApprovalRequest
from storage.schedules import Schedules

log = logging.getLogger("bot.usecases.approvals")


def bound_digest(
    kind: str, snapshot_id: int, server_id: int, snapshot_name: str, created_at: datetime | None, reason: str = ""
) -> str:
    """SHA-256 of exactly what an approver is shown and approves (`reason`: the requester's, "" when none)."""
    return hashlib.sha256(
        json.dumps(
            bound_fields(kind, snapshot_id, server_id, snapshot_name, created_at, reason), sort_keys=True
        ).encode("ascii")
    ).hexdigest()


def bound_fields(
    kind: str, snapshot_id: int, server_id: int, snapshot_name: str, created_at: datetime | None, reason: str
) -> dict[str, Any]:
    when = created_at.astimezone(UTC).isoformat(timespec="microseconds") if created_at is not None else ""
    return {
        "kind": kind,
        "snapshot_id": int(snapshot_id),
        "server_id": int(server_id),
        "snapshot_name": valid_utf8(snapshot_name),
        "created_at": when,
        "reason": reason,
    }


def snapshot_of(row: ApprovalRequest) -> int | None:
    """The snapshot an audit row of this request names: none for a `schedule` request (its column holds 0)."""
    return None if row.kind == "schedule" else row.snapshot_id


def action_for(kind: str, verb: str) -> Action:
    """The audit action of one step of a request (restore.* as documented; delete approvals: delete.approval_*;
    schedule approvals: schedule.approval_*)."""
    return APPROVAL_ACTIONS[(kind, verb)]


@dataclass(frozen=True)
class RequestView:
    """A request as it is now, for rendering (no ORM object leaves this module)."""

    id: int
    kind: str
    state: RequestState
    requester_id: str
    requester_name: str
    channel_id: str | None
    snapshot_id: int
    snapshot_name: str
    snapshot_status: str
    snapshot_size_mb: int | None
    snapshot_created_at: datetime | None
    snapshot_description: str
    server_id: int
    server_name: str
    approvals_required: int
    approvers: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str
    result_message: str
    card_channel: str | None
    card_ts: str | None
    bound_digest: str | None = None  # what the approval is bound to (see `bound_digest`)
    request_reason: str = ""  # the requester's reason (an incident reference); `reason` is the reject/cancel one
    # The safety snapshot (bot/usecases/approval_safety.py): offered on the card ("" | "free" | "full"), the
    # approver's choice ("" | "snapshot" | "none"), the `pre-restore-<id>` snapshot and its step.
    safety_offer: str = ""
    safety_choice: str = ""
    safety_snapshot_id: int | None = None
    safety_state: str = ""
    safety_required: bool = False  # RESTORE_SAFETY_SNAPSHOT=always: no restore without one
    # A `schedule` request (bot/usecases/schedule_requests.py): the schedule it makes or changes, and what it
    # proposes. Such a request names no snapshot (`snapshot_id` 0, `snapshot_name` "").
    schedule_id: int | None = None
    proposal: SchedulePlan | None = None


class DecisionOutcome(StrEnum):
    """What a click (or the ticker) did to a request. The closing ones share their names with `RequestState`.

    `NOT_SENT`: nothing reached VPS.org and the request is pending again; `CLAIM_LOST`: this executor's claim was
    taken over meanwhile (nothing was sent by it; whoever took it over has told everyone).
    """

    VOTE_RECORDED = "vote_recorded"
    EXECUTED = "executed"
    FAILED = "failed"
    NEEDS_CHECK = "needs_check"
    STALE = "stale"
    NOT_SENT = "not_sent"
    CLAIM_LOST = "claim_lost"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    SNAPSHOT_DELETED = "snapshot_deleted"  # closed as `stale` because someone deleted its snapshot
    SNAPSHOT_GONE = "snapshot_gone"  # closed as `stale`: VPS.org answered 404 to the bot's delete (already gone)
    SCHEDULE_REMOVED = "schedule_removed"  # closed as `stale`: its schedule was unscheduled while it waited


@dataclass(frozen=True)
class DecisionResult:
    """What a click (or the ticker) did: the request as it is now, the outcome, and what to tell people.

    `closed`: other requests this closed (a delete's: their snapshot is gone), each with its own result;
    `redrawn`: other requests whose card changed without a decision (a delete freed their server's slot).
    `outcome` may be given as its value or a `RequestState` of the same name; `message` as a `str` the bot wrote
    (no markup, no outside values): both are normalised here.
    """

    request: RequestView
    outcome: DecisionOutcome
    message: Text
    closed: tuple[DecisionResult, ...] = ()
    redrawn: tuple[RequestView, ...] = ()  # other requests whose card changed (a delete freed a slot)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", DecisionOutcome(self.outcome))
        object.__setattr__(self, "message", sentence(self.message))


class ApprovalBase:
    """The state and helpers every part of `ApprovalService` uses (see bot/usecases/approvals.py)."""

    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        guard: Guard,
        snapshots: SnapshotService,
        vps: VpsClient,
        ttl: timedelta = timedelta(minutes=60),
        approvals_required: int = 1,
        required_for: frozenset[str] = frozenset({"restore"}),
        stale_after: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utcnow,
        recheck_deadline: timedelta = timedelta(seconds=60),
        claim_ttl: timedelta = timedelta(seconds=90),
        reason_required: bool = False,
        server_states: ServerStates | None = None,
        safety_mode: str = "off",
        safety_timeout: timedelta = timedelta(minutes=15),
        safety_poll_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.requests = ApprovalRequests(db)
        self.audit = audit
        self.guard = guard
        self.snapshots = snapshots
        self.vps = vps
        # What VPS.org says about a server, read before a restore is asked for and before it is sent.
        self.server_states = server_states or ServerStates(vps)
        self.ttl = ttl
        self.approvals_required = approvals_required
        self._required_for = required_for
        self.reason_required = reason_required  # RESTORE_REASON_REQUIRED: a restore request must say why
        self.stale_after = stale_after  # how long a sent call may take before it is "outcome unknown"
        self.clock = clock  # this replica's clock: timestamps for people, never a claim's deadline
        self.recheck_deadline = recheck_deadline
        self.claim_ttl = max(claim_ttl, recheck_deadline + timedelta(seconds=1))
        self.safety_mode = safety_mode  # RESTORE_SAFETY_SNAPSHOT: auto | always | off
        self.safety_timeout = safety_timeout  # how long the safety snapshot may take to complete
        self.safety_poll_seconds = safety_poll_seconds
        self.sleep = sleep  # waits between polls of the safety snapshot (a test injects one that moves a clock)
        self.monotonic = monotonic  # the safety snapshot's deadline (a test injects a fake clock)

    def required_for(self, kind: str) -> bool:
        return kind in self._required_for

    def get(self, request_id: int) -> RequestView:
        with self.db.session(readonly=True) as session:
            row = self.requests.get(session, request_id)
            if row is None:
                raise NotFoundError(f"Request #{request_id} does not exist.")
            return self._view(session, row)

    def _back_to_pending(
        self, session: Transaction, row: ApprovalRequest, message: Text, *, reason: str, actor: Actor = SYSTEM
    ) -> RequestView:
        approved_by = row.decided_by
        record = str(message)
        # The votes were spent on this attempt: approving again is a fresh decision on a fresh re-check.
        self.requests.back_to_pending(session, row, record, self.clock())
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
        session.flush()
        return self._view(session, row)

    @contextmanager
    def _held(self, rid: int, token: str) -> Iterator[tuple[Transaction, ApprovalRequest | None]]:
        """The request under its row lock while `token` still holds its claim; None when the claim was lost (then
        nothing is written in this transaction: the caller answers with `_claim_lost`)."""
        with self.db.session() as session:
            self._locked(session, rid)
            row = self.requests.held(session, rid, token)
            if row is None:
                session.rollback()
            yield session, row

    def _give_up(self, actor: Actor, rid: int, token: str, message: Text, reason: str) -> DecisionResult:
        """Nothing was sent: release the claim and put the request back to `pending` for a fresh approval."""
        with self._held(rid, token) as (session, row):
            if row is None:
                return self._claim_lost(rid)
            view = self._back_to_pending(session, row, message, reason=reason, actor=actor)
        return DecisionResult(view, DecisionOutcome.NOT_SENT, message)

    def _claim_lost(self, rid: int) -> DecisionResult:
        view = self.get(rid)
        log.warning("request #%s: claim lost before sending (now %s); this executor sent nothing", rid, view.state)
        return DecisionResult(
            view,
            DecisionOutcome.CLAIM_LOST,
            Text("Request #{} was taken over meanwhile; nothing was sent by this attempt.").format(rid),
        )

    def _close(
        self,
        session: Transaction,
        row: ApprovalRequest,
        state: str,
        actor: Actor,
        now: datetime,
        *,
        reason: str = "",
    ) -> RequestView:
        self.requests.close(row, state, decided_by=actor.user_id, now=now, reason=reason)
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
        session.flush()
        return self._view(session, row)

    def schedule_closed(self, session: Transaction, row: ApprovalRequest) -> None:
        """A `schedule` request closed unapproved: the schedule it proposed stays off for good (a change of an
        enabled schedule leaves it as it was)."""
        if row.kind == "schedule" and row.schedule_id is not None:
            Schedules(self.db).drop_proposal(session, row.schedule_id)

    def _require_pending(self, session: Transaction, actor: Actor, row: ApprovalRequest) -> None:
        if row.state != RequestState.PENDING:
            self._refuse(session, actor, row, Action.REFUSED_NOT_PENDING, f"request is {row.state}")
            raise Refused(f"Request #{row.id} is already {state_words(row.state)}; nothing was done.")

    def _refuse(self, session: Transaction, actor: Actor, row: ApprovalRequest, action: str, reason: str) -> None:
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
        session.commit()

    def _locked(self, session: Transaction, rid: int) -> ApprovalRequest:
        row = self.requests.locked(session, rid)
        if row is None:
            raise NotFoundError(f"Request #{rid} does not exist.")
        return row

    def _parse_request_id(self, raw: str | int) -> int:
        try:
            return parse_id(raw, "request id")
        except InvalidInput:
            raise NotFoundError("That approval request does not exist.") from None

    def _view(
        self, session: Transaction, row: ApprovalRequest, approvers: tuple[str, ...] | None = None
    ) -> RequestView:
        """The request as the rest of the bot sees it; `approvers` when the caller fetched them for many rows."""
        if approvers is None:
            approvers = self.requests.approvers(session, row.id)
        return RequestView(
            id=row.id,
            kind=row.kind,
            state=RequestState(row.state),
            requester_id=row.requester_id,
            requester_name=row.requester_name,
            channel_id=row.channel_id,
            snapshot_id=row.snapshot_id,
            snapshot_name=row.snapshot_name,
            snapshot_status=row.snapshot_status,
            snapshot_size_mb=row.snapshot_size_mb,
            snapshot_created_at=row.snapshot_created_at,
            snapshot_description=row.snapshot_description,
            server_id=row.server_id,
            server_name=row.server_name,
            approvals_required=row.approvals_required,
            approvers=approvers,
            created_at=row.created_at,
            expires_at=row.expires_at,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            reason=row.reason,
            result_message=row.result_message,
            card_channel=row.card_channel,
            card_ts=row.card_ts,
            bound_digest=row.bound_digest,
            request_reason=row.request_reason or "",
            safety_offer=row.safety_offer or "",
            safety_choice=row.safety_choice or "",
            safety_snapshot_id=row.safety_snapshot_id,
            safety_state=row.safety_state or "",
            safety_required=row.kind == "restore" and self.safety_mode == "always",
            schedule_id=row.schedule_id,
            proposal=SchedulePlan.from_json(row.proposal) if row.kind == "schedule" else None,
        )


def state_words(state: str) -> str:
    return {
        RequestState.EXECUTING: "approved and being re-checked before sending",
        RequestState.SENDING: "approved and sent to VPS.org (waiting for its answer)",
        RequestState.STALE: "closed without sending (the snapshot changed, or was deleted, after it was requested)",
        RequestState.EXECUTED: "approved and carried out",
        RequestState.NEEDS_CHECK: "approved (outcome unknown, needs a human check)",
    }.get(state, state)


def snapshot_words(view: RequestView) -> Text:
    return Text("Snapshot {} (#{})").format(code(view.snapshot_name, None), view.snapshot_id)


def done_word(kind: str) -> str:
    return "restored" if kind == "restore" else "deleted"

"""Two-person approval of destructive actions (always restores; deletes when configured).

Exactly the approved action, once, or visibly nothing:
- A request leaves `pending` only through a compare-and-set on its state (the row locked first), so double clicks,
  simultaneous approvers, retries and several replicas lead to at most one executor. The winner gets a claim: a
  fencing token (`claim_token`, a uuid, also the operation id of its audit rows) and a deadline
  (`claim_expires_at`) computed by the DATABASE's clock, renewed as the work advances.
- The pre-call phase (re-listing the snapshot, every page and retry) has a hard total deadline shorter than the
  claim. Past it nothing is sent and the request goes back to `pending` ("approve again"; its votes are spent).
- The approval is bound to a digest of exactly what the card showed (snapshot id, server id, name, created_at,
  the requester's reason). Just before sending it is compared with what VPS.org lists now: any difference closes
  the request as `stale`, naming what changed; nothing is sent.
- The VPS.org call is made only after one atomic check-and-mark: `executing` → `sending`, only while this token's
  claim is unexpired; the intent audit row commits in the same transaction. No other path reaches the call.
- The flagger takes only requests whose claim has expired: `executing` (nothing was sent) goes back to `pending`;
  `sending` (the call may have gone out) becomes `needs_check`, "outcome unknown: check the server", and is never
  re-sent. An answer that arrives later still settles it.
- The outcome row is written in the same transaction as the final state, retried; if it still cannot be written
  the request is flagged `needs_check` and logged at CRITICAL, never left in `sending`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.usecases.access import Permission
from bot.usecases.audited_call import CallResult, audited_call
from bot.usecases.context import SYSTEM, Actor, utcnow
from bot.usecases.errors import (
    CouldNotConfirm,
    InvalidInput,
    NotFoundError,
    Refused,
    UserFacingError,
    doing_with,
    explain_vps_error,
)
from bot.usecases.guard import Guard
from bot.usecases.recovery import stale_after_for
from bot.usecases.snapshots import SnapshotService
from bot.usecases.validation import parse_id
from bot.vps.client import VpsClient
from bot.vps.errors import DeadlineExceeded
from bot.vps.models import RestoreResult, Snapshot
from storage.approvals import ApprovalRequests
from storage.audit import APPROVAL_ACTIONS, Action, AuditLog, Outcome, valid_utf8
from storage.db import Database, Transaction
from storage.models import ApprovalRequest

if TYPE_CHECKING:
    from bot.runtime import Services


KINDS = ("restore", "delete")
OUTCOME_WRITE_ATTEMPTS = 3

log = logging.getLogger(__name__)

TOO_SLOW = "VPS.org was too slow to re-check the snapshot; nothing was sent. Approve again when it answers."
CLAIM_EXPIRED = (
    "The bot stopped before sending this (its claim on the request ran out); nothing was sent to VPS.org. "
    "Approve again, or cancel."
)
SENT_UNKNOWN = (
    "Sent to VPS.org, but the bot stopped before it recorded the answer: outcome unknown — check the server "
    "before doing anything else. It will not be re-sent."
)
LEGACY_UNKNOWN = (
    "The bot stopped while this was being carried out; whether VPS.org received it is unknown. "
    "Check the server before doing anything else."
)


def bound_digest(
    kind: str, snapshot_id: int, server_id: int, snapshot_name: str, created_at: datetime | None, reason: str = ""
) -> str:
    """SHA-256 of exactly what an approver is shown and approves (`reason`: the requester's, empty for now)."""
    return hashlib.sha256(
        json.dumps(
            _bound_fields(kind, snapshot_id, server_id, snapshot_name, created_at, reason), sort_keys=True
        ).encode("ascii")
    ).hexdigest()


def _bound_fields(
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


def action_for(kind: str, verb: str) -> Action:
    """The audit action of one step of a request (restore.* as documented; delete approvals: delete.approval_*)."""
    return APPROVAL_ACTIONS[(kind, verb)]


@dataclass(frozen=True)
class RequestView:
    """A request as it is now, for rendering (no ORM object leaves this module)."""

    id: int
    kind: str
    state: str
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


@dataclass(frozen=True)
class DecisionResult:
    """What a click (or the ticker) did.

    `outcome`: vote_recorded | executed | failed | needs_check | stale | not_sent | claim_lost | rejected |
    cancelled | expired. `not_sent`: nothing reached VPS.org and the request is pending again; `claim_lost`: this
    executor's claim was taken over meanwhile (nothing was sent by it; whoever took it over has told everyone).
    """

    request: RequestView
    outcome: str
    message: str


class ApprovalService:
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
    ) -> None:
        self.db = db
        self.requests = ApprovalRequests(db)
        self.audit = audit
        self.guard = guard
        self.snapshots = snapshots
        self.vps = vps
        self.ttl = ttl
        self.approvals_required = approvals_required
        self._required_for = required_for
        self.stale_after = stale_after  # how long a sent call may take before it is "outcome unknown"
        self.clock = clock  # this replica's clock: timestamps for people, never a claim's deadline
        self.recheck_deadline = recheck_deadline
        self.claim_ttl = max(claim_ttl, recheck_deadline + timedelta(seconds=1))

    @classmethod
    def from_services(cls, services: Services) -> ApprovalService:
        settings = services.settings
        return cls(
            db=services.db,
            audit=services.audit,
            guard=services.guard,
            snapshots=services.snapshots,
            vps=services.vps,
            ttl=timedelta(minutes=settings.restore_approval_ttl_minutes),
            approvals_required=settings.restore_approvals_required,
            required_for=settings.approval_required_for,
            stale_after=stale_after_for(settings.vps_timeout_seconds, settings.recovery_after_seconds),
            recheck_deadline=timedelta(seconds=settings.recheck_deadline_seconds),
            claim_ttl=timedelta(seconds=settings.claim_ttl_seconds),
        )

    def required_for(self, kind: str) -> bool:
        return kind in self._required_for

    # ---- asking --------------------------------------------------------------------------------------------
    def request(self, actor: Actor, snapshot_id: str | int | None, kind: str = "restore") -> RequestView:
        """Record a pending request (after checking the snapshot exists and is completed) and its audit event."""
        if kind not in KINDS:
            raise ValueError(kind)
        try:
            sid = parse_id(snapshot_id, "snapshot id")
        except InvalidInput as error:
            self.snapshots.record_invalid_command(actor, str(error), operation=kind)
            raise
        permission = Permission.REQUEST_RESTORE if kind == "restore" else Permission.DELETE
        self.guard.require(actor, permission, mutating=True, snapshot_id=sid)
        snapshot = self.snapshots.find_snapshot(sid)
        if kind == "restore" and not snapshot.is_completed:
            self.audit.append(
                actor.entry(
                    Action.REFUSED_VALIDATION,
                    Outcome.REFUSED,
                    server_id=snapshot.server.id,
                    snapshot_id=sid,
                    details={"operation": kind, "error": f"snapshot status is {snapshot.status}"},
                )
            )
            raise InvalidInput(
                f"Snapshot `{snapshot.name}` (#{sid}) is {snapshot.status.replace('_', ' ')}, not completed: "
                "only completed snapshots can be restored."
            )
        digest = bound_digest(kind, snapshot.id, snapshot.server.id, snapshot.name, snapshot.created_at)
        with self.db.session() as session:
            # Counted and recorded under one lock: concurrent requests never get past the rate limit.
            self.guard.claim_rate(
                actor, session, action_for(kind, "requested"), server_id=snapshot.server.id, snapshot_id=sid
            )
            now = self.clock()
            row = self.requests.add(
                session,
                kind=kind,
                requester_id=actor.user_id,
                requester_name=valid_utf8(actor.name),
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                snapshot_id=snapshot.id,
                snapshot_name=valid_utf8(snapshot.name),
                snapshot_status=snapshot.status,
                snapshot_size_mb=snapshot.size_mb,
                snapshot_created_at=snapshot.created_at,
                snapshot_description=valid_utf8(snapshot.description),
                server_id=snapshot.server.id,
                server_name=valid_utf8(snapshot.server.name),
                approvals_required=self.approvals_required,
                created_at=now,
                expires_at=now + self.ttl,
                updated_at=now,
                bound_digest=digest,
            )
            self.audit.append(
                actor.entry(
                    action_for(kind, "requested"),
                    Outcome.INFO,
                    server_id=snapshot.server.id,
                    snapshot_id=snapshot.id,
                    request_id=row.id,
                    details={"name": snapshot.name, "expires_at": row.expires_at.isoformat(), "digest": digest},
                ),
                session=session,
            )
            return self._view(session, row)

    def attach_card(self, request_id: int, channel: str, ts: str) -> None:
        self.requests.attach_card(request_id, channel, ts)

    # ---- deciding ------------------------------------------------------------------------------------------
    def approve(self, actor: Actor, request_id: str | int) -> DecisionResult:
        rid = self._parse_request_id(request_id)
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, rid)
            if row.requester_id == actor.user_id:
                self._refuse(session, actor, row, Action.REFUSED_SELF_APPROVAL, "self-approval")
                raise Refused("You can't approve your own request — someone else has to.")
            if row.state != "pending":
                self._refuse(session, actor, row, Action.REFUSED_NOT_PENDING, f"request is {row.state}")
                raise Refused(f"Request #{rid} is already {_state_words(row.state)}; nothing was done.")
            if now >= row.expires_at:
                expired = self._close(session, row, "expired", SYSTEM, now, reason="approval window passed")
                return DecisionResult(expired, "expired", f"Request #{rid} expired before it was approved.")
            if self.requests.has_voted(session, rid, actor.user_id):
                raise Refused(f"You have already approved request #{rid}; it needs someone else too.")
            votes = self.requests.add_vote(session, rid, actor.user_id, actor.name, now)
            self.audit.append(
                actor.entry(
                    action_for(row.kind, "approved"),
                    Outcome.OK,
                    server_id=row.server_id,
                    snapshot_id=row.snapshot_id,
                    request_id=rid,
                    details={"votes": votes, "required": row.approvals_required, "digest": row.bound_digest},
                ),
                session=session,
            )
            if votes < row.approvals_required:
                row.updated_at = now
                view = self._view(session, row)
                return DecisionResult(
                    view, "vote_recorded", f"Approval recorded ({votes} of {row.approvals_required})."
                )
            # The compare-and-set that makes execution happen at most once; the winner holds the claim.
            token = str(uuid.uuid4())
            won = self.requests.start_executing(
                session, rid, decided_by=actor.user_id, now=now, token=token, claim_ttl=self.claim_ttl
            )
            if not won:
                raise Refused(f"Request #{rid} was decided by someone else a moment ago; nothing was done.")
        return self._execute(actor, rid, token)

    def reject(self, actor: Actor, request_id: str | int, reason: str = "") -> DecisionResult:
        rid = self._parse_request_id(request_id)
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        reason = (reason or "").strip()[:500]
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, rid)
            if row.requester_id == actor.user_id:
                raise Refused("That's your own request: use *Cancel* to withdraw it.")
            self._require_pending(session, actor, row)
            view = self._close(session, row, "rejected", actor, now, reason=reason)
        return DecisionResult(view, "rejected", f"Request #{rid} rejected.")

    def cancel(self, actor: Actor, request_id: str | int) -> DecisionResult:
        rid = self._parse_request_id(request_id)
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, rid)
            if row.requester_id != actor.user_id:
                self._refuse(session, actor, row, Action.REFUSED_PERMISSION, "only the requester may cancel")
                raise Refused("Only the person who asked can cancel this request. Approvers can *Reject* it.")
            self._require_pending(session, actor, row)
            view = self._close(session, row, "cancelled", actor, now)
        return DecisionResult(view, "cancelled", f"Request #{rid} cancelled.")

    def withdraw(self, request_id: int, reason: str) -> RequestView | None:
        """The bot cancels a request nobody could act on (its card could not be posted), audited with `reason`.

        A request and its card are one unit: a request without a card is never left pending. Returns None when
        the request is no longer pending (someone decided it meanwhile), which then stands.
        """
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, request_id)
            if row.state != "pending":
                return None
            return self._close(session, row, "cancelled", SYSTEM, now, reason=reason[:500])

    # ---- housekeeping (the background ticker calls these) --------------------------------------------------
    def expire_due(self) -> list[RequestView]:
        now = self.clock()
        expired: list[RequestView] = []
        for rid in self.requests.pending_due(now):
            with self.db.session() as session:
                row = self._locked(session, rid)
                if row.state == "pending":
                    expired.append(self._close(session, row, "expired", SYSTEM, now, reason="approval window passed"))
        return expired

    def flag_stale_executions(self) -> list[DecisionResult]:
        """Requests whose executor's claim has expired (by the database's clock): it died or hung.

        `executing` never reached the check-and-mark, so nothing was sent: back to `pending`. `sending` may have
        reached VPS.org: `needs_check`, never re-sent. Rows from before claims existed (`executing`, no claim)
        keep the old rule: older than `stale_after` means outcome unknown.
        """
        legacy_before = self.clock() - self.stale_after
        stale = self.requests.stale_claims(legacy_before)
        flagged: list[DecisionResult] = []
        for rid in stale:
            with self.db.session() as session:
                self._locked(session, rid)
                # Re-read under the lock: the executor may have finished, or renewed, meanwhile.
                row = self.requests.stale_claim(session, rid, legacy_before)
                if row is None:
                    continue
                if row.state == "executing" and row.claim_token is not None:
                    view = self._back_to_pending(session, row, CLAIM_EXPIRED, reason="claim expired before sending")
                    flagged.append(DecisionResult(view, "not_sent", CLAIM_EXPIRED))
                    continue
                message = SENT_UNKNOWN if row.state == "sending" else LEGACY_UNKNOWN
                row.state = "needs_check"
                row.updated_at = self.clock()
                row.result_message = message
                row.claim_expires_at = None
                self.audit.append(
                    SYSTEM.entry(
                        action_for(row.kind, "needs_check"),
                        Outcome.UNKNOWN,
                        server_id=row.server_id,
                        snapshot_id=row.snapshot_id,
                        request_id=rid,
                        operation_id=row.claim_token,
                        details={
                            "reason": "claim expired after sending" if row.claim_token else "found executing",
                            "sent": "unknown",
                        },
                    ),
                    session=session,
                )
                flagged.append(DecisionResult(self._view(session, row), "needs_check", message))
        return flagged

    def open_requests(self) -> list[RequestView]:
        with self.db.session(readonly=True) as session:
            rows = self.requests.open(session, limit=100)
            return [self._view(session, row) for row in rows]

    def get(self, request_id: int) -> RequestView:
        with self.db.session(readonly=True) as session:
            row = self.requests.get(session, request_id)
            if row is None:
                raise NotFoundError(f"Request #{request_id} does not exist.")
            return self._view(session, row)

    # ---- internals -----------------------------------------------------------------------------------------
    def _execute(self, actor: Actor, rid: int, token: str) -> DecisionResult:
        """We hold the claim: re-check (bounded), compare with what was approved, check-and-mark, call once."""
        view = self.get(rid)
        deadline = self.vps.clock() + self.recheck_deadline.total_seconds()
        try:
            snapshot = self.snapshots.find_snapshot(view.snapshot_id, deadline=deadline)
        except DeadlineExceeded:
            return self._give_up(actor, rid, token, TOO_SLOW, "re-check deadline passed")
        except CouldNotConfirm:
            message = (
                f"{_snapshot_words(view)} could not be confirmed: VPS.org's snapshot list was incomplete, so "
                "nothing was sent. Approve again in a minute."
            )
            return self._give_up(actor, rid, token, message, "listing incomplete")
        except NotFoundError:
            return self._end_before_sending(
                actor,
                rid,
                token,
                "failed",
                f"{_snapshot_words(view)} can't be {_done(view.kind)}: it no longer "
                "exists. Nothing was sent to VPS.org.",
                {"recheck": "it no longer exists"},
            )
        except UserFacingError as error:
            return self._give_up(
                actor, rid, token, f"{error.message} Nothing was sent; approve again.", "re-check failed"
            )
        if self.vps.clock() > deadline:  # an answer that came in just too late is not trusted to be current
            return self._give_up(actor, rid, token, TOO_SLOW, "re-check deadline passed")
        if not self._renew(rid, token):
            return self._claim_lost(rid)
        changes = self._changes(view, snapshot)
        if changes:
            message = (
                f"Not sent: {_snapshot_words(view)} is no longer what was approved — {'; '.join(changes)}. "
                "Nothing was sent to VPS.org; ask again if it is still wanted."
            )
            return self._end_before_sending(actor, rid, token, "stale", message, {"changed": changes})
        if view.kind == "restore" and not snapshot.is_completed:
            message = (
                f"{_snapshot_words(view)} can't be restored: it is now {snapshot.status}. Nothing was sent to VPS.org."
            )
            return self._end_before_sending(actor, rid, token, "failed", message, {"recheck": snapshot.status})
        if not self._mark_sending(actor, view, token):
            return self._claim_lost(rid)
        if view.kind == "delete":
            return self._send_delete(actor, view, snapshot, token)
        return self._send_restore(actor, view, token)

    def _send_restore(self, actor: Actor, view: RequestView, token: str) -> DecisionResult:
        # The intent row was committed with the `sending` mark (`_mark_sending`); the outcome joins the final state.
        return audited_call(
            lambda: self.vps.restore_snapshot(view.snapshot_id),
            write_intent=None,
            write_outcome=lambda result: self._restore_outcome(actor, view, token, result),
        )

    def _restore_outcome(
        self, actor: Actor, view: RequestView, token: str, call: CallResult[RestoreResult]
    ) -> DecisionResult:
        if call.error is not None:
            error = call.error
            failure = explain_vps_error(error, doing_with("restoring snapshot", view.snapshot_name))
            details = {
                "status_code": error.status_code,
                "api_message": error.api_message,
                "error": type(error).__name__,
                "duration_ms": call.duration_ms,
            }
            return self._finish(
                actor,
                view.id,
                token,
                "needs_check" if call.outcome_unknown else "failed",
                failure.message,
                call.failure_outcome,
                details,
            )
        result = call.answer
        assert result is not None
        details: dict[str, object] = {
            "status_code": 200,
            "api_message": result.message,
            "server_status": result.server_status,
            "answered_server_id": result.server_id or None,
            "answered_snapshot_id": result.snapshot_id,
            "duration_ms": call.duration_ms,
        }
        wrong_server = bool(result.server_id) and result.server_id != view.server_id
        wrong_snapshot = result.snapshot_id != view.snapshot_id
        if wrong_server or wrong_snapshot:
            answered = f"server {result.server_id}" if wrong_server else f"snapshot #{result.snapshot_id}"
            approved = f"server {view.server_id}" if wrong_server else f"snapshot #{view.snapshot_id}"
            message = (
                f":rotating_light: VPS.org says it restored onto {answered}, but the approval was for {approved} "
                f"({_snapshot_words(view)} → {view.server_name}). Outcome unknown — check BOTH servers now."
            )
            details["mismatch"] = f"answered {answered}, approved {approved}"
            log.critical("request #%s: restore answer names %s, approved %s", view.id, answered, approved)
            return self._finish(actor, view.id, token, "needs_check", message, Outcome.UNKNOWN, details)
        return self._finish(
            actor, view.id, token, "executed", result.message or "Restore started.", Outcome.OK, details
        )

    def _send_delete(self, actor: Actor, view: RequestView, snapshot: Snapshot, token: str) -> DecisionResult:
        try:
            self.snapshots.execute_delete(actor, snapshot, request_id=view.id, operation_id=token)
        except UserFacingError as error:
            state = "needs_check" if getattr(error, "outcome_unknown", False) else "failed"
            return self._finish(actor, view.id, token, state, error.message, None, {}, audited=True)
        return self._finish(
            actor, view.id, token, "executed", f"Snapshot `{view.snapshot_name}` deleted.", None, {}, audited=True
        )

    def _changes(self, view: RequestView, snapshot: Snapshot) -> list[str]:
        """What differs between the approved card and VPS.org now; empty when the bound digest still holds."""
        approved = view.bound_digest or bound_digest(
            view.kind, view.snapshot_id, view.server_id, view.snapshot_name, view.snapshot_created_at
        )
        live = bound_digest(view.kind, snapshot.id, snapshot.server.id, snapshot.name, snapshot.created_at)
        if live == approved:
            return []
        changes = []
        if snapshot.server.id != view.server_id:
            changes.append(f"it now belongs to server {snapshot.server.id}, not {view.server_id}")
        if valid_utf8(snapshot.name) != view.snapshot_name:
            changes.append(f"it is now named '{snapshot.name}', not '{view.snapshot_name}'")
        if _bound_fields("", 0, 0, "", snapshot.created_at, "") != _bound_fields(
            "", 0, 0, "", view.snapshot_created_at, ""
        ):
            changes.append("its creation time changed")
        if not changes:  # the stored request no longer matches its own digest: edited behind the bot's back
            changes.append("the stored request no longer matches what was approved")
        return changes

    def _renew(self, rid: int, token: str) -> bool:
        """Extend our claim (database clock) while we still hold it; False means it lapsed or was taken over."""
        return self.requests.renew(rid, token, self.claim_ttl)

    def _mark_sending(self, actor: Actor, view: RequestView, token: str) -> bool:
        """The one atomic check-and-mark before any call: claim still ours and unexpired → `sending` + intent row."""
        with self.db.session() as session:
            won = self.requests.mark_sending(session, view.id, token, stale_after=self.stale_after, now=self.clock())
            if not won:
                session.rollback()
                return False
            if view.kind == "restore":  # a delete writes its own intent (same operation id) just before its call
                self.audit.append(
                    actor.entry(
                        Action.RESTORE_EXECUTING,
                        Outcome.INTENT,
                        server_id=view.server_id,
                        snapshot_id=view.snapshot_id,
                        request_id=view.id,
                        operation_id=token,
                        details={
                            "requester": view.requester_id,
                            "name": view.snapshot_name,
                            "digest": view.bound_digest,
                        },
                    ),
                    session=session,
                )
        return True

    def _give_up(self, actor: Actor, rid: int, token: str, message: str, reason: str) -> DecisionResult:
        """Nothing was sent: release the claim and put the request back to `pending` for a fresh approval."""
        with self.db.session() as session:
            self._locked(session, rid)
            row = self.requests.held(session, rid, token)
            if row is None:
                session.rollback()
                return self._claim_lost(rid)
            view = self._back_to_pending(session, row, message, reason=reason, actor=actor)
        return DecisionResult(view, "not_sent", message)

    def _back_to_pending(
        self, session: Transaction, row: ApprovalRequest, message: str, *, reason: str, actor: Actor = SYSTEM
    ) -> RequestView:
        approved_by = row.decided_by
        row.state = "pending"
        row.claim_token = None
        row.claim_expires_at = None
        row.decided_by = None
        row.decided_at = None
        row.result_message = message
        row.updated_at = self.clock()
        # The votes were spent on this attempt: approving again is a fresh decision on a fresh re-check.
        self.requests.clear_votes(session, row.id)
        self.audit.append(
            actor.entry(
                action_for(row.kind, "not_sent"),
                Outcome.FAILED,
                server_id=row.server_id,
                snapshot_id=row.snapshot_id,
                request_id=row.id,
                details={"reason": reason, "sent": False, "approved_by": approved_by, "message": message},
            ),
            session=session,
        )
        session.flush()
        return self._view(session, row)

    def _end_before_sending(
        self, actor: Actor, rid: int, token: str, state: str, message: str, details: dict[str, object]
    ) -> DecisionResult:
        """Closed without a call (`failed` or `stale`), only while we still hold the claim."""
        with self.db.session() as session:
            self._locked(session, rid)
            row = self.requests.held(session, rid, token)
            if row is None:
                session.rollback()
                return self._claim_lost(rid)
            row.state = state
            row.result_message = message[:2000]
            row.claim_expires_at = None
            row.updated_at = self.clock()
            self.audit.append(
                actor.entry(
                    action_for(row.kind, state),
                    Outcome.FAILED,
                    server_id=row.server_id,
                    snapshot_id=row.snapshot_id,
                    request_id=rid,
                    details={**details, "sent": False},
                ),
                session=session,
            )
            view = self._view(session, row)
        return DecisionResult(view, state, message)

    def _claim_lost(self, rid: int) -> DecisionResult:
        view = self.get(rid)
        log.warning("request #%s: claim lost before sending (now %s); this executor sent nothing", rid, view.state)
        return DecisionResult(
            view, "claim_lost", f"Request #{rid} was taken over meanwhile; nothing was sent by this attempt."
        )

    def _finish(
        self,
        actor: Actor,
        rid: int,
        token: str,
        state: str,
        message: str,
        outcome: str | None,
        details: dict[str, object],
        *,
        audited: bool = False,
    ) -> DecisionResult:
        """Record what VPS.org answered: final state and outcome row in one transaction, retried on failure."""
        message = valid_utf8(message)  # VPS.org's words go into the request row too
        last_error: Exception | None = None
        for attempt in range(OUTCOME_WRITE_ATTEMPTS):
            try:
                return self._write_outcome(actor, rid, token, state, message, outcome, details, audited)
            except Exception as error:  # the call was made: its outcome must not be lost to one bad write
                last_error = error
                log.warning("request #%s: writing the outcome failed (attempt %d): %s", rid, attempt + 1, error)
                time.sleep(0.05 * (attempt + 1))
        log.critical(
            "request #%s: VPS.org answered (%s) but the outcome could not be written to the audit log: %s",
            rid,
            state,
            last_error,
        )
        loud = (
            f":rotating_light: VPS.org answered ({message}), but the bot could not record it in the audit log. "
            "Outcome unknown for the record — check the server and tell an admin."
        )
        try:
            self.requests.flag_unrecorded(rid, token, loud, self.clock())
        except Exception:
            log.critical("request #%s: could not even flag the request needs_check", rid, exc_info=True)
        return DecisionResult(self.get(rid), "needs_check", loud)

    def _write_outcome(
        self,
        actor: Actor,
        rid: int,
        token: str,
        state: str,
        message: str,
        outcome: str | None,
        details: dict[str, object],
        audited: bool,
    ) -> DecisionResult:
        with self.db.session() as session:
            row = self._locked(session, rid)
            # Ours while `sending`; a late answer also settles a request the flagger marked "outcome unknown".
            self.requests.settle(session, rid, token, state, message, self.clock())
            session.refresh(row)
            if not audited and outcome is not None:
                verb = {"executed": "executed", "failed": "failed", "needs_check": "needs_check"}[state]
                self.audit.append(
                    actor.entry(
                        action_for(row.kind, verb),
                        outcome,
                        server_id=row.server_id,
                        snapshot_id=row.snapshot_id,
                        request_id=rid,
                        operation_id=token,
                        details=details,
                    ),
                    session=session,
                )
            view = self._view(session, row)
        return DecisionResult(view, state, message)

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
        row.state = state
        row.decided_by = actor.user_id
        row.decided_at = now
        row.reason = reason
        row.updated_at = now
        self.audit.append(
            actor.entry(
                action_for(row.kind, state),
                Outcome.OK if state != "expired" else Outcome.INFO,
                server_id=row.server_id,
                snapshot_id=row.snapshot_id,
                request_id=row.id,
                details={"reason": reason} if reason else {},
            ),
            session=session,
        )
        session.flush()
        return self._view(session, row)

    def _require_pending(self, session: Transaction, actor: Actor, row: ApprovalRequest) -> None:
        if row.state != "pending":
            self._refuse(session, actor, row, Action.REFUSED_NOT_PENDING, f"request is {row.state}")
            raise Refused(f"Request #{row.id} is already {_state_words(row.state)}; nothing was done.")

    def _refuse(self, session: Transaction, actor: Actor, row: ApprovalRequest, action: str, reason: str) -> None:
        # A refusal is recorded even though the caller's transaction then raises: write it on its own.
        self.audit.append(
            actor.entry(
                action,
                Outcome.REFUSED,
                server_id=row.server_id,
                snapshot_id=row.snapshot_id,
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

    def _view(self, session: Transaction, row: ApprovalRequest) -> RequestView:
        approvers = self.requests.approvers(session, row.id)
        return RequestView(
            id=row.id,
            kind=row.kind,
            state=row.state,
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
        )


def _state_words(state: str) -> str:
    return {
        "executing": "approved and being re-checked before sending",
        "sending": "approved and sent to VPS.org (waiting for its answer)",
        "stale": "closed without sending (the snapshot changed after it was requested)",
        "executed": "approved and carried out",
        "needs_check": "approved (outcome unknown, needs a human check)",
    }.get(state, state)


def _snapshot_words(view: RequestView) -> str:
    return f"Snapshot `{view.snapshot_name}` (#{view.snapshot_id})"


def _done(kind: str) -> str:
    return "restored" if kind == "restore" else "deleted"

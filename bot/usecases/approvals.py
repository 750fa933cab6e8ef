"""Two-person approval of destructive actions (always restores; deletes when configured).

Exactly once: a request leaves `pending` only through a compare-and-set on its state, inside a transaction that
first locks the request row, so double clicks, simultaneous approvers, retries and several replicas on one
database lead to at most one VPS.org call. A request found `executing` after a crash is never re-sent: it is
flagged `needs_check` for a human.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.usecases.access import Permission
from bot.usecases.context import SYSTEM, Actor, new_operation_id, utcnow
from bot.usecases.errors import (
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
from bot.vps.errors import Unavailable, VpsError
from storage.audit import Action, AuditLog, Outcome
from storage.db import Database
from storage.models import ApprovalRequest, ApprovalVote

if TYPE_CHECKING:
    from bot.runtime import Services


OPEN_STATES = ("pending", "executing", "needs_check")
KINDS = ("restore", "delete")


def action_for(kind: str, verb: str) -> str:
    """Audit action names: restore.* as documented; delete approvals get their own delete.approval_* names."""
    if kind == "restore":
        return f"restore.{verb}"
    return {"requested": "delete.approval_requested"}.get(verb, f"delete.approval_{verb}")


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


@dataclass(frozen=True)
class DecisionResult:
    """What a click did. `outcome`: vote_recorded | executed | failed | needs_check | rejected | cancelled | expired."""

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
    ) -> None:
        self.db = db
        self.audit = audit
        self.guard = guard
        self.snapshots = snapshots
        self.vps = vps
        self.ttl = ttl
        self.approvals_required = approvals_required
        self._required_for = required_for
        self.stale_after = stale_after
        self.clock = clock

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
        now = self.clock()
        with self.db.session() as session:
            row = ApprovalRequest(
                kind=kind,
                state="pending",
                requester_id=actor.user_id,
                requester_name=actor.name,
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                snapshot_id=snapshot.id,
                snapshot_name=snapshot.name,
                snapshot_status=snapshot.status,
                snapshot_size_mb=snapshot.size_mb,
                snapshot_created_at=snapshot.created_at,
                snapshot_description=snapshot.description,
                server_id=snapshot.server.id,
                server_name=snapshot.server.name,
                approvals_required=self.approvals_required,
                created_at=now,
                expires_at=now + self.ttl,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            self.audit.append(
                actor.entry(
                    action_for(kind, "requested"),
                    Outcome.INFO,
                    server_id=snapshot.server.id,
                    snapshot_id=snapshot.id,
                    request_id=row.id,
                    details={"name": snapshot.name, "expires_at": row.expires_at.isoformat()},
                ),
                session=session,
            )
            return self._view(session, row)

    def attach_card(self, request_id: int, channel: str, ts: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(ApprovalRequest).where(ApprovalRequest.id == request_id).values(card_channel=channel, card_ts=ts)
            )

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
            already = session.scalar(
                select(ApprovalVote.id).where(ApprovalVote.request_id == rid, ApprovalVote.approver_id == actor.user_id)
            )
            if already is not None:
                raise Refused(f"You have already approved request #{rid}; it needs someone else too.")
            session.add(
                ApprovalVote(request_id=rid, approver_id=actor.user_id, approver_name=actor.name, created_at=now)
            )
            session.flush()
            votes = session.scalar(select(func.count()).where(ApprovalVote.request_id == rid)) or 0
            self.audit.append(
                actor.entry(
                    action_for(row.kind, "approved"),
                    Outcome.OK,
                    server_id=row.server_id,
                    snapshot_id=row.snapshot_id,
                    request_id=rid,
                    details={"votes": votes, "required": row.approvals_required},
                ),
                session=session,
            )
            if votes < row.approvals_required:
                row.updated_at = now
                view = self._view(session, row)
                return DecisionResult(
                    view, "vote_recorded", f"Approval recorded ({votes} of {row.approvals_required})."
                )
            # The compare-and-set that makes execution happen at most once.
            won = session.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == rid, ApprovalRequest.state == "pending")
                .values(state="executing", decided_by=actor.user_id, decided_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if won != 1:
                raise Refused(f"Request #{rid} was decided by someone else a moment ago; nothing was done.")
        return self._execute(actor, rid)

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

    # ---- housekeeping (the background ticker calls these) --------------------------------------------------
    def expire_due(self) -> list[RequestView]:
        now = self.clock()
        expired: list[RequestView] = []
        with self.db.session() as session:
            due = session.scalars(
                select(ApprovalRequest.id).where(ApprovalRequest.state == "pending", ApprovalRequest.expires_at <= now)
            ).all()
        for rid in due:
            with self.db.session() as session:
                row = self._locked(session, rid)
                if row.state == "pending":
                    expired.append(self._close(session, row, "expired", SYSTEM, now, reason="approval window passed"))
        return expired

    def flag_stale_executions(self) -> list[RequestView]:
        """`executing` rows older than any API call could take mean a crash mid-call: flag, never re-send."""
        now = self.clock()
        flagged: list[RequestView] = []
        with self.db.session() as session:
            stale = session.scalars(
                select(ApprovalRequest.id).where(
                    ApprovalRequest.state == "executing", ApprovalRequest.updated_at <= now - self.stale_after
                )
            ).all()
        for rid in stale:
            with self.db.session() as session:
                row = self._locked(session, rid)
                if row.state != "executing":
                    continue
                row.state = "needs_check"
                row.updated_at = now
                row.result_message = (
                    "The bot stopped while this was being carried out; whether VPS.org received it is unknown. "
                    "Check the server before doing anything else."
                )
                self.audit.append(
                    SYSTEM.entry(
                        action_for(row.kind, "needs_check") if row.kind == "restore" else "delete.needs_check",
                        Outcome.UNKNOWN,
                        server_id=row.server_id,
                        snapshot_id=row.snapshot_id,
                        request_id=rid,
                        details={"reason": "found executing after a restart"},
                    ),
                    session=session,
                )
                flagged.append(self._view(session, row))
        return flagged

    def open_requests(self) -> list[RequestView]:
        with self.db.session(readonly=True) as session:
            rows = session.scalars(
                select(ApprovalRequest)
                .where(ApprovalRequest.state.in_(OPEN_STATES))
                .order_by(ApprovalRequest.created_at.desc())
                .limit(100)
            ).all()
            return [self._view(session, row) for row in rows]

    def get(self, request_id: int) -> RequestView:
        with self.db.session(readonly=True) as session:
            row = session.get(ApprovalRequest, request_id)
            if row is None:
                raise NotFoundError(f"Request #{request_id} does not exist.")
            return self._view(session, row)

    # ---- internals -----------------------------------------------------------------------------------------
    def _execute(self, actor: Actor, rid: int) -> DecisionResult:
        """We hold the request in `executing`: re-check, audit intent, call VPS.org once, record the outcome."""
        view = self.get(rid)
        try:
            snapshot = self.snapshots.find_snapshot(view.snapshot_id)
            problem = None if (snapshot.is_completed or view.kind == "delete") else f"it is now {snapshot.status}"
        except NotFoundError:
            problem = "it no longer exists"
        except UserFacingError as error:
            problem = f"it could not be checked ({error.message})"
        if problem is not None:
            message = (
                f"Snapshot `{view.snapshot_name}` (#{view.snapshot_id}) can't be {_done(view.kind)}: {problem}. "
                f"Nothing was sent to VPS.org."
            )
            return self._finish(actor, rid, "failed", message, Outcome.FAILED, {"recheck": problem})
        if view.kind == "delete":
            try:
                self.snapshots.execute_delete(actor, snapshot, request_id=rid)
            except UserFacingError as error:
                unknown = getattr(error, "outcome_unknown", False)
                state = "needs_check" if unknown else "failed"
                return self._finish(actor, rid, state, error.message, None, {"error": error.message}, audited=True)
            return self._finish(
                actor, rid, "executed", f"Snapshot `{view.snapshot_name}` deleted.", None, {}, audited=True
            )
        operation_id = new_operation_id()
        self.audit.append(  # intent, committed before the call
            actor.entry(
                Action.RESTORE_EXECUTING,
                Outcome.INTENT,
                server_id=view.server_id,
                snapshot_id=view.snapshot_id,
                request_id=rid,
                operation_id=operation_id,
                details={"requester": view.requester_id, "name": view.snapshot_name},
            )
        )
        started = time.monotonic()
        try:
            result = self.vps.restore_snapshot(view.snapshot_id)
        except VpsError as error:
            unknown = isinstance(error, Unavailable) and error.outcome_unknown
            failure = explain_vps_error(error, doing_with("restoring snapshot", view.snapshot_name))
            details = {
                "status_code": error.status_code,
                "api_message": error.api_message,
                "error": type(error).__name__,
                "duration_ms": round((time.monotonic() - started) * 1000),
            }
            return self._finish(
                actor,
                rid,
                "needs_check" if unknown else "failed",
                failure.message,
                Outcome.UNKNOWN if unknown else Outcome.FAILED,
                details,
                operation_id=operation_id,
            )
        details = {
            "status_code": 200,
            "api_message": result.message,
            "server_status": result.server_status,
            "duration_ms": round((time.monotonic() - started) * 1000),
        }
        return self._finish(
            actor,
            rid,
            "executed",
            result.message or "Restore started.",
            Outcome.OK,
            details,
            operation_id=operation_id,
        )

    def _finish(
        self,
        actor: Actor,
        rid: int,
        state: str,
        message: str,
        outcome: str | None,
        details: dict[str, object],
        *,
        operation_id: str | None = None,
        audited: bool = False,
    ) -> DecisionResult:
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, rid)
            session.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == rid, ApprovalRequest.state == "executing")
                .values(state=state, result_message=message[:2000], updated_at=now)
                .execution_options(synchronize_session=False)
            )
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
                        operation_id=operation_id,
                        details=details,
                    ),
                    session=session,
                )
            view = self._view(session, row)
        return DecisionResult(view, state, message)

    def _close(
        self,
        session: Session,
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

    def _require_pending(self, session: Session, actor: Actor, row: ApprovalRequest) -> None:
        if row.state != "pending":
            self._refuse(session, actor, row, Action.REFUSED_NOT_PENDING, f"request is {row.state}")
            raise Refused(f"Request #{row.id} is already {_state_words(row.state)}; nothing was done.")

    def _refuse(self, session: Session, actor: Actor, row: ApprovalRequest, action: str, reason: str) -> None:
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

    def _locked(self, session: Session, rid: int) -> ApprovalRequest:
        row = session.scalars(select(ApprovalRequest).where(ApprovalRequest.id == rid).with_for_update()).one_or_none()
        if row is None:
            raise NotFoundError(f"Request #{rid} does not exist.")
        return row

    def _parse_request_id(self, raw: str | int) -> int:
        try:
            return parse_id(raw, "request id")
        except InvalidInput:
            raise NotFoundError("That approval request does not exist.") from None

    def _view(self, session: Session, row: ApprovalRequest) -> RequestView:
        approvers = tuple(
            session.scalars(
                select(ApprovalVote.approver_id).where(ApprovalVote.request_id == row.id).order_by(ApprovalVote.id)
            ).all()
        )
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
        )


def _state_words(state: str) -> str:
    return {
        "executing": "approved and being carried out",
        "executed": "approved and carried out",
        "needs_check": "approved (outcome unknown, needs a human check)",
    }.get(state, state)


def _done(kind: str) -> str:
    return "restored" if kind == "restore" else "deleted"

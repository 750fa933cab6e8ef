"""Two-person approval of destructive actions (always restores; deletes, and schedules that delete, when configured).

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

How it is put together (docs/architecture.md has the picture): `ApprovalService` is a facade over small parts that
each take only what they use and share one `RequestLedger` (a request under its row lock, the claim):
`Requesting` (asking), `Deciding` (approve / reject / cancel), `Executing` (the winner carries the request out with
one `ExecutionStrategy` per `RequestKind`: `RestoreExecution` (its `SafetyStep` first), `DeleteExecution`,
`ScheduleExecution`; the snapshot kinds share `SendingSteps`), `SafetyOffers` (what the card offers),
`SnapshotGone`, `ScheduleRequesting`, `Housekeeping`. Every SQL statement lives in storage.approvals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.usecases.approval_base import (
    ApprovalPolicy,
    Clocks,
    DecisionOutcome,
    DecisionResult,
    RequestView,
    action_for,
    bound_digest,
)
from bot.usecases.approval_deciding import Deciding
from bot.usecases.approval_delete import DeleteExecution
from bot.usecases.approval_execution import OUTCOME_WRITE_ATTEMPTS, TOO_SLOW, Executing, Progress, SendingSteps
from bot.usecases.approval_housekeeping import CLAIM_EXPIRED, LEGACY_UNKNOWN, SENT_UNKNOWN, Housekeeping
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_requesting import KINDS, Requesting
from bot.usecases.approval_restore import RestoreExecution
from bot.usecases.approval_safety import SafetyStep
from bot.usecases.approval_safety_offer import SafetyOffers, SlotToFree
from bot.usecases.approval_snapshot_gone import (
    SNAPSHOT_DELETED,
    SNAPSHOT_DELETED_OUTCOME,
    SNAPSHOT_GONE_AT_DELETE,
    SNAPSHOT_GONE_OUTCOME,
    SnapshotGone,
)
from bot.usecases.approval_terms import OPEN_STATES, RequestKind, RequestState, SafetyChoice, SafetyMode
from bot.usecases.context import Actor, utcnow
from bot.usecases.guard import Guard
from bot.usecases.schedule_plan import SchedulePlan
from bot.usecases.schedule_requests import ScheduleExecution, ScheduleRequesting
from bot.usecases.server_state import ServerStates
from bot.usecases.snapshots import SnapshotService
from bot.usecases.step_up_terms import StepUpProof
from bot.vps.client import VpsClient
from storage.approvals import ApprovalRequests
from storage.audit import AuditLog
from storage.db import Database

# What the Slack side, the ticker and the tests import from here (the parts live in bot/usecases/approval_*.py).
__all__ = [
    "CLAIM_EXPIRED",
    "KINDS",
    "LEGACY_UNKNOWN",
    "OPEN_STATES",
    "OUTCOME_WRITE_ATTEMPTS",
    "SENT_UNKNOWN",
    "SNAPSHOT_DELETED",
    "SNAPSHOT_DELETED_OUTCOME",
    "SNAPSHOT_GONE_AT_DELETE",
    "SNAPSHOT_GONE_OUTCOME",
    "TOO_SLOW",
    "ApprovalPolicy",
    "ApprovalService",
    "DecisionOutcome",
    "DecisionResult",
    "RequestKind",
    "RequestState",
    "RequestView",
    "action_for",
    "bound_digest",
]


class ApprovalService:
    """The two-person rule as the Slack side and the ticker use it: a facade that builds the parts once and hands
    each call to the part that owns it (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        guard: Guard,
        snapshots: SnapshotService,
        vps: VpsClient,
        policy: ApprovalPolicy | None = None,
        server_states: ServerStates | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        """`policy`, or its fields as keywords (`ttl=…`, `safety_mode=…`: see `ApprovalPolicy`)."""
        self.policy = policy or ApprovalPolicy(**settings)
        self.clocks = Clocks(clock, sleep, monotonic)
        self.ledger = RequestLedger(db=db, audit=audit, policy=self.policy, clocks=self.clocks)
        self.db = db
        self.audit = audit
        self.requests: ApprovalRequests = self.ledger.requests
        self.vps = vps  # the one client every part calls
        # What VPS.org says about a server, read before a restore is asked for and before it is sent.
        self.server_states = server_states or ServerStates(vps)
        self.offers = SafetyOffers(ledger=self.ledger, guard=guard, snapshots=snapshots, vps=vps)
        self.gone = SnapshotGone(self.ledger)
        self.schedules = ScheduleRequesting(self.ledger)
        self.sending = SendingSteps(ledger=self.ledger, snapshots=snapshots, vps=vps, server_states=self.server_states)
        self.safety = SafetyStep(ledger=self.ledger, snapshots=snapshots, vps=vps, offers=self.offers)
        self.executing = Executing(
            self.ledger,
            {
                RequestKind.RESTORE: RestoreExecution(steps=self.sending, safety=self.safety, vps=vps),
                RequestKind.DELETE: DeleteExecution(
                    steps=self.sending, snapshots=snapshots, gone=self.gone, offers=self.offers
                ),
                RequestKind.SCHEDULE: ScheduleExecution(ledger=self.ledger, vps=vps),
            },
        )
        self.asking = Requesting(
            ledger=self.ledger, guard=guard, snapshots=snapshots, server_states=self.server_states, offers=self.offers
        )
        self.deciding = Deciding(ledger=self.ledger, guard=guard, offers=self.offers, executing=self.executing)
        self.housekeeping = Housekeeping(self.ledger)

    # ---- the clocks every part reads (a test may set them) ---------------------------------------------------
    @property
    def clock(self) -> Callable[[], datetime]:
        return self.clocks.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.clocks.clock = clock

    @property
    def sleep(self) -> Callable[[float], None]:
        return self.clocks.sleep

    @sleep.setter
    def sleep(self, sleep: Callable[[float], None]) -> None:
        self.clocks.sleep = sleep

    @property
    def monotonic(self) -> Callable[[], float]:
        return self.clocks.monotonic

    @monotonic.setter
    def monotonic(self, monotonic: Callable[[], float]) -> None:
        self.clocks.monotonic = monotonic

    # ---- what the Slack side reads of the policy -----------------------------------------------------------
    def required_for(self, kind: RequestKind) -> bool:
        return kind in self.policy.required_for

    @property
    def reason_required(self) -> bool:
        return self.policy.reason_required

    @property
    def safety_mode(self) -> SafetyMode:
        return self.policy.safety_mode

    # ---- asking --------------------------------------------------------------------------------------------
    def request(
        self, actor: Actor, snapshot_id: int, kind: RequestKind = RequestKind.RESTORE, reason: str = ""
    ) -> RequestView:
        return self.asking.request(actor, snapshot_id, kind, reason)

    def check_reason(self, kind: RequestKind, reason: str) -> None:
        self.asking.check_reason(kind, reason)

    def attach_card(self, request_id: int, channel: str, ts: str) -> None:
        self.requests.attach_card(request_id, channel, ts)

    def withdraw(self, request_id: int, reason: str) -> RequestView | None:
        return self.asking.withdraw(request_id, reason)

    def request_schedule(
        self, actor: Actor, *, server_id: int, server_name: str, plan: SchedulePlan, schedule_id: int | None
    ) -> RequestView:
        return self.schedules.request_schedule(
            actor, server_id=server_id, server_name=server_name, plan=plan, schedule_id=schedule_id
        )

    def close_for_removed(self, actor: Actor, schedule_id: int) -> list[DecisionResult]:
        return self.schedules.close_for_removed(actor, schedule_id)

    # ---- deciding (a click's request id was parsed where it came in: bot/slack/listeners/ids.py) -------------
    def approve(
        self,
        actor: Actor,
        request_id: int,
        safety: SafetyChoice = SafetyChoice.DEFAULT,
        progress: Progress | None = None,
        step_up: StepUpProof | None = None,
    ) -> DecisionResult:
        return self.deciding.approve(actor, request_id, safety, progress, step_up)

    def reject(self, actor: Actor, request_id: int, reason: str = "") -> DecisionResult:
        return self.deciding.reject(actor, request_id, reason)

    def cancel(self, actor: Actor, request_id: int) -> DecisionResult:
        return self.deciding.cancel(actor, request_id)

    def oldest_to_free(self, actor: Actor, request_id: int) -> SlotToFree:
        return self.offers.oldest_to_free(actor, request_id)

    def refresh_offers_on_server(self, server_id: int) -> list[RequestView]:
        return self.offers.refresh_offers_on_server(server_id)

    # ---- a deleted snapshot's requests -----------------------------------------------------------------------
    def open_for_snapshot(self, snapshot_id: int) -> list[RequestView]:
        return self.gone.open_for_snapshot(snapshot_id)

    def close_for_deleted(
        self, actor: Actor, snapshot_id: int, *, except_request: int | None = None, gone_at_delete: bool = False
    ) -> list[DecisionResult]:
        return self.gone.close_for_deleted(
            actor, snapshot_id, except_request=except_request, gone_at_delete=gone_at_delete
        )

    # ---- reading and housekeeping ----------------------------------------------------------------------------
    def get(self, request_id: int) -> RequestView:
        return self.ledger.get(request_id)

    def open_requests(self) -> list[RequestView]:
        return self.housekeeping.open_requests()

    def open_counts(self) -> dict[str, int]:
        return self.housekeeping.open_counts()

    def expire_due(self) -> list[RequestView]:
        return self.housekeeping.expire_due()

    def flag_stale_executions(self) -> list[DecisionResult]:
        return self.housekeeping.flag_stale_executions()

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

The parts, one idea each: approval_requesting (asking), approval_deciding (approve / reject / cancel),
approval_execution (carrying out under the claim), schedule_requests (a schedule made or changed while deletes need
approval: asked for, and applied on approval), approval_snapshot_gone (requests whose snapshot was deleted),
approval_housekeeping (expiry, stale claims), approval_base
(views, digest, shared helpers). Every SQL statement lives in storage.approvals.
"""

from __future__ import annotations

from bot.usecases.approval_base import (
    ApprovalBase,
    DecisionOutcome,
    DecisionResult,
    RequestView,
    action_for,
    bound_digest,
)
from bot.usecases.approval_deciding import Deciding
from bot.usecases.approval_execution import OUTCOME_WRITE_ATTEMPTS, TOO_SLOW, Executing
from bot.usecases.approval_housekeeping import CLAIM_EXPIRED, LEGACY_UNKNOWN, SENT_UNKNOWN, Housekeeping
from bot.usecases.approval_requesting import KINDS, Requesting
from bot.usecases.approval_snapshot_gone import (
    SNAPSHOT_DELETED,
    SNAPSHOT_DELETED_OUTCOME,
    SNAPSHOT_GONE_AT_DELETE,
    SNAPSHOT_GONE_OUTCOME,
)
from storage.approvals import OPEN_STATES, RequestState

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
    "ApprovalBase",
    "ApprovalService",
    "DecisionOutcome",
    "DecisionResult",
    "Executing",
    "RequestState",
    "RequestView",
    "action_for",
    "bound_digest",
]


class ApprovalService(Requesting, Deciding, Housekeeping):
    """The two-person rule: asking (`Requesting`), deciding (`Deciding`), carrying out under a claim
    (`Executing`, via `Deciding`) and housekeeping (`Housekeeping`); see each module's rules."""

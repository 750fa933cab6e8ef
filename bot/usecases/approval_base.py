"""What every part of an approval request shares: the views it hands out, what an approval is bound to, the
operator's policy and the clocks (closing, refusing and reading a request under its row lock: approval_ledger).

Rules kept here:
- No ORM row reaches the use cases (storage hands out frozen `RequestRow`s); callers get `RequestView` /
  `DecisionResult` (kinds, states and the safety snapshot's terms typed, from approval_terms).
- A request id is parsed once, where it comes in (bot/slack/listeners/ids.py); the parts take an `int`.
- The approval is bound to `bound_digest`: exactly what the card showed (snapshot id, server id, name,
  created_at, the requester's reason).
- Audit action names come from the vocabulary in storage.audit (`action_for` is a lookup, never a format).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.usecases.approval_terms import Chosen, RequestKind, RequestState, SafetyMode, SafetyOffer, SafetyState
from bot.usecases.context import utcnow
from bot.usecases.schedule_plan import SchedulePlan
from bot.usecases.wording import Text, code, sentence
from storage.approval_rows import RequestRow
from storage.audit import APPROVAL_ACTIONS, Action, valid_utf8

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


def snapshot_of(row: RequestRow | RequestView) -> int | None:
    """The snapshot an audit row of this request names: none for a `schedule` request (its column holds 0)."""
    return None if row.kind == RequestKind.SCHEDULE else row.snapshot_id


def action_for(kind: str, verb: str) -> Action:
    """The audit action of one step of a request (restore.* as documented; delete approvals: delete.approval_*;
    schedule approvals: schedule.approval_*)."""
    return APPROVAL_ACTIONS[(kind, verb)]


@dataclass(frozen=True)
class RequestView:
    """A request as it is now, for rendering: its stored row (storage.approval_rows.RequestRow) with its terms typed
    and what the policy adds (built by `RequestLedger.view`, the one way)."""

    id: int
    kind: RequestKind
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
    safety_offer: SafetyOffer = SafetyOffer.NONE
    safety_choice: Chosen = ""
    safety_snapshot_id: int | None = None
    safety_state: SafetyState = SafetyState.NONE
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


@dataclass(frozen=True)
class ApprovalPolicy:
    """The operator's settings every part reads (see docs/operations.md): plain values, parsed at the edge."""

    ttl: timedelta = timedelta(minutes=60)  # RESTORE_APPROVAL_TTL_MINUTES
    approvals_required: int = 1  # RESTORE_APPROVALS_REQUIRED
    required_for: frozenset[RequestKind] = frozenset({RequestKind.RESTORE})  # APPROVAL_REQUIRED_FOR
    reason_required: bool = False  # RESTORE_REASON_REQUIRED: a restore request must say why
    stale_after: timedelta = timedelta(minutes=5)  # how long a sent call may take before it is "outcome unknown"
    recheck_deadline: timedelta = timedelta(seconds=60)
    claim_ttl: timedelta = timedelta(seconds=90)  # never shorter than the re-check's deadline plus a second
    safety_mode: SafetyMode = SafetyMode.OFF  # RESTORE_SAFETY_SNAPSHOT
    safety_timeout: timedelta = timedelta(minutes=15)  # how long the safety snapshot may take to complete
    safety_poll_seconds: float = 30.0  # the longest wait between polls of the safety snapshot
    undo_slots_reserved: int = 0  # SNAPSHOT_RESERVE_UNDO_SLOT: slots an approved schedule must leave free
    step_up_for: frozenset[RequestKind] = frozenset()  # APPROVAL_STEP_UP_FOR when APPROVAL_STEP_UP is on

    def __post_init__(self) -> None:
        object.__setattr__(self, "required_for", frozenset(RequestKind(kind) for kind in self.required_for))
        object.__setattr__(self, "step_up_for", frozenset(RequestKind(kind) for kind in self.step_up_for))
        object.__setattr__(self, "safety_mode", SafetyMode(self.safety_mode))
        object.__setattr__(self, "claim_ttl", max(self.claim_ttl, self.recheck_deadline + timedelta(seconds=1)))


@dataclass
class Clocks:
    """The clocks the parts share, settable as one (a test moves them all): `clock` is this replica's wall clock
    (timestamps for people, never a claim's deadline: that is the database's), `sleep` the wait between polls of
    the safety snapshot, `monotonic` its deadline."""

    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def state_words(state: RequestState) -> str:
    return {
        RequestState.EXECUTING: "approved and being re-checked before sending",
        RequestState.SENDING: "approved and sent to VPS.org (waiting for its answer)",
        RequestState.STALE: "closed without sending (the snapshot changed, or was deleted, after it was requested)",
        RequestState.EXECUTED: "approved and carried out",
        RequestState.NEEDS_CHECK: "approved (outcome unknown, needs a human check)",
    }.get(state, state)


def snapshot_words(view: RequestView) -> Text:
    return Text("Snapshot {} (#{})").format(code(view.snapshot_name, None), view.snapshot_id)


def done_word(kind: RequestKind) -> str:
    return "restored" if kind == RequestKind.RESTORE else "deleted"

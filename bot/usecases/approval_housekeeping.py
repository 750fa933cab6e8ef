"""Housekeeping the background ticker runs: expiring unanswered requests, flagging stale claims, listing.

Rules kept here:
- A pending request past its approval window is closed as `expired` (re-checked under its row lock).
- The flagger takes only requests whose claim has expired by the DATABASE's clock: `executing` (the restore was
  not sent; at most its safety snapshot was being made) goes back to `pending`; `sending` (the call may have
  gone out) becomes `needs_check`, "outcome unknown: check the server", and is never re-sent. An answer that
  arrives later still settles it.
"""

from __future__ import annotations

from bot.usecases.approval_base import DecisionOutcome, DecisionResult, RequestView, action_for, snapshot_of
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_terms import RequestState, SafetyChoice, SafetyState
from bot.usecases.context import SYSTEM
from bot.usecases.wording import Text
from storage.audit import Outcome

CLAIM_EXPIRED = Text(
    "The bot stopped before sending this (its claim on the request ran out); nothing was sent to VPS.org. "
    "Approve again, or cancel."
)
SAFETY_CLAIM_EXPIRED = Text(
    "The bot stopped while taking the safety snapshot (its claim on the request ran out); the restore was NOT sent. "
    "Approve again (a safety snapshot it made is reused), or cancel."
)
SENT_UNKNOWN = Text(
    "Sent to VPS.org, but the bot stopped before it recorded the answer: outcome unknown — check the server "
    "before doing anything else. It will not be re-sent."
)
LEGACY_UNKNOWN = Text(
    "The bot stopped while this was being carried out; whether VPS.org received it is unknown. "
    "Check the server before doing anything else."
)


class Housekeeping:
    def __init__(self, ledger: RequestLedger) -> None:
        self.ledger = ledger
        self.requests = ledger.requests
        self.db = ledger.db
        self.audit = ledger.audit

    def expire_due(self) -> list[RequestView]:
        now = self.ledger.now()
        expired: list[RequestView] = []
        for rid in self.requests.pending_due(now):
            with self.db.session() as session:
                row = self.ledger.locked(session, rid)
                if row.state == RequestState.PENDING:
                    expired.append(
                        self.ledger.close(
                            session, row, RequestState.EXPIRED, SYSTEM, now, reason="approval window passed"
                        )
                    )
        return expired

    def flag_stale_executions(self) -> list[DecisionResult]:
        """Requests whose executor's claim has expired (by the database's clock): it died or hung.

        `executing` never reached the check-and-mark, so nothing was sent: back to `pending`. `sending` may have
        reached VPS.org: `needs_check`, never re-sent. Rows from before claims existed (`executing`, no claim)
        keep the old rule: older than `stale_after` means outcome unknown.
        """
        legacy_before = self.ledger.now() - self.ledger.policy.stale_after
        stale = self.requests.stale_claims(legacy_before)
        flagged: list[DecisionResult] = []
        for rid in stale:
            with self.db.session() as session:
                # Locked and re-read: the executor may have finished, or renewed, meanwhile.
                row = self.requests.stale_claim(session, rid, legacy_before)
                if row is None:
                    continue
                if row.state == RequestState.EXECUTING and row.claim_token is not None:
                    # The safety snapshot's create may have gone out, but never the restore: back to pending.
                    taking_safety = (
                        row.safety_choice == SafetyChoice.SNAPSHOT and row.safety_state != SafetyState.COMPLETED
                    )
                    message = SAFETY_CLAIM_EXPIRED if taking_safety else CLAIM_EXPIRED
                    view = self.ledger.back_to_pending(session, row, message, reason="claim expired before sending")
                    flagged.append(DecisionResult(view, DecisionOutcome.NOT_SENT, message))
                    continue
                message = SENT_UNKNOWN if row.state == RequestState.SENDING else LEGACY_UNKNOWN
                row = self.requests.flag_needs_check(session, rid, str(message), self.ledger.now())
                self.audit.append(
                    SYSTEM.entry(
                        action_for(row.kind, RequestState.NEEDS_CHECK),
                        Outcome.UNKNOWN,
                        server_id=row.server_id,
                        snapshot_id=snapshot_of(row),
                        request_id=rid,
                        operation_id=row.claim_token,
                        details={
                            "reason": "claim expired after sending" if row.claim_token else "found executing",
                            "sent": "unknown",
                        },
                    ),
                    session=session,
                )
                flagged.append(DecisionResult(self.ledger.view(row), DecisionOutcome.NEEDS_CHECK, message))
        return flagged

    def open_requests(self) -> list[RequestView]:
        with self.db.session(readonly=True) as session:
            rows = self.requests.open(session, limit=100)
        return [self.ledger.view(row) for row in rows]

    def open_counts(self) -> dict[str, int]:
        """How many requests are in each open state (every open state present, 0 when none)."""
        with self.db.session(readonly=True) as session:
            return self.requests.count_open(session)

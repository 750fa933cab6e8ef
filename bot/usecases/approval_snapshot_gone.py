"""Requests left behind by a deleted snapshot: found before the delete (for its warning), closed after it.

Rules kept here:
- Only a `pending` request is closed, as `stale`, under its row lock, with its audit row in the same transaction;
  a request already approved (`executing`, `sending`) is left to its executor, whose re-check finds the snapshot
  gone and sends nothing; one flagged `needs_check` stays for a human.
- Closing runs after the delete's outcome row is committed. A request recorded while the delete was in flight
  either commits before that row (and is closed here) or sees it and is refused (`Requesting.request`).
- Closing also follows VPS.org's 404 to the DELETE itself (`gone_at_delete`: the snapshot was already gone,
  which is authoritative), with its own reason, so the card says VPS.org reported it gone rather than "deleted
  by"; a listing that merely did not contain the snapshot closes nothing (it may be incomplete or stale).
- The delete stands whatever happens here: a failure to close is logged, never raised; the approval path's re-check
  still refuses to act on a snapshot that is gone.
"""

from __future__ import annotations

from bot.usecases.approval_base import DecisionOutcome, DecisionResult, RequestView, log
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_terms import RequestState
from bot.usecases.context import Actor
from bot.usecases.wording import sentence

SNAPSHOT_DELETED = "the snapshot was deleted"  # the close reason the card and the announcer recognise
SNAPSHOT_DELETED_OUTCOME = DecisionOutcome.SNAPSHOT_DELETED
# The close reason when VPS.org answered 404 to the bot's DELETE: the snapshot was gone before the bot deleted it.
SNAPSHOT_GONE_AT_DELETE = "VPS.org reported the snapshot gone when it was deleted"
SNAPSHOT_GONE_OUTCOME = DecisionOutcome.SNAPSHOT_GONE


class SnapshotGone:
    def __init__(self, ledger: RequestLedger) -> None:
        self.ledger = ledger

    def open_for_snapshot(self, snapshot_id: int) -> list[RequestView]:
        """Open requests about this snapshot, oldest first (for the delete confirmation's warning)."""
        with self.ledger.db.session(readonly=True) as session:
            rows = self.ledger.requests.open_for_snapshot(session, snapshot_id)
        return [self.ledger.view(row) for row in rows]

    def close_for_deleted(
        self, actor: Actor, snapshot_id: int, *, except_request: int | None = None, gone_at_delete: bool = False
    ) -> list[DecisionResult]:
        """Close every pending request about a snapshot `actor` just deleted, as `stale` (audited);
        `gone_at_delete`: VPS.org answered 404 to `actor`'s DELETE, so it was gone already."""
        try:
            return self._close_for_deleted(actor, snapshot_id, except_request, gone_at_delete)
        except Exception:  # the delete is done and recorded; the approval re-check still guards these requests
            log.exception("snapshot #%s was deleted but its open requests could not be closed", snapshot_id)
            return []

    def _close_for_deleted(
        self, actor: Actor, snapshot_id: int, except_request: int | None, gone_at_delete: bool
    ) -> list[DecisionResult]:
        reason, outcome = (
            (SNAPSHOT_GONE_AT_DELETE, SNAPSHOT_GONE_OUTCOME)
            if gone_at_delete
            else (SNAPSHOT_DELETED, SNAPSHOT_DELETED_OUTCOME)
        )
        with self.ledger.db.session(readonly=True) as session:
            ids = [row.id for row in self.ledger.requests.open_for_snapshot(session, snapshot_id, limit=100)]
        closed: list[DecisionResult] = []
        for rid in ids:
            if rid == except_request:
                continue
            with self.ledger.db.session() as session:
                row = self.ledger.locked(session, rid)
                if row.state != RequestState.PENDING:  # decided meanwhile, or in its executor's hands
                    continue
                view = self.ledger.close(session, row, RequestState.STALE, actor, self.ledger.now(), reason=reason)
            message = (
                f"Request #{rid} was closed: VPS.org reported snapshot #{snapshot_id} gone when it was deleted. "
                "Nothing was sent to VPS.org."
                if gone_at_delete
                else f"Request #{rid} was closed: snapshot #{snapshot_id} was deleted. Nothing was sent to VPS.org."
            )
            closed.append(DecisionResult(view, outcome, sentence(message)))
        return closed

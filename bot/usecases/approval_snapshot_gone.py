"""Requests left behind by a deleted snapshot: found before the delete (for its warning), closed after it.

Rules kept here:
- Only a `pending` request is closed, as `stale`, under its row lock, with its audit row in the same transaction;
  a request already approved (`executing`, `sending`) is left to its executor, whose re-check finds the snapshot
  gone and sends nothing; one flagged `needs_check` stays for a human.
- Closing runs after the delete's outcome row is committed. A request recorded while the delete was in flight
  either commits before that row (and is closed here) or sees it and is refused (`Requesting.request`).
- The delete stands whatever happens here: a failure to close is logged, never raised; the approval path's re-check
  still refuses to act on a snapshot that is gone.
"""

from __future__ import annotations

from bot.usecases.approval_base import ApprovalBase, DecisionResult, RequestView, log
from bot.usecases.context import Actor
from storage.approvals import RequestState

SNAPSHOT_DELETED = "the snapshot was deleted"  # the close reason the card and the announcer recognise
SNAPSHOT_DELETED_OUTCOME = "snapshot_deleted"


class SnapshotGone(ApprovalBase):
    def open_for_snapshot(self, snapshot_id: int) -> list[RequestView]:
        """Open requests about this snapshot, oldest first (for the delete confirmation's warning)."""
        with self.db.session(readonly=True) as session:
            return [self._view(session, row) for row in self.requests.open_for_snapshot(session, snapshot_id)]

    def close_for_deleted(
        self, actor: Actor, snapshot_id: int, *, except_request: int | None = None
    ) -> list[DecisionResult]:
        """Close every pending request about a snapshot `actor` just deleted, as `stale` (audited)."""
        try:
            return self._close_for_deleted(actor, snapshot_id, except_request)
        except Exception:  # the delete is done and recorded; the approval re-check still guards these requests
            log.exception("snapshot #%s was deleted but its open requests could not be closed", snapshot_id)
            return []

    def _close_for_deleted(self, actor: Actor, snapshot_id: int, except_request: int | None) -> list[DecisionResult]:
        with self.db.session(readonly=True) as session:
            ids = [row.id for row in self.requests.open_for_snapshot(session, snapshot_id, limit=100)]
        closed: list[DecisionResult] = []
        for rid in ids:
            if rid == except_request:
                continue
            with self.db.session() as session:
                row = self._locked(session, rid)
                if row.state != RequestState.PENDING:  # decided meanwhile, or in its executor's hands
                    continue
                view = self._close(session, row, RequestState.STALE, actor, self.clock(), reason=SNAPSHOT_DELETED)
            message = f"Request #{rid} was closed: snapshot #{snapshot_id} was deleted. Nothing was sent to VPS.org."
            closed.append(DecisionResult(view, SNAPSHOT_DELETED_OUTCOME, message))
        return closed

"""Carrying out an approved delete: the strategy for `RequestKind.DELETE`.

Rules kept here (the shared ones are approval_execution's):
- The delete's own intent row (the claim token as its operation id) is written by the snapshot service just before
  its call, after the one check-and-mark.
- Its other requests can never be carried out now: closed as `stale` (approval_snapshot_gone), also when VPS.org
  answered 404 to the DELETE itself; a slot freed on the server re-checks the safety offer of its waiting restores.
"""

from __future__ import annotations

from dataclasses import replace

from bot.usecases.approval_base import DecisionResult, RequestView
from bot.usecases.approval_execution import Progress, SendingSteps
from bot.usecases.approval_safety_offer import SafetyOffers
from bot.usecases.approval_snapshot_gone import SnapshotGone
from bot.usecases.approval_terms import RequestState
from bot.usecases.context import Actor
from bot.usecases.errors import AlreadyGone, UserFacingError
from bot.usecases.pin_rules import PinnedSnapshot
from bot.usecases.snapshots import SnapshotService
from bot.usecases.wording import Text, code
from bot.vps.models import Snapshot
from storage.audit import Outcome


class DeleteExecution:
    def __init__(
        self, *, steps: SendingSteps, snapshots: SnapshotService, gone: SnapshotGone, offers: SafetyOffers
    ) -> None:
        self.steps = steps
        self.ledger = steps.ledger
        self.snapshots = snapshots
        self.gone = gone
        self.offers = offers

    def carry_out(self, actor: Actor, view: RequestView, token: str, progress: Progress | None) -> DecisionResult:
        checked = self.steps.recheck(actor, view, token, read_server=False)
        if isinstance(checked, DecisionResult):
            return checked
        if not self.steps.mark_sending(actor, view, token):
            return self.ledger.claim_lost(view.id)
        return self._send_delete(actor, view, checked.snapshot, token)

    def _send_delete(self, actor: Actor, view: RequestView, snapshot: Snapshot, token: str) -> DecisionResult:
        try:
            self.snapshots.execute_delete(actor, snapshot, request_id=view.id, operation_id=token)
        except AlreadyGone as error:  # VPS.org's 404 to the DELETE itself: its other requests can't happen either
            result = self.steps.finish(
                actor, view.id, token, RequestState.FAILED, error.message, None, {}, audited=True
            )
            closed = self.gone.close_for_deleted(actor, view.snapshot_id, except_request=view.id, gone_at_delete=True)
            return replace(result, closed=tuple(closed)) if closed else result
        except PinnedSnapshot as pinned:  # pinned after the request was opened: refused before any intent or call
            details: dict[str, object] = {"error": "pinned", "pinned_by": pinned.pin.pinned_by}
            return self.steps.finish(
                actor, view.id, token, RequestState.FAILED, pinned.message, Outcome.REFUSED, details
            )
        except UserFacingError as error:
            state = RequestState.NEEDS_CHECK if getattr(error, "outcome_unknown", False) else RequestState.FAILED
            return self.steps.finish(actor, view.id, token, state, error.message, None, {}, audited=True)
        result = self.steps.finish(
            actor,
            view.id,
            token,
            RequestState.EXECUTED,
            Text("Snapshot {} deleted.").format(code(view.snapshot_name, None)),
            None,
            {},
            audited=True,
        )
        # Its other requests (a restore of it, say) can never be carried out now: closed, and their cards say why.
        closed = self.gone.close_for_deleted(actor, view.snapshot_id, except_request=view.id)
        # A slot is free now: restores of that server whose card said "Server full" offer the safety snapshot.
        redrawn = self.offers.refresh_offers_on_server(view.server_id)
        return replace(result, closed=tuple(closed), redrawn=tuple(redrawn))

"""Carrying out an approved restore: the strategy for `RequestKind.RESTORE`.

Rules kept here (the shared ones are approval_execution's):
- A restore whose approver chose a safety snapshot first gets it (approval_safety), before anything else, under the
  same claim; the restore goes on only once it is completed. The card is shown the request while it is taken.
- The re-check reads the server's state too (bot/usecases/server_state.py): suspended or already restoring closes
  the request as `failed` with the reason, nothing sent; a state that could not be read is noted with the outcome.
- Only a `completed` snapshot is restored.
- VPS.org's answer must name the approved server and snapshot; any other is `needs_check`, logged at CRITICAL.
"""

from __future__ import annotations

from bot.usecases.approval_base import DecisionResult, RequestView, log, snapshot_words
from bot.usecases.approval_execution import Progress, SendingSteps
from bot.usecases.approval_safety import SafetyStep, undo_hint
from bot.usecases.approval_terms import RequestState, SafetyChoice, SafetyState
from bot.usecases.audited_call import CallResult, audited_call
from bot.usecases.context import Actor
from bot.usecases.errors import doing_with, explain_vps_error
from bot.usecases.restore_checks import unchecked_note, unsendable
from bot.usecases.wording import Text, alarm, plain, sentence
from bot.vps.client import VpsClient
from bot.vps.models import RestoreResult
from storage.audit import Outcome


class RestoreExecution:
    def __init__(self, *, steps: SendingSteps, safety: SafetyStep, vps: VpsClient) -> None:
        self.steps = steps
        self.ledger = steps.ledger
        self.safety = safety
        self.vps = vps

    def carry_out(self, actor: Actor, view: RequestView, token: str, progress: Progress | None) -> DecisionResult:
        rid = view.id
        if view.safety_choice == SafetyChoice.SNAPSHOT:
            if progress is not None:
                try:  # the card shows the request approved while the safety snapshot is made (minutes)
                    progress(view)
                except Exception:
                    log.warning("request #%s: showing progress failed", rid, exc_info=True)
            # The undo first (bot/usecases/approval_safety.py): no restore without the safety snapshot promised.
            safety = self.safety.take(actor, view, token)
            if safety.claim_lost:
                return self.ledger.claim_lost(rid)
            if not safety.ready:
                return self.ledger.give_up(actor, rid, token, safety.message, safety.reason)
            view = self.ledger.get(rid)
        checked = self.steps.recheck(actor, view, token, read_server=True)
        if isinstance(checked, DecisionResult):
            return checked
        snapshot, server = checked.snapshot, checked.server
        if not snapshot.is_completed:
            message = Text("{} can't be restored: it is now {}. Nothing was sent to VPS.org.").format(
                snapshot_words(view), plain(snapshot.status, 40)
            )
            return self.steps.end_before_sending(
                actor, rid, token, RequestState.FAILED, message, {"recheck": snapshot.status}
            )
        blocked = unsendable(server, view.server_name) if server is not None else None
        if server is not None and blocked is not None:
            return self.steps.end_before_sending(
                actor,
                rid,
                token,
                RequestState.FAILED,
                sentence(blocked),
                {"recheck": f"server status is {server.status}"},
            )
        if not self.steps.mark_sending(actor, view, token):
            return self.ledger.claim_lost(rid)
        return self._send_restore(actor, view, token, unchecked_note(server) if server is not None else "")

    def _send_restore(self, actor: Actor, view: RequestView, token: str, note: str = "") -> DecisionResult:
        # The intent row was committed with the `sending` mark (`SendingSteps.mark_sending`); the outcome joins the
        # final state.
        return audited_call(
            lambda: self.vps.restore_snapshot(view.snapshot_id),
            write_intent=None,
            write_outcome=lambda result: self._restore_outcome(actor, view, token, result, note),
        )

    def _restore_outcome(
        self, actor: Actor, view: RequestView, token: str, call: CallResult[RestoreResult], note: str = ""
    ) -> DecisionResult:
        if call.error is not None:
            error = call.error
            failure = explain_vps_error(error, doing_with("restoring snapshot", view.snapshot_name))
            details: dict[str, object] = {
                "status_code": error.status_code,
                "api_message": error.api_message,
                "error": type(error).__name__,
                "duration_ms": call.duration_ms,
            }
            return self.steps.finish(
                actor,
                view.id,
                token,
                RequestState.NEEDS_CHECK if call.outcome_unknown else RequestState.FAILED,
                failure.message,
                call.failure_outcome,
                details,
            )
        result = call.answer
        assert result is not None
        details = {
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
            message = Text(
                "{} VPS.org says it restored onto {}, but the approval was for {} ({} → {}). "
                "Outcome unknown — check BOTH servers now."
            ).format(alarm(), sentence(answered), sentence(approved), snapshot_words(view), plain(view.server_name, 80))
            details["mismatch"] = f"answered {answered}, approved {approved}"
            log.critical("request #%s: restore answer names %s, approved %s", view.id, answered, approved)
            return self.steps.finish(actor, view.id, token, RequestState.NEEDS_CHECK, message, Outcome.UNKNOWN, details)
        said = plain(result.message, 1500) if result.message else Text("Restore started.")
        if note:  # the server's state could not be checked before sending: say so with the outcome
            details["server_check"] = str(note)
            said = Text("{} ({})").format(said, plain(note, 300))
        if view.safety_state == SafetyState.COMPLETED and view.safety_snapshot_id is not None:
            said = Text("{} {}").format(said, undo_hint(view.safety_snapshot_id))
            details["safety_snapshot_id"] = view.safety_snapshot_id
        return self.steps.finish(actor, view.id, token, RequestState.EXECUTED, said, Outcome.OK, details)

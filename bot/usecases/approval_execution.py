"""Carrying out an approved request under its claim: re-check, compare, check-and-mark, call once, record.

Rules kept here:
- A restore whose approver chose a safety snapshot first gets it (approval_safety) before anything else; the
  restore goes on only once it is completed, under the same claim.
- The pre-call phase (re-listing the snapshot, every page and retry) has a hard total deadline shorter than the
  claim. Past it nothing is sent and the request goes back to `pending` ("approve again"; its votes are spent).
- Just before sending, what VPS.org lists now is compared with the bound digest: any difference closes the
  request as `stale`, naming what changed; nothing is sent.
- A restore re-reads the server's state too (bot/usecases/server_state.py): suspended or already restoring closes
  the request as `failed` with the reason, nothing sent; a state that could not be read is noted, not a refusal.
- The VPS.org call is made only after one atomic check-and-mark: `executing` → `sending`, only while this token's
  claim is unexpired; the intent audit row commits in the same transaction. No other path reaches the call.
- An executor whose claim lapsed or was taken over changes nothing (`claim_lost`).
- The outcome row is written in the same transaction as the final state, retried; if it still cannot be written
  the request is flagged `needs_check` and logged at CRITICAL, never left in `sending`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from bot.usecases.approval_base import (
    DecisionResult,
    RequestView,
    action_for,
    bound_digest,
    bound_fields,
    done_word,
    log,
    snapshot_of,
    snapshot_words,
)
from bot.usecases.approval_safety import SafetyChoice, SafetyState, SafetyStep, undo_hint
from bot.usecases.approval_snapshot_gone import SnapshotGone
from bot.usecases.audited_call import CallResult, audited_call
from bot.usecases.context import Actor
from bot.usecases.errors import (
    AlreadyGone,
    CouldNotConfirm,
    NotFoundError,
    UserFacingError,
    doing_with,
    explain_vps_error,
)
from bot.usecases.restore_checks import unchecked_note, unsendable
from bot.usecases.schedule_requests import ScheduleRequesting
from bot.usecases.wording import Text, alarm, code, plain, sentence
from bot.vps.errors import DeadlineExceeded
from bot.vps.models import RestoreResult, Snapshot
from storage.approvals import RequestState
from storage.audit import Action, Outcome, valid_utf8

OUTCOME_WRITE_ATTEMPTS = 3
TOO_SLOW = Text("VPS.org was too slow to re-check the snapshot; nothing was sent. Approve again when it answers.")


class Executing(SnapshotGone, SafetyStep, ScheduleRequesting):
    def _execute(
        self, actor: Actor, rid: int, token: str, progress: Callable[[RequestView], None] | None = None
    ) -> DecisionResult:
        """We hold the claim: re-check (bounded), compare with what was approved, check-and-mark, call once."""
        view = self.get(rid)
        if view.kind == "schedule":  # no snapshot and no call to VPS.org: the approved schedule is applied
            return self._apply_schedule(actor, rid, token)
        if view.kind == "restore" and view.safety_choice == SafetyChoice.SNAPSHOT:
            if progress is not None:
                try:  # the card shows the request approved while the safety snapshot is made (minutes)
                    progress(view)
                except Exception:
                    log.warning("request #%s: showing progress failed", rid, exc_info=True)
            # The undo first (bot/usecases/approval_safety.py): no restore without the safety snapshot promised.
            safety = self._take_safety_snapshot(actor, view, token)
            if safety.claim_lost:
                return self._claim_lost(rid)
            if not safety.ready:
                return self._give_up(actor, rid, token, safety.message, safety.reason)
            view = self.get(rid)
        deadline = self.vps.clock() + self.recheck_deadline.total_seconds()
        try:
            snapshot = self.snapshots.find_snapshot(view.snapshot_id, deadline=deadline)
        except DeadlineExceeded:
            return self._give_up(actor, rid, token, TOO_SLOW, "re-check deadline passed")
        except CouldNotConfirm:
            message = Text(
                "{} could not be confirmed: VPS.org's snapshot list was incomplete, so nothing was sent. "
                "Approve again in a minute."
            ).format(snapshot_words(view))
            return self._give_up(actor, rid, token, message, "listing incomplete")
        except NotFoundError:
            return self._end_before_sending(
                actor,
                rid,
                token,
                RequestState.FAILED,
                Text("{} can't be {}: it no longer exists. Nothing was sent to VPS.org.").format(
                    snapshot_words(view), sentence(done_word(view.kind))
                ),
                {"recheck": "it no longer exists"},
            )
        except UserFacingError as error:
            return self._give_up(
                actor, rid, token, error.message + Text(" Nothing was sent; approve again."), "re-check failed"
            )
        server = self.server_states.state(view.server_id, deadline=deadline) if view.kind == "restore" else None
        if self.vps.clock() > deadline:  # an answer that came in just too late is not trusted to be current
            return self._give_up(actor, rid, token, TOO_SLOW, "re-check deadline passed")
        if not self._renew(rid, token):
            return self._claim_lost(rid)
        changes = self._changes(view, snapshot)
        if changes:
            message = Text(
                "Not sent: {} is no longer what was approved — {}. "
                "Nothing was sent to VPS.org; ask again if it is still wanted."
            ).format(snapshot_words(view), Text("; ").join(changes))
            return self._end_before_sending(
                actor, rid, token, RequestState.STALE, message, {"changed": [str(change) for change in changes]}
            )
        if view.kind == "restore" and not snapshot.is_completed:
            message = Text("{} can't be restored: it is now {}. Nothing was sent to VPS.org.").format(
                snapshot_words(view), plain(snapshot.status, 40)
            )
            return self._end_before_sending(
                actor, rid, token, RequestState.FAILED, message, {"recheck": snapshot.status}
            )
        blocked = unsendable(server, view.server_name) if server is not None else None
        if server is not None and blocked is not None:
            return self._end_before_sending(
                actor, rid, token, RequestState.FAILED, blocked, {"recheck": f"server status is {server.status}"}
            )
        if not self._mark_sending(actor, view, token):
            return self._claim_lost(rid)
        if view.kind == "delete":
            return self._send_delete(actor, view, snapshot, token)
        return self._send_restore(actor, view, token, unchecked_note(server) if server is not None else "")

    def _send_restore(self, actor: Actor, view: RequestView, token: str, note: str = "") -> DecisionResult:
        # The intent row was committed with the `sending` mark (`_mark_sending`); the outcome joins the final state.
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
                RequestState.NEEDS_CHECK if call.outcome_unknown else RequestState.FAILED,
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
            message = Text(
                "{} VPS.org says it restored onto {}, but the approval was for {} ({} → {}). "
                "Outcome unknown — check BOTH servers now."
            ).format(alarm(), sentence(answered), sentence(approved), snapshot_words(view), plain(view.server_name, 80))
            details["mismatch"] = f"answered {answered}, approved {approved}"
            log.critical("request #%s: restore answer names %s, approved %s", view.id, answered, approved)
            return self._finish(actor, view.id, token, RequestState.NEEDS_CHECK, message, Outcome.UNKNOWN, details)
        said = plain(result.message, 1500) if result.message else Text("Restore started.")
        if note:  # the server's state could not be checked before sending: say so with the outcome
            details["server_check"] = str(note)
            said = Text("{} ({})").format(said, plain(note, 300))
        if view.safety_state == SafetyState.COMPLETED and view.safety_snapshot_id is not None:
            said = Text("{} {}").format(said, undo_hint(view.safety_snapshot_id))
            details["safety_snapshot_id"] = view.safety_snapshot_id
        return self._finish(actor, view.id, token, RequestState.EXECUTED, said, Outcome.OK, details)

    def _send_delete(self, actor: Actor, view: RequestView, snapshot: Snapshot, token: str) -> DecisionResult:
        try:
            self.snapshots.execute_delete(actor, snapshot, request_id=view.id, operation_id=token)
        except AlreadyGone as error:  # VPS.org's 404 to the DELETE itself: its other requests can't happen either
            result = self._finish(actor, view.id, token, RequestState.FAILED, error.message, None, {}, audited=True)
            closed = self.close_for_deleted(actor, view.snapshot_id, except_request=view.id, gone_at_delete=True)
            return replace(result, closed=tuple(closed)) if closed else result
        except UserFacingError as error:
            state = RequestState.NEEDS_CHECK if getattr(error, "outcome_unknown", False) else RequestState.FAILED
            return self._finish(actor, view.id, token, state, error.message, None, {}, audited=True)
        result = self._finish(
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
        closed = self.close_for_deleted(actor, view.snapshot_id, except_request=view.id)
        # A slot is free now: restores of that server whose card said "Server full" offer the safety snapshot.
        redrawn = self.refresh_offers_on_server(view.server_id)
        return replace(result, closed=tuple(closed), redrawn=tuple(redrawn))

    def _changes(self, view: RequestView, snapshot: Snapshot) -> list[Text]:
        """What differs between the approved card and VPS.org now; empty when the bound digest still holds."""
        approved = view.bound_digest or bound_digest(
            view.kind,
            view.snapshot_id,
            view.server_id,
            view.snapshot_name,
            view.snapshot_created_at,
            view.request_reason,
        )
        # The reason is the stored one: the card showed it, so a reason changed behind the bot's back is stale too.
        live = bound_digest(
            view.kind, snapshot.id, snapshot.server.id, snapshot.name, snapshot.created_at, view.request_reason
        )
        if live == approved:
            return []
        changes = []
        if snapshot.server.id != view.server_id:
            changes.append(Text("it now belongs to server {}, not {}").format(snapshot.server.id, view.server_id))
        if valid_utf8(snapshot.name) != view.snapshot_name:
            changes.append(
                Text("it is now named '{}', not '{}'").format(plain(snapshot.name, 100), plain(view.snapshot_name, 100))
            )
        if bound_fields("", 0, 0, "", snapshot.created_at, "") != bound_fields(
            "", 0, 0, "", view.snapshot_created_at, ""
        ):
            changes.append(Text("its creation time changed"))
        if not changes:  # the stored request no longer matches its own digest: edited behind the bot's back
            changes.append(Text("the stored request no longer matches what was approved"))
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

    def _end_before_sending(
        self, actor: Actor, rid: int, token: str, state: str, message: Text, details: dict[str, object]
    ) -> DecisionResult:
        """Closed without a call (`failed` or `stale`), only while we still hold the claim."""
        with self._held(rid, token) as (session, row):
            if row is None:
                return self._claim_lost(rid)
            self.requests.end_unsent(row, state, str(message), self.clock())
            self.audit.append(
                actor.entry(
                    action_for(row.kind, state),
                    Outcome.FAILED,
                    server_id=row.server_id,
                    snapshot_id=snapshot_of(row),
                    request_id=rid,
                    details={**details, "sent": False},
                ),
                session=session,
            )
            view = self._view(session, row)
        return DecisionResult(view, state, message)

    def _finish(
        self,
        actor: Actor,
        rid: int,
        token: str,
        state: str,
        message: Text,
        outcome: str | None,
        details: dict[str, object],
        *,
        audited: bool = False,
    ) -> DecisionResult:
        """Record what VPS.org answered: final state and outcome row in one transaction, retried on failure."""
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
        loud = Text(
            "{} VPS.org answered ({}), but the bot could not record it in the audit log. "
            "Outcome unknown for the record — check the server and tell an admin."
        ).format(alarm(), message)
        try:
            self.requests.flag_unrecorded(rid, token, valid_utf8(str(loud)), self.clock())
        except Exception:
            log.critical("request #%s: could not even flag the request needs_check", rid, exc_info=True)
        return DecisionResult(self.get(rid), RequestState.NEEDS_CHECK, loud)

    def _write_outcome(
        self,
        actor: Actor,
        rid: int,
        token: str,
        state: str,
        message: Text,
        outcome: str | None,
        details: dict[str, object],
        audited: bool,
    ) -> DecisionResult:
        with self.db.session() as session:
            row = self._locked(session, rid)
            # Ours while `sending`; a late answer also settles a request the flagger marked "outcome unknown".
            # VPS.org's words go into the request row too: the record form, made valid UTF-8.
            self.requests.settle(session, rid, token, state, valid_utf8(str(message)), self.clock())
            session.refresh(row)
            if not audited and outcome is not None:
                self.audit.append(
                    actor.entry(
                        action_for(row.kind, state),
                        outcome,
                        server_id=row.server_id,
                        snapshot_id=snapshot_of(row),
                        request_id=rid,
                        operation_id=token,
                        details=details,
                    ),
                    session=session,
                )
            view = self._view(session, row)
        return DecisionResult(view, state, message)

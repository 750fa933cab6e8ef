"""Carrying out an approved request under its claim: one execution strategy per request kind (`RequestKind` →
`ExecutionStrategy`: approval_restore, approval_delete, schedule_requests), and the steps the snapshot kinds share
(`SendingSteps`: re-check, compare, check-and-mark, record the outcome). A new kind adds a strategy; a new step
before the call is a strategy's own (the restore's safety snapshot is one).

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.usecases.approval_base import (
    DecisionOutcome,
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
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_terms import RequestKind, RequestState
from bot.usecases.context import Actor
from bot.usecases.errors import CouldNotConfirm, NotFoundError, UserFacingError
from bot.usecases.server_state import ServerState, ServerStates
from bot.usecases.snapshots import SnapshotService
from bot.usecases.wording import Text, alarm, plain, sentence
from bot.vps.client import VpsClient
from bot.vps.errors import DeadlineExceeded
from bot.vps.models import Snapshot
from storage.audit import Action, Outcome, valid_utf8

OUTCOME_WRITE_ATTEMPTS = 3
TOO_SLOW = Text("VPS.org was too slow to re-check the snapshot; nothing was sent. Approve again when it answers.")

Progress = Callable[[RequestView], None]


class ExecutionStrategy(Protocol):
    """How one kind of request is carried out once approved, under the claim `token` holds."""

    def carry_out(self, actor: Actor, view: RequestView, token: str, progress: Progress | None) -> DecisionResult: ...


class Executing:
    """The approval's winner carries the request out with the strategy of its kind."""

    def __init__(self, ledger: RequestLedger, strategies: Mapping[RequestKind, ExecutionStrategy]) -> None:
        self.ledger = ledger
        self.strategies = dict(strategies)

    def execute(self, actor: Actor, rid: int, token: str, progress: Progress | None = None) -> DecisionResult:
        view = self.ledger.get(rid)
        return self.strategies[view.kind].carry_out(actor, view, token, progress)


@dataclass(frozen=True)
class Rechecked:
    """What VPS.org lists now, read within the re-check's deadline: the snapshot, and the server's state when asked."""

    snapshot: Snapshot
    server: ServerState | None


class SendingSteps:
    """The steps a request that names a snapshot takes before and after its one call to VPS.org."""

    def __init__(
        self, *, ledger: RequestLedger, snapshots: SnapshotService, vps: VpsClient, server_states: ServerStates
    ) -> None:
        self.ledger = ledger
        self.requests = ledger.requests
        self.db = ledger.db
        self.audit = ledger.audit
        self.snapshots = snapshots
        self.vps = vps
        self.server_states = server_states

    def recheck(self, actor: Actor, view: RequestView, token: str, *, read_server: bool) -> Rechecked | DecisionResult:
        """Re-list the snapshot (and the server's state) within the deadline, renew the claim, compare with what was
        approved: a `DecisionResult` when the request ends here (nothing sent), else what VPS.org lists now."""
        rid = view.id
        deadline = self.vps.clock() + self.ledger.policy.recheck_deadline.total_seconds()
        try:
            snapshot = self.snapshots.find_snapshot(view.snapshot_id, deadline=deadline)
        except DeadlineExceeded:
            return self.ledger.give_up(actor, rid, token, TOO_SLOW, "re-check deadline passed")
        except CouldNotConfirm:
            message = Text(
                "{} could not be confirmed: VPS.org's snapshot list was incomplete, so nothing was sent. "
                "Approve again in a minute."
            ).format(snapshot_words(view))
            return self.ledger.give_up(actor, rid, token, message, "listing incomplete")
        except NotFoundError:
            return self.end_before_sending(
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
            return self.ledger.give_up(
                actor, rid, token, error.message + Text(" Nothing was sent; approve again."), "re-check failed"
            )
        server = self.server_states.state(view.server_id, deadline=deadline) if read_server else None
        if self.vps.clock() > deadline:  # an answer that came in just too late is not trusted to be current
            return self.ledger.give_up(actor, rid, token, TOO_SLOW, "re-check deadline passed")
        if not self.ledger.renew(rid, token):
            return self.ledger.claim_lost(rid)
        changes = self.changes(view, snapshot)
        if changes:
            message = Text(
                "Not sent: {} is no longer what was approved — {}. "
                "Nothing was sent to VPS.org; ask again if it is still wanted."
            ).format(snapshot_words(view), Text("; ").join(changes))
            return self.end_before_sending(
                actor, rid, token, RequestState.STALE, message, {"changed": [str(change) for change in changes]}
            )
        return Rechecked(snapshot, server)

    def changes(self, view: RequestView, snapshot: Snapshot) -> list[Text]:
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

    def mark_sending(self, actor: Actor, view: RequestView, token: str) -> bool:
        """The one atomic check-and-mark before any call: claim still ours and unexpired → `sending` + intent row."""
        with self.db.session() as session:
            won = self.requests.mark_sending(
                session, view.id, token, stale_after=self.ledger.policy.stale_after, now=self.ledger.now()
            )
            if not won:  # storage rolled the transaction back: nothing of it is kept
                return False
            # A delete writes its own intent (same operation id) just before its call.
            if view.kind == RequestKind.RESTORE:
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

    def end_before_sending(
        self, actor: Actor, rid: int, token: str, state: RequestState, message: Text, details: dict[str, object]
    ) -> DecisionResult:
        """Closed without a call (`failed` or `stale`), only while we still hold the claim."""
        with self.ledger.held(rid, token) as (session, row):
            if row is None:
                return self.ledger.claim_lost(rid)
            row = self.requests.end_unsent(session, rid, state, str(message), self.ledger.now())
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
        return DecisionResult(self.ledger.view(row), DecisionOutcome(state), message)

    def finish(
        self,
        actor: Actor,
        rid: int,
        token: str,
        state: RequestState,
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
            self.requests.flag_unrecorded(rid, token, valid_utf8(str(loud)), self.ledger.now())
        except Exception:
            log.critical("request #%s: could not even flag the request needs_check", rid, exc_info=True)
        return DecisionResult(self.ledger.get(rid), DecisionOutcome.NEEDS_CHECK, loud)

    def _write_outcome(
        self,
        actor: Actor,
        rid: int,
        token: str,
        state: RequestState,
        message: Text,
        outcome: str | None,
        details: dict[str, object],
        audited: bool,
    ) -> DecisionResult:
        with self.db.session() as session:
            self.ledger.locked(session, rid)
            # Ours while `sending`; a late answer also settles a request the flagger marked "outcome unknown".
            # VPS.org's words go into the request row too: the record form, made valid UTF-8.
            row = self.requests.settle(session, rid, token, state, valid_utf8(str(message)), self.ledger.now())
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
        return DecisionResult(self.ledger.view(row), DecisionOutcome(state), message)

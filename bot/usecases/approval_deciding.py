"""Deciding a request: approving, rejecting, cancelling.

Rules kept here:
- Only a `pending` request is decided, read under its row lock; nobody approves their own request; each
  approver votes once; only the requester cancels, approvers reject.
- With several approvals required, the safety snapshot is taken when any approver of the round chose it (the
  safe side), not only when the last one did; each vote keeps its approver's choice, and so does its audit row.
- A request leaves `pending` only through a compare-and-set on its state, so double clicks, simultaneous
  approvers, retries and several replicas lead to at most one executor; the winner holds the claim (a fencing
  token and a deadline by the database's clock) and goes on to `Executing._execute`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from bot.usecases.access import Permission
from bot.usecases.approval_base import (
    DecisionOutcome,
    DecisionResult,
    RequestView,
    action_for,
    snapshot_of,
    state_words,
)
from bot.usecases.approval_execution import Executing
from bot.usecases.approval_safety import SafetyChoice
from bot.usecases.context import SYSTEM, Actor
from bot.usecases.errors import (
    Refused,
)
from bot.usecases.wording import Text, emphasis
from storage.approvals import RequestState
from storage.audit import Action, Outcome


def safest(choices: list[str]) -> str:
    """The round's safety-snapshot choice: a snapshot when any approver asked for one, else none."""
    return SafetyChoice.SNAPSHOT if SafetyChoice.SNAPSHOT in choices else SafetyChoice.NONE


class Deciding(Executing):
    def approve(
        self,
        actor: Actor,
        request_id: str | int,
        safety: str = SafetyChoice.DEFAULT,
        progress: Callable[[RequestView], None] | None = None,
    ) -> DecisionResult:
        """`safety`: what the clicked button asks about the safety snapshot (approval_safety.SafetyChoice);
        `progress` is shown the request when a long step (the safety snapshot) starts."""
        rid = self._parse_request_id(request_id)
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, rid)
            if row.requester_id == actor.user_id:
                self._refuse(session, actor, row, Action.REFUSED_SELF_APPROVAL, "self-approval")
                raise Refused("You can't approve your own request — someone else has to.")
            if row.state != RequestState.PENDING:
                self._refuse(session, actor, row, Action.REFUSED_NOT_PENDING, f"request is {row.state}")
                raise Refused(f"Request #{rid} is already {state_words(row.state)}; nothing was done.")
            if now >= row.expires_at:
                expired = self._close(session, row, RequestState.EXPIRED, SYSTEM, now, reason="approval window passed")
                return DecisionResult(
                    expired, DecisionOutcome.EXPIRED, Text("Request #{} expired before it was approved.").format(rid)
                )
            try:
                choice = self.safety_choice(row.kind, row.safety_offer or "", safety)
            except Refused as refusal:
                self._refuse(session, actor, row, Action.REFUSED_VALIDATION, "safety snapshot required")
                raise refusal
            if self.requests.has_voted(session, rid, actor.user_id):
                raise Refused(f"You have already approved request #{rid}; it needs someone else too.")
            kept = choice if row.kind == "restore" else ""
            votes = self.requests.add_vote(session, rid, actor.user_id, actor.name, now, safety_choice=kept)
            self.audit.append(
                actor.entry(
                    action_for(row.kind, "approved"),
                    Outcome.OK,
                    server_id=row.server_id,
                    snapshot_id=snapshot_of(row),
                    request_id=rid,
                    details={
                        "votes": votes,
                        "required": row.approvals_required,
                        "digest": row.bound_digest,
                        **({"safety_snapshot": choice} if row.kind == "restore" else {}),
                    },
                ),
                session=session,
            )
            if votes < row.approvals_required:
                self.requests.touch(row, now)
                view = self._view(session, row)
                return DecisionResult(
                    view,
                    DecisionOutcome.VOTE_RECORDED,
                    Text("Approval recorded ({} of {}).").format(votes, row.approvals_required),
                )
            if row.kind == "restore":  # the safe side: any approver of this round asking for one gets it
                # A vote cast before choices were kept per vote ("") counts as the card's default.
                default = self.safety_choice(row.kind, row.safety_offer or "", SafetyChoice.DEFAULT)
                choice = safest([kept or default for kept in self.requests.vote_choices(session, rid)])
            # The compare-and-set that makes execution happen at most once; the winner holds the claim.
            token = str(uuid.uuid4())
            won = self.requests.start_executing(
                session,
                rid,
                decided_by=actor.user_id,
                now=now,
                token=token,
                claim_ttl=self.claim_ttl,
                safety_choice=choice,
            )
            if not won:
                raise Refused(f"Request #{rid} was decided by someone else a moment ago; nothing was done.")
        return self._execute(actor, rid, token, progress)

    def reject(self, actor: Actor, request_id: str | int, reason: str = "") -> DecisionResult:
        rid = self._parse_request_id(request_id)
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        reason = (reason or "").strip()[:500]
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, rid)
            if row.requester_id == actor.user_id:
                raise Refused(Text("That's your own request: use {} to withdraw it.").format(emphasis("Cancel")))
            self._require_pending(session, actor, row)
            view = self._close(session, row, RequestState.REJECTED, actor, now, reason=reason)
        return DecisionResult(view, DecisionOutcome.REJECTED, Text("Request #{} rejected.").format(rid))

    def cancel(self, actor: Actor, request_id: str | int) -> DecisionResult:
        rid = self._parse_request_id(request_id)
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, rid)
            if row.requester_id != actor.user_id:
                self._refuse(session, actor, row, Action.REFUSED_PERMISSION, "only the requester may cancel")
                raise Refused(
                    Text("Only the person who asked can cancel this request. Approvers can {} it.").format(
                        emphasis("Reject")
                    )
                )
            self._require_pending(session, actor, row)
            view = self._close(session, row, RequestState.CANCELLED, actor, now)
        return DecisionResult(view, DecisionOutcome.CANCELLED, Text("Request #{} cancelled.").format(rid))

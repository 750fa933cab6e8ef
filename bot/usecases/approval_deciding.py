"""Deciding a request: approving, rejecting, cancelling.

Rules kept here:
- Only a `pending` request is decided, read under its row lock; nobody approves their own request; each
  approver votes once; only the requester cancels, approvers reject.
- With several approvals required, the safety snapshot is taken when any approver of the round chose it (the
  safe side), not only when the last one did; each vote keeps its approver's choice, and so does its audit row.
- With a step-up on for its kind (APPROVAL_STEP_UP_FOR), a vote counts only with the proof that its approver
  passed it (bot/usecases/step_up.py), for the request as the form showed it (its digest); the vote's audit row
  names the method.
- A request leaves `pending` only through a compare-and-set on its state, so double clicks, simultaneous
  approvers, retries and several replicas lead to at most one executor; the winner holds the claim (a fencing
  token and a deadline by the database's clock) and hands it to `Executing.execute` (its kind's strategy).
"""

from __future__ import annotations

import uuid

from bot.usecases.access import Permission
from bot.usecases.approval_base import DecisionOutcome, DecisionResult, action_for, snapshot_of, state_words
from bot.usecases.approval_execution import Executing, Progress
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_safety_offer import SafetyOffers
from bot.usecases.approval_terms import Chosen, RequestKind, RequestState, SafetyChoice, SafetyOffer
from bot.usecases.context import SYSTEM, Actor
from bot.usecases.errors import Refused
from bot.usecases.guard import Guard
from bot.usecases.step_up_terms import StepUpProof
from bot.usecases.wording import Text, emphasis
from storage.audit import Action, Outcome


def safest(choices: list[SafetyChoice]) -> SafetyChoice:
    """The round's safety-snapshot choice: a snapshot when any approver asked for one, else none."""
    return SafetyChoice.SNAPSHOT if SafetyChoice.SNAPSHOT in choices else SafetyChoice.NONE


def step_up_refusal(
    kind: RequestKind, digest: str | None, proof: StepUpProof | None, needed_for: frozenset[RequestKind]
) -> tuple[Action, str, str] | None:
    """Why this vote cannot count as far as the step-up goes (audit action, recorded reason, what the approver
    reads with `{}` for the request id), or None."""
    if proof is None and kind in needed_for:
        return Action.REFUSED_VALIDATION, "step-up required", "Approving request #{} needs its confirmation form."
    if proof is not None and proof.digest != digest:
        return (
            Action.REFUSED_NOT_PENDING,
            "changed since the form opened",
            "Request #{} changed since the form opened; nothing was recorded.",
        )
    return None


class Deciding:
    def __init__(self, *, ledger: RequestLedger, guard: Guard, offers: SafetyOffers, executing: Executing) -> None:
        self.ledger = ledger
        self.requests = ledger.requests
        self.db = ledger.db
        self.audit = ledger.audit
        self.guard = guard
        self.offers = offers
        self.executing = executing

    def approve(
        self,
        actor: Actor,
        rid: int,
        safety: SafetyChoice = SafetyChoice.DEFAULT,
        progress: Progress | None = None,
        step_up: StepUpProof | None = None,
    ) -> DecisionResult:
        """`safety`: what the clicked button asks about the safety snapshot (approval_terms.SafetyChoice);
        `progress` is shown the request when a long step (the safety snapshot) starts; `step_up`: the step-up
        this vote passed (required for the kinds in the policy's `step_up_for`)."""
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        now = self.ledger.now()
        with self.db.session() as session:
            row = self.ledger.locked(session, rid)
            kind = RequestKind(row.kind)
            offer = SafetyOffer(row.safety_offer or "")
            if row.requester_id == actor.user_id:
                self.ledger.refuse(session, actor, row, Action.REFUSED_SELF_APPROVAL, "self-approval")
                raise Refused("You can't approve your own request — someone else has to.")
            if row.state != RequestState.PENDING:
                self.ledger.refuse(session, actor, row, Action.REFUSED_NOT_PENDING, f"request is {row.state}")
                raise Refused(f"Request #{rid} is already {state_words(RequestState(row.state))}; nothing was done.")
            if now >= row.expires_at:
                expired = self.ledger.close(
                    session, row, RequestState.EXPIRED, SYSTEM, now, reason="approval window passed"
                )
                return DecisionResult(
                    expired, DecisionOutcome.EXPIRED, Text("Request #{} expired before it was approved.").format(rid)
                )
            step_up_refused = step_up_refusal(kind, row.bound_digest, step_up, self.ledger.policy.step_up_for)
            if step_up_refused is not None:
                action, why, message = step_up_refused
                self.ledger.refuse(session, actor, row, action, why)
                raise Refused(message.format(rid))
            try:
                choice = self.offers.safety_choice(kind, offer, safety)
            except Refused as refusal:
                self.ledger.refuse(session, actor, row, Action.REFUSED_VALIDATION, "safety snapshot required")
                raise refusal
            if self.requests.votes.cast_by(session, rid, actor.user_id):
                raise Refused(f"You have already approved request #{rid}; it needs someone else too.")
            kept: Chosen = choice if kind == RequestKind.RESTORE else ""
            votes = self.requests.votes.add(session, rid, actor.user_id, actor.name, now, safety_choice=kept)
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
                        **({"safety_snapshot": choice} if kind == RequestKind.RESTORE else {}),
                        **({"step_up": str(step_up.method)} if step_up is not None else {}),
                    },
                ),
                session=session,
            )
            if votes < row.approvals_required:
                view = self.ledger.view(self.requests.touch(session, rid, now))
                return DecisionResult(
                    view,
                    DecisionOutcome.VOTE_RECORDED,
                    Text("Approval recorded ({} of {}).").format(votes, row.approvals_required),
                )
            if kind == RequestKind.RESTORE:  # the safe side: any approver of this round asking for one gets it
                # A vote cast before choices were kept per vote ("") counts as the card's default.
                default = self.offers.safety_choice(kind, offer, SafetyChoice.DEFAULT)
                votes_chose = self.requests.votes.choices(session, rid)
                choice = safest([SafetyChoice(voted) if voted else default for voted in votes_chose])
            # The compare-and-set that makes execution happen at most once; the winner holds the claim.
            token = str(uuid.uuid4())
            won = self.requests.start_executing(
                session,
                rid,
                decided_by=actor.user_id,
                now=now,
                token=token,
                claim_ttl=self.ledger.policy.claim_ttl,
                safety_choice=choice,
            )
            if not won:
                raise Refused(f"Request #{rid} was decided by someone else a moment ago; nothing was done.")
        return self.executing.execute(actor, rid, token, progress)

    def reject(self, actor: Actor, rid: int, reason: str = "") -> DecisionResult:
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        reason = (reason or "").strip()[:500]
        now = self.ledger.now()
        with self.db.session() as session:
            row = self.ledger.locked(session, rid)
            if row.requester_id == actor.user_id:
                raise Refused(Text("That's your own request: use {} to withdraw it.").format(emphasis("Cancel")))
            self.ledger.require_pending(session, actor, row)
            view = self.ledger.close(session, row, RequestState.REJECTED, actor, now, reason=reason)
        return DecisionResult(view, DecisionOutcome.REJECTED, Text("Request #{} rejected.").format(rid))

    def cancel(self, actor: Actor, rid: int) -> DecisionResult:
        now = self.ledger.now()
        with self.db.session() as session:
            row = self.ledger.locked(session, rid)
            if row.requester_id != actor.user_id:
                self.ledger.refuse(session, actor, row, Action.REFUSED_PERMISSION, "only the requester may cancel")
                raise Refused(
                    Text("Only the person who asked can cancel this request. Approvers can {} it.").format(
                        emphasis("Reject")
                    )
                )
            self.ledger.require_pending(session, actor, row)
            view = self.ledger.close(session, row, RequestState.CANCELLED, actor, now)
        return DecisionResult(view, DecisionOutcome.CANCELLED, Text("Request #{} cancelled.").format(rid))

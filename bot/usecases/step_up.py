"""The step-up before approving (APPROVAL_STEP_UP=typed|totp, for the kinds in APPROVAL_STEP_UP_FOR): Approve
opens a form, and only a right answer in it records the vote.

Rules kept here:
- `typed` is a deliberate confirmation, not authentication: the approver types the server's name as VPS.org
  reported it (case-sensitive, surrounding spaces ignored). A name that cannot be shown whole and exactly in a code
  span (too long, control or invisible characters, a backtick, something the redactor would mask, odd spacing)
  is replaced by the server id, as is a missing name: what is asked for is always what the form shows.
- `totp` is authentication: a code from the approver's enrolled authenticator (bot/usecases/mfa.py: once per
  person, one step of drift, five wrong codes lock that person's approvals).
- The form is bound to the request and its digest: a request changed or decided since it opened answers stale
  and records nothing; the vote itself is then cast with the proof (bot/usecases/approval_deciding.py re-checks
  the digest under the request's row lock), and its audit row names the method.
- A wrong answer records no vote and is audited (`step_up.failed`), never with what was typed.
- Nothing here knows Slack: the form and where its metadata is kept are the Slack side's.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from bot.redaction import redact
from bot.usecases.access import Permission
from bot.usecases.approval_base import RequestView, state_words
from bot.usecases.approval_terms import RequestKind, RequestState, SafetyChoice
from bot.usecases.approvals import ApprovalService
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput
from bot.usecases.guard import Guard
from bot.usecases.mfa import MfaService
from bot.usecases.step_up_terms import StepUpMethod, StepUpProof
from bot.usecases.wording import Text
from storage.audit import Action, AuditLog, Outcome

TYPED_NAME_LIMIT = 80  # the longest name asked for; a longer one is asked for by its server id
_UNSHOWABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# A grave accent would end the code span the name is shown in; named by its code point, as this is a character
# check, not wording (use-case literals hold no markup: tests/unit/usecases/test_wording_is_neutral.py).
GRAVE_ACCENT = chr(0x60)


class WrongAnswer(InvalidInput):
    """The form's answer is wrong (nothing recorded); the message is shown on the form's field."""


class StaleForm(InvalidInput):
    """The request changed or was decided since the form opened; nothing recorded."""


@dataclass(frozen=True)
class Challenge:
    """What the form asks for one request: `phrase` is what `typed` wants typed ("" for totp)."""

    request: RequestView
    method: StepUpMethod
    phrase: str
    safety: SafetyChoice

    @property
    def digest(self) -> str | None:
        return self.request.bound_digest


def typed_phrase(server_name: str | None, server_id: int) -> str:
    """What the approver types for a server: its name when it can be shown whole and exactly, else its id."""
    name = (server_name or "").strip()
    showable = (
        name
        and len(name) <= TYPED_NAME_LIMIT
        and name == " ".join(name.split())
        and GRAVE_ACCENT not in name
        and not any(unicodedata.category(char) in _UNSHOWABLE for char in name)
        and redact(name) == name
    )
    return name if showable else str(server_id)


class StepUp:
    def __init__(
        self,
        *,
        approvals: ApprovalService,
        guard: Guard,
        mfa: MfaService,
        audit: AuditLog,
        method: StepUpMethod,
        kinds: frozenset[RequestKind],
    ) -> None:
        self.approvals = approvals
        self.guard = guard
        self.mfa = mfa
        self.audit = audit
        self.method = method
        self.kinds = kinds if method != StepUpMethod.OFF else frozenset()

    @property
    def on(self) -> bool:
        return bool(self.kinds)

    def challenge(self, actor: Actor, rid: int, safety: SafetyChoice) -> Challenge | None:
        """The form to open for this click, or None when the click decides as it always did (step-up off for this
        kind, or a click the approval itself refuses with its own words: own request, not pending, voted)."""
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        request = self.approvals.get(rid)
        if request.kind not in self.kinds or request.state != RequestState.PENDING:
            return None
        if actor.user_id == request.requester_id or actor.user_id in request.approvers:
            return None
        if self.method == StepUpMethod.TOTP:
            self.mfa.check_ready(actor)  # not enrolled or locked: told now, not after typing
        phrase = typed_phrase(request.server_name, request.server_id) if self.method == StepUpMethod.TYPED else ""
        return Challenge(request=request, method=self.method, phrase=phrase, safety=safety)

    def prove(self, actor: Actor, request_id: int, digest: str | None, answer: str) -> StepUpProof:
        """The form's answer: stale → StaleForm; wrong → WrongAnswer (for totp, mfa's WrongCode, LockedOut or
        NotEnrolled); right → the proof the vote is then cast with (`ApprovalService.approve(step_up=…)`)."""
        self.guard.require(actor, Permission.APPROVE, request_id=request_id)
        request = self.approvals.get(request_id)
        if request.state != RequestState.PENDING or request.bound_digest != digest:
            self._refused(actor, request, "stale form")
            if request.state != RequestState.PENDING:
                words = state_words(request.state)
                raise StaleForm(f"Request #{request_id} is already {words}; nothing was recorded.", field="answer")
            raise StaleForm(
                Text("Request #{} changed since this form opened; nothing was recorded.").format(request_id),
                field="answer",
            )
        if self.method == StepUpMethod.TYPED:
            if answer.strip() != typed_phrase(request.server_name, request.server_id):
                self._refused(actor, request, "typed name differs", failed=True)
                raise WrongAnswer(
                    "That is not the server's name as shown (it is case-sensitive): nothing was recorded.",
                    field="answer",
                )
        else:
            self.mfa.verify(actor, answer, request_id=request_id)
        return StepUpProof(self.method, digest)

    def record_forged(self, actor: Actor) -> None:
        """A form whose binding does not hold (edited, or opened for someone else): audited, nothing recorded."""
        self.audit.append(
            actor.entry(
                Action.STEP_UP_FAILED,
                Outcome.REFUSED,
                details={"method": str(self.method), "reason": "form binding forged or broken"},
            )
        )

    def _refused(self, actor: Actor, request: RequestView, reason: str, *, failed: bool = False) -> None:
        self.audit.append(
            actor.entry(
                Action.STEP_UP_FAILED if failed else Action.REFUSED_NOT_PENDING,
                Outcome.REFUSED,
                request_id=request.id,
                server_id=request.server_id,
                details={"method": str(self.method), "reason": reason},
            )
        )

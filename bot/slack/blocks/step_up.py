"""The step-up form (Approve with APPROVAL_STEP_UP on) and the answers of `/snapshot mfa …`.

Rules kept here: the name to type is shown whole in a code span, exactly as it must be typed (the use case only
asks for a name that code() shows unchanged, else the server id: bot/usecases/step_up.py); the form carries its
binding in `private_metadata`, sealed by the caller; the enrolment URI is shown once, in a code span (no preview,
no link unfurled), to its owner only; no other answer ever contains a secret or a code. The form says what
approving does, in the words of the confirm dialog it replaces (bot/slack/blocks/consequences.py): the Approve
buttons of a kind with the step-up carry no dialog of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, PlainTextObject, SectionBlock
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn, code, mention, plain
from bot.slack.blocks.common import MAX_MODAL_TITLE, clip, format_time, md
from bot.slack.blocks.consequences import approve_consequence
from bot.usecases.mfa import Enrolment, MfaState, MfaStatus
from bot.usecases.step_up import TYPED_NAME_LIMIT, Challenge
from bot.usecases.step_up_terms import StepUpMethod

STEP_UP_VIEW = "step_up_approve"
ANSWER_BLOCK = "answer"
URI_LIMIT = 400


def _what(challenge: Challenge) -> Mrkdwn:
    """What approving does, as the Approve button's confirm dialog would say it (the form replaces that dialog)."""
    req = challenge.request
    question = Mrkdwn("*Approve this {}?* ").format(plain(str(req.kind).lower(), 20))
    return question + approve_consequence(req, challenge.safety)


def step_up_modal(challenge: Challenge, metadata: str) -> dict[str, Any]:
    """The form Approve opens: what is approved, and one field (the server's name, or the code)."""
    req = challenge.request
    if challenge.method == StepUpMethod.TYPED:
        ask = Mrkdwn("To approve, type the server's name exactly as shown (case-sensitive): {}").format(
            code(challenge.phrase, TYPED_NAME_LIMIT + 1)
        )
        label, hint, longest = "Server name", "What the card shows in the code span, nothing else.", 200
    else:
        ask = Mrkdwn("To approve, type the 6-digit code your authenticator app shows for snapshot-bot.")
        label, hint, longest = "Authenticator code", "A code is accepted once; wait for the next one if needed.", 20
    view = View(
        type="modal",
        callback_id=STEP_UP_VIEW,
        title=PlainTextObject(text=clip(f"Approve request #{req.id}", MAX_MODAL_TITLE)),
        submit=PlainTextObject(text="Approve"),
        close=PlainTextObject(text="Back"),
        private_metadata=metadata,
        blocks=[
            SectionBlock(text=md(_what(challenge))),
            SectionBlock(text=md(ask)),
            InputBlock(
                block_id=ANSWER_BLOCK,
                label=label,
                hint=PlainTextObject(text=hint),
                element=PlainTextInputElement(action_id="value", max_length=longest),
            ),
        ],
    )
    return view.to_dict()


def enrolment_answer(enrolment: Enrolment) -> Mrkdwn:
    then = (
        Mrkdwn(
            "then an admin who is not you approves it with `/snapshot mfa approve @you`, after checking with you "
            "outside Slack (a call, in person)."
        )
        if enrolment.approval_needed
        else Mrkdwn("and it is active at once (this bot lets each person approve their own enrolment).")
    )
    return (
        Mrkdwn(
            ":closed_lock_with_key: Add this to your authenticator app (most apps take it pasted, or as a QR code "
            "you make from it on your own machine). It is shown *only this once* and only to you:\n"
        )
        + code(enrolment.uri, URI_LIMIT)
        + Mrkdwn("\nThen prove you hold it with `/snapshot mfa confirm &lt;6-digit code&gt;`, ")
        + then
    )


def confirm_answer(state: MfaState) -> Mrkdwn:
    if state == MfaState.ACTIVE:
        return Mrkdwn(":white_check_mark: Authenticator confirmed and active: Approve will ask you for its code.")
    return Mrkdwn(
        ":white_check_mark: Authenticator confirmed. It becomes active when an admin who is not you runs "
        "`/snapshot mfa approve @you` (after checking with you outside Slack)."
    )


def status_answer(status: MfaStatus, method: StepUpMethod, now: datetime) -> Mrkdwn:
    words = {
        None: Mrkdwn("You have no authenticator enrolled (`/snapshot mfa enrol`)."),
        MfaState.PENDING: Mrkdwn(
            "Your authenticator is enrolled but not confirmed (`/snapshot mfa confirm &lt;code&gt;`)."
        ),
        MfaState.CONFIRMED: Mrkdwn("Your authenticator is confirmed and waits for an admin's approval."),
        MfaState.ACTIVE: Mrkdwn("Your authenticator is active."),
    }
    text = Mrkdwn(":closed_lock_with_key: ") + words[status.state]
    if status.state == MfaState.ACTIVE and status.approved_by:
        text += Mrkdwn(" Approved by {}.").format(mention(status.approved_by))
    if status.locked_until is not None:
        text += Mrkdwn(" Your approvals are locked until {} (too many wrong codes).").format(
            format_time(status.locked_until)
        )
    modes = {
        StepUpMethod.OFF: Mrkdwn("Approving needs no step-up on this bot (APPROVAL_STEP_UP=off)."),
        StepUpMethod.TYPED: Mrkdwn("Approving asks for the server's name (APPROVAL_STEP_UP=typed)."),
        StepUpMethod.TOTP: Mrkdwn("Approving asks for your authenticator's code (APPROVAL_STEP_UP=totp)."),
    }
    text += Mrkdwn("\n") + modes[method]
    if status.waiting:
        text += Mrkdwn("\nWaiting for an admin's approval: ") + Mrkdwn(", ").join(
            mention(user) for user in status.waiting[:20]
        )
    return text

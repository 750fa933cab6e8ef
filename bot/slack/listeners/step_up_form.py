"""The step-up form between Approve and the vote (APPROVAL_STEP_UP=typed|totp): opened by the approvals feature's
Approve click, answered here; and how a decision is told to the person who made it (both paths share it).

Rules kept here:
- The form's `private_metadata` (request id, its digest, the safety choice, who it was opened for, the channel)
  is sealed with an HMAC keyed from the app's signing secret (else the bot token): replicas share it, and a
  forged or edited binding — another request, another person — is refused, audited, and records nothing.
- The answer is checked before the acknowledgement (a database read and a code check, no VPS.org call), so a
  wrong one is an inline error on the field (`response_action: errors`) and the form stays open; only a right
  one closes it, and the vote is then cast after the ack, like every click.
- Nothing typed into the form is logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.blocks.step_up import ANSWER_BLOCK
from bot.slack.listeners.answering import refresh_home, reply_to_click, reply_to_submission
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.listeners.forms import view_value
from bot.slack.listeners.ids import parse_request_id
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.approval_terms import SafetyChoice
from bot.usecases.approvals import DecisionOutcome, DecisionResult
from bot.usecases.context import Actor
from bot.usecases.errors import NotFoundError, StorageError, UserFacingError
from bot.usecases.step_up import Challenge

log = logging.getLogger(__name__)

FORGED = "This form is no longer valid: nothing was recorded. Press Approve on the card again."
DATABASE_DOWN = "The bot's database is unavailable, so nothing was recorded. Try again in a minute."


@dataclass(frozen=True)
class Binding:
    request_id: int
    digest: str | None
    safety: SafetyChoice
    user_id: str
    channel: str | None


def _key(core: Core) -> bytes:
    secret = core.settings.slack_signing_secret or core.settings.slack_bot_token
    material = secret.reveal() if secret is not None else ""
    return hashlib.sha256(b"snapshot-bot step-up form v1\0" + material.encode("utf-8")).digest()


def seal(core: Core, binding: Binding) -> str:
    body = json.dumps(
        {
            "r": binding.request_id,
            "d": binding.digest,
            "s": str(binding.safety),
            "u": binding.user_id,
            "c": binding.channel,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    tag = hmac.new(_key(core), body.encode("utf-8"), hashlib.sha256).hexdigest()
    return json.dumps({"b": body, "t": tag})


def unseal(core: Core, metadata: str, user_id: str) -> Binding | None:
    """The binding, when its seal holds and it was opened for `user_id`; else None."""
    try:
        outer = json.loads(metadata)
        body, tag = str(outer["b"]), str(outer["t"])
        expected = hmac.new(_key(core), body.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, tag):
            return None
        fields = json.loads(body)
        binding = Binding(
            request_id=int(fields["r"]),
            digest=fields["d"] if isinstance(fields["d"], str) else None,
            safety=SafetyChoice(fields["s"]),
            user_id=str(fields["u"]),
            channel=fields["c"] if isinstance(fields["c"], str) and fields["c"] else None,
        )
    except (ValueError, KeyError, TypeError):
        return None
    return binding if binding.user_id == user_id else None


def tell_decision(slack: SlackSide, reply: Reply, result: DecisionResult) -> None:
    """What the person who decided reads, and the card, thread and channel updated (SlackAnnouncer.decided)."""
    if result.outcome == DecisionOutcome.VOTE_RECORDED:
        reply.ephemeral(Mrkdwn(":ballot_box_with_check: ") + render(result.message))
    elif result.outcome == DecisionOutcome.CLAIM_LOST:
        reply.ephemeral(Mrkdwn(":warning: ") + render(result.message))
    slack.announcer.decided(result)


def open_step_up(
    core: Core, ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, safety: SafetyChoice
) -> bool:
    """An Approve click with the step-up on: open the form (True), or answer why not (True); False when this
    click decides as it always did (step-up off for its kind, or refused by the approval in its own words)."""
    if not core.step_up.on:
        return False
    try:
        request_id = parse_request_id(first_action(body).get("value"))
    except NotFoundError:  # a forged value: the ordinary path answers "does not exist"
        return False
    actor = actor_from_payload(body)
    try:
        challenge = core.step_up.challenge(actor, request_id, safety)
    except UserFacingError as error:
        ack()
        reply_to_click(body, respond, client).ephemeral(Mrkdwn(":warning: ") + render(error.message))
        return True
    except StorageError:
        return False  # the ordinary path answers "the database is unavailable"
    if challenge is None:
        return False
    ack()
    _open(core, body, respond, client, actor, challenge)
    return True


def _open(
    core: Core, body: dict[str, Any], respond: Respond, client: WebClient, actor: Actor, challenge: Challenge
) -> None:
    container = body.get("container") or {}
    channel = container.get("channel_id") if container.get("type") == "message" else None
    binding = Binding(challenge.request.id, challenge.digest, challenge.safety, actor.user_id, channel or None)
    try:
        client.views_open(trigger_id=body.get("trigger_id", ""), view=ui.step_up_modal(challenge, seal(core, binding)))
    except SlackApiError as error:
        log.warning("views.open for the step-up failed: %s", error.response.get("error"))
        reply_to_click(body, respond, client).ephemeral(
            Mrkdwn(":warning: I couldn't open the confirmation form, so nothing was recorded. Press Approve again.")
        )


def register(app: App, core: Core, slack: SlackSide) -> None:
    @app.view(ui.STEP_UP_VIEW)
    def step_up_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        submitter = actor_from_payload(body)
        binding = unseal(core, str(view.get("private_metadata") or ""), submitter.user_id)
        if binding is None:
            log.warning("a step-up form with a forged or broken binding was submitted by %s", submitter.user_id)
            try:
                core.step_up.record_forged(submitter)
            except StorageError:
                log.exception("could not record a forged step-up form")
            ack(response_action="errors", errors={ANSWER_BLOCK: FORGED})
            return
        actor = Actor(submitter.user_id, submitter.name, submitter.team_id, binding.channel)
        try:
            proof = core.step_up.prove(actor, binding.request_id, binding.digest, view_value(view, ANSWER_BLOCK))
        except UserFacingError as error:
            ack(response_action="errors", errors={ANSWER_BLOCK: str(error.message)[:150]})
            return
        except StorageError:
            log.exception("database error while checking a step-up form")
            ack(response_action="errors", errors={ANSWER_BLOCK: DATABASE_DOWN})
            return
        reply = reply_to_submission(actor, client)

        def job() -> None:
            try:
                result = core.approvals.approve(
                    actor, binding.request_id, binding.safety, progress=slack.announcer.refresh_card, step_up=proof
                )
                tell_decision(slack, reply, result)
            finally:
                if binding.channel is None:  # opened from App Home: the tab shows the request's new state
                    refresh_home(slack, client, actor.user_id, actor.team_id)

        run_for_user(core, reply, job, ack)

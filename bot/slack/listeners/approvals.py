"""Requests waiting for a decision: `/snapshot pending`, and the card's buttons — Approve, Reject (with an optional
reason), Cancel — the same buttons, and listeners, wherever a pending request is shown (the card,
`/snapshot pending`, App Home).

Requests are started, and their cards posted, by bot/slack/listeners/request_cards.py; a full server's "Free the
oldest slot" button is a delete (bot/slack/listeners/deleting.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.announcer import recovered_words
from bot.slack.listeners.answering import from_app_home, refresh_home, reply_to_click, reply_to_submission
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.listeners.ids import parse_request_id
from bot.slack.listeners.request_cards import card_link
from bot.slack.listeners.step_up_form import open_step_up, tell_decision
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.access import Permission
from bot.usecases.approval_safety import SafetyChoice
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import NotFoundError, UserFacingError

log = logging.getLogger(__name__)


def show_pending(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    """`/snapshot pending`: the requests waiting for a decision, each with its buttons and a link to its card."""
    overview = core.pending.overview(actor)
    requests = overview.requests
    links: dict[int, str] = {}
    for req in requests[: ui.MAX_PENDING_SHOWN]:
        link = card_link(slack.client, req.card_channel, req.card_ts)
        if link:
            links[req.id] = link
    text, blocks = ui.pending_list(
        requests,
        links,
        utcnow(),
        viewer=actor.user_id,
        viewer_can_approve=overview.viewer_can_approve,
        total=overview.total,
        unknown=[recovered_words(item) for item in overview.unresolved],
        unknown_more=overview.unresolved_more,
        approvals_channel=core.settings.approval_channel,
        step_up_kinds=core.step_up.kinds,
    )
    reply.ephemeral(text, blocks)


def register(app: App, core: Core, slack: SlackSide) -> None:
    def decide(
        ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, safety: SafetyChoice | None
    ) -> None:
        """Approve with `safety`, or (None) the requester's Cancel. The same click from the card, from
        `/snapshot pending` or from App Home: one path, the same rules."""
        actor = actor_from_payload(body)
        from_home = from_app_home(body)
        reply = reply_to_click(body, respond, client)
        value = str(first_action(body).get("value") or "")

        if safety is not None and open_step_up(core, ack, body, respond, client, safety):
            return  # APPROVAL_STEP_UP: the vote waits for the form's right answer (step_up_form.py)

        def job() -> None:
            approvals = core.approvals
            try:
                request_id = parse_request_id(value)  # a forged value names no request: "does not exist"
                if safety is None:
                    result = approvals.cancel(actor, request_id)
                else:
                    result = approvals.approve(actor, request_id, safety, progress=slack.announcer.refresh_card)
                tell_decision(slack, reply, result)
            finally:
                if from_home:  # the tab shows the request's new state (and no stale buttons)
                    refresh_home(slack, client, actor.user_id, actor.team_id)

        run_for_user(core, reply, job, ack)

    @app.action(ui.APPROVE)
    def approve(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, SafetyChoice.DEFAULT)

    @app.action(ui.APPROVE_NO_SAFETY)
    def approve_without_safety(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, SafetyChoice.NONE)

    @app.action(ui.CANCEL)
    def cancel(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, None)

    @app.action(ui.REJECT)
    def reject(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        try:
            request_id = parse_request_id(first_action(body).get("value"))
        except NotFoundError:  # not a button of ours: no form for it
            return
        actor = actor_from_payload(body)
        try:  # refuse before the form, not after someone has typed a reason
            core.guard.require(actor, Permission.APPROVE, request_id=request_id)
        except UserFacingError as error:
            reply_to_click(body, respond, client).ephemeral(Mrkdwn(":warning: ") + render(error.message))
            return
        message = body.get("message") or {}
        container = body.get("container") or {}
        try:
            client.views_open(
                trigger_id=body.get("trigger_id", ""),
                view=ui.reject_modal(request_id, container.get("channel_id"), message.get("ts")),
            )
        except SlackApiError as error:
            log.warning("views.open for reject failed: %s", error.response.get("error"))

    @app.view(ui.REJECT_VIEW)
    def reject_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        actor = actor_from_payload(body)
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            request_id = parse_request_id(meta["request_id"])
        except (ValueError, KeyError, TypeError, NotFoundError):
            ack()
            return
        channel = meta.get("channel") if isinstance(meta.get("channel"), str) else None
        actor = Actor(actor.user_id, actor.name, actor.team_id, channel)
        try:
            reason = view["state"]["values"]["reason"]["value"].get("value") or ""
        except (KeyError, TypeError, AttributeError):
            reason = ""
        # Opened from App Home (no channel): answers come as a direct message, and the tab is refreshed after.
        reply = reply_to_submission(actor, client)

        def job() -> None:
            try:
                result = core.approvals.reject(actor, request_id, str(reason))
                slack.announcer.decided(result)
            finally:
                if not channel:
                    refresh_home(slack, client, actor.user_id, actor.team_id)

        run_for_user(core, reply, job, ack)

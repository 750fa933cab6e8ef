"""`/snapshot restore <id> [reason…]`, the Restore button and its form (the reason): each starts a restore
request, which waits for a second person's approval (bot/slack/listeners/approvals.py)."""

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
from bot.slack.listeners.answering import reply_to_click, reply_to_submission
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.listeners.forms import submitter, view_value
from bot.slack.listeners.ids import audited_id, parse_id
from bot.slack.listeners.request_cards import start_request
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.access import Permission
from bot.usecases.approvals import RequestKind
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput, UserFacingError

log = logging.getLogger(__name__)


def request_restore(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    snapshot_id = audited_id(core, actor, args["snapshot_id"], "snapshot id", operation=RequestKind.RESTORE)
    start_request(core, slack, reply, actor, snapshot_id, kind=RequestKind.RESTORE, reason=args.get("reason", ""))


def open_restore_form(core: Core, reply: Reply, actor: Actor, trigger_id: str | None, *, snapshot_id: int) -> None:
    """A Restore button's form (the reason); refused before the form, not after someone has typed a reason."""
    try:
        core.guard.require(actor, Permission.REQUEST_RESTORE, snapshot_id=snapshot_id)
    except UserFacingError as error:
        reply.ephemeral(Mrkdwn(":warning: ") + render(error.message))
        return
    required = core.approvals.reason_required
    typed = Mrkdwn("`/snapshot restore {} &lt;reason…&gt;`").format(snapshot_id)
    if not trigger_id:
        reply.ephemeral(Mrkdwn("Slack did not send what is needed to open a form. Use {}.").format(typed))
        return
    try:
        slack_view = ui.restore_modal(snapshot_id, actor.channel_id or "", reason_required=required)
        reply.client.views_open(trigger_id=trigger_id, view=slack_view)
    except SlackApiError as error:
        log.warning("views.open for restore failed: %s", error.response.get("error"))
        reply.ephemeral(Mrkdwn("I couldn't open the form. Use {}.").format(typed))


def register(app: App, core: Core, slack: SlackSide) -> None:
    @app.action(ui.ASK_RESTORE)
    def ask_restore(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        # The form with the reason first; its submission goes the command's way (below).
        ack()
        actor, reply = actor_from_payload(body), reply_to_click(body, respond, client)
        value = str(first_action(body).get("value") or "")
        snapshot_id = int(value) if value.isascii() and value.isdigit() and len(value) < 16 else None
        if snapshot_id is None:
            return
        open_restore_form(core, reply, actor, body.get("trigger_id"), snapshot_id=snapshot_id)

    @app.view(ui.RESTORE_VIEW)
    def restore_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        # The reason is checked in place, then the request goes the command's way.
        try:  # our own form's metadata: anything else is not a form of ours, and is only acknowledged
            snapshot_id = parse_id(json.loads(view.get("private_metadata") or "{}")["snapshot_id"], "snapshot id")
        except (ValueError, KeyError, TypeError, InvalidInput):
            ack()
            return
        reason = view_value(view, "reason")
        try:
            core.approvals.check_reason(RequestKind.RESTORE, reason)
        except InvalidInput as error:
            ack(response_action="errors", errors={"reason": str(error)})
            return
        actor = submitter(body, view)
        reply = reply_to_submission(actor, client)
        args = {"snapshot_id": str(snapshot_id), "reason": reason}
        run_for_user(core, reply, lambda: request_restore(core, slack, reply, actor, args), ack)

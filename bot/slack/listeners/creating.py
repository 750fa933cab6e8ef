"""`/snapshot create`, its form (opened by the command without arguments or by a Create button) and the form's
server select: validate inline within Slack's 3 seconds, then create in the background and follow it."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.listeners.answering import notify_elsewhere, reply_to_click, reply_to_submission
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.listeners.forms import submitter, view_value
from bot.slack.listeners.ids import audited_id, parse_id
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.access import Permission
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput, QuotaReached, UserFacingError

log = logging.getLogger(__name__)

# Slack's trigger_id lives 3 s from the click: the quota look-up before the create form gets at most this much.
ROOM_CHECK_SECONDS = 1.5
# Slack waits 3 s for a select's options; the servers list gets at most this much of it.
OPTIONS_SECONDS = 2.0
_FIELD_TO_BLOCK = {"server id": "server", "name": "name", "description": "description"}


def create(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    server_id = audited_id(core, actor, args.get("server_id"), "server id", operation="create")
    result = core.snapshots.create(actor, server_id, args.get("name"), args.get("description", ""))
    text, blocks = ui.create_started(result, actor.user_id)
    posted = reply.to_channel(text, blocks)
    if posted is None:
        reply.ephemeral(text, blocks)
    slack.cards.track_create(
        actor,
        result,
        message_channel=str(posted["channel"]) if posted else None,
        message_ts=str(posted["ts"]) if posted else None,
    )
    snap = result.snapshot
    notify_elsewhere(
        core,
        slack,
        actor,
        Mrkdwn(":camera_with_flash: {} started snapshot {} (#{}) of {}.").format(
            ui.mention(actor.user_id),
            ui.snapshot_name(snap.name),
            snap.id,
            ui.server_name(result.server.name, result.server.id),
        ),
    )


def open_create_form(
    core: Core, slack: SlackSide, reply: Reply, actor: Actor, trigger_id: str | None, *, server_id: int | None
) -> None:
    server_label = ""
    try:
        core.guard.require(actor, Permission.CREATE, server_id=server_id)
        if server_id is not None:  # a full server is said first, not after the form was filled in vain
            server_label = core.create_help.check_room(actor, server_id, within=ROOM_CHECK_SECONDS)
    except QuotaReached as error:
        reply.ephemeral(render(error.message), ui.quota_reached(render(error.message), error.oldest_snapshot_id))
        return
    except UserFacingError as error:
        reply.ephemeral(Mrkdwn(":warning: ") + render(error.message))
        return
    if not trigger_id:
        reply.ephemeral(
            Mrkdwn(
                "Slack did not send what is needed to open a form. "
                "Use `/snapshot create &lt;server_id&gt; &lt;name&gt;`."
            )
        )
        return
    try:
        slack.client.views_open(
            trigger_id=trigger_id,
            view=ui.create_modal(channel_id=actor.channel_id or "", server_id=server_id, server_label=server_label),
        )
    except SlackApiError as error:
        log.warning("views.open failed: %s", error.response.get("error"))
        reply.ephemeral(
            Mrkdwn("I couldn't open the form. Use `/snapshot create &lt;server_id&gt; &lt;name&gt; [description…]`.")
        )


def register(app: App, core: Core, slack: SlackSide) -> None:
    @app.action(ui.OPEN_CREATE)
    def open_create(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        actor, reply = actor_from_payload(body), reply_to_click(body, respond, client)
        value = str(first_action(body).get("value") or "")
        server_id = int(value) if value.isascii() and value.isdigit() and len(value) < 16 else None
        open_create_form(core, slack, reply, actor, body.get("trigger_id"), server_id=server_id)

    @app.options(ui.SERVER_PICK)
    def server_choices(ack: Ack, body: dict[str, Any]) -> None:
        """The server select of the create and schedule forms (`block_suggestion`): the servers matching the text."""
        view = given if isinstance(given := body.get("view"), dict) else {}
        actor = submitter(body, view)  # the form being filled in, in the channel it was opened from
        typed = body.get("value")
        try:
            choices = core.create_help.server_choices(
                actor, typed if isinstance(typed, str) else "", within=OPTIONS_SECONDS
            )
        except UserFacingError:  # refused (and audited): no servers to pick from
            ack(options=[])
            return
        ack(**ui.server_options(choices))

    @app.view(ui.CREATE_VIEW)
    def create_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        server_id, name, description = (view_value(view, b) for b in ("server", "name", "description"))
        try:
            parse_id(server_id, "server id")  # the id first, as `create` reads them
            core.snapshots.validate_create(name, description)
        except InvalidInput as error:
            if error.field == "name":  # a name the form refuses is audited as a typed create's is
                core.snapshots.record_invalid_create(submitter(body, view), error)
            block = _FIELD_TO_BLOCK.get(error.field or "", "name")
            ack(response_action="errors", errors={block: ui.plain_text_error(str(error))})
            return
        actor = submitter(body, view)
        reply = reply_to_submission(actor, client)
        args = {"server_id": server_id, "name": name, "description": description}
        run_for_user(core, reply, lambda: create(core, slack, reply, actor, args), ack)

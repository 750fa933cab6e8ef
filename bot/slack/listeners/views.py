"""Modal submissions: validate inline within Slack's 3 seconds, then do the work in the background."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.blocks import SERVER_PICK
from bot.slack.listeners import flows
from bot.slack.listeners.common import actor_from_payload, run_for_user
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput, UserFacingError

_FIELD_TO_BLOCK = {"server id": "server", "name": "name", "description": "description"}


def view_value(view: dict[str, Any], block_id: str) -> str:
    """A field's value: a text input's text, or a select's chosen option (the create form's server)."""
    try:
        fields = view["state"]["values"][block_id]
        field = fields.get(SERVER_PICK) or fields["value"]  # a form opened before the select came still submits
        chosen = field.get("selected_option")
        value = chosen.get("value") if isinstance(chosen, dict) else field.get("value")
    except (KeyError, TypeError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def view_channel(view: dict[str, Any]) -> str | None:
    try:
        channel = json.loads(view.get("private_metadata") or "{}").get("channel_id")
    except (ValueError, AttributeError):
        return None
    return channel if isinstance(channel, str) and channel else None


# Slack waits 3 s for a select's options; the servers list gets at most this much of it.
OPTIONS_SECONDS = 2.0


def register(app: App, core: Core, slack: SlackSide) -> None:
    @app.options(ui.SERVER_PICK)
    def server_choices(ack: Ack, body: dict[str, Any]) -> None:
        """The server select of the create and schedule forms (`block_suggestion`): the servers matching the text."""
        payload_actor = actor_from_payload(body)
        view = given if isinstance(given := body.get("view"), dict) else {}
        actor = Actor(payload_actor.user_id, payload_actor.name, payload_actor.team_id, view_channel(view))
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
            core.snapshots.validate_create(server_id, name, description)
        except InvalidInput as error:
            block = _FIELD_TO_BLOCK.get(error.field or "", "name")
            ack(response_action="errors", errors={block: ui.plain_text_error(str(error))})
            return
        payload_actor = actor_from_payload(body)
        actor = Actor(payload_actor.user_id, payload_actor.name, payload_actor.team_id, view_channel(view))
        reply = Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id)
        args = {"server_id": server_id, "name": name, "description": description}
        run_for_user(core, reply, lambda: flows.create(core, slack, reply, actor, args), ack)

    @app.view(ui.RESTORE_VIEW)
    def restore_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        # A Restore button's form: the reason is checked in place, then the request goes the command's way.
        try:
            snapshot_id = int(json.loads(view.get("private_metadata") or "{}")["snapshot_id"])
        except (ValueError, KeyError, TypeError):
            ack()
            return
        reason = view_value(view, "reason")
        try:
            core.approvals.check_reason("restore", reason)
        except InvalidInput as error:
            ack(response_action="errors", errors={"reason": str(error)})
            return
        payload_actor = actor_from_payload(body)
        actor = Actor(payload_actor.user_id, payload_actor.name, payload_actor.team_id, view_channel(view))
        reply = Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id)
        args = {"snapshot_id": str(snapshot_id), "reason": reason}
        run_for_user(core, reply, lambda: flows.request_restore(core, slack, reply, actor, args), ack)

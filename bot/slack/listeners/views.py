"""Modal submissions: validate inline within Slack's 3 seconds, then do the work in the background."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.listeners import flows
from bot.slack.listeners.common import actor_from_payload, run_for_user
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput

_FIELD_TO_BLOCK = {"server id": "server", "name": "name", "description": "description"}


def view_value(view: dict[str, Any], block_id: str) -> str:
    try:
        value = view["state"]["values"][block_id]["value"].get("value")
    except (KeyError, TypeError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def view_channel(view: dict[str, Any]) -> str | None:
    try:
        channel = json.loads(view.get("private_metadata") or "{}").get("channel_id")
    except (ValueError, AttributeError):
        return None
    return channel if isinstance(channel, str) and channel else None


def register(app: App, core: Core, slack: SlackSide) -> None:
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

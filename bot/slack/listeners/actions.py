"""Buttons on list, confirmation and quota messages."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.listeners import flows
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.replies import Reply
from bot.slack.side import SlackSide


def register(app: App, core: Core, slack: SlackSide) -> None:
    def context(body: dict[str, Any], respond: Respond, client: WebClient) -> tuple[Any, Reply, str]:
        actor = actor_from_payload(body)
        reply = Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
        return actor, reply, str(first_action(body).get("value") or "")

    @app.action(ui.LIST_MORE)
    def list_more(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor, reply, value = context(body, respond, client)
        args, page = flows.list_page_args(value)
        run_for_user(core, reply, lambda: flows.show_list(core, slack, reply, actor, args, page=page), ack)

    @app.action(ui.OPEN_CREATE)
    def open_create(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        actor, reply, value = context(body, respond, client)
        server_id = int(value) if value.isascii() and value.isdigit() and len(value) < 16 else None
        flows.open_create_form(core, slack, reply, actor, body.get("trigger_id"), server_id=server_id)

    @app.action(ui.DISMISS)
    def dismiss(ack: Ack, respond: Respond) -> None:
        ack()
        respond(delete_original=True)

    @app.action(ui.ASK_RESTORE)
    def ask_restore(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        # The form with the reason first; its submission goes the command's way (bot/slack/listeners/views.py).
        ack()
        actor, reply, value = context(body, respond, client)
        snapshot_id = int(value) if value.isascii() and value.isdigit() and len(value) < 16 else None
        if snapshot_id is None:
            return
        flows.open_restore_form(core, reply, actor, body.get("trigger_id"), snapshot_id=snapshot_id)

    # Buttons whose value is a snapshot id, each handing over to the same flow as its command.
    snapshot_buttons: dict[str, flows.Handler] = {
        ui.ASK_DELETE: flows.ask_delete,
        ui.CONFIRM_DELETE: flows.confirm_delete,
    }
    for action_id, handler in snapshot_buttons.items():
        app.action(action_id)(_snapshot_button(core, slack, handler))


def _snapshot_button(core: Core, slack: SlackSide, handler: flows.Handler) -> Any:
    def on_click(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor = actor_from_payload(body)
        reply = Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
        args = {"snapshot_id": str(first_action(body).get("value") or "")}
        run_for_user(core, reply, lambda: handler(core, slack, reply, actor, args), ack)

    return on_click

"""`/snapshot list [server_id]` and its "Show more" button: the snapshots, a page at a time."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.listeners.answering import reply_to_click
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.usecases.context import Actor, utcnow
from bot.usecases.validation import parse_id


def show_list(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str], page: int = 0) -> None:
    server_id = parse_id(args["server_id"], "server id") if args.get("server_id") else None
    overview = core.snapshots.overview(actor, server_id, session=args.get("session"))
    text, blocks = ui.list_message(overview, utcnow(), page)
    reply.ephemeral(text, blocks)


def list_page_args(value: str) -> tuple[dict[str, str], int]:
    """Decode a "Show more" button's value; anything odd falls back to page 0 of everything."""
    try:
        data = json.loads(value)
        server_id = data.get("server_id")
        page = int(data.get("page", 0))
    except (ValueError, TypeError, AttributeError):
        return {}, 0
    args = {"server_id": str(int(server_id))} if isinstance(server_id, int) else {}
    session = data.get("session")
    if isinstance(session, str) and 0 < len(session) <= 64:
        args["session"] = session  # the paging session: the listing already fetched, while it is fresh
    return args, max(0, min(page, 1000))


def register(app: App, core: Core, slack: SlackSide) -> None:
    @app.action(ui.LIST_MORE)
    def list_more(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor, reply = actor_from_payload(body), reply_to_click(body, respond, client)
        args, page = list_page_args(str(first_action(body).get("value") or ""))
        run_for_user(core, reply, lambda: show_list(core, slack, reply, actor, args, page=page), ack)

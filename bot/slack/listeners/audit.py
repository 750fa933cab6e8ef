"""`/snapshot audit …` and its "Older" button; the filters' numbers are parsed here (`AuditFilters.parse`), in the
work after the ack, so a bad one is answered like any other refusal."""

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
from bot.usecases.audit_view import AuditFilters
from bot.usecases.context import Actor, utcnow


def show_audit(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    """`/snapshot audit [filters…]`: the newest page."""
    show(core, reply, actor, args)


def show(core: Core, reply: Reply, actor: Actor, filters: dict[str, str], before_id: int | None = None) -> None:
    page = core.audit_reader.recent(actor, AuditFilters.parse(filters), before_id)
    more = json.dumps({"f": page.filters, "b": page.next_before_id}) if page.next_before_id else None
    if more and len(more) > 2000:
        more = None
    text, blocks = ui.audit_message(page.records, page.filters, utcnow(), more)
    reply.ephemeral(text, blocks)


def register(app: App, core: Core) -> None:
    @app.action(ui.AUDIT_MORE)
    def older(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor, reply = actor_from_payload(body), reply_to_click(body, respond, client)
        try:
            data = json.loads(str(first_action(body).get("value") or "{}"))
            filters = {str(k): str(v) for k, v in dict(data.get("f") or {}).items()}
            before = int(data["b"])
        except (ValueError, TypeError, KeyError, AttributeError):
            ack()
            return
        run_for_user(core, reply, lambda: show(core, reply, actor, filters, before), ack)

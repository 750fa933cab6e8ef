"""`/snapshot delete <id>`, its confirmation's buttons, and a full server's "Free the oldest slot" (a delete too).

A delete needs its own approval when SNAPSHOT_APPROVAL_REQUIRED_FOR names it: the confirmation then starts a
request (bot/slack/listeners/request_cards.py) instead of deleting. A delete closes the open requests of its
snapshot and redraws the restore cards of its server (a slot is free).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.listeners.answering import notify_elsewhere, reply_to_click
from bot.slack.listeners.common import Handler, actor_from_payload, first_action, run_for_user
from bot.slack.listeners.ids import audited_id, parse_request_id
from bot.slack.listeners.request_cards import start_request
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.usecases.approvals import RequestKind
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import AlreadyGone


def ask_delete(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    snapshot_id = audited_id(core, actor, args["snapshot_id"], "snapshot id", operation="delete")
    snapshot = core.snapshots.prepare_delete(actor, snapshot_id)
    waiting = core.approvals.open_for_snapshot(snapshot.id)  # the confirmation names what the delete would close
    text, blocks = ui.delete_confirmation(snapshot, utcnow(), open_requests=waiting)
    reply.ephemeral(text, blocks)


def confirm_delete(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    snapshot_id = audited_id(core, actor, args["snapshot_id"], "snapshot id", operation="delete")
    delete_or_ask(core, slack, reply, actor, snapshot_id)


def delete_or_ask(core: Core, slack: SlackSide, reply: Reply, actor: Actor, snapshot_id: int) -> None:
    """The delete itself, or, when deletes need approval, a request for it (with its card). A pinned snapshot is
    refused first (no request is opened for it)."""
    core.snapshots.refuse_if_pinned(snapshot_id)
    if core.approvals.required_for(RequestKind.DELETE):
        start_request(core, slack, reply, actor, snapshot_id, kind=RequestKind.DELETE)
        return
    try:
        result = core.snapshots.delete(actor, snapshot_id)
    except AlreadyGone as gone:  # VPS.org's 404 to our DELETE: its open requests can never be carried out
        for closed in core.approvals.close_for_deleted(actor, gone.snapshot_id, gone_at_delete=True):
            slack.announcer.decided(closed)  # its card: "VPS.org reported the snapshot gone when … tried"
        raise
    text = ui.deleted_announcement(result.snapshot, actor.user_id)
    reply.ephemeral(text, replace=True)
    reply.to_channel(text)
    notify_elsewhere(core, slack, actor, text)
    for closed in core.approvals.close_for_deleted(actor, result.snapshot.id):
        slack.announcer.decided(closed)  # its card: "the snapshot was deleted by …"; its requester told
    for changed in core.approvals.refresh_offers_on_server(result.snapshot.server.id):
        slack.announcer.refresh_card(changed)  # a slot is free: "Server full" becomes the safety snapshot offer


def free_oldest_slot(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    """A full server's restore card: delete its oldest snapshot through the normal delete path (its own approval
    when deletes need one), so the safety snapshot has a slot; the card offers it once the delete is done."""
    target = core.approvals.oldest_to_free(actor, parse_request_id(args["request_id"]))
    # A delete that succeeds redraws the restore cards of its server (their offer re-checked), this one among them.
    delete_or_ask(core, slack, reply, actor, target.id)


def register(app: App, core: Core, slack: SlackSide) -> None:
    # Buttons handing over to the same flow as their command; the button's value is the id the flow takes.
    buttons: dict[str, tuple[Handler, str]] = {
        ui.ASK_DELETE: (ask_delete, "snapshot_id"),
        ui.CONFIRM_DELETE: (confirm_delete, "snapshot_id"),
        ui.FREE_OLDEST: (free_oldest_slot, "request_id"),
    }
    for action_id, (handler, field) in buttons.items():
        app.action(action_id)(_button(core, slack, handler, field))

    @app.action(ui.DISMISS)
    def dismiss(ack: Ack, respond: Respond) -> None:
        ack()
        respond(delete_original=True)


def _button(core: Core, slack: SlackSide, handler: Handler, field: str) -> Callable[..., None]:
    def on_click(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor, reply = actor_from_payload(body), reply_to_click(body, respond, client)
        args = {field: str(first_action(body).get("value") or "")}
        run_for_user(core, reply, lambda: handler(core, slack, reply, actor, args), ack)

    return on_click

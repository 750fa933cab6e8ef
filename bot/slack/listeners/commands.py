"""`/snapshot …`: parse, acknowledge at once, hand the work to its feature in the background.

The one router of the slash command: each sub-command's work lives in its feature's module (listing, creating,
deleting, restores, approvals, audit, schedules, pins), which never imports this one.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.mrkdwn import Mrkdwn, sentence
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.listeners import approvals, audit, creating, deleting, listing, mfa, pins, restores, schedules
from bot.slack.listeners.common import Handler, actor_from_command, run_for_user
from bot.slack.parsing import UsageError, parse_command
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import SLASH_COMMAND, render

COMMANDS: dict[str, Handler] = {
    "list": listing.show_list,
    "create": creating.create,
    "delete": deleting.ask_delete,
    "restore": restores.request_restore,
    "pending": approvals.show_pending,
    "audit": audit.show_audit,
    "schedule": schedules.add,
    "schedules": schedules.show,
    "reschedule": schedules.change,
    "unschedule": schedules.remove,
    "mfa": mfa.run_mfa,
    "pin": pins.pin,
    "unpin": pins.unpin,
}


def register(app: App, core: Core, slack: SlackSide) -> None:
    @app.command(SLASH_COMMAND)
    def snapshot_command(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor = actor_from_command(body)
        try:
            command = parse_command(body.get("text"))
        except UsageError as error:
            ack(response_type="ephemeral", text=Mrkdwn(":warning: ") + sentence(str(error)))
            core.work.submit(core.snapshots.record_invalid_command, actor, str(error))
            return
        if command.name == "help":
            ack(
                response_type="ephemeral",
                text=Mrkdwn("Snapshot bot help"),
                blocks=ui.help_blocks(
                    render(core.access.describe()),
                    core.settings.restore_approvals_required,
                    admin_notice=_admin_notice(core, actor.user_id),
                ),
            )
            return
        reply = Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
        if command.name == "create" and not command.args:
            ack()
            # trigger_id is valid for 3 s: open the form right here, not in the queue
            creating.open_create_form(core, slack, reply, actor, body.get("trigger_id"), server_id=None)
            return
        if command.name == "schedule" and not command.args:
            ack()
            schedules.open_form(core, reply, actor, body.get("trigger_id"))
            return
        handler = COMMANDS[command.name]
        run_for_user(core, reply, lambda: handler(core, slack, reply, actor, command.args), ack)


def _admin_notice(core: Core, user_id: str) -> str | None:
    """What admins must know about the set-up: for now, that the audit trail is not witnessed."""
    if core.settings.audit_signing_key is not None:
        return None
    # Admins only. Listed ids (or open mode) only: resolving user groups here could delay the acknowledgement.
    if not (core.access.open_mode or user_id in core.settings.admins):
        return None
    from bot.audit_witness import NOT_WITNESSED

    return ":warning: " + NOT_WITNESSED

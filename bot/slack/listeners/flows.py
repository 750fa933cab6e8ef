"""The work behind commands and buttons, run after ack: call a use case, render its result.

Commands and buttons that do the same thing share one function here, so there is one path per action.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.listeners import schedules
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.access import Permission
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import AlreadyGone, QuotaReached, UserFacingError
from bot.usecases.validation import parse_id

log = logging.getLogger(__name__)

# Slack's trigger_id lives 3 s from the click: the quota look-up before the create form gets at most this much.
ROOM_CHECK_SECONDS = 1.5

Handler = Callable[[Core, SlackSide, Reply, Actor, dict[str, str]], None]


def show_list(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str], page: int = 0) -> None:
    server_id = parse_id(args["server_id"], "server id") if args.get("server_id") else None
    overview = core.snapshots.overview(actor, server_id, session=args.get("session"))
    text, blocks = ui.list_message(overview, utcnow(), page)
    reply.ephemeral(text, blocks)


def create(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    result = core.snapshots.create(actor, args.get("server_id"), args.get("name"), args.get("description", ""))
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


def ask_delete(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    snapshot = core.snapshots.prepare_delete(actor, args["snapshot_id"])
    waiting = core.approvals.open_for_snapshot(snapshot.id)  # the confirmation names what the delete would close
    text, blocks = ui.delete_confirmation(snapshot, utcnow(), open_requests=waiting)
    reply.ephemeral(text, blocks)


def confirm_delete(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    if core.approvals.required_for("delete"):
        request_approval(core, slack, reply, actor, args, kind="delete")
        return
    try:
        result = core.snapshots.delete(actor, args["snapshot_id"])
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


def notify_elsewhere(core: Core, slack: SlackSide, actor: Actor, line: Mrkdwn) -> None:
    """One line to SNAPSHOT_NOTIFY_CHANNEL when it is another channel than the action's, which already got the
    announcement; without a notification channel the announcement is the notification."""
    channel = core.settings.notify_channel
    if not channel or channel == actor.channel_id:
        return
    slack.notifier.line(line, fallback_channel=None)


def request_restore(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    request_approval(core, slack, reply, actor, args, kind="restore")


def request_approval(
    core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str], *, kind: str
) -> None:
    from bot.slack.listeners import approvals as approval_flow

    approval_flow.start_request(
        core, slack, reply, actor, args["snapshot_id"], kind=kind, reason=args.get("reason", "")
    )


def show_pending(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    from bot.slack.listeners import approvals as approval_flow

    approval_flow.show_pending(core, slack, reply, actor)


def show_audit(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    from bot.slack.listeners import audit as audit_view

    audit_view.show(core, reply, actor, args)


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


COMMANDS: dict[str, Handler] = {
    "list": show_list,
    "create": create,
    "delete": ask_delete,
    "restore": request_restore,
    "pending": show_pending,
    "audit": show_audit,
    "schedule": schedules.add,
    "schedules": schedules.show,
    "reschedule": schedules.change,
    "unschedule": schedules.remove,
}

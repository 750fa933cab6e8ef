"""`/snapshot schedule`, `schedules`, `unschedule` and the schedule form: parse, call the use case, render.

Thin like every listener: the rules (permission, `<when>`, minimum interval, quota fit, audit) are the use case's
(bot/usecases/schedules.py); this only turns its answers into messages. Adding or removing a schedule is told to
the channel (and the notification channel when it is another); the list is shown only to whoever asked.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn
from bot.runtime import Core
from bot.slack.blocks import schedules as ui
from bot.slack.listeners.answering import notify_elsewhere, reply_to_click, reply_to_submission
from bot.slack.listeners.common import Handler, actor_from_payload, first_action, run_for_user
from bot.slack.listeners.forms import selected, submitter, view_value
from bot.slack.listeners.ids import audited_id, parse_id
from bot.slack.listeners.request_cards import point_to_conflict, post_request_card
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.access import Permission
from bot.usecases.approval_base import RequestView
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput, UserFacingError
from bot.usecases.restore_checks import RequestConflict

log = logging.getLogger(__name__)
_FIELD_TO_BLOCK = {"server id": "server", "when": "when", "keep": "keep", "on_full": "on_full"}


def _announce(core: Core, slack: SlackSide, reply: Reply, actor: Actor, text: Mrkdwn) -> None:
    posted = reply.to_channel(text)
    if posted is None:
        reply.ephemeral(text)
    notify_elsewhere(core, slack, actor, text)


def add(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    server_id = audited_id(core, actor, args.get("server_id"), "server id", operation="schedule")
    made = core.schedules.create(actor, server_id, args.get("when"), args.get("keep"), args.get("on_full"))
    if isinstance(made, RequestView):  # deletes need approval: a `schedule` request, with its card
        post_request_card(core, slack, reply, actor, made)
        return
    _announce(core, slack, reply, actor, ui.schedule_created(made))


def change(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    """`/snapshot reschedule <id> <when> keep <n> [on_full=…]` (and the Change form's submit)."""
    schedule_id = audited_id(core, actor, args.get("schedule_id"), "schedule id", operation="reschedule")
    try:
        changed = core.schedules.reschedule(actor, schedule_id, args.get("when"), args.get("keep"), args.get("on_full"))
    except RequestConflict as error:  # a request for this schedule already waits: point to its card
        point_to_conflict(slack, reply, error)
        return
    if isinstance(changed, RequestView):
        post_request_card(core, slack, reply, actor, changed)
        return
    _announce(core, slack, reply, actor, ui.schedule_changed(changed, actor.user_id))


def show(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    text, blocks = ui.schedules_list(core.schedules.overview(actor))
    reply.ephemeral(text, blocks)


def remove(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    # Audited as a refused `schedule` operation, as it always was (the audit's wire format).
    schedule_id = audited_id(core, actor, args.get("schedule_id"), "schedule id", operation="schedule")
    view = core.schedules.remove(actor, schedule_id)
    _announce(core, slack, reply, actor, ui.unscheduled(view, actor.user_id))
    for closed in core.approvals.close_for_removed(actor, view.schedule.id):
        slack.announcer.decided(closed)  # its card: "the schedule was removed by …"; its requester told


def open_form(core: Core, reply: Reply, actor: Actor, trigger_id: str | None) -> None:
    try:
        core.guard.require(actor, Permission.SCHEDULE)
    except UserFacingError as error:
        reply.ephemeral(Mrkdwn(":warning: ") + render(error.message))
        return
    fallback = Mrkdwn("Use `/snapshot schedule &lt;server_id&gt; &lt;when&gt; keep &lt;n&gt; [on_full=skip|rotate]`.")
    if not trigger_id:
        reply.ephemeral(Mrkdwn("Slack did not send what is needed to open a form. ") + fallback)
        return
    try:
        core_view = ui.schedule_modal(channel_id=actor.channel_id or "")
        reply.client.views_open(trigger_id=trigger_id, view=core_view)
    except SlackApiError as error:
        log.warning("views.open failed: %s", error.response.get("error"))
        reply.ephemeral(Mrkdwn("I couldn't open the form. ") + fallback)


def open_change_form(core: Core, reply: Reply, actor: Actor, schedule_id: str, trigger_id: str | None) -> None:
    """The Change button: the schedule form, prefilled with the schedule's settings (its submit is a reschedule)."""
    fallback = Mrkdwn(
        "Use `/snapshot reschedule &lt;schedule_id&gt; &lt;when&gt; keep &lt;n&gt; [on_full=skip|rotate]`."
    )
    view = core.schedules.for_change(actor, parse_id(schedule_id, "schedule id"))
    if not trigger_id:
        reply.ephemeral(Mrkdwn("Slack did not send what is needed to open a form. ") + fallback)
        return
    try:
        reply.client.views_open(
            trigger_id=trigger_id, view=ui.schedule_modal(channel_id=actor.channel_id or "", change=view)
        )
    except SlackApiError as error:
        log.warning("views.open failed: %s", error.response.get("error"))
        reply.ephemeral(Mrkdwn("I couldn't open the form. ") + fallback)


def register(app: App, core: Core, slack: SlackSide) -> None:
    def checked_then_run(
        ack: Ack,
        body: dict[str, Any],
        view: dict[str, Any],
        client: WebClient,
        server_id: str | None,
        command: dict[str, str],
        flow: Handler,
    ) -> None:
        """A schedule form's submit: its fields checked in place (errors shown on the form), then `flow` after the
        ack, for the person who submitted it, answering in the channel the form was opened from."""
        try:  # local checks only: the answer must reach Slack within 3 seconds
            sid = parse_id(server_id, "server id")
            core.schedules.validate(sid, command["when"], command["keep"], command["on_full"])
        except InvalidInput as error:
            ack(response_action="errors", errors={_FIELD_TO_BLOCK.get(error.field or "", "when"): str(error)})
            return
        actor = submitter(body, view)
        reply = reply_to_submission(actor, client)
        run_for_user(core, reply, lambda: flow(core, slack, reply, actor, command), ack)

    @app.view(ui.SCHEDULE_VIEW)
    def schedule_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        args = {b: view_value(view, b) for b in ("server", "when", "keep")}
        on_full = selected(view, "on_full") or "skip"
        command = {"server_id": args["server"], "when": args["when"], "keep": args["keep"], "on_full": on_full}
        checked_then_run(ack, body, view, client, args["server"], command, add)

    @app.action(ui.OPEN_CHANGE)
    def change_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor, reply = actor_from_payload(body), reply_to_click(body, respond, client)
        value = str(first_action(body).get("value") or "")
        trigger = body.get("trigger_id")
        run_for_user(core, reply, lambda: open_change_form(core, reply, actor, value, trigger), ack)

    @app.view(ui.RESCHEDULE_VIEW)
    def change_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        args = {b: view_value(view, b) for b in ("when", "keep")}
        on_full = selected(view, "on_full") or "skip"
        try:
            meta = json.loads(view.get("private_metadata") or "{}")  # our own form's: anything else is only acked
            schedule_id = str(parse_id(meta["schedule_id"], "schedule id"))
            server_id = str(parse_id(meta["server_id"], "server id"))
        except (ValueError, KeyError, TypeError, InvalidInput):
            ack()
            return
        command = {"schedule_id": schedule_id, "when": args["when"], "keep": args["keep"], "on_full": on_full}
        checked_then_run(ack, body, view, client, server_id, command, change)

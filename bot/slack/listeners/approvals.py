"""The approval card and its buttons: Approve, Reject (with an optional reason), Cancel."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime import Services
from bot.slack import blocks as ui
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.notify import notifier_for
from bot.slack.replies import Reply
from bot.usecases.access import Permission
from bot.usecases.approvals import ApprovalService, DecisionResult, RequestView
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import UserFacingError

log = logging.getLogger(__name__)


def _approvals(services: Services) -> ApprovalService:
    return services.extras["approvals"]


def start_request(
    services: Services, client: WebClient, reply: Reply, actor: Actor, snapshot_id: str, *, kind: str
) -> None:
    request = _approvals(services).request(actor, snapshot_id, kind)
    channel = services.settings.approval_channel or actor.channel_id
    text, blocks = ui.approval_card(request, utcnow())
    posted = reply.to_channel(text, blocks, channel=channel)
    if posted and posted.get("ts"):
        _approvals(services).attach_card(request.id, str(posted.get("channel") or channel), str(posted["ts"]))
        where = f" in <#{channel}>" if channel != actor.channel_id else ""
        reply.ephemeral(
            f"Your {kind} request #{request.id} is waiting for approval{where}. "
            "Someone else has to approve it; you can cancel it from the card."
        )
    else:
        # The request is safely stored; it shows in `/snapshot pending` even without its card.
        reply.ephemeral(
            f"Your {kind} request #{request.id} is recorded, but I couldn't post its approval card. "
            "Approvers can find it with `/snapshot pending`."
        )
    notifier_for(services, client).line(
        f":inbox_tray: {ui.mention(actor.user_id)} requested a {kind} of {ui.code(request.snapshot_name)} "
        f"(#{request.snapshot_id}) on *{ui.escape(request.server_name)}* — request #{request.id}.",
        fallback_channel=None if channel == actor.channel_id else actor.channel_id,
    )


def publish_outcome(services: Services, client: WebClient, result: DecisionResult) -> None:
    """Card updated in place; requester told in a thread reply; one line to the notification channel."""
    req = result.request
    refresh_card(client, req)
    if result.outcome in ("vote_recorded", "claim_lost"):  # claim_lost: whoever took over has told everyone
        return
    by = f" by {ui.mention(req.decided_by)}" if req.decided_by and req.decided_by != "system" else ""
    verb = {
        "executed": f"was approved{by} and carried out"
        if req.kind == "delete"
        else f"was approved{by} — the restore has started",
        "failed": f"was approved{by} but *failed*",
        "needs_check": f"was approved{by} but its outcome is *unknown* — check the server before retrying",
        "stale": f"was approved{by} but *not sent*: the snapshot changed since it was requested",
        "not_sent": "was approved but *nothing was sent* to VPS.org — it can be approved again or cancelled",
        "rejected": f"was rejected{by}",
        "cancelled": f"was cancelled{by}",
        "expired": "expired",
    }.get(result.outcome, result.outcome)
    what = f"{ui.code(req.snapshot_name)} → *{ui.escape(req.server_name)}*"
    line = f"{req.kind.title()} request #{req.id} ({what}) {verb}."
    if req.card_channel and req.card_ts:
        detail = f"\n{ui.escape(result.message)}" if result.outcome in _DETAILED else ""
        try:
            client.chat_postMessage(
                channel=req.card_channel,
                thread_ts=req.card_ts,
                text=f"{ui.mention(req.requester_id)} {line}{detail}",
            )
        except SlackApiError as error:
            log.warning("thread reply failed: %s", error.response.get("error"))
    # Without a notification channel, the channel where it was asked hears about it (the card's thread already has it).
    fallback = req.channel_id if req.channel_id != req.card_channel else None
    loud = f" {ui.escape(result.message)}" if result.outcome in ("needs_check", "stale", "not_sent") else ""
    notifier_for(services, client).line(line + loud, fallback_channel=fallback)
    tracker = services.extras.get("tracker")
    if tracker is not None and result.outcome == "executed" and req.kind == "restore":
        tracker.track_restore(req)


_DETAILED = ("executed", "failed", "needs_check", "stale", "not_sent")


def refresh_card(client: WebClient, req: RequestView) -> None:
    if not (req.card_channel and req.card_ts):
        return
    text, blocks = ui.approval_card(req, utcnow())
    try:
        client.chat_update(channel=req.card_channel, ts=req.card_ts, text=text, blocks=blocks)
    except SlackApiError as error:
        # The outcome is already stored and audited; the card is only its picture.
        log.warning("could not update card of request #%s: %s", req.id, error.response.get("error"))


def show_pending(services: Services, client: WebClient, reply: Reply, actor: Actor) -> None:
    services.guard.require(actor, Permission.LIST)
    requests = _approvals(services).open_requests()
    links: dict[int, str] = {}
    for req in requests[:40]:
        if req.card_channel and req.card_ts:
            with contextlib.suppress(SlackApiError, KeyError):
                links[req.id] = str(
                    client.chat_getPermalink(channel=req.card_channel, message_ts=req.card_ts)["permalink"]
                )
    text, blocks = ui.pending_list(requests, links, utcnow())
    from bot.usecases.recovery import recovery_for

    unresolved = recovery_for(services).unresolved()
    if unresolved:  # operations cut off by a crash: no request to approve, but a human must check them
        lines = "\n".join(f":warning: {_recovered_words(item)}" for item in unresolved)
        blocks = [b for b in blocks if requests] + [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Outcome unknown — check*\n{lines}"[:3000]}}
        ]
        text = f"{text}; {len(unresolved)} operation(s) with unknown outcome"
    reply.ephemeral(text, blocks)


def announce_recovered(services: Services, client: WebClient, items: list[Any]) -> None:
    """One line per operation the recovery sweep flagged; the request's card shows it too."""
    for item in items:
        notifier_for(services, client).line(f":warning: {_recovered_words(item)}", fallback_channel=item.channel_id)
        if item.request_id is not None:
            with contextlib.suppress(Exception):
                refresh_card(client, _approvals(services).get(item.request_id))


def _recovered_words(item: Any) -> str:
    who = "the bot" if item.actor_id == "system" else ui.mention(item.actor_id)
    return str(item.describe(who, ui.code(item.name)))


def register(app: App, services: Services) -> None:
    def decide(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, how: str) -> None:
        actor = actor_from_payload(body)
        reply = Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
        value = str(first_action(body).get("value") or "")

        def job() -> None:
            approvals = _approvals(services)
            result = approvals.approve(actor, value) if how == "approve" else approvals.cancel(actor, value)
            if result.outcome == "vote_recorded":
                reply.ephemeral(":ballot_box_with_check: " + result.message)
            elif result.outcome == "claim_lost":
                reply.ephemeral(":warning: " + result.message)
            publish_outcome(services, client, result)

        run_for_user(services, reply, job, ack)

    @app.action(ui.APPROVE)
    def approve(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, "approve")

    @app.action(ui.CANCEL)
    def cancel(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, "cancel")

    @app.action(ui.REJECT)
    def reject(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        value = str(first_action(body).get("value") or "")
        if not value.isdigit() or len(value) > 15:
            return
        actor = actor_from_payload(body)
        try:  # refuse before the form, not after someone has typed a reason
            services.guard.require(actor, Permission.APPROVE, request_id=int(value))
        except UserFacingError as error:
            Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond).ephemeral(
                ":warning: " + error.message
            )
            return
        message = body.get("message") or {}
        container = body.get("container") or {}
        try:
            client.views_open(
                trigger_id=body.get("trigger_id", ""),
                view=ui.reject_modal(int(value), container.get("channel_id"), message.get("ts")),
            )
        except SlackApiError as error:
            log.warning("views.open for reject failed: %s", error.response.get("error"))

    @app.view(ui.REJECT_VIEW)
    def reject_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        actor = actor_from_payload(body)
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            request_id = int(meta["request_id"])
        except (ValueError, KeyError, TypeError):
            ack()
            return
        channel = meta.get("channel") if isinstance(meta.get("channel"), str) else None
        actor = Actor(actor.user_id, actor.name, actor.team_id, channel)
        try:
            reason = view["state"]["values"]["reason"]["value"].get("value") or ""
        except (KeyError, TypeError, AttributeError):
            reason = ""
        reply = Reply(client=client, user_id=actor.user_id, channel_id=channel)

        def job() -> None:
            result = _approvals(services).reject(actor, request_id, str(reason))
            publish_outcome(services, client, result)

        run_for_user(services, reply, job, ack)

"""The approval card and its buttons: Approve, Reject (with an optional reason), Cancel."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn, channel_link, fill, marker, plain, sentence
from bot.runtime import Services
from bot.slack import blocks as ui
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.notify import notifier_for
from bot.slack.replies import Reply, outgoing
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
        where = Mrkdwn(" in {}").format(channel_link(channel)) if channel != actor.channel_id else Mrkdwn("")
        reply.ephemeral(
            Mrkdwn(
                "Your {} request #{} is waiting for approval{}. "
                "Someone else has to approve it; you can cancel it from the card."
            ).format(plain(kind, 20), request.id, where)
        )
    else:
        # The request is safely stored; it shows in `/snapshot pending` even without its card.
        reply.ephemeral(
            Mrkdwn(
                "Your {} request #{} is recorded, but I couldn't post its approval card. "
                "Approvers can find it with `/snapshot pending`."
            ).format(plain(kind, 20), request.id)
        )
    notifier_for(services, client).line(
        Mrkdwn(":inbox_tray: {} requested a {} of {} (#{}) on {} — request #{}.").format(
            ui.mention(actor.user_id),
            plain(kind, 20),
            ui.snapshot_name(request.snapshot_name),
            request.snapshot_id,
            ui.server_name(request.server_name, request.server_id),
            request.id,
        ),
        fallback_channel=None if channel == actor.channel_id else actor.channel_id,
    )


def publish_outcome(services: Services, client: WebClient, result: DecisionResult) -> None:
    """Card updated in place; requester told in a thread reply; one line to the notification channel."""
    req = result.request
    refresh_card(client, req)
    if result.outcome == "vote_recorded":
        return
    by = (
        Mrkdwn(" by {}").format(ui.mention(req.decided_by))
        if req.decided_by and req.decided_by != "system"
        else Mrkdwn("")
    )
    verbs = {
        "executed": Mrkdwn("was approved{} and carried out")
        if req.kind == "delete"
        else Mrkdwn("was approved{} — the restore has started"),
        "failed": Mrkdwn("was approved{} but *failed*"),
        "needs_check": Mrkdwn("was approved{} but its outcome is *unknown* — check before retrying"),
        "rejected": Mrkdwn("was rejected{}"),
        "cancelled": Mrkdwn("was cancelled{}"),
        "expired": Mrkdwn("expired"),
    }
    verb = verbs[result.outcome].format(by) if result.outcome in verbs else ui.code(result.outcome, 40)
    what = Mrkdwn("{} → {}").format(ui.snapshot_name(req.snapshot_name), ui.server_name(req.server_name, req.server_id))
    line = Mrkdwn("{} request #{} ({}) {}.").format(plain(req.kind.title(), 20), req.id, what, verb)
    if req.card_channel and req.card_ts:
        detail = (
            Mrkdwn("\n") + plain(result.message, 1500)  # VPS.org's words, or the bot's own message
            if result.outcome in ("executed", "failed", "needs_check")
            else Mrkdwn("")
        )
        text, _ = outgoing(Mrkdwn("{} {}{}").format(ui.mention(req.requester_id), line, detail), None)
        try:
            client.chat_postMessage(channel=req.card_channel, thread_ts=req.card_ts, text=text)
        except SlackApiError as error:
            log.warning("thread reply failed: %s", error.response.get("error"))
    # Without a notification channel, the channel where it was asked hears about it (the card's thread already has it).
    fallback = req.channel_id if req.channel_id != req.card_channel else None
    notifier_for(services, client).line(line, fallback_channel=fallback)
    tracker = services.extras.get("tracker")
    if tracker is not None and result.outcome == "executed" and req.kind == "restore":
        tracker.track_restore(req)


def refresh_card(client: WebClient, req: RequestView) -> None:
    if not (req.card_channel and req.card_ts):
        return
    text, blocks = outgoing(*ui.approval_card(req, utcnow()))
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
        lines = Mrkdwn("\n").join(Mrkdwn(":warning: ") + _recovered_words(item) for item in unresolved)
        blocks = [b for b in blocks if requests] + ui.notice(Mrkdwn("*Outcome unknown — check*\n") + lines)
        text = text + Mrkdwn("; {} operation(s) with unknown outcome").format(len(unresolved))
    reply.ephemeral(text, blocks)


def announce_recovered(services: Services, client: WebClient, items: list[Any]) -> None:
    """One line per operation the recovery sweep flagged; the request's card shows it too."""
    for item in items:
        notifier_for(services, client).line(
            Mrkdwn(":warning: ") + _recovered_words(item), fallback_channel=item.channel_id
        )
        if item.request_id is not None:
            with contextlib.suppress(Exception):
                refresh_card(client, _approvals(services).get(item.request_id))


def _recovered_words(item: Any) -> Mrkdwn:
    who = Mrkdwn("the bot") if item.actor_id == "system" else ui.mention(item.actor_id)
    # `describe` writes its own sentence around the two values: hand it markers, put the mrkdwn in afterwards.
    words = str(item.describe(marker("who"), marker("name")))
    return fill(words, who=who, name=ui.snapshot_name(item.name))


def register(app: App, services: Services) -> None:
    def decide(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, how: str) -> None:
        actor = actor_from_payload(body)
        reply = Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
        value = str(first_action(body).get("value") or "")

        def job() -> None:
            approvals = _approvals(services)
            result = approvals.approve(actor, value) if how == "approve" else approvals.cancel(actor, value)
            if result.outcome == "vote_recorded":
                reply.ephemeral(Mrkdwn(":ballot_box_with_check: ") + sentence(result.message))
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
                Mrkdwn(":warning: ") + error.message
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

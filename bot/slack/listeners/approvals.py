"""The approval card and its buttons: Approve, Reject (with an optional reason), Cancel — the same buttons, and
listeners, wherever a pending request is shown (the card, `/snapshot pending`, App Home)."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn, channel_link, code, fill, marker, plain, sentence
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
    """Store the request, then post its card; a request whose card can't be posted is cancelled at once.

    A request and its card are one unit: the card goes to SNAPSHOT_APPROVAL_CHANNEL (else the channel it was asked
    in), then to the other of the two; if neither takes it (or it can't even be built), the request is cancelled,
    audited with the reason, and the requester is told how to fix it.
    """
    approvals = _approvals(services)
    request = approvals.request(actor, snapshot_id, kind)
    try:
        text, blocks = ui.approval_card(request, utcnow())
    except Exception:
        log.exception("could not build the approval card of request #%s", request.id)
        _withdraw(services, client, reply, request, "its approval card could not be built", [])
        return
    failures: list[tuple[str, str]] = []
    posted: tuple[str, str] | None = None
    for channel in card_channels(services.settings.approval_channel, actor.channel_id):
        posted, error = _post_card(client, channel, text, blocks)
        if posted is not None:
            break
        failures.append((channel, error))
    if posted is None:
        reason = "its approval card could not be posted: " + (
            ", ".join(f"{channel} {error}" for channel, error in failures) or "no channel to post it in"
        )
        _withdraw(services, client, reply, request, reason, failures)
        return
    channel, ts = posted
    approvals.attach_card(request.id, channel, ts)
    # Decided from `/snapshot pending` while the card was on its way: the card shows that, not stale buttons.
    current = approvals.get(request.id)
    if current.state != "pending":
        refresh_card(client, current)
    where = Mrkdwn(" in {}").format(channel_link(channel)) if channel != actor.channel_id else Mrkdwn("")
    reply.ephemeral(
        Mrkdwn(
            "Your {} request #{} is waiting for approval{}. "
            "Someone else has to approve it; you can cancel it from the card."
        ).format(plain(kind, 20), request.id, where)
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


def card_channels(approval_channel: str | None, asked_in: str | None) -> list[str]:
    """Where a card may go, in order: the approval channel (when set), then the channel the request was asked in."""
    places = [c for c in (approval_channel, asked_in) if c]
    return list(dict.fromkeys(places))


def _post_card(client: WebClient, channel: str, text: str, blocks: list[dict[str, Any]]) -> tuple[Any, str]:
    """((channel, ts), "") when posted, else (None, Slack's error code or what went wrong)."""
    try:
        response = client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    except SlackApiError as error:
        code = str(error.response.get("error") or f"HTTP {getattr(error.response, 'status_code', '?')}")
        log.warning("could not post an approval card to %s: %s", channel, code)
        return None, code
    except Exception as error:  # Slack unreachable
        log.warning("could not post an approval card to %s: %s", channel, type(error).__name__)
        return None, "slack_unreachable"
    data = response.data if isinstance(response.data, dict) else {}
    if not data.get("ts"):
        return None, "no_ts_in_answer"
    return (str(data.get("channel") or channel), str(data["ts"])), ""


_WHY = {
    "not_in_channel": Mrkdwn("I'm not a member of {channel}"),
    "channel_not_found": Mrkdwn("{channel} doesn't exist or I can't see it"),
    "is_archived": Mrkdwn("{channel} is archived"),
    "restricted_action": Mrkdwn("posting in {channel} is restricted"),
    "slack_unreachable": Mrkdwn("Slack could not be reached"),
}


def _withdraw(
    services: Services,
    client: WebClient,
    reply: Reply,
    request: RequestView,
    reason: str,
    failures: list[tuple[str, str]],
) -> None:
    """Cancel a request that has no card (audited with `reason`) and tell the requester how to fix it."""
    withdrawn = _approvals(services).withdraw(request.id, reason)
    if withdrawn is None:  # decided meanwhile (e.g. from `/snapshot pending`): that decision stands
        current = _approvals(services).get(request.id)
        reply.ephemeral(
            Mrkdwn(":warning: I couldn't post the approval card of your {} request #{}; it is {} anyway.").format(
                plain(request.kind, 20), request.id, plain(current.state.replace("_", " "), 40)
            )
        )
        return
    why = Mrkdwn("; ").join(
        _WHY.get(error, Mrkdwn("Slack answered {error} for {channel}")).format(
            channel=channel_link(channel), error=code(error, 60)
        )
        for channel, error in failures
    )
    fixes: list[Mrkdwn] = []
    if any(error == "not_in_channel" for _, error in failures):
        fixes.append(Mrkdwn("invite me to the channel with {}").format(code(f"/invite @{_bot_name(client)}", 120)))
    if not services.settings.approval_channel:
        fixes.append(Mrkdwn("ask an admin to set `SNAPSHOT_APPROVAL_CHANNEL` to a channel I'm in"))
    else:
        fixes.append(Mrkdwn("ask an admin to check `SNAPSHOT_APPROVAL_CHANNEL` (I must be a member of it)"))
    reply.ephemeral(
        Mrkdwn(
            ":x: Your {} request #{} was *cancelled*: nobody could have approved it, because {}. "
            "Nothing was sent to VPS.org.\nTo fix it, {}, then ask again."
        ).format(plain(request.kind, 20), request.id, why or plain(reason, 500), Mrkdwn(" or ").join(fixes))
    )


def _bot_name(client: WebClient) -> str:
    try:
        return str(client.auth_test().get("user") or "snapshot-bot")
    except Exception:  # only for wording: never let it hide the answer
        return "snapshot-bot"


def publish_outcome(services: Services, client: WebClient, result: DecisionResult) -> None:
    """Card updated in place; requester told in a thread reply; one line to the notification channel."""
    req = result.request
    refresh_card(client, req)
    if result.outcome in ("vote_recorded", "claim_lost"):  # claim_lost: whoever took over has told everyone
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
        "needs_check": Mrkdwn("was approved{} but its outcome is *unknown* — check the server before retrying"),
        "stale": Mrkdwn("was approved{} but *not sent*: the snapshot changed since it was requested"),
        "not_sent": Mrkdwn("was approved but *nothing was sent* to VPS.org — it can be approved again or cancelled"),
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
            if result.outcome in _DETAILED
            else Mrkdwn("")
        )
        text, _ = outgoing(Mrkdwn("{} {}{}").format(ui.mention(req.requester_id), line, detail), None)
        try:
            client.chat_postMessage(channel=req.card_channel, thread_ts=req.card_ts, text=text)
        except SlackApiError as error:
            log.warning("thread reply failed: %s", error.response.get("error"))
    # Without a notification channel, the channel where it was asked hears about it (the card's thread already has it).
    fallback = req.channel_id if req.channel_id != req.card_channel else None
    loud = (
        Mrkdwn(" ") + plain(result.message, 1500)
        if result.outcome in ("needs_check", "stale", "not_sent")
        else Mrkdwn("")
    )
    notifier_for(services, client).line(line + loud, fallback_channel=fallback)
    tracker = services.extras.get("tracker")
    if tracker is not None and result.outcome == "executed" and req.kind == "restore":
        tracker.track_restore(req)


_DETAILED = ("executed", "failed", "needs_check", "stale", "not_sent")


def refresh_card(client: WebClient, req: RequestView) -> None:
    if not (req.card_channel and req.card_ts):
        return
    try:
        text, blocks = outgoing(*ui.approval_card(req, utcnow()))
    except Exception:  # the outcome is stored and audited; a card that can't be drawn must not hide it
        log.exception("could not build the card of request #%s", req.id)
        return
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
    can_approve = services.access.check(actor.user_id, Permission.APPROVE).allowed
    text, blocks = ui.pending_list(requests, links, utcnow(), viewer=actor.user_id, viewer_can_approve=can_approve)
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


def from_app_home(body: dict[str, Any]) -> bool:
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


def refresh_home(services: Services, client: WebClient, user_id: str) -> None:
    home = services.extras.get("home")
    if home is not None:
        with contextlib.suppress(Exception):
            home.publish(client, user_id)


class DirectReply(Reply):
    """Answers to a click in App Home, which has no channel and no response_url: a direct message from the bot."""

    def ephemeral(
        self, text: Mrkdwn | str, blocks: list[dict[str, Any]] | None = None, *, replace: bool = False
    ) -> None:
        text, blocks = outgoing(text, blocks)
        try:
            self.client.chat_postMessage(channel=self.user_id, text=text, blocks=blocks)
        except Exception as error:  # the outcome is on the card and in the audit trail either way
            log.warning("could not message user %s: %s", self.user_id, type(error).__name__)


def _recovered_words(item: Any) -> Mrkdwn:
    who = Mrkdwn("the bot") if item.actor_id == "system" else ui.mention(item.actor_id)
    # `describe` writes its own sentence around the two values: hand it markers, put the mrkdwn in afterwards.
    words = str(item.describe(marker("who"), marker("name")))
    return fill(words, who=who, name=ui.snapshot_name(item.name))


def register(app: App, services: Services) -> None:
    def decide(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, how: str) -> None:
        # The same click from the card, from `/snapshot pending` or from App Home: one path, the same rules.
        actor = actor_from_payload(body)
        from_home = from_app_home(body)
        reply = (
            DirectReply(client=client, user_id=actor.user_id, channel_id=None)
            if from_home
            else Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
        )
        value = str(first_action(body).get("value") or "")

        def job() -> None:
            approvals = _approvals(services)
            try:
                result = approvals.approve(actor, value) if how == "approve" else approvals.cancel(actor, value)
                if result.outcome == "vote_recorded":
                    reply.ephemeral(Mrkdwn(":ballot_box_with_check: ") + sentence(result.message))
                elif result.outcome == "claim_lost":
                    reply.ephemeral(Mrkdwn(":warning: ") + sentence(result.message))
                publish_outcome(services, client, result)
            finally:
                if from_home:  # the tab shows the request's new state (and no stale buttons)
                    refresh_home(services, client, actor.user_id)

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
            refused = (
                DirectReply(client=client, user_id=actor.user_id, channel_id=None)
                if from_app_home(body)
                else Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
            )
            refused.ephemeral(Mrkdwn(":warning: ") + error.message)
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
        # Opened from App Home (no channel): answers come as a direct message, and the tab is refreshed after.
        reply = (
            Reply(client=client, user_id=actor.user_id, channel_id=channel)
            if channel
            else DirectReply(client=client, user_id=actor.user_id, channel_id=None)
        )

        def job() -> None:
            try:
                result = _approvals(services).reject(actor, request_id, str(reason))
                publish_outcome(services, client, result)
            finally:
                if not channel:
                    refresh_home(services, client, actor.user_id)

        run_for_user(services, reply, job, ack)

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

from bot.mrkdwn import Mrkdwn, channel_link, code, plain, quote
from bot.mrkdwn import link as link_to
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.announcer import recovered_words
from bot.slack.listeners.common import actor_from_payload, first_action, run_for_user
from bot.slack.replies import Reply, outgoing
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.access import Permission
from bot.usecases.approval_safety import SafetyChoice
from bot.usecases.approvals import DecisionOutcome, RequestView
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import UserFacingError
from bot.usecases.restore_checks import RequestConflict

log = logging.getLogger(__name__)


def start_request(
    core: Core, slack: SlackSide, reply: Reply, actor: Actor, snapshot_id: str, *, kind: str, reason: str = ""
) -> None:
    """Store the request, then post its card; a request whose card can't be posted is cancelled at once.

    A request and its card are one unit: the card goes to SNAPSHOT_APPROVAL_CHANNEL (else the channel it was asked
    in), then to the other of the two; if neither takes it (or it can't even be built), the request is cancelled,
    audited with the reason, and the requester is told how to fix it.
    """
    approvals = core.approvals
    try:
        request = approvals.request(actor, snapshot_id, kind, reason)
    except RequestConflict as error:  # point to the request in the way, with its card: act on that one instead
        link = card_link(slack.client, error.request.card_channel, error.request.card_ts)
        where = Mrkdwn(" {}").format(link_to(link, Mrkdwn("Open its card"))) if link else Mrkdwn("")
        reply.ephemeral(Mrkdwn(":no_entry: ") + render(error.message) + where)
        return
    post_request_card(core, slack, reply, actor, request)


def post_request_card(core: Core, slack: SlackSide, reply: Reply, actor: Actor, request: RequestView) -> None:
    """Post the card of a request just recorded (any kind); a request whose card can't be posted is cancelled."""
    approvals = core.approvals
    kind = request.kind
    try:
        text, blocks = ui.approval_card(request, utcnow())
    except Exception:
        log.exception("could not build the approval card of request #%s", request.id)
        _withdraw(core, slack.client, reply, request, "its approval card could not be built", [])
        return
    failures: list[tuple[str, str]] = []
    posted: tuple[str, str] | None = None
    for channel in card_channels(core.settings.approval_channel, actor.channel_id):
        posted, error = _post_card(slack.client, channel, text, blocks)
        if posted is not None:
            break
        failures.append((channel, error))
    if posted is None:
        reason = "its approval card could not be posted: " + (
            ", ".join(f"{channel} {error}" for channel, error in failures) or "no channel to post it in"
        )
        _withdraw(core, slack.client, reply, request, reason, failures)
        return
    channel, ts = posted
    approvals.attach_card(request.id, channel, ts)
    # Decided from `/snapshot pending` while the card was on its way: the card shows that, not stale buttons.
    current = approvals.get(request.id)
    if current.state != "pending":
        slack.announcer.refresh_card(current)
    where = Mrkdwn(" in {}").format(channel_link(channel)) if channel != actor.channel_id else Mrkdwn("")
    note = Mrkdwn("\n:warning: ") + plain(request.result_message, 500) if request.result_message else Mrkdwn("")
    reply.ephemeral(
        Mrkdwn(
            "Your {} request #{} is waiting for approval{}. "
            "Someone else has to approve it; you can cancel it from the card."
        ).format(plain(kind, 20), request.id, where)
        + note
    )
    slack.notifier.line(
        Mrkdwn(":inbox_tray: {} requested {} on {} — request #{}.").format(
            ui.mention(actor.user_id),
            ui.request_subject(request),
            ui.server_name(request.server_name, request.server_id),
            request.id,
        )
        + (Mrkdwn("\n*Reason:* ") + quote(request.request_reason, 200) if request.request_reason else Mrkdwn("")),
        fallback_channel=None if channel == actor.channel_id else actor.channel_id,
    )


def card_link(client: WebClient, channel: str | None, ts: str | None) -> str | None:
    """The permalink of a request's card, or None (no card yet, or Slack would not say)."""
    if not (channel and ts):
        return None
    try:
        return str(client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
    except (SlackApiError, KeyError):
        return None
    except Exception:  # Slack unreachable: the answer goes out without the link
        return None


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
    core: Core,
    client: WebClient,
    reply: Reply,
    request: RequestView,
    reason: str,
    failures: list[tuple[str, str]],
) -> None:
    """Cancel a request that has no card (audited with `reason`) and tell the requester how to fix it."""
    withdrawn = core.approvals.withdraw(request.id, reason)
    if withdrawn is None:  # decided meanwhile (e.g. from `/snapshot pending`): that decision stands
        current = core.approvals.get(request.id)
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
    if not core.settings.approval_channel:
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


def show_pending(core: Core, slack: SlackSide, reply: Reply, actor: Actor) -> None:
    overview = core.pending.overview(actor)
    requests = overview.requests
    links: dict[int, str] = {}
    for req in requests[: ui.MAX_PENDING_SHOWN]:
        if req.card_channel and req.card_ts:
            with contextlib.suppress(SlackApiError, KeyError):
                links[req.id] = str(
                    slack.client.chat_getPermalink(channel=req.card_channel, message_ts=req.card_ts)["permalink"]
                )
    text, blocks = ui.pending_list(
        requests,
        links,
        utcnow(),
        viewer=actor.user_id,
        viewer_can_approve=overview.viewer_can_approve,
        total=overview.total,
        unknown=[recovered_words(item) for item in overview.unresolved],
        unknown_more=overview.unresolved_more,
        approvals_channel=core.settings.approval_channel,
    )
    reply.ephemeral(text, blocks)


def free_oldest_slot(core: Core, slack: SlackSide, reply: Reply, actor: Actor, request_id: str) -> None:
    """A full server's restore card: delete its oldest snapshot through the normal delete path (its own approval
    when deletes need one), so the safety snapshot has a slot; the card offers it once the delete is done."""
    from bot.slack.listeners import flows

    target = core.approvals.oldest_to_free(actor, request_id)
    # A delete that succeeds redraws the restore cards of its server (their offer re-checked), this one among them.
    flows.confirm_delete(core, slack, reply, actor, {"snapshot_id": str(target.id)})


def from_app_home(body: dict[str, Any]) -> bool:
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


def refresh_home(slack: SlackSide, client: WebClient, user_id: str, team_id: str | None = None) -> None:
    with contextlib.suppress(Exception):
        slack.home.publish(client, user_id, team_id)


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


def register(app: App, core: Core, slack: SlackSide) -> None:
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
            approvals = core.approvals
            try:
                if how == "cancel":
                    result = approvals.cancel(actor, value)
                else:
                    safety = SafetyChoice.NONE if how == "approve_no_safety" else SafetyChoice.DEFAULT
                    result = approvals.approve(actor, value, safety, progress=slack.announcer.refresh_card)
                if result.outcome == DecisionOutcome.VOTE_RECORDED:
                    reply.ephemeral(Mrkdwn(":ballot_box_with_check: ") + render(result.message))
                elif result.outcome == DecisionOutcome.CLAIM_LOST:
                    reply.ephemeral(Mrkdwn(":warning: ") + render(result.message))
                slack.announcer.decided(result)
            finally:
                if from_home:  # the tab shows the request's new state (and no stale buttons)
                    refresh_home(slack, client, actor.user_id, actor.team_id)

        run_for_user(core, reply, job, ack)

    @app.action(ui.APPROVE)
    def approve(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, "approve")

    @app.action(ui.APPROVE_NO_SAFETY)
    def approve_without_safety(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, "approve_no_safety")

    @app.action(ui.FREE_OLDEST)
    def free_oldest(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        actor = actor_from_payload(body)
        reply = (
            DirectReply(client=client, user_id=actor.user_id, channel_id=None)
            if from_app_home(body)
            else Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
        )
        value = str(first_action(body).get("value") or "")
        run_for_user(core, reply, lambda: free_oldest_slot(core, slack, reply, actor, value), ack)

    @app.action(ui.CANCEL)
    def cancel(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        decide(ack, body, respond, client, "cancel")

    @app.action(ui.REJECT)
    def reject(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        value = str(first_action(body).get("value") or "")
        if not (value.isascii() and value.isdigit()) or len(value) > 15:
            return
        actor = actor_from_payload(body)
        try:  # refuse before the form, not after someone has typed a reason
            core.guard.require(actor, Permission.APPROVE, request_id=int(value))
        except UserFacingError as error:
            refused = (
                DirectReply(client=client, user_id=actor.user_id, channel_id=None)
                if from_app_home(body)
                else Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)
            )
            refused.ephemeral(Mrkdwn(":warning: ") + render(error.message))
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
                result = core.approvals.reject(actor, request_id, str(reason))
                slack.announcer.decided(result)
            finally:
                if not channel:
                    refresh_home(slack, client, actor.user_id, actor.team_id)

        run_for_user(core, reply, job, ack)

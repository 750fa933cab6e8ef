"""A request for approval and its card, as one unit: store the request, post its card, or cancel it.

Every kind of request (a restore, a delete that needs approval, a schedule whose deletes need one) is started
here, from its own feature's listener; the card's buttons are bot/slack/listeners/approvals.py. A request whose
card cannot be posted (or even built) is cancelled at once, audited with the reason, and its requester is told
how to fix it: nobody could ever have approved it.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn, channel_link, code, plain, quote
from bot.mrkdwn import link as link_to
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.approvals import RequestKind, RequestState, RequestView
from bot.usecases.context import Actor, utcnow
from bot.usecases.restore_checks import RequestConflict

log = logging.getLogger(__name__)


def start_request(
    core: Core, slack: SlackSide, reply: Reply, actor: Actor, snapshot_id: int, *, kind: RequestKind, reason: str = ""
) -> None:
    """Store the request, then post its card; a request whose card can't be posted is cancelled at once.

    A request and its card are one unit: the card goes to SNAPSHOT_APPROVAL_CHANNEL (else the channel it was asked
    in), then to the other of the two; if neither takes it (or it can't even be built), the request is cancelled,
    audited with the reason, and the requester is told how to fix it.
    """
    approvals = core.approvals
    try:
        request = approvals.request(actor, snapshot_id, kind, reason)
    except RequestConflict as error:
        point_to_conflict(slack, reply, error)
        return
    post_request_card(core, slack, reply, actor, request)


def point_to_conflict(slack: SlackSide, reply: Reply, error: RequestConflict) -> None:
    """Refused: another request is in the way. Say so, with a link to its card: act on that one instead."""
    link = card_link(slack.client, error.request.card_channel, error.request.card_ts)
    where = Mrkdwn(" {}").format(link_to(link, Mrkdwn("Open its card"))) if link else Mrkdwn("")
    reply.ephemeral(Mrkdwn(":no_entry: ") + render(error.message) + where)


def post_request_card(core: Core, slack: SlackSide, reply: Reply, actor: Actor, request: RequestView) -> None:
    """Post the card of a request just recorded (any kind); a request whose card can't be posted is cancelled."""
    approvals = core.approvals
    kind = request.kind
    try:
        text, blocks = ui.approval_card(request, utcnow(), step_up_kinds=core.step_up.kinds)
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
    if current.state != RequestState.PENDING:
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

"""Telling the requester by direct message how their request ended (issue 28 §1), and naming how it stopped waiting.

Rules kept here: the requester hears each end once, by DM, besides the card's thread reply that mentions them:
approved (and carried out or started), rejected (with the reason), failed, outcome unknown, closed as stale,
expired, or cancelled by someone else (the bot, an admin, a deleted snapshot) — never their own cancel, never a
vote that only counted, never "not sent" (the request is open again and the card says so). A card that lives in a
DM channel already is that DM, so nothing is sent twice. Posting is best effort: the outcome is stored and
audited before anything here runs, so a DM that fails is logged, never raised.
(How a restore *finished* is told by tracking: bot/slack/progress.py.)
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn
from bot.slack.replies import outgoing
from bot.slack_ids import USER_ID
from bot.usecases.approvals import DecisionOutcome, RequestView

log = logging.getLogger(__name__)

_TOLD = frozenset(
    {
        DecisionOutcome.EXECUTED,
        DecisionOutcome.FAILED,
        DecisionOutcome.NEEDS_CHECK,
        DecisionOutcome.STALE,
        DecisionOutcome.REJECTED,
        DecisionOutcome.EXPIRED,
        DecisionOutcome.CANCELLED,
        DecisionOutcome.SNAPSHOT_DELETED,
        DecisionOutcome.SNAPSHOT_GONE,
        DecisionOutcome.SCHEDULE_REMOVED,
    }
)
_ENDED: dict[DecisionOutcome, str] = {
    DecisionOutcome.EXECUTED: "approved",
    DecisionOutcome.FAILED: "approved",
    DecisionOutcome.STALE: "approved",
    DecisionOutcome.REJECTED: "rejected",
    DecisionOutcome.CANCELLED: "cancelled",
    DecisionOutcome.SNAPSHOT_DELETED: "cancelled",
    DecisionOutcome.SNAPSHOT_GONE: "cancelled",
    DecisionOutcome.SCHEDULE_REMOVED: "cancelled",
    DecisionOutcome.EXPIRED: "expired",
}


def waiting_ended(outcome: DecisionOutcome) -> str | None:
    """How a request stopped waiting for a decision ("approved", "rejected", "cancelled", "expired"), or None when
    this outcome is not that moment (a vote that only counted, a retry after "not sent", a flagged claim)."""
    return _ENDED.get(outcome)


def tell_requester(client: WebClient, req: RequestView, outcome: DecisionOutcome, words: Mrkdwn) -> bool:
    """DM the requester `words` when this outcome is one they are told of; True when a DM was sent."""
    if outcome not in _TOLD or not USER_ID.match(req.requester_id or ""):
        return False
    if req.decided_by == req.requester_id and outcome in (DecisionOutcome.CANCELLED, DecisionOutcome.SCHEDULE_REMOVED):
        return False  # they did it themselves
    if (req.card_channel or "").startswith("D"):  # the card's thread already is their DM
        return False
    text, _ = outgoing(Mrkdwn("Your request: ") + words, None)
    try:
        client.chat_postMessage(channel=req.requester_id, text=text)
    except SlackApiError as error:
        log.warning("could not tell the requester of request #%s: %s", req.id, error.response.get("error"))
        return False
    return True

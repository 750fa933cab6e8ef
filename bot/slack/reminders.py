"""Sending a claimed reminder or escalation to Slack (the ticker's `Announcer.nudge`, bot/slack/announcer.py).

Rules kept here: the nudge is already claimed and its intent audited before anything here runs, so nothing is
retried by hand and nothing raises — what happened comes back as a `NudgeDelivery` for the outcome row (Slack's
error code, never a token or a message text). The thread reply is the nudge; an escalation's direct messages are
sent to each person named, with the card's permalink (the card's channel is told if the link cannot be had).
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks.reminders import escalation_dm, escalation_text, reminder_text
from bot.slack.replies import outgoing
from bot.usecases.approval_reminders import Nudge, NudgeDelivery, NudgeKind

log = logging.getLogger(__name__)


def _error(error: SlackApiError) -> str:
    return str(error.response.get("error") or "slack_error")[:60]


class SlackNudger:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def send(self, nudge: Nudge) -> NudgeDelivery:
        req = nudge.request
        if not (req.card_channel and req.card_ts):  # a request always has a card; one without has nowhere to go
            return NudgeDelivery(False, "no_card")
        words = reminder_text(nudge) if nudge.kind == NudgeKind.REMIND else escalation_text(nudge)
        text, _ = outgoing(words, None)
        try:
            self.client.chat_postMessage(channel=req.card_channel, thread_ts=req.card_ts, text=text)
        except SlackApiError as error:
            log.warning("the %s of request #%s was not posted: %s", nudge.kind.value, req.id, _error(error))
            return NudgeDelivery(False, _error(error))
        if nudge.kind != NudgeKind.ESCALATE:
            return NudgeDelivery(True)
        return self._tell_directly(nudge, req.card_channel, req.card_ts)

    def _tell_directly(self, nudge: Nudge, channel: str, ts: str) -> NudgeDelivery:
        permalink: str | None = None
        try:
            permalink = str(self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except (SlackApiError, KeyError, TypeError):
            log.warning("no permalink for the card of request #%s; the DM names its channel", nudge.request.id)
        text, _ = outgoing(escalation_dm(nudge, permalink), None)
        told: list[str] = []
        failed: list[str] = []
        for user in nudge.named:
            try:
                self.client.chat_postMessage(channel=user, text=text)
                told.append(user)
            except SlackApiError as error:
                log.warning("escalation DM of request #%s to %s failed: %s", nudge.request.id, user, _error(error))
                failed.append(_error(error))
        return NudgeDelivery(not failed, failed[0] if failed else "", tuple(told))

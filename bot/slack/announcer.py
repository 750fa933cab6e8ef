"""Telling Slack what happened to a request or an operation: its card, its thread, the notification channel.

`SlackAnnouncer` implements `bot.background.Announcer`, so the ticker reports what it found without knowing Slack;
the approval listeners use the same methods after a click, so a decision reads the same whoever made it.
Rules it keeps: the outcome is already stored and audited before anything here runs, so a card or message that
can't be drawn or posted is logged, never raised; every text is Mrkdwn built from escaped values.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn, fill, marker, plain
from bot.slack import blocks as ui
from bot.slack.blocks import schedules as schedule_ui
from bot.slack.notify import Notifier
from bot.slack.progress import ProgressTracker
from bot.slack.replies import outgoing
from bot.usecases.context import utcnow

if TYPE_CHECKING:
    from bot.usecases.approvals import ApprovalService, DecisionResult, RequestView
    from bot.usecases.recovery import Unresolved
    from bot.usecases.schedule_runner import ScheduleEvent
    from bot.usecases.tracking import TrackingEvent

log = logging.getLogger(__name__)

_DETAILED = ("executed", "failed", "needs_check", "stale", "not_sent")


class SlackAnnouncer:
    def __init__(
        self, *, client: WebClient, notifier: Notifier, cards: ProgressTracker, approvals: ApprovalService
    ) -> None:
        self.client = client
        self.notifier = notifier
        self.cards = cards
        self.approvals = approvals

    def decided(self, result: DecisionResult) -> None:
        """Card updated in place; requester told in a thread reply; one line to the notification channel."""
        req = result.request
        self.refresh_card(req)
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
            "not_sent": Mrkdwn(
                "was approved but *nothing was sent* to VPS.org — it can be approved again or cancelled"
            ),
            "rejected": Mrkdwn("was rejected{}"),
            "cancelled": Mrkdwn("was cancelled{}"),
            "expired": Mrkdwn("expired"),
        }
        verb = verbs[result.outcome].format(by) if result.outcome in verbs else ui.code(result.outcome, 40)
        what = Mrkdwn("{} → {}").format(
            ui.snapshot_name(req.snapshot_name), ui.server_name(req.server_name, req.server_id)
        )
        line = Mrkdwn("{} request #{} ({}) {}.").format(plain(req.kind.title(), 20), req.id, what, verb)
        if req.card_channel and req.card_ts:
            detail = (
                Mrkdwn("\n") + plain(result.message, 1500)  # VPS.org's words, or the bot's own message
                if result.outcome in _DETAILED
                else Mrkdwn("")
            )
            text, _ = outgoing(Mrkdwn("{} {}{}").format(ui.mention(req.requester_id), line, detail), None)
            try:
                self.client.chat_postMessage(channel=req.card_channel, thread_ts=req.card_ts, text=text)
            except SlackApiError as error:
                log.warning("thread reply failed: %s", error.response.get("error"))
        # Without a notification channel, the channel where it was asked hears about it (the thread already has it).
        fallback = req.channel_id if req.channel_id != req.card_channel else None
        loud = (
            Mrkdwn(" ") + plain(result.message, 1500)
            if result.outcome in ("needs_check", "stale", "not_sent")
            else Mrkdwn("")
        )
        self.notifier.line(line + loud, fallback_channel=fallback)
        if result.outcome == "executed" and req.kind == "restore":
            self.cards.track_restore(req)

    def recovered(self, items: Sequence[Unresolved]) -> None:
        """One line per operation the recovery sweep flagged; the request's card shows it too."""
        for item in items:
            self.notifier.line(Mrkdwn(":warning: ") + recovered_words(item), fallback_channel=item.channel_id)
            if item.request_id is not None:
                with contextlib.suppress(Exception):
                    self.refresh_card(self.approvals.get(item.request_id))

    def tracked(self, events: list[TrackingEvent]) -> None:
        """Progress of followed operations: their messages updated, people told when they are over."""
        self.cards.render(events)

    def scheduled(self, events: list[ScheduleEvent]) -> None:
        """What schedules did: a skipped or failed slot, and every retention delete, to the notification channel
        (a started snapshot is told by tracking when it completes)."""
        for event in events:  # without a notification channel, the channel where the schedule was made hears it
            line = schedule_ui.event_line(event)
            if line is not None:
                self.notifier.line(line, fallback_channel=event.schedule.channel_id)

    def refresh_card(self, req: RequestView) -> None:
        if not (req.card_channel and req.card_ts):
            return
        try:
            text, blocks = outgoing(*ui.approval_card(req, utcnow()))
        except Exception:  # the outcome is stored and audited; a card that can't be drawn must not hide it
            log.exception("could not build the card of request #%s", req.id)
            return
        try:
            self.client.chat_update(channel=req.card_channel, ts=req.card_ts, text=text, blocks=blocks)
        except SlackApiError as error:
            # The outcome is already stored and audited; the card is only its picture.
            log.warning("could not update card of request #%s: %s", req.id, error.response.get("error"))


def recovered_words(item: Unresolved) -> Mrkdwn:
    who = Mrkdwn("the bot") if item.actor_id == "system" else ui.mention(item.actor_id)
    # `describe` writes its own sentence around the two values: hand it markers, put the mrkdwn in afterwards.
    words = str(item.describe(marker("who"), marker("name")))
    return fill(words, who=who, name=ui.snapshot_name(item.name))

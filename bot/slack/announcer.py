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
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn, plain, quote
from bot.slack import blocks as ui
from bot.slack.blocks import schedules as schedule_ui
from bot.slack.notify import Notifier
from bot.slack.progress import ProgressTracker
from bot.slack.reminders import SlackNudger
from bot.slack.replies import outgoing
from bot.slack.requester_news import tell_requester, waiting_ended
from bot.slack.wording import render
from bot.usecases.approval_terms import RequestKind, RequestState, SafetyChoice
from bot.usecases.approvals import DecisionOutcome
from bot.usecases.context import utcnow

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.usecases.approval_reminders import Nudge, NudgeDelivery
    from bot.usecases.approvals import ApprovalService, DecisionResult, RequestView
    from bot.usecases.recovery import Unresolved
    from bot.usecases.schedule_runner import ScheduleEvent
    from bot.usecases.tracking import TrackingEvent

log = logging.getLogger(__name__)

_DETAILED = frozenset(
    {
        DecisionOutcome.EXECUTED,
        DecisionOutcome.FAILED,
        DecisionOutcome.NEEDS_CHECK,
        DecisionOutcome.STALE,
        DecisionOutcome.NOT_SENT,
    }
)
_SCHEDULE_VERBS: dict[DecisionOutcome, Mrkdwn] = {
    DecisionOutcome.EXECUTED: Mrkdwn("was approved{} and applied"),
    DecisionOutcome.FAILED: Mrkdwn("was approved{} but *not applied*"),
    DecisionOutcome.STALE: Mrkdwn("was approved{} but *not applied*"),
    DecisionOutcome.NOT_SENT: Mrkdwn("was approved but *nothing was applied* — it can be approved again or cancelled"),
    DecisionOutcome.SCHEDULE_REMOVED: Mrkdwn("was closed: the schedule was removed{}"),
}
_LOUD = frozenset({DecisionOutcome.NEEDS_CHECK, DecisionOutcome.STALE, DecisionOutcome.NOT_SENT})


class SlackAnnouncer:
    def __init__(
        self,
        *,
        client: WebClient,
        notifier: Notifier,
        cards: ProgressTracker,
        approvals: ApprovalService,
        on_decided: Callable[[str, float], None] | None = None,
        step_up_kinds: AbstractSet[RequestKind] = frozenset(),
    ) -> None:
        self.client = client
        self.notifier = notifier
        self.cards = cards
        self.approvals = approvals
        self.nudger = SlackNudger(client)
        # (how the request stopped waiting, seconds it waited): the metrics' approval_wait_seconds
        self.on_decided = on_decided
        self.step_up_kinds = step_up_kinds  # a redrawn card's Approve opens the step-up form for these kinds

    def nudge(self, nudge: Nudge) -> NudgeDelivery:
        """A reminder or escalation the ticker claimed: a reply in the card's thread (and DMs, for an escalation)."""
        return self.nudger.send(nudge)

    def decided(self, result: DecisionResult) -> None:
        """Card updated in place; requester told in a thread reply; one line to the notification channel."""
        req = result.request
        if result.outcome == DecisionOutcome.EXECUTED and req.kind == RequestKind.RESTORE:
            self.cards.track_restore(req)  # first, so the card shows "being restored" from the start
        self.refresh_card(req)
        # CLAIM_LOST: whoever took over has told everyone
        if result.outcome in (DecisionOutcome.VOTE_RECORDED, DecisionOutcome.CLAIM_LOST):
            return
        by = (
            Mrkdwn(" by {}").format(ui.mention(req.decided_by))
            if req.decided_by and req.decided_by != "system"
            else Mrkdwn("")
        )
        verbs: dict[DecisionOutcome, Mrkdwn] = {
            DecisionOutcome.EXECUTED: Mrkdwn("was approved{} and carried out")
            if req.kind == RequestKind.DELETE
            else Mrkdwn("was approved{} — the restore has started"),
            DecisionOutcome.FAILED: Mrkdwn("was approved{} but *failed*"),
            DecisionOutcome.NEEDS_CHECK: Mrkdwn(
                "was approved{} but its outcome is *unknown* — check the server before retrying"
            ),
            DecisionOutcome.STALE: Mrkdwn("was approved{} but *not sent*: the snapshot changed since it was requested"),
            DecisionOutcome.NOT_SENT: Mrkdwn(
                "was approved but the restore was *not sent* (see the safety snapshot) — it can be approved again "
                "or cancelled"
            )
            if req.safety_choice
            == SafetyChoice.SNAPSHOT  # its safety create may have reached VPS.org; the restore did not
            else Mrkdwn("was approved but *nothing was sent* to VPS.org — it can be approved again or cancelled"),
            DecisionOutcome.REJECTED: Mrkdwn("was rejected{}"),
            DecisionOutcome.CANCELLED: Mrkdwn("was cancelled{}"),
            DecisionOutcome.EXPIRED: Mrkdwn("expired"),
            DecisionOutcome.SNAPSHOT_DELETED: Mrkdwn("was closed: the snapshot was deleted{}"),
            DecisionOutcome.SNAPSHOT_GONE: Mrkdwn(
                "was closed: VPS.org reported the snapshot gone when {} tried to delete it"
            ),
        }
        if req.kind == RequestKind.SCHEDULE:  # no snapshot: the schedule it makes or changes, applied (not sent)
            verbs.update(_SCHEDULE_VERBS)
        who = ui.mention(req.decided_by) if req.decided_by and req.decided_by != "system" else Mrkdwn("the bot")
        filler = who if result.outcome == DecisionOutcome.SNAPSHOT_GONE else by  # "when @x tried", not "by @x"
        verb = verbs[result.outcome].format(filler) if result.outcome in verbs else ui.code(result.outcome, 40)
        what = (
            Mrkdwn("schedule #{} on {}").format(req.schedule_id, ui.server_name(req.server_name, req.server_id))
            if req.kind == RequestKind.SCHEDULE
            else Mrkdwn("{} → {}").format(
                ui.snapshot_name(req.snapshot_name), ui.server_name(req.server_name, req.server_id)
            )
        )
        line = Mrkdwn("{} request #{} ({}) {}.").format(plain(req.kind.title(), 20), req.id, what, verb)
        detail = (
            Mrkdwn("\n") + render(result.message).clip(1500)  # the bot's words, VPS.org's among them
            if result.outcome in _DETAILED
            else Mrkdwn("")
        )
        # The reason, as on the card.
        if result.outcome in (DecisionOutcome.REJECTED, DecisionOutcome.CANCELLED) and req.reason:
            detail += Mrkdwn("\nReason: ") + quote(req.reason, 500)
        self._observe_wait(req, result.outcome)
        tell_requester(self.client, req, result.outcome, line + detail)
        if req.card_channel and req.card_ts:
            text, _ = outgoing(Mrkdwn("{} {}{}").format(ui.mention(req.requester_id), line, detail), None)
            try:
                self.client.chat_postMessage(channel=req.card_channel, thread_ts=req.card_ts, text=text)
            except SlackApiError as error:
                log.warning("thread reply failed: %s", error.response.get("error"))
        # Without a notification channel, the channel where it was asked hears about it (the thread already has it).
        fallback = req.channel_id if req.channel_id != req.card_channel else None
        loud = Mrkdwn(" ") + render(result.message).clip(1500) if result.outcome in _LOUD else Mrkdwn("")
        self.notifier.line(line + loud, fallback_channel=fallback)
        for other in result.closed:  # requests this closed (their snapshot was deleted): each card and requester
            self.decided(other)
        for changed in result.redrawn:  # restores whose server got a free slot: their cards offer the safety snapshot
            self.refresh_card(changed)

    def _observe_wait(self, req: RequestView, outcome: DecisionOutcome) -> None:
        decision = waiting_ended(outcome)
        if self.on_decided is None or decision is None or req.decided_at is None:
            return
        with contextlib.suppress(Exception):  # a metric must never stop the card and the messages
            self.on_decided(decision, (req.decided_at - req.created_at).total_seconds())

    def recovered(self, items: Sequence[Unresolved]) -> None:
        """One line per operation the recovery sweep flagged; the request's card shows it too."""
        for item in items:
            self.notifier.line(Mrkdwn(":warning: ") + recovered_words(item), fallback_channel=item.channel_id)
            if item.request_id is not None:
                with contextlib.suppress(Exception):
                    self.refresh_card(self.approvals.get(item.request_id))

    def tracked(self, events: list[TrackingEvent]) -> None:
        """Progress of followed operations: their messages updated, people told when they are over; the cards
        of restores still running show their elapsed time."""
        self.cards.render(events)
        self.cards.refresh_running()

    def scheduled(self, events: list[ScheduleEvent]) -> None:
        """What schedules did: a skipped or failed slot, and every retention delete, to the notification channel
        (a started snapshot is told by tracking when it completes); requests its deletes closed and cards they
        freed a slot for, as after a manual delete."""
        for event in events:  # without a notification channel, the channel where the schedule was made hears it
            line = schedule_ui.event_line(event)
            if line is not None:
                self.notifier.line(line, fallback_channel=event.schedule.channel_id)
            for closed in event.closed:  # as after a manual delete: each card and requester told
                self.decided(closed)
            for changed in event.redrawn:  # a slot is free: "Server full" becomes the safety snapshot offer
                self.refresh_card(changed)

    def refresh_card(self, req: RequestView) -> None:
        if not (req.card_channel and req.card_ts):
            return
        # An executed restore's card tells how it went on (being restored, finished, timed out…).
        restore = (
            self.cards.restore_of(req.id)
            if req.kind == RequestKind.RESTORE and req.state == RequestState.EXECUTED
            else None
        )
        try:
            text, blocks = outgoing(*ui.approval_card(req, utcnow(), restore, step_up_kinds=self.step_up_kinds))
        except Exception:  # the outcome is stored and audited; a card that can't be drawn must not hide it
            log.exception("could not build the card of request #%s", req.id)
            return
        try:
            self.client.chat_update(channel=req.card_channel, ts=req.card_ts, text=text, blocks=blocks)
        except SlackApiError as error:
            # The outcome is already stored and audited; the card is only its picture.
            log.warning("could not update card of request #%s: %s", req.id, error.response.get("error"))


def recovered_words(item: Unresolved) -> Mrkdwn:
    return render(item.describe())

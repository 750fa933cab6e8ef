"""The Slack side of tracking: renders Tracker events into what people see.

For each event: the original create announcement, or the restore's approval card, is updated in place (the card
tells the restore's whole story: being restored for how long, finished, gone, timed out; between events
`refresh_running` keeps its elapsed time current on every tick); when the operation is over, a thread reply
mentions the person who started it, and one line goes to the notification channel (SNAPSHOT_NOTIFY_CHANNEL, else
the channel where the action began). When those two are the same channel the thread reply is broadcast to the
channel instead of posting the line separately, so nobody reads the same news twice.

`SlackSide.cards`; flows.create and the announcer (after a restore is carried out, and every tick) call it.
Tracking is best effort on top of actions already done and audited: a failure here is logged, never raised at the
user whose snapshot was created fine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block

from bot.mrkdwn import Mrkdwn, mention, plain
from bot.mrkdwn import clip as clip_mrkdwn
from bot.slack.blocks import (
    MAX_TEXT,
    approval_card,
    as_dicts,
    context,
    format_size,
    format_took,
    section,
    server_name,
    snapshot_name,
    status_label,
)
from bot.slack.notify import Notifier
from bot.usecases.context import SYSTEM, Actor
from bot.usecases.tracking import CREATE, EventKind, Operation, Tracker, TrackingEvent

if TYPE_CHECKING:
    from bot.usecases.approvals import RequestView
    from bot.usecases.snapshots import CreateResult

log = logging.getLogger(__name__)


# ---- pure renderers --------------------------------------------------------------------------------------
def _status_words(status: str) -> Mrkdwn:
    return plain(status.replace("_", " "), 40) or Mrkdwn("unknown")


def create_sentence(event: TrackingEvent) -> Mrkdwn:
    """The news in one sentence, e.g. "Snapshot `before-update` of `web-server-01` is ready — 5.0 GB, took 4 min"."""
    op = event.operation
    what = Mrkdwn("Snapshot {} of {}").format(
        snapshot_name(op.snapshot_name), server_name(op.server_name, op.server_id)
    )
    if event.kind is EventKind.COMPLETED:
        return what + Mrkdwn(" is ready — {}, took {}").format(format_size(event.size_mb), format_took(event.took))
    if event.kind is EventKind.VANISHED:
        return what + Mrkdwn(" disappeared from VPS.org before it completed (last seen {})").format(
            _status_words(event.previous_status)
        )
    if event.kind is EventKind.TIMEOUT:
        return what + Mrkdwn(" is still {} after {}; the bot stopped following it — check `/snapshot list`").format(
            _status_words(event.status), format_took(event.took)
        )
    return what + Mrkdwn(" is now {}").format(_status_words(event.status))


def restore_sentence(event: TrackingEvent) -> Mrkdwn:
    op = event.operation
    what = Mrkdwn("Restore of {} from snapshot {}").format(
        server_name(op.server_name, op.server_id), snapshot_name(op.snapshot_name)
    )
    if event.kind is EventKind.FINISHED:
        state = Mrkdwn("active again") if event.status == "active" else _status_words(event.status)
        return what + Mrkdwn(" finished — the server is {} (took {})").format(state, format_took(event.took))
    if event.kind is EventKind.VANISHED:
        return what + Mrkdwn(": the server is no longer listed by VPS.org — check it before anything else")
    if event.kind is EventKind.TIMEOUT:
        return what + Mrkdwn(" is still {} after {}; the bot stopped following it — check the server").format(
            _status_words(event.status), format_took(event.took)
        )
    return what + Mrkdwn(": server is now {}").format(_status_words(event.status))


_ICONS = {
    EventKind.COMPLETED: Mrkdwn(":white_check_mark:"),
    EventKind.FINISHED: Mrkdwn(":white_check_mark:"),
    EventKind.VANISHED: Mrkdwn(":warning:"),
    EventKind.TIMEOUT: Mrkdwn(":alarm_clock:"),
    EventKind.PROGRESS: Mrkdwn(":hourglass_flowing_sand:"),
}


def create_message(event: TrackingEvent) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """The create announcement as it should look now: same opening as blocks.create_started, new status."""
    op = event.operation
    head = Mrkdwn("{} started snapshot {} (#{}) of {} (id {}).").format(
        mention(op.actor_id),
        snapshot_name(op.snapshot_name),
        op.snapshot_id,
        server_name(op.server_name, op.server_id),
        op.server_id,
    )
    if event.kind is EventKind.COMPLETED:
        status = Mrkdwn(":white_check_mark: completed · {} · took {}").format(
            format_size(event.size_mb), format_took(event.took)
        )
    elif event.kind is EventKind.VANISHED:
        status = Mrkdwn(":grey_question: disappeared from VPS.org before it completed")
    elif event.kind is EventKind.TIMEOUT:
        status = Mrkdwn(":alarm_clock: still {} after {} — no longer followed; check `/snapshot list`").format(
            _status_words(event.status), format_took(event.took)
        )
    else:
        status = status_label(event.status)
    text = clip_mrkdwn(head + Mrkdwn("\nStatus: ") + status, MAX_TEXT)
    blocks: list[Block] = [section(text)]
    if not event.final:
        blocks.append(context(Mrkdwn("This message updates as the snapshot progresses.")))
    return head + Mrkdwn(" Status: ") + status, as_dicts(blocks)


# ---- the Slack-side tracker --------------------------------------------------------------------------------
class ProgressTracker:
    def __init__(
        self,
        tracker: Tracker,
        notifier: Notifier,
        *,
        request_channel: Callable[[int], str | None] | None = None,
        request_view: Callable[[int], RequestView] | None = None,
    ) -> None:
        self.tracker = tracker
        self.notifier = notifier
        # Where a restore request was asked (its card may live in the approval channel).
        self._request_channel = request_channel
        # The restore's approval request as it is now, to redraw its card.
        self._request_view = request_view
        self._elapsed_shown: dict[int, str] = {}  # operation id → the elapsed time its card shows

    def track_create(
        self, actor: Actor, result: CreateResult, *, message_channel: str | None, message_ts: str | None
    ) -> Operation | None:
        try:
            return self.tracker.track_create(actor, result, message_channel=message_channel, message_ts=message_ts)
        except Exception:
            log.exception("could not start tracking snapshot %s", result.snapshot.id)
            return None

    def track_restore(self, request_view: RequestView) -> Operation | None:
        try:
            return self.tracker.track_restore(request_view)
        except Exception:
            log.exception("could not start tracking the restore of request #%s", request_view.id)
            return None

    def restore_of(self, request_id: int) -> Operation | None:
        """The restore followed for an approval request (for drawing its card); None when unknown or unreadable."""
        try:
            return self.tracker.restore_of(request_id)
        except Exception:
            log.warning("could not read the restore of request #%s", request_id, exc_info=True)
            return None

    def refresh_running(self) -> None:
        """Keep the elapsed time on the cards of restores this replica follows current (updated when it changes)."""
        if self._request_view is None:
            return
        now = self.tracker.clock()  # the tracker's clock: the one its operations are stamped with
        for op in self.tracker.active(limit=100):
            if op.kind == CREATE or op.request_id is None or op.lease_owner != self.tracker.owner:
                continue
            shown = str(format_took(now - op.started_at))
            if self._elapsed_shown.get(op.id) != shown:
                self._draw_card(op)

    def poll_once(self, *, force: bool = False) -> list[TrackingEvent]:
        events = self.tracker.poll_once(force=force)
        self.render(events)
        return events

    def release(self) -> int:
        return self.tracker.release()

    def render(self, events: list[TrackingEvent]) -> None:
        """Update messages and post replies per event; notification lines grouped per channel at the end."""
        lines: dict[str, list[Mrkdwn]] = {}
        for event in events:
            try:
                self._render(event, lines)
            except Exception:
                log.exception("could not announce tracking event %s of operation %s", event.kind, event.operation.id)
        for fallback, texts in lines.items():
            self.notifier.lines(texts, fallback_channel=fallback or None)

    def _draw_card(self, op: Operation) -> None:
        """Redraw a restore's approval card with where the restore stands (best effort, like all of tracking)."""
        if op.request_id is None or self._request_view is None:
            return
        try:
            view = self._request_view(op.request_id)
            if not (view.card_channel and view.card_ts):
                return
            now = self.tracker.clock()  # the tracker's clock: the one its operations are stamped with
            text, blocks = approval_card(view, now, restore=op)
            self.notifier.update(view.card_channel, view.card_ts, text, blocks)
        except Exception:
            log.warning("could not redraw the card of request #%s", op.request_id, exc_info=True)
            return
        if op.finished_at is None:
            self._elapsed_shown[op.id] = str(format_took(now - op.started_at))
        else:
            self._elapsed_shown.pop(op.id, None)

    def _render(self, event: TrackingEvent, lines: dict[str, list[Mrkdwn]]) -> None:
        op = event.operation
        is_create = op.kind == CREATE
        has_message = bool(op.channel_id and op.message_ts)
        if is_create and has_message:
            text, blocks = create_message(event)
            assert op.channel_id and op.message_ts
            self.notifier.update(op.channel_id, op.message_ts, text, blocks)
        elif not is_create:
            self._draw_card(op)
        if not event.final:
            return
        sentence = create_sentence(event) if is_create else restore_sentence(event)
        fallback = op.channel_id
        if not is_create and op.request_id is not None and self._request_channel is not None:
            try:
                fallback = self._request_channel(op.request_id) or fallback
            except Exception:
                log.warning("could not look up the channel of request #%s", op.request_id)
        target = self.notifier.target(fallback)
        reply = Mrkdwn("{} {}.").format(mention(op.actor_id), sentence)
        in_dm = (op.channel_id or "").startswith("D")  # the card's thread already is their DM
        if has_message and not is_create and op.actor_id != SYSTEM.user_id and not in_dm:
            # How an approved restore ended reaches its requester by DM too (issue 28 §1), besides the card's thread.
            self.notifier.post(op.actor_id, Mrkdwn("Your request: {}.").format(sentence))
        if has_message:
            assert op.channel_id and op.message_ts
            broadcast = target == op.channel_id
            self.notifier.post(op.channel_id, reply, thread_ts=op.message_ts, reply_broadcast=broadcast)
            if broadcast:
                return
        elif op.actor_id != SYSTEM.user_id:  # a schedule's run has no person to tell: the line below says it
            # No message to reply under (the announcement could not be posted): tell the person directly.
            self.notifier.post(op.actor_id, reply)
        if target:
            lines.setdefault(fallback or "", []).append(Mrkdwn("{} {}.").format(_ICONS[event.kind], sentence))

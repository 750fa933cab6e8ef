"""The Slack side of tracking: renders Tracker events into what people see.

For each event: the original create announcement is updated in place; when the operation is over, a thread reply
mentions the person who started it, and one line goes to the notification channel (SNAPSHOT_NOTIFY_CHANNEL, else
the channel where the action began). When those two are the same channel the thread reply is broadcast to the
channel instead of posting the line separately, so nobody reads the same news twice.

Stored as `services.extras["tracker"]`; flows.create, approvals.publish_outcome and the background ticker call it.
Tracking is best effort on top of actions already done and audited: a failure here is logged, never raised at the
user whose snapshot was created fine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.slack.blocks import code, escape, format_size, mention, status_label
from bot.slack.notify import Notifier
from bot.usecases.context import Actor
from bot.usecases.tracking import CREATE, EventKind, Operation, Tracker, TrackingEvent

if TYPE_CHECKING:
    from bot.usecases.approvals import RequestView
    from bot.usecases.snapshots import CreateResult

log = logging.getLogger(__name__)


# ---- pure renderers --------------------------------------------------------------------------------------
def format_took(took: timedelta) -> str:
    seconds = int(took.total_seconds())
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _status_words(status: str) -> str:
    return escape(status.replace("_", " ")) or "unknown"


def create_sentence(event: TrackingEvent) -> str:
    """The news in one sentence, e.g. "Snapshot `before-update` of web-server-01 is ready — 5.0 GB, took 4 min"."""
    op = event.operation
    what = f"Snapshot {code(op.snapshot_name)} of {escape(op.server_name) or f'server {op.server_id}'}"
    if event.kind is EventKind.COMPLETED:
        return f"{what} is ready — {format_size(event.size_mb)}, took {format_took(event.took)}"
    if event.kind is EventKind.VANISHED:
        return f"{what} disappeared from VPS.org before it completed (last seen {_status_words(event.previous_status)})"
    if event.kind is EventKind.TIMEOUT:
        return (
            f"{what} is still {_status_words(event.status)} after {format_took(event.took)}; "
            "the bot stopped following it — check `/snapshot list`"
        )
    return f"{what} is now {_status_words(event.status)}"


def restore_sentence(event: TrackingEvent) -> str:
    op = event.operation
    what = f"Restore of {escape(op.server_name) or f'server {op.server_id}'} from snapshot {code(op.snapshot_name)}"
    if event.kind is EventKind.FINISHED:
        state = "active again" if event.status == "active" else _status_words(event.status)
        return f"{what} finished — the server is {state} (took {format_took(event.took)})"
    if event.kind is EventKind.VANISHED:
        return f"{what}: the server is no longer listed by VPS.org — check it before anything else"
    if event.kind is EventKind.TIMEOUT:
        return (
            f"{what} is still {_status_words(event.status)} after {format_took(event.took)}; "
            "the bot stopped following it — check the server"
        )
    return f"{what}: server is now {_status_words(event.status)}"


_ICONS = {
    EventKind.COMPLETED: ":white_check_mark:",
    EventKind.FINISHED: ":white_check_mark:",
    EventKind.VANISHED: ":warning:",
    EventKind.TIMEOUT: ":alarm_clock:",
    EventKind.PROGRESS: ":hourglass_flowing_sand:",
}


def create_message(event: TrackingEvent) -> tuple[str, list[dict[str, Any]]]:
    """The create announcement as it should look now: same opening as blocks.create_started, new status."""
    op = event.operation
    head = (
        f"{mention(op.actor_id)} started snapshot {code(op.snapshot_name)} (#{op.snapshot_id}) of "
        f"*{escape(op.server_name)}* (id {op.server_id})."
    )
    if event.kind is EventKind.COMPLETED:
        status = f":white_check_mark: completed · {format_size(event.size_mb)} · took {format_took(event.took)}"
    elif event.kind is EventKind.VANISHED:
        status = ":grey_question: disappeared from VPS.org before it completed"
    elif event.kind is EventKind.TIMEOUT:
        status = (
            f":alarm_clock: still {_status_words(event.status)} after {format_took(event.took)} — "
            "no longer followed; check `/snapshot list`"
        )
    else:
        status = status_label(event.status)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"{head}\nStatus: {status}"}}]
    if not event.final:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "This message updates as the snapshot progresses."}],
            }
        )
    return f"{head} Status: {status}", blocks


# ---- the Slack-side tracker --------------------------------------------------------------------------------
class ProgressTracker:
    def __init__(
        self,
        tracker: Tracker,
        notifier: Notifier,
        *,
        request_channel: Callable[[int], str | None] | None = None,
    ) -> None:
        self.tracker = tracker
        self.notifier = notifier
        # Where a restore request was asked (its card may live in the approval channel).
        self._request_channel = request_channel

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

    def poll_once(self, *, force: bool = False) -> list[TrackingEvent]:
        events = self.tracker.poll_once(force=force)
        self.render(events)
        return events

    def release(self) -> int:
        return self.tracker.release()

    def render(self, events: list[TrackingEvent]) -> None:
        """Update messages and post replies per event; notification lines grouped per channel at the end."""
        lines: dict[str, list[str]] = {}
        for event in events:
            try:
                self._render(event, lines)
            except Exception:
                log.exception("could not announce tracking event %s of operation %s", event.kind, event.operation.id)
        for fallback, texts in lines.items():
            self.notifier.lines(texts, fallback_channel=fallback or None)

    def _render(self, event: TrackingEvent, lines: dict[str, list[str]]) -> None:
        op = event.operation
        is_create = op.kind == CREATE
        has_message = bool(op.channel_id and op.message_ts)
        if is_create and has_message:
            text, blocks = create_message(event)
            assert op.channel_id and op.message_ts
            self.notifier.update(op.channel_id, op.message_ts, text, blocks)
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
        reply = f"{mention(op.actor_id)} {sentence}."
        if has_message:
            assert op.channel_id and op.message_ts
            broadcast = target == op.channel_id
            self.notifier.post(op.channel_id, reply, thread_ts=op.message_ts, reply_broadcast=broadcast)
            if broadcast:
                return
        else:
            # No message to reply under (the announcement could not be posted): tell the person directly.
            self.notifier.post(op.actor_id, reply)
        if target:
            lines.setdefault(fallback or "", []).append(f"{_ICONS[event.kind]} {sentence}.")

"""Messages the bot posts on its own (notifications, progress), paced so bursts don't trip Slack's rate limits.

Slack allows about one message per second per channel. Two layers keep the bot within that:
- pacing: every post to a channel waits for that channel's next free slot (other channels are not held up);
- 429s: the channel's slots are pushed back by `Retry-After` (so later posts from every thread wait too) and
  the post is tried again, as often as bot/slack/retry.py allows. This is the only layer that retries these
  posts: the Notifier's client is built without the WebClient's own 429 handler.
Callers are background threads (the worker pool, the ticker), so waiting here never delays an acknowledgement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn
from bot.slack.replies import outgoing
from bot.slack.retry import RATE_LIMIT_RETRIES, retry_after_seconds

log = logging.getLogger(__name__)

MAX_LINES_PER_MESSAGE = 20  # a burst of notification lines goes out as a few messages, not dozens


class Notifier:
    """`channel` is SNAPSHOT_NOTIFY_CHANNEL (or None): notification lines go there, else to the channel where the
    action began. `post`/`update` are the paced, 429-aware primitives the progress tracker uses too."""

    def __init__(
        self,
        client: WebClient,
        channel: str | None,
        *,
        min_interval: float = 1.0,
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.channel = channel
        self.min_interval = min_interval
        self.rate_limit_retries = max(0, rate_limit_retries)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}

    def target(self, fallback_channel: str | None) -> str | None:
        """Where a notification line goes: the notification channel, else `fallback_channel` (may be None)."""
        return self.channel or fallback_channel

    def line(self, text: Mrkdwn | str, *, fallback_channel: str | None) -> bool:
        """One notification line. False when there is nowhere to post it or Slack refused it (logged)."""
        target = self.target(fallback_channel)
        if not target:
            return False
        return self.post(target, text) is not None

    def lines(self, texts: Sequence[Mrkdwn | str], *, fallback_channel: str | None) -> int:
        """Several lines to one place, grouped into few messages (one line per state change, fewer posts).

        Returns how many lines were delivered.
        """
        target = self.target(fallback_channel)
        if not target:
            return 0
        delivered = 0
        for start in range(0, len(texts), MAX_LINES_PER_MESSAGE):
            chunk = texts[start : start + MAX_LINES_PER_MESSAGE]
            if self.post(target, Mrkdwn("\n").join(outgoing(line, None)[0] for line in chunk)) is not None:
                delivered += len(chunk)
        return delivered

    def post(
        self,
        channel: str,
        text: Mrkdwn | str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
    ) -> dict[str, Any] | None:
        """chat.postMessage, paced per channel. Returns Slack's answer (with `channel`, `ts`) or None."""
        text, blocks = outgoing(text, blocks)
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if blocks is not None:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            if reply_broadcast:
                kwargs["reply_broadcast"] = True
        response = self._call("chat.postMessage", channel, lambda: self.client.chat_postMessage(**kwargs))
        if response is None:
            return None
        data = response.data
        return dict(data) if isinstance(data, dict) else {}

    def update(self, channel: str, ts: str, text: Mrkdwn | str, blocks: list[dict[str, Any]] | None = None) -> bool:
        """chat.update of a message the bot posted, paced with the channel's posts."""
        text, blocks = outgoing(text, blocks)
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            kwargs["blocks"] = blocks
        return self._call("chat.update", channel, lambda: self.client.chat_update(**kwargs)) is not None

    # ---- pacing and rate limits --------------------------------------------------------------------------
    def _call(self, method: str, channel: str, send: Callable[[], Any]) -> Any | None:
        for attempt in range(self.rate_limit_retries + 1):
            self._wait_turn(channel)
            try:
                return send()
            except SlackApiError as error:
                status = getattr(error.response, "status_code", None)
                if status == 429:
                    wait = retry_after_seconds(getattr(error.response, "headers", None))
                    self._push_back(channel, wait)  # later posts to this channel, from any thread, wait too
                    if attempt < self.rate_limit_retries:
                        log.warning("%s to %s rate limited; retrying in %.0fs", method, channel, wait)
                        continue
                log.warning("%s to %s failed: %s", method, channel, error.response.get("error"))
                return None
            except Exception as error:  # Slack unreachable: the event is in the audit trail either way
                log.warning("%s to %s failed: %s", method, channel, type(error).__name__)
                return None
        return None

    def _wait_turn(self, channel: str) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot.get(channel, now))
            self._next_slot[channel] = slot + self.min_interval
        if slot > now:
            self._sleep(slot - now)

    def _push_back(self, channel: str, seconds: float) -> None:
        """After a 429 nothing goes to `channel` for `seconds`, from any thread."""
        with self._lock:
            earliest = self._clock() + seconds
            self._next_slot[channel] = max(self._next_slot.get(channel, earliest), earliest)

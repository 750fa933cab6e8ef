"""One-line notifications to the notification channel, paced so bursts don't trip Slack's rate limits."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class Notifier:
    """`SNAPSHOT_NOTIFY_CHANNEL` when set, else the channel where the action began. About one message per second
    per channel (Slack's posting limit); callers are background threads, so waiting here never delays an ack."""

    def __init__(self, client: WebClient, channel: str | None, *, min_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.channel = channel
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}

    def line(self, text: str, *, fallback_channel: str | None) -> bool:
        target = self.channel or fallback_channel
        if not target:
            return False
        self._wait_turn(target)
        try:
            self.client.chat_postMessage(channel=target, text=text, unfurl_links=False)
            return True
        except SlackApiError as error:
            log.warning("notification to %s failed: %s", target, error.response.get("error"))
            return False

    def _wait_turn(self, channel: str) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot.get(channel, now))
            self._next_slot[channel] = slot + self.min_interval
        if slot > now:
            self._sleep(slot - now)

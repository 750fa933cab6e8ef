"""Messages the bot posts on its own (notifications, progress), paced so bursts don't trip Slack's rate limits.

Slack allows about one message per second per channel. Two layers keep the bot within that:
- pacing: every post to a channel waits for that channel's next free slot (other channels are not held up);
- 429s: the channel's slots are pushed back by `Retry-After` (so later posts from every thread wait too) and
  the post is tried again, as often as bot/slack/retry.py allows. This is the only layer that retries these
  posts: the Notifier's client is built without the WebClient's own 429 handler.
Callers are background threads (the worker pool, the ticker), so waiting here never delays an acknowledgement.

Lines never hold their caller (`hand_off=True`, as the bot is wired): a notification line whose channel is free
goes at once; one that would wait for its slot (pacing or a 429's `Retry-After`) is handed to that channel's
sender thread, which delivers the channel's lines in order at its pace. So a busy channel never keeps a worker
thread asleep, and an approval clicked meanwhile is carried out at once (issue 27 §3): the line follows.
`post`/`update` keep waiting for their turn: their callers need Slack's answer (the ticker, the witness).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn
from bot.slack.replies import outgoing
from bot.slack.retry import RATE_LIMIT_RETRIES, retry_after_seconds

log = logging.getLogger(__name__)

MAX_LINES_PER_MESSAGE = 20  # a burst of notification lines goes out as a few messages, not dozens
_RATE_LIMITED = object()  # an attempt Slack answered 429: the channel's slots were pushed back


class Notifier:
    """`channel` is SNAPSHOT_NOTIFY_CHANNEL (or None): notification lines go there, else to the channel where the
    action began. `post`/`update` are the paced, 429-aware primitives the progress tracker uses too.

    `hand_off`: lines that would wait for their slot go to the channel's sender thread instead (see above); then
    `line`/`lines` count a handed-off line as delivered, and `wait_idle`/`close` wait for the senders."""

    def __init__(
        self,
        client: WebClient,
        channel: str | None,
        *,
        min_interval: float = 1.0,
        rate_limit_retries: int = RATE_LIMIT_RETRIES,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        hand_off: bool = False,
    ) -> None:
        self.client = client
        self.channel = channel
        self.min_interval = min_interval
        self.rate_limit_retries = max(0, rate_limit_retries)
        self.hand_off = hand_off
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}
        # Per channel, the lines handed to its sender thread: (text, attempts left). A channel is a key while its
        # sender runs; the sender removes it, under the lock, when it finds nothing left to send.
        self._outbox: dict[str, deque[tuple[Mrkdwn | str, int]]] = {}
        self._idle = threading.Condition(self._lock)

    def use_clock(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        """Pace by another clock (tests: a clock whose sleeps move it on, so pacing costs no real time)."""
        with self._lock:
            self._clock, self._sleep = clock, sleep
            self._next_slot.clear()

    def target(self, fallback_channel: str | None) -> str | None:
        """Where a notification line goes: the notification channel, else `fallback_channel` (may be None)."""
        return self.channel or fallback_channel

    def line(self, text: Mrkdwn | str, *, fallback_channel: str | None) -> bool:
        """One notification line. False when there is nowhere to post it or Slack refused it (logged)."""
        target = self.target(fallback_channel)
        if not target:
            return False
        return self._line_to(target, text)

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
            if self._line_to(target, Mrkdwn("\n").join(outgoing(line, None)[0] for line in chunk)):
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

    def wait_idle(self, timeout: float) -> bool:
        """Until every handed-off line was sent (or given up); False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._outbox:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 3.0) -> None:
        """At shutdown: give the lines still waiting for their slot `timeout` seconds to go out (within gunicorn's
        5 s margin after the drain, bot/server.py)."""
        if not self.wait_idle(timeout):
            with self._lock:
                left = sum(len(queued) for queued in self._outbox.values())
            log.warning("shutting down with %d notification line(s) not posted (channel pacing)", left)

    # ---- lines that never wait -----------------------------------------------------------------------------
    def _line_to(self, channel: str, text: Mrkdwn | str) -> bool:
        if not self.hand_off:
            return self.post(channel, text) is not None
        attempts = self.rate_limit_retries + 1
        while attempts:
            if not self._turn_now(channel):
                self._hand_to_sender(channel, text, attempts)
                return True
            attempts -= 1
            answer = self._attempt("chat.postMessage", channel, self._line_sender(channel, text), retry=attempts > 0)
            if answer is not _RATE_LIMITED:
                return answer is not None
        return False

    def _line_sender(self, channel: str, text: Mrkdwn | str) -> Callable[[], Any]:
        body, _ = outgoing(text, None)
        return lambda: self.client.chat_postMessage(channel=channel, text=body, unfurl_links=False)

    def _turn_now(self, channel: str) -> bool:
        """Take `channel`'s slot if it is free now and no line is queued before this one."""
        with self._lock:
            now = self._clock()
            if channel in self._outbox or self._next_slot.get(channel, now) > now:
                return False
            self._next_slot[channel] = now + self.min_interval
            return True

    def _hand_to_sender(self, channel: str, text: Mrkdwn | str, attempts: int) -> None:
        with self._lock:
            queued = self._outbox.get(channel)
            if queued is None:
                queued = self._outbox[channel] = deque()
                threading.Thread(target=self._send_queued, args=(channel,), name="notify", daemon=True).start()
            queued.append((text, attempts))

    def _send_queued(self, channel: str) -> None:
        """The channel's sender: its handed-off lines in order, each at its slot; gone when none is left."""
        while True:
            with self._lock:
                queued = self._outbox[channel]
                if not queued:
                    del self._outbox[channel]
                    self._idle.notify_all()
                    return
                text, attempts = queued.popleft()
            try:
                send = self._line_sender(channel, text)
                for left in range(attempts - 1, -1, -1):
                    self._wait_turn(channel)
                    if self._attempt("chat.postMessage", channel, send, retry=left > 0) is not _RATE_LIMITED:
                        break
            except Exception:  # one bad line must not strand the channel's others behind a dead sender
                log.exception("could not post a notification line to %s", channel)

    # ---- pacing and rate limits --------------------------------------------------------------------------
    def _call(self, method: str, channel: str, send: Callable[[], Any]) -> Any | None:
        for attempt in range(self.rate_limit_retries + 1):
            self._wait_turn(channel)
            answer = self._attempt(method, channel, send, retry=attempt < self.rate_limit_retries)
            if answer is not _RATE_LIMITED:
                return answer
        return None

    def _attempt(self, method: str, channel: str, send: Callable[[], Any], *, retry: bool) -> Any:
        """One try: Slack's answer, None when it failed for good, or _RATE_LIMITED when `retry` allows another."""
        try:
            return send()
        except SlackApiError as error:
            status = getattr(error.response, "status_code", None)
            if status == 429:
                wait = retry_after_seconds(getattr(error.response, "headers", None))
                self._push_back(channel, wait)  # later posts to this channel, from any thread, wait too
                if retry:
                    log.warning("%s to %s rate limited; retrying in %.0fs", method, channel, wait)
                    return _RATE_LIMITED
            log.warning("%s to %s failed: %s", method, channel, error.response.get("error"))
            return None
        except Exception as error:  # Slack unreachable: the event is in the audit trail either way
            log.warning("%s to %s failed: %s", method, channel, type(error).__name__)
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

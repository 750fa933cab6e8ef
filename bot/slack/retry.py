"""Slack's retry policy, written once: which failed Web API calls are tried again, how often, and after how long.

Rules it keeps:
- A 429 is tried again at most RATE_LIMIT_RETRIES times, each after the answer's `Retry-After`
  (`retry_after_seconds`: missing or unreadable → 1 s, never more than MAX_RETRY_AFTER).
- A connection error is tried again at most CONNECTION_RETRIES times; anything else is not retried (an error
  answer from Slack, a 5xx: the bot's actions are stored and audited, and the message is only their picture).
- Each call is retried by exactly one layer, so a post is attempted at most 1 + RATE_LIMIT_RETRIES times: the
  WebClient's handlers (`retry_handlers`) for replies and cards, the Notifier itself for its paced posts (it
  must push the channel's slots back for every thread, which a handler inside the client cannot), on a client
  built with `rate_limits=False`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

RATE_LIMIT_RETRIES = 3
CONNECTION_RETRIES = 2
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 60.0


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float:
    """How long Slack asked to wait, from a response's headers (any case; a value or a list of values)."""
    raw: Any = None
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            break
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class RateLimitRetry(RetryHandler):
    """The WebClient's 429 handler: waits `Retry-After` (read by `retry_after_seconds`), then tries again."""

    def __init__(
        self, max_retry_count: int = RATE_LIMIT_RETRIES, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._sleep = sleep

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code == 429

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        self._sleep(retry_after_seconds(response.headers if response is not None else None))
        state.increment_current_attempt()


def retry_handlers(*, rate_limits: bool = True) -> list[RetryHandler]:
    """The handlers every WebClient of the bot gets; `rate_limits=False` for a caller that retries 429s itself."""
    handlers: list[RetryHandler] = [ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES)]
    if rate_limits:
        handlers.append(RateLimitRetry())
    return handlers

"""Per-user limit on mutating actions (create, delete, restore requests), e.g. "10/hour".

The limiter keeps no state of its own: it asks a counter (in production, the audit log) how many actions
the user started in the sliding window, so the limit holds across replicas and restarts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.config import RateLimit

_UNIT_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int  # 0 when allowed
    message: str  # empty when allowed; otherwise a sentence for the user


class RateLimiter:
    def __init__(
        self,
        limit: RateLimit | None,
        count_recent: Callable[[str, datetime], int],
        clock: Callable[[], datetime] = utcnow,
        oldest_in_window: Callable[[str, datetime], datetime | None] | None = None,
    ) -> None:
        """`count_recent(user, since)`: actions the user started at or after `since`.

        `oldest_in_window(user, since)`: when the oldest of those was started, so "try again in" can say
        when the window frees a slot. Without it the whole period is quoted, which is never too short.
        """
        self.limit = limit
        self._count_recent = count_recent
        self._oldest_in_window = oldest_in_window
        self._clock = clock

    def check(self, user_id: str) -> RateDecision:
        """Whether `user_id` may start one more action now. Errors from the counters propagate.

        A quick answer before any work is done; the binding one is `decide`, given a count taken under the
        lock in the transaction that records the action (see Guard.claim_rate).
        """
        since = self.window_start()
        if since is None:
            return RateDecision(True, 0, "")
        return self.decide(user_id, self._count_recent(user_id, since))

    @property
    def limit_count(self) -> int:
        """How many actions the window allows (unlimited without a limit)."""
        return self.limit.count if self.limit is not None else 2**62

    def window_start(self) -> datetime | None:
        """The start of the sliding window as of now, or None when no limit is configured."""
        if self.limit is None:
            return None
        return self._clock() - timedelta(seconds=self.limit.period_seconds)

    def decide(self, user_id: str, started: int) -> RateDecision:
        """The decision for a user who already started `started` actions in the current window."""
        if self.limit is None or started < self.limit.count:
            return RateDecision(True, 0, "")
        now = self._clock()
        since = now - timedelta(seconds=self.limit.period_seconds)
        retry_after = self._retry_after(self.limit, user_id, now, since)
        return RateDecision(
            False,
            retry_after,
            f"You've reached the limit of {_plural(self.limit.count, 'action')} per "
            f"{_UNIT_NAMES[self.limit.period_seconds]}. Try again in {_humanize(retry_after)}.",
        )

    def _retry_after(self, limit: RateLimit, user_id: str, now: datetime, since: datetime) -> int:
        period = limit.period_seconds
        oldest = self._oldest_in_window(user_id, since) if self._oldest_in_window else None
        if oldest is None:
            return period
        oldest, now = _as_utc(oldest), _as_utc(now)
        # `count_recent` counts actions at or after `since`, so the oldest one still counts when it is
        # exactly one period old and leaves the window just after: the first whole second past that
        # (floor + 1, not ceil, which would be one second short whenever the gap is a whole number).
        # If the user is over the limit (concurrent requests on several replicas), freeing one slot may
        # not be enough; the next check then quotes the next one. Clamped so clock skew between replicas
        # never yields "0 seconds" or more than a period.
        seconds = math.floor((oldest + timedelta(seconds=period) - now).total_seconds()) + 1
        return min(max(seconds, 1), period)


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns; the bot stores UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _humanize(seconds: int) -> str:
    """Rounded up, so the user who waits that long is let through."""
    if seconds < 60:
        return _plural(seconds, "second")
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return _plural(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    text = _plural(hours, "hour")
    return f"{text} {_plural(minutes, 'minute')}" if minutes else text

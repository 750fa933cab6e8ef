"""How many VPS.org listings one person may cause: SNAPSHOT_READ_LIMIT (default 60/minute), in the same form as
SNAPSHOT_RATE_LIMIT.

Rules it keeps:
- A person is (workspace, user id). Only a read that reaches VPS.org is charged (a cache miss the person's read
  started); listings served from the cache cost nothing and are never refused.
- A sliding window per person, kept in this process only (a replica counts its own; the limit protects the API
  budget restores and re-checks need, it is not an audit fact). Idle people are forgotten.
- Beyond the limit the caller serves the cached listing with its age, or refuses with `ReadLimited`, which says in
  how many seconds a read is allowed again.
"""

from __future__ import annotations

import math
from collections import deque

from bot.config import RateLimit
from bot.usecases.errors import Refused

DEFAULT_READ_LIMIT = RateLimit(60, 60)
_UNITS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
MAX_PEOPLE = 10_000  # beyond this many counted people, the idlest are forgotten


class ReadLimited(Refused):
    """Too many VPS.org reads by one person and nothing cached to show instead."""

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ReadLimit:
    """Not thread-safe on its own: `ListingCache` calls it under its lock."""

    def __init__(self, limit: RateLimit = DEFAULT_READ_LIMIT) -> None:
        self.limit = limit
        self._reads: dict[tuple[str, str], deque[float]] = {}

    def charge(self, person: tuple[str, str], now: float) -> float | None:
        """Count one read for `person` at `now` (monotonic seconds) and return None, or return how many seconds
        until one is allowed (nothing counted)."""
        window = self._reads.get(person)
        if window is None:
            if len(self._reads) >= MAX_PEOPLE:
                self._forget_idle(now)
            window = self._reads[person] = deque()
        while window and now - window[0] >= self.limit.period_seconds:
            window.popleft()
        if len(window) >= self.limit.count:
            return max(0.0, window[0] + self.limit.period_seconds - now)
        window.append(now)
        return None

    def refusal(self, wait: float) -> ReadLimited:
        seconds = max(1, math.ceil(wait))
        unit = _UNITS.get(self.limit.period_seconds, f"{self.limit.period_seconds} seconds")
        return ReadLimited(
            f"You have asked VPS.org for {self.limit.count} listings in the last {unit}, the most one person may "
            f"(SNAPSHOT_READ_LIMIT), and there is no recent listing to show instead. Try again in {seconds} s.",
            retry_after_seconds=seconds,
        )

    def _forget_idle(self, now: float) -> None:
        idle = [p for p, w in self._reads.items() if not w or now - w[-1] >= self.limit.period_seconds]
        for person in idle or list(self._reads)[: len(self._reads) // 2]:
            del self._reads[person]

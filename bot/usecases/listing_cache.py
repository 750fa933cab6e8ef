"""A short-lived, bounded, in-process memory of snapshot listings, so "Show more" pages one fetch.

An entry is keyed by a paging-session key (carried in the "Show more" button), the user and the server filter.
It is only an optimisation: after it expires, on another replica or after a restart, the next page fetches again.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

LISTING_TTL_SECONDS = 60.0
LISTING_MAX_ENTRIES = 64

Key = tuple[str, str, int | None]  # (session, user id, server filter)


class ListingCache(Generic[T]):
    def __init__(
        self,
        ttl: float = LISTING_TTL_SECONDS,
        max_entries: int = LISTING_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Key, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(9)

    def get(self, key: Key) -> T | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() - entry[0] >= self.ttl:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Key, value: T) -> None:
        with self._lock:
            now = self.clock()
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            expired = [k for k, (at, _) in self._entries.items() if now - at >= self.ttl]
            for k in expired:
                del self._entries[k]
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

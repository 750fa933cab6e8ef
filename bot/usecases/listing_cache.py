"""The one in-process cache of what VPS.org lists, shared per workspace: App Home, `/snapshot list` (its "Show more"
pages included) and the create form's server picker read through it.

Rules it keeps:
- An entry is fresh for `ttl` seconds (SNAPSHOT_READ_CACHE_SECONDS) and served to anyone in its workspace without
  asking VPS.org. Concurrent misses for one key share one fetch, so thirty App Home opens at once cost one listing.
- The bot's own writes (create, restore, delete: `VpsClient.on_write`) make every entry stale at once; a fetch
  that began before a write is stored stale, never fresh.
- A stale entry is kept for `keep` seconds: for "Show more" of a listing already shown (its pages come from the
  listing the first page came from, named by its `session`), and for a person past their read limit, who is shown
  the last listing with its age (`Cached.age`).
- Reads one person causes are bounded by a `ReadLimit` (SNAPSHOT_READ_LIMIT): a fetch counts against whoever's
  read started it; beyond the limit the stale entry is served, or `ReadLimited` says when to try again.
- Bounded: at most `max_entries` entries, the least recently stored dropped first.
- Per process: each replica has its own cache and its own counts (docs/operations.md). The checks made just before
  a create, restore or delete is sent never read it: they call VpsClient directly.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from bot.usecases.context import utcnow
from bot.usecases.read_limit import ReadLimit, ReadLimited
from bot.vps.errors import DeadlineExceeded

T = TypeVar("T")

READ_CACHE_SECONDS = 15.0
KEEP_SECONDS = 600.0  # how long a stale listing may still page "Show more" or stand in for a limited read
MAX_ENTRIES = 256

Key = tuple[str, str, int | None]  # (workspace id, what is listed, server filter)

__all__ = ["Cached", "Key", "ListingCache", "ReadLimited"]


@dataclass(frozen=True)
class Cached(Generic[T]):
    """A listing and where it came from."""

    value: T
    fetched_at: datetime  # when VPS.org was asked (wall clock, for "as of")
    session: str  # names this fetch: "Show more" asks for the same one
    age: float  # seconds since the fetch
    fresh: bool  # False: older than the TTL or older than a bot write (served only for paging or a limited reader)
    fetched_now: bool = False  # this read asked VPS.org itself


@dataclass
class _Entry:
    value: Any
    fetched_at: datetime
    at: float  # monotonic
    session: str
    generation: int  # the write generation it was fetched in


class _Flight:
    """A fetch in progress, waited for by every reader of the same key."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry: _Entry | None = None
        self.error: BaseException | None = None


class ListingCache:
    def __init__(
        self,
        *,
        ttl: float = READ_CACHE_SECONDS,
        keep: float = KEEP_SECONDS,
        max_entries: int = MAX_ENTRIES,
        limit: ReadLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ttl = ttl
        self.keep = max(keep, ttl)
        self.max_entries = max_entries
        self.limit = limit
        self.clock = clock
        self.wall = wall
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._flights: dict[Key, _Flight] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """The bot wrote to VPS.org: nothing cached is fresh any more (kept entries still page "Show more")."""
        with self._lock:
            self._generation += 1

    def peek(self, key: Key) -> Cached[Any] | None:
        """What is held for `key`, fresh or kept, without ever asking VPS.org."""
        with self._lock:
            entry = self._held(key)
            return self._view(entry) if entry is not None else None

    def read(
        self,
        key: Key,
        fetch: Callable[[], T],
        *,
        reader: tuple[str, str] | None,
        session: str | None = None,
        within: float | None = None,
    ) -> Cached[T]:
        """The listing for `key`: the one named `session` while it is kept, else a fresh one (fetching it when
        nothing fresh is held). `reader` (workspace, user) is charged for a fetch it starts; past its limit the
        kept listing is served stale, or `ReadLimited` is raised when there is none. A reader that finds the same
        fetch under way waits for it, at most `within` seconds (then `DeadlineExceeded`, as the fetch would)."""
        with self._lock:
            entry = self._held(key)
            if entry is not None and (session == entry.session or self._fresh(entry)):
                return self._view(entry)
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                if self.limit is not None and reader is not None:
                    wait = self.limit.charge(reader, self.clock())
                    if wait is not None:
                        if entry is not None:
                            return self._view(entry)
                        raise self.limit.refusal(wait)
                flight = self._flights[key] = _Flight()
                generation = self._generation
        if not leader:
            if not flight.done.wait(within):
                raise DeadlineExceeded("VPS.org did not answer in time (a listing already under way)")
            if flight.error is not None:
                raise flight.error
            assert flight.entry is not None
            with self._lock:
                return _just_fetched(self._view(flight.entry))
        try:
            value = fetch()
        except BaseException as error:
            with self._lock:
                del self._flights[key]
            flight.error = error
            flight.done.set()
            raise
        with self._lock:
            fetched = _Entry(value, self.wall(), self.clock(), secrets.token_urlsafe(9), generation)
            self._entries[key] = fetched
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            del self._flights[key]
            flight.entry = fetched
            flight.done.set()
            view = self._view(fetched)
        return replace(_just_fetched(view), fetched_now=True)

    # ---- under the lock --------------------------------------------------------------------------------------
    def _held(self, key: Key) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and self.clock() - entry.at >= self.keep:
            del self._entries[key]
            return None
        return entry

    def _fresh(self, entry: _Entry) -> bool:
        return entry.generation == self._generation and self.clock() - entry.at < self.ttl

    def _view(self, entry: _Entry) -> Cached[Any]:
        age = max(0.0, self.clock() - entry.at)
        return Cached(entry.value, entry.fetched_at, entry.session, age, self._fresh(entry))


def _just_fetched(view: Cached[Any]) -> Cached[Any]:
    """A listing fetched for this read is the freshest there is, whatever the TTL (0 included) or a write meanwhile
    (which leaves it stored stale for the next reader)."""
    return replace(view, fresh=True)

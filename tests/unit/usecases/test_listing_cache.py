"""The listing cache's rules, on its own clock: freshness, one fetch for concurrent readers, writes, keeping, limits."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.config import RateLimit
from bot.usecases.listing_cache import ListingCache, ReadLimited
from bot.usecases.read_limit import ReadLimit
from bot.vps.errors import DeadlineExceeded

KEY = ("T0TEAM", "snapshots", None)
ALICE = ("T0TEAM", "U0ALICE")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def counting(value: object = "listing") -> tuple[list[int], object]:
    calls: list[int] = []

    def fetch() -> object:
        calls.append(1)
        return value

    return calls, fetch


def test_fresh_within_the_ttl_then_fetched_again() -> None:
    clock = Clock()
    cache = ListingCache(ttl=15, clock=clock)
    calls, fetch = counting()
    first = cache.read(KEY, fetch, reader=ALICE)
    assert first.fetched_now and first.fresh
    clock.now += 14.9
    again = cache.read(KEY, fetch, reader=ALICE)
    assert (len(calls), again.fetched_now, again.session) == (1, False, first.session)
    assert again.age == pytest.approx(14.9)
    clock.now += 0.2
    assert cache.read(KEY, fetch, reader=ALICE).fetched_now and len(calls) == 2


def test_concurrent_readers_share_one_fetch() -> None:
    cache = ListingCache(ttl=15)
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_fetch() -> str:
        calls.append(1)
        started.set()
        assert release.wait(10)
        return "listing"

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(cache.read, KEY, slow_fetch, reader=ALICE)
        assert started.wait(10)
        others = [pool.submit(cache.read, KEY, slow_fetch, reader=("T0TEAM", f"U{i}")) for i in range(7)]
        release.set()
        results = [first.result(10)] + [f.result(10) for f in others]
    assert len(calls) == 1 and {r.value for r in results} == {"listing"}


def test_a_waiting_reader_gives_up_at_its_deadline() -> None:
    cache = ListingCache(ttl=15)
    started, release = threading.Event(), threading.Event()

    def slow_fetch() -> str:
        started.set()
        assert release.wait(10)
        return "listing"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.read, KEY, slow_fetch, reader=ALICE)
        assert started.wait(10)
        with pytest.raises(DeadlineExceeded):
            cache.read(KEY, slow_fetch, reader=ALICE, within=0.05)
        release.set()
        assert first.result(10).value == "listing"


def test_a_write_makes_every_entry_stale_even_one_being_fetched() -> None:
    cache = ListingCache(ttl=15)
    calls, fetch = counting()
    cache.read(KEY, fetch, reader=ALICE)
    cache.invalidate()
    assert cache.read(KEY, fetch, reader=ALICE).fetched_now and len(calls) == 2

    def fetch_across_a_write() -> str:
        cache.invalidate()  # the bot wrote while this listing was on its way
        return "maybe old"

    other = ("T0TEAM", "servers", None)
    assert cache.read(other, fetch_across_a_write, reader=ALICE).fresh  # its reader gets what it asked for
    peeked = cache.peek(other)
    assert peeked is not None and not peeked.fresh  # but nobody else is served it as fresh


def test_a_listing_shown_is_kept_for_its_show_more_then_dropped() -> None:
    clock = Clock()
    cache = ListingCache(ttl=15, keep=600, clock=clock)
    calls, fetch = counting()
    shown = cache.read(KEY, fetch, reader=ALICE)
    clock.now += 300
    paged = cache.read(KEY, fetch, reader=ALICE, session=shown.session)
    assert (paged.session, paged.fetched_now, len(calls)) == (shown.session, False, 1)
    clock.now += 301
    assert cache.read(KEY, fetch, reader=ALICE, session=shown.session).fetched_now and len(calls) == 2


def test_workspaces_do_not_share_entries_and_the_cache_is_bounded() -> None:
    cache = ListingCache(ttl=15, max_entries=2)
    calls, fetch = counting()
    for team in ("T1", "T2", "T3"):
        cache.read((team, "servers", None), fetch, reader=(team, "U1"))
    assert len(calls) == 3
    assert cache.peek(("T1", "servers", None)) is None  # the least recently stored went first
    assert cache.peek(("T3", "servers", None)) is not None


def test_past_the_read_limit_the_kept_listing_or_a_clear_wait() -> None:
    clock = Clock()
    cache = ListingCache(ttl=0, limit=ReadLimit(RateLimit(2, 60)), clock=clock)
    calls, fetch = counting()
    cache.read(KEY, fetch, reader=ALICE)
    clock.now += 10
    cache.read(KEY, fetch, reader=ALICE)
    clock.now += 5
    stale = cache.read(KEY, fetch, reader=ALICE)  # a third fetch is not allowed: the last listing, with its age
    assert (len(calls), stale.fresh, stale.fetched_now, stale.age) == (2, False, False, 5)
    with pytest.raises(ReadLimited) as refused:
        cache.read(("T0TEAM", "snapshots", 12345), fetch, reader=ALICE)
    assert refused.value.retry_after_seconds == 45  # the first read leaves the minute's window then
    assert "Try again in 45 s" in str(refused.value)
    assert cache.read(("T0TEAM", "snapshots", 12345), fetch, reader=("T0TEAM", "U0BOB")).fetched_now
    clock.now += 45
    assert cache.read(("T0TEAM", "snapshots", 12345), fetch, reader=ALICE).fetched_now  # a slot is free again

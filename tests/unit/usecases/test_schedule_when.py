"""`<when>` → slots: the five spellings, bad input, the minimum-gap check, one catch-up slot, and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest

from bot.usecases.errors import InvalidInput
from bot.usecases.schedule_when import parse_when

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def slots(text: str, after: datetime, zone: ZoneInfo, n: int = 4) -> list[datetime]:
    return list(islice(parse_when(text).slots_after(after, zone), n))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("hourly", "hourly"),
        ("daily 2:30", "daily 02:30"),
        ("DAILY 23:59", "daily 23:59"),
        ("weekly Monday 03:00", "weekly mon 03:00"),
        ("weekly sun 00:00", "weekly sun 00:00"),
        ("every 90m", "every 90m"),
        ("every 6h", "every 6h"),
        ("every 2d", "every 2d"),
        ("cron 30 2 * * 1-5", "cron 30 2 * * 1-5"),
    ],
)
def test_each_spelling_is_understood_and_normalised(text: str, spec: str) -> None:
    assert parse_when(text).spec == spec


@pytest.mark.parametrize(
    "text",
    [
        "",
        "daily",
        "daily 24:00",
        "daily 2:60",
        "weekly funday 03:00",
        "weekly mon",
        "every 0h",
        "every 5w",
        "every 9999d",
        "cron * * * *",
        "cron 61 * * * *",
        "cron a b c d e",
        "cron 0 0 31 2 *",
        "monthly",
        "hourly now",
    ],
)
def test_anything_else_is_refused_saying_what_is_accepted(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_when(text)
    assert raised.value.field == "when"


def test_daily_and_weekly_slots_are_wall_clock_times_in_the_zone() -> None:
    assert slots("daily 02:30", utc(2026, 1, 10, 12), BERLIN, 2) == [utc(2026, 1, 11, 1, 30), utc(2026, 1, 12, 1, 30)]
    # 2026-01-12 is a Monday
    assert slots("weekly mon 09:00", utc(2026, 1, 10), UTC_ZONE, 2) == [utc(2026, 1, 12, 9), utc(2026, 1, 19, 9)]
    assert slots("hourly", utc(2026, 1, 10, 12, 5), UTC_ZONE, 2) == [utc(2026, 1, 10, 13), utc(2026, 1, 10, 14)]


def test_every_counts_elapsed_time_from_the_epoch_whatever_the_zone() -> None:
    after = utc(2026, 1, 1, 0, 10)
    assert slots("every 90m", after, BERLIN, 2) == slots("every 90m", after, UTC_ZONE, 2)
    assert slots("every 90m", after, UTC_ZONE, 2) == [utc(2026, 1, 1, 1, 30), utc(2026, 1, 1, 3, 0)]


def test_spring_forward_a_missing_time_runs_when_the_clock_jumps_past_it() -> None:
    # Europe/Berlin, 2026-03-29: 02:00 CET → 03:00 CEST; 02:30 does not exist that day.
    got = slots("daily 02:30", utc(2026, 3, 27, 12), BERLIN, 3)
    assert got == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    assert got[1].astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    # Hourly across the gap: no duplicate instant, every gap at least an hour.
    hourly = slots("hourly", utc(2026, 3, 28, 23, 30), BERLIN, 5)
    assert all(b - a >= timedelta(hours=1) for a, b in pairwise(hourly))
    assert len(set(hourly)) == 5


def test_fall_back_a_repeated_time_runs_once() -> None:
    # Europe/Berlin, 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens twice, the schedule runs once (the first).
    got = slots("daily 02:30", utc(2026, 10, 24, 12), BERLIN, 2)
    assert got == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # New York, 2026-11-01: 01:30 happens twice.
    assert slots("daily 01:30", utc(2026, 10, 31, 12), NEW_YORK, 1) == [utc(2026, 11, 1, 5, 30)]


def test_min_gap_looks_at_the_next_slots_cron_included() -> None:
    now = utc(2026, 1, 1)
    assert parse_when("hourly").min_gap(now, UTC_ZONE) == timedelta(hours=1)
    assert parse_when("cron */5 * * * *").min_gap(now, UTC_ZONE) == timedelta(minutes=5)
    # Two runs close together once a day: the gap is the short one, not the average.
    assert parse_when("cron 0,10 3 * * *").min_gap(now, UTC_ZONE) == timedelta(minutes=10)
    assert parse_when("every 45m").min_gap(now, UTC_ZONE) == timedelta(minutes=45)
    assert parse_when("daily 02:30").min_gap(now, BERLIN) >= timedelta(hours=23)


def test_latest_slot_is_one_catch_up_slot_never_a_burst() -> None:
    hourly = parse_when("hourly")
    created = utc(2026, 1, 1, 9, 30)
    assert hourly.latest_slot(utc(2026, 1, 1, 9, 59), UTC_ZONE, not_before=created) is None
    assert hourly.latest_slot(utc(2026, 1, 1, 10, 0), UTC_ZONE, not_before=created) == utc(2026, 1, 1, 10)
    # Down for three days: only the newest missed slot.
    assert hourly.latest_slot(utc(2026, 1, 4, 7, 20), UTC_ZONE, not_before=created) == utc(2026, 1, 4, 7)
    weekly = parse_when("weekly mon 03:00")
    assert weekly.latest_slot(utc(2026, 3, 1), UTC_ZONE, not_before=created) == utc(2026, 2, 23, 3)
    every = parse_when("every 6h")
    assert every.latest_slot(utc(2026, 1, 2, 13), UTC_ZONE, not_before=created) == utc(2026, 1, 2, 12)
    assert every.latest_slot(utc(2026, 1, 1, 11), UTC_ZONE, not_before=created) is None


def test_a_rare_cron_is_measured_quickly() -> None:
    # 29 February: one slot in four years; the gap check looks two years ahead, not 400 slots (1600 years).
    assert parse_when("cron 0 0 29 2 *").min_gap(utc(2026, 1, 1), UTC_ZONE) >= timedelta(days=365)

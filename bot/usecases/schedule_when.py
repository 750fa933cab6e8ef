"""When a schedule runs: `<when>` text → a `When`, and its slots as UTC instants.

Rules this module keeps:
- Five spellings: `hourly`, `daily HH:MM`, `weekly <mon..sun> HH:MM`, `every <N>m|h|d`, `cron <five fields>`.
  All but `every` are wall-clock times in the configured zone (SNAPSHOT_TIMEZONE); `every` is elapsed time,
  counted from 1970-01-01 00:00 UTC, so its slots never depend on the zone, a restart or the creation time.
- Wall-clock slots come from croniter over naive local times, then each is placed in the zone with `zoneinfo`:
  a time that happens twice (clocks go back) runs once, at its first occurrence; a time that does not exist
  (clocks go forward) runs at the moment the clock jumps past it, and two slots falling on the same instant run
  once. Slots are therefore strictly increasing UTC instants, minute-precise.
- No cron parsing here beyond splitting the text: croniter validates and expands the expression.
- Numbers are ASCII digits only, like every number a person types: `daily ٠٢:٣٠` and `every ৪h` are refused.
- `min_gap` looks at the next `GAP_WINDOW` slots, so a cron that runs often only now and then is caught too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from bot.usecases.errors import InvalidInput
from bot.usecases.wording import Text, code

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's numbering: 0 = Sunday
_FULL_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
GAP_WINDOW = 400  # slots looked at when measuring the shortest gap (over a year of daily slots)
GAP_HORIZON = timedelta(days=2 * 366)  # … but no further ahead than this (a 29 February cron stays cheap)
MAX_EVERY = timedelta(days=366)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# [0-9], never \d: \d also takes ৪ (a Bengali four that reads like an 8), ٠٢:٣٠ and fullwidth ６ (issue 24 §4).
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_EVERY = re.compile(r"([0-9]{1,6})([mhd])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
WHEN_HELP = Text("{}, {}, {}, {} or {}").format(
    code("hourly"),
    code("daily HH:MM"),
    code("weekly <mon..sun> HH:MM"),
    code("every <N>m|h|d"),
    code("cron <five fields>"),
)


@dataclass(frozen=True)
class When:
    """A parsed `<when>`: `spec` is its normal spelling (stored, shown); exactly one of `cron` / `every` is set."""

    spec: str
    cron: str | None = None
    every: timedelta | None = None

    def slots_after(self, after: datetime, zone: ZoneInfo) -> Iterator[datetime]:
        """The slots strictly after `after` (aware), as aware UTC datetimes, in order."""
        after = after.astimezone(UTC)
        if self.every is not None:
            step = self.every
            k = (after - EPOCH) // step + 1
            while True:
                yield EPOCH + k * step
                k += 1
        assert self.cron is not None
        # Start a day early in local wall time: the conversion below may move a slot across `after`.
        start = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) - timedelta(days=1)
        walk = croniter(self.cron, start)
        last: datetime | None = None
        while True:
            local = walk.get_next(datetime)
            slot = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
            if slot <= after or (last is not None and slot <= last):
                continue
            last = slot
            yield slot

    def next_slot(self, after: datetime, zone: ZoneInfo) -> datetime:
        return next(self.slots_after(after, zone))

    def latest_slot(self, now: datetime, zone: ZoneInfo, *, not_before: datetime) -> datetime | None:
        """The newest slot in (`not_before`, `now`], or None: a late runner claims this one slot, never a burst."""
        if self.every is not None:
            k = (now.astimezone(UTC) - EPOCH) // self.every
            slot = EPOCH + k * self.every
            return slot if slot > not_before else None
        found: datetime | None = None
        # Walk forward from a bounded look-back (wall-clock schedules repeat within a year at most).
        since = max(not_before, now - timedelta(days=400))
        for slot in self.slots_after(since, zone):
            if slot > now:
                break
            found = slot
        return found

    def min_gap(self, after: datetime, zone: ZoneInfo, *, stop_below: timedelta | None = None) -> timedelta:
        """The shortest time between two consecutive slots among the next GAP_WINDOW (within GAP_HORIZON).

        With `stop_below`, the first gap shorter than it is returned at once (a refusal needs no more)."""
        if self.every is not None:
            return self.every
        slots = self.slots_after(after, zone)
        previous = next(slots)
        shortest = timedelta.max
        for _ in range(GAP_WINDOW):
            current = next(slots)
            shortest = min(shortest, current - previous)
            if current - after > GAP_HORIZON or (stop_below is not None and shortest < stop_below):
                break
            previous = current
        return shortest


def parse_when(text: str) -> When:
    """`text` is what follows the server id, up to `keep`; raises InvalidInput saying what is accepted."""
    words = text.lower().split()
    if not words:
        raise InvalidInput(f"When should it run? Use {WHEN_HELP}.", field="when")
    head, rest = words[0], words[1:]
    if head == "hourly" and not rest:
        return When("hourly", cron="0 * * * *")
    if head == "daily" and len(rest) == 1:
        hour, minute = _time(rest[0])
        return When(f"daily {hour:02d}:{minute:02d}", cron=f"{minute} {hour} * * *")
    if head == "weekly" and len(rest) == 2:
        day = rest[0][:3]
        if day not in WEEKDAYS or rest[0] not in (day, _FULL_DAYS[WEEKDAYS.index(day)]):
            raise InvalidInput(
                Text("{} needs a day mon…sun, got {}.").format(code("weekly"), code(rest[0], 12)), field="when"
            )
        hour, minute = _time(rest[1])
        return When(f"weekly {day} {hour:02d}:{minute:02d}", cron=f"{minute} {hour} * * {WEEKDAYS.index(day)}")
    if head == "every" and len(rest) == 1:
        match = _EVERY.fullmatch(rest[0])
        if not match or int(match.group(1)) == 0:
            raise InvalidInput(
                Text("{} needs a count and a unit, like {} — got {}.").format(
                    code("every"), code("every 6h"), code(rest[0], 12)
                ),
                field="when",
            )
        step = int(match.group(1)) * _UNITS[match.group(2)]
        if step > MAX_EVERY:
            raise InvalidInput(Text("{} can be at most 366 days.").format(code("every")), field="when")
        return When(f"every {match.group(1)}{match.group(2)}", every=step)
    if head == "cron":
        fields = text.split()[1:]
        expression = " ".join(fields)
        valid = len(fields) == 5 and expression.isascii() and croniter.is_valid(expression)
        if not valid or not _ever_runs(expression):
            raise InvalidInput(
                Text("{} needs five valid fields (minute hour day month weekday), like {} — got {}.").format(
                    code("cron"), code("cron 30 2 * * 1-5"), code(expression, 60)
                ),
                field="when",
            )
        return When(f"cron {expression}", cron=expression)
    raise InvalidInput(Text("I don't understand {} as a time. Use {}.").format(code(text, 60), WHEN_HELP), field="when")


def _ever_runs(expression: str) -> bool:
    """A valid expression may still name no real date (`0 0 31 2 *`): croniter then finds no next one."""
    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError):
        return False
    return True


def _time(word: str) -> tuple[int, int]:
    match = _TIME.fullmatch(word)
    if not match:
        raise InvalidInput(
            Text("The time must look like 02:30 (24-hour clock) — got {}.").format(code(word, 12)), field="when"
        )
    return int(match.group(1)), int(match.group(2))

"""Per-user rate limit over a sliding window, counted by a fake of the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import RateLimit
from bot.usecases.ratelimit import RateDecision, RateLimiter

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeActions:
    """What the audit log would answer: timestamps of the mutating actions each user started."""

    def __init__(self) -> None:
        self.started: dict[str, list[datetime]] = {}
        self.count_calls: list[tuple[str, datetime]] = []
        self.oldest_calls: list[tuple[str, datetime]] = []

    def record(self, user_id: str, at: datetime) -> None:
        self.started.setdefault(user_id, []).append(at)

    def count_recent(self, user_id: str, since: datetime) -> int:
        self.count_calls.append((user_id, since))
        return sum(1 for at in self.started.get(user_id, []) if at >= since)

    def oldest_in_window(self, user_id: str, since: datetime) -> datetime | None:
        self.oldest_calls.append((user_id, since))
        return min((at for at in self.started.get(user_id, []) if at >= since), default=None)


def limiter_for(
    actions: FakeActions, clock: FakeClock, limit: RateLimit | None, *, with_oldest: bool = True
) -> RateLimiter:
    return RateLimiter(
        limit,
        actions.count_recent,
        clock=clock,
        oldest_in_window=actions.oldest_in_window if with_oldest else None,
    )


def test_no_limit_configured_always_allows_without_counting() -> None:
    actions = FakeActions()
    for _ in range(1000):
        actions.record("U1", START)

    decision = limiter_for(actions, FakeClock(), None).check("U1")

    assert decision == RateDecision(True, 0, "")
    assert actions.count_calls == []


def test_under_the_limit_is_allowed_and_counts_over_one_period() -> None:
    actions, clock = FakeActions(), FakeClock()
    for minutes in range(9):
        actions.record("U1", START - timedelta(minutes=minutes))

    decision = limiter_for(actions, clock, RateLimit(10, 3600)).check("U1")

    assert decision.allowed
    assert decision.retry_after_seconds == 0
    assert actions.count_calls == [("U1", START - timedelta(hours=1))]


def test_at_the_limit_is_refused_with_the_time_until_the_oldest_action_leaves_the_window() -> None:
    actions, clock = FakeActions(), FakeClock()
    actions.record("U1", START - timedelta(minutes=48, seconds=30))
    for _ in range(9):
        actions.record("U1", START - timedelta(minutes=5))

    decision = limiter_for(actions, clock, RateLimit(10, 3600)).check("U1")

    assert decision == RateDecision(
        False, 11 * 60 + 31, "You've reached the limit of 10 actions per hour. Try again in 12 minutes."
    )
    assert actions.oldest_calls == [("U1", START - timedelta(hours=1))]


def test_waiting_the_quoted_time_is_exactly_enough() -> None:
    actions, clock = FakeActions(), FakeClock()
    limiter = limiter_for(actions, clock, RateLimit(3, 60))
    for seconds in (0, 10, 20):
        clock.now = START + timedelta(seconds=seconds)
        assert limiter.check("U1").allowed
        actions.record("U1", clock.now)

    clock.now = START + timedelta(seconds=25)
    refused = limiter.check("U1")
    assert not refused.allowed
    # The action at 0 s is counted until the window starts after it: at 61 s, i.e. 36 s from now.
    assert refused.retry_after_seconds == 36
    assert refused.message == "You've reached the limit of 3 actions per minute. Try again in 36 seconds."

    clock.advance(seconds=refused.retry_after_seconds - 1)
    assert not limiter.check("U1").allowed
    clock.advance(seconds=1)
    assert limiter.check("U1").allowed


def test_without_oldest_in_window_the_whole_period_is_quoted() -> None:
    actions, clock = FakeActions(), FakeClock()
    actions.record("U1", START - timedelta(minutes=59))

    decision = limiter_for(actions, clock, RateLimit(1, 3600), with_oldest=False).check("U1")

    assert decision == RateDecision(False, 3600, "You've reached the limit of 1 action per hour. Try again in 1 hour.")


def test_limit_is_per_user() -> None:
    actions, clock = FakeActions(), FakeClock()
    actions.record("UALICE", START)
    limiter = limiter_for(actions, clock, RateLimit(1, 86400))

    assert not limiter.check("UALICE").allowed
    assert limiter.check("UBOB").allowed


def test_retry_after_rounds_up_and_spells_out_hours_and_minutes() -> None:
    actions, clock = FakeActions(), FakeClock()
    # Leaves the window 22 h 29 min 30.5 s from now: seconds round up, and the message to whole minutes.
    actions.record("U1", START - timedelta(hours=1, minutes=30, seconds=29.5))

    decision = limiter_for(actions, clock, RateLimit(1, 86400)).check("U1")

    assert decision.retry_after_seconds == 22 * 3600 + 29 * 60 + 31
    assert decision.message == ("You've reached the limit of 1 action per day. Try again in 22 hours 30 minutes.")


def test_naive_timestamps_from_sqlite_are_taken_as_utc() -> None:
    actions, clock = FakeActions(), FakeClock()
    actions.record("U1", START - timedelta(seconds=30))

    def naive_oldest(user_id: str, since: datetime) -> datetime | None:
        oldest = actions.oldest_in_window(user_id, since)
        return oldest.replace(tzinfo=None) if oldest else None

    limiter = RateLimiter(RateLimit(1, 60), actions.count_recent, clock=clock, oldest_in_window=naive_oldest)

    assert limiter.check("U1").retry_after_seconds == 31


@pytest.mark.parametrize(
    ("oldest", "expected"),
    [
        # The counter and the oldest row disagree (rows just aged out): never "0 seconds".
        (START - timedelta(hours=2), 1),
        # A replica's clock ahead of ours: never more than a period.
        (START + timedelta(minutes=5), 3600),
    ],
)
def test_retry_after_is_clamped_to_one_second_and_one_period(oldest: datetime, expected: int) -> None:
    limiter = RateLimiter(
        RateLimit(1, 3600), lambda user_id, since: 5, clock=FakeClock(), oldest_in_window=lambda u, s: oldest
    )

    assert limiter.check("U1").retry_after_seconds == expected


def test_counter_failure_propagates_rather_than_allowing() -> None:
    def broken(user_id: str, since: datetime) -> int:
        raise ConnectionError("database is down")

    with pytest.raises(ConnectionError):
        RateLimiter(RateLimit(5, 60), broken).check("U1")

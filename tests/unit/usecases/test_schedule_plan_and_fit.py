"""The plan a `schedule` request is bound to, and the quota check that must not count a changed schedule twice."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from bot.usecases.errors import InvalidInput
from bot.usecases.schedule_fit import check_fits
from bot.usecases.schedule_plan import SchedulePlan
from bot.vps.models import ServerRef, Snapshot

PLAN = SchedulePlan(
    when="daily 02:30",
    timezone="Europe/Berlin",
    keep=3,
    on_full="skip",
    next_run=datetime(2026, 12, 1, 1, 30, tzinfo=UTC),
    change=True,
    revision=4,
    before_when="hourly",
    before_keep=2,
    before_on_full="rotate",
)


def test_a_plan_survives_its_stored_form_and_its_digest_binds_every_field() -> None:
    assert SchedulePlan.from_json(PLAN.to_json()) == PLAN
    digest = PLAN.digest(7, 12347)
    assert PLAN.digest(7, 12347) == digest
    for other in (
        replace(PLAN, revision=5),
        replace(PLAN, keep=2),
        replace(PLAN, when="daily 02:31"),
        replace(PLAN, on_full="rotate"),
        replace(PLAN, timezone="UTC"),
    ):
        assert other.digest(7, 12347) != digest
    assert PLAN.digest(8, 12347) != digest and PLAN.digest(7, 12346) != digest


@pytest.mark.parametrize("raw", [None, "", "{", "[]", '{"when": "hourly"}', '{"keep": "x"}'])
def test_an_unreadable_plan_is_none_never_an_exception(raw: str | None) -> None:
    assert SchedulePlan.from_json(raw) is None


@dataclass(frozen=True)
class Row:
    id: int
    keep: int
    on_full: str


class Store:
    """What the check reads: the server's enabled schedules and the snapshots each one's claims made."""

    def __init__(self, rows: list[Row], own: dict[int, frozenset[int]]) -> None:
        self.rows = rows
        self.own = own

    def enabled(self, *, server_id: int | None = None) -> list[Row]:
        return self.rows

    def own_snapshot_ids(self, schedule_id: int) -> frozenset[int]:
        return self.own.get(schedule_id, frozenset())


def snap(snapshot_id: int, name: str) -> Snapshot:
    return Snapshot(snapshot_id, ServerRef(12347, "cache-01"), name, "completed", 10, None)


def test_a_changed_schedule_counts_its_own_snapshots_and_its_new_keep_once() -> None:
    store = Store([Row(1, 2, "skip")], {1: frozenset({901, 902})})
    snapshots = [snap(901, "auto-1-20261130-1000"), snap(902, "auto-1-20261130-1100")]
    # keep 4 + 1 = 5: fits only when #1's own two are its own and its old reservation (3) is not added.
    check_fits(store, snapshots, server_id=12347, keep=4, on_full="skip", limit=5, changing=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="needs 5"):
        check_fits(store, snapshots, server_id=12347, keep=4, on_full="skip", limit=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="needs 6"):
        check_fits(store, snapshots, server_id=12347, keep=5, on_full="skip", limit=5, changing=1)  # type: ignore[arg-type]


def test_manual_snapshots_still_count_against_a_change() -> None:
    store = Store([Row(1, 2, "skip")], {1: frozenset({901})})
    snapshots = [snap(901, "auto-1-20261130-1000"), snap(950, "manual"), snap(951, "auto-1-typed-by-hand")]
    check_fits(store, snapshots, server_id=12347, keep=2, on_full="skip", limit=5, changing=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="2 snapshots no schedule owns"):
        check_fits(store, snapshots, server_id=12347, keep=3, on_full="skip", limit=5, changing=1)  # type: ignore[arg-type]

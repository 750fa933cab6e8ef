"""Retention never touches what is not the schedule's own: a property test over random mixes of snapshots.

Each generated server holds manual snapshots (some named exactly like the schedule's), other schedules' snapshots,
the schedule's own, and some of those named by open approval requests. Whatever the mix and `keep`:
- `surplus` and `rotation_victim` pick only the schedule's own (claimed id AND name prefix), never a protected one;
- what survives retention is at least the newest `keep` of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.usecases.retention import Ownership, rotation_victim, surplus
from bot.vps.models import ServerRef, Snapshot
from tests.budgets import examples

SCHEDULE = 7
T0 = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ("manual", "manual_lookalike", "other_schedule", "own", "own_protected", "claimed_but_renamed")


@st.composite
def servers(draw: st.DrawFn) -> tuple[list[Snapshot], Ownership, set[int]]:
    kinds = draw(st.lists(st.sampled_from(KINDS), max_size=12))
    snapshots: list[Snapshot] = []
    claimed: set[int] = set()
    protected: set[int] = set()
    own: set[int] = set()
    for index, kind in enumerate(kinds):
        sid = 100 + index
        created = T0 + timedelta(minutes=draw(st.integers(0, 10_000)))
        name = {
            "manual": f"manual-{index}",
            "manual_lookalike": f"auto-{SCHEDULE}-20260101-{index:04d}",  # our pattern, not our claim
            "other_schedule": f"auto-{SCHEDULE + 1}-20260101-{index:04d}",
            "own": f"auto-{SCHEDULE}-20260102-{index:04d}",
            "own_protected": f"auto-{SCHEDULE}-20260103-{index:04d}",
            "claimed_but_renamed": f"renamed-{index}",  # our claim, not our name
        }[kind]
        if kind in ("own", "own_protected", "claimed_but_renamed"):
            claimed.add(sid)
        if kind == "own_protected" or (kind != "own" and draw(st.booleans())):  # named by an open request
            protected.add(sid)
        if kind in ("own", "own_protected"):
            own.add(sid)
        snapshots.append(Snapshot(sid, ServerRef(1, "web"), name, "completed", 10, created))
    return snapshots, Ownership(SCHEDULE, frozenset(claimed), frozenset(protected)), own


@settings(max_examples=examples(200), deadline=None)
@given(servers(), st.integers(min_value=0, max_value=6))
def test_retention_only_ever_deletes_the_schedules_own_unprotected_snapshots(
    server: tuple[list[Snapshot], Ownership, set[int]], keep: int
) -> None:
    snapshots, ownership, own = server
    doomed = surplus(snapshots, ownership, keep)
    assert {s.id for s in doomed} <= own - ownership.protected_ids
    newest_own = sorted((s for s in snapshots if s.id in own), key=lambda s: (s.created_at, s.id), reverse=True)
    kept = {s.id for s in newest_own[:keep]}
    assert not kept & {s.id for s in doomed}
    victim = rotation_victim(snapshots, ownership)
    if victim is not None:
        assert victim.id in own and victim.id not in ownership.protected_ids
        deletable = [s for s in newest_own if s.id not in ownership.protected_ids]
        assert victim == deletable[-1]  # the oldest of its own
    else:
        assert not (own - ownership.protected_ids)

"""A pin protects its snapshot from the bot's own deletes (issue 29 §3): a schedule's retention skips it (driven by
the ticker with a settable clock) and "Free oldest snapshot first" never offers it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from bot.background import Ticker
from devkit.simulator import VpsSimulator
from tests.app_fixtures import ALICE, BOB, Harness
from tests.app_fixtures import SettableClock as Clock
from tests.scenario.test_safety_snapshot import APPROVALS, FREE, calls_in_order, fill_server, request_restore

NOTIFY = "C0NOTIFY"


def tick(h: Harness) -> None:
    Ticker(h.bot.core, h.bot.slack.announcer, 60).tick()
    h.settle()


def deleted_ids(h: Harness) -> list[int]:
    return [int(r.path.rstrip("/").split("/")[-1]) for r in h.mutating_calls() if r.method == "DELETE"]


def test_retention_never_deletes_a_pinned_snapshot(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_NOTIFY_CHANNEL=NOTIFY, SNAPSHOT_TIMEZONE="Europe/Berlin")
    h.bot.slack.notifier.min_interval = 0.0
    clock = Clock()
    h.bot.core.schedules.clock = clock
    h.bot.core.schedule_runner.clock = clock
    h.run("schedule 12347 hourly keep 1")
    clock.now += timedelta(hours=1)
    tick(h)  # takes auto-1-…-1000
    tick(h)  # completed: retention, nothing to delete yet
    first = h.bot.core.snapshots.find_snapshot(max(h.sim.snapshot_ids(12347)))
    assert first.name == "auto-1-20261130-1000"
    h.run(f"pin {first.id} the release build", user=BOB)

    for _ in range(2):  # two more slots: keep 1 would delete the pinned one at each
        clock.now += timedelta(hours=1)
        tick(h)
        tick(h)
    assert first.id not in deleted_ids(h)
    # Skipped, not attempted: no run reports a failed delete of it.
    assert not [m.visible_text for m in h.channel(NOTIFY) if "could not delete" in m.visible_text]
    assert len(deleted_ids(h)) == 1  # the unpinned 1100 went when 1200 completed; 1000 stays
    assert first.id in h.sim.snapshot_ids(12347)
    assert not [r for r in h.audit(action="delete.requested") if r.snapshot_id == first.id]

    h.run(f"unpin {first.id}", user=BOB)
    clock.now += timedelta(hours=1)
    tick(h)
    tick(h)
    assert first.id in deleted_ids(h)  # unpinned: the schedule's retention applies to it again


def test_free_oldest_never_offers_a_pinned_snapshot(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        sim=VpsSimulator(completion_delay=0), SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, RESTORE_SAFETY_SNAPSHOT="auto"
    )
    fill_server(h)  # 5 of 5 on server 12345: 798 (oldest), 801, 850, 851, 852
    h.run("pin 798 legal hold", user=ALICE)
    card = request_restore(h, 801)
    h.click(card, FREE, user=BOB)
    h.settle()
    assert calls_in_order(h)[0] == "DELETE 850"  # the oldest that is neither pinned nor the one to restore


def test_free_oldest_says_so_when_only_pinned_snapshots_could_go(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        sim=VpsSimulator(completion_delay=0), SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, RESTORE_SAFETY_SNAPSHOT="auto"
    )
    fill_server(h)
    for snapshot_id in (798, 850, 851, 852):
        h.run(f"pin {snapshot_id} keep", user=ALICE)
    card = request_restore(h, 801)
    h.click(card, FREE, user=BOB)
    h.settle()
    assert "No snapshot of this server can be freed" in h.last_ephemeral(BOB).visible_text
    assert "pinned" in h.last_ephemeral(BOB).visible_text
    assert h.mutating_calls() == []

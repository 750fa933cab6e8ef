"""A slot kept for the undo (issue 29 §2), driven as Slack drives the bot: signed `/snapshot` commands, the
ticker on a settable clock, the simulator's five snapshots per server. Schedules never take a server's last free
slot while restores take a safety snapshot (SNAPSHOT_RESERVE_UNDO_SLOT, default true); a manual create may, and
says what that costs; a schedule that no longer fits keeps running and says so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.background import Ticker
from tests.app_fixtures import ALICE, BOB, OPS, Harness
from tests.app_fixtures import SettableClock as Clock
from tests.scenario.test_home import open_home, text_of

NOTIFY = "C0NOTIFY"
CACHE = 12347  # cache-01: no snapshots in the simulator's seed
DB = 12346  # db-server-01: three manual snapshots in the seed


@pytest.fixture
def clock() -> Clock:
    return Clock()


def harness(make_harness: Callable[..., Harness], clock: Clock, **env: str) -> Harness:
    env.setdefault("RESTORE_SAFETY_SNAPSHOT", "auto")
    h = make_harness(SNAPSHOT_NOTIFY_CHANNEL=NOTIFY, SNAPSHOT_TIMEZONE="Europe/Berlin", **env)
    h.bot.slack.notifier.min_interval = 0.0
    h.bot.core.schedules.clock = clock
    h.bot.core.schedule_runner.clock = clock
    return h


def tick(h: Harness) -> None:
    Ticker(h.bot.core, h.bot.slack.announcer, 60).tick()
    h.settle()


def creates(h: Harness) -> list[str]:
    return [r.json["name"] for r in h.mutating_calls() if r.method == "POST" and r.path.endswith("/snapshots/")]


def run_hours(h: Harness, clock: Clock, hours: int) -> int:
    """Each hour's slot run (and its retention, in the same round: the simulator completes at once). Returns the
    most snapshots the server held at any moment, replayed from what VPS.org received in order."""
    for _ in range(hours):
        clock.now += timedelta(hours=1)
        tick(h)
        tick(h)
    held = peak = 0
    for call in h.mutating_calls():
        held += 1 if call.method == "POST" else -1
        peak = max(peak, held)
    return peak


def test_a_schedule_keeping_four_never_takes_the_fifth_slot(make_harness: Callable[..., Harness], clock: Clock) -> None:
    h = harness(make_harness, clock)
    h.run(f"schedule {CACHE} hourly keep 4 on_full=rotate")
    assert h.audit(action="schedule.created"), h.last_ephemeral().visible_text
    assert run_hours(h, clock, 6) == 4
    assert len(h.sim.snapshot_ids(CACHE)) == 4
    assert len(creates(h)) == 6  # every slot ran: the fifth and sixth rotated their oldest out first
    assert len([r for r in h.mutating_calls() if r.method == "DELETE"]) == 2


@pytest.mark.parametrize(
    "env",
    [{"SNAPSHOT_RESERVE_UNDO_SLOT": "false"}, {"RESTORE_SAFETY_SNAPSHOT": "off"}],
    ids=["setting-false", "no-safety-snapshot"],
)
def test_without_an_undo_slot_the_schedule_uses_all_five(
    make_harness: Callable[..., Harness], clock: Clock, env: dict[str, str]
) -> None:
    h = harness(make_harness, clock, **env)
    h.run(f"schedule {CACHE} hourly keep 4")  # on_full=skip: keep 4 needs 5, which fits only with no slot kept
    assert h.audit(action="schedule.created"), h.last_ephemeral().visible_text
    assert run_hours(h, clock, 5) == 5  # the fifth snapshot was taken, then retention went back to 4
    assert len(h.sim.snapshot_ids(CACHE)) == 4


def test_a_schedule_that_would_take_the_undo_slot_is_refused_and_says_why(
    make_harness: Callable[..., Harness], clock: Clock
) -> None:
    h = harness(make_harness, clock)
    h.run(f"schedule {CACHE} daily 02:30 keep 4")
    refusal = h.last_ephemeral().visible_text
    assert "kept free for a restore's safety snapshot" in refusal and "SNAPSHOT_RESERVE_UNDO_SLOT" in refusal
    assert "of the 5 VPS.org allows" in refusal and "`on_full=rotate`" in refusal
    h.run(f"schedule {DB} daily 02:30 keep 2 on_full=rotate")  # 3 manual + 2 + the undo slot = 6
    refusal = h.last_ephemeral().visible_text
    assert "3 snapshots no schedule owns" in refusal and "kept free" in refusal and "`keep 1` or less" in refusal
    assert h.audit(action="schedule.created") == []
    assert h.mutating_calls() == []
    h.run(f"schedule {DB} daily 02:30 keep 1 on_full=rotate")  # 3 + 1 + the undo slot = 5: fits
    assert len(h.audit(action="schedule.created")) == 1


def test_changing_a_schedule_must_leave_the_undo_slot(make_harness: Callable[..., Harness], clock: Clock) -> None:
    h = harness(make_harness, clock)
    h.run(f"schedule {CACHE} daily 02:30 keep 2")
    h.run("reschedule 1 daily 02:30 keep 4")
    refusal = h.last_ephemeral().visible_text
    assert "kept free for a restore's safety snapshot" in refusal
    h.run("schedules")
    assert "keep 2" in h.last_ephemeral().visible_text


def test_a_manual_create_may_take_the_last_slot_and_says_what_it_costs(
    make_harness: Callable[..., Harness], clock: Clock
) -> None:
    h = harness(make_harness, clock)
    h.run(f"create {DB} fourth")
    assert "last free snapshot slot" not in h.channel(OPS)[-1].visible_text
    h.run(f"create {DB} fifth", user=ALICE)
    said = h.channel(OPS)[-1].visible_text
    assert "started snapshot `fifth`" in said
    assert "takes the last free snapshot slot of `db-server-01`" in said and "next restore" in said
    assert len(h.sim.snapshot_ids(DB)) == 5


def test_no_warning_when_no_safety_snapshot_is_taken(make_harness: Callable[..., Harness], clock: Clock) -> None:
    h = harness(make_harness, clock, RESTORE_SAFETY_SNAPSHOT="off")
    h.run(f"create {DB} fourth")
    h.run(f"create {DB} fifth")
    said = h.channel(OPS)[-1].visible_text
    assert "started snapshot `fifth`" in said and "last free snapshot slot" not in said


def test_a_schedule_that_no_longer_fits_keeps_running_and_says_so(
    make_harness: Callable[..., Harness], clock: Clock
) -> None:
    h = harness(make_harness, clock)
    h.run(f"schedule {CACHE} hourly keep 3")  # 3 + the new one + the undo slot = 5: fits
    assert h.audit(action="schedule.created"), h.last_ephemeral().visible_text
    h.sim.add_snapshot(CACHE, "by-hand")  # now it does not
    clock.now += timedelta(hours=1)
    tick(h)
    assert creates(h) == ["auto-1-20261130-1000"]  # it still ran
    lines = [m.visible_text for m in h.channel(NOTIFY)]
    assert any("Schedule #1" in t and "does not fit any more" in t and "reschedule" in t for t in lines), lines
    h.run("schedules")
    listed = h.last_ephemeral().visible_text
    assert "Does not fit any more" in listed and "completed auto-1-20261130-1000" in listed
    assert "Does not fit any more" in text_of(open_home(h, ALICE))


def test_an_approved_schedule_must_still_leave_the_undo_slot(
    make_harness: Callable[..., Harness], clock: Clock
) -> None:
    h = harness(make_harness, clock, APPROVAL_REQUIRED_FOR="restore,delete", SNAPSHOT_APPROVAL_CHANNEL="C0APPROVE")
    h.bot.core.approvals.clock = clock
    h.run(f"schedule {CACHE} hourly keep 3")  # 3 + the new one + the undo slot = 5: may be asked for
    h.sim.add_snapshot(CACHE, "by-hand")  # 1 + 4 + 1 = 6 by the time it is approved
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    text = h.card().visible_text
    assert "not applied" in text and "no longer fits" in text and "kept free for a restore's safety snapshot" in text
    clock.now += timedelta(hours=2)
    tick(h)
    assert creates(h) == []


def test_a_skip_schedule_skips_rather_than_take_the_last_slot(
    make_harness: Callable[..., Harness], clock: Clock
) -> None:
    h = harness(make_harness, clock)
    h.run(f"schedule {CACHE} hourly keep 2")  # 2 + the new one + the undo slot = 4: fits
    for n in range(3):
        h.sim.add_snapshot(CACHE, f"by-hand-{n}")
    run_hours(h, clock, 2)
    assert creates(h) == ["auto-1-20261130-1000"]  # the second slot would have filled the server
    assert len(h.sim.snapshot_ids(CACHE)) == 4
    lines = [m.visible_text for m in h.channel(NOTIFY)]
    skipped = [t for t in lines if "skipped `auto-1-20261130-1100`" in t]
    assert skipped and "last free slot is kept for a restore's safety snapshot" in skipped[0]
    assert "does not fit any more" in skipped[0]
    [row] = h.audit(action="schedule.skipped")
    assert row.details["count"] == 4

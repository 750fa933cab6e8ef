"""What the "backups stopped" alert reads (ScheduleRunner.health, exported by bot.metrics): each enabled
schedule's newest completed snapshot against its longest gap between slots, the same from every replica."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from bot.usecases.schedule_runner import longest_gap
from tests.unit.factory import ALICE, Core, build_schedules

HOUR = timedelta(hours=1)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_last_success_is_the_newest_completed_slot_and_starts_when_the_schedule_does(core: Core) -> None:
    parts = build_schedules(core)
    schedule = parts.service.create(ALICE, 2, "hourly", "3", None).schedule
    [fresh] = parts.runner.health()
    assert fresh.schedule_id == schedule.id and fresh.longest_gap == HOUR
    assert fresh.last_success == schedule.created_at  # none yet: the alert's clock starts with the schedule

    core.clock.advance(HOUR)
    [started] = parts.runner.run_due()
    assert parts.runner.health()[0].last_success == schedule.created_at  # asked for, not completed: no success
    for sid, snap in list(core.vps.snapshots.items()):
        core.vps.snapshots[sid] = replace(snap, status="completed")
    parts.runner.run_due()  # retention after completion: the slot is kept
    [done] = parts.runner.health()
    assert done.last_success == started.slot_time

    other_replica = build_schedules(core, owner="replica-b")
    assert other_replica.runner.health() == [done]

    metrics = Metrics()
    metrics.schedules((h.schedule_id, h.last_success, h.longest_gap) for h in parts.runner.health())
    label = (("schedule_id", str(schedule.id)),)
    found = samples(metrics)
    assert found[("snapshot_bot_schedule_last_success_timestamp_seconds", label)] == started.slot_time.timestamp()
    assert found[("snapshot_bot_schedule_longest_gap_seconds", label)] == 3600
    assert found[("snapshot_bot_schedule_enabled", label)] == 1
    metrics.schedules([])  # disabled or deleted: reported as such, so its alert stops
    assert samples(metrics)[("snapshot_bot_schedule_enabled", label)] == 0


def test_the_longest_gap_of_a_weekday_schedule_is_the_weekend(core: Core) -> None:
    from zoneinfo import ZoneInfo

    gap = longest_gap("cron 0 2 * * 1-5", core.clock(), ZoneInfo("UTC"))
    assert gap == timedelta(days=3)


def test_build_info_names_the_installed_version() -> None:
    from bot.version import version

    found = samples(Metrics())
    [(labels, value)] = [(dict(k[1]), v) for k, v in found.items() if k[0] == "snapshot_bot_build_info"]
    assert labels["version"] == version() and labels["version"] != "unknown" and value == 1

"""Two replicas on one database (SQLite file and PostgreSQL schema), ticking at the same moment: each slot gets
exactly one snapshot, and retention after it runs once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.usecases.schedule_runner import RunKind, ScheduleEvent
from storage.db import Database
from tests.unit.factory import ALICE, Core, ScheduleParts, build_core, build_schedules


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[Core, ScheduleParts, ScheduleParts]]:
    first_db = Database(database_url)
    first_db.upgrade()
    second_db = Database(database_url)
    core = build_core(first_db)
    yield core, build_schedules(core, owner="replica-a"), build_schedules(core, owner="replica-b", db=second_db)
    first_db.dispose()
    second_db.dispose()


def tick_together(*runners: ScheduleParts) -> list[ScheduleEvent]:
    barrier = threading.Barrier(len(runners))
    found: list[ScheduleEvent] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(parts: ScheduleParts) -> None:
        try:
            barrier.wait(timeout=10)
            events = parts.runner.run_due()
        except BaseException as error:  # handed to the test thread
            errors.append(error)
            return
        with lock:
            found.extend(events)

    threads = [threading.Thread(target=run, args=(p,)) for p in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return found


def test_two_replicas_ticking_together_take_one_snapshot_per_slot(
    replicas: tuple[Core, ScheduleParts, ScheduleParts],
) -> None:
    core, a, b = replicas
    sid = a.service.create(ALICE, 2, "hourly", "2", "rotate").schedule.id
    started: list[str] = []
    retained = 0
    for _ in range(6):
        core.clock.advance(timedelta(hours=1))
        started += [e.snapshot_name for e in tick_together(a, b) if e.kind is RunKind.STARTED]
        for snap_id, snap in list(core.vps.snapshots.items()):
            core.vps.snapshots[snap_id] = replace(snap, status="completed")
        retained += len([e for e in tick_together(a, b) if e.kind is RunKind.RETAINED])
    expected = [f"auto-{sid}-20260201-{hour:02d}00" for hour in range(10, 16)]
    assert started == expected
    assert [args[1] for name, args in core.vps.calls if name == "create_snapshot"] == expected
    assert retained == 6
    remaining = sorted(s.name for s in core.vps.snapshots.values() if s.server.id == 2)
    assert remaining == expected[-2:]
    deletes = [args for name, args in core.vps.calls if name == "delete_snapshot"]
    assert len(deletes) == 4 == len(set(deletes))  # each older one deleted once, by one replica


def test_a_restart_after_the_claim_takes_no_second_snapshot_and_catches_up_once(
    replicas: tuple[Core, ScheduleParts, ScheduleParts], database_url: str
) -> None:
    core, a, _ = replicas
    sid = a.service.create(ALICE, 2, "every 2h", "3", None).schedule.id
    core.clock.advance(timedelta(hours=2))
    assert [e.kind for e in a.runner.run_due()] == [RunKind.STARTED]
    restarted_db = Database(database_url)  # the process restarts: a new connection, a new owner
    try:
        restarted = build_schedules(core, owner="after-restart", db=restarted_db)
        assert restarted.runner.run_due() == []
        core.clock.advance(timedelta(hours=9))  # down from 11:00 to 20:00: the slots 12:00 … 20:00 missed
        assert [e.snapshot_name for e in restarted.runner.run_due()] == [f"auto-{sid}-20260201-2000"]
        assert restarted.runner.run_due() == []
    finally:
        restarted_db.dispose()
    assert len([c for c in core.vps.calls if c[0] == "create_snapshot"]) == 2

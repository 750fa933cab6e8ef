"""Running schedules with a controllable clock: one snapshot per slot (also after a restart), one catch-up after
downtime, the audited create and delete paths as the system on behalf of the creator, retention, a full server."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.usecases.errors import InvalidInput, Refused
from bot.usecases.schedule_runner import RunKind
from bot.vps.errors import Unavailable
from storage.db import Database
from tests.unit.factory import ALICE, Core, ScheduleParts, build_schedules

HOUR = timedelta(hours=1)


@pytest.fixture
def parts(core: Core) -> ScheduleParts:
    return build_schedules(core)


def complete_all(core: Core) -> None:
    for sid, snap in list(core.vps.snapshots.items()):
        core.vps.snapshots[sid] = replace(snap, status="completed")


def creates(core: Core) -> list[tuple[object, ...]]:
    return [args for name, args in core.vps.calls if name == "create_snapshot"]


def test_a_due_slot_takes_one_snapshot_named_for_its_slot_audited_as_the_system_for_the_creator(
    core: Core, parts: ScheduleParts
) -> None:
    view = parts.service.create(ALICE, 2, "hourly", "2", None)
    assert parts.runner.run_due() == []  # created at 09:00: the 09:00 slot is not its own
    core.clock.advance(HOUR)
    events = parts.runner.run_due()
    assert [(e.kind, e.snapshot_name) for e in events] == [(RunKind.STARTED, f"auto-{view.schedule.id}-20260201-1000")]
    assert creates(core) == [(2, f"auto-{view.schedule.id}-20260201-1000", f"schedule #{view.schedule.id}")]
    assert parts.runner.run_due() == []  # same slot again: nothing
    intent = core.audit.query(action="create.requested")[0]
    assert intent.actor_id == "system" and intent.actor_name == f"schedule #{view.schedule.id}"
    assert intent.details["on_behalf_of"] == ALICE.user_id and intent.details["schedule_id"] == view.schedule.id
    assert intent.details["slot"] == "2026-02-01T10:00Z"
    assert "create.succeeded" in core.actions()
    assert [op.snapshot_name for op in parts.tracking.active()] == [f"auto-{view.schedule.id}-20260201-1000"]


def test_a_restarted_process_does_not_take_the_slot_again(core: Core, parts: ScheduleParts) -> None:
    parts.service.create(ALICE, 2, "hourly", "3", None)
    core.clock.advance(HOUR)
    assert len(parts.runner.run_due()) == 1
    restarted = build_schedules(core, owner="replica-after-restart", db=Database(str(core.db.engine.url)))
    assert restarted.runner.run_due() == []
    assert len(creates(core)) == 1


def test_downtime_gives_one_catch_up_run_for_the_newest_missed_slot(core: Core, parts: ScheduleParts) -> None:
    view = parts.service.create(ALICE, 2, "hourly", "3", None)
    core.clock.advance(10 * HOUR + timedelta(minutes=25))  # ten slots missed
    events = parts.runner.run_due()
    assert [e.snapshot_name for e in events] == [f"auto-{view.schedule.id}-20260201-1900"]
    assert parts.runner.run_due() == []
    assert len(creates(core)) == 1


def test_retention_keeps_the_newest_n_own_and_never_a_manual_one_named_like_ours(
    core: Core, parts: ScheduleParts
) -> None:
    sid = parts.service.create(ALICE, 2, "hourly", "2", "rotate").schedule.id
    # A manual snapshot with a name in the schedule's own pattern: not its claim's, so never touched.
    core.vps.add_snapshot(700, 2, f"auto-{sid}-20200101-0000")
    taken = []
    for _ in range(4):
        core.clock.advance(HOUR)
        taken += [e.snapshot_name for e in parts.runner.run_due() if e.kind is RunKind.STARTED]
        complete_all(core)
        parts.runner.run_due()  # retention after completion
    names = sorted(s.name for s in core.vps.snapshots.values() if s.server.id == 2)
    assert names == sorted([f"auto-{sid}-20200101-0000", *taken[-2:]])
    deletes = core.audit.query(action="delete.succeeded")
    assert len(deletes) == 2 and all(d.actor_id == "system" for d in deletes)
    assert all(d.details["on_behalf_of"] == ALICE.user_id and d.details["reason"] == "keep" for d in deletes)


def test_a_full_server_with_skip_skips_the_slot_and_says_why(core: Core, parts: ScheduleParts) -> None:
    parts.service.create(ALICE, 2, "hourly", "1", "skip")
    for n in range(5):
        core.vps.add_snapshot(710 + n, 2, f"manual-{n}")
    core.clock.advance(HOUR)
    [event] = parts.runner.run_due()
    assert event.kind is RunKind.SKIPPED and "full" in event.message
    assert creates(core) == []
    assert core.audit.query(action="schedule.skipped")[0].details["on_behalf_of"] == ALICE.user_id
    assert "skipped" in parts.store.enabled()[0].last_result


def test_a_full_server_with_rotate_deletes_the_schedules_own_oldest_first(core: Core, parts: ScheduleParts) -> None:
    sid = parts.service.create(ALICE, 2, "hourly", "2", "rotate").schedule.id
    for _ in range(2):
        core.clock.advance(HOUR)
        parts.runner.run_due()
        complete_all(core)
        parts.runner.run_due()
    own = sorted(s.id for s in core.vps.snapshots.values() if s.server.id == 2)
    for n in range(3):  # the server fills up with manual snapshots
        core.vps.add_snapshot(720 + n, 2, f"manual-{n}")
    core.clock.advance(HOUR)
    [event] = parts.runner.run_due()
    assert event.kind is RunKind.STARTED and event.deleted == (f"auto-{sid}-20260201-1000",)
    assert own[0] not in core.vps.snapshots and {720, 721, 722} <= set(core.vps.snapshots)


def test_a_failed_create_is_reported_and_the_slot_is_not_retried(core: Core, parts: ScheduleParts) -> None:
    parts.service.create(ALICE, 2, "hourly", "2", None)
    core.clock.advance(HOUR)
    core.vps.fail_next("create_snapshot", Unavailable("VPS.org is down", status_code=503))
    [event] = parts.runner.run_due()
    assert event.kind is RunKind.FAILED
    assert parts.runner.run_due() == []
    assert "create.failed" in core.actions()


def test_a_snapshot_named_by_an_open_restore_request_is_kept(core: Core, parts: ScheduleParts) -> None:
    sid = parts.service.create(ALICE, 2, "hourly", "1", "rotate").schedule.id
    core.clock.advance(HOUR)
    parts.runner.run_due()
    complete_all(core)
    parts.runner.run_due()
    [first] = [s for s in core.vps.snapshots.values() if s.server.id == 2]
    core.approvals.request(ALICE, first.id)
    core.clock.advance(HOUR)
    parts.runner.run_due()
    complete_all(core)
    parts.runner.run_due()
    assert first.id in core.vps.snapshots  # protected by the open request
    assert len([s for s in core.vps.snapshots.values() if s.name.startswith(f"auto-{sid}-")]) == 2


def test_creation_refuses_what_runs_too_often_or_cannot_fit(core: Core, parts: ScheduleParts) -> None:
    with pytest.raises(InvalidInput, match="at most every 1 hour"):
        parts.service.create(ALICE, 2, "cron */10 * * * *", "2", None)
    for n in range(3):
        core.vps.add_snapshot(730 + n, 2, f"manual-{n}")
    with pytest.raises(InvalidInput, match="3 snapshots no schedule owns"):
        parts.service.create(ALICE, 2, "daily 02:00", "2", "skip")  # 3 + 2 + 1 > 5
    assert parts.service.create(ALICE, 2, "daily 02:00", "2", "rotate").schedule.keep == 2  # 3 + 2 = 5
    assert parts.store.enabled()[0].on_full == "rotate"
    assert [r.details["operation"] for r in core.audit.query(action="refused.validation")] == ["schedule"] * 2


def test_a_schedule_needing_approval_is_refused_when_no_approvals_are_wired(core: Core) -> None:
    parts = build_schedules(core, deletes_need_approval=True)  # the bot always wires them (tests/scenario/…)
    with pytest.raises(Refused, match="approvals are not set up"):
        parts.service.create(ALICE, 2, "daily 02:00", "2", None)
    assert parts.store.enabled() == []


def test_unscheduled_schedules_stop_running(core: Core, parts: ScheduleParts) -> None:
    view = parts.service.create(ALICE, 2, "hourly", "2", None)
    parts.service.remove(ALICE, view.schedule.id)
    core.clock.advance(3 * HOUR)
    assert parts.runner.run_due() == []
    assert "schedule.removed" in core.actions()


def test_a_schedule_made_before_deletes_needed_approval_deletes_nothing_after(core: Core) -> None:
    before = build_schedules(core)
    before.service.create(ALICE, 2, "hourly", "1", "rotate")
    core.clock.advance(HOUR)
    before.runner.run_due()
    complete_all(core)
    before.runner.run_due()
    after = build_schedules(core, deletes_need_approval=True)  # APPROVAL_REQUIRED_FOR=restore,delete since
    core.clock.advance(HOUR)
    after.runner.run_due()
    complete_all(core)
    [event] = after.runner.run_due()
    assert event.kind is RunKind.RETENTION_FAILED and "APPROVAL_REQUIRED_FOR" in event.message
    for n in range(3):
        core.vps.add_snapshot(740 + n, 2, f"manual-{n}")
    core.clock.advance(HOUR)
    [skipped] = after.runner.run_due()
    assert skipped.kind is RunKind.SKIPPED and "deletes are paused" in skipped.message
    assert [name for name, _ in core.vps.calls if name == "delete_snapshot"] == []

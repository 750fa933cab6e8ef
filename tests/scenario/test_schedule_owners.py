"""Changing or removing a schedule is for its creator or an admin (issue 29 §7), not for anyone with the `schedule`
permission: typed commands and the Change button, as signed requests; refusals are clear, audited, change
nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.app_fixtures import ALICE, BOB, CAROL, OPS, Harness


@pytest.fixture
def h(make_harness: Callable[..., Harness]) -> Harness:
    harness = make_harness(SNAPSHOT_OPERATORS=f"{ALICE},{BOB}", SNAPSHOT_ADMINS=CAROL)
    harness.run("schedule 12347 daily 02:30 keep 2", user=ALICE)
    assert harness.actions(action="schedule.created") == ["schedule.created"]
    return harness


def schedule_row(h: Harness) -> tuple[str, int, bool]:
    row = h.bot.core.schedules.store.get(1)
    assert row is not None
    return row.when_spec, row.keep, row.enabled


def ownership_refusals(h: Harness) -> list[tuple[str, str, int, str]]:
    return [
        (r.actor_id, r.details["operation"], r.details["schedule_id"], r.details["created_by"])
        for r in reversed(h.audit(action="refused.permission"))
        if r.details.get("permission") == "schedule.others"
    ]


def test_another_operator_may_not_change_or_remove_a_schedule(h: Harness) -> None:
    h.run("reschedule 1 daily 04:00 keep 1", user=BOB)
    changing = h.last_ephemeral(BOB).visible_text
    assert "Schedule #1 was made by" in changing and ALICE in changing
    assert "only they or an admin can change or remove it. Nothing was changed." in changing

    h.run("unschedule 1", user=BOB)
    assert "only they or an admin can change or remove it" in h.last_ephemeral(BOB).visible_text

    assert schedule_row(h) == ("daily 02:30", 2, True)
    assert h.audit(action="schedule.changed") == [] and h.audit(action="schedule.removed") == []
    assert ownership_refusals(h) == [(BOB, "reschedule", 1, ALICE), (BOB, "unschedule", 1, ALICE)]


def test_the_change_button_opens_no_form_for_another_operator(h: Harness) -> None:
    h.driver.block_action("schedule_change", "1", user_id=BOB, channel_id=OPS)
    h.settle()
    assert "only they or an admin can change or remove it" in h.last_ephemeral(BOB).visible_text
    assert h.slack.calls_to("views.open") == []
    assert ownership_refusals(h) == [(BOB, "reschedule", 1, ALICE)]


def test_the_creator_and_an_admin_may(h: Harness) -> None:
    h.run("reschedule 1 daily 04:00 keep 1", user=ALICE)
    assert schedule_row(h) == ("daily 04:00", 1, True)
    h.run("reschedule 1 daily 05:00 keep 2", user=CAROL)
    assert schedule_row(h) == ("daily 05:00", 2, True)
    h.run("unschedule 1", user=CAROL)
    assert schedule_row(h)[2] is False
    assert [r.actor_id for r in reversed(h.audit(action="schedule.changed"))] == [ALICE, CAROL]
    assert [r.actor_id for r in h.audit(action="schedule.removed")] == [CAROL]
    assert ownership_refusals(h) == []

"""Schedules driven the way Slack drives them (issue 18 §2, §3): `/snapshot schedule`, `schedules`, `unschedule`
and the form as signed requests; runs by the ticker with a controllable clock against the simulator; what people
see in Slack and what VPS.org received."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.background import Ticker
from tests.app_fixtures import ALICE, BOB, OPS, Harness
from tests.app_fixtures import SettableClock as Clock

NOTIFY = "C0NOTIFY"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def h(make_harness: Callable[..., Harness], clock: Clock) -> Harness:
    harness = make_harness(SNAPSHOT_NOTIFY_CHANNEL=NOTIFY, SNAPSHOT_TIMEZONE="Europe/Berlin")
    harness.bot.slack.notifier.min_interval = 0.0
    harness.bot.core.schedules.clock = clock
    harness.bot.core.schedule_runner.clock = clock
    return harness


def tick(h: Harness) -> None:
    Ticker(h.bot.core, h.bot.slack.announcer, 60).tick()
    h.settle()


def creates(h: Harness) -> list[str]:
    return [r.json["name"] for r in h.mutating_calls() if r.method == "POST" and r.path.endswith("/snapshots/")]


def test_schedule_list_and_unschedule(h: Harness) -> None:
    h.run("schedule 12347 daily 02:30 keep 2")
    announced = h.channel(OPS)[-1].visible_text
    assert "Schedule #1" in announced and "`cache-01`" in announced and "`daily 02:30`" in announced
    assert "Next run: 2026-12-01 02:30 CET" in announced
    assert any("Schedule #1" in m.visible_text for m in h.channel(NOTIFY))
    created = h.audit(action="schedule.created")
    assert len(created) == 1 and created[0].actor_id == ALICE
    assert created[0].details == {
        "schedule_id": 1,
        "when": "daily 02:30",
        "timezone": "Europe/Berlin",
        "keep": 2,
        "on_full": "skip",
    }

    h.run("schedules", user=BOB)
    listing = h.last_ephemeral(BOB).visible_text
    assert "#1" in listing and "Next run: 2026-12-01 02:30 CET" in listing and "not run yet" in listing

    h.run("unschedule 1")
    assert "removed schedule #1" in h.channel(OPS)[-1].visible_text
    h.run("schedules")
    assert "No schedules" in h.last_ephemeral().visible_text
    assert h.actions(action="schedule.removed") == ["schedule.removed"]
    assert h.mutating_calls() == []  # nothing reached VPS.org


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("schedule 12347 every 5m keep 2", "at most every 1 hour ("),
        ("schedule 12347 cron */10 * * * * keep 2", "at most every 1 hour ("),
        ("schedule 12347 sometimes keep 2", "I don't understand"),
        ("schedule 12347 daily 02:30 keep 9", "at most 5"),
        ("schedule 12348 daily 02:30 keep 1", "5 snapshots no schedule owns"),  # staging-01 is full
        ("schedule 99999 daily 02:30 keep 1", "does not exist"),
        ("schedule 12347 daily 02:30", "needs a server id, a time and `keep &lt;n&gt;`"),
        ("schedule 12347 daily 02:30 keep 2 on_full=never", "on_full=skip"),
        ("unschedule 7", "no schedule #7"),
    ],
)
def test_bad_schedules_get_a_clear_answer_and_change_nothing(h: Harness, text: str, words: str) -> None:
    response = h.run(text)
    answer = response.json().get("text", "") if response.body else h.last_ephemeral().visible_text
    assert words in answer
    h.run("schedules")
    assert "No schedules" in h.last_ephemeral().visible_text
    assert h.mutating_calls() == []


def test_scheduling_is_a_permission_operators_have(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_OPERATORS=ALICE, SNAPSHOT_VIEWERS=BOB)
    h.run("schedule 12347 daily 02:30 keep 2", user=BOB)
    assert "operator" in h.last_ephemeral(BOB).visible_text
    assert h.audit(action="refused.permission")[0].details["permission"] == "schedule"
    h.run("schedules", user=BOB)
    assert "No schedules" in h.last_ephemeral(BOB).visible_text
    h.run("schedule 12347 daily 02:30 keep 2", user=ALICE)
    assert h.actions(action="schedule.created") == ["schedule.created"]


def test_the_schedule_form_is_refused_in_words_to_who_may_not_schedule(make_harness: Callable[..., Harness]) -> None:
    """`/snapshot schedule` alone opens the form; a viewer is told why not (it once raised a TypeError instead:
    a use case's Text added to Mrkdwn, found by mypy), and no form opens."""
    h = make_harness(SNAPSHOT_OPERATORS=ALICE, SNAPSHOT_VIEWERS=BOB)
    h.run("schedule", user=BOB, channel=OPS)
    refusal = h.last_ephemeral(BOB).visible_text
    assert refusal.startswith(":warning: You need the *operator* role")
    assert h.slack.calls_to("views.open") == []


def test_the_ticker_runs_a_slot_once_follows_it_and_keeps_the_newest(h: Harness, clock: Clock) -> None:
    h.run("schedule 12347 hourly keep 1 on_full=rotate")
    clock.now += timedelta(hours=1)
    tick(h)
    assert creates(h) == ["auto-1-20261130-1000"]
    tick(h)  # completed (the simulator completes at once): retention, nothing to delete yet
    clock.now += timedelta(hours=1)
    tick(h)
    tick(h)
    assert creates(h) == ["auto-1-20261130-1000", "auto-1-20261130-1100"]
    deletes = [r.path for r in h.mutating_calls() if r.method == "DELETE"]
    assert len(deletes) == 1
    assert any("Deleted: `auto-1-20261130-1000`" in m.visible_text for m in h.channel(NOTIFY))
    h.run("schedules")
    assert "completed auto-1-20261130-1100" in h.last_ephemeral().visible_text
    delete_rows = h.audit(action="delete.succeeded")
    assert delete_rows[0].actor_id == "system" and delete_rows[0].details["on_behalf_of"] == ALICE


def test_a_skipped_slot_is_said_in_the_notification_channel(h: Harness, clock: Clock) -> None:
    h.run("schedule 12347 hourly keep 1")
    for n in range(5):
        h.sim.add_snapshot(12347, f"manual-{n}")
    clock.now += timedelta(hours=1)
    tick(h)
    assert creates(h) == []
    lines = [m.visible_text for m in h.channel(NOTIFY)]
    assert any("Schedule #1" in t and "skipped `auto-1-20261130-1000`" in t and "full" in t for t in lines)


def test_a_failed_slot_is_said_in_the_notification_channel(h: Harness, clock: Clock) -> None:
    h.run("schedule 12347 hourly keep 2")
    h.sim.faults.fail_next(500, methods=["POST"])
    clock.now += timedelta(hours=1)
    tick(h)
    lines = [m.visible_text for m in h.channel(NOTIFY)]
    assert any(":x: Schedule #1" in t and "could not take `auto-1-20261130-1000`" in t for t in lines)
    clock.now += timedelta(minutes=10)
    tick(h)
    assert len([r for r in h.mutating_calls() if r.method == "POST"]) == 1  # the failed slot is not retried


def test_schedule_without_arguments_opens_the_form_which_validates_inline(h: Harness) -> None:
    assert h.command("schedule").status == 200
    view = h.slack.wait_for("views.open")[-1].args["view"]
    assert view["callback_id"] == "create_schedule"

    def submit(when: str, keep: str, on_full: str) -> dict[str, object]:
        state = {
            "server": {"value": {"type": "plain_text_input", "value": "12347"}},
            "when": {"value": {"type": "plain_text_input", "value": when}},
            "keep": {"value": {"type": "plain_text_input", "value": keep}},
            "on_full": {"value": {"type": "static_select", "selected_option": {"value": on_full}}},
        }
        answer = h.driver.view_submission(
            "create_schedule", state, user_id=ALICE, private_metadata=view["private_metadata"]
        )
        assert answer.status == 200
        return answer.json() if answer.body else {}

    bad = submit("every 10m", "2", "skip")
    assert bad["response_action"] == "errors" and "1 hour" in bad["errors"]["when"]
    assert submit("weekly mon 03:00", "2", "rotate") == {}
    h.settle()
    assert (
        "`weekly mon 03:00`" in h.channel(OPS)[-1].visible_text and "on_full=rotate" in h.channel(OPS)[-1].visible_text
    )


def test_help_lists_the_schedule_commands(h: Harness) -> None:
    help_text = h.command("help").json()["blocks"][0]["text"]["text"]
    assert (
        "/snapshot schedule" in help_text and "/snapshot schedules" in help_text and "/snapshot unschedule" in help_text
    )


def test_a_scheduled_snapshot_completing_is_told_in_the_schedules_channel_and_dms_nobody(
    make_harness: Callable[..., Harness], clock: Clock
) -> None:
    h = make_harness()  # no SNAPSHOT_NOTIFY_CHANNEL: the channel where the schedule was made hears about it
    h.bot.core.schedules.clock = clock
    h.bot.core.schedule_runner.clock = clock
    h.run("schedule 12347 hourly keep 2")
    clock.now += timedelta(hours=1)
    tick(h)
    h.bot.slack.announcer.tracked(h.bot.core.tracking.poll_once(force=True))  # followed to its end
    h.settle()
    assert any("auto-1-20261130-1000" in m.visible_text and "is ready" in m.visible_text for m in h.channel(OPS))
    assert not [c for c in h.slack.calls if c.method == "chat.postMessage" and c.args.get("channel") == "system"]


def test_the_schedule_form_offers_the_servers_as_the_create_form_does(h: Harness) -> None:
    assert h.command("schedule").status == 200
    view = h.slack.wait_for("views.open")[-1].args["view"]
    (server,) = [b for b in view["blocks"] if b.get("block_id") == "server"]
    assert server["element"]["type"] == "external_select" and server["element"]["action_id"] == "create_server"

    typed = h.driver.block_suggestion("create_server", "cache", user_id=ALICE, block_id="server", view=view)
    labels = [o["text"]["text"] for o in typed.json()["options"]]
    assert labels and all("cache-01" in label for label in labels), labels

    state = {
        "server": {"create_server": {"type": "external_select", "selected_option": {"value": "12347"}}},
        "when": {"value": {"type": "plain_text_input", "value": "daily 02:30"}},
        "keep": {"value": {"type": "plain_text_input", "value": "2"}},
        "on_full": {"value": {"type": "static_select", "selected_option": {"value": "skip"}}},
    }
    answer = h.driver.view_submission(
        "create_schedule", state, user_id=ALICE, private_metadata=view["private_metadata"]
    )
    assert answer.status == 200 and not answer.body
    h.settle()
    assert "cache-01" in h.channel(OPS)[-1].visible_text and "`daily 02:30`" in h.channel(OPS)[-1].visible_text

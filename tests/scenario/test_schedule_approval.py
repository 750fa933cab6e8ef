"""Schedules while APPROVAL_REQUIRED_FOR includes `delete` (issue 18 §3), and changing a schedule in place, driven
the way Slack drives them: a `schedule` request with its card in the approval channel, approved, rejected,
cancelled, expired or gone stale; `/snapshot reschedule` with and without delete approvals; the ticker running
the approved schedule with a controllable clock, its retention deleting without a card per delete."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from bot.background import Ticker
from devkit.fake_slack import FakeMessage
from devkit.fake_slack.blocks import blocks_text
from tests.app_fixtures import ALICE, APPROVALS, BOB, CAROL, OPS, Harness
from tests.app_fixtures import SettableClock as Clock

NOTIFY = "C0NOTIFY"
DELETES_NEED_APPROVAL = {
    "APPROVAL_REQUIRED_FOR": "restore,delete",
    "SNAPSHOT_APPROVAL_CHANNEL": APPROVALS,
    "RESTORE_APPROVAL_TTL_MINUTES": "180",  # a slot can pass while a request waits
}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def harness(make_harness: Callable[..., Harness], clock: Clock, **env: Any) -> Harness:
    h = make_harness(SNAPSHOT_NOTIFY_CHANNEL=NOTIFY, SNAPSHOT_TIMEZONE="Europe/Berlin", **env)
    h.bot.slack.notifier.min_interval = 0.0
    h.bot.core.schedules.clock = clock
    h.bot.core.schedule_runner.clock = clock
    h.bot.core.approvals.clock = clock  # when a request expires, and when an approved schedule takes effect
    return h


@pytest.fixture
def h(make_harness: Callable[..., Harness], clock: Clock) -> Harness:
    return harness(make_harness, clock, **DELETES_NEED_APPROVAL)


def tick(h: Harness) -> None:
    Ticker(h.bot.core, h.bot.slack.announcer, 60).tick()
    h.settle()


def creates(h: Harness) -> list[str]:
    return [r.json["name"] for r in h.mutating_calls() if r.method == "POST" and r.path.endswith("/snapshots/")]


def deletes(h: Harness) -> list[str]:
    return [r.path for r in h.mutating_calls() if r.method == "DELETE"]


def cards(h: Harness) -> list[FakeMessage]:
    return [m for m in h.channel(APPROVALS) if "request #" in m.visible_text and m.thread_ts in (None, m.ts)]


def listing(h: Harness, user: str = ALICE) -> str:
    h.run("schedules", user=user)
    return h.last_ephemeral(user).visible_text


def reject(h: Harness, card: FakeMessage, user: str, reason: str) -> None:
    h.click(card, "Reject", user=user)
    opened = h.slack.wait_for("views.open")[-1].args["view"]
    h.driver.view_submission(
        opened["callback_id"],
        {"reason": {"value": {"type": "plain_text_input", "value": reason}}},
        user_id=user,
        private_metadata=opened["private_metadata"],
    )
    h.settle()


def test_a_schedule_is_approved_once_then_runs_and_deletes_without_a_card(h: Harness, clock: Clock) -> None:
    h.run("schedule 12347 hourly keep 1 on_full=rotate")
    card = h.card()
    text = card.visible_text
    for expected in (
        "Schedule request #1",
        f"<@{ALICE}>",
        "`cache-01` (id 12347)",
        "`hourly` (Europe/Berlin) · next run 2026-11-30 11:00 CET",
        "the newest 1",
        "rotate",
        "without a card per delete",
        "Expires",
    ):
        assert expected in text, expected
    assert "Your schedule request #1 is waiting for approval" in h.last_ephemeral(ALICE).visible_text
    assert "Waiting for approval" in listing(h)
    h.run("reschedule 1 daily 02:30 keep 1")
    assert "still waiting for its approval" in h.last_ephemeral().visible_text
    assert h.actions(action="schedule.approval_requested") == ["schedule.approval_requested"]
    assert h.actions(action="schedule.created") == []

    clock.now += timedelta(hours=1)
    tick(h)
    assert creates(h) == []  # stored, not run, until approved

    h.click(card, "Approve", user=ALICE)
    h.settle()
    assert "can't approve your own request" in h.last_ephemeral(ALICE).visible_text
    assert "refused.self_approval" in h.actions()

    h.click(card, "Approve", user=BOB)
    h.settle()
    approved = h.card().visible_text
    assert f"Approved by <@{BOB}>" in approved and "applied" in approved
    assert "Schedule #1 is on: `hourly` (Europe/Berlin)" in approved and "next run 2026-11-30 12:00 CET" in approved
    assert not any(b.get("type") == "actions" for b in h.card().blocks)  # buttons gone
    [executed] = h.audit(action="schedule.approval_executed")
    assert executed.actor_id == BOB and executed.request_id == 1 and executed.snapshot_id is None
    assert executed.details["after"] == {"when": "hourly", "timezone": "Europe/Berlin", "keep": 1, "on_full": "rotate"}
    thread = [m for m in h.channel(APPROVALS) if m.thread_ts == card.ts]
    assert thread and "approved" in thread[-1].text and f"<@{ALICE}>" in thread[-1].text

    tick(h)
    assert creates(h) == []  # no slot from before the approval
    clock.now += timedelta(hours=1)
    tick(h)
    tick(h)
    clock.now += timedelta(hours=1)
    tick(h)
    tick(h)
    assert creates(h) == ["auto-1-20261130-1100", "auto-1-20261130-1200"]
    assert len(deletes(h)) == 1  # retention deleted the older one …
    assert len(cards(h)) == 1  # … without a card of its own
    [deleted] = h.audit(action="delete.succeeded")
    assert deleted.actor_id == "system" and deleted.details["on_behalf_of"] == ALICE
    assert any("Deleted: `auto-1-20261130-1100`" in m.visible_text for m in h.channel(NOTIFY))
    assert "Deletes paused" not in listing(h)


def test_app_home_lists_an_open_schedule_request_with_its_buttons(h: Harness) -> None:
    h.run("schedule 12347 daily 02:30 keep 2")
    published = len(h.slack.calls_to("views.publish"))
    assert h.driver.app_home_opened(BOB).status == 200
    h.slack.wait_for("views.publish", count=published + 1, timeout=10)
    h.settle()
    home = h.slack.home_view(BOB)
    assert home is not None
    text = blocks_text(home.view["blocks"])
    assert "Schedule #1" in text and "a new schedule #1 (`daily 02:30` (Europe/Berlin) · keep 2" in text
    actions = [e.get("action_id") for b in home.view["blocks"] for e in b.get("elements", []) or []]
    assert "approval_approve" in actions and "approval_reject" in actions


def test_a_rejected_schedule_is_never_turned_on(h: Harness, clock: Clock) -> None:
    h.run("schedule 12347 hourly keep 1")
    reject(h, h.card(), BOB, "not on the cache box")
    text = h.card().visible_text
    assert f"Rejected by <@{BOB}>" in text and "not on the cache box" in text and "never turned on" in text
    assert "No schedules" in listing(h)
    clock.now += timedelta(hours=3)
    tick(h)
    assert creates(h) == []
    assert "schedule.approval_rejected" in h.actions()


def test_a_cancelled_schedule_is_never_turned_on(h: Harness, clock: Clock) -> None:
    h.run("schedule 12347 hourly keep 1")
    h.click(h.card(), "Cancel (requester)", user=BOB)
    h.settle()
    assert "Only the person who asked" in h.last_ephemeral(BOB).visible_text
    h.click(h.card(), "Cancel (requester)", user=ALICE)
    h.settle()
    assert "Cancelled by" in h.card().visible_text and "never turned on" in h.card().visible_text
    clock.now += timedelta(hours=3)
    tick(h)
    assert creates(h) == []
    assert "No schedules" in listing(h)
    assert "schedule.approval_cancelled" in h.actions()


def test_an_expired_schedule_request_cannot_be_approved(h: Harness, clock: Clock) -> None:
    h.run("schedule 12347 hourly keep 1")
    card = h.card()
    clock.now += timedelta(minutes=181)
    tick(h)
    assert "Expired" in h.card().visible_text and "never turned on" in h.card().visible_text
    h.click(card, "Approve", user=BOB)  # the card as it was (a click from a client not yet refreshed)
    h.settle()
    assert "already expired" in h.last_ephemeral(BOB).visible_text
    clock.now += timedelta(hours=2)
    tick(h)
    assert creates(h) == []
    assert "No schedules" in listing(h)
    assert "schedule.approval_expired" in h.actions()


def test_a_server_filled_meanwhile_closes_the_request_as_stale(h: Harness, clock: Clock) -> None:
    h.run("schedule 12347 hourly keep 3")  # needs 4 of 5
    for n in range(2):
        h.sim.add_snapshot(12347, f"manual-{n}")
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    text = h.card().visible_text
    assert "not applied" in text and "no longer fits" in text and "never turned on" in text
    assert "No schedules" in listing(h)
    clock.now += timedelta(hours=2)
    tick(h)
    assert creates(h) == []
    [stale] = h.audit(action="schedule.approval_stale")
    assert stale.details["applied"] is False


def approve_new_schedule(h: Harness, text: str = "schedule 12347 hourly keep 2") -> None:
    h.run(text)
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert "Schedule #1 is on" in h.card().visible_text
    # The requester is told in the card's thread, in the words the card and the list use for a schedule.
    thread = [m.visible_text for m in h.channel(APPROVALS) if m.thread_ts == h.card().ts]
    shape = re.compile(r"Schedule #1 is on: `[^`]+` \(Europe/Berlin\) · keep \d · on_full=(skip|rotate); next run")
    assert any(shape.search(t) for t in thread), thread


def test_reschedule_with_delete_approvals_applies_only_on_approval(h: Harness, clock: Clock) -> None:
    approve_new_schedule(h)
    h.run("reschedule 1 daily 02:30 keep 1 on_full=rotate")
    card = h.card()
    text = card.visible_text
    assert "Schedule change request #2" in text and "`daily 02:30` (Europe/Berlin)" in text
    assert "*Now:* `hourly` · keep 2 · on_full=skip" in text
    before = listing(h)
    assert "`hourly`" in before and "daily 02:30" not in before  # it runs as it was meanwhile
    clock.now += timedelta(hours=1)
    tick(h)
    assert creates(h) == ["auto-1-20261130-1000"]

    h.run("pending", user=CAROL)
    assert "a change of schedule #1" in h.last_ephemeral(CAROL).visible_text
    h.click(card, "Approve", user=CAROL)
    h.settle()
    assert "Schedule #1 is changed" in h.card().visible_text
    after = listing(h)
    assert "#1" in after and "`daily 02:30`" in after and "keep 1" in after
    [executed] = h.audit(action="schedule.approval_executed")[:1]
    assert executed.details["before"] == {"when": "hourly", "keep": 2, "on_full": "skip"}
    assert executed.details["after"]["when"] == "daily 02:30"


def test_unscheduling_closes_its_waiting_change_request(h: Harness, clock: Clock) -> None:
    """The change can never be applied once its schedule is gone: its card stops asking at once (it used to wait
    for someone to approve it, to be found stale only then), its requester is told, and approving does nothing."""
    approve_new_schedule(h)
    h.run("reschedule 1 daily 02:30 keep 1", user=BOB)
    h.run("reschedule 1 daily 03:30 keep 1")
    assert "already has request #2 waiting" in h.last_ephemeral().visible_text
    stale_screen = h.card()  # the card as someone's Slack still shows it, buttons and all
    h.run("unschedule 1")
    h.settle()
    card = h.card()
    text = card.visible_text
    assert "Closed" in text and f"the schedule was removed by <@{ALICE}>. Nothing was applied." in text
    assert "keeps its settings" not in text
    assert "actions" not in [b.get("type") for b in card.blocks]  # no buttons left
    thread = [m.visible_text for m in h.channel(APPROVALS) if m.thread_ts == card.ts]
    told = f"<@{BOB}> Schedule request #2 (schedule #1 on"
    assert any(told in t and f"was closed: the schedule was removed by <@{ALICE}>" in t for t in thread), thread
    [closed] = h.audit(action="schedule.approval_stale")
    assert closed.details["reason"] == "the schedule was removed" and closed.actor_id == ALICE

    h.click(stale_screen, "Approve", user=CAROL)
    h.settle()  # the answer comes from the click's work after the ack (read at once, it failed 3 of 8 runs)
    assert "already" in h.last_ephemeral(CAROL).visible_text
    assert "No schedules" in listing(h)
    assert h.actions(action="schedule.approval_executed") == ["schedule.approval_executed"]  # the first only


def test_a_schedule_changed_meanwhile_makes_the_older_approval_stale(h: Harness, clock: Clock) -> None:
    approve_new_schedule(h)
    h.run("reschedule 1 daily 02:30 keep 1")
    store = h.bot.core.schedules.store
    current = store.get(1)
    assert current is not None
    # Another replica, still without delete approvals, changed it in the meantime.
    store.change(1, current.revision, when_spec="every 2h", keep=2, on_full="skip")
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    text = h.card().visible_text
    assert "not applied" in text and "was changed after this was asked" in text and "every 2h" in text
    assert "`every 2h`" in listing(h)


def test_two_approvers_at_once_turn_it_on_once(
    make_harness: Callable[..., Harness], clock: Clock, database_url: str
) -> None:
    h = harness(make_harness, clock, database_url=database_url, **DELETES_NEED_APPROVAL)
    h.run("schedule 12347 hourly keep 2")
    card = h.card()
    start = threading.Barrier(8)

    def click(i: int) -> int:
        start.wait()
        return h.click(card, "Approve", user=f"U0APPR{i:02d}").status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(click, range(8)))
    h.settle(30)
    assert statuses == [200] * 8
    assert h.actions(action="schedule.approval_executed") == ["schedule.approval_executed"]
    assert h.bot.core.schedules.store.get(1).revision == 1  # type: ignore[union-attr]
    clock.now += timedelta(hours=1)
    tick(h)
    assert creates(h) == ["auto-1-20261130-1000"]


def test_hostile_server_names_are_escaped_on_the_card(h: Harness) -> None:
    h.sim.add_server(12360, "<!channel> *urgent* <@U0BOB>")
    h.run("schedule 12360 daily 02:30 keep 1")
    card = h.card()
    raw = card.text + str(card.blocks)
    assert "<!channel>" not in raw and "<@U0BOB>" not in raw
    assert "&lt;!channel&gt;" in raw


def test_reschedule_without_delete_approvals_applies_in_place(
    make_harness: Callable[..., Harness], clock: Clock
) -> None:
    h = harness(make_harness, clock)
    h.run("schedule 12347 hourly keep 2")
    clock.now += timedelta(hours=1)
    tick(h)
    tick(h)
    assert creates(h) == ["auto-1-20261130-1000"]
    # keep 4 with on_full=skip needs 5: it fits only if the schedule's own snapshot and its old reservation are not
    # counted next to the new ones.
    h.run("reschedule 1 hourly keep 4")
    assert "changed schedule #1" in h.channel(OPS)[-1].visible_text
    [changed] = h.audit(action="schedule.changed")
    assert changed.actor_id == ALICE
    assert changed.details["before"] == {"when": "hourly", "keep": 2, "on_full": "skip"}
    assert changed.details["after"] == {"when": "hourly", "keep": 4, "on_full": "skip"}
    assert "keep 4" in listing(h)
    assert h.bot.core.schedules.store.own_snapshot_ids(1)  # same id: its snapshot is still its own
    assert h.channel(APPROVALS) == []  # no card: nothing to approve

    h.run("reschedule 1 hourly keep 5")
    assert "needs 6" in h.last_ephemeral().visible_text
    h.run("reschedule 9 hourly keep 1")
    assert "no schedule #9" in h.last_ephemeral().visible_text
    assert len(h.audit(action="schedule.changed")) == 1


def test_a_schedule_made_before_delete_approvals_is_paused_until_rescheduled(
    make_harness: Callable[..., Harness], clock: Clock, database_url: str
) -> None:
    first = harness(make_harness, clock, database_url=database_url)
    first.run("schedule 12347 hourly keep 1 on_full=rotate")
    clock.now += timedelta(hours=1)
    tick(first)
    tick(first)
    first.server.stop()
    first.bot.close()
    h = harness(make_harness, clock, database_url=database_url, sim=first.sim, **DELETES_NEED_APPROVAL)
    assert "Deletes paused" in listing(h) and "reschedule 1" in listing(h)
    clock.now += timedelta(hours=1)
    tick(h)
    tick(h)
    assert deletes(h) == []  # nobody approved these deletes
    h.run("reschedule 1 hourly keep 1 on_full=rotate")
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert "Deletes paused" not in listing(h)
    clock.now += timedelta(hours=1)
    tick(h)
    tick(h)
    assert len(deletes(h)) == 2  # the two older ones, without a card each
    assert len(cards(h)) == 1


def test_the_change_button_opens_the_form_prefilled_and_its_submit_reschedules(
    make_harness: Callable[..., Harness], clock: Clock
) -> None:
    h = harness(make_harness, clock, **DELETES_NEED_APPROVAL)
    approve_new_schedule(h, "schedule 12347 weekly sun 03:00 keep 2 on_full=rotate")
    h.run("schedules")
    [change] = [b["accessory"] for b in h.last_ephemeral().blocks if b.get("accessory", {}).get("text")]
    assert change["text"]["text"] == "Change"
    assert h.driver.block_action(change["action_id"], change["value"], user_id=ALICE, channel_id=OPS).status == 200
    h.settle()
    view = h.slack.wait_for("views.open")[-1].args["view"]
    assert view["callback_id"] == "change_schedule"
    values = {b.get("block_id"): b.get("element", {}) for b in view["blocks"]}
    assert values["when"]["initial_value"] == "weekly sun 03:00" and values["keep"]["initial_value"] == "2"
    assert values["on_full"]["initial_option"]["value"] == "rotate"

    def submit(when: str, keep: str) -> dict[str, object]:
        state = {
            "when": {"value": {"type": "plain_text_input", "value": when}},
            "keep": {"value": {"type": "plain_text_input", "value": keep}},
            "on_full": {"value": {"type": "static_select", "selected_option": {"value": "skip"}}},
        }
        answer = h.driver.view_submission(
            "change_schedule", state, user_id=ALICE, private_metadata=view["private_metadata"]
        )
        assert answer.status == 200
        return answer.json() if answer.body else {}

    bad = submit("every 5m", "2")
    assert bad["response_action"] == "errors" and "1 hour" in bad["errors"]["when"]
    assert submit("daily 04:00", "3") == {}
    h.settle()
    card = h.card()
    assert "Schedule change request #2" in card.visible_text and "`daily 04:00`" in card.visible_text
    assert "*Now:* `weekly sun 03:00` · keep 2 · on_full=rotate" in card.visible_text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("reschedule", "needs a schedule id, a time and `keep &lt;n&gt;`"),
        ("reschedule 1 daily 02:30", "needs a schedule id, a time and `keep &lt;n&gt;`"),
        ("reschedule one hourly keep 1", "The schedule id must be a whole number"),
        ("reschedule 1 hourly keep 1 on_full=never", "on_full=skip"),
        ("reschedule 1 every 5m keep 1", "at most every 1 hour ("),
        ("reschedule 1 hourly keep 9", "at most 5"),
    ],
)
def test_bad_reschedules_get_a_clear_answer_and_change_nothing(
    make_harness: Callable[..., Harness], clock: Clock, text: str, words: str
) -> None:
    h = harness(make_harness, clock)
    h.run("schedule 12347 hourly keep 2")
    response = h.run(text)
    answer = response.json().get("text", "") if response.body else h.last_ephemeral().visible_text
    assert words in answer
    assert "`hourly` (Europe/Berlin) · keep 2 · on_full=skip" in listing(h)
    assert h.actions(action="schedule.changed") == []


def test_a_request_edited_behind_the_bots_back_is_not_applied(h: Harness, clock: Clock) -> None:
    from sqlalchemy import update

    from storage.models import ApprovalRequest

    h.run("schedule 12347 hourly keep 1")
    with h.bot.core.db.session() as session:  # keep 1 on the card; someone makes it keep 4 in the database
        row = session.get(ApprovalRequest, 1)
        assert row is not None and row.proposal is not None
        tampered = row.proposal.replace('"keep":1', '"keep":4')
        session.execute(update(ApprovalRequest).where(ApprovalRequest.id == 1).values(proposal=tampered))
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert "no longer matches what was approved" in h.card().visible_text
    assert "No schedules" in listing(h)
    clock.now += timedelta(hours=2)
    tick(h)
    assert creates(h) == []

"""Reminders, escalation and telling the requester (issue 28 §1), through signed Slack requests, the fake Slack and
a settable clock, on SQLite and PostgreSQL.

The people: Alice (operator) asks; Bob and Carol approve; the approvers' group S0APPROVERS holds Alice herself and
Frank; Dave (admin) and the group S0LEADS (Dave, Erin who cannot approve, and Alice) are the escalation targets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.wiring import ticker_for
from devkit.fake_slack import FakeMessage, blocks_text
from devkit.simulator import VpsSimulator
from tests.app_fixtures import ALICE, APPROVALS, BOB, CAROL, Harness, SettableClock

DAVE = "U0DAVE"
ERIN = "U0ERIN"
FRANK = "U0FRANK"
APPROVER_GROUP = "S0APPROVERS"
LEADS = "S0LEADS"
ROLES = {
    "SNAPSHOT_APPROVAL_CHANNEL": APPROVALS,
    "SNAPSHOT_OPERATORS": f"{ALICE},{ERIN}",
    "SNAPSHOT_APPROVERS": f"{BOB},{CAROL},{APPROVER_GROUP}",
    "SNAPSHOT_ADMINS": DAVE,
    "RESTORE_APPROVAL_TTL_MINUTES": "240",
    "APPROVAL_REMIND_SECONDS": "900",
    "APPROVAL_REMIND_MAX": "3",
    "APPROVAL_ESCALATE_SECONDS": "1800",
    "APPROVAL_ESCALATE_TO": f"{DAVE},{LEADS}",
}


def bot_with_roles(
    make_harness: Callable[..., Harness], database_url: str, **env: str
) -> tuple[Harness, SettableClock]:
    h = make_harness(database_url=database_url, **{**ROLES, **env})
    h.slack.usergroup_members[APPROVER_GROUP] = [ALICE, FRANK]
    h.slack.usergroup_members[LEADS] = [DAVE, ERIN, ALICE]
    clock = SettableClock()
    h.bot.core.approvals.clock = clock
    return h, clock


@pytest.fixture
def bot(database_url: str, make_harness: Callable[..., Harness]) -> tuple[Harness, SettableClock]:
    return bot_with_roles(make_harness, database_url)


def ask(h: Harness) -> FakeMessage:
    h.run("restore 801", user=ALICE)
    return h.card()


def tick_at(h: Harness, clock: SettableClock, start: datetime, minutes: float) -> None:
    """One ticker round with the bot's clock `minutes` after `start`, and whatever it posts delivered."""
    clock.now = start + timedelta(minutes=minutes)
    ticker_for(h.bot, 60).tick()
    h.settle()


def reject(h: Harness, card: FakeMessage, reason: str) -> None:
    h.click(card, "Reject", user=BOB)
    opened = h.slack.wait_for("views.open")[-1].args["view"]
    h.driver.view_submission(
        opened["callback_id"],
        {"reason": {"value": {"type": "plain_text_input", "value": reason}}},
        user_id=BOB,
        private_metadata=opened["private_metadata"],
    )
    h.settle()


def thread(h: Harness, card: FakeMessage) -> list[FakeMessage]:
    return [m for m in h.channel(APPROVALS) if m.thread_ts == card.ts and m.ts != card.ts]


def reminders(h: Harness, card: FakeMessage) -> list[str]:
    return [m.text for m in thread(h, card) if "Reminder" in m.text]


def dms(h: Harness, user: str) -> list[str]:
    return [m.text for m in h.slack.messages(h.slack.dm_channel(user))]


def outcomes(h: Harness, action: str) -> list[str]:
    return [r.outcome for r in reversed(h.audit()) if r.action == action]


def test_reminders_name_the_approvers_who_have_not_acted_never_the_requester(
    bot: tuple[Harness, SettableClock],
) -> None:
    h, clock = bot
    start = clock.now
    card = ask(h)
    tick_at(h, clock, start, 14)
    assert reminders(h, card) == []  # not due yet

    tick_at(h, clock, start, 15)
    [first] = reminders(h, card)
    assert "Reminder 1 of 3" in first and "request #1" in first and "15 min" in first
    for approver in (BOB, CAROL, FRANK, DAVE):  # users, group members, and admins: everyone who can approve
        assert f"<@{approver}>" in first, approver
    assert f"<@{ALICE}>" not in first  # the requester, though in the approvers' group, is never mentioned
    assert f"<@{ERIN}>" not in first  # an operator cannot approve
    assert outcomes(h, "approval.reminded") == ["intent", "ok"]

    tick_at(h, clock, start, 16)
    assert len(reminders(h, card)) == 1  # once per due time, however often the ticker runs

    tick_at(h, clock, start, 30)
    tick_at(h, clock, start, 45)
    tick_at(h, clock, start, 200)  # past the third: APPROVAL_REMIND_MAX
    said = reminders(h, card)
    assert [f"Reminder {n} of 3" in text for n, text in enumerate(said, 1)] == [True, True, True]
    assert outcomes(h, "approval.reminded") == ["intent", "ok"] * 3
    assert h.restore_calls() == []  # a reminder grants and sends nothing


def test_an_approver_who_voted_is_not_reminded_again(database_url: str, make_harness: Callable[..., Harness]) -> None:
    h, clock = bot_with_roles(make_harness, database_url, RESTORE_APPROVALS_REQUIRED="2")
    start = clock.now
    card = ask(h)
    h.click(card, "Approve", user=BOB)
    h.settle()
    tick_at(h, clock, start, 15)
    [first] = reminders(h, card)
    assert f"<@{BOB}>" not in first and f"<@{CAROL}>" in first


@pytest.mark.parametrize("decide", ["approve", "reject", "cancel"])
def test_no_reminder_or_escalation_after_a_decision(bot: tuple[Harness, SettableClock], decide: str) -> None:
    h, clock = bot
    start = clock.now
    card = ask(h)
    if decide == "approve":
        h.click(card, "Approve", user=BOB)
    elif decide == "cancel":
        h.click(card, "Cancel (requester)", user=ALICE)
    else:
        reject(h, card, "not during peak")
    h.settle()
    tick_at(h, clock, start, 45)
    assert reminders(h, card) == []
    assert not [m for m in thread(h, card) if "Escalated" in m.text]
    assert dms(h, DAVE) == []
    assert outcomes(h, "approval.reminded") == outcomes(h, "approval.escalated") == []


def test_no_reminder_after_expiry(bot: tuple[Harness, SettableClock]) -> None:
    h, clock = bot
    start = clock.now
    card = ask(h)
    tick_at(h, clock, start, 241)  # the approval window (240 min) has passed: expired on this very tick
    assert "Expired" in h.card().visible_text
    assert reminders(h, card) == []
    assert outcomes(h, "approval.reminded") == []
    assert any("expired" in text for text in dms(h, ALICE))  # and the requester is told


def test_escalation_mentions_and_dms_the_escalation_targets_with_the_cards_link(
    bot: tuple[Harness, SettableClock], caplog: pytest.LogCaptureFixture
) -> None:
    h, clock = bot
    start = clock.now
    card = ask(h)
    tick_at(h, clock, start, 29)
    assert dms(h, DAVE) == []
    with caplog.at_level(logging.WARNING, logger="bot.usecases.approval_reminders"):
        tick_at(h, clock, start, 30)
    assert any(ERIN in r.getMessage() and "cannot approve" in r.getMessage() for r in caplog.records)
    [escalated] = [m.text for m in thread(h, card) if "Escalated" in m.text]
    assert f"<@{DAVE}>" in escalated
    assert f"<@{ERIN}>" not in escalated  # in the leads' group but cannot approve: logged, not named
    assert f"<@{ALICE}>" not in escalated  # the requester, in the leads' group too
    assert "grants nothing" in escalated
    [dm] = dms(h, DAVE)
    assert "request #1" in dm and "escalated to you" in dm
    link = dm.split("<", 1)[1].split("|", 1)[0]
    assert h.slack.permalink_target(link) == (APPROVALS, card.ts)  # the link opens the card
    assert dms(h, ERIN) == []
    [intent, ok] = [r for r in reversed(h.audit()) if r.action == "approval.escalated"]
    assert (intent.outcome, ok.outcome) == ("intent", "ok") and intent.operation_id == ok.operation_id
    assert ok.details["told"] == [DAVE] and ok.actor_id == "system"

    tick_at(h, clock, start, 120)  # once
    assert len([m for m in thread(h, card) if "Escalated" in m.text]) == 1
    assert len(dms(h, DAVE)) == 1
    # Escalation grants nothing: Erin still cannot approve.
    h.click(card, "Approve", user=ERIN)
    h.settle()
    assert h.restore_calls() == []


def tick_together(h: Harness, gate: threading.Barrier) -> None:
    gate.wait(5)
    ticker_for(h.bot, 60).tick()


def test_two_replicas_send_each_reminder_once(database_url: str, make_harness: Callable[..., Harness]) -> None:
    first, first_clock = bot_with_roles(make_harness, database_url)
    second, second_clock = bot_with_roles(make_harness, database_url)
    start = first_clock.now
    card = ask(first)
    for minutes in (15, 30, 45):
        first_clock.now = second_clock.now = start + timedelta(minutes=minutes)
        gate = threading.Barrier(2)  # both replicas tick at the same moment
        runners = [threading.Thread(target=tick_together, args=(h, gate)) for h in (first, second)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join(30)
        first.settle()
        second.settle()
    assert len(reminders(first, card)) == 3
    assert len([m for m in thread(first, card) if "Escalated" in m.text]) == 1
    assert len(dms(first, DAVE)) == 1
    assert outcomes(first, "approval.reminded") == ["intent", "ok"] * 3


def test_a_restart_does_not_send_a_reminder_again(database_url: str, make_harness: Callable[..., Harness]) -> None:
    first, clock = bot_with_roles(make_harness, database_url)
    start = clock.now
    card = ask(first)
    tick_at(first, clock, start, 15)
    first.server.stop()
    first.bot.close()
    second, second_clock = bot_with_roles(make_harness, database_url, sim=first.sim)
    tick_at(second, second_clock, start, 16)
    assert len(reminders(second, card)) == 1


def test_reminders_and_escalation_can_be_switched_off(database_url: str, make_harness: Callable[..., Harness]) -> None:
    h, clock = bot_with_roles(make_harness, database_url, APPROVAL_REMIND_SECONDS="0", APPROVAL_ESCALATE_SECONDS="0")
    card = ask(h)
    tick_at(h, clock, clock.now, 200)
    assert thread(h, card) == [] and dms(h, DAVE) == []


def test_the_requester_is_told_by_dm_once_with_the_reject_reason(bot: tuple[Harness, SettableClock]) -> None:
    h, _ = bot
    card = ask(h)
    reject(h, card, "not during peak")
    told = dms(h, ALICE)
    assert len(told) == 1
    assert "was rejected by" in told[0] and "not during peak" in told[0]
    assert f"<@{ALICE}>" not in told[0]  # a DM needs no mention of its reader


def test_the_requester_is_told_when_approved_and_when_the_restore_finished(
    database_url: str, make_harness: Callable[..., Harness]
) -> None:
    sim = VpsSimulator(completion_delay=0, restore_delay=10_000)  # the restore ends when the test says so
    h, _ = bot_with_roles(make_harness, database_url, sim=sim)
    card = ask(h)
    h.click(card, "Approve", user=BOB)
    h.settle()
    [approved] = dms(h, ALICE)
    assert "approved by" in approved and "restore has started" in approved
    h.sim.set_server_status(12345, "active")
    h.bot.slack.announcer.tracked(h.bot.core.tracking.poll_once(force=True))
    h.settle()
    told = dms(h, ALICE)
    assert len(told) == 2 and "finished" in told[1]  # nothing doubled
    assert any("finished" in m.text for m in thread(h, card))  # the thread still hears it too


def test_cancelling_your_own_request_sends_no_dm(bot: tuple[Harness, SettableClock]) -> None:
    h, _ = bot
    card = ask(h)
    h.click(card, "Cancel (requester)", user=ALICE)
    h.settle()
    assert dms(h, ALICE) == []


def test_the_wait_is_measured_and_nudges_counted(bot: tuple[Harness, SettableClock]) -> None:
    h, clock = bot
    start = clock.now
    card = ask(h)
    tick_at(h, clock, start, 15)
    clock.now = start + timedelta(minutes=20)
    h.click(card, "Approve", user=BOB)
    h.settle()
    registry = h.bot.metrics.registry
    assert registry.get_sample_value("snapshot_bot_approval_wait_seconds_count", {"decision": "approved"}) == 1
    assert registry.get_sample_value("snapshot_bot_approval_wait_seconds_sum", {"decision": "approved"}) == 1200
    assert registry.get_sample_value("snapshot_bot_approval_nudges_total", {"kind": "remind", "outcome": "ok"}) == 1


def test_app_home_shows_how_long_each_open_request_has_waited(
    database_url: str, make_harness: Callable[..., Harness]
) -> None:
    h, _ = bot_with_roles(make_harness, database_url)
    h.bot.core.approvals.clock = lambda: datetime.now(UTC) - timedelta(minutes=25)  # asked 25 minutes ago
    ask(h)
    published = len(h.slack.calls_to("views.publish"))
    assert h.driver.app_home_opened(BOB).status == 200
    h.slack.wait_for("views.publish", count=published + 1, timeout=10)
    home = h.slack.home_view(BOB)
    assert home is not None
    assert f"asked by <@{ALICE}> · waiting 25 min · expires" in blocks_text(home.view["blocks"])


def test_after_downtime_only_the_newest_due_reminder_is_sent(bot: tuple[Harness, SettableClock]) -> None:
    h, clock = bot
    start = clock.now
    card = ask(h)
    tick_at(h, clock, start, 50)  # the bot was down through the first two due times
    [only] = reminders(h, card)
    assert "Reminder 3 of 3" in only and "50 min" in only
    tick_at(h, clock, start, 100)
    assert len(reminders(h, card)) == 1  # the missed ones are never sent late


def test_the_requester_is_told_when_an_approved_restore_failed(bot: tuple[Harness, SettableClock]) -> None:
    h, _ = bot
    card = ask(h)
    h.sim.remove_snapshot(801)  # gone at VPS.org before anyone approved: the re-check refuses, nothing is sent
    h.click(card, "Approve", user=BOB)
    h.settle()
    [told] = dms(h, ALICE)
    assert "failed" in told and "no longer exists" in told
    assert h.restore_calls() == []

"""The restore card tells the end of the story (issue 17 §4), through signed requests: waiting → approved → being
restored (elapsed time kept current by the ticker) → finished / server gone / timed out / failed / outcome unknown,
each with what to do next; a reject reason in the thread reply as well as on the card.

Time never passes by sleeping: the tracker's clock is replaced and the simulator is driven explicitly; one tick
is "poll once, announce what was found" as the ticker does it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from bot.usecases.context import utcnow
from devkit.fake_slack import FakeMessage
from devkit.simulator import VpsSimulator
from tests.app_fixtures import ALICE, BOB, Harness

APPROVALS = "C0APPROVE"


class FakeClock:
    def __init__(self) -> None:
        self.now = utcnow()  # the announcer draws the first "being restored" with the real clock

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def make(make_harness: Callable[..., Harness]) -> Callable[..., tuple[Harness, FakeClock]]:
    def factory(**env: str) -> tuple[Harness, FakeClock]:
        sim = VpsSimulator(completion_delay=0, restore_delay=10_000)  # restores end when the test says so
        h = make_harness(sim=sim, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, **env)
        h.bot.slack.notifier.min_interval = 0.0
        clock = FakeClock()
        h.bot.core.tracking.clock = clock
        return h, clock

    return factory


def tick(h: Harness) -> None:
    """One round of the ticker's tracking part: poll once, hand what was found to the announcer."""
    h.bot.slack.announcer.tracked(h.bot.core.tracking.poll_once(force=True))


def thread(h: Harness, card: FakeMessage) -> list[str]:
    return [m.text for m in h.channel(APPROVALS) if m.thread_ts == card.ts and m.ts != card.ts]


def approved_restore(h: Harness) -> FakeMessage:
    h.run("restore 801 INC-77 bad deploy", user=ALICE)
    card = h.card()
    assert "approval_approve" in str(card.blocks)  # waiting: the buttons
    h.click(card, "Approve", user=BOB)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    return h.card()


def test_the_card_follows_the_restore_to_its_end(make: Callable[..., tuple[Harness, FakeClock]]) -> None:
    h, clock = make()
    card = approved_restore(h)
    text = card.visible_text
    assert f"Approved by <@{BOB}>" in text and "*being restored* for under a minute (VPS.org: restoring)" in text
    assert "This card updates until it is over" in text
    assert "approval_approve" not in str(card.blocks)

    clock.advance(4)
    tick(h)  # nothing changed at VPS.org: only the elapsed time moves on
    assert "*being restored* for 4 min" in h.card().visible_text
    updates = h.card().updates
    tick(h)
    assert h.card().updates == updates  # the same minute: no needless update

    clock.advance(5)
    h.sim.set_server_status(12345, "active")
    tick(h)
    text = h.card().visible_text
    assert "*restore finished* in 9 min; the server is active again" in text
    assert "Next: check that its services are back" in text
    assert (
        "*being restored*" not in text
        and "answer when it was sent: Server is being restored" in text
        and "*Reason:* “INC-77 bad deploy”" in text
    )
    assert any("finished" in reply and "took 9 min" in reply for reply in thread(h, card))

    clock.advance(3)
    tick(h)  # over is over: the card stays as it is
    assert "in 9 min" in h.card().visible_text


def test_a_restore_that_never_ends_is_timed_out_on_the_card(make: Callable[..., tuple[Harness, FakeClock]]) -> None:
    h, clock = make(SNAPSHOT_TRACK_TIMEOUT_MINUTES="30")
    approved_restore(h)
    clock.advance(31)
    tick(h)
    text = h.card().visible_text
    assert "*timed out*: still restoring after 31 min, and the bot stopped following it" in text
    assert "Next: check the server at VPS.org" in text


def test_a_server_that_disappears_is_outcome_unknown_on_the_card(
    make: Callable[..., tuple[Harness, FakeClock]],
) -> None:
    h, clock = make()
    approved_restore(h)
    clock.advance(2)
    with h.sim._lock:  # VPS.org stops listing the server
        del h.sim._servers[12345]
    tick(h)
    text = h.card().visible_text
    assert "after 2 min VPS.org *no longer lists the server*: outcome unknown" in text
    assert "check the server in the VPS.org panel" in text


def test_a_restore_vps_org_refuses_says_so_and_what_next(make: Callable[..., tuple[Harness, FakeClock]]) -> None:
    h, _ = make()
    h.run("restore 801", user=ALICE)
    h.sim.faults.fail_next(400, body='{"error": "Server is locked for maintenance"}', path="snapshots/801/restore/")
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    text = h.card().visible_text
    assert "*failed*; nothing was changed. Ask again once the cause is fixed." in text
    assert "Server is locked for maintenance" in text


def test_an_unknown_outcome_says_what_to_check(make: Callable[..., tuple[Harness, FakeClock]]) -> None:
    h, _ = make()
    h.run("restore 801", user=ALICE)
    h.sim.faults.drop_next(after_apply=True, methods=["POST"])
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    text = h.card().visible_text
    assert "*outcome unknown*: check the server" in text and "don't ask again until you know" in text


def test_the_reject_reason_is_in_the_thread_reply_and_on_the_card(
    make: Callable[..., tuple[Harness, FakeClock]],
) -> None:
    h, _ = make()
    h.run("restore 801", user=ALICE)
    card = h.card()
    h.click(card, "Reject", user=BOB)
    opened = h.slack.wait_for("views.open")[-1].args["view"]
    h.driver.view_submission(
        opened["callback_id"],
        {"reason": {"value": {"type": "plain_text_input", "value": "not during peak <!channel>"}}},
        user_id=BOB,
        private_metadata=opened["private_metadata"],
    )
    h.settle()
    assert f"Rejected by <@{BOB}>" in h.card().visible_text and "not during peak" in h.card().visible_text
    [reply] = thread(h, card)
    assert "was rejected by" in reply and "Reason: “not during peak" in reply
    assert "<!channel>" not in reply  # the typed reason stays text
    assert h.restore_posts() == []

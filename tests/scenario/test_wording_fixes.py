"""Wording a new user trips over (issue 24 §7), through the real app as Slack drives it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tests.app_fixtures import ALICE, BOB, Harness

# `clock` and `make` are fixtures: a bot whose safety step waits on a fake clock.
from tests.scenario.test_safety_snapshot import SAFE, clock, make, request_restore  # noqa: F401


def fill(h: Harness, server_id: int, count: int) -> None:
    for i in range(count):
        h.sim.add_snapshot(server_id, f"manual-{i}", created_at=datetime(2025, 3, 1 + i, tzinfo=UTC))


def answer(h: Harness, typed: str, user: str = ALICE) -> str:
    """What `typed` answered: the ack's text, or the ephemeral messages it brought."""
    seen = len(h.ephemerals(user))
    response = h.run(typed, user=user)
    return response.body + " ".join(e.visible_text for e in h.ephemerals(user)[seen:])


def on_server(h: Harness, server_id: int) -> int:
    return len(h.sim.snapshot_ids(server_id))


def test_a_full_server_at_keep_1_is_never_told_to_use_a_smaller_keep(harness: Harness) -> None:
    fill(harness, 12347, 5 - on_server(harness, 12347))  # 5 of 5
    said = answer(harness, "schedule 12347 daily 02:30 keep 1 on_full=rotate")
    assert "smaller" not in said and "Delete some snapshots of the server first." in said, said


def test_keep_1_with_one_slot_left_is_pointed_at_rotate(harness: Harness) -> None:
    fill(harness, 12347, 4 - on_server(harness, 12347))  # one slot left: skip needs two
    said = answer(harness, "schedule 12347 daily 02:30 keep 1")
    assert "smaller" not in said and "Use `on_full=rotate`, or delete some snapshots first." in said, said


def test_a_keep_too_large_is_told_the_largest_that_fits(harness: Harness) -> None:
    fill(harness, 12347, 2 - on_server(harness, 12347))  # three slots left
    said = answer(harness, "schedule 12347 daily 02:30 keep 4 on_full=rotate")
    assert "Use `keep 3` or less, or delete some snapshots first." in said, said


def test_an_unknown_audit_action_lists_the_actions(harness: Harness) -> None:
    said = answer(harness, "audit action:bogus")
    assert "No action is called `bogus`" in said and "`restore`" in said and "`create`" in said, said
    assert "No action" not in answer(harness, "audit action:restore")  # known, only nothing recorded yet


def test_pending_says_what_the_card_says_while_the_safety_snapshot_is_taken(
    make: Callable[..., Harness],  # noqa: F811 (the fixture imported above)
) -> None:
    h = make()
    request_restore(h)
    paused, resume = threading.Event(), threading.Event()

    def stall(_seconds: float) -> None:  # the executor waits for the safety snapshot between two polls
        paused.set()
        resume.wait(20)

    h.bot.core.approvals.sleep = stall
    h.click(h.card(), SAFE, user=BOB)
    try:
        assert paused.wait(20), "the safety step never started polling"
        assert "taking the safety snapshot first" in h.card().visible_text
        response = h.command("pending", user=BOB)  # answered while the executor is busy: no settle()
        deadline = time.monotonic() + 15
        while not h.ephemerals(BOB) and time.monotonic() < deadline:
            time.sleep(0.02)
        listed = response.body + " ".join(e.visible_text for e in h.ephemerals(BOB))
        assert "taking the safety snapshot first" in listed and "re-checking" not in listed, listed
    finally:
        resume.set()

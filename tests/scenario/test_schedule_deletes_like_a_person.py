"""A schedule's retention delete leaves what a manual delete leaves (issue 29 §7): a restore card that said "Server
full" offers the safety snapshot once retention frees a slot, and a request recorded on the snapshot while its
delete is in flight is closed when it lands. Slots by a settable clock, snapshots completed by the simulator's own
clock, the ticker driven by the test; nothing sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.background import Ticker
from devkit.simulator import FIRST_NEW_SNAPSHOT_ID, VpsSimulator
from tests.app_fixtures import ALICE, APPROVALS, Harness
from tests.app_fixtures import SettableClock as Clock
from tests.scenario.test_delete_closes_requests import GatedTransport, actions_of, wait_for

FREE = "Free oldest snapshot first"


class SimClock:
    """Seconds for the simulator: a snapshot completes once the test moves this past its completion delay."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock()


@pytest.fixture
def gated(
    database_url: str, make_harness: Callable[..., Harness], sim_clock: SimClock
) -> Iterator[tuple[Harness, GatedTransport, Clock]]:
    sim = VpsSimulator(completion_delay=30, clock=sim_clock)
    gate = GatedTransport(sim)
    h = make_harness(
        database_url=database_url,
        sim=sim,
        vps_transport=gate,
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        RESTORE_SAFETY_SNAPSHOT="auto",
        # These stories fill the server with the schedule's own snapshots ("Server full"); the slot kept for the
        # undo would stop the schedule one short of that (tests/scenario/test_undo_slot.py tells that story).
        SNAPSHOT_RESERVE_UNDO_SLOT="false",
    )
    clock = Clock()
    h.bot.core.schedules.clock = clock
    h.bot.core.schedule_runner.clock = clock
    yield h, gate, clock
    gate.release.set()  # never leave a worker stuck, whatever the test did


def tick(h: Harness) -> None:
    Ticker(h.bot.core, h.bot.slack.announcer, 60).tick()
    h.settle()


def buttons(h: Harness) -> list[str]:
    return [
        el["text"]["text"]
        for b in h.card().blocks
        if b.get("type") == "actions"
        for el in b.get("elements", [])
        if el.get("type") == "button"
    ]


def two_slots(h: Harness, clock: Clock, sim_clock: SimClock) -> int:
    """Schedule #1 on 12345 (801 and 798 seeded) keeps 1; its first slot completes, its second is being taken.
    Returns the id of the first slot's snapshot (the one retention deletes next)."""
    h.run("schedule 12345 hourly keep 1", user=ALICE)
    clock.now += timedelta(hours=1)
    tick(h)
    sim_clock.now += 60
    tick(h)  # completed; retention keeps it (the only one of its own)
    first = FIRST_NEW_SNAPSHOT_ID  # the first snapshot the simulator makes: the first slot's
    assert first in h.sim.snapshot_ids(12345)
    h.sim.add_snapshot(12345, "manual", size_mb=10, created_at=datetime(2025, 2, 1, tzinfo=UTC), snapshot_id=850)
    clock.now += timedelta(hours=1)
    tick(h)  # the second slot's snapshot: 5 of 5, still being taken
    return first


def test_retention_freeing_a_slot_redraws_the_server_full_card(
    gated: tuple[Harness, GatedTransport, Clock], sim_clock: SimClock
) -> None:
    h, _gate, clock = gated
    first = two_slots(h, clock, sim_clock)
    h.run("restore 801", user=ALICE)
    assert "Server full" in h.card().visible_text and FREE in buttons(h)

    sim_clock.now += 60
    tick(h)  # the second slot completed: retention deletes the first
    assert [r.path for r in h.api_calls("DELETE")] == [f"/api/v1/snapshots/{first}/"]
    card = h.card()
    assert "Server full" not in card.visible_text and "pre-restore-1" in card.visible_text
    assert FREE not in buttons(h)


def test_a_request_recorded_while_retention_deletes_its_snapshot_is_closed(
    gated: tuple[Harness, GatedTransport, Clock], sim_clock: SimClock
) -> None:
    h, gate, clock = gated
    first = two_slots(h, clock, sim_clock)
    sim_clock.now += 60
    gate.hold("DELETE", f"/api/v1/snapshots/{first}/")
    ticking = threading.Thread(target=tick, args=(h,), daemon=True)
    ticking.start()
    assert gate.entered.wait(10), "retention's DELETE never reached VPS.org"
    h.command(f"restore {first}", user=ALICE)  # still listed: the request is recorded, its card posted
    wait_for(lambda: any("Restore request #1" in m.visible_text for m in h.channel(APPROVALS)), "the card")
    gate.release.set()
    ticking.join(15)
    assert not ticking.is_alive()
    h.settle()
    card = h.card()
    assert "the snapshot was deleted by the bot" in card.visible_text
    assert actions_of(card) == []
    assert [r.request_id for r in h.audit(action="restore.stale")] == [1]

"""Deleting a snapshot that has open requests: warned before, closed after (issue 17 §3), through signed requests.

The delete confirmation names every open request (which, who asked); once the snapshot is gone, each pending one
is closed as `stale` (audited), its card says who deleted the snapshot and its requester hears it in the thread.
Races: a request recorded while the DELETE is in flight is closed when it lands; a request whose look-up saw the
snapshot just before the delete was recorded is refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devkit.fake_slack import FakeMessage
from devkit.simulator import VpsSimulator
from tests.app_fixtures import ALICE, APPROVALS, BOB, CAROL, OPS, Harness


@pytest.fixture
def h(database_url: str, make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)


def actions_of(message: FakeMessage) -> list[str]:
    return [el.get("action_id", "") for b in message.blocks if b.get("type") == "actions" for el in b["elements"]]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_delete_warns_then_closes_the_open_restore_request(h: Harness) -> None:
    h.run("restore 801 INC-7 db corrupted", user=ALICE)
    card = h.card()
    assert "approval_approve" in actions_of(card)

    h.run("delete 801", user=CAROL)
    confirmation = h.last_ephemeral(CAROL).visible_text
    assert "This snapshot has 1 open request" in confirmation
    assert f"Restore request #1, asked by <@{ALICE}>" in confirmation
    assert "waiting for approval — deleting closes it" in confirmation

    h.driver.block_action("snapshot_delete_confirm", "801", user_id=CAROL, channel_id=OPS)
    h.settle()
    assert [r.path for r in h.api_calls("DELETE")] == ["/api/v1/snapshots/801/"]
    closed = h.card()
    assert f"the snapshot was deleted by <@{CAROL}>" in closed.visible_text
    assert "Nothing was sent to VPS.org" in closed.visible_text
    assert actions_of(closed) == []  # no buttons left on a request that can never be carried out
    thread = [m for m in h.channel(APPROVALS) if m.thread_ts == card.ts]
    assert thread and f"<@{ALICE}>" in thread[-1].text and "the snapshot was deleted by" in thread[-1].text
    stale = h.audit(action="restore.stale")
    assert len(stale) == 1 and stale[0].actor_id == CAROL and stale[0].request_id == 1
    assert stale[0].details == {"reason": "the snapshot was deleted"}

    # The old card's Approve, clicked anyway: refused, nothing sent.
    h.click(card, "Approve", user=BOB)
    h.settle()
    assert "already closed without sending" in h.last_ephemeral(BOB).visible_text
    assert h.restore_calls() == []
    h.run("pending", user=BOB)
    assert "#1" not in h.last_ephemeral(BOB).visible_text


def test_approved_delete_closes_the_other_requests(database_url: str, make_harness: Callable[..., Harness]) -> None:
    h = make_harness(
        database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, APPROVAL_REQUIRED_FOR="restore,delete"
    )
    h.run("restore 801", user=ALICE)
    restore_card = h.card()
    h.run("delete 801", user=BOB)
    assert "Restore request #1" in h.last_ephemeral(BOB).visible_text
    h.driver.block_action("snapshot_delete_confirm", "801", user_id=BOB, channel_id=OPS)
    h.settle()
    assert h.api_calls("DELETE") == []  # the delete waits for its own approval
    delete_card = h.card()
    assert "Delete request #2" in delete_card.visible_text
    h.click(delete_card, "Approve", user=CAROL)
    h.settle()
    assert [r.path for r in h.api_calls("DELETE")] == ["/api/v1/snapshots/801/"]
    restore_now = h.slack.message(APPROVALS, restore_card.ts)
    assert f"the snapshot was deleted by <@{CAROL}>" in restore_now.visible_text
    assert actions_of(restore_now) == []
    assert "carried out" in h.slack.message(APPROVALS, delete_card.ts).visible_text
    assert [r.request_id for r in h.audit(action="restore.stale")] == [1]
    assert h.restore_calls() == []


def test_delete_without_open_requests_warns_of_nothing(h: Harness) -> None:
    h.run("delete 798", user=CAROL)
    assert "open request" not in h.last_ephemeral(CAROL).visible_text


class GatedTransport(httpx.BaseTransport):
    """The simulator's transport, holding chosen requests until the test lets them go (`hold(method, path)`).

    `answered_first`: hold the answer after VPS.org applied the request (a listing that is already out of date
    when the bot reads it); otherwise hold it before it reaches VPS.org (a call in flight)."""

    def __init__(self, sim: VpsSimulator) -> None:
        self.inner = sim.transport()
        self.lock = threading.Lock()
        self.armed: tuple[str, str, bool] | None = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def hold(self, method: str, path: str, *, answered_first: bool = False) -> None:
        with self.lock:
            self.armed = (method, path, answered_first)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            hit = self.armed is not None and (request.method, request.url.path) == self.armed[:2]
            answered_first = bool(self.armed and self.armed[2])
            if hit:
                self.armed = None
        if hit and not answered_first:
            self.entered.set()
            assert self.release.wait(15), "the test never released the held request"
        response = self.inner.handle_request(request)
        if hit and answered_first:
            response.read()
            self.entered.set()
            assert self.release.wait(15), "the test never released the held request"
        return response


@pytest.fixture
def gated(database_url: str, make_harness: Callable[..., Harness]) -> Iterator[tuple[Harness, GatedTransport]]:
    sim = VpsSimulator(completion_delay=0)
    gate = GatedTransport(sim)
    h = make_harness(database_url=database_url, sim=sim, vps_transport=gate, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    yield h, gate
    gate.release.set()  # never leave a worker stuck, whatever the test did


def test_request_recorded_while_the_delete_is_in_flight_is_closed_when_it_lands(
    gated: tuple[Harness, GatedTransport],
) -> None:
    h, gate = gated
    h.run("delete 801", user=CAROL)
    assert "open request" not in h.last_ephemeral(CAROL).visible_text  # nothing open yet
    gate.hold("DELETE", "/api/v1/snapshots/801/")
    h.driver.block_action("snapshot_delete_confirm", "801", user_id=CAROL, channel_id=OPS)
    assert gate.entered.wait(10), "the DELETE never reached VPS.org"
    h.command("restore 801", user=ALICE)  # the snapshot is still listed: the request is recorded, its card posted
    wait_for(lambda: any("Restore request #1" in m.visible_text for m in h.channel(APPROVALS)), "the card")
    gate.release.set()
    h.settle()
    card = h.card()
    assert f"the snapshot was deleted by <@{CAROL}>" in card.visible_text
    assert actions_of(card) == []
    assert [r.request_id for r in h.audit(action="restore.stale")] == [1]


def test_request_whose_lookup_raced_the_delete_is_refused(gated: tuple[Harness, GatedTransport]) -> None:
    h, gate = gated
    # ALICE's look-up lists 801, then waits; meanwhile CAROL deletes it through the bot.
    gate.hold("GET", "/api/v1/snapshots/", answered_first=True)
    h.command("restore 801", user=ALICE)
    assert gate.entered.wait(10), "the restore's look-up never happened"
    h.command("delete 801", user=CAROL)
    wait_for(lambda: any("Delete snapshot" in e.visible_text for e in h.ephemerals(CAROL)), "the confirmation")
    h.driver.block_action("snapshot_delete_confirm", "801", user_id=CAROL, channel_id=OPS)
    wait_for(lambda: bool(h.audit(action="delete.succeeded")), "the delete's outcome")
    gate.release.set()
    h.settle()
    assert "was deleted a moment ago; nothing was requested" in h.last_ephemeral(ALICE).visible_text
    assert not any("request #" in m.visible_text for m in h.channel(APPROVALS))  # no card
    assert h.audit(action="restore.requested") == []
    refused: list[Any] = h.audit(action="refused.validation")
    assert refused and refused[0].details.get("error") == "snapshot was deleted meanwhile"
    assert h.restore_calls() == []


def test_delete_answered_404_closes_the_open_requests_saying_vps_reported_it_gone(h: Harness) -> None:
    h.run("restore 801 INC-7", user=ALICE)
    card = h.card()
    h.sim.faults.fail_next(404, methods={"DELETE"})  # listed a moment ago, gone when the DELETE lands
    h.run("delete 801", user=CAROL)
    h.driver.block_action("snapshot_delete_confirm", "801", user_id=CAROL, channel_id=OPS)
    h.settle()
    assert [r.path for r in h.api_calls("DELETE")] == ["/api/v1/snapshots/801/"]
    assert "no longer exists" in h.last_ephemeral(CAROL).visible_text
    closed = h.slack.message(APPROVALS, card.ts)
    assert f"VPS.org reported the snapshot gone when <@{CAROL}> tried to delete it" in closed.visible_text
    assert "deleted by" not in closed.visible_text  # CAROL did not delete it: VPS.org had no such snapshot
    assert actions_of(closed) == []
    thread = [m for m in h.channel(APPROVALS) if m.thread_ts == card.ts]
    assert thread and f"<@{ALICE}>" in thread[-1].text and "reported the snapshot gone" in thread[-1].text
    stale = h.audit(action="restore.stale")
    assert len(stale) == 1 and stale[0].actor_id == CAROL and stale[0].request_id == 1
    assert stale[0].details == {"reason": "VPS.org reported the snapshot gone when it was deleted"}
    assert h.audit(action="delete.failed") and h.restore_calls() == []


def test_approved_delete_answered_404_closes_the_other_requests(
    database_url: str, make_harness: Callable[..., Harness]
) -> None:
    h = make_harness(
        database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, APPROVAL_REQUIRED_FOR="restore,delete"
    )
    h.run("restore 801", user=ALICE)
    restore_card = h.card()
    h.run("delete 801", user=BOB)
    h.driver.block_action("snapshot_delete_confirm", "801", user_id=BOB, channel_id=OPS)
    h.settle()
    delete_card = h.card()
    assert "Delete request #2" in delete_card.visible_text
    h.sim.faults.fail_next(404, methods={"DELETE"})
    h.click(delete_card, "Approve", user=CAROL)
    h.settle()
    assert [r.path for r in h.api_calls("DELETE")] == ["/api/v1/snapshots/801/"]
    restore_now = h.slack.message(APPROVALS, restore_card.ts)
    assert f"VPS.org reported the snapshot gone when <@{CAROL}> tried to delete it" in restore_now.visible_text
    assert actions_of(restore_now) == []
    assert "no longer exists" in h.slack.message(APPROVALS, delete_card.ts).visible_text
    assert [r.request_id for r in h.audit(action="restore.stale")] == [1]


def test_a_listing_without_the_snapshot_closes_nothing(h: Harness) -> None:
    h.run("restore 801", user=ALICE)
    card = h.card()
    h.sim.faults.hide_in_lists(801)  # the listing says nothing authoritative: it may be incomplete or stale
    h.run("delete 801", user=CAROL)
    h.driver.block_action("snapshot_delete_confirm", "801", user_id=CAROL, channel_id=OPS)
    h.settle()
    assert h.api_calls("DELETE") == []
    assert "approval_approve" in actions_of(h.slack.message(APPROVALS, card.ts))
    assert h.audit(action="restore.stale") == []

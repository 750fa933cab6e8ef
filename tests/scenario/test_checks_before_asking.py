"""Checks before asking someone to approve (issue 17 §1), through signed requests: a suspended server, a server
already being restored (by a request of ours, or at VPS.org), a second open request on a server or a snapshot, a
snapshot still being taken; the same server checks again before sending; VPS.org's server list down or slow."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from storage.approvals import RequestState
from tests.app_fixtures import ALICE, BOB, CAROL, Harness

APPROVALS = "C0APPROVE"


@pytest.fixture
def h(database_url: str, make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)


def _cards(h: Harness) -> list[str]:
    return [m.visible_text for m in h.channel(APPROVALS) if m.thread_ts in (None, m.ts)]


def _server_reads(h: Harness) -> int:
    return len(h.api_calls("GET", "servers/"))


def test_a_suspended_server_is_refused_before_anyone_is_asked(h: Harness) -> None:
    old = h.sim.add_snapshot(12349, "legacy-final")  # legacy-01 is seeded suspended
    h.run(f"restore {old} INC-7 try the old one", user=ALICE)
    answer = h.last_ephemeral(ALICE).visible_text
    assert "`legacy-01` (server 12349) is *suspended* at VPS.org" in answer
    assert "Nothing was asked" in answer
    assert _cards(h) == [] and h.restore_posts() == []
    assert _server_reads(h) == 1
    refused = h.audit(action="refused.validation")
    assert len(refused) == 1 and refused[0].details["error"] == "server status is suspended"
    assert h.audit(action="restore.requested") == []


def test_a_server_vps_org_is_restoring_without_a_request_of_ours_is_refused(h: Harness) -> None:
    h.sim.start_restore(12345, seconds=3600)
    h.run("restore 801", user=ALICE)
    answer = h.last_ephemeral(ALICE).visible_text
    assert "VPS.org says `web-server-01` (server 12345) is *already being restored*" in answer
    assert "not through a request of this bot" in answer
    assert _cards(h) == [] and h.restore_posts() == []


def test_a_server_being_restored_from_our_request_names_it(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.sim.restore_delay = 3600  # still restoring while Carol asks
    h.run("restore 798 INC-1", user=BOB)
    h.click(h.card(), "Approve", user=CAROL)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/798/restore/"]
    first = h.card()

    h.run("restore 801", user=ALICE)
    answer = h.last_ephemeral(ALICE).visible_text
    assert f"`web-server-01` is being restored from #798 (request #1), asked by <@{BOB}>, approved by <@{CAROL}>" in (
        answer
    )
    assert "wait until it finishes" in answer
    assert "Open its card" in answer and "/archives/C0APPROVE/p" in h.last_ephemeral(ALICE).text
    assert h.card().ts == first.ts  # no second card
    assert h.restore_calls() == ["/api/v1/snapshots/798/restore/"]


def test_a_second_open_request_for_the_same_server_points_to_the_first(h: Harness) -> None:
    h.run("restore 801 INC-1", user=ALICE)
    card = h.card()
    h.run("restore 798", user=CAROL)
    answer = h.last_ephemeral(CAROL)
    assert "There is already an open restore request for `web-server-01`: request #1" in answer.visible_text
    assert f"asked by <@{ALICE}> just now, waiting for approval" in answer.visible_text
    permalink = f"/archives/{APPROVALS}/p{card.ts.replace('.', '')}"
    assert permalink in answer.text and "Open its card" in answer.visible_text
    assert len(_cards(h)) == 1
    assert h.audit(action="refused.validation")[0].details["error"] == "request #1 is pending"
    # Another server is not in the way.
    h.run("restore 805", user=CAROL)
    assert len(_cards(h)) == 2


def test_a_second_request_for_the_same_snapshot_points_to_the_first(h: Harness) -> None:
    h.run("restore 805", user=ALICE)
    h.run("restore 805 again", user=BOB)
    answer = h.last_ephemeral(BOB).visible_text
    assert "There is already an open restore request for snapshot #805: request #1" in answer
    assert len(_cards(h)) == 1


def test_a_rejected_request_is_no_longer_in_the_way(h: Harness) -> None:
    h.run("restore 801", user=ALICE)
    h.run("restore 801", user=ALICE)
    assert "already an open restore request" in h.last_ephemeral(ALICE).visible_text
    h.click(h.card(), "Cancel (requester)", user=ALICE)
    h.settle()
    h.run("restore 801", user=ALICE)
    assert "waiting for approval" in h.last_ephemeral(ALICE).visible_text


def test_a_snapshot_still_being_taken_is_refused(h: Harness) -> None:
    busy = h.sim.add_snapshot(12346, "taking-now", status="in_progress")
    h.run(f"restore {busy}", user=ALICE)
    answer = h.last_ephemeral(ALICE).visible_text
    assert f"`taking-now` (#{busy}) is still being taken (in progress)" in answer
    assert _cards(h) == []


def test_the_server_is_checked_again_before_sending(h: Harness) -> None:
    h.run("restore 801 INC-2", user=ALICE)
    h.sim.set_server_status(12345, "suspended")  # suspended while the request waited
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert h.restore_posts() == []  # nothing sent
    card = h.card().visible_text
    assert "*failed*" in card and "web-server-01 is suspended at VPS.org" in card
    assert "Nothing was sent to VPS.org" in card
    [failed] = h.audit(action="restore.failed")
    assert failed.details == {"recheck": "server status is suspended", "sent": False}
    assert h.bot.core.approvals.get(1).state == RequestState.FAILED
    assert _server_reads(h) == 2  # at request time and before sending


def test_an_unreadable_server_list_is_said_and_the_request_goes_on(h: Harness) -> None:
    h.sim.faults.fail_next(503, times=20, path="servers/")
    h.run("restore 801", user=ALICE)
    answer = h.last_ephemeral(ALICE).visible_text
    assert "waiting for approval" in answer
    assert "The server's state could not be checked (VPS.org's server list could not be read (HTTP 503))" in answer
    card = h.card().visible_text
    assert "could not be checked" in card and "approval_approve" in str(h.card().blocks)
    assert h.audit(action="restore.requested")[0].details["server_check"].startswith("The server's state")

    h.sim.faults.clear()
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    assert "could not be checked" not in h.card().visible_text  # checked this time


def test_a_slow_server_list_is_not_waited_for(h: Harness) -> None:
    h.bot.core.approvals.server_states.seconds = 0.3
    h.sim.faults.slow_next(2.0, path="servers/")
    h.run("restore 801", user=ALICE)
    answer = h.last_ephemeral(ALICE).visible_text
    assert "could not be checked (VPS.org did not answer in time)" in answer
    assert len(_cards(h)) == 1


def test_two_requests_for_one_server_at_the_same_moment_give_one_card(h: Harness) -> None:
    # Both pass the first look (nothing stored yet) while VPS.org's server list holds them; the look repeated in
    # the storing transaction, under the audit chain's lock, lets only one through.
    h.sim.faults.slow_next(0.5, times=2, path="servers/")
    asks = [("restore 801", ALICE), ("restore 798", CAROL)]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda ask: h.command(ask[0], user=ask[1]), asks))
    assert [a.status for a in answers] == [200, 200]
    h.settle()
    assert len(_cards(h)) == 1
    said = [h.last_ephemeral(user).visible_text for user in (ALICE, CAROL)]
    assert sorted("Your restore request #1 is waiting for approval" in s for s in said) == [False, True]
    assert any("There is already an open restore request for `web-server-01`" in s for s in said)
    assert len(h.bot.core.approvals.open_requests()) == 1

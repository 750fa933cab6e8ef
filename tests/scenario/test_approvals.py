"""The two-person restore: every branch through signed Slack requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from devkit.fake_slack import FakeMessage
from tests.app_fixtures import ALICE, BOB, CAROL, OPS, Harness

APPROVALS = "C0APPROVE"


@pytest.fixture
def pg_or_sqlite(database_url: str, make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)


def request_restore(h: Harness, snapshot_id: int = 801, user: str = ALICE) -> FakeMessage:
    h.run(f"restore {snapshot_id}", user=user)
    return h.card()


def test_card_shows_everything_and_self_approval_is_refused(pg_or_sqlite: Harness) -> None:
    h = pg_or_sqlite
    c = request_restore(h)
    text = c.visible_text
    for expected in (
        "web-server-01",
        "pre-migration-snapshot",
        "#801",
        "5.0 GB",
        "Before major migration",
        f"<@{ALICE}>",
        "Expires",
        "overwrites ALL current data",
        "stopped first",
        "cannot be undone",
    ):
        assert expected in text, expected
    approve = next(el for b in c.blocks for el in b.get("elements", []) if el.get("action_id") == "approval_approve")
    assert "confirm" in approve
    assert "Your restore request #" in h.last_ephemeral(ALICE).visible_text

    h.click(c, "Approve", user=ALICE)
    h.settle()
    assert "can't approve your own request" in h.last_ephemeral(ALICE).visible_text
    assert h.restore_calls() == []
    assert "refused.self_approval" in h.actions()
    assert h.card().updates == 0


def test_second_person_approves_and_restore_runs_once(pg_or_sqlite: Harness) -> None:
    h = pg_or_sqlite
    c = request_restore(h)
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    updated = h.card()
    assert updated.updates >= 1
    assert not any(b.get("type") == "actions" for b in updated.blocks)  # buttons gone
    assert f"Approved by <@{BOB}>" in updated.visible_text and "being restored" in updated.visible_text
    thread = [m for m in h.channel(APPROVALS) if m.thread_ts == c.ts]
    assert thread and f"<@{ALICE}>" in thread[-1].text
    actions = h.actions()
    assert actions[-4:] == ["restore.requested", "restore.approved", "restore.executing", "restore.executed"][-4:]
    assert h.sim.server_status(12345) == "restoring"

    # The same card clicked again (double click, another approver, a Slack retry): nothing more happens.
    h.click(c, "Approve", user=CAROL)
    h.settle()
    assert len(h.restore_calls()) == 1
    assert "already approved" in h.last_ephemeral(CAROL).visible_text


def test_twenty_concurrent_approvals_make_one_call(pg_or_sqlite: Harness) -> None:
    h = pg_or_sqlite
    c = request_restore(h)
    start = threading.Barrier(20)

    def click(i: int) -> int:
        start.wait()
        return h.click(c, "Approve", user=f"U0APPR{i:02d}").status

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(click, range(20)))
    h.settle(30)
    assert statuses == [200] * 20
    assert len(h.restore_calls()) == 1
    assert h.actions().count("restore.executing") == 1


def test_reject_with_reason_and_cancel(pg_or_sqlite: Harness) -> None:
    h = pg_or_sqlite
    c = request_restore(h)
    h.click(c, "Reject", user=BOB)
    opened = h.slack.wait_for("views.open")[-1].args["view"]
    h.driver.view_submission(
        opened["callback_id"],
        {"reason": {"value": {"type": "plain_text_input", "value": "not during peak"}}},
        user_id=BOB,
        private_metadata=opened["private_metadata"],
    )
    h.settle()
    text = h.card().visible_text
    assert f"Rejected by <@{BOB}>" in text and "not during peak" in text
    h.click(c, "Approve", user=CAROL)
    h.settle()
    assert "already rejected" in h.last_ephemeral(CAROL).visible_text
    assert h.restore_calls() == []

    c2 = request_restore(h, 798)
    h.click(c2, "Cancel (requester)", user=BOB)
    h.settle()
    assert "Only the person who asked" in h.last_ephemeral(BOB).visible_text
    h.click(c2, "Cancel (requester)", user=ALICE)
    h.settle()
    assert "Cancelled by" in h.card().visible_text
    assert h.restore_calls() == []
    assert {"restore.rejected", "restore.cancelled"} <= set(h.actions())


def test_expired_request_cannot_be_approved(pg_or_sqlite: Harness) -> None:
    h = pg_or_sqlite
    c = request_restore(h)
    approvals = h.bot.core.approvals
    real_clock = approvals.clock
    approvals.clock = lambda: real_clock() + timedelta(minutes=61)
    from bot.wiring import ticker_for

    ticker_for(h.bot, 60).tick()
    assert "Expired" in h.card().visible_text
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert "already expired" in h.last_ephemeral(BOB).visible_text
    assert h.restore_calls() == []
    assert "restore.expired" in h.actions()


def test_recheck_at_approval_time_fails_without_api_call(pg_or_sqlite: Harness) -> None:
    h = pg_or_sqlite
    c = request_restore(h)
    # the snapshot disappears before approval, deleted outside the bot (a delete through the bot closes the request)
    h.sim.remove_snapshot(801)
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert h.restore_calls() == []
    assert "no longer exists" in h.card().visible_text
    assert "restore.failed" in h.actions()


def test_restart_keeps_pending_request_and_approval_still_works(
    database_url: str, make_harness: Callable[..., Harness]
) -> None:
    first = make_harness(database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    c = request_restore(first)
    first.server.stop()
    first.bot.close()
    second = make_harness(database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, sim=first.sim)
    second.run("pending", user=BOB)
    assert "pre-migration-snapshot" in second.last_ephemeral(BOB).visible_text
    second.click(c, "Approve", user=BOB)
    second.settle()
    assert len(second.restore_calls()) == 1


def test_crash_while_executing_is_flagged_never_resent(pg_or_sqlite: Harness) -> None:
    h = pg_or_sqlite
    request_restore(h)
    approvals = h.bot.core.approvals
    # Simulate a crash after the compare-and-set and before any outcome: the row stays `executing`.
    from sqlalchemy import update

    from storage.models import ApprovalRequest

    with h.bot.core.db.session() as session:
        session.execute(update(ApprovalRequest).values(state="executing"))
    real_clock = approvals.clock
    approvals.clock = lambda: real_clock() + timedelta(minutes=10)
    from bot.wiring import ticker_for

    ticker_for(h.bot, 60).tick()
    assert h.restore_calls() == []
    assert "outcome unknown" in h.card().visible_text
    h.run("pending", user=BOB)
    assert "needs a human check" in h.last_ephemeral(BOB).visible_text
    assert "restore.needs_check" in h.actions()


def test_two_approvals_required(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(RESTORE_APPROVALS_REQUIRED="2", SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    c = request_restore(h)
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert h.restore_calls() == []
    assert "1 of 2" in h.card().visible_text
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert "already approved request" in h.last_ephemeral(BOB).visible_text
    h.click(h.card(), "Approve", user=CAROL)
    h.settle()
    assert len(h.restore_calls()) == 1


def test_delete_can_require_approval(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(APPROVAL_REQUIRED_FOR="restore,delete", SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.run("delete 798")
    h.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id=OPS)
    h.settle()
    assert h.api_calls("DELETE") == []
    c = h.card()
    assert "Delete request" in c.visible_text
    h.click(c, "Approve", user=BOB)
    h.settle()
    assert [r.path for r in h.api_calls("DELETE")] == ["/api/v1/snapshots/798/"]


def test_restore_of_in_progress_snapshot_is_refused(harness: Harness) -> None:
    busy = harness.sim.add_snapshot(12347, "busy", status="in_progress", size_mb=None)
    harness.run(f"restore {busy}")
    assert "not completed" in harness.last_ephemeral().visible_text
    assert harness.channel(OPS) == []  # no card
    assert harness.restore_calls() == []
    harness.run("restore 4242")
    assert "Snapshot 4242 does not exist" in harness.last_ephemeral().visible_text

""" "Free oldest snapshot first" protects a snapshot named by ANY open request on the server (issue 24 §7), not only
those among the newest 100 open requests (the page `requests.open()` reads)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from devkit.simulator import VpsSimulator
from storage.models import ApprovalRequest
from tests.app_fixtures import BOB, Harness
from tests.scenario.test_safety_snapshot import APPROVALS, FREE, calls_in_order, fill_server, request_restore


def add_open_deletes(h: Harness, *snapshots: tuple[int, int]) -> None:
    """Open delete requests for (server id, snapshot id), each newer than the last: a busy team's backlog."""
    with h.bot.core.db.session() as session:
        template = session.scalars(select(ApprovalRequest).order_by(ApprovalRequest.id.desc()).limit(1)).one()
        columns = [c.name for c in ApprovalRequest.__table__.columns if c.name != "id"]
        for i, (server_id, snapshot_id) in enumerate(snapshots):
            row = ApprovalRequest(**{name: getattr(template, name) for name in columns})
            row.kind, row.server_id, row.snapshot_id = "delete", server_id, snapshot_id
            row.created_at = template.created_at + timedelta(seconds=i + 1)
            session.add(row)


def test_a_snapshot_named_by_an_old_open_request_is_never_the_one_freed(make_harness: Callable[..., Harness]) -> None:
    sim = VpsSimulator(completion_delay=3600)
    h = make_harness(
        sim=sim,
        SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
        RESTORE_SAFETY_SNAPSHOT="auto",
        APPROVAL_REQUIRED_FOR="restore,delete",
    )
    fill_server(h)  # 5 of 5 on server 12345: 798 (oldest), 801, 850, 851, 852
    card = request_restore(h, 801)
    # An open delete request names the oldest (798), then 120 newer ones elsewhere push it out of a newest-100 page.
    add_open_deletes(h, (12345, 798), *[(54321, 90_000 + i) for i in range(120)])
    h.click(card, FREE, user=BOB)
    h.settle()
    proposed = h.card().visible_text  # a delete needs approval here: the card of what "Free oldest" asked
    assert "#850" in proposed and "#798" not in proposed, proposed
    assert calls_in_order(h) == []

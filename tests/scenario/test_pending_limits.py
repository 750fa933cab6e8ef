"""`/snapshot pending` with more than one message can hold, through signed requests: never more than Slack's 50
blocks, whatever mix of waiting requests (two blocks each for an approver: the entry and its buttons), requests
that need a human check and operations with an unknown outcome; the answer says how many there are in all and
where to see the ones it left out.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta

from bot.usecases.context import Actor, utcnow
from storage.audit import Action, Outcome
from tests.app_fixtures import ALICE, BOB, CAROL, OPS, Harness

APPROVALS = "C0APPROVE"
ROLES = {"SNAPSHOT_OPERATORS": ALICE, "SNAPSHOT_APPROVERS": BOB}


def seed_requests(h: Harness, pending: int, needs_check: int) -> None:
    """Open requests as earlier `/snapshot restore`s would have left them (the set-up, not what is tested)."""
    service = h.bot.core.approvals
    now = utcnow()
    with service.db.session() as session:
        for i in range(pending + needs_check):
            row = service.requests.add(
                session,
                kind="restore",
                requester_id=ALICE,
                requester_name="alice",
                team_id="T1",
                channel_id=OPS,
                snapshot_id=5000 + i,
                snapshot_name=f"nightly-{i}",
                snapshot_status="completed",
                snapshot_size_mb=100,
                snapshot_created_at=now - timedelta(days=1),
                snapshot_description="",
                server_id=20000 + i,
                server_name=f"web-{i}",
                approvals_required=1,
                created_at=now - timedelta(minutes=i),
                expires_at=now + timedelta(hours=1),
                updated_at=now,
                bound_digest="",
                request_reason="",
                result_message="",
                safety_offer="",
            )
            if i >= pending:
                service.requests.flag_needs_check(session, row.id, "", now)


def seed_unknown_outcomes(h: Harness, count: int) -> None:
    """Operations a killed process left with an intent and no outcome, flagged by the recovery sweep."""
    core = h.bot.core
    alice = Actor(ALICE, "alice", "T1", OPS)
    for i in range(count):
        core.audit.append(
            alice.entry(
                Action.CREATE_REQUESTED,
                Outcome.INTENT,
                server_id=12345,
                operation_id=str(uuid.uuid4()),
                details={"name": f"pre-deploy-{i}"},
            )
        )
    core.recovery.stale_after = timedelta(0)
    assert len(core.recovery.sweep()) == count


def test_pending_never_exceeds_fifty_blocks_and_counts_every_request(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, **ROLES)
    seed_requests(h, pending=110, needs_check=20)  # more than the 100 newest the list reads
    seed_unknown_outcomes(h, 12)

    h.run("pending", user=BOB)  # an approver: every waiting request would bring its buttons

    answer = h.last_ephemeral(BOB)
    assert 0 < len(answer.blocks) <= 50
    text = answer.visible_text
    assert "130 open requests" in text
    entries = [b for b in answer.blocks if b.get("type") == "section" and "asked by" in b["text"]["text"]]
    more = re.search(r"…and (\d+) more not shown here — see the App Home tab, or their cards in", text)
    assert more and int(more.group(1)) == 130 - len(entries)
    assert f"<#{APPROVALS}>" in text
    # The unknown outcomes come after the requests, shortened and counted too.
    assert "Outcome unknown — check" in text
    assert text.count("pre-deploy-") == 8 and "…and 4 more." in text
    assert "12 operations with unknown outcome" in answer.text


def test_pending_with_only_unknown_outcomes_says_there_are_no_requests(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, **ROLES)
    seed_unknown_outcomes(h, 1)
    h.run("pending", user=BOB)
    answer = h.last_ephemeral(BOB)
    assert answer.text.startswith("No open requests; 1 operation with unknown outcome")
    assert "Outcome unknown — check" in answer.visible_text and "more not shown" not in answer.visible_text


def test_more_unknown_outcomes_than_are_read_are_not_counted_short(make_harness: Callable[..., Harness]) -> None:
    """Only the newest 20 are read: with 25, the answer says "more than 20" and where to find them all, instead of
    claiming there are 20."""
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, **ROLES)
    seed_unknown_outcomes(h, 25)
    h.run("pending", user=BOB)
    answer = h.last_ephemeral(BOB)
    assert answer.text.startswith("No open requests; more than 20 operations with unknown outcome")
    text = answer.visible_text
    assert text.count("pre-deploy-") == 8
    assert "…and 12 more shown here, and older ones: an admin's `/snapshot audit action:restore.needs_check`" in text
    assert "20 operations with unknown outcome" not in answer.text.replace("more than 20", "")


def test_the_audit_filter_the_answer_names_finds_every_unknown_create(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, SNAPSHOT_ADMINS=CAROL, **ROLES)
    seed_unknown_outcomes(h, 3)
    h.run("audit action:create.needs_check", user=CAROL)
    answer = h.last_ephemeral(CAROL)
    assert answer.text == "3 audit events"
    assert answer.visible_text.count("create.needs_check` unknown") == 3

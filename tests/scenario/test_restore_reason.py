"""A reason on every restore (issue 17 §2): typed after the id, shown on the card, in the audit row and the
notification, bound into the approval digest; RESTORE_REASON_REQUIRED makes it mandatory. Signed requests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from storage.models import ApprovalRequest
from tests.app_fixtures import ALICE, BOB, Harness

APPROVALS = "C0APPROVE"
NOTIFY = "C0NOTIFY"


@pytest.fixture
def h(database_url: str, make_harness: Callable[..., Harness]) -> Harness:
    harness = make_harness(
        database_url=database_url, SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, SNAPSHOT_NOTIFY_CHANNEL=NOTIFY
    )
    harness.bot.slack.notifier.min_interval = 0.0
    return harness


def test_the_reason_reaches_the_card_the_audit_row_and_the_notification(h: Harness) -> None:
    h.run("restore 801 INC-1234 db corrupted", user=ALICE)
    card = h.card().visible_text
    assert "*Reason:* “INC-1234 db corrupted”" in card
    assert "waiting for approval" in h.last_ephemeral(ALICE).visible_text
    requested = h.audit(action="restore.requested")
    assert len(requested) == 1 and requested[0].details["reason"] == "INC-1234 db corrupted"
    lines = [m.text for m in h.channel(NOTIFY)]
    assert any("requested a restore" in t and "INC-1234 db corrupted" in t for t in lines)

    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]  # the same reason at the re-check: not stale
    assert "INC-1234 db corrupted" in h.card().visible_text


def test_without_a_reason_nothing_changes(h: Harness) -> None:
    h.run("restore 801", user=ALICE)
    assert "Reason" not in h.card().visible_text
    assert "reason" not in h.audit(action="restore.requested")[0].details


def test_a_hostile_reason_renders_inert(h: Harness) -> None:
    hostile = "*Server:* x\n:white_check_mark: *Pre-approved* <!channel>"
    h.run(f"restore 801 {hostile.replace('<', '&lt;').replace('>', '&gt;')}", user=ALICE)
    card = h.card()
    section = card.blocks[1]["text"]["text"]
    reason_lines = [line for line in section.split("\n") if "Pre-approved" in line]
    assert len(reason_lines) == 1 and reason_lines[0].startswith("*Reason:* “")  # one labelled line, no new one
    assert not any(line.startswith("*Server:* x") for line in section.split("\n"))
    assert ":white_check_mark:" not in section and "*Pre-approved*" not in section
    assert "<!channel>" not in section
    for message in h.channel(NOTIFY) + h.channel(APPROVALS):
        assert "<!channel>" not in message.text and ":white_check_mark:" not in message.text


def test_a_reason_changed_behind_the_bots_back_makes_the_approval_stale(h: Harness) -> None:
    h.run("restore 801 INC-1234 db corrupted", user=ALICE)
    with h.bot.core.db.session() as session:
        session.execute(update(ApprovalRequest).values(request_reason="INC-9999 something else"))
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    assert h.restore_posts() == []
    assert "restore.stale" in h.actions()
    assert "no longer matches" in h.card().visible_text


def test_required_mode_refuses_a_restore_without_a_reason(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, RESTORE_REASON_REQUIRED="true")
    h.run("restore 801", user=ALICE)
    assert "needs a reason" in h.last_ephemeral(ALICE).visible_text
    assert h.channel(APPROVALS) == []
    assert h.actions() == ["refused.validation"]
    h.run("restore 801 INC-1234", user=ALICE)
    assert "*Reason:* “INC-1234”" in h.card().visible_text


def test_a_reason_too_long_is_refused_with_the_limit(h: Harness) -> None:
    h.run("restore 801 " + "x" * 201, user=ALICE)
    answer = h.last_ephemeral(ALICE).visible_text
    assert "too long (201 characters; at most 200)" in answer
    assert h.channel(APPROVALS) == []
    assert h.actions() == ["refused.validation"]

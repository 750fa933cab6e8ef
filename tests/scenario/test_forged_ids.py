"""Forged ids in clicks and form submissions: parsed where they come in, refused in words, never read as another id.

A button's value and a form's metadata are ours, but a click is only a signed form post: whatever value it carries
gets the answer a typed bad id gets, and changes nothing. Full-width and other scripts' digits are the case to
watch: Python's `int()` reads `１` as 1, which would turn a junk value into a real request's id.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.app_fixtures import ALICE, BOB, OPS, Harness

APPROVALS = "C0APPROVE"
# Each is junk as an id: full-width, superscript and Bengali digits, an exponent, a sign, zero, too large, SQL.
FORGED = ["１", "²", "১", "1e3", "-1", "0", "9" * 20, "1; drop table approvals", ""]


@pytest.fixture
def h(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)


def click(h: Harness, action_id: str, value: str, user: str) -> None:
    response = h.driver.block_action(action_id, value, user_id=user, channel_id=OPS)
    assert response.status == 200, (action_id, value, response.body)
    h.settle()


def test_a_forged_request_id_names_no_request_and_leaves_the_real_one_pending(h: Harness) -> None:
    h.run("restore 801")  # request #1, pending: the id `１` would be read as if int() parsed it
    for action_id in ("approval_approve", "approval_approve_no_safety", "approval_cancel", "approval_free_oldest"):
        for value in FORGED:
            seen = len(h.ephemerals(BOB))
            click(h, action_id, value, BOB)
            told = h.ephemerals(BOB)[seen:]
            assert [e.visible_text for e in told] == [":warning: That approval request does not exist."], (
                action_id,
                value,
            )
    assert h.restore_calls() == [] and h.mutating_calls() == []
    assert h.bot.core.approvals.get(1).state == "pending"
    assert not [a for a in h.actions() if a.startswith(("restore.approval", "delete.", "refused."))]

    click(h, "approval_approve", "1", BOB)  # the same click with the real id: the listener reads ids at all
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]


def test_a_forged_reject_opens_no_form_and_a_forged_reject_form_decides_nothing(h: Harness) -> None:
    h.run("restore 801")
    for value in FORGED:
        click(h, "approval_reject", value, BOB)
    assert h.slack.calls_to("views.open") == []
    for forged in ("１", "1e3", "-1", None, [1]):
        response = h.driver.view_submission(
            "reject_request",
            {"reason": {"value": {"type": "plain_text_input", "value": "forged"}}},
            user_id=BOB,
            private_metadata=json.dumps({"request_id": forged, "channel": OPS}),
        )
        assert response.status == 200 and not response.body.strip(), response.body  # acknowledged, no errors
    h.settle()
    assert h.bot.core.approvals.get(1).state == "pending"
    assert "approval.rejected" not in h.actions()


@pytest.mark.parametrize(
    ("action_id", "operation"), [("snapshot_delete", "delete"), ("snapshot_delete_confirm", "delete")]
)
def test_a_forged_snapshot_id_on_a_delete_button_is_answered_and_audited_as_a_typed_one(
    h: Harness, action_id: str, operation: str
) -> None:
    for value, words in [
        ("１", "The snapshot id must be a whole number, like 12345 — got `１`."),
        ("1e3", "The snapshot id must be a whole number, like 12345 — got `1e3`."),
        ("0", "The snapshot id must be a positive whole number."),
        ("", "The snapshot id is missing."),
    ]:
        click(h, action_id, value, ALICE)
        assert h.last_ephemeral(ALICE).visible_text == ":warning: " + words, value
    assert h.mutating_calls() == []
    refused = h.audit(action="refused.validation")
    assert len(refused) == 4
    assert {(r.actor_id, r.details["operation"], r.details["field"]) for r in refused} == {
        (ALICE, operation, "snapshot id")
    }


def test_a_forged_snapshot_id_asks_for_no_delete_approval_either(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, APPROVAL_REQUIRED_FOR="restore,delete")
    click(h, "snapshot_delete_confirm", "８０１", ALICE)  # full-width 801
    assert "must be a whole number" in h.last_ephemeral(ALICE).visible_text
    assert h.channel(APPROVALS) == [] and h.bot.core.approvals.open_requests() == []
    assert [r.details["operation"] for r in h.audit(action="refused.validation")] == ["delete"]


def test_a_forged_restore_form_asks_for_nothing(h: Harness) -> None:
    for forged in ("８０１", "801.0", -801, None):
        response = h.driver.view_submission(
            "restore_request",
            {"reason": {"value": {"type": "plain_text_input", "value": "INC-1"}}},
            user_id=ALICE,
            private_metadata=json.dumps({"snapshot_id": forged}),
        )
        assert response.status == 200, response.body
    h.settle()
    assert h.bot.core.approvals.open_requests() == []
    assert h.channel(APPROVALS) == [] and h.mutating_calls() == []


def test_a_forged_schedule_id_on_change_is_answered_in_words(h: Harness) -> None:
    h.run("schedule 12345 daily 02:00 keep 2")
    click(h, "schedule_change", "１", ALICE)
    assert h.last_ephemeral(ALICE).visible_text == (
        ":warning: The schedule id must be a whole number, like 12345 — got `１`."
    )
    assert h.slack.calls_to("views.open") == []


def test_a_forged_id_in_the_audit_older_button_is_answered_in_words(h: Harness) -> None:
    h.run("list 12345")  # a row about server 12345 in the trail
    value = json.dumps({"f": {"server": "１２３４５"}, "b": 10**6})
    click(h, "audit_more", value, ALICE)
    assert h.last_ephemeral(ALICE).visible_text == (
        ":warning: The server id must be a whole number, like 12345 — got `１２３４５`."
    )
    click(h, "audit_more", json.dumps({"f": {"server": "12345"}, "b": 10**6}), ALICE)  # the real id is read
    shown = h.last_ephemeral(ALICE).visible_text
    assert "server:12345" in shown and "No audit events match" not in shown

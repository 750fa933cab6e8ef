"""Wording a newcomer meets (issue 17 §6), through signed requests: counts read as English, a modal label is not
"optional" twice, a form error shows no mrkdwn backticks (Slack shows it as plain text), and a command that is
too long says what the limit is."""

from __future__ import annotations

from collections.abc import Callable

from tests.app_fixtures import ALICE, APPROVALS, BOB, Harness


def test_pending_counts_one_request_and_two_requests(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.run("restore 801")
    h.run("pending", user=BOB)
    one = h.last_ephemeral(BOB).visible_text
    assert "1 open request" in one and "1 open requests" not in one and "(s)" not in one
    h.run("restore 806")  # another server: one open restore per server
    h.run("pending", user=BOB)
    assert "2 open requests" in h.last_ephemeral(BOB).visible_text


def test_the_reject_form_says_optional_once(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.run("restore 801")
    assert h.click(h.card(), "Reject", user=BOB).status == 200
    view = h.slack.wait_for("views.open")[-1].args["view"]
    (reason,) = [b for b in view["blocks"] if b.get("block_id") == "reason"]
    # Slack itself shows "(optional)" after the label of an optional input.
    assert reason["optional"] is True and reason["label"]["text"] == "Reason"


def test_form_errors_show_no_backticks(harness: Harness) -> None:
    harness.command("create")
    view = harness.slack.wait_for("views.open")[-1].args["view"]
    answer = harness.driver.view_submission(
        "create_snapshot",
        {
            "server": {"value": {"type": "plain_text_input", "value": "web-1"}},
            "name": {"value": {"type": "plain_text_input", "value": "has spaces"}},
            "description": {"value": {"type": "plain_text_input", "value": None}},
        },
        user_id=ALICE,
        private_metadata=view["private_metadata"],
    )
    errors = answer.json()["errors"]
    (message,) = errors.values()
    assert "`" not in message
    assert "got “web-1”" in message or "(e.g. “before-update_2025”)" in message, message
    assert harness.mutating_calls() == []


def test_a_5000_character_command_is_answered_with_the_limit(harness: Harness) -> None:
    response = harness.command("create 12345 name " + "x" * 5000)
    assert response.status == 200
    text = response.json()["text"]
    assert "That command is too long: 5,018 characters, at most 2,000." in text
    harness.settle()
    assert harness.mutating_calls() == []

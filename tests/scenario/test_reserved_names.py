"""The bot's names are the bot's (issue 29 §4): a snapshot made by hand may not start with a prefix the bot gives
its own snapshots (`pre-restore-`, `auto-`), in any case, typed or through the form; nothing reaches VPS.org and
the refusal is audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.usecases.approval_safety import safety_name
from bot.usecases.bot_names import reserved_prefix
from bot.usecases.schedule_runner import snapshot_name
from tests.app_fixtures import ALICE, Harness


@pytest.mark.parametrize(
    ("typed", "prefix"),
    [
        ("pre-restore-99", "pre-restore-"),
        ("auto-3-20261130-1558", "auto-"),
        ("Auto-3-20261130-1558", "auto-"),
        ("PRE-RESTORE-7", "pre-restore-"),
    ],
)
def test_a_typed_create_with_the_bots_prefix_is_refused(harness: Harness, typed: str, prefix: str) -> None:
    harness.run(f"create 12345 {typed}")
    answer = harness.last_ephemeral().visible_text
    assert f"Snapshot names starting with `{prefix}` are the bot's own" in answer
    assert "Choose another name." in answer
    assert harness.mutating_calls() == []
    refusals = harness.audit(action="refused.validation")
    assert [(r.actor_id, r.details["operation"], r.details["field"]) for r in refusals] == [(ALICE, "create", "name")]


def test_names_that_merely_contain_the_prefix_are_still_free(harness: Harness) -> None:
    harness.run("create 12345 before-auto-update")
    assert [c.json["name"] for c in harness.api_calls("POST", "/api/v1/snapshots/")] == ["before-auto-update"]


def test_the_bots_own_names_use_the_reserved_prefixes() -> None:
    assert reserved_prefix(safety_name(12)) == "pre-restore-"
    assert reserved_prefix(snapshot_name(3, datetime(2026, 11, 30, 15, 58, tzinfo=UTC))) == "auto-"


def test_the_form_refuses_the_bots_prefix_in_the_name_field(harness: Harness) -> None:
    assert harness.command("create").status == 200
    view = harness.slack.wait_for("views.open")[-1].args["view"]
    answer = harness.driver.view_submission(
        "create_snapshot",
        {
            "server": {"create_server": {"type": "external_select", "selected_option": {"value": "12346"}}},
            "name": {"value": {"type": "plain_text_input", "value": "  Pre-Restore-12 "}},
        },
        user_id=ALICE,
        private_metadata=view["private_metadata"],
    )
    assert answer.status == 200
    errors = answer.json()
    assert errors["response_action"] == "errors"
    assert "starting with “pre-restore-” are the bot's own" in errors["errors"]["name"]
    harness.settle()
    assert harness.mutating_calls() == []
    assert [r.details["field"] for r in harness.audit(action="refused.validation")] == ["name"]

"""The reminder and escalation settings (issue 28 §1): defaults, bounds, and escalation that would grant nothing."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


def test_defaults() -> None:
    settings = load_settings({}, dotenv_path=None)
    assert settings.approval_remind_seconds == 900
    assert settings.approval_remind_max == 3
    assert settings.approval_escalate_seconds == 1800
    assert settings.approval_escalate_to == ()


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"APPROVAL_REMIND_SECONDS": "soon"}, "APPROVAL_REMIND_SECONDS"),
        ({"APPROVAL_REMIND_SECONDS": "-1"}, "APPROVAL_REMIND_SECONDS"),
        ({"APPROVAL_REMIND_MAX": "0"}, "APPROVAL_REMIND_MAX"),
        ({"APPROVAL_ESCALATE_SECONDS": "1e99"}, "APPROVAL_ESCALATE_SECONDS"),
        ({"APPROVAL_ESCALATE_TO": "@dave"}, "APPROVAL_ESCALATE_TO"),
        ({"APPROVAL_ESCALATE_TO": "C0CHANNEL"}, "APPROVAL_ESCALATE_TO"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env, dotenv_path=None)
    assert str(raised.value).startswith(name)


def test_escalating_to_someone_who_cannot_approve_is_refused_in_one_line() -> None:
    env = {
        "SNAPSHOT_OPERATORS": "U0ERIN",
        "SNAPSHOT_APPROVERS": "U0BOB,S0LEADS",
        "APPROVAL_ESCALATE_TO": "U0BOB,U0ERIN",
    }
    with pytest.raises(ConfigError) as raised:
        load_settings(env, dotenv_path=None)
    said = str(raised.value)
    assert "\n" not in said
    assert said.startswith("APPROVAL_ESCALATE_TO names U0ERIN, who holds no approver role")
    assert "SNAPSHOT_APPROVERS" in said


@pytest.mark.parametrize(
    "env",
    [
        {"SNAPSHOT_APPROVERS": "U0BOB", "APPROVAL_ESCALATE_TO": "U0BOB"},
        {"SNAPSHOT_APPROVERS": "U0BOB", "SNAPSHOT_ADMINS": "U0DAVE", "APPROVAL_ESCALATE_TO": "U0DAVE"},
        # A group is checked member by member when it is used (that needs Slack), never at start-up.
        {"SNAPSHOT_APPROVERS": "U0BOB", "APPROVAL_ESCALATE_TO": "S0LEADS"},
        # Open mode (no roles): everyone may approve.
        {"APPROVAL_ESCALATE_TO": "U0ANYONE"},
    ],
)
def test_escalating_to_approvers_and_groups_starts(env: dict[str, str]) -> None:
    assert load_settings(env, dotenv_path=None).approval_escalate_to == tuple(env["APPROVAL_ESCALATE_TO"].split(","))


def test_a_user_approving_only_through_a_group_must_be_listed_by_id() -> None:
    """No Slack call at start-up: membership of an approvers' group cannot be seen then, so it does not count."""
    with pytest.raises(ConfigError, match="U0FRANK"):
        load_settings({"SNAPSHOT_APPROVERS": "S0APPROVERS", "APPROVAL_ESCALATE_TO": "U0FRANK"}, dotenv_path=None)

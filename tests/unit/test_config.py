"""Settings: environment over .env, one clear line for a bad value, secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, RateLimit, load_settings


def test_defaults_without_anything() -> None:
    settings = load_settings({}, dotenv_path=None)
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.vps_api_url == "https://admin.vps.org/api/v1/"
    assert settings.database_url == "sqlite:///snapshot-bot.db"
    assert settings.port == 3000
    assert settings.restore_approval_ttl_minutes == 60
    assert settings.restore_approvals_required == 1
    assert settings.approval_required_for == frozenset({"restore"})
    assert not settings.access_control_enabled


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=4000\nVPS_API_URL=http://127.0.0.1:8089/api/v1\nSNAPSHOT_RATE_LIMIT=10/hour\n")
    settings = load_settings({"PORT": "5000"}, dotenv_path=dotenv)
    assert settings.port == 5000
    assert settings.vps_api_url == "http://127.0.0.1:8089/api/v1/"
    assert settings.rate_limit == RateLimit(10, 3600)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_APP_TOKEN": "xoxb-not-an-app-token"}, "SLACK_APP_TOKEN"),
        ({"VPS_API_URL": "admin.vps.org"}, "VPS_API_URL"),
        ({"SNAPSHOT_OPERATORS": "U123,alice"}, "SNAPSHOT_OPERATORS"),
        ({"SNAPSHOT_APPROVAL_CHANNEL": "#ops"}, "SNAPSHOT_APPROVAL_CHANNEL"),
        ({"SNAPSHOT_RATE_LIMIT": "lots"}, "SNAPSHOT_RATE_LIMIT"),
        ({"RESTORE_APPROVALS_REQUIRED": "0"}, "RESTORE_APPROVALS_REQUIRED"),
        ({"APPROVAL_REQUIRED_FOR": "delete"}, "APPROVAL_REQUIRED_FOR"),
        ({"RESTORE_REASON_REQUIRED": "maybe"}, "RESTORE_REASON_REQUIRED"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_malformed_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env, dotenv_path=None)
    assert str(raised.value).startswith(names)


def test_restore_reason_required_is_off_unless_set() -> None:
    assert load_settings({}, dotenv_path=None).restore_reason_required is False
    assert load_settings({"RESTORE_REASON_REQUIRED": "true"}, dotenv_path=None).restore_reason_required is True
    assert load_settings({"RESTORE_REASON_REQUIRED": "false"}, dotenv_path=None).restore_reason_required is False


def test_secrets_never_in_repr_or_errors() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-111-222-secretvalue",
            "SLACK_SIGNING_SECRET": "sigsecret123",
            "VPS_API_TOKEN": "vps_abcdef123456",
        },
        dotenv_path=None,
    )
    shown = repr(settings) + str(settings)
    for secret in ("secretvalue", "sigsecret123", "vps_abcdef123456"):
        assert secret not in shown
    assert settings.slack_bot_token is not None and settings.slack_bot_token.reveal() == "xoxb-111-222-secretvalue"
    with pytest.raises(ConfigError) as raised:
        load_settings({"SLACK_BOT_TOKEN": "xoxp-999-leaky-user-token"}, dotenv_path=None)
    assert "leaky" not in str(raised.value)


def test_serve_without_tokens_stops_with_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "snapshot-bot: configuration error: SLACK_BOT_TOKEN is required for this mode: a bot token starting with xoxb-"
    ]

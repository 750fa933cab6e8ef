"""Settings: environment over .env, one clear line for a bad value, secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, LogFormat, RateLimit, SafetyMode, load_settings
from storage.approval_states import RequestKind


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
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"RESTORE_SAFETY_SNAPSHOT": "sometimes"}, "RESTORE_SAFETY_SNAPSHOT"),
        ({"SNAPSHOT_RESERVE_UNDO_SLOT": "perhaps"}, "SNAPSHOT_RESERVE_UNDO_SLOT"),
    ],
)
def test_malformed_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env, dotenv_path=None)
    assert str(raised.value).startswith(names)


def test_modes_and_kinds_are_parsed_once_into_their_enums() -> None:
    """What the bot compares later is a member, never the text as typed (case and all)."""
    settings = load_settings(
        {"RESTORE_SAFETY_SNAPSHOT": "Always", "LOG_FORMAT": "JSON", "APPROVAL_REQUIRED_FOR": "Restore, DELETE"},
        dotenv_path=None,
    )
    assert settings.restore_safety_snapshot is SafetyMode.ALWAYS
    assert settings.log_format is LogFormat.JSON
    assert settings.approval_required_for == {RequestKind.RESTORE, RequestKind.DELETE}
    defaults = load_settings({}, dotenv_path=None)
    assert defaults.restore_safety_snapshot is SafetyMode.AUTO
    assert defaults.log_format is LogFormat.TEXT


def test_the_undo_slot_is_reserved_by_default_and_only_with_safety_snapshots() -> None:
    assert load_settings({}, dotenv_path=None).undo_slots_reserved == 1
    assert load_settings({"RESTORE_SAFETY_SNAPSHOT": "always"}, dotenv_path=None).undo_slots_reserved == 1
    assert load_settings({"SNAPSHOT_RESERVE_UNDO_SLOT": "false"}, dotenv_path=None).undo_slots_reserved == 0
    assert load_settings({"RESTORE_SAFETY_SNAPSHOT": "off"}, dotenv_path=None).undo_slots_reserved == 0


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


@pytest.mark.parametrize(
    "env",
    [
        {"PORT": "৩০০০"},  # Bengali digits
        {"PORT": "３０００"},  # fullwidth
        {"PORT": "1_000"},  # int() takes underscores
        {"SNAPSHOT_POLL_SECONDS": "٣٠"},  # Arabic-Indic
        {"SNAPSHOT_POLL_SECONDS": "1e3"},
        {"SNAPSHOT_RATE_LIMIT": "৪/minute"},
        {"SNAPSHOT_RATE_LIMIT": "１０/hour"},
    ],
)
def test_numbers_in_settings_are_ascii_digits_only(env: dict[str, str]) -> None:
    (name,) = env
    with pytest.raises(ConfigError) as raised:
        load_settings(env, dotenv_path=None)
    message = str(raised.value)
    assert message.startswith(f"{name} is malformed") and ("0-9" in message or "e.g. 10/hour" in message)


@pytest.mark.parametrize(
    ("name", "pasted"),
    [
        ("SNAPSHOT_RATE_LIMIT", "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"),
        ("PORT", "vps_live_0123456789abcdef"),
        ("LOG_LEVEL", "8f14e45fceea167a5a36dedd4bea2543"),  # shaped like a signing secret
        ("SNAPSHOT_TIMEZONE", "Bearer abcdef"),
    ],
)
def test_a_rejected_value_that_looks_like_a_secret_is_never_echoed(name: str, pasted: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({name: pasted}, dotenv_path=None)
    message = str(raised.value)
    assert message.startswith(name) and "not shown" in message
    assert pasted not in message and pasted[:12] not in message and pasted[-8:] not in message


def test_a_configured_secret_pasted_elsewhere_is_never_echoed() -> None:
    secret = "Sigsecret-0F"  # short and not token-shaped: only knowing the configured value hides it
    with pytest.raises(ConfigError) as raised:
        load_settings({"SLACK_SIGNING_SECRET": secret, "SNAPSHOT_APPROVAL_CHANNEL": secret}, dotenv_path=None)
    assert secret not in str(raised.value) and "not shown" in str(raised.value)


def test_an_ordinary_mistake_is_still_quoted() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"SNAPSHOT_RATE_LIMIT": "lots"}, dotenv_path=None)
    assert "got 'lots'" in str(raised.value)


def test_every_setting_is_read_from_dotenv_too(tmp_path: Path) -> None:
    from bot.server import gunicorn_options

    dotenv = tmp_path / ".env"
    dotenv.write_text(
        f"WEB_CONCURRENCY=5\nSNAPSHOT_TRACEMALLOC_DIR={tmp_path / 'mem'}\nSNAPSHOT_TRACEMALLOC_SECONDS=60\n"
    )
    settings = load_settings({}, dotenv_path=dotenv)
    assert gunicorn_options(settings, None, None)["workers"] == 5
    assert (settings.tracemalloc_dir, settings.tracemalloc_seconds) == (str(tmp_path / "mem"), 60.0)


def test_the_signing_key_path_is_not_masked_but_pem_text_is(tmp_path: Path) -> None:
    from bot.redaction import redact
    from storage.signing import generate_key_file

    path = tmp_path / "keys" / "audit-signing.pem"
    path.parent.mkdir()
    generate_key_file(path)
    settings = load_settings({"AUDIT_SIGNING_KEY": str(path)}, dotenv_path=None)
    line = f"checkpoint witness: {tmp_path}/bot/audit_witness.py wrote {path}"
    assert redact(line) == line  # a path is not a secret: log lines naming files under it stay readable
    pem = path.read_text()
    settings = load_settings({"AUDIT_SIGNING_KEY": pem}, dotenv_path=None)
    assert settings.audit_signing_key is not None
    assert pem.splitlines()[1][:20] not in redact(pem)  # the key itself still is


def test_database_url_and_shell_database_url_are_separate() -> None:
    settings = load_settings({"DATABASE_URL": "sqlite:///prod.db"}, dotenv_path=None)
    assert settings.database_url_configured and settings.shell_database_url is None
    settings = load_settings({"SHELL_DATABASE_URL": "sqlite:///shell.db"}, dotenv_path=None)
    assert not settings.database_url_configured and settings.shell_database_url == "sqlite:///shell.db"

"""Start-up with the TOTP step-up (issue 28 §2): `python -m bot serve` with APPROVAL_STEP_UP=totp and a missing
or bad MFA_ENCRYPTION_KEY stops in one line saying what to do, never showing the key; `python -m bot mfa keygen`
writes a usable key file once, mode 0600, and never overwrites one."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from tests.adapter.test_startup_output import TOKENS, bot, one_line


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "does not exist"),
        (b"not base64 at all!!", "does not hold base64"),
        (base64.b64encode(b"k" * 16) + b"\n", "holds 16 bytes, not 32"),
    ],
)
def test_totp_without_a_usable_key_does_not_start(tmp_path: Path, content: bytes | None, words: str) -> None:
    key = tmp_path / "mfa.key"
    if content is not None:
        key.write_bytes(content)
    done = bot(tmp_path, "serve", APPROVAL_STEP_UP="totp", MFA_ENCRYPTION_KEY=str(key), **TOKENS)
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("snapshot-bot: configuration error: MFA_ENCRYPTION_KEY") and words in line
    assert "mfa keygen" in line
    if content is not None:
        assert content.decode(errors="replace").strip() not in done.stderr


def test_totp_without_the_setting_names_it(tmp_path: Path) -> None:
    done = bot(tmp_path, "serve", APPROVAL_STEP_UP="totp", **TOKENS)
    assert done.returncode == 2
    assert "MFA_ENCRYPTION_KEY is required for APPROVAL_STEP_UP=totp" in one_line(done)


def test_keygen_writes_a_key_the_settings_accept_once(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "mfa.key"
    done = bot(tmp_path, "mfa", "keygen", "--out", str(key))
    assert done.returncode == 0, done.stderr
    assert f"MFA_ENCRYPTION_KEY={key.resolve()}" in done.stdout
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(base64.b64decode(key.read_bytes().strip())) == 32
    assert key.read_text().strip() not in done.stdout
    settings = load_settings({"APPROVAL_STEP_UP": "totp", "MFA_ENCRYPTION_KEY": str(key)}, dotenv_path=None)
    assert settings.mfa_encryption_key is not None and str(key) in settings.mfa_encryption_key.reveal()

    before = key.read_bytes()
    again = bot(tmp_path, "mfa", "keygen", "--out", str(key))
    assert again.returncode == 2 and "never overwrites" in again.stderr and key.read_bytes() == before


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"APPROVAL_STEP_UP": "sms"}, "APPROVAL_STEP_UP is malformed"),
        ({"APPROVAL_STEP_UP_FOR": "restore,reboot"}, "APPROVAL_STEP_UP_FOR is malformed"),
        ({"MFA_ENROLMENT_APPROVAL": "nobody"}, "MFA_ENROLMENT_APPROVAL is malformed"),
    ],
)
def test_malformed_step_up_settings_are_refused(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env, dotenv_path=None)
    assert words in str(raised.value)


def test_defaults_are_off_for_restores_with_admin_approval() -> None:
    settings = load_settings({}, dotenv_path=None)
    assert settings.approval_step_up == "off" and settings.approval_step_up_for == frozenset({"restore"})
    assert settings.mfa_encryption_key is None and settings.mfa_enrolment_approval == "admin"

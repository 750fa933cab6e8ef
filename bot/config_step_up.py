"""The step-up settings (APPROVAL_STEP_UP, APPROVAL_STEP_UP_FOR, MFA_ENCRYPTION_KEY, MFA_ENROLMENT_APPROVAL), read
and refused at start-up in one line each, like every setting (bot/config_values.py).

Rules kept here: `totp` without a usable key never starts (the message names the file and how to make one, never
the key); the key's path is not a secret (its file is), so it is not masked in logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from bot.config_values import ConfigError, Secret, shown, text
from bot.secret_box import KeyFileError, read_key_file

STEP_UP_KINDS = ("restore", "delete", "schedule")


class StepUpMode(StrEnum):
    """APPROVAL_STEP_UP (the use cases' own StepUpMethod has the same values)."""

    OFF = "off"
    TYPED = "typed"
    TOTP = "totp"


class EnrolmentApproval(StrEnum):
    """MFA_ENROLMENT_APPROVAL: who makes an enrolment active."""

    ADMIN = "admin"  # an admin who is a different person
    SELF = "self"  # the person, by confirming a code (small teams)


def step_up_mode(env: Mapping[str, str], name: str = "APPROVAL_STEP_UP") -> StepUpMode:
    raw = (text(env, name) or "off").lower()
    if raw not in StepUpMode.__members__.values():
        raise ConfigError(f"{name} is malformed: expected off, typed or totp, got {shown(env, raw)}")
    return StepUpMode(raw)


def step_up_kinds(env: Mapping[str, str], name: str = "APPROVAL_STEP_UP_FOR") -> frozenset[str]:
    raw = text(env, name)
    if raw is None:
        return frozenset({"restore"})
    kinds = frozenset(k.strip().lower() for k in raw.split(",") if k.strip())
    if not kinds or kinds - set(STEP_UP_KINDS):
        raise ConfigError(
            f"{name} is malformed: expected restore, delete and/or schedule (comma-separated), got {shown(env, raw)}"
        )
    return kinds


def enrolment_approval(env: Mapping[str, str], name: str = "MFA_ENROLMENT_APPROVAL") -> EnrolmentApproval:
    raw = (text(env, name) or "admin").lower()
    if raw not in EnrolmentApproval.__members__.values():
        raise ConfigError(f"{name} is malformed: expected admin or self, got {shown(env, raw)}")
    return EnrolmentApproval(raw)


def mfa_key(env: Mapping[str, str], mode: StepUpMode, name: str = "MFA_ENCRYPTION_KEY") -> Secret | None:
    """The key file's path, checked now: required with APPROVAL_STEP_UP=totp, optional otherwise (enrolment can
    start before totp is switched on)."""
    raw = text(env, name)
    if raw is None:
        if mode == StepUpMode.TOTP:
            raise ConfigError(
                f"{name} is required for APPROVAL_STEP_UP=totp: the path to a file holding a 32-byte key (base64); "
                "`python -m bot mfa keygen --out FILE` writes one"
            )
        return None
    try:
        read_key_file(raw, name)
    except KeyFileError as error:
        raise ConfigError(str(error)) from None
    return Secret(raw, masked=False)

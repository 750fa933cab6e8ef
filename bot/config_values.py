"""How one setting's text becomes a value, or a `ConfigError` that names the variable and the expected form.

Rules this module keeps (issue 24 §3, §4):
- Numbers are ASCII digits only: `[0-9]`, never `\\d` or `int()` alone, which also take ৪, ٢, fullwidth ６ and `1_000`.
- A rejected value is quoted only when it cannot be a credential pasted in the wrong place (`shown`): these errors
  are printed before any redactor knows the configured secrets.
- Secrets are wrapped in `Secret`, which never prints its value; a key file's path is not a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from bot.redaction import redact, remember_secret
from bot.slack_ids import CHANNEL_ID

# Numbers are ASCII digits only ([0-9], never \d or int() alone, which also take ৪, ٢ and fullwidth ６).
_RATE_LIMIT = re.compile(r"\s*([0-9]{1,9})\s*/\s*(second|minute|hour|day)\s*")
N = TypeVar("N", int, float)

_WHOLE = re.compile(r"-?[0-9]{1,12}")  # a minus sign gets "out of range", which says more
_DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?")
_PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the variable and what is expected."""


class Secret:
    """A string that refuses to be printed: `repr`/`str` show a mask, `.reveal()` gives the value."""

    __slots__ = ("__weakref__", "_value")

    def __init__(self, value: str, *, masked: bool = True) -> None:
        self._value = value
        # Every configured secret (and any 8+ character prefix of it) is masked wherever `redact` runs; a value
        # that only says where the secret is (a key file's path) is not masked (`masked=False`).
        if masked:
            remember_secret(value, owner=self)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class RateLimit:
    count: int
    period_seconds: int

    def describe(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[self.period_seconds]
        return f"{self.count}/{unit}"


EXPECTED = {
    "SLACK_BOT_TOKEN": "a bot token starting with xoxb-",
    "SLACK_SIGNING_SECRET": "the app's signing secret (Basic Information page)",
    "SLACK_APP_TOKEN": "an app-level token starting with xapp- (Socket Mode)",
    "VPS_API_TOKEN": "a VPS.org API token",
}


# A rejected value is quoted in the error only when it cannot be a credential pasted in the wrong place.
_SECRET_SETTINGS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "VPS_API_TOKEN", "AUDIT_SIGNING_KEY")
SHOWN_MAX = 40
_RANDOM_LOOKING = re.compile(r"(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{16,}")


def shown(env: Mapping[str, str], raw: str) -> str:
    """How an error shows a rejected value: quoted when short and shaped like no secret, else only its length.

    Start-up errors are printed before any redactor knows the configured secrets, so this decides on its own:
    anything token-shaped (`redact` would mask it), long and random-looking (a signing secret is 32 hex
    characters), or part of a configured secret's value is described, never shown.
    """
    secrets = [value.strip() for name in _SECRET_SETTINGS if len((value := env.get(name) or "").strip()) >= 6]
    hidden = (
        len(raw) > SHOWN_MAX
        or redact(raw) != raw
        or _RANDOM_LOOKING.fullmatch(raw) is not None
        or any(secret in raw or (len(raw) >= 6 and raw in secret) for secret in secrets)
    )
    return f"a {len(raw)}-character value (not shown: it may be a secret)" if hidden else repr(raw)


def text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def secret(env: Mapping[str, str], name: str, prefix: str | None = None) -> Secret | None:
    value = text(env, name)
    if value is None:
        return None
    if prefix and not value.startswith(prefix):
        # Never echo the value itself: it may be a real secret pasted in the wrong place.
        raise ConfigError(f"{name} is malformed: expected {EXPECTED[name]}")
    if any(ch.isspace() for ch in value):
        raise ConfigError(f"{name} is malformed: it must not contain spaces")
    return Secret(value)


def url(env: Mapping[str, str], name: str, default: str) -> str:
    value = text(env, name) or default
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{name} is malformed: expected an http(s) URL, got {shown(env, value)}")
    return value if value.endswith("/") else value + "/"


def whole_number(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    return _bounded(env, name, default, minimum, maximum, _WHOLE, int, "a whole number (digits 0-9)")


def _bounded(
    env: Mapping[str, str],
    name: str,
    default: N,
    minimum: N,
    maximum: N,
    form: re.Pattern[str],
    parse: Callable[[str], N],
    expected: str,
) -> N:
    """A number typed in ASCII digits (`form`), within [minimum, maximum]; the one rule for both kinds."""
    raw = text(env, name)
    if raw is None:
        return default
    if not form.fullmatch(raw):
        raise ConfigError(f"{name} is malformed: expected {expected}, got {shown(env, raw)}")
    value = parse(raw)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} is out of range: expected {minimum}..{maximum}, got {value}")
    return value


class SafetyMode(StrEnum):
    """`RESTORE_SAFETY_SNAPSHOT`: whether an approved restore takes a safety snapshot of its server first."""

    AUTO = "auto"  # offered, and on by default, when the server has a free slot
    ALWAYS = "always"  # required: a full server blocks the restore until a slot is free
    OFF = "off"


class LogFormat(StrEnum):
    """`LOG_FORMAT`."""

    TEXT = "text"
    JSON = "json"  # one JSON object per line, for log shippers


def safety_mode(env: Mapping[str, str], name: str) -> SafetyMode:
    mode = (text(env, name) or SafetyMode.AUTO).lower()
    try:
        return SafetyMode(mode)
    except ValueError:
        raise ConfigError(f"{name} is malformed: expected auto, always or off, got {shown(env, mode)}") from None


def log_format(env: Mapping[str, str], name: str) -> LogFormat:
    raw = (text(env, name) or LogFormat.TEXT).lower()
    try:
        return LogFormat(raw)
    except ValueError:
        raise ConfigError(f"{name} is malformed: expected text or json, got {shown(env, raw)}") from None


def boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = text(env, name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name} is malformed: expected true or false, got {shown(env, raw)}")


def number(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float) -> float:
    return _bounded(env, name, default, minimum, maximum, _DECIMAL, float, "a number like 2.5 (digits 0-9)")


def id_list(env: Mapping[str, str], name: str, *patterns: re.Pattern[str], what: str) -> tuple[str, ...]:
    raw = text(env, name)
    if raw is None:
        return ()
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if not any(p.match(item) for p in patterns):
            raise ConfigError(f"{name} is malformed: {shown(env, item)} is not {what}")
    return items


def channel(env: Mapping[str, str], name: str) -> str | None:
    value = text(env, name)
    if value is not None and not CHANNEL_ID.match(value):
        raise ConfigError(f"{name} is malformed: expected a channel id like C0123ABCD, got {shown(env, value)}")
    return value


def rate_limit(env: Mapping[str, str], name: str) -> RateLimit | None:
    raw = text(env, name)
    if raw is None:
        return None
    match = _RATE_LIMIT.fullmatch(raw.lower())
    if not match or int(match.group(1)) < 1:
        expected = "expected e.g. 10/hour (per second|minute|hour|day)"
        raise ConfigError(f"{name} is malformed: {expected}, got {shown(env, raw)}")
    return RateLimit(int(match.group(1)), _PERIOD_SECONDS[match.group(2)])


def approval_kinds(env: Mapping[str, str], name: str) -> frozenset[str]:
    """The kinds a person asks for that need a second person's approval: restores always, deletes when named.
    Their names, as stored (`storage.approval_states.RequestKind` members equal them): settings are read without
    importing storage (`--help` stays cheap); `ApprovalPolicy` holds them as members."""
    raw = text(env, name)
    if raw is None:
        return frozenset({"restore"})
    kinds = frozenset(k.strip().lower() for k in raw.split(",") if k.strip())
    unknown = kinds - {"restore", "delete"}
    if unknown or "restore" not in kinds:
        raise ConfigError(f"{name} is malformed: expected 'restore' or 'restore,delete', got {shown(env, raw)}")
    return kinds


def zone(env: Mapping[str, str], name: str) -> str:
    """An IANA time zone name (e.g. Europe/Berlin) that zoneinfo knows; UTC when unset."""
    raw = text(env, name)
    if raw is None:
        return "UTC"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        expected = "expected an IANA time zone like Europe/Berlin"
        raise ConfigError(f"{name} is malformed: {expected}, got {shown(env, raw)}") from None
    return raw


def signing_key(env: Mapping[str, str], name: str) -> Secret | None:
    from storage.signing import KeyLoadError, load_signer

    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        load_signer(raw, name)  # fail at start-up, not at the first checkpoint; the message never shows the key
    except KeyLoadError as error:
        unreadable = "-----BEGIN" not in raw and "Ed25519" not in str(error)
        todo = "; set it to the key file `python -m bot audit keygen --out FILE` wrote, readable by the bot's user"
        raise ConfigError(f"{error}{todo if unreadable else ''}") from None
    # A path is not a secret (the file is), and masking it would garble every log line that names a file under it.
    return Secret(raw, masked="-----BEGIN" in raw)


def checkpoint_file(env: Mapping[str, str], name: str) -> str | None:
    """The witness file's path; its folder is created here, or start-up stops in one line saying why.

    Found at start, not by the checkpoint writer failing every few seconds later.
    """
    raw = text(env, name)
    if raw is None:
        return None
    folder = Path(raw).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"{name}: cannot create the folder {folder} ({error.strerror}); create it, writable by the bot's user, "
            "or choose another path"
        ) from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{name}: the folder {folder} is not writable; make it writable by the bot's user")
    return raw


def verify_keys(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    from storage.signing import KeyLoadError, load_public_key, split_key_list

    items = tuple(split_key_list(env.get(name, "")))
    for item in items:
        try:
            load_public_key(item, name)
        except KeyLoadError as error:
            raise ConfigError(str(error)) from None
    return items

"""Settings from the environment (and `.env`), validated once at start-up.

Every setting a user may configure is read here and documented in `.env.example` and docs/operations.md.
Secrets are wrapped in `Secret` so they never show up in `repr`, logs or error messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values

from bot.redaction import remember_secret
from bot.slack_ids import CHANNEL_ID, GROUP_ID, USER_ID

N = TypeVar("N", int, float)

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_VPS_API_URL = "https://admin.vps.org/api/v1/"
DEFAULT_DATABASE_URL = "sqlite:///snapshot-bot.db"

_RATE_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the variable and what is expected."""


class Secret:
    """A string that refuses to be printed: `repr`/`str` show a mask, `.reveal()` gives the value."""

    __slots__ = ("__weakref__", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        # Every configured secret (and any 8+ character prefix of it) is masked wherever `redact` runs.
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


@dataclass(frozen=True)
class Settings:
    slack_bot_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    slack_app_token: Secret | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_team_id: str | None = None
    slack_app_id: str | None = None  # when set, requests for any other app id are refused
    vps_api_url: str = DEFAULT_VPS_API_URL
    vps_api_token: Secret | None = None
    vps_timeout_seconds: float = 10.0
    database_url: str = DEFAULT_DATABASE_URL
    port: int = 3000
    approval_channel: str | None = None
    notify_channel: str | None = None
    restore_approval_ttl_minutes: int = 60
    restore_approvals_required: int = 1
    approval_required_for: frozenset[str] = frozenset({"restore"})
    restore_reason_required: bool = False
    restore_safety_snapshot: str = "auto"  # auto | always | off (bot/usecases/approval_safety.py)
    restore_safety_timeout_seconds: float = 900.0  # how long the safety snapshot may take to complete
    viewers: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    allowed_channels: tuple[str, ...] = ()
    rate_limit: RateLimit | None = None
    poll_seconds: float = 30.0
    track_timeout_minutes: int = 60
    recovery_after_seconds: float | None = None
    recheck_deadline_seconds: float = 60.0  # the whole pre-call re-check of an approved action, retries included
    claim_ttl_seconds: float = 90.0  # how long an executor's claim on an approved request holds unless renewed
    host: str = "0.0.0.0"
    worker_threads: int = 16
    # Post-ack jobs that may wait for a free worker thread; past it a request is turned away at the ack ("busy").
    work_queue_limit: int = 1000
    # At shutdown (SIGTERM, a worker recycled, Ctrl-C in Socket Mode): how long post-ack work may still run.
    drain_seconds: float = 25.0
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per line, for log shippers
    metrics_port: int | None = None  # Prometheus /metrics on its own listener; None = off
    metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR for gunicorn workers' values; None = a temporary one
    # gunicorn recycles a worker after this many requests (plus up to the jitter, so workers don't restart
    # together): the guard against slow memory growth in a long-lived worker. 0 = never.
    max_requests: int = 10000
    max_requests_jitter: int = 1000
    # Signed audit checkpoints (storage.checkpoints): the key is PEM text or a file path; None = not witnessed.
    audit_signing_key: Secret | None = None
    audit_verify_keys: tuple[str, ...] = ()
    audit_checkpoint_every: int = 100
    audit_checkpoint_minutes: int = 15
    audit_checkpoint_channel: str | None = None
    audit_checkpoint_file: str | None = None
    # Schedules (issue 18): the zone their wall-clock times are in, and the most often one may run.
    snapshot_timezone: str = "UTC"
    schedule_min_interval_minutes: int = 60

    @property
    def access_control_enabled(self) -> bool:
        return bool(self.viewers or self.operators or self.approvers or self.admins)

    def require(self, *names: str) -> None:
        """Stop with a clear message when a mode needs a setting that is not there."""
        for name in names:
            attr = _ENV_TO_ATTR[name]
            if getattr(self, attr) in (None, ""):
                raise ConfigError(f"{name} is required for this mode: {_EXPECTED[name]}")


_ENV_TO_ATTR = {
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "SLACK_SIGNING_SECRET": "slack_signing_secret",
    "SLACK_APP_TOKEN": "slack_app_token",
    "VPS_API_TOKEN": "vps_api_token",
}
_EXPECTED = {
    "SLACK_BOT_TOKEN": "a bot token starting with xoxb-",
    "SLACK_SIGNING_SECRET": "the app's signing secret (Basic Information page)",
    "SLACK_APP_TOKEN": "an app-level token starting with xapp- (Socket Mode)",
    "VPS_API_TOKEN": "a VPS.org API token",
}


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _secret(env: Mapping[str, str], name: str, prefix: str | None = None) -> Secret | None:
    value = _text(env, name)
    if value is None:
        return None
    if prefix and not value.startswith(prefix):
        # Never echo the value itself: it may be a real secret pasted in the wrong place.
        raise ConfigError(f"{name} is malformed: expected {_EXPECTED[name]}")
    if any(ch.isspace() for ch in value):
        raise ConfigError(f"{name} is malformed: it must not contain spaces")
    return Secret(value)


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = _text(env, name) or default
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{name} is malformed: expected an http(s) URL, got {value!r}")
    return value if value.endswith("/") else value + "/"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    return _number(env, name, default, minimum, maximum, int, "a whole number")


def _float(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float) -> float:
    return _number(env, name, default, minimum, maximum, float, "a number")


def _number(
    env: Mapping[str, str], name: str, default: N, minimum: N, maximum: N, parse: Callable[[str], N], what: str
) -> N:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name} is malformed: expected {what}, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} is out of range: expected {minimum}..{maximum}, got {value}")
    return value


SAFETY_MODES = ("auto", "always", "off")


def _safety_mode(env: Mapping[str, str], name: str) -> str:
    mode = (_text(env, name) or "auto").lower()
    if mode not in SAFETY_MODES:
        raise ConfigError(f"{name} is malformed: expected auto, always or off, got {mode[:40]!r}")
    return mode


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _text(env, name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name} is malformed: expected true or false, got {raw!r}")


def _id_list(env: Mapping[str, str], name: str, *patterns: re.Pattern[str], what: str) -> tuple[str, ...]:
    raw = _text(env, name)
    if raw is None:
        return ()
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if not any(p.match(item) for p in patterns):
            raise ConfigError(f"{name} is malformed: {item!r} is not {what}")
    return items


def _channel(env: Mapping[str, str], name: str) -> str | None:
    value = _text(env, name)
    if value is not None and not CHANNEL_ID.match(value):
        raise ConfigError(f"{name} is malformed: expected a channel id like C0123ABCD, got {value!r}")
    return value


def _rate_limit(env: Mapping[str, str], name: str) -> RateLimit | None:
    raw = _text(env, name)
    if raw is None:
        return None
    match = _RATE_LIMIT.match(raw.lower())
    if not match or int(match.group(1)) < 1:
        raise ConfigError(f"{name} is malformed: expected e.g. 10/hour (per second|minute|hour|day), got {raw!r}")
    return RateLimit(int(match.group(1)), _PERIOD_SECONDS[match.group(2)])


def _approval_kinds(env: Mapping[str, str], name: str) -> frozenset[str]:
    raw = _text(env, name)
    if raw is None:
        return frozenset({"restore"})
    kinds = frozenset(k.strip().lower() for k in raw.split(",") if k.strip())
    unknown = kinds - {"restore", "delete"}
    if unknown or "restore" not in kinds:
        raise ConfigError(f"{name} is malformed: expected 'restore' or 'restore,delete', got {raw!r}")
    return kinds


def _zone(env: Mapping[str, str], name: str) -> str:
    """An IANA time zone name (e.g. Europe/Berlin) that zoneinfo knows; UTC when unset."""
    raw = _text(env, name)
    if raw is None:
        return "UTC"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} is malformed: expected an IANA time zone like Europe/Berlin, got {raw!r}") from None
    return raw


def _signing_key(env: Mapping[str, str], name: str) -> Secret | None:
    from storage.signing import KeyLoadError, load_signer

    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        load_signer(raw, name)  # fail at start-up, not at the first checkpoint; the message never shows the key
    except KeyLoadError as error:
        raise ConfigError(str(error)) from None
    return Secret(raw)


def _verify_keys(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    from storage.signing import KeyLoadError, load_public_key, split_key_list

    items = tuple(split_key_list(env.get(name, "")))
    for item in items:
        try:
            load_public_key(item, name)
        except KeyLoadError as error:
            raise ConfigError(str(error)) from None
    return items


def load_settings(environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env") -> Settings:
    """Read settings: the process environment wins over `.env`."""
    env: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    log_level = (_text(env, "LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LOG_LEVEL is malformed: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    team_id = _text(env, "SLACK_TEAM_ID")
    if team_id is not None and not re.match(r"^[TE][A-Z0-9]{2,}$", team_id):
        raise ConfigError(f"SLACK_TEAM_ID is malformed: expected a workspace id like T0123ABCD, got {team_id!r}")
    recheck_deadline = _float(env, "SNAPSHOT_RECHECK_DEADLINE_SECONDS", 60.0, 0.05, 3600.0)
    claim_ttl = _float(env, "SNAPSHOT_CLAIM_TTL_SECONDS", recheck_deadline + 30.0, 0.1, 7200.0)
    if claim_ttl <= recheck_deadline:
        # The executor must give up on its own (and say "nothing was sent") before its claim can lapse.
        raise ConfigError(
            f"SNAPSHOT_CLAIM_TTL_SECONDS is out of range: it must be longer than SNAPSHOT_RECHECK_DEADLINE_SECONDS "
            f"({recheck_deadline:g}), got {claim_ttl:g}"
        )
    log_format = (_text(env, "LOG_FORMAT") or "text").lower()
    if log_format not in {"text", "json"}:
        raise ConfigError(f"LOG_FORMAT is malformed: expected text or json, got {log_format!r}")
    metrics_port = _int(env, "METRICS_PORT", 0, 0, 65535) or None
    if metrics_port is not None and metrics_port == _int(env, "PORT", 3000, 1, 65535):
        raise ConfigError("METRICS_PORT is out of range: it must differ from PORT (metrics never share Slack's port)")
    app_id = _text(env, "SLACK_APP_ID")
    if app_id is not None and not re.match(r"^A[A-Z0-9]{2,}$", app_id):
        raise ConfigError(f"SLACK_APP_ID is malformed: expected an app id like A0123ABCD, got {app_id!r}")

    return Settings(
        slack_bot_token=_secret(env, "SLACK_BOT_TOKEN", "xoxb-"),
        slack_signing_secret=_secret(env, "SLACK_SIGNING_SECRET"),
        slack_app_token=_secret(env, "SLACK_APP_TOKEN", "xapp-"),
        slack_api_url=_url(env, "SLACK_API_URL", DEFAULT_SLACK_API_URL),
        slack_team_id=team_id,
        slack_app_id=app_id,
        vps_api_url=_url(env, "VPS_API_URL", DEFAULT_VPS_API_URL),
        vps_api_token=_secret(env, "VPS_API_TOKEN"),
        vps_timeout_seconds=_float(env, "VPS_TIMEOUT_SECONDS", 10.0, 0.1, 300.0),
        database_url=_text(env, "DATABASE_URL") or DEFAULT_DATABASE_URL,
        port=_int(env, "PORT", 3000, 1, 65535),
        approval_channel=_channel(env, "SNAPSHOT_APPROVAL_CHANNEL"),
        notify_channel=_channel(env, "SNAPSHOT_NOTIFY_CHANNEL"),
        restore_approval_ttl_minutes=_int(env, "RESTORE_APPROVAL_TTL_MINUTES", 60, 1, 7 * 24 * 60),
        restore_approvals_required=_int(env, "RESTORE_APPROVALS_REQUIRED", 1, 1, 10),
        approval_required_for=_approval_kinds(env, "APPROVAL_REQUIRED_FOR"),
        restore_reason_required=_bool(env, "RESTORE_REASON_REQUIRED", False),
        restore_safety_snapshot=_safety_mode(env, "RESTORE_SAFETY_SNAPSHOT"),
        restore_safety_timeout_seconds=_float(env, "RESTORE_SAFETY_TIMEOUT_SECONDS", 900.0, 1.0, 24 * 3600.0),
        viewers=_id_list(env, "SNAPSHOT_VIEWERS", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id"),
        operators=_id_list(env, "SNAPSHOT_OPERATORS", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id"),
        approvers=_id_list(env, "SNAPSHOT_APPROVERS", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id"),
        admins=_id_list(env, "SNAPSHOT_ADMINS", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id"),
        allowed_channels=_id_list(env, "SNAPSHOT_ALLOWED_CHANNELS", CHANNEL_ID, what="a channel id (C…/G…)"),
        rate_limit=_rate_limit(env, "SNAPSHOT_RATE_LIMIT"),
        poll_seconds=_float(env, "SNAPSHOT_POLL_SECONDS", 30.0, 0.01, 3600.0),
        track_timeout_minutes=_int(env, "SNAPSHOT_TRACK_TIMEOUT_MINUTES", 60, 1, 24 * 60),
        recovery_after_seconds=(
            _float(env, "SNAPSHOT_RECOVERY_AFTER_SECONDS", 0.0, 0.0, 86400.0)
            if _text(env, "SNAPSHOT_RECOVERY_AFTER_SECONDS")
            else None
        ),
        recheck_deadline_seconds=recheck_deadline,
        claim_ttl_seconds=claim_ttl,
        host=_text(env, "HOST") or "0.0.0.0",
        worker_threads=_int(env, "SNAPSHOT_WORKER_THREADS", 16, 1, 256),
        work_queue_limit=_int(env, "SNAPSHOT_WORK_QUEUE_LIMIT", 1000, 0, 1_000_000),
        drain_seconds=_float(env, "SNAPSHOT_DRAIN_SECONDS", 25.0, 1.0, 3600.0),
        log_level=log_level,
        log_format=log_format,
        metrics_port=metrics_port,
        metrics_dir=_text(env, "PROMETHEUS_MULTIPROC_DIR"),
        max_requests=_int(env, "GUNICORN_MAX_REQUESTS", 10000, 0, 100_000_000),
        max_requests_jitter=_int(env, "GUNICORN_MAX_REQUESTS_JITTER", 1000, 0, 100_000_000),
        audit_signing_key=_signing_key(env, "AUDIT_SIGNING_KEY"),
        audit_verify_keys=_verify_keys(env, "AUDIT_VERIFY_KEYS"),
        audit_checkpoint_every=_int(env, "AUDIT_CHECKPOINT_EVERY", 100, 1, 1_000_000),
        audit_checkpoint_minutes=_int(env, "AUDIT_CHECKPOINT_MINUTES", 15, 1, 24 * 60),
        audit_checkpoint_channel=_channel(env, "AUDIT_CHECKPOINT_CHANNEL"),
        audit_checkpoint_file=_text(env, "AUDIT_CHECKPOINT_FILE"),
        snapshot_timezone=_zone(env, "SNAPSHOT_TIMEZONE"),
        schedule_min_interval_minutes=_int(env, "SNAPSHOT_SCHEDULE_MIN_INTERVAL_MINUTES", 60, 1, 7 * 24 * 60),
    )

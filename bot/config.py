"""Settings from the environment (and `.env`), validated once at start-up.

Every setting a user may configure is read here and documented in `.env.example` and docs/operations.md. Every
command reads them the same way (`read_environment`: the process environment over `.env`). How each value is
parsed and refused is in bot/config_values.py; secrets are wrapped in `Secret` so they never show up in `repr`, logs
or error messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from bot import config_step_up as step_up
from bot import config_values as value
from bot.config_values import ConfigError, LogFormat, RateLimit, SafetyMode, Secret
from bot.slack_ids import CHANNEL_ID, GROUP_ID, USER_ID

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ConfigError",
    "LogFormat",
    "RateLimit",
    "SafetyMode",
    "Secret",
    "Settings",
    "load_settings",
    "read_environment",
]

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_VPS_API_URL = "https://admin.vps.org/api/v1/"
DEFAULT_DATABASE_URL = "sqlite:///snapshot-bot.db"


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
    # False when DATABASE_URL was not set: `serve` and `socket` then refuse to start (no silent SQLite in production).
    database_url_configured: bool = False
    shell_database_url: str | None = None  # SHELL_DATABASE_URL: the shell never reads DATABASE_URL
    port: int = 3000
    approval_channel: str | None = None
    notify_channel: str | None = None
    restore_approval_ttl_minutes: int = 60
    restore_approvals_required: int = 1
    approval_required_for: frozenset[str] = frozenset({"restore"})  # RequestKind names (config_values.approval_kinds)
    restore_reason_required: bool = False
    restore_safety_snapshot: SafetyMode = SafetyMode.AUTO  # bot/usecases/approval_safety.py
    restore_safety_timeout_seconds: float = 900.0  # how long the safety snapshot may take to complete
    snapshot_reserve_undo_slot: bool = True  # schedules leave a server's last slot for a restore's safety snapshot
    viewers: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    allowed_channels: tuple[str, ...] = ()
    rate_limit: RateLimit | None = None
    read_limit: RateLimit = RateLimit(60, 60)  # VPS.org listings one person may cause (bot/usecases/read_limit.py)
    read_cache_seconds: float = 15.0  # how long a listing is served from the cache (bot/usecases/listing_cache.py)
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
    log_format: LogFormat = LogFormat.TEXT
    metrics_port: int | None = None  # Prometheus /metrics on its own listener; None = off
    health_port: int | None = None  # Socket Mode's /livez and /readyz listener; None = off (HTTP mode uses PORT)
    metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR for gunicorn workers' values; None = a temporary one
    # gunicorn recycles a worker after this many requests (plus up to the jitter, so workers don't restart
    # together): the guard against slow memory growth in a long-lived worker. 0 = never.
    max_requests: int = 10000
    max_requests_jitter: int = 1000
    web_concurrency: int = 2  # WEB_CONCURRENCY: gunicorn worker processes (a platform's convention)
    tracemalloc_dir: str | None = None  # SNAPSHOT_TRACEMALLOC_DIR: memory reports there when set (bot/memwatch.py)
    tracemalloc_seconds: float = 300.0
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
    # Reminders and escalation of requests still waiting (issue 28 §1; bot/usecases/approval_reminders.py).
    approval_remind_seconds: float = 900.0  # 0 = no reminders
    approval_remind_max: int = 3
    approval_escalate_seconds: float = 1800.0  # 0 = no escalation
    approval_escalate_to: tuple[str, ...] = ()
    # Step-up before approving (issue 28 §2; bot/usecases/step_up.py): off | typed | totp, and for which kinds.
    approval_step_up: step_up.StepUpMode = step_up.StepUpMode.OFF
    approval_step_up_for: frozenset[str] = frozenset({"restore"})
    mfa_encryption_key: Secret | None = None  # the path of the key file sealing TOTP secrets (bot/secret_box.py)
    mfa_enrolment_approval: step_up.EnrolmentApproval = step_up.EnrolmentApproval.ADMIN  # who makes one active

    @property
    def undo_slots_reserved(self) -> int:
        """Slots per server that schedules leave free for a restore's safety snapshot: none when there is none."""
        return 1 if self.snapshot_reserve_undo_slot and self.restore_safety_snapshot != SafetyMode.OFF else 0

    @property
    def access_control_enabled(self) -> bool:
        return bool(self.viewers or self.operators or self.approvers or self.admins)

    def require(self, *names: str) -> None:
        """Stop with a clear message when a mode needs a setting that is not there."""
        for name in names:
            attr = _ENV_TO_ATTR[name]
            if getattr(self, attr) in (None, ""):
                raise ConfigError(f"{name} is required for this mode: {value.EXPECTED[name]}")


_ENV_TO_ATTR = {
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "SLACK_SIGNING_SECRET": "slack_signing_secret",
    "SLACK_APP_TOKEN": "slack_app_token",
    "VPS_API_TOKEN": "vps_api_token",
}


def read_environment(
    environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> dict[str, str]:
    """Every setting's raw text, read one way for every command: `.env`, then the process environment over it."""
    env: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    return env


def output_settings(environ: Mapping[str, str] | None = None) -> tuple[str, LogFormat]:
    """LOG_LEVEL and LOG_FORMAT, leniently (defaults for anything odd): how to say that the settings are wrong."""
    env = read_environment(environ)
    level = (value.text(env, "LOG_LEVEL") or "INFO").upper()
    try:
        log_format = value.log_format(env, "LOG_FORMAT")
    except ConfigError:
        log_format = LogFormat.TEXT
    return (level if level in {"DEBUG", "INFO", "WARNING", "ERROR"} else "INFO"), log_format


def load_settings(environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env") -> Settings:
    """Read settings: the process environment wins over `.env`."""
    env = read_environment(environ, dotenv_path)

    log_level = (value.text(env, "LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(
            f"LOG_LEVEL is malformed: expected DEBUG, INFO, WARNING or ERROR, got {value.shown(env, log_level)}"
        )
    team_id = value.text(env, "SLACK_TEAM_ID")
    if team_id is not None and not re.match(r"^[TE][A-Z0-9]{2,}$", team_id):
        expected = "expected a workspace id like T0123ABCD"
        raise ConfigError(f"SLACK_TEAM_ID is malformed: {expected}, got {value.shown(env, team_id)}")
    recheck_deadline = value.number(env, "SNAPSHOT_RECHECK_DEADLINE_SECONDS", 60.0, 0.05, 3600.0)
    claim_ttl = value.number(env, "SNAPSHOT_CLAIM_TTL_SECONDS", recheck_deadline + 30.0, 0.1, 7200.0)
    if claim_ttl <= recheck_deadline:
        # The executor must give up on its own (and say "nothing was sent") before its claim can lapse.
        raise ConfigError(
            f"SNAPSHOT_CLAIM_TTL_SECONDS is out of range: it must be longer than SNAPSHOT_RECHECK_DEADLINE_SECONDS "
            f"({recheck_deadline:g}), got {claim_ttl:g}"
        )
    step_up_mode = step_up.step_up_mode(env)
    log_format = value.log_format(env, "LOG_FORMAT")
    metrics_port = value.whole_number(env, "METRICS_PORT", 0, 0, 65535) or None
    if metrics_port is not None and metrics_port == value.whole_number(env, "PORT", 3000, 1, 65535):
        raise ConfigError("METRICS_PORT is out of range: it must differ from PORT (metrics never share Slack's port)")
    app_id = value.text(env, "SLACK_APP_ID")
    if app_id is not None and not re.match(r"^A[A-Z0-9]{2,}$", app_id):
        raise ConfigError(
            f"SLACK_APP_ID is malformed: expected an app id like A0123ABCD, got {value.shown(env, app_id)}"
        )

    escalate_to = value.id_list(env, "APPROVAL_ESCALATE_TO", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id")
    approvers = value.id_list(env, "SNAPSHOT_APPROVERS", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id")
    admins = value.id_list(env, "SNAPSHOT_ADMINS", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id")
    _check_escalation(env, escalate_to, approvers, admins)

    return Settings(
        slack_bot_token=value.secret(env, "SLACK_BOT_TOKEN", "xoxb-"),
        slack_signing_secret=value.secret(env, "SLACK_SIGNING_SECRET"),
        slack_app_token=value.secret(env, "SLACK_APP_TOKEN", "xapp-"),
        slack_api_url=value.url(env, "SLACK_API_URL", DEFAULT_SLACK_API_URL),
        slack_team_id=team_id,
        slack_app_id=app_id,
        vps_api_url=value.url(env, "VPS_API_URL", DEFAULT_VPS_API_URL),
        vps_api_token=value.secret(env, "VPS_API_TOKEN"),
        vps_timeout_seconds=value.number(env, "VPS_TIMEOUT_SECONDS", 10.0, 0.1, 300.0),
        database_url=value.text(env, "DATABASE_URL") or DEFAULT_DATABASE_URL,
        database_url_configured=value.text(env, "DATABASE_URL") is not None,
        shell_database_url=value.text(env, "SHELL_DATABASE_URL"),
        port=value.whole_number(env, "PORT", 3000, 1, 65535),
        approval_channel=value.channel(env, "SNAPSHOT_APPROVAL_CHANNEL"),
        notify_channel=value.channel(env, "SNAPSHOT_NOTIFY_CHANNEL"),
        restore_approval_ttl_minutes=value.whole_number(env, "RESTORE_APPROVAL_TTL_MINUTES", 60, 1, 7 * 24 * 60),
        restore_approvals_required=value.whole_number(env, "RESTORE_APPROVALS_REQUIRED", 1, 1, 10),
        approval_required_for=value.approval_kinds(env, "APPROVAL_REQUIRED_FOR"),
        restore_reason_required=value.boolean(env, "RESTORE_REASON_REQUIRED", False),
        restore_safety_snapshot=value.safety_mode(env, "RESTORE_SAFETY_SNAPSHOT"),
        restore_safety_timeout_seconds=value.number(env, "RESTORE_SAFETY_TIMEOUT_SECONDS", 900.0, 1.0, 24 * 3600.0),
        snapshot_reserve_undo_slot=value.boolean(env, "SNAPSHOT_RESERVE_UNDO_SLOT", True),
        viewers=value.id_list(env, "SNAPSHOT_VIEWERS", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id"),
        operators=value.id_list(env, "SNAPSHOT_OPERATORS", USER_ID, GROUP_ID, what="a user (U…/W…) or group (S…) id"),
        approvers=approvers,
        admins=admins,
        allowed_channels=value.id_list(env, "SNAPSHOT_ALLOWED_CHANNELS", CHANNEL_ID, what="a channel id (C…/G…)"),
        rate_limit=value.rate_limit(env, "SNAPSHOT_RATE_LIMIT"),
        read_limit=value.rate_limit(env, "SNAPSHOT_READ_LIMIT") or RateLimit(60, 60),
        read_cache_seconds=value.number(env, "SNAPSHOT_READ_CACHE_SECONDS", 15.0, 0.0, 300.0),
        poll_seconds=value.number(env, "SNAPSHOT_POLL_SECONDS", 30.0, 0.01, 3600.0),
        track_timeout_minutes=value.whole_number(env, "SNAPSHOT_TRACK_TIMEOUT_MINUTES", 60, 1, 24 * 60),
        recovery_after_seconds=(
            value.number(env, "SNAPSHOT_RECOVERY_AFTER_SECONDS", 0.0, 0.0, 86400.0)
            if value.text(env, "SNAPSHOT_RECOVERY_AFTER_SECONDS")
            else None
        ),
        recheck_deadline_seconds=recheck_deadline,
        claim_ttl_seconds=claim_ttl,
        host=value.text(env, "HOST") or "0.0.0.0",
        worker_threads=value.whole_number(env, "SNAPSHOT_WORKER_THREADS", 16, 1, 256),
        work_queue_limit=value.whole_number(env, "SNAPSHOT_WORK_QUEUE_LIMIT", 1000, 0, 1_000_000),
        drain_seconds=value.number(env, "SNAPSHOT_DRAIN_SECONDS", 25.0, 1.0, 3600.0),
        log_level=log_level,
        log_format=log_format,
        metrics_port=metrics_port,
        health_port=value.whole_number(env, "HEALTH_PORT", 0, 0, 65535) or None,
        metrics_dir=value.text(env, "PROMETHEUS_MULTIPROC_DIR"),
        max_requests=value.whole_number(env, "GUNICORN_MAX_REQUESTS", 10000, 0, 100_000_000),
        max_requests_jitter=value.whole_number(env, "GUNICORN_MAX_REQUESTS_JITTER", 1000, 0, 100_000_000),
        web_concurrency=value.whole_number(env, "WEB_CONCURRENCY", 2, 1, 256),
        tracemalloc_dir=value.text(env, "SNAPSHOT_TRACEMALLOC_DIR"),
        tracemalloc_seconds=value.number(env, "SNAPSHOT_TRACEMALLOC_SECONDS", 300.0, 1.0, 86400.0),
        audit_signing_key=value.signing_key(env, "AUDIT_SIGNING_KEY"),
        audit_verify_keys=value.verify_keys(env, "AUDIT_VERIFY_KEYS"),
        audit_checkpoint_every=value.whole_number(env, "AUDIT_CHECKPOINT_EVERY", 100, 1, 1_000_000),
        audit_checkpoint_minutes=value.whole_number(env, "AUDIT_CHECKPOINT_MINUTES", 15, 1, 24 * 60),
        audit_checkpoint_channel=value.channel(env, "AUDIT_CHECKPOINT_CHANNEL"),
        audit_checkpoint_file=value.checkpoint_file(env, "AUDIT_CHECKPOINT_FILE"),
        snapshot_timezone=value.zone(env, "SNAPSHOT_TIMEZONE"),
        schedule_min_interval_minutes=value.whole_number(
            env, "SNAPSHOT_SCHEDULE_MIN_INTERVAL_MINUTES", 60, 1, 7 * 24 * 60
        ),
        approval_remind_seconds=value.number(env, "APPROVAL_REMIND_SECONDS", 900.0, 0.0, 7 * 24 * 3600.0),
        approval_remind_max=value.whole_number(env, "APPROVAL_REMIND_MAX", 3, 1, 100),
        approval_escalate_seconds=value.number(env, "APPROVAL_ESCALATE_SECONDS", 1800.0, 0.0, 7 * 24 * 3600.0),
        approval_escalate_to=escalate_to,
        approval_step_up=step_up_mode,
        approval_step_up_for=step_up.step_up_kinds(env),
        mfa_encryption_key=step_up.mfa_key(env, step_up_mode),
        mfa_enrolment_approval=step_up.enrolment_approval(env),
    )


def _check_escalation(
    env: Mapping[str, str], escalate_to: tuple[str, ...], approvers: tuple[str, ...], admins: tuple[str, ...]
) -> None:
    """Escalation grants nothing, so a user it names must already be able to approve. Only an explicit listing
    counts (no Slack call at start-up); a group in APPROVAL_ESCALATE_TO is checked member by member when used."""
    roles_configured = any(
        value.text(env, name) for name in ("SNAPSHOT_VIEWERS", "SNAPSHOT_OPERATORS", "SNAPSHOT_APPROVERS")
    ) or bool(admins)
    if not roles_configured:  # access control off: everyone may approve
        return
    for entry in escalate_to:
        if USER_ID.match(entry) and entry not in approvers and entry not in admins:
            raise ConfigError(
                f"APPROVAL_ESCALATE_TO names {entry}, who holds no approver role: escalation grants nothing, so add "
                "them to SNAPSHOT_APPROVERS or SNAPSHOT_ADMINS, or remove them from APPROVAL_ESCALATE_TO"
            )

"""The bot's Prometheus metrics: every name, label and meaning in one place. Nothing here decides anything.

Rules this module keeps:
- Every name starts with `snapshot_bot_`. docs/operations.md ("Metrics and logs") lists each one for dashboards.
- Every label value comes from a small fixed set: the `*_label` helpers below fold anything else into `other`.
  User text, snapshot or server ids and names never become a label (they would make the series unbounded).
- Values are recorded at the edges — the Bolt middleware that sees acks, the VPS.org transport, the Slack client,
  the audit append wrapper, the ticker — never inside the use cases, which stay free of instrumentation.
- Each `Metrics` has its own registry, so many bots in one test process never clash. Under gunicorn the values live
  in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode) and the `/metrics` listener aggregates every
  worker's files (bot/metrics_server.py); gauges then report the highest live worker's value (`livemax`).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot.version import version

PREFIX = "snapshot_bot_"
OTHER = "other"

# Slack's acknowledgement deadline is 3 s; the buckets are dense below it.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
VPS_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
AUDIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
POLL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# VPS.org endpoints the client calls, as templates relative to VPS_API_URL (`{id}` stands for any number).
VPS_ENDPOINTS = frozenset({"snapshots/", "snapshots/{id}/", "snapshots/{id}/restore/", "servers/", "account/me/"})
VPS_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH"})
OUTCOMES = frozenset({"intent", "ok", "failed", "refused", "unknown", "info"})
# Slack's error codes are short snake_case words (`channel_not_found`); anything else is folded.
_SLACK_ERROR = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_SLACK_METHOD = re.compile(r"^[a-z][A-Za-z0-9]{0,39}(\.[a-z][A-Za-z0-9]{0,39}){1,3}$")
_NUMBER = re.compile(r"^\d+$")
# What a schedule's round can end in (bot.usecases.schedule_runner.RunKind) and where the witness can fail.
SCHEDULE_OUTCOMES = frozenset({"started", "skipped", "failed", "retained", "retention_failed"})
WITNESS_STEPS = frozenset({"sign", "refused", "file", "channel"})
# How a request stopped waiting (bot/slack/announcer.py reports it), and the nudges the ticker sends.
DECISIONS = frozenset({"approved", "rejected", "cancelled", "expired"})
NUDGES = frozenset({"remind", "escalate"})
# A request waits minutes to hours (RESTORE_APPROVAL_TTL_MINUTES is at most a week).
WAIT_BUCKETS = (30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 2 * 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 7 * 86400.0)


def vps_endpoint_label(path: str) -> str:
    """`snapshots/812/restore/` → `snapshots/{id}/restore/`; a path the client doesn't call → `other`."""
    segments = ["{id}" if _NUMBER.match(part) else part for part in path.strip("/").split("/")]
    template = "/".join(segments) + "/"
    return template if template in VPS_ENDPOINTS else OTHER


def vps_status_label(status: int | None) -> str:
    """The HTTP status as text; `error` when no answer came (connection refused or reset, timeout)."""
    if status is None:
        return "error"
    return str(status) if 100 <= status <= 599 else OTHER


def method_label(method: str) -> str:
    method = method.upper()
    return method if method in VPS_METHODS else OTHER


def slack_method_label(method: str) -> str:
    return method if _SLACK_METHOD.match(method or "") else OTHER


def slack_error_label(error: str) -> str:
    return error if _SLACK_ERROR.match(error or "") else OTHER


class Metrics:
    """The bot's metrics on one registry. Recording methods take plain values; label hygiene happens here."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.acks = Counter(
            PREFIX + "acks", "Slack requests acknowledged, by command (slash subcommand or interaction kind)",
            ["command"], registry=r,
        )  # fmt: skip
        self.ack_seconds = Histogram(
            PREFIX + "ack_seconds", "Seconds from a verified Slack request to its ack, by command",
            ["command"], buckets=ACK_BUCKETS, registry=r,
        )  # fmt: skip
        self.vps_requests = Counter(
            PREFIX + "vps_requests", "HTTP requests to VPS.org, by method, endpoint template and status",
            ["method", "endpoint", "status"], registry=r,
        )  # fmt: skip
        self.vps_seconds = Histogram(
            PREFIX + "vps_request_seconds", "Seconds until VPS.org answered (headers) or the request failed",
            ["method", "endpoint"], buckets=VPS_BUCKETS, registry=r,
        )  # fmt: skip
        self.approval_requests_open = Gauge(
            PREFIX + "approval_requests_open", "Approval requests not yet final, by state",
            ["state"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.outcome_unknown = Gauge(
            PREFIX + "requests_outcome_unknown",
            "Approved requests whose call may have reached VPS.org without a recorded answer (needs_check)",
            multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.audit_append_seconds = Histogram(
            PREFIX + "audit_append_seconds", "Seconds to append one audit row (hash chain included)",
            buckets=AUDIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.audit_events = Counter(PREFIX + "audit_events", "Audit rows written, by outcome", ["outcome"], registry=r)
        self.tracking_poll_seconds = Histogram(
            PREFIX + "tracking_poll_seconds", "Seconds one tracking poll of VPS.org took (all tracked operations)",
            buckets=POLL_BUCKETS, registry=r,
        )  # fmt: skip
        self.slack_api_errors = Counter(
            PREFIX + "slack_api_errors", "Slack Web API calls that failed after retries, by method and error",
            ["method", "error"], registry=r,
        )  # fmt: skip

        self.work_queued = Gauge(
            PREFIX + "work_queued", "Post-ack jobs waiting for a worker thread (summed over workers)",
            multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.requests_shed = Counter(
            PREFIX + "requests_shed", "Requests turned away at the ack because the post-ack queue was full",
            registry=r,
        )  # fmt: skip

        # ---- for operators' alerts (deploy/prometheus/alerts.yml) ---------------------------------------------
        self.build_info = Gauge(
            PREFIX + "build_info", "Always 1; the labels say which version runs, on which Python",
            ["version", "python"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.build_info.labels(version(), platform.python_version()).set(1)
        self.ready = Gauge(
            PREFIX + "ready", "1 when the last /readyz check passed (database, schema, Slack auth.test), else 0",
            multiprocess_mode="livemin", registry=r,
        )  # fmt: skip
        # Schedule ids are database numbers, one per configured schedule: a small set, never user text.
        self.schedule_enabled = Gauge(
            PREFIX + "schedule_enabled", "1 for each enabled schedule; 0 once it is disabled or deleted",
            ["schedule_id"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.schedule_last_success = Gauge(
            PREFIX + "schedule_last_success_timestamp_seconds",
            "Slot time of the schedule's newest completed snapshot (none yet: when its settings took effect)",
            ["schedule_id"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.schedule_longest_gap = Gauge(
            PREFIX + "schedule_longest_gap_seconds", "The longest time between two consecutive slots of the schedule",
            ["schedule_id"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.schedule_runs = Counter(
            PREFIX + "schedule_runs", "Schedule slots run by this process, by schedule and outcome",
            ["schedule_id", "outcome"], registry=r,
        )  # fmt: skip
        self.witness_failures = Counter(
            PREFIX + "witness_failures",
            "Audit checkpoint rounds that failed, by step (sign, refused, file, channel); retried next round",
            ["step"], registry=r,
        )  # fmt: skip
        self.approval_wait_seconds = Histogram(
            PREFIX + "approval_wait_seconds",
            "Seconds a request waited for its decision, by how it ended: approved, rejected, cancelled, expired",
            ["decision"], buckets=WAIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.approval_nudges = Counter(
            PREFIX + "approval_nudges",
            "Reminders and escalations of waiting requests sent by this process, by kind and whether Slack took them",
            ["kind", "outcome"], registry=r,
        )  # fmt: skip
        self._schedules_seen: set[str] = set()

    # ---- recording (called from the edges) -------------------------------------------------------------------
    def acked(self, command: str, seconds: float) -> None:
        self.acks.labels(command).inc()
        self.ack_seconds.labels(command).observe(seconds)

    def vps_call(self, method: str, path: str, status: int | None, seconds: float) -> None:
        method, endpoint = method_label(method), vps_endpoint_label(path)
        self.vps_requests.labels(method, endpoint, vps_status_label(status)).inc()
        self.vps_seconds.labels(method, endpoint).observe(seconds)

    def audit_appended(self, outcome: str, seconds: float) -> None:
        self.audit_events.labels(outcome if outcome in OUTCOMES else OTHER).inc()
        self.audit_append_seconds.observe(seconds)

    def tracking_polled(self, seconds: float) -> None:
        self.tracking_poll_seconds.observe(seconds)

    def slack_error(self, method: str, error: str) -> None:
        self.slack_api_errors.labels(slack_method_label(method), slack_error_label(error)).inc()

    def work_shed(self) -> None:
        self.requests_shed.inc()

    def work_backlog(self, queued: int) -> None:
        self.work_queued.set(queued)

    def readiness(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def schedule_ran(self, schedule_id: int, outcome: str) -> None:
        self.schedule_runs.labels(str(schedule_id), outcome if outcome in SCHEDULE_OUTCOMES else OTHER).inc()

    def schedules(self, health: Iterable[tuple[int, datetime, timedelta]]) -> None:
        """Refresh the schedule gauges from (schedule id, last success, longest gap) of every enabled schedule
        (the ticker calls this every round); a schedule no longer listed is reported disabled."""
        listed: set[str] = set()
        for schedule_id, last_success, longest_gap in health:
            label = str(schedule_id)
            listed.add(label)
            self.schedule_enabled.labels(label).set(1)
            self.schedule_last_success.labels(label).set(last_success.timestamp())
            self.schedule_longest_gap.labels(label).set(longest_gap.total_seconds())
        for gone in self._schedules_seen - listed:
            self.schedule_enabled.labels(gone).set(0)
        self._schedules_seen |= listed

    def approval_decided(self, decision: str, waited_seconds: float) -> None:
        self.approval_wait_seconds.labels(decision if decision in DECISIONS else OTHER).observe(
            max(0.0, waited_seconds)
        )

    def nudged(self, kind: str, ok: bool) -> None:
        self.approval_nudges.labels(kind if kind in NUDGES else OTHER, "ok" if ok else "failed").inc()

    def witness_failed(self, step: str) -> None:
        self.witness_failures.labels(step if step in WITNESS_STEPS else OTHER).inc()

    def open_requests(self, by_state: Mapping[str, int], needs_check_state: str) -> None:
        """Refresh the request gauges from one count per open state (the ticker calls this every round)."""
        for state, count in by_state.items():
            self.approval_requests_open.labels(state).set(count)
        self.outcome_unknown.set(by_state.get(needs_check_state, 0))

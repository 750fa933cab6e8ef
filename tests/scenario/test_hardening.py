"""Hardening through signed requests: other workspaces and apps, rate limits, retried and replayed deliveries,
malformed payloads, and secrets that never reach a log line or an audit row."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.config import RateLimit
from bot.logging_setup import RedactingFormatter
from bot.usecases.guard import MUTATING_ACTIONS, count_mutations, oldest_counted_mutation
from bot.usecases.ratelimit import RateLimiter
from devkit.slack_driver import DriverResponse, SlackDriver, http_sender
from storage.audit import AuditEntry, AuditLog
from storage.models import ProcessedDelivery
from tests.app_fixtures import ALICE, BOB, OPS, SIGNING_SECRET, Harness

APPROVALS = "C0APPROVE"
FORM = "application/x-www-form-urlencoded"


def signed(h: Harness, body: bytes | str, content_type: str = FORM, **headers: str) -> DriverResponse:
    raw = body.encode() if isinstance(body, str) else body
    return h.driver.send_raw(raw, {"Content-Type": content_type, **h.driver.sign(raw), **headers})


def interaction(h: Harness, payload: Any) -> DriverResponse:
    return signed(h, urlencode({"payload": json.dumps(payload)}))


# ---- other workspaces and apps ------------------------------------------------------------------------------
def test_command_from_another_workspace_is_refused_politely_and_audited(harness: Harness) -> None:
    response = harness.command("create 12347 intruder", team_id="T0OTHER")
    assert response.status == 200
    assert "belongs to another Slack workspace" in response.json()["text"]
    assert response.json()["response_type"] == "ephemeral"
    harness.settle()
    assert harness.sim.requests == []
    [refusal] = harness.audit(action="refused.team")
    assert refusal.team_id == "T0OTHER" and refusal.actor_id == ALICE
    assert refusal.details["expected_team"] == harness.slack.team_id


def test_button_from_another_workspace_is_refused(harness: Harness) -> None:
    response = harness.driver.block_action(
        "snapshot_delete_confirm", "798", user_id=ALICE, channel_id=OPS, team_id="T0OTHER"
    )
    assert response.status == 403
    harness.settle()
    assert harness.sim.requests == []
    assert harness.actions() == ["refused.team"]


def test_clicker_from_another_organisation_in_a_shared_channel_is_refused(harness: Harness) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": harness.slack.team_id, "domain": "snapbot-test"},
        "user": {"id": "U0GUEST", "username": "guest", "team_id": "T0PARTNER"},
        "api_app_id": harness.slack.api_app_id,
        "channel": {"id": OPS},
        "container": {"type": "message", "channel_id": OPS},
        "actions": [{"action_id": "snapshot_delete_confirm", "value": "798", "type": "button"}],
    }
    assert interaction(harness, payload).status == 403
    harness.settle()
    assert harness.sim.requests == []
    assert harness.audit(action="refused.team")[0].details["user_team"] == "T0PARTNER"


def test_configured_team_id_wins_over_the_tokens_workspace(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SLACK_TEAM_ID="T0CONFIG")
    assert "another Slack workspace" in h.command("list").json()["text"]  # the token's own T0SNAPBOT
    h.command("list", team_id="T0CONFIG")
    h.settle()
    assert "web-server-01" in h.last_ephemeral().visible_text


def test_an_enterprise_id_accepts_the_whole_org(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SLACK_TEAM_ID="E0ORG")

    def command(**extra: str) -> DriverResponse:
        form = {"command": "/snapshot", "text": "list", "user_id": ALICE, "channel_id": OPS, "team_id": "T0SISTER"}
        return signed(h, urlencode(form | extra))

    assert "another Slack workspace" in command().json()["text"]
    assert "another Slack workspace" in command(enterprise_id="E0OTHER").json()["text"]
    assert command(enterprise_id="E0ORG").status == 200
    h.settle()
    assert [r.method for r in h.sim.requests] and h.mutating_calls() == []
    assert len(h.audit(action="refused.team")) == 2


def test_app_id_is_checked_when_configured(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SLACK_APP_ID="A0SNAPBOT")
    h.run("list")
    assert "web-server-01" in h.last_ephemeral().visible_text
    h.driver.api_app_id = "A0IMPOSTER"
    assert "another Slack workspace" in h.command("create 12347 via-other-app").json()["text"]
    h.settle()
    assert h.mutating_calls() == []
    assert h.audit(action="refused.team")[0].details["expected_app"] == "A0SNAPBOT"


# ---- rate limit ---------------------------------------------------------------------------------------------
def test_rate_limit_refuses_the_third_mutation_with_the_wait_and_not_reads(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(SNAPSHOT_RATE_LIMIT="2/hour", SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.run("create 12347 one")
    h.driver.block_action("snapshot_delete_confirm", "805", user_id=ALICE, channel_id=OPS)
    h.settle()
    assert len(h.mutating_calls()) == 2
    for third in ("create 12347 three", "restore 801"):
        h.run(third)
        text = h.last_ephemeral().visible_text
        assert "reached the limit of 2 actions per hour" in text and "Try again in" in text, text
    assert len(h.mutating_calls()) == 2 and h.channel(APPROVALS) == []
    limited = h.audit(action="refused.rate_limited")
    assert len(limited) == 2 and all(0 < r.details["retry_after_seconds"] <= 3600 for r in limited)

    h.run("list")  # reads are not limited
    assert "web-server-01" in h.last_ephemeral().visible_text
    h.run("create 12347 bobs", user=BOB)  # and the limit is per user
    assert h.api_calls("POST")[-1].json["name"] == "bobs"


def test_wait_is_counted_from_the_action_that_frees_a_slot(audit_log: AuditLog) -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for minutes_ago in (70, 50, 20, 5):  # the 70-minute-old one is outside the hour
        audit_log.clock = lambda m=minutes_ago: now - timedelta(minutes=m)
        audit_log.append(AuditEntry(action=MUTATING_ACTIONS[minutes_ago % 3], outcome="info", actor_id=ALICE))
    audit_log.append(AuditEntry(action="list", outcome="ok", actor_id=ALICE))

    def check(count: int) -> Any:
        limiter = RateLimiter(
            RateLimit(count, 3600),
            count_mutations(audit_log),
            clock=lambda: now,
            oldest_in_window=oldest_counted_mutation(audit_log, count),
        )
        return limiter.check(ALICE)

    assert check(3).retry_after_seconds == 10 * 60 + 1  # at the limit: the 50-minute-old one leaves first
    assert check(2).retry_after_seconds == 40 * 60 + 1  # over it: the 20-minute-old one must leave too
    assert "Try again in 41 minutes" in check(2).message
    assert check(4).allowed


# ---- retried and replayed deliveries ------------------------------------------------------------------------
def test_retried_event_delivery_is_processed_once(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    event_id = f"Ev{uuid.uuid4().hex[:10].upper()}"

    def deliver(event_id: str, retry: int | None) -> DriverResponse:
        envelope = {
            "type": "event_callback",
            "team_id": harness.slack.team_id,
            "api_app_id": harness.slack.api_app_id,
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "home"},
            "authorizations": [{"team_id": harness.slack.team_id, "user_id": "U0SNAPBOT", "is_bot": True}],
        }
        extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        return signed(harness, json.dumps(envelope), "application/json", **extra)

    caplog.set_level(logging.INFO, logger="bot.slack.middleware")
    assert deliver(event_id, None).status == 200
    harness.slack.wait_for("views.publish", count=1)
    for retry in (1, 2):
        assert deliver(event_id, retry).status == 200
    # The skip happens before the acknowledgement, so it is logged by the time the answer arrives.
    skipped = [r.getMessage() for r in caplog.records if "already handled" in r.getMessage()]
    assert len(skipped) == 2 and all(event_id in m for m in skipped), skipped

    deliver("EvANOTHER0001", None)  # a different delivery is handled
    harness.slack.wait_for("views.publish", count=2)
    harness.settle()
    assert len(harness.slack.calls_to("views.publish")) == 2
    with harness.bot.core.db.session(readonly=True) as session:
        keys = {row.key for row in session.query(ProcessedDelivery)}
    assert {f"event:{event_id}", "event:EvANOTHER0001"} <= keys


def test_replayed_approve_click_restores_once(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    sent: list[tuple[dict[str, str], bytes]] = []
    http = http_sender(h.server.url)

    def recording(path: str, headers: dict[str, str], body: bytes, /) -> DriverResponse:
        sent.append((dict(headers), body))
        return http(path, headers, body)

    recorder = SlackDriver(recording, SIGNING_SECRET, response_url_factory=h.slack.new_response_url)
    h.run("restore 801")
    recorder.click(h.card(), "Approve", user_id=BOB)
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    headers, body = sent[-1]
    for _ in range(3):  # the same signed bytes again, as an attacker who captured them would send
        assert h.driver.send_raw(body, headers).status == 200
    h.settle()
    assert h.restore_calls() == ["/api/v1/snapshots/801/restore/"]
    assert "already" in h.last_ephemeral(BOB).visible_text
    assert h.actions().count("restore.executing") == 1


# ---- malformed payloads -------------------------------------------------------------------------------------
MALFORMED: list[tuple[str, bytes, str]] = [
    ("payload not JSON", b"payload=not-json", FORM),
    ("payload a JSON list", urlencode({"payload": "[1, 2]"}).encode(), FORM),
    ("payload a JSON string", urlencode({"payload": '"hello"'}).encode(), FORM),
    ("payload null", urlencode({"payload": "null"}).encode(), FORM),
    ("payload empty object", urlencode({"payload": "{}"}).encode(), FORM),
    ("no user", urlencode({"payload": json.dumps({"type": "block_actions", "actions": [{}]})}).encode(), FORM),
    ("user not an object", urlencode({"payload": json.dumps({"type": "block_actions", "user": "U0X"})}).encode(), FORM),
    (
        "no actions",
        urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": ALICE}, "actions": []})}).encode(),
        FORM,
    ),
    (
        "action not an object",
        urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": ALICE}, "actions": [5]})}).encode(),
        FORM,
    ),
    (
        "view without state",
        urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": ALICE}, "view": 3})}).encode(),
        FORM,
    ),
    (
        "suggestion without action_id",
        urlencode({"payload": json.dumps({"type": "block_suggestion", "user": {"id": ALICE}, "value": "db"})}).encode(),
        FORM,
    ),
    (
        "suggestion value not text",
        urlencode(
            {
                "payload": json.dumps(
                    {"type": "block_suggestion", "user": {"id": ALICE}, "action_id": "create_server", "value": {}}
                )
            }
        ).encode(),
        FORM,
    ),
    ("unknown type", urlencode({"payload": json.dumps({"type": "launch_missiles"})}).encode(), FORM),
    ("empty body", b"", FORM),
    ("JSON body not JSON", b"{nope", "application/json"),
    ("JSON body a list", b"[1]", "application/json"),
    ("not UTF-8", b"\xff\xfe\xfd", "application/json"),
    ("event is text", json.dumps({"type": "event_callback", "event": "x"}).encode(), "application/json"),
    ("command as text/plain without user", b"command=/snapshot&text=list&team_id=T0SNAPBOT", "text/plain"),
    ("command form as JSON", b"command=/snapshot&text=create+1+x", "application/json"),
]


@pytest.mark.parametrize(("case", "body", "content_type"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_signed_requests_get_a_4xx_never_a_crash(
    harness: Harness, case: str, body: bytes, content_type: str
) -> None:
    response = signed(harness, body, content_type)
    assert 400 <= response.status < 500, (case, response.status, response.body)
    assert "Traceback" not in response.body and "Error" not in response.body
    harness.settle()
    assert harness.sim.requests == []


def test_unsigned_garbage_is_401_not_400(harness: Harness) -> None:
    response = harness.driver.send_raw(b"payload=not-json", {"Content-Type": FORM})
    assert response.status == 401


def test_unknown_buttons_views_events_and_commands_are_acknowledged(harness: Harness) -> None:
    assert harness.driver.block_action("from_an_old_version", "1", user_id=ALICE).status == 200
    assert harness.driver.view_submission("old_modal", {}, user_id=ALICE).status == 200
    assert harness.driver.event({"type": "reaction_added", "user": ALICE}).status == 200
    other = harness.driver.command("list", user_id=ALICE, command="/other")
    assert other.status == 200 and "/snapshot help" in other.json()["text"]
    harness.settle()
    assert harness.sim.requests == []


def test_odd_but_well_formed_values_get_a_polite_answer(harness: Harness) -> None:
    for value in ("", "abc", "-1", "9" * 40, "798; DROP TABLE", "{}", "\u0000"):
        for action_id in ("snapshot_delete_confirm", "approval_approve", "snapshot_list_more", "audit_more"):
            response = harness.driver.block_action(action_id, value, user_id=ALICE, channel_id=OPS)
            assert response.status == 200, (action_id, value, response.body)
    harness.settle()
    assert harness.mutating_calls() == []
    told = " ".join(e.visible_text for e in harness.ephemerals(ALICE))
    assert "Traceback" not in told and "went wrong" not in told


def test_huge_command_text_is_refused_before_the_api(harness: Harness) -> None:
    response = harness.command("create 12345 " + "x" * 50_000)
    assert response.status == 200 and "too long" in response.json()["text"]
    assert signed(harness, b"x" * 1_100_000).status == 401  # unread, so unverifiable
    harness.settle()
    assert harness.sim.requests == []


# ---- secrets ------------------------------------------------------------------------------------------------
def test_no_secret_in_any_log_record_or_audit_row(
    make_harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, LOG_LEVEL="DEBUG")
    secrets = {"Slack bot token": h.slack.bot_token, "signing secret": SIGNING_SECRET, "VPS.org token": h.sim.token}
    h.run("list")
    h.run("create 12347 secret-test")
    h.run("delete 798")
    h.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id=OPS)
    h.run("restore 801")
    h.click(h.card(), "Approve", user=BOB)
    h.settle()
    h.sim.faults.fail_next(500, methods={"POST"})  # error paths log more
    h.run("create 12347 failing")
    h.run(f"create 12347 {h.sim.token}")  # a user pasting a token: refused, and not echoed to the log
    h.settle()
    assert h.restore_calls() and len(h.api_calls("POST", "/api/v1/snapshots/")) >= 2

    formatter = RedactingFormatter("%(name)s: %(message)s")
    assert len(caplog.records) > 20
    for record in caplog.records:
        formatted = formatter.format(record)
        raw = record.getMessage() + (record.exc_text or "")
        for what, secret in secrets.items():
            assert secret not in formatted, f"{what} in the formatted log line: {formatted[:300]}"
            if what != "VPS.org token":  # the pasted token is redacted by the formatter, tested just above
                assert secret not in raw, f"{what} in a log record: {raw[:300]}"

    dump = io.StringIO()
    assert h.bot.core.audit.export(dump, "jsonl") > 10
    for what, secret in secrets.items():
        assert secret not in dump.getvalue(), f"{what} in the audit trail"

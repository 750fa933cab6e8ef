"""Requests that cannot be verified as Slack's get 401 and exactly one log line: never a 200, never a traceback.

Each bad form of the signing headers (and a body too big to read) is sent to the real WSGI app, with a body
that would otherwise be a valid `/snapshot create`; nothing may reach a listener, VPS.org or the audit trail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from devkit.slack_driver import DriverResponse, wsgi_sender
from tests.app_fixtures import ALICE, OPS, SIGNING_SECRET, Harness

FORM = "application/x-www-form-urlencoded"
BODY = urlencode(
    {
        "command": "/snapshot",
        "text": "create 12345 unverified",
        "user_id": ALICE,
        "user_name": "alice",
        "team_id": "T0SNAPBOT",
        "channel_id": OPS,
        "api_app_id": "A0SNAPBOT",
    }
).encode()

Headers = Callable[[Harness], dict[str, str]]


def good(h: Harness, **changes: str | None) -> dict[str, str]:
    headers = {"Content-Type": FORM, **h.driver.sign(BODY)}
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


def signed_at(h: Harness, timestamp: int) -> dict[str, str]:
    return {"Content-Type": FORM, **h.driver.sign(BODY, timestamp=timestamp)}


CASES: dict[str, Headers] = {
    "no timestamp": lambda h: good(h, X_Slack_Request_Timestamp=None),
    "empty timestamp": lambda h: good(h, X_Slack_Request_Timestamp=""),
    "word for a timestamp": lambda h: good(h, X_Slack_Request_Timestamp="yesterday"),
    "float timestamp": lambda h: good(h, X_Slack_Request_Timestamp=f"{time.time():.3f}"),
    "signed timestamp": lambda h: good(h, X_Slack_Request_Timestamp=f"+{int(time.time())}"),
    "negative timestamp": lambda h: good(h, X_Slack_Request_Timestamp="-1"),
    "5000-digit timestamp": lambda h: good(h, X_Slack_Request_Timestamp="9" * 5000),
    "two timestamps": lambda h: good(h, X_Slack_Request_Timestamp=f"{int(time.time())}, {int(time.time())}"),
    "six minutes old": lambda h: signed_at(h, int(time.time()) - 360),
    "six minutes ahead": lambda h: signed_at(h, int(time.time()) + 360),
    "no signature": lambda h: good(h, X_Slack_Signature=None),
    "empty signature": lambda h: good(h, X_Slack_Signature=""),
    "wrong signature": lambda h: good(h, X_Slack_Signature="v0=" + "0" * 64),
    "signature of v1": lambda h: good(h, X_Slack_Signature="v1=" + h.driver.sign(BODY)["X-Slack-Signature"][3:]),
    "signature for another body": lambda h: {"Content-Type": FORM, **h.driver.sign(BODY + b"&x=1")},
    "no headers at all": lambda h: {"Content-Type": FORM},
}


def one_line_only(caplog: pytest.LogCaptureFixture) -> str:
    records = caplog.records
    assert len(records) == 1, [f"{r.name}: {r.getMessage()}" for r in records]
    (record,) = records
    assert record.exc_info is None and "Traceback" not in caplog.text
    assert record.levelno == logging.WARNING and "401" in record.getMessage()
    return record.getMessage()


def nothing_happened(h: Harness, response: DriverResponse) -> None:
    assert response.status == 401, (response.status, response.body)
    assert "went wrong" not in response.body and "Traceback" not in response.body
    h.settle()
    assert h.sim.requests == [] and h.audit() == [] and h.slack.calls_to("chat.postEphemeral") == []


@pytest.mark.parametrize("case", list(CASES))
def test_unverifiable_request_gets_401_and_one_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    headers = CASES[case](harness)
    send = wsgi_sender(harness.bot.wsgi)  # the real WSGI app, in-process: only the app's own log lines
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    response = send("/slack/events", headers, BODY)
    message = one_line_only(caplog)
    assert SIGNING_SECRET not in message and "9999999999" not in message  # header values are not echoed
    nothing_happened(harness, response)


def test_same_over_http(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    response = harness.driver.send_raw(BODY, good(harness, X_Slack_Request_Timestamp="not-a-number"))
    assert [r.getMessage() for r in caplog.records if r.name.startswith("bot")] == [
        "refused an unverifiable request from 127.0.0.1 with 401: X-Slack-Request-Timestamp is not a number"
    ]
    nothing_happened(harness, response)


@pytest.mark.parametrize(("case", "length"), [("over 1 MB", "1000001"), ("not a number", "12abc"), ("huge", "9" * 40)])
def test_body_too_big_or_unreadable_length_is_401_unread(
    harness: Harness, caplog: pytest.LogCaptureFixture, case: str, length: str
) -> None:
    send = wsgi_sender(harness.bot.wsgi)
    caplog.set_level(logging.DEBUG)
    response = send("/slack/events", {**good(harness), "Content-Length": length}, BODY)
    one_line_only(caplog)
    nothing_happened(harness, response)


def test_the_same_request_properly_signed_is_accepted(harness: Harness) -> None:
    response = wsgi_sender(harness.bot.wsgi)("/slack/events", good(harness), BODY)
    assert response.status == 200
    harness.settle()
    assert [c.json["name"] for c in harness.api_calls("POST", "/api/v1/snapshots/")] == ["unverified"]


# ---- Slack's certificate check: the one unsigned request Slack sends ------------------------------------------
SSL_CHECK = urlencode({"ssl_check": "1", "token": "legacy-verification-token"}).encode()


@pytest.mark.parametrize(
    "body",
    [
        SSL_CHECK,
        b"ssl_check=1",
        # Whatever rides along in an unsigned body is never dispatched: the command below must not run.
        SSL_CHECK + b"&" + BODY,
    ],
    ids=["as Slack sends it", "field alone", "with a command riding along"],
)
def test_ssl_check_gets_an_empty_200_and_nothing_else(
    harness: Harness, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    response = harness.driver.send_raw(body, {"Content-Type": FORM})  # over HTTP, unsigned, as Slack sends it
    assert (response.status, response.body) == (200, "")
    harness.settle()
    bots = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # not the test's client
    assert [r.getMessage() for r in bots if r.levelno > logging.DEBUG] == []
    assert harness.sim.requests == [] and harness.audit() == [] and harness.slack.calls_to("chat.postEphemeral") == []


@pytest.mark.parametrize(
    "body",
    [b"ssl_check=0", b"ssl_check=true", b"ssl_check=1&ssl_check=1", b"ssl_check=%EF%BC%91", b'{"ssl_check": "1"}'],
    ids=["zero", "true", "twice", "fullwidth one", "json"],
)
def test_anything_else_like_ssl_check_is_refused_unverified(
    harness: Harness, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    send = wsgi_sender(harness.bot.wsgi)
    caplog.set_level(logging.DEBUG)
    response = send("/slack/events", {"Content-Type": FORM}, body + b"&" + BODY)
    one_line_only(caplog)
    nothing_happened(harness, response)

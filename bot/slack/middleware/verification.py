"""Verify first, then parse: a request whose Slack signature can't be checked gets 401 and one log line, unread
beyond its declared size (`SafeSlackRequestHandler`).

The one unsigned request Slack sends is its certificate check, a form with `ssl_check=1`: it gets an empty 200
and a DEBUG line, and nothing of its body ever reaches Bolt (`is_ssl_check`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest

from bot.slack.middleware.ack_timing import RECEIVED_AT
from bot.slack.middleware.shape import MALFORMED

log = logging.getLogger(__name__)

# ---- transport: verify first, then parse -------------------------------------------------------------------
SIGNATURE_MAX_AGE_SECONDS = 5 * 60  # Slack's own rule: older (or further in the future) is a replay
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # plain digits: int() would also take " 1_0", "+1", "١", and 5000 digits


class SafeSlackRequestHandler(SlackRequestHandler):
    """Bolt's WSGI handler, verifying before anything else happens.

    Every request is checked here first (`unverifiable_reason`): one that cannot be verified — no or a
    malformed or stale timestamp, no or a wrong signature, a body too big to read — gets 401 and exactly one
    log line, never reaching Bolt (whose verifier raises on a non-numeric timestamp, which the app's error
    handler would turn into a 200, and logs whole bodies). A verified body Bolt can't parse gets 400 rather
    than the 500 Bolt would let escape.
    """

    def __init__(
        self,
        app: App,
        path: str = "/slack/events",
        *,
        max_body_bytes: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(app, path=path)
        self._max_body_bytes = max_body_bytes
        self._clock = clock

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        received_at = time.perf_counter()  # where the ack latency metric starts (middleware/ack_timing.py)
        headers = request.get_headers()
        body, problem = self._read_body(request)
        if problem is None and is_ssl_check(body):
            # Answered here, never dispatched: the rest of an unsigned body must not reach a listener.
            log.debug("answered Slack's ssl_check")
            return BoltResponse(status=200, body="")
        if problem is None:
            secret = getattr(self.app, "_signing_secret", None) or ""
            problem = unverifiable_reason(secret, body, headers, now=self._clock())
        if problem is not None:
            remote = str(request.environ.get("REMOTE_ADDR") or "?")[:64]
            log.warning("refused an unverifiable request from %s with 401: %s", remote, problem)
            return BoltResponse(status=401, body="")
        try:
            raw = body.decode("utf-8")
        except UnicodeDecodeError:
            log.info("refused a signed request whose body is not UTF-8")
            return BoltResponse(status=400, body=MALFORMED)
        try:
            bolt_request = BoltRequest(body=raw, query=request.query_string, headers=headers)
            shaped = isinstance(bolt_request.body, dict)
            bolt_request.context[RECEIVED_AT] = received_at
        except Exception:  # JSONDecodeError, or Bolt's context extraction tripping over odd shapes
            shaped = False
        if not shaped:
            log.info("refused a signed request whose body is not a JSON object or form")
            return BoltResponse(status=400, body=MALFORMED)
        try:
            return self.app.dispatch(bolt_request)
        except Exception:  # Bolt catches listener and middleware errors; this is only the rest of it
            log.exception("request dispatch failed")
            return BoltResponse(status=400, body=MALFORMED)

    def _read_body(self, request: WsgiHttpRequest) -> tuple[bytes, str | None]:
        declared = str(request.environ.get("CONTENT_LENGTH") or "0").strip()
        if not declared.isascii() or not declared.isdigit():
            return b"", "Content-Length is not a number"
        length = int(declared) if len(declared) <= 12 else self._max_body_bytes + 1
        if length > self._max_body_bytes:
            # Not read at all, so it cannot be verified (and nothing that big comes from Slack).
            return b"", f"body of {length} bytes is over the {self._max_body_bytes}-byte limit"
        stream = request.environ.get("wsgi.input")
        if stream is None or length == 0:
            return b"", None
        try:
            return stream.read(length), None
        except (OSError, ValueError):  # the client went away mid-body
            return b"", "the body could not be read"


def is_ssl_check(body: bytes) -> bool:
    """True when the body is a form whose `ssl_check` field is exactly `1` (once): Slack's certificate check.

    Slack sends it unsigned (with the app's legacy verification token beside it, which is ignored). Any other
    value, a repeated field or a body that is not a UTF-8 form is an ordinary request and must be verified.
    """
    if b"ssl_check" not in body:
        return False
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return False
    return fields.get("ssl_check") == ["1"]


def unverifiable_reason(secret: str, body: bytes, headers: Mapping[str, Any], *, now: float) -> str | None:
    """Why this request is not provably from Slack (one short line for the log), or None when it is.

    Slack's scheme: `X-Slack-Signature` is `v0=` + HMAC-SHA256(signing secret, `v0:{timestamp}:{body}`), and
    `X-Slack-Request-Timestamp` is within five minutes of now. Header values are never echoed: they are the
    sender's words.
    """
    if not secret:
        return "no signing secret is configured"
    timestamp = _header(headers, "x-slack-request-timestamp")
    signature = _header(headers, "x-slack-signature")
    if timestamp is None:
        return "no X-Slack-Request-Timestamp header"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "X-Slack-Request-Timestamp is not a number"
    age = now - int(timestamp)
    if abs(age) > SIGNATURE_MAX_AGE_SECONDS:
        return f"X-Slack-Request-Timestamp is {abs(age):.0f}s in the {'past' if age > 0 else 'future'}"
    if signature is None:
        return "no X-Slack-Signature header"
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        return "X-Slack-Signature does not match"
    return None


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return None if value is None else str(value)

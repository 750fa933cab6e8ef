"""Ack timing: which command each acknowledgement answered, and how long after the request arrived it came.

Bolt global middleware, installed first among the bot's own: it replaces the request's `ack` with one that reports
(command label, seconds) on its first call and otherwise behaves exactly like Bolt's. The clock starts when the HTTP
handler received the request (`RECEIVED_AT`, set by `SafeSlackRequestHandler`), or here when there is no HTTP
handler (Socket Mode). Requests refused before a listener (foreign workspace, retried delivery) are not acks.

The label is a fixed word, never user text: the slash subcommand when it is one of ours (`unknown` otherwise, `help`
for none), the interaction type, or `event:<type>` for the few event types the bot handles.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.slack.parsing import USAGE

RECEIVED_AT = "snapshot_bot_received_at"  # request context key: time.perf_counter() when the handler got it
INTERACTIONS = frozenset(
    {"block_actions", "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion"}
)
EVENTS = frozenset({"app_home_opened", "app_uninstalled", "tokens_revoked"})

AckReport = Callable[[str, float], None]


def command_label(body: Any) -> str:
    """A bounded name for what a request is: `list`, `restore`, `block_actions`, `event:app_home_opened`, …"""
    if not isinstance(body, dict):
        return "other"
    if "command" in body:
        words = str(body.get("text") or "").split()
        name = words[0].lower() if words else "help"
        return name if name in USAGE else "unknown"
    kind = body.get("type")
    if kind == "event_callback":
        event = body.get("event")
        event_type = event.get("type") if isinstance(event, dict) else None
        return f"event:{event_type}" if event_type in EVENTS else "event:other"
    return kind if isinstance(kind, str) and kind in INTERACTIONS else "other"


class _TimedAck(Ack):
    def __init__(self, label: str, started: float, report: AckReport) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # slack_bolt's Ack.__init__ has no annotations
        self._label, self._started, self._report = label, started, report
        self._reported = False

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = super().__call__(*args, **kwargs)
        if not self._reported:
            self._reported = True
            with contextlib.suppress(Exception):  # observing an ack must never break it
                self._report(self._label, time.perf_counter() - self._started)
        return response


class AckTiming(Middleware):
    def __init__(self, report: AckReport) -> None:
        self._report = report

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        started = req.context.get(RECEIVED_AT)
        if not isinstance(started, float):
            started = time.perf_counter()
        req.context["ack"] = _TimedAck(command_label(req.body), started, self._report)
        return next()

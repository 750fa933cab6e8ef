"""What the fake Slack keeps: recorded calls, messages, ephemerals, views, response_urls and queued failures.

Plain data: nothing here talks HTTP or takes the lock; `FakeSlack` owns the instances and guards them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from devkit.fake_slack.blocks import blocks_text

RESPONSE_URL_METHOD = "response_url"
# Slack's documented response_url limits: usable 5 times within 30 minutes.
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60


@dataclass
class SlackCall:
    """One request Slack received. `method` is the API method, or "response_url" (URL in `args["_url"]`)."""

    method: str
    args: dict[str, Any]
    token: str | None = field(repr=False)
    at: float
    status: int = 200  # the HTTP status the fake answered with
    error: str | None = None  # the Slack error it answered with, if any (e.g. "invalid_auth")

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class FakeMessage:
    """A channel message as users currently see it (updates applied)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    updates: int
    user: str | None
    deleted: bool = False

    @property
    def visible_text(self) -> str:
        """The message's text plus every text in its blocks, newline-joined: what a reader sees."""
        parts = [self.text] if self.text else []
        block_text = blocks_text(self.blocks)
        if block_text:
            parts.append(block_text)
        return "\n".join(parts)

    def as_payload(self) -> dict[str, Any]:
        """The message as Slack embeds it in an interaction payload's `message` field."""
        payload: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "text": self.text,
            "blocks": copy.deepcopy(self.blocks),
            "user": self.user,
            "channel": self.channel,
        }
        if self.thread_ts:
            payload["thread_ts"] = self.thread_ts
        return payload


@dataclass
class FakeEphemeral:
    """A message only `user` sees: from chat.postEphemeral or an ephemeral response_url post."""

    channel: str | None
    user: str | None
    text: str
    blocks: list[dict[str, Any]]
    source: str  # "chat.postEphemeral" or "response_url"
    ts: str | None = None
    thread_ts: str | None = None
    replace_original: bool = False
    response_url: str | None = None

    @property
    def visible_text(self) -> str:
        parts = [self.text] if self.text else []
        block_text = blocks_text(self.blocks)
        if block_text:
            parts.append(block_text)
        return "\n".join(parts)


@dataclass
class FakeView:
    """A modal or Home tab as last opened/pushed/updated/published."""

    view_id: str
    method: str  # the views.* method that last set it
    view: dict[str, Any]
    user_id: str | None = None
    trigger_id: str | None = None
    updates: int = 0


@dataclass
class ResponseUrl:
    url: str
    created_at: float
    channel: str | None
    user_id: str | None
    message_channel: str | None
    message_ts: str | None
    uses: int = 0
    expired: bool = False


@dataclass
class Failure:
    status: int
    error: str | None
    retry_after: int | None
    remaining: int


class ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

"""Talking back to the person who typed or clicked, whichever way still works.

Everything posted from here and from `notify.py` goes through `outgoing`: a `Mrkdwn` text is sent as it is, a
plain `str` is treated as a sentence the bot wrote (`bot.mrkdwn.sentence`: `&`, `<`, `>` escaped, secrets
redacted), and the blocks are passed through the same redactor logs and audit use, as a last line of defence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.mrkdwn import Mrkdwn, redacted, sentence
from bot.mrkdwn import clip as clip_mrkdwn
from bot.redaction import redact_message

MAX_FALLBACK_TEXT = 3000

log = logging.getLogger(__name__)


def outgoing(text: Mrkdwn | str, blocks: list[dict[str, Any]] | None) -> tuple[Mrkdwn, list[dict[str, Any]] | None]:
    """A message's fallback text and blocks as they may leave the bot (see the module docstring)."""
    safe_text = clip_mrkdwn(redacted(sentence(text)), MAX_FALLBACK_TEXT)
    return safe_text, (redact_message(blocks) if blocks is not None else None)


@dataclass
class Reply:
    """Ephemeral answers go through `response_url` (works even where the bot is not a channel member); when that
    fails (expired, unreachable), they fall back to `chat.postEphemeral`."""

    client: WebClient
    user_id: str
    channel_id: str | None
    respond: Respond | None = None

    def ephemeral(
        self, text: Mrkdwn | str, blocks: list[dict[str, Any]] | None = None, *, replace: bool = False
    ) -> None:
        text, blocks = outgoing(text, blocks)
        if self.respond is not None:
            try:
                answer = self.respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=replace)
                status = getattr(answer, "status_code", 200)
                if status == 200:
                    return
                # Slack answers 404 once a response_url has expired or been used up: try the Web API instead.
                log.warning("response_url answered %s; falling back to chat.postEphemeral", status)
            except Exception as error:  # network error: try the Web API instead
                log.warning("response_url failed (%s); falling back to chat.postEphemeral", type(error).__name__)
        if self.channel_id:
            try:
                self.client.chat_postEphemeral(channel=self.channel_id, user=self.user_id, text=text, blocks=blocks)
            except SlackApiError as error:
                log.warning("could not reach user %s: %s", self.user_id, error.response.get("error"))
            except Exception as error:  # Slack unreachable: the result is in the audit trail either way
                log.warning("could not reach user %s: %s", self.user_id, type(error).__name__)

    def to_channel(
        self,
        text: Mrkdwn | str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        channel: str | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any] | None:
        """Post a message everyone sees; returns Slack's answer (with `ts`), or None when it could not be posted."""
        text, blocks = outgoing(text, blocks)
        target = channel or self.channel_id
        if not target:
            return None
        try:
            response = self.client.chat_postMessage(channel=target, text=text, blocks=blocks, thread_ts=thread_ts)
            return dict(response.data) if isinstance(response.data, dict) else None
        except SlackApiError as error:
            log.warning("could not post to %s: %s", target, error.response.get("error"))
            return None
        except Exception as error:
            log.warning("could not post to %s: %s", target, type(error).__name__)
            return None


class DirectReply(Reply):
    """Answers to a click or form in App Home, which has no channel and no response_url: a direct message from
    the bot."""

    def ephemeral(
        self, text: Mrkdwn | str, blocks: list[dict[str, Any]] | None = None, *, replace: bool = False
    ) -> None:
        text, blocks = outgoing(text, blocks)
        try:
            self.client.chat_postMessage(channel=self.user_id, text=text, blocks=blocks)
        except Exception as error:  # the outcome is on the card and in the audit trail either way
            log.warning("could not message user %s: %s", self.user_id, type(error).__name__)

"""Checks shared by the message-safety tests: what may appear between `<` and `>` in text the bot sends, and how
to find every text in a message or view (confirm dialogs included)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# The only `<…>` sequences the bot itself writes: mentions, channel links, dates and links to Slack permalinks.
ALLOWED_SEQUENCES = re.compile(
    r"<@[UW][A-Z0-9]+>"
    r"|<#[CGD][A-Z0-9]+>"
    r"|<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>|]*>"
    r"|<https?://(?:127\.0\.0\.1|localhost|[a-z0-9-]+\.slack\.com)[^\s|<>]*\|[^<>|]*>"
)


def texts(node: Any) -> Iterator[str]:
    """Every string sent as `text` anywhere in a payload: message text, block texts, confirm dialogs, titles."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def unexpected_markup(text: str) -> list[str]:
    """`<` or `>` left after the bot's own sequences are removed: each one is text Slack would interpret."""
    rest = ALLOWED_SEQUENCES.sub("", text)
    return [rest[max(0, i - 20) : i + 20] for i, char in enumerate(rest) if char in "<>"]


def assert_no_unescaped_markup(payload: Any) -> None:
    for text in texts(payload):
        problems = unexpected_markup(text)
        assert not problems, f"unescaped markup {problems!r} in {text!r}"

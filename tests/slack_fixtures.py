"""Pytest plugin: a started FakeSlack per test, plus helpers for asserting on what Slack users see.

Loaded by the shared conftest (`pytest_plugins`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devkit.fake_slack import FakeMessage, FakeSlack, blocks_text, find_action, find_button

__all__ = ["blocks_text", "button", "fake_slack", "find_action", "latest_message", "message_with"]


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """Slack's Web API on 127.0.0.1 (ephemeral port), fresh for each test."""
    with FakeSlack() as fake:
        yield fake


def button(blocks: list[dict[str, Any]], text_or_action_id: str) -> dict[str, Any]:
    """The button in `blocks` whose label or action_id is `text_or_action_id`; AssertionError if none."""
    return find_button(blocks, text_or_action_id)


def latest_message(fake: FakeSlack, channel: str) -> FakeMessage:
    """The newest visible message in `channel`; AssertionError if the channel is empty."""
    messages = fake.messages(channel)
    assert messages, f"no messages in {channel}"
    return messages[-1]


def message_with(fake: FakeSlack, channel: str, text: str) -> FakeMessage:
    """The newest message in `channel` whose visible text contains `text`; else AssertionError."""
    messages = fake.messages(channel)
    for message in reversed(messages):
        if text in message.visible_text:
            return message
    seen = [m.visible_text[:80] for m in messages]
    raise AssertionError(f"no message containing {text!r} in {channel}; messages: {seen}")

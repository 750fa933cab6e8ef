"""What the bot logs while it boots (issue 24 §3): nothing a new operator would mistake for a problem."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from tests.app_fixtures import Harness


def test_bolt_never_says_the_token_is_unused(
    make_harness: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As in production: the token is in the process environment, where Bolt looks for it whatever it is given.
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-0000-boot-test")
    caplog.set_level(logging.DEBUG)
    harness = make_harness()
    assert "/snapshot list" in harness.run("help").body  # the app built this way works
    said = [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")]
    assert not [line for line in said if "will be unused" in line], said
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("slack_bolt")] == []

"""Secrets never leave the bot, not even in pieces (issue 14 §3).

VPS.org's error text used to be cut to 300 characters before the token was scrubbed, and the scrubber replaced
only the whole token: an error body echoing `Authorization: Bearer …` near the cut leaked the token's head to the
channel. These tests drive the app with signed requests and look at everything Slack received (FakeSlack records
every call), every log record (caplog, with the process's logging set up as in production) and every audit row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest

from bot.logging_setup import NOISY_LOGGERS, configure_logging
from bot.redaction import MASK, redact, remember_secret
from devkit.simulator import VpsSimulator
from tests.app_fixtures import ALICE, OPS, Harness

# No `vps_` prefix and no `Bearer` in one of the echoes: only the configured-secret rule can catch those.
TOKEN = "Zk3pQ9vLx2Rm7Tn4Wb8Yc1Hd6Jf5Gs0AqE"


@pytest.fixture
def production_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Logging configured as `python -m bot` does (caplog's handler then gets the redacting filter); restored."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    filters = {h: list(h.filters) for h in handlers}
    level = root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    caplog.set_level(logging.INFO)
    configure_logging("INFO")
    yield caplog
    root.handlers[:] = handlers
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


def _echoing_body(cut_inside_token_at: int) -> str:
    """A 400 body whose flattened words put the token `cut_inside_token_at` characters before the 300 cut."""
    early = f"key {TOKEN[:12]}… is not allowed here;"
    tail = " Authorization: Bearer "
    padding = 300 - len(early) - len(tail) - cut_inside_token_at - 1
    detail = f"{early}{'x' * padding}{tail}{TOKEN} was refused"
    return json.dumps({"detail": detail})


def _everything_slack_received(h: Harness) -> str:
    return "\n".join(json.dumps(call.args, ensure_ascii=False) for call in h.slack.calls)


def _assert_no_piece_of_the_token(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    head = TOKEN[:8]
    slack = _everything_slack_received(h)
    assert head not in slack
    logs = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    assert head not in logs
    rows = [json.dumps([r.action, r.outcome, r.details, r.actor_name], ensure_ascii=False) for r in h.audit()]
    assert rows and not any(head in row for row in rows)


@pytest.mark.parametrize("cut_inside_token_at", [8, 26])
def test_vps_error_echoing_the_token_at_the_cut_leaks_no_prefix_anywhere(
    make_harness: Callable[..., Harness], production_logging: pytest.LogCaptureFixture, cut_inside_token_at: int
) -> None:
    h = make_harness(sim=VpsSimulator(TOKEN, completion_delay=0))
    h.sim.faults.fail_next(400, body=_echoing_body(cut_inside_token_at), methods=["POST"])

    h.run("create 12345 before-update")

    warning = h.last_ephemeral(ALICE).visible_text
    assert "VPS.org refused" in warning and "is not allowed here" in warning  # the words themselves still shown
    assert MASK in warning
    _assert_no_piece_of_the_token(h, production_logging)


def test_token_echoed_by_an_html_error_page_on_delete_is_masked_everywhere(
    make_harness: Callable[..., Harness], production_logging: pytest.LogCaptureFixture
) -> None:
    h = make_harness(sim=VpsSimulator(TOKEN, completion_delay=0))
    page = f"<html><head><title>Bad request</title></head><body>token {TOKEN[:20]} refused</body></html>"
    h.sim.faults.fail_next(400, body=page, methods=["DELETE"])

    assert h.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id=OPS).status == 200
    h.settle()

    assert "VPS.org refused" in h.last_ephemeral(ALICE).visible_text
    _assert_no_piece_of_the_token(h, production_logging)


def test_any_eight_character_prefix_of_a_configured_secret_is_masked() -> None:
    secret = "s3cr3t-Signing-Value-0123456789abcdef"
    remember_secret(secret)
    assert redact(f"sig={secret[:8]} end") == f"sig={MASK} end"
    assert redact(f"sig={secret[:20]}!") == f"sig={MASK}!"
    assert redact(f"a {secret} b") == f"a {MASK} b"
    assert redact(f"only {secret[:7]} here") == f"only {secret[:7]} here"  # 7 characters say nothing

"""LOG_FORMAT=json: one JSON object per line, with the fields log shippers index, and the same redaction as text."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bot.config import Secret
from bot.logging_setup import NOISY_LOGGERS, configure_logging

VPS_TOKEN = "vps_0123456789abcdefABCDEF"
SIGNING = "s1gn1ng-secret-4f7a9c2e1b"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    formatters = {h: h.formatter for h in handlers}
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    root.handlers[:] = handlers
    for handler, formatter in formatters.items():
        handler.setFormatter(formatter)
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


def _fail_with(secret: str) -> None:
    raise RuntimeError(f"upstream rejected Authorization: Bearer {secret}")


def test_json_lines_parse_carry_the_fields_and_mask_every_secret(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configured = Secret(SIGNING)  # a configured secret is masked by value, whatever its shape
    configure_logging("DEBUG", "json")
    log = logging.getLogger("bot.test")

    log.info("calling VPS.org with %s", VPS_TOKEN)
    log.warning("signing with %s", configured.reveal(), extra={"request_id": 42, "detail": {"token": VPS_TOKEN}})
    try:
        _fail_with(VPS_TOKEN)
    except RuntimeError:
        log.exception("boom\nsecond line")

    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 3  # one line per record, a newline in the message included
    records = [json.loads(line) for line in lines]
    assert VPS_TOKEN not in err and SIGNING not in err and SIGNING[:8] not in err

    first, second, third = records
    assert first["level"] == "INFO" and first["logger"] == "bot.test"
    assert first["message"] == "calling VPS.org with vps_[redacted]"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "signing with [redacted]"
    assert second["request_id"] == 42 and second["detail"] == {"token": "vps_[redacted]"}
    assert third["message"] == "boom\nsecond line"
    assert "RuntimeError: upstream rejected Authorization: [redacted]" in third["exception"]


def test_text_stays_the_default_and_switching_back_works(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    configure_logging("INFO")
    logging.getLogger("bot.test").info("plain %s", VPS_TOKEN)
    err = capsys.readouterr().err
    assert "INFO bot.test: plain vps_[redacted]" in err


EVERY_LINE = """
import threading, warnings
from bot.logging_setup import configure_logging
configure_logging("INFO", "json")
warnings.warn("a library's deprecation")
worker = threading.Thread(target=lambda: 1 / 0, name="poller")
worker.start()
worker.join()
"""


def test_with_json_every_line_is_json_warnings_and_thread_crashes_included() -> None:
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-c", EVERY_LINE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]  # each line parses
    messages = [r["message"] for r in records]
    assert any("a library's deprecation" in m for m in messages), messages
    crash = next(r for r in records if r["message"].startswith("thread poller stopped"))
    assert "ZeroDivisionError" in crash["exception"]

"""Escalation that would grant nothing stops `python -m bot serve` with one line (issue 28 §1), before any Slack
call or database is touched."""

from __future__ import annotations

from pathlib import Path

from tests.adapter.test_startup_output import TOKENS, bot, one_line


def test_serve_refuses_an_escalation_target_who_cannot_approve(tmp_path: Path) -> None:
    done = bot(
        tmp_path,
        "serve",
        **TOKENS,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        SNAPSHOT_APPROVERS="U0BOB",
        APPROVAL_ESCALATE_TO="U0BOB,U0ERIN",
    )
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("snapshot-bot: configuration error: APPROVAL_ESCALATE_TO names U0ERIN")
    assert "holds no approver role" in line
    assert not (tmp_path / "bot.db").exists()  # refused before the database was opened

"""The shell shows the typed step-up (issue 28 §2): with APPROVAL_STEP_UP=typed, Approve opens the form (no confirm
dialog first: the form says what approving does), a wrong name is asked again with the reason, and the right one
approves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.devkit.test_shell import run


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shell.db'}"


def test_the_shell_walks_through_the_typed_step_up(sqlite_url: str) -> None:
    t = run(
        ["/snapshot restore 801", "/as bob", "1", "WEB-SERVER-01", "web-server-01"],
        database_url=sqlite_url,
        env={"APPROVAL_STEP_UP": "typed", "RESTORE_SAFETY_SNAPSHOT": "off"},
    )
    t.in_order(
        "Form: Approve request #1",
        "Approve this restore? pre-migration-snapshot (#801) will be restored onto web-server-01. All current data "
        "there is overwritten. This cannot be undone.",
        "type the server's name exactly as shown (case-sensitive): web-server-01",
        "That is not the server's name as shown",
        "Approved by @bob",
    )
    assert "[y/N]" not in t.out  # one confirmation, the form's
    assert t.out.count("Approved by @bob") >= 1 and "restore has started" in t.out

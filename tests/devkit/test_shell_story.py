"""The on-call story of issue 17, told through the shell's scripted mode as a newcomer would meet it in `make run`.

A restore asked on a suspended server is refused with the reason; the one asked on a healthy server with a reason
gets its card; fifty other messages later `/snapshot pending` still offers the request with its buttons; a second
person approves it there; `/wait` waits for it; and the card tells the end: the restore finished.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.simulator import VpsSimulator
from tests.app_fixtures import SkippingClock
from tests.devkit.test_shell import run

LEGACY = 950  # a snapshot of legacy-01, the simulator's suspended server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shell.db'}"


def test_suspended_then_healthy_with_a_reason_found_again_in_pending_approved_and_finished(sqlite_url: str) -> None:
    clock = SkippingClock()  # the bot's polls of the safety snapshot move the simulator's clock on (run's docstring)
    sim = VpsSimulator(completion_delay=1.0, restore_delay=1.0, clock=clock)
    sim.add_snapshot(12349, "legacy-before-upgrade", snapshot_id=LEGACY)
    chatter = ["/snapshot help"] * 50  # the card scrolls far away
    t = run(
        [
            f"/snapshot restore {LEGACY}",
            "/snapshot restore 801 INC-1234 db corrupted",
            *chatter,
            "/as bob",
            "/snapshot pending",
            "1",  # [1] of the pending list: Approve (safety snapshot first)
            "y",
            "/wait 60",
        ],
        database_url=sqlite_url,
        sim=sim,
        clock=clock,
    )
    t.in_order(
        "legacy-01",
        "is suspended at VPS.org, so it can't be restored",
        "RESTORE REQUEST #1",
        "Reason: “INC-1234 db corrupted”",
    )
    pending = t.after("You are now @bob")
    assert "1 open request" in pending and "Reason: “INC-1234 db corrupted”" in pending
    assert "[1] Approve (safety snapshot first)" in pending  # found again, with its buttons, after 50 messages
    t.in_order(
        "You are now @bob",
        "Approve this restore?",
        "⏳ Approved by @bob",
        "being restored for",
        "✅ Approved by @bob",
        "restore finished in under a minute; the server is active again. Next: check that its services are back.",
        "(done after ",
        "restore of pre-migration-snapshot (#801) onto web-server-01: finished)",
    )
    assert not sim.calls("POST", f"snapshots/{LEGACY}/restore/"), "nothing was asked of VPS.org for the suspended one"
    assert len(sim.calls("POST", "snapshots/801/restore/")) == 1

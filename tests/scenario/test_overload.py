"""Overload: post-ack work arrives faster than it finishes. The queue is bounded (SNAPSHOT_WORK_QUEUE_LIMIT): a
request past it is answered "busy, nothing was done" at the ack, reaches neither VPS.org nor the audit trail, and
is counted; what was queued before still completes. (The unbounded queue was the soak's worker memory growth.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.app_fixtures import ALICE, OPS, Harness
from tests.scenario.test_faults_vps import HoldingSimulator, slow_vps  # noqa: F401 (fixture)


def test_a_full_post_ack_queue_turns_requests_away_at_the_ack_and_changes_nothing(
    make_harness: Callable[..., Harness],
    slow_vps: HoldingSimulator,  # noqa: F811
) -> None:
    h = make_harness(
        sim=slow_vps.sim,
        vps_transport=httpx.HTTPTransport(),
        VPS_API_URL=slow_vps.url,
        SNAPSHOT_WORKER_THREADS="1",
        SNAPSHOT_WORK_QUEUE_LIMIT="1",
    )
    slow_vps.hold("GET", "/snapshots/")
    first = h.driver.command("list 12345", user_id=ALICE, user_name="alice", channel_id=OPS)
    assert first.status == 200
    assert slow_vps.held.wait(10), "the first list should be sitting at VPS.org, holding the only thread"
    second = h.driver.command("list 12346", user_id=ALICE, user_name="alice", channel_id=OPS)  # waits its turn
    turned_away = h.driver.command("create 12345 not-now", user_id=ALICE, user_name="alice", channel_id=OPS)

    assert second.status == 200 and "busy" not in second.body
    assert turned_away.status == 200
    assert "busy right now" in turned_away.body and "nothing was done" in turned_away.body
    assert h.bot.metrics.registry.get_sample_value("snapshot_bot_requests_shed_total") == 1

    slow_vps.release()
    deadline = time.monotonic() + 20
    while len(h.ephemerals(ALICE)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert h.bot.core.wait_idle(20)
    answered = [e.visible_text for e in h.ephemerals(ALICE)]
    assert len(answered) == 2, answered  # both lists, nothing about the create
    # The create never started: no call to VPS.org, no audit row.
    assert h.mutating_calls() == []
    assert not [a for a in h.actions() if a.startswith("create")]

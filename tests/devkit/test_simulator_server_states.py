"""The simulator's knobs for the checks before asking (issue 17 §1): a server being restored from outside the bot,
faults aimed at one endpoint, a slow endpoint."""

from __future__ import annotations

import time

import pytest

from bot.vps.client import VpsClient
from bot.vps.errors import DeadlineExceeded, Unavailable
from devkit.simulator import VpsSimulator


def test_start_restore_is_restoring_until_its_time_passes() -> None:
    now = [0.0]
    sim = VpsSimulator(clock=lambda: now[0])
    sim.start_restore(12345, seconds=60)
    assert sim.server_status(12345) == "restoring"
    now[0] = 59.0
    assert sim.server_status(12345) == "restoring"
    now[0] = 60.0
    assert sim.server_status(12345) == "active"


def test_a_fault_aimed_at_servers_leaves_snapshots_alone(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.fail_next(503, times=10, path="servers/")
    assert len(vps_client.list_snapshots()) > 0  # not the servers path: answered
    with pytest.raises(Unavailable):
        vps_client.list_servers()
    statuses = [(r.path, r.status) for r in vps_sim.requests]
    assert statuses[0] == ("/api/v1/snapshots/", 200)
    assert {s for p, s in statuses if p == "/api/v1/servers/"} == {503}


def test_a_slow_endpoint_answers_late_and_a_deadline_does_not_wait(vps_sim: VpsSimulator) -> None:
    client = VpsClient("http://127.0.0.1:9/api/v1/", vps_sim.token, transport=vps_sim.transport())
    try:
        vps_sim.faults.slow_next(0.3, path="servers/")
        started = time.monotonic()
        assert [s.id for s in client.list_servers()][:1] == [12345]  # answered, after the delay
        assert time.monotonic() - started >= 0.3
        vps_sim.faults.slow_next(2.0, path="servers/")
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.list_servers(deadline=client.clock() + 0.2)
        assert time.monotonic() - started < 1.5
    finally:
        client.close()

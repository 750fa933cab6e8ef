"""Following snapshot creation and restores to their end: message updated in place, thread reply, notification,
audit rows; O(1) API calls per poll; leases across replicas and restarts; backoff when VPS.org fails.

Time never passes by sleeping: the tracker's clocks are replaced and the simulator is driven explicitly
(`complete_snapshot`, `set_server_status`); `poll_once(force=True)` runs one round at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.slack.progress import ProgressTracker
from bot.usecases.approvals import RequestView
from bot.usecases.context import Actor, utcnow
from bot.usecases.snapshots import CreateResult
from bot.usecases.tracking import EventKind, Tracker
from bot.vps.client import SnapshotList, VpsClient
from bot.vps.models import ServerRef, Snapshot
from devkit.fake_slack import FakeMessage, find_button
from devkit.simulator import VpsSimulator
from storage.audit import AuditLog
from storage.db import Database
from tests.app_fixtures import ALICE, BOB, OPS, Harness

NOTIFY = "C0NOTIFY"
APPROVALS = "C0APPROVE"


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def make(make_harness: Callable[..., Harness]) -> Callable[..., Harness]:
    """The whole bot, without the 1 s per-channel pacing (tests/test_notify.py covers pacing on its own)."""

    def factory(**kwargs: Any) -> Harness:
        h = make_harness(**kwargs)
        h.bot.slack.notifier.min_interval = 0.0
        return h

    return factory


def progress(h: Harness) -> ProgressTracker:
    tracker = h.bot.slack.cards
    assert isinstance(tracker, ProgressTracker)
    return tracker


def with_clock(h: Harness) -> FakeClock:
    clock = FakeClock()
    progress(h).tracker.clock = clock
    return clock


def slow_sim() -> VpsSimulator:
    """Snapshots and restores never finish on their own: the test says when."""
    return VpsSimulator(completion_delay=10_000, restore_delay=10_000)


def announcement(h: Harness, name: str, channel: str = OPS) -> FakeMessage:
    found = [m for m in h.channel(channel) if f"started snapshot `{name}`" in m.text and m.thread_ts is None]
    assert found, f"no announcement of {name} in {channel}: {[m.text for m in h.channel(channel)]}"
    return h.slack.message(channel, found[-1].ts)


def thread(h: Harness, parent: FakeMessage) -> list[FakeMessage]:
    return [m for m in h.channel(parent.channel) if m.thread_ts == parent.ts]


def snapshot_id_of(h: Harness, name: str) -> int:
    return next(s.id for s in h.bot.core.vps.list_snapshots() if s.name == name)


def size_text(h: Harness, snapshot_id: int) -> str:
    size = next(s.size_mb for s in h.bot.core.vps.list_snapshots() if s.id == snapshot_id)
    assert size is not None
    return f"{size / 1024:.1f} GB"


def audit_rows(h: Harness, action: str) -> list[Any]:
    return [r for r in h.audit() if r.action == action]


def snapshot_lists(h: Harness) -> int:
    return len([r for r in h.sim.requests if r.method == "GET" and r.path == "/api/v1/snapshots/"])


# ---- through Slack -------------------------------------------------------------------------------------------
def test_create_is_followed_to_completion_with_update_thread_notification_and_audit(
    make: Callable[..., Harness],
) -> None:
    h = make(sim=slow_sim(), SNAPSHOT_NOTIFY_CHANNEL=NOTIFY)
    clock = with_clock(h)
    h.run("create 12345 before-update")
    message = announcement(h, "before-update")
    snapshot_id = snapshot_id_of(h, "before-update")
    assert "in progress" in message.visible_text
    assert any("started snapshot `before-update`" in m.text for m in h.channel(NOTIFY))  # the "created" line

    lists_before = snapshot_lists(h)
    clock.advance(minutes=2)
    assert progress(h).poll_once(force=True) == []  # still in progress: nothing to say, nothing changed
    assert snapshot_lists(h) == lists_before + 1
    assert h.slack.message(OPS, message.ts).updates == 0

    clock.advance(minutes=2)
    h.sim.complete_snapshot(snapshot_id)
    events = progress(h).poll_once(force=True)
    assert [e.kind for e in events] == [EventKind.COMPLETED]

    size = size_text(h, snapshot_id)
    updated = h.slack.message(OPS, message.ts)
    assert updated.updates == 1
    assert f"completed · {size} · took 4 min" in updated.visible_text
    assert "in progress" not in updated.visible_text
    news = f"Snapshot `before-update` of `web-server-01` is ready — {size}, took 4 min"
    replies = thread(h, message)
    assert len(replies) == 1 and replies[0].text == f"<@{ALICE}> {news}."
    assert [m.text for m in h.channel(NOTIFY) if "is ready" in m.text] == [f":white_check_mark: {news}."]
    completed = audit_rows(h, "create.completed")
    assert len(completed) == 1
    assert (completed[0].outcome, completed[0].snapshot_id, completed[0].server_id) == ("ok", snapshot_id, 12345)
    assert completed[0].details["started_by"] == ALICE and completed[0].details["tracked_seconds"] == 240

    # Over is over: later polls neither call VPS.org for it nor say anything again.
    calls = len(h.sim.requests)
    assert progress(h).poll_once(force=True) == []
    assert len(h.sim.requests) == calls
    assert len(thread(h, message)) == 1 and h.slack.message(OPS, message.ts).updates == 1


def test_without_a_notification_channel_the_thread_reply_is_broadcast_once(make: Callable[..., Harness]) -> None:
    h = make()  # the default simulator completes snapshots at once
    h.run("create 12346 quick-one")
    message = announcement(h, "quick-one")
    progress(h).poll_once(force=True)
    replies = thread(h, message)
    assert len(replies) == 1 and f"<@{ALICE}>" in replies[0].text and "is ready" in replies[0].text
    posted = h.slack.calls_to("chat.postMessage")[-1]
    assert posted.args.get("thread_ts") == message.ts and posted.args.get("reply_broadcast") in (True, "true", "1")
    # The action's channel hears the news once: no separate top-level line.
    assert [m for m in h.channel(OPS) if "is ready" in m.text and m.thread_ts is None] == []


def test_unknown_status_updates_the_message_in_place(make: Callable[..., Harness]) -> None:
    sim = slow_sim()
    h = make(sim=sim)
    h.run("create 12345 odd-one")
    message = announcement(h, "odd-one")
    snapshot_id = snapshot_id_of(h, "odd-one")
    with sim._lock:  # the API reports a state the docs never mention
        sim._snapshots[snapshot_id].status = "copying"
    events = progress(h).poll_once(force=True)
    assert [(e.kind, e.status) for e in events] == [(EventKind.PROGRESS, "copying")]
    updated = h.slack.message(OPS, message.ts)
    assert updated.updates == 1 and "copying" in updated.visible_text
    assert thread(h, message) == []  # progress is shown in place, not announced


def test_vanished_and_timed_out_snapshots_are_told_and_audited(make: Callable[..., Harness]) -> None:
    h = make(sim=slow_sim(), SNAPSHOT_TRACK_TIMEOUT_MINUTES="30")
    clock = with_clock(h)
    h.run("create 12345 goes-away")
    h.run("create 12346 takes-forever")
    gone, slow = announcement(h, "goes-away"), announcement(h, "takes-forever")
    h.bot.core.vps.delete_snapshot(snapshot_id_of(h, "goes-away"))  # deleted behind the bot's back

    events = progress(h).poll_once(force=True)
    assert [e.kind for e in events] == [EventKind.VANISHED]
    assert "disappeared from VPS.org" in h.slack.message(OPS, gone.ts).visible_text
    assert "disappeared from VPS.org before it completed" in thread(h, gone)[0].text
    assert [(r.outcome, r.details["name"]) for r in audit_rows(h, "create.vanished")] == [("failed", "goes-away")]

    clock.advance(minutes=31)
    events = progress(h).poll_once(force=True)
    assert [e.kind for e in events] == [EventKind.TIMEOUT]
    text = h.slack.message(OPS, slow.ts).visible_text
    assert "still in progress after 31 min" in text and "no longer followed" in text
    assert "stopped following it" in thread(h, slow)[0].text
    assert [(r.outcome, r.details["name"]) for r in audit_rows(h, "create.timeout")] == [("unknown", "takes-forever")]


def test_restore_is_followed_until_the_server_is_active_again(make: Callable[..., Harness]) -> None:
    h = make(sim=slow_sim(), SNAPSHOT_APPROVAL_CHANNEL=APPROVALS, SNAPSHOT_NOTIFY_CHANNEL=NOTIFY)
    clock = with_clock(h)
    h.run("restore 801", user=ALICE)
    card = [m for m in h.channel(APPROVALS) if "request #" in m.visible_text][-1]
    h.click(card, "Approve", user=BOB)
    h.settle()
    assert h.sim.server_status(12345) == "restoring"

    servers_before = len(h.sim.calls("GET", "servers/"))
    clock.advance(minutes=3)
    assert progress(h).poll_once(force=True) == []
    assert len(h.sim.calls("GET", "servers/")) == servers_before + 1

    clock.advance(minutes=6)
    h.sim.set_server_status(12345, "active")
    events = progress(h).poll_once(force=True)
    assert [e.kind for e in events] == [EventKind.FINISHED]
    news = "Restore of `web-server-01` from snapshot `pre-migration-snapshot` finished — the server is active again"
    replies = [m for m in thread(h, card) if "finished" in m.text]
    assert len(replies) == 1 and replies[0].text == f"<@{ALICE}> {news} (took 9 min)."
    assert [m.text for m in h.channel(NOTIFY) if "finished" in m.text] == [f":white_check_mark: {news} (took 9 min)."]
    finished = audit_rows(h, "restore.finished")
    assert len(finished) == 1 and finished[0].outcome == "ok" and finished[0].request_id is not None
    assert h.actions()[-3:] == ["restore.executing", "restore.executed", "restore.finished"]


def test_restart_mid_tracking_resumes_where_it_left_off(make: Callable[..., Harness]) -> None:
    sim = slow_sim()
    first = make(sim=sim)
    first.run("create 12345 survives-restart")
    message = announcement(first, "survives-restart")
    progress(first).poll_once(force=True)  # the first process holds the lease… and then dies
    owner_before = progress(first).tracker.owner

    second = make(sim=sim)  # same database file, same Slack: a restarted process
    clock = with_clock(second)
    assert progress(second).tracker.owner != owner_before
    sim.complete_snapshot(snapshot_id_of(second, "survives-restart"))
    assert progress(second).poll_once(force=True) == []  # the dead process's lease has not expired yet

    clock.advance(minutes=5)  # …now it has
    events = progress(second).poll_once(force=True)
    assert [e.kind for e in events] == [EventKind.COMPLETED]
    assert "completed" in second.slack.message(OPS, message.ts).visible_text
    assert len(thread(second, message)) == 1
    assert len(audit_rows(second, "create.completed")) == 1


def test_a_slack_429_is_retried_and_the_notification_still_arrives(make: Callable[..., Harness]) -> None:
    h = make(SNAPSHOT_NOTIFY_CHANNEL=NOTIFY)
    h.run("create 12346 rate-limited")
    message = announcement(h, "rate-limited")
    h.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    progress(h).poll_once(force=True)
    assert [c.status for c in h.slack.calls_to("chat.postMessage")].count(429) == 1
    assert len(thread(h, message)) == 1
    assert len([m for m in h.channel(NOTIFY) if "`rate-limited` of `db-server-01` is ready" in m.text]) == 1


def test_quota_is_checked_before_the_api_and_offers_the_oldest_for_deletion(make: Callable[..., Harness]) -> None:
    h = make()
    h.run("list")
    listed = h.last_ephemeral().visible_text
    assert "2 of 5 snapshots" in listed and "5 of 5 snapshots — limit reached" in listed

    h.run("create 12348 one-too-many")
    refusal = h.last_ephemeral()
    assert "already has 5 of 5 snapshots" in refusal.visible_text
    assert "the oldest is `staging-build-1` (#810)" in refusal.visible_text
    offer = find_button(refusal.blocks, "Delete the oldest…")
    assert (offer["action_id"], offer["value"]) == ("snapshot_delete", "810")
    assert h.mutating_calls() == []  # refused before VPS.org was asked

    # The button leads into the normal delete flow: confirmation first, then the delete itself.
    h.driver.block_action("snapshot_delete", "810", user_id=ALICE, channel_id=OPS)
    h.settle()
    confirmation = h.last_ephemeral()
    assert "Delete snapshot `staging-build-1` (#810)" in confirmation.visible_text
    assert h.mutating_calls() == []
    h.driver.block_action("snapshot_delete_confirm", "810", user_id=ALICE, channel_id=OPS)
    h.settle()
    h.run("create 12348 fits-now")
    assert [(r.method, r.path) for r in h.mutating_calls()] == [
        ("DELETE", "/api/v1/snapshots/810/"),
        ("POST", "/api/v1/snapshots/"),
    ]
    assert announcement(h, "fits-now")


class Rendezvous:
    """Holds a replica right after its list call until the other replica has listed too."""

    def __init__(self, real: VpsClient, barrier: threading.Barrier) -> None:
        self.real = real
        self.barrier = barrier

    def list_snapshots(self, server_id: int | None = None) -> SnapshotList:
        found = self.real.list_snapshots(server_id)
        self.barrier.wait()
        return found


def test_two_replicas_on_one_database_never_notify_twice(database_url: str, make: Callable[..., Harness]) -> None:
    """Runs on PostgreSQL (FOR UPDATE SKIP LOCKED) and on SQLite."""
    sim = slow_sim()
    a = make(sim=sim, database_url=database_url, SNAPSHOT_NOTIFY_CHANNEL=NOTIFY)
    b = make(sim=sim, database_url=database_url, SNAPSHOT_NOTIFY_CHANNEL=NOTIFY)
    names = [f"replica-{i}" for i in range(3)]
    for name, server in zip(names, (12345, 12346, 12347), strict=True):
        a.run(f"create {server} {name}")

    # With leases as configured, the replica that claimed first keeps the work to itself.
    assert progress(a).poll_once(force=True) == []
    lists = snapshot_lists(b)
    assert progress(b).poll_once(force=True) == []
    assert snapshot_lists(b) == lists  # nothing claimed, so no API call either

    # The worst case: leases that run out at once, and both replicas holding the same completed operations,
    # listed, at the same moment. Only the compare-and-set stands between them and a double announcement.
    later = FakeClock(utcnow() + timedelta(minutes=10))
    listed = threading.Barrier(2, timeout=10)
    for replica in (a, b):
        tracker = progress(replica).tracker
        tracker.lease, tracker.clock = timedelta(0), later
        tracker.vps = Rendezvous(tracker.vps, listed)  # type: ignore[assignment]
    for name in names:
        sim.complete_snapshot(snapshot_id_of(a, name))
    lists = snapshot_lists(a)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(progress(a).poll_once, force=True)
        deadline = time.monotonic() + 10
        while listed.n_waiting < 1:  # a has claimed and listed; b claims only now, so it holds them too
            assert time.monotonic() < deadline, "replica a never listed"
            time.sleep(0.01)
        second = pool.submit(progress(b).poll_once, force=True)
        events = first.result(timeout=20) + second.result(timeout=20)
    assert snapshot_lists(a) == lists + 2 * len(names)  # both replicas really were on it: one listing per server
    assert sorted(e.operation.snapshot_name for e in events) == names
    for name in names:
        assert len(thread(a, announcement(a, name))) == 1, name
        assert len([m for m in a.channel(NOTIFY) if f"`{name}`" in m.text and "is ready" in m.text]) == 1, name
    assert sorted(r.details["name"] for r in audit_rows(a, "create.completed")) == names


# ---- the use case directly -----------------------------------------------------------------------------------
@pytest.fixture
def sim() -> VpsSimulator:
    return VpsSimulator(completion_delay=10_000, restore_delay=10_000, page_size=1000)


@pytest.fixture
def vps(sim: VpsSimulator) -> Iterator[VpsClient]:
    client = VpsClient("http://vps.test/api/v1/", sim.token, transport=sim.transport(), get_retries=0)
    yield client
    client.close()


def make_tracker(database: Database, vps: VpsClient, **kwargs: Any) -> Tracker:
    return Tracker(db=database, audit=AuditLog(database), vps=vps, poll_seconds=30, **kwargs)


def track_new(tracker: Tracker, sim: VpsSimulator, count: int, server_id: int = 12347) -> list[int]:
    ids = []
    for i in range(count):
        snapshot_id = sim.add_snapshot(server_id, f"bulk-{i}", status="in_progress")
        snap = Snapshot(snapshot_id, ServerRef(server_id, "cache-01"), f"bulk-{i}", "in_progress", None, utcnow())
        result = CreateResult(snap, ServerRef(server_id, "cache-01"), "", "op")
        tracker.track_create(Actor(ALICE, channel_id=OPS), result, message_channel=OPS, message_ts=None)
        ids.append(snapshot_id)
    return ids


def test_api_calls_per_poll_stay_constant_from_1_to_500_tracked(
    sqlite_database: Database, sim: VpsSimulator, vps: VpsClient
) -> None:
    tracker = make_tracker(sqlite_database, vps)
    per_poll: dict[int, list[tuple[str, str]]] = {}
    tracked = 0
    for target in (1, 100, 500):
        track_new(tracker, sim, target - tracked)
        tracked = target
        before = len(sim.requests)
        assert tracker.poll_once(force=True) == []
        per_poll[target] = [(r.method, r.path) for r in sim.requests[before:]]
    assert per_poll == {n: [("GET", "/api/v1/snapshots/")] for n in (1, 100, 500)}
    assert len(tracker.active(limit=1000)) == 500

    for snapshot_id in sim.snapshot_ids(12347):
        sim.complete_snapshot(snapshot_id)
    before = len(sim.requests)
    events = tracker.poll_once(force=True)
    assert len(events) == 500 and {e.kind for e in events} == {EventKind.COMPLETED}
    assert len(sim.requests) - before == 1


def test_a_poll_costs_one_filtered_listing_per_server_however_large_the_account(sqlite_database: Database) -> None:
    """Issue 27 §1: with 12,003 snapshots the account-wide listing stopped at 10,000 and a create outside them
    ended as a timeout; a poll now lists only the servers with tracked work, one filtered request each."""
    sim = VpsSimulator(seed=False, completion_delay=10_000)
    for s in range(2_403):
        sim.add_server(30_000 + s, f"srv-{s}")
    for n in range(12_003):
        sim.add_snapshot(30_000 + n % 2_403, f"old-{n}", created_at=utcnow() - timedelta(days=1))
    with VpsClient("http://vps.test/api/v1/", sim.token, transport=sim.transport(), get_retries=0) as vps:
        tracker = make_tracker(sqlite_database, vps)
        tracked = [*track_new(tracker, sim, 2, server_id=30_000), *track_new(tracker, sim, 1, server_id=32_402)]
        before = len(sim.requests)
        assert tracker.poll_once(force=True) == []
        polled = sim.requests[before:]
        assert [(r.method, r.path, r.query) for r in polled] == [
            ("GET", "/api/v1/snapshots/", {"server_id": "30000"}),
            ("GET", "/api/v1/snapshots/", {"server_id": "32402"}),
        ]
        for snapshot_id in tracked:
            sim.complete_snapshot(snapshot_id)
        events = tracker.poll_once(force=True)
    assert sorted(e.operation.snapshot_id for e in events if e.kind is EventKind.COMPLETED) == sorted(tracked)


def restore_request(request_id: int) -> RequestView:
    now = utcnow()
    return RequestView(
        id=request_id,
        kind="restore",
        state="executed",
        requester_id=ALICE,
        requester_name="",
        channel_id=OPS,
        snapshot_id=801,
        snapshot_name="pre-migration-snapshot",
        snapshot_status="completed",
        snapshot_size_mb=1,
        snapshot_created_at=now,
        snapshot_description="",
        server_id=12345,
        server_name="web-server-01",
        approvals_required=1,
        approvers=(BOB,),
        created_at=now,
        expires_at=now,
        decided_by=BOB,
        decided_at=now,
        reason="",
        result_message="",
        card_channel=APPROVALS,
        card_ts="1.000001",
    )


def test_restores_share_one_servers_call(sqlite_database: Database, sim: VpsSimulator, vps: VpsClient) -> None:
    tracker = make_tracker(sqlite_database, vps)
    for request_id in range(1, 51):
        tracker.track_restore(restore_request(request_id))
    tracker.track_restore(restore_request(1))  # the same request again (a retried delivery): followed once
    assert len(tracker.active(limit=100)) == 50
    sim.set_server_status(12345, "restoring")
    before = len(sim.requests)
    assert tracker.poll_once(force=True) == []
    assert [(r.method, r.path) for r in sim.requests[before:]] == [("GET", "/api/v1/servers/")]
    sim.set_server_status(12345, "active")
    events = tracker.poll_once(force=True)
    assert len(events) == 50 and {e.kind for e in events} == {EventKind.FINISHED}


def test_leases_keep_each_operation_with_one_replica_until_they_expire(
    database: Database, sim: VpsSimulator, vps: VpsClient
) -> None:
    clock = FakeClock()
    a = make_tracker(database, vps, owner="replica-a", clock=clock)
    b = make_tracker(database, vps, owner="replica-b", clock=clock)
    [snapshot_id] = track_new(a, sim, 1)
    a.poll_once(force=True)
    assert [op.lease_owner for op in a.active()] == ["replica-a"]

    requests = len(sim.requests)
    assert b.poll_once(force=True) == [] and len(sim.requests) == requests  # leased elsewhere: untouched
    clock.advance(seconds=a.lease.total_seconds() + 1)  # replica a died: its lease runs out
    sim.complete_snapshot(snapshot_id)
    events = b.poll_once(force=True)
    assert [(e.kind, e.operation.snapshot_id) for e in events] == [(EventKind.COMPLETED, snapshot_id)]
    assert a.poll_once(force=True) == []  # a comes back: the operation is over, nothing to announce twice


def test_released_leases_are_taken_over_at_once(database: Database, sim: VpsSimulator, vps: VpsClient) -> None:
    a = make_tracker(database, vps, owner="replica-a")
    b = make_tracker(database, vps, owner="replica-b")
    track_new(a, sim, 2)
    a.poll_once(force=True)
    assert a.release() == 2  # graceful shutdown
    b.poll_once(force=True)
    assert {op.lease_owner for op in b.active()} == {"replica-b"}


def test_backoff_doubles_up_to_ten_times_the_interval_and_resets(
    sqlite_database: Database, sim: VpsSimulator, vps: VpsClient
) -> None:
    now = [0.0]
    tracker = make_tracker(sqlite_database, vps, monotonic=lambda: now[0])
    track_new(tracker, sim, 1)

    def poll_at(t: float) -> bool:
        """Poll at monotonic time t; True when the tracker called VPS.org."""
        now[0] = t
        before = len(sim.requests)
        tracker.poll_once()
        return len(sim.requests) > before

    sim.faults.fail_next(503, times=5, methods={"GET"})
    assert poll_at(0)  # fails: next poll after 2 × 30 s
    assert not poll_at(30) and poll_at(60)  # fails: 4 ×
    assert not poll_at(60 + 90) and poll_at(60 + 120)  # fails: 8 ×
    assert not poll_at(180 + 200) and poll_at(180 + 240)  # fails: 10 × (capped, not 16 ×)
    assert tracker.backoff_factor == 10
    assert not poll_at(420 + 250) and poll_at(420 + 300)  # fails again, still 10 ×
    assert poll_at(720 + 300)  # succeeds: back to the normal interval
    assert tracker.backoff_factor == 1
    assert not poll_at(1020 + 10) and poll_at(1020 + 30)


def test_deadlines_apply_while_vps_is_down(sqlite_database: Database, sim: VpsSimulator, vps: VpsClient) -> None:
    clock = FakeClock()
    tracker = make_tracker(sqlite_database, vps, clock=clock, timeout=timedelta(minutes=20))
    track_new(tracker, sim, 1)
    sim.faults.fail_next(500, times=2, methods={"GET"})
    assert tracker.poll_once(force=True) == []
    clock.advance(minutes=21)
    events = tracker.poll_once(force=True)
    assert [(e.kind, e.status) for e in events] == [(EventKind.TIMEOUT, "in_progress")]
    assert [r.action for r in AuditLog(sqlite_database).query(action="create.timeout")] == ["create.timeout"]


class PartialVps:
    """VPS.org saying it has more snapshots than it sent (an incomplete list)."""

    def list_snapshots(self, server_id: int | None = None) -> SnapshotList:
        return SnapshotList([], total=12)


def test_a_partial_list_is_not_taken_as_vanished(sqlite_database: Database, sim: VpsSimulator) -> None:
    tracker = Tracker(db=sqlite_database, audit=AuditLog(sqlite_database), vps=PartialVps())  # type: ignore[arg-type]
    [snapshot_id] = track_new(tracker, sim, 1)
    assert tracker.poll_once(force=True) == []
    assert [op.snapshot_id for op in tracker.active()] == [snapshot_id]

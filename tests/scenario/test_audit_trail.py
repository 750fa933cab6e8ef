"""Every action through Slack leaves its audit events; intents are committed before VPS.org is called."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from devkit.simulator import VpsSimulator
from storage.audit import AuditLog
from storage.db import Database
from tests.app_fixtures import ALICE, BOB, OPS, Harness


class PeekingTransport(httpx.BaseTransport):
    """Before each mutating call reaches the simulator, look at the audit table from another connection."""

    def __init__(self, inner: httpx.BaseTransport, peek: Callable[[httpx.Request], None]) -> None:
        self.inner = inner
        self.peek = peek

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method in ("POST", "DELETE"):
            self.peek(request)
        return self.inner.handle_request(request)


def test_intent_is_committed_before_each_api_call_even_when_the_api_fails(
    database_url: str, make_harness: Callable[..., Harness]
) -> None:
    sim = VpsSimulator(completion_delay=0)
    seen: list[tuple[str, list[str]]] = []
    observer: list[AuditLog] = []

    def peek(request: httpx.Request) -> None:
        # A separate connection sees only committed rows.
        seen.append((f"{request.method} {request.url.path}", [r.action for r in observer[0].query(limit=3)]))

    h = make_harness(
        database_url=database_url,
        sim=sim,
        vps_transport=PeekingTransport(sim.transport(), peek),
        SNAPSHOT_APPROVAL_CHANNEL="C0APPROVE",
    )
    observer.append(AuditLog(Database(database_url)))
    sim.faults.fail_next(500, times=3, methods={"POST", "DELETE"})

    h.run("create 12345 doomed")
    h.run("delete 798")
    h.driver.block_action("snapshot_delete_confirm", "798", user_id=ALICE, channel_id=OPS)
    h.settle()
    h.run("restore 801")
    card = next(m for m in h.channel("C0APPROVE") if m.thread_ts is None)
    h.click(card, "Approve", user=BOB)
    h.settle()

    assert [s[0] for s in seen] == [
        "POST /api/v1/snapshots/",
        "DELETE /api/v1/snapshots/798/",
        "POST /api/v1/snapshots/801/restore/",
    ]
    assert seen[0][1][0] == "create.requested"
    assert seen[1][1][0] == "delete.requested"
    assert seen[2][1][0] == "restore.executing"
    # …and each failed call has its outcome row, paired by operation id.
    records = h.audit()
    by_operation: dict[str, list[str]] = {}
    for record in records:
        if record.operation_id:
            by_operation.setdefault(record.operation_id, []).append(f"{record.action}:{record.outcome}")
    assert sorted(sorted(v) for v in by_operation.values()) == [
        ["create.failed:unknown", "create.requested:intent"],
        ["delete.failed:unknown", "delete.requested:intent"],
        ["restore.executing:intent", "restore.needs_check:unknown"],
    ]
    assert h.bot.core.audit.open_intents() == []
    observer[0].db.dispose()


def test_every_action_records_actor_team_channel_and_targets(harness: Harness) -> None:
    harness.run("list 12345")
    harness.run("create 12345 pre-update Before the update")
    harness.run("delete 798", user=BOB)
    harness.driver.block_action("snapshot_delete_confirm", "798", user_id=BOB, channel_id=OPS)
    harness.settle()
    harness.run("create nope bad")
    records = {r.action: r for r in harness.audit()}
    assert set(records) >= {
        "list",
        "create.requested",
        "create.succeeded",
        "delete.requested",
        "delete.succeeded",
        "refused.validation",
    }
    created = records["create.succeeded"]
    assert (created.actor_id, created.actor_name, created.team_id, created.channel_id) == (
        ALICE,
        "alice",
        "T0SNAPBOT",
        OPS,
    )
    assert created.server_id == 12345 and created.snapshot_id is not None
    assert created.details["api_message"].startswith("Snapshot is being created")
    assert "duration_ms" in created.details
    deleted = records["delete.succeeded"]
    assert (deleted.actor_id, deleted.snapshot_id, deleted.server_id) == (BOB, 798, 12345)
    assert harness.bot.core.audit.verify().ok


def test_audit_command_shows_recent_events_newest_first(harness: Harness) -> None:
    harness.run("list")
    harness.run("create 12345 audited-one")
    harness.run("audit server:12345")
    text = harness.last_ephemeral().visible_text
    assert text.index("create.succeeded") < text.index("create.requested")
    assert "server 12345" in text
    harness.run("audit action:create limit:1")
    text = harness.last_ephemeral().visible_text
    assert "create.succeeded" in text and "create.requested" not in text
    assert "Audit — `action:create limit:1`" in text  # the filter as typed: a colon stays a colon
    harness.run("audit user:<@U0ALICE|alice>")
    assert "create.succeeded" in harness.last_ephemeral().visible_text
    response = harness.command("audit colour:blue")
    assert "I don't understand the filter" in response.json()["text"]

"""An in-memory VPS.org client for the unit tier: the methods the use cases call, nothing over the wire.

It keeps the client's contract (typed results from bot.vps.models, `VpsError` subclasses for failures, `clock()`
for deadlines) so a use case cannot tell it from `VpsClient`; every call is recorded in `calls` so a test can
assert what reached "VPS.org". Failures are queued per method with `fail_next`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.vps.client import ServerList, SnapshotList
from bot.vps.errors import NotFound
from bot.vps.models import CreatedSnapshot, RestoreResult, Server, ServerRef, Snapshot

CREATED_AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@dataclass
class FakeVps:
    servers: dict[int, Server] = field(default_factory=dict)
    snapshots: dict[int, Snapshot] = field(default_factory=dict)
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    # Called with each method's name before it answers: lets a test act "while VPS.org is thinking".
    on_call: Callable[[str], None] | None = None
    now: float = 1000.0  # the client's monotonic clock, moved by tests
    _next_id: int = 900

    @classmethod
    def seeded(cls) -> FakeVps:
        """Two servers; server 1 has two completed snapshots (801, 802) and one still in progress (803)."""
        fake = cls()
        fake.add_server(1, "web-1")
        fake.add_server(2, "db-1")
        fake.add_snapshot(801, 1, "before-upgrade")
        fake.add_snapshot(802, 1, "nightly", created_at=CREATED_AT + timedelta(days=1))
        fake.add_snapshot(803, 1, "running", status="in_progress")
        return fake

    def add_server(self, server_id: int, name: str, status: str = "active") -> Server:
        self.servers[server_id] = Server(id=server_id, name=name, status=status)
        return self.servers[server_id]

    def add_snapshot(
        self,
        snapshot_id: int,
        server_id: int,
        name: str,
        *,
        status: str = "completed",
        created_at: datetime | None = CREATED_AT,
    ) -> Snapshot:
        ref = ServerRef(server_id, self.servers[server_id].name)
        snapshot = Snapshot(snapshot_id, ref, name, status, 1024, created_at)
        self.snapshots[snapshot_id] = snapshot
        return snapshot

    def fail_next(self, method: str, error: BaseException) -> None:
        self.failures.setdefault(method, []).append(error)

    def mutating_calls(self) -> list[tuple[str, tuple[object, ...]]]:
        return [call for call in self.calls if call[0] in ("create_snapshot", "delete_snapshot", "restore_snapshot")]

    # ---- the client's interface ----------------------------------------------------------------------------
    def clock(self) -> float:
        return self.now

    def list_servers(self, status: str | None = None, *, deadline: float | None = None) -> ServerList:
        self._enter("list_servers", status)
        return ServerList(s for s in self.servers.values() if status is None or s.status == status)

    def list_snapshots(self, server_id: int | None = None, *, deadline: float | None = None) -> SnapshotList:
        self._enter("list_snapshots", server_id)
        return SnapshotList(s for s in self.snapshots.values() if server_id is None or s.server.id == server_id)

    def create_snapshot(self, server_id: int, name: str, description: str = "") -> CreatedSnapshot:
        self._enter("create_snapshot", server_id, name, description)
        if server_id not in self.servers:
            raise NotFound("server not found", status_code=404)
        self._next_id += 1
        snapshot = self.add_snapshot(self._next_id, server_id, name, status="in_progress")
        return CreatedSnapshot(snapshot, "Snapshot is being created.")

    def delete_snapshot(self, snapshot_id: int) -> None:
        self._enter("delete_snapshot", snapshot_id)
        if self.snapshots.pop(snapshot_id, None) is None:
            raise NotFound("snapshot not found", status_code=404)

    def restore_snapshot(self, snapshot_id: int) -> RestoreResult:
        self._enter("restore_snapshot", snapshot_id)
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None:
            raise NotFound("snapshot not found", status_code=404)
        return RestoreResult(
            status="restoring",
            message="Restore started.",
            snapshot_id=snapshot.id,
            snapshot_name=snapshot.name,
            server_id=snapshot.server.id,
            server_name=snapshot.server.name,
            server_status="restoring",
        )

    def _enter(self, method: str, *args: object) -> None:
        self.calls.append((method, args))
        if self.on_call is not None:
            self.on_call(method)
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)

"""The simulated VPS.org account: servers, snapshots and the requests received, with the helpers tests, the shell
and benchmarks use to arrange and inspect it.

Rules: all state sits behind one re-entrant lock; time-based transitions (a snapshot completing, a restore
finishing) are applied lazily against `clock` whenever state is read (`_advance`), so a fake clock makes them
deterministic and no background thread exists. Seeded with the documented example (server 12345, snapshots 801
and 798) plus a few servers around it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.vps.models import SNAPSHOTS_PER_SERVER

API_PREFIX = "/api/v1/"
DEFAULT_TOKEN = "vps_simulator_token"
FIRST_NEW_SNAPSHOT_ID = 900


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it. The Authorization header itself is never stored."""

    method: str
    path: str  # full path, e.g. "/api/v1/snapshots/801/restore/"
    query: dict[str, str]
    json: Any  # the decoded JSON body, or None (no body or not JSON)
    authorized: bool
    status: int | None = None  # the status answered; None when the connection was dropped
    applied: bool = False  # True when the request changed the simulator's state
    fault: str | None = None  # "fail", "drop", "drop_after_apply", "non_json" when a fault was injected
    # When it arrived, by time.monotonic() (not the simulator's settable clock): latency tests compare it with
    # when the test sent something to the bot.
    received_at: float = 0.0


@dataclass
class ServerRecord:
    id: int
    name: str
    status: str
    extra: dict[str, Any] = field(default_factory=dict)
    restore_done_at: float | None = None  # clock time when a running restore finishes

    def as_json(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "name": self.name,
            "hostname": f"{self.name}.example.net",
            "status": self.status,
            "ip_address": f"203.0.113.{self.id % 250 + 1}",  # TEST-NET-3: never a real address
            "location": "ams1",
            "plan": {"id": 2, "name": "standard-2", "vcpus": 2, "memory_mb": 4096, "disk_gb": 80},
            "os": {"id": 11, "name": "Ubuntu 24.04 LTS"},
            "created_at": "2024-06-01T09:00:00Z",
            "updated_at": "2025-01-15T18:00:00Z",
        }
        data.update(self.extra)
        return data


@dataclass
class SnapshotRecord:
    id: int
    server_id: int
    name: str
    status: str
    size_mb: int | None
    created_at: datetime
    description: str
    complete_at: float | None = None  # clock time when an in-progress snapshot completes


class SimulatedAccount:
    """A VPS.org account in memory: servers, snapshots, recorded requests. All state behind one re-entrant lock."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        completion_delay: float = 5.0,
        restore_delay: float = 10.0,
        seed: bool = True,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = 100,
    ) -> None:
        self._lock = threading.RLock()
        self._token = token
        self.completion_delay = completion_delay
        self.restore_delay = restore_delay
        self._clock = clock
        self.page_size = max(1, page_size)
        self._servers: dict[int, ServerRecord] = {}
        self._snapshots: dict[int, SnapshotRecord] = {}
        self._next_id = FIRST_NEW_SNAPSHOT_ID
        self._requests: list[RecordedRequest] = []
        if seed:
            self._seed()

    @property
    def token(self) -> str:
        with self._lock:
            return self._token

    def _set_token(self, token: str) -> None:
        with self._lock:
            self._token = token

    # --- state helpers (tests, shell, benchmarks)

    def add_server(self, server_id: int, name: str, status: str = "active", **extra: Any) -> None:
        with self._lock:
            self._servers[server_id] = ServerRecord(server_id, name, status, dict(extra))

    def add_snapshot(
        self,
        server_id: int,
        name: str,
        *,
        status: str = "completed",
        size_mb: int | None = 1024,
        created_at: datetime | None = None,
        description: str = "",
        snapshot_id: int | None = None,
    ) -> int:
        """Add a snapshot directly (no limit check); an `in_progress` one waits for `complete_snapshot`."""
        with self._lock:
            if server_id not in self._servers:
                raise ValueError(f"no server {server_id} in the simulator")
            if snapshot_id is None:
                snapshot_id = self._new_id()
            elif snapshot_id in self._snapshots:
                raise ValueError(f"snapshot {snapshot_id} already exists")
            if snapshot_id >= self._next_id:
                self._next_id = snapshot_id + 1
            self._snapshots[snapshot_id] = SnapshotRecord(
                id=snapshot_id,
                server_id=server_id,
                name=name,
                status=status,
                size_mb=None if status == "in_progress" else size_mb,
                created_at=created_at or datetime.now(UTC).replace(microsecond=0),
                description=description,
            )
            return snapshot_id

    def move_snapshot(self, snapshot_id: int, server_id: int) -> None:
        """VPS.org re-homing a snapshot id onto another server (what a restore must never follow blindly)."""
        with self._lock:
            if server_id not in self._servers:
                raise ValueError(f"no server {server_id} in the simulator")
            self._snapshots[snapshot_id].server_id = server_id

    def remove_snapshot(self, snapshot_id: int) -> None:
        """Someone deleting a snapshot outside the bot (the VPS.org panel): no request is recorded."""
        with self._lock:
            self._snapshots.pop(snapshot_id, None)

    def rename_snapshot(self, snapshot_id: int, name: str) -> None:
        with self._lock:
            self._snapshots[snapshot_id].name = name

    def end_snapshot(self, snapshot_id: int, status: str = "error") -> None:
        """A snapshot VPS.org gives up on: it leaves `in_progress` without completing (a status the docs do not
        name, which the bot must read as "not completed")."""
        with self._lock:
            snapshot = self._snapshots[snapshot_id]
            snapshot.status = status
            snapshot.complete_at = None

    def complete_snapshot(self, snapshot_id: int) -> None:
        with self._lock:
            snapshot = self._snapshots[snapshot_id]
            self._complete(snapshot)

    def snapshot_status(self, snapshot_id: int) -> str | None:
        with self._lock:
            self._advance()
            snapshot = self._snapshots.get(snapshot_id)
            return snapshot.status if snapshot else None

    def server_status(self, server_id: int) -> str | None:
        with self._lock:
            self._advance()
            server = self._servers.get(server_id)
            return server.status if server else None

    def set_server_status(self, server_id: int, status: str) -> None:
        with self._lock:
            server = self._servers[server_id]
            server.status = status
            server.restore_done_at = None

    def start_restore(self, server_id: int, seconds: float | None = None) -> None:
        """The server is being restored (as if someone started it in the VPS.org panel): `restoring` until
        `seconds` pass on the clock (the simulator's `restore_delay` by default), then `active` again."""
        with self._lock:
            server = self._servers[server_id]
            server.status = "restoring"
            server.restore_done_at = self._clock() + (self.restore_delay if seconds is None else seconds)

    def snapshot_ids(self, server_id: int | None = None) -> list[int]:
        with self._lock:
            self._advance()
            return sorted(s.id for s in self._snapshots.values() if server_id in (None, s.server_id))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), oldest first."""
        with self._lock:
            return list(self._requests)

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> list[RecordedRequest]:
        """Recorded requests filtered by method and path prefix ("snapshots/" or "/api/v1/snapshots/")."""
        if path_prefix is not None and not path_prefix.startswith("/"):
            path_prefix = API_PREFIX + path_prefix
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        ]

    # --- internals (call with the lock held)

    def _advance(self) -> None:
        """Apply every time-based transition that is due by the clock."""
        now = self._clock()
        for snapshot in self._snapshots.values():
            if snapshot.status == "in_progress" and snapshot.complete_at is not None and snapshot.complete_at <= now:
                self._complete(snapshot)
        for server in self._servers.values():
            if server.restore_done_at is not None and server.restore_done_at <= now:
                server.status = "active"
                server.restore_done_at = None

    def _complete(self, snapshot: SnapshotRecord) -> None:
        snapshot.status = "completed"
        snapshot.complete_at = None
        if snapshot.size_mb is None:
            snapshot.size_mb = 2048 + (snapshot.id * 37) % 4096  # deterministic, plausible

    def _new_id(self) -> int:
        while self._next_id in self._snapshots:
            self._next_id += 1
        new_id = self._next_id
        self._next_id += 1
        return new_id

    def _seed(self) -> None:
        """The documented example (server 12345, snapshots 801 and 798) plus a few servers around it."""

        def at(text: str) -> datetime:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))

        self.add_server(12345, "web-server-01")
        self.add_server(12346, "db-server-01")
        self.add_server(12347, "cache-01")
        self.add_server(12348, "staging-01", status="stopped")
        self.add_server(12349, "legacy-01", status="suspended")
        seeded = [
            (801, 12345, "pre-migration-snapshot", 5120, "2025-01-15T18:30:00Z", "Before major migration"),
            (798, 12345, "weekly-snapshot-2025-01-08", 4856, "2025-01-08T12:00:00Z", "Weekly snapshot"),
            (805, 12346, "db-pre-upgrade", 20480, "2025-01-14T09:15:00Z", "Before PostgreSQL 16 upgrade"),
            (806, 12346, "db-nightly-2025-01-16", 20992, "2025-01-16T02:00:00Z", "Nightly"),
            (807, 12346, "db-nightly-2025-01-17", 21010, "2025-01-17T02:00:00Z", "Nightly"),
        ]
        seeded += [
            (810 + i, 12348, f"staging-build-{i + 1}", 3000 + i * 10, f"2025-01-1{i}T10:00:00Z", "CI build")
            for i in range(SNAPSHOTS_PER_SERVER)
        ]
        for snapshot_id, server_id, name, size, created, description in seeded:
            self.add_snapshot(
                server_id,
                name,
                size_mb=size,
                created_at=at(created),
                description=description,
                snapshot_id=snapshot_id,
            )

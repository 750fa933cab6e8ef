"""Typed results of the VPS.org API. The client turns JSON into these; nothing else parses API JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SNAPSHOTS_PER_SERVER = 5  # documented limit: the API answers 400 for a sixth


@dataclass(frozen=True, slots=True)  # slots: a 50,000-snapshot listing allocates half as much
class ServerRef:
    id: int
    name: str


@dataclass(frozen=True, slots=True)  # slots: a 50,000-snapshot listing allocates half as much
class Snapshot:
    id: int
    server: ServerRef
    name: str
    status: str  # "in_progress", "completed", or anything else the API sends (kept as it came)
    size_mb: int | None
    created_at: datetime | None  # timezone-aware UTC
    description: str = ""

    @property
    def is_completed(self) -> bool:
        return self.status == "completed"

    @property
    def is_in_progress(self) -> bool:
        return self.status == "in_progress"


@dataclass(frozen=True)
class CreatedSnapshot:
    snapshot: Snapshot
    message: str  # the API's own words, e.g. "Snapshot is being created. This may take 3-10 minutes…"


@dataclass(frozen=True, slots=True)  # slots: a 50,000-snapshot listing allocates half as much
class Server:
    id: int
    name: str
    status: str  # "active", "stopped", "suspended", "restoring", or anything else
    hostname: str = ""
    ip_address: str = ""
    location: str = ""


@dataclass(frozen=True)
class RestoreResult:
    status: str
    message: str
    snapshot_id: int
    snapshot_name: str
    server_id: int
    server_name: str
    server_status: str

"""Snapshots grouped by server, as `/snapshot list` shows them (moved out of snapshots.py to keep it small).

Rules: every server of the listing appears (with no snapshots too) unless one is asked for; a server known only
from its snapshots still gets a group; groups by server name, snapshots newest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.vps.models import SNAPSHOTS_PER_SERVER, Server, ServerRef, Snapshot


@dataclass(frozen=True)
class ServerGroup:
    server: ServerRef
    status: str  # the server's status from the servers list ("" when unknown)
    snapshots: list[Snapshot]

    @property
    def quota_used(self) -> int:
        return len(self.snapshots)

    @property
    def at_limit(self) -> bool:
        return len(self.snapshots) >= SNAPSHOTS_PER_SERVER


def group_by_server(servers: list[Server], snapshots: list[Snapshot], *, only: int | None) -> list[ServerGroup]:
    known = {s.id: s for s in servers}
    buckets: dict[int, list[Snapshot]] = {}
    refs: dict[int, ServerRef] = {}
    for server in servers:
        if only is None or server.id == only:
            buckets.setdefault(server.id, [])
            refs[server.id] = ServerRef(server.id, server.name)
    for snapshot in snapshots:
        if only is not None and snapshot.server.id != only:
            continue
        buckets.setdefault(snapshot.server.id, []).append(snapshot)
        if snapshot.server.id not in refs or not refs[snapshot.server.id].name:
            refs[snapshot.server.id] = snapshot.server
    groups = []
    for server_id in sorted(buckets, key=lambda i: (refs[i].name.lower(), i)):
        items = sorted(buckets[server_id], key=lambda s: (s.created_at is not None, s.created_at, s.id), reverse=True)
        status = known[server_id].status if server_id in known else ""
        groups.append(ServerGroup(server=refs[server_id], status=status, snapshots=items))
    return groups

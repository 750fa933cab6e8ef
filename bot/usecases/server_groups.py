"""Snapshots grouped by server, as `/snapshot list` shows them, and one server with its snapshots (for a create or
a schedule that must know how full the server is).

Rules: every server of the listing appears (with no snapshots too) unless one is asked for; a server known only
from its snapshots still gets a group; groups by server name, snapshots newest first. A server VPS.org does not
list is "does not exist", with the command that shows the servers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.usecases.errors import NotFoundError, explain_vps_error
from bot.usecases.wording import Text, command
from bot.vps.client import VpsClient
from bot.vps.errors import VpsError
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


def server_and_snapshots(vps: VpsClient, server_id: int) -> tuple[Server, list[Snapshot]]:
    """The server as `GET /servers/` lists it, and its snapshots (every page)."""
    try:
        servers = vps.list_servers()
        snapshots = vps.list_snapshots(server_id)
    except VpsError as error:
        raise explain_vps_error(error, "checking the server") from error
    match = next((s for s in servers if s.id == server_id), None)
    if match is None:
        raise NotFoundError(Text("Server {} does not exist. {} shows the servers.").format(server_id, command("list")))
    return match, [s for s in snapshots if s.server.id == server_id]

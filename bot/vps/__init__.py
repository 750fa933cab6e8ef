"""The VPS.org API: client, typed results and errors.

The simulator (a fake VPS.org for tests, the local shell and benchmarks) lives in the development tools
(`devkit.simulator`), outside this package and the production wheel.
"""

from bot.vps.client import ServerList, SnapshotList, VpsClient, parse_timestamp
from bot.vps.errors import NotFound, Rejected, Unauthorized, Unavailable, VpsError
from bot.vps.models import SNAPSHOTS_PER_SERVER, CreatedSnapshot, RestoreResult, Server, ServerRef, Snapshot

__all__ = [
    "SNAPSHOTS_PER_SERVER",
    "CreatedSnapshot",
    "NotFound",
    "Rejected",
    "RestoreResult",
    "Server",
    "ServerList",
    "ServerRef",
    "Snapshot",
    "SnapshotList",
    "Unauthorized",
    "Unavailable",
    "VpsClient",
    "VpsError",
    "parse_timestamp",
]

"""Can this server be restored now? What VPS.org says about it (`GET /servers/`), read before a restore is asked
for and again before it is sent.

Rules kept here:
- What the bot assumes about VPS.org's server status values (the docs name active, stopped and suspended, and
  the restore answer says "restoring"): `active` and `stopped` can be restored; `suspended` cannot; `restoring`
  means a restore is already running. Any other value is unknown: it is shown, never guessed at, and does not
  block (VPS.org itself refuses a restore it cannot do, with 400).
- The read is bounded (`SERVER_CHECK_SECONDS`, and the caller's deadline). VPS.org down, slow, an unreadable or
  incomplete list, or a server missing from a partial list: the state "could not be checked", which never
  blocks a restore; the people involved are told.
- Reads only; knows nothing of Slack or storage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.vps.client import VpsClient
from bot.vps.errors import DeadlineExceeded, VpsError

log = logging.getLogger(__name__)

SERVER_CHECK_SECONDS = 8.0  # the request is answered after ack; a slow VPS.org must not hold it much longer
RESTORABLE = frozenset({"active", "stopped"})
SUSPENDED = "suspended"
RESTORING = "restoring"


@dataclass(frozen=True)
class ServerState:
    """What VPS.org said about one server. `status` is None when it could not be checked (`problem` says why)."""

    server_id: int
    status: str | None
    name: str = ""
    problem: str = ""

    @property
    def checked(self) -> bool:
        return self.status is not None

    @property
    def suspended(self) -> bool:
        return self.status == SUSPENDED

    @property
    def restoring(self) -> bool:
        return self.status == RESTORING

    @property
    def unknown_status(self) -> bool:
        return self.status is not None and self.status not in RESTORABLE | {SUSPENDED, RESTORING}


class ServerStates:
    """Reads one server's state from VPS.org's server list, within a bound."""

    def __init__(self, vps: VpsClient, *, seconds: float = SERVER_CHECK_SECONDS) -> None:
        self.vps = vps
        self.seconds = seconds

    def state(self, server_id: int, *, deadline: float | None = None) -> ServerState:
        """The server's state now; never raises for VPS.org's sake (see the module rules)."""
        bound = self.vps.clock() + self.seconds
        if deadline is not None:
            bound = min(bound, deadline)
        try:
            servers = self.vps.list_servers(deadline=bound)
        except DeadlineExceeded:
            return ServerState(server_id, None, problem="VPS.org did not answer in time")
        except VpsError as error:
            log.warning("server check for %s: %s", server_id, error)
            code = f" (HTTP {error.status_code})" if error.status_code else ""
            return ServerState(server_id, None, problem=f"VPS.org's server list could not be read{code}")
        found = next((s for s in servers if s.id == server_id), None)
        if found is None:
            why = "the server is not in VPS.org's server list" if servers.complete else "VPS.org's list was incomplete"
            return ServerState(server_id, None, problem=why)
        return ServerState(server_id, found.status, name=found.name)

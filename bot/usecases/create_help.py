"""What the create form needs before any create: is there room on the server, and which servers to offer.

Rules kept here:
- Both are reads that change nothing, bounded by a total deadline (Slack waits 3 s for a form to open and for a
  select's options); when VPS.org can't say in time, the answer is "don't know" and the create itself checks again.
- Who may create decides who may see the choices: the same permission as the create, refusals audited.
- The server list comes from the workspace's listing cache (bot/usecases/listing_cache.py, the one App Home and
  `/snapshot list` read), so typing in the select does not call VPS.org on every keystroke; a filter is applied to
  the cached list. Typing is charged to SNAPSHOT_READ_LIMIT only when it makes the cache fetch.
- At most `MAX_CHOICES` servers are offered (Block Kit's limit for one options answer); `total` says how many
  matched, so the form can say "type to narrow". A server id typed that VPS.org does not list is offered as typed:
  the raw-id path keeps working when the list is slow, partial or hides the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.usecases.access import Permission
from bot.usecases.context import Actor
from bot.usecases.errors import Refused
from bot.usecases.guard import Guard
from bot.usecases.listing_cache import Key, ListingCache
from bot.usecases.snapshots import quota_refusal
from bot.vps.client import VpsClient
from bot.vps.errors import VpsError
from bot.vps.models import SNAPSHOTS_PER_SERVER, Server

MAX_CHOICES = 100  # Slack accepts at most 100 options in one options answer
MAX_TYPED_ID = 15  # digits: longer is not an id anyone typed on purpose


@dataclass(frozen=True)
class ServerChoices:
    servers: list[Server]  # the matching servers, by name, at most MAX_CHOICES
    total: int  # how many matched in all
    typed_id: int | None = None  # a typed server id that no listed server has: offered as typed
    unavailable: bool = False  # VPS.org did not answer in time: only the typed id (if any) is offered


@dataclass
class CreateHelp:
    vps: VpsClient
    guard: Guard
    limit_per_server: int = SNAPSHOTS_PER_SERVER
    listings: ListingCache = field(default_factory=ListingCache)

    def check_room(self, actor: Actor, server_id: int, *, within: float | None = None) -> str:
        """Raise `QuotaReached` (naming the oldest snapshot) when the server already holds the most VPS.org allows;
        else return the server's name when the listing showed it ("" when not).

        Bounded by `within` seconds; when VPS.org can't say in time nothing is raised (the create checks again),
        so a slow answer never keeps the form from opening."""
        self.guard.require(actor, Permission.CREATE, server_id=server_id)
        try:
            snapshots = self.vps.list_snapshots(server_id, deadline=self._deadline(within))
        except VpsError:
            return ""
        mine = [s for s in snapshots if s.server.id == server_id]
        if len(mine) >= self.limit_per_server:
            raise quota_refusal(mine[0].server, mine, self.limit_per_server)
        if mine and mine[0].server.name:
            return mine[0].server.name
        held = self.listings.peek(_servers_key(actor))  # a server without snapshots: its name if already known
        listed: list[Server] = held.value if held is not None else []
        return next((s.name for s in listed if s.id == server_id), "")

    def server_choices(self, actor: Actor, typed: str, *, within: float | None = None) -> ServerChoices:
        """The servers whose name, hostname or id contains what was typed (all of them for nothing typed)."""
        self.guard.require(actor, Permission.CREATE)
        query = " ".join(typed.split()).casefold()[:100]
        typed_id = int(query) if query.isascii() and query.isdigit() and len(query) <= MAX_TYPED_ID else None
        servers = self._servers(actor, within)
        if servers is None:
            return ServerChoices([], 0, typed_id=typed_id, unavailable=True)
        matching = sorted((s for s in servers if _matches(s, query)), key=lambda s: (s.name.casefold(), s.id))
        if typed_id is not None and any(s.id == typed_id for s in servers):
            typed_id = None
        room = MAX_CHOICES - (1 if typed_id is not None else 0)
        return ServerChoices(matching[:room], len(matching), typed_id=typed_id)

    def _servers(self, actor: Actor, within: float | None) -> list[Server] | None:
        deadline = self._deadline(within)
        try:
            held = self.listings.read(
                _servers_key(actor),
                lambda: self.vps.list_servers(deadline=deadline),
                reader=(actor.team_id or "", actor.user_id),
                within=within,
            )
        except (VpsError, Refused):  # slow, down, or past the reader's limit with nothing cached: "don't know"
            return None
        servers: list[Server] = held.value
        return servers

    def _deadline(self, within: float | None) -> float | None:
        return self.vps.clock() + within if within is not None else None


def _servers_key(actor: Actor) -> Key:
    return (actor.team_id or "", "servers", None)


def _matches(server: Server, query: str) -> bool:
    if not query:
        return True
    return query in server.name.casefold() or query in server.hostname.casefold() or query in str(server.id)

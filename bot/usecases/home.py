"""What the App Home tab shows one person, as plain data: the use-case half of the Home tab.

Rules it keeps:
- Home has no channel, so only the viewer's role is checked (a channel allow-list is about where commands run);
  a viewer who may not list snapshots gets the refusal and nothing else.
- Requests are shown to the person who asked (to cancel) and to approvers who have not voted on them yet.
- The viewer's own recent actions only with the audit-read permission, without reads (the tab itself is a read).
- Schedules (every enabled one, at most MAX_SCHEDULES, the rest counted) go to whoever may list snapshots: the
  permission `/snapshot schedules` needs, without its channel check (Home has no channel).
- "In progress" is the Tracker's operations plus the restores whose safety snapshot is being taken: those are
  read from the request's stored safety step (the step itself runs in its own loop, not in the Tracker table).
- Each part fails on its own: VPS.org down is told in the overview, a database error leaves its part empty.
- Servers and snapshots come from the workspace's listing cache (bot/usecases/listing_cache.py): opening the tab
  again within SNAPSHOT_READ_CACHE_SECONDS asks VPS.org nothing, and the tab says how old its listing is. Past the
  viewer's SNAPSHOT_READ_LIMIT the last listing is shown with its age, or the tab says when to try again.
- Per-server counts are drawn only from a complete listing (`complete`): a server whose snapshots were on pages
  VPS.org did not send is never shown as "0 of 5".
Rendering (wording, Block Kit, permalinks to cards) is bot/slack/home.py's.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.usecases.access import AccessPolicy, Permission
from bot.usecases.approval_safety import taking_safety_snapshot
from bot.usecases.approval_terms import RequestState
from bot.usecases.approvals import ApprovalService, RequestView
from bot.usecases.context import utcnow
from bot.usecases.errors import explain_vps_error
from bot.usecases.listing_cache import Cached, ListingCache
from bot.usecases.read_limit import ReadLimited
from bot.usecases.schedules import ScheduleService, ScheduleView
from bot.usecases.tracking import Operation, Tracker
from bot.usecases.wording import Text
from bot.vps.client import SnapshotList, VpsClient
from bot.vps.errors import VpsError
from bot.vps.models import Server, Snapshot
from storage.audit import Action, AuditLog
from storage.audit import AuditRecord as AuditRecord  # re-exported: the Slack side types with it
from storage.pins import PinRow

log = logging.getLogger(__name__)

RECENT_SNAPSHOTS = 8
RECENT_ACTIONS = 10
MAX_PENDING = 10
MAX_FOLLOWING = 10
MAX_SCHEDULES = 10
MAX_PINNED = 10  # pinned snapshots listed on the tab (`/snapshot list` shows them all)
# Reading actions are noise in "your recent actions": the Home tab itself is a read.
QUIET_ACTIONS = frozenset({Action.LIST, Action.AUDIT_READ})


@dataclass(frozen=True)
class PendingRequest:
    request: RequestView
    yours: bool  # the viewer asked for it (can cancel) — otherwise the viewer can approve or reject it


@dataclass(frozen=True)
class HomeOverview:
    user_id: str
    now: datetime
    refusal: Text | None = None  # set when the viewer may not see snapshots at all
    servers: list[Server] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    recent: list[Snapshot] = field(default_factory=list)
    vps_error: Text | None = None  # VPS.org could not be read: why, in plain words
    complete: bool = True  # the snapshot listing held every snapshot VPS.org counts (else no per-server counts)
    snapshot_total: int | None = None  # VPS.org's count, when the listing was incomplete
    listed_at: datetime | None = None  # when VPS.org was asked (the listing may come from the cache)
    listing_age: float = 0.0  # seconds
    fresh: bool = True  # False: the last listing, shown because the viewer is past SNAPSHOT_READ_LIMIT
    pending: list[PendingRequest] = field(default_factory=list)
    following: list[Operation] = field(default_factory=list)
    # Restores approved and waiting for their safety snapshot (`pre-restore-<id>`).
    safety_steps: list[RequestView] = field(default_factory=list)
    schedules: list[ScheduleView] = field(default_factory=list)
    more_schedules: int = 0  # enabled schedules not shown (past MAX_SCHEDULES)
    actions: list[AuditRecord] = field(default_factory=list)
    # Pins on snapshots VPS.org listed (a pin on one it no longer lists is not shown), by snapshot id.
    pins: dict[int, PinRow] = field(default_factory=dict)
    pinned: list[Snapshot] = field(default_factory=list)  # those snapshots, oldest first, at most MAX_PINNED


class HomeQueries:
    def __init__(
        self,
        *,
        access: AccessPolicy,
        vps: VpsClient,
        audit: AuditLog,
        approvals: ApprovalService,
        tracking: Tracker,
        schedules: ScheduleService | None = None,
        listings: ListingCache | None = None,
        pinned: Callable[[], dict[int, PinRow]] | None = None,
    ) -> None:
        self.pinned = pinned or dict
        self.access = access
        self.vps = vps
        self.audit = audit
        self.approvals = approvals
        self.tracking = tracking
        self.schedules = schedules
        self.listings = listings or ListingCache()

    def overview(self, user_id: str, team_id: str | None = None) -> HomeOverview:
        now = utcnow()
        decision = self.access.check(user_id, Permission.LIST)
        if not decision.allowed:
            return HomeOverview(user_id=user_id, now=now, refusal=decision.reason)
        servers: list[Server] = []
        snapshots: list[Snapshot] = []
        vps_error = None
        listed: Cached[SnapshotList] | None = None
        reader = (team_id or "", user_id)
        try:
            listed = self.listings.read((reader[0], "snapshots", None), self.vps.list_snapshots, reader=reader)
            snapshots = list(listed.value)
            servers = list(self.listings.read((reader[0], "servers", None), self.vps.list_servers, reader=reader).value)
        except ReadLimited as refused:
            vps_error = refused.message
        except VpsError as error:
            vps_error = explain_vps_error(error, "loading servers and snapshots").message
        counts = Counter(s.server.id for s in snapshots)
        known = {s.id for s in servers}
        # A server seen only through its snapshots still belongs in the list.
        for snap in snapshots:
            if snap.server.id not in known:
                known.add(snap.server.id)
                servers.append(Server(id=snap.server.id, name=snap.server.name, status=""))
        servers.sort(key=lambda s: (s.name.lower(), s.id))
        open_requests = self._open_requests()
        schedules = self._schedules()
        recent = sorted(snapshots, key=lambda s: (s.created_at is not None, s.created_at or now, s.id), reverse=True)[
            :RECENT_SNAPSHOTS
        ]
        every_pin = self.pinned() if snapshots else {}
        pins = {s.id: every_pin[s.id] for s in snapshots if s.id in every_pin}
        pinned = sorted((s for s in snapshots if s.id in pins), key=lambda s: (s.created_at or now, s.id))
        return HomeOverview(
            pins=pins,
            pinned=pinned[:MAX_PINNED],
            user_id=user_id,
            now=now,
            servers=servers,
            counts=dict(counts),
            recent=recent,
            vps_error=vps_error,
            complete=listed is None or listed.value.complete,
            snapshot_total=listed.value.total if listed is not None and not listed.value.complete else None,
            listed_at=listed.fetched_at if listed is not None else None,
            listing_age=listed.age if listed is not None else 0.0,
            fresh=listed is None or listed.fresh,
            pending=self._pending(user_id, open_requests),
            following=self._following(),
            safety_steps=[r for r in open_requests if taking_safety_snapshot(r)][:MAX_FOLLOWING],
            schedules=schedules[:MAX_SCHEDULES],
            more_schedules=max(0, len(schedules) - MAX_SCHEDULES),
            actions=self._actions(user_id),
        )

    def _open_requests(self) -> list[RequestView]:
        try:
            return list(self.approvals.open_requests())
        except Exception:
            log.exception("could not read open requests for the Home tab")
            return []

    def _schedules(self) -> list[ScheduleView]:
        if self.schedules is None:
            return []
        try:
            return self.schedules.enabled_views()
        except Exception:
            log.exception("could not read schedules for the Home tab")
            return []

    def _pending(self, user_id: str, open_requests: list[RequestView]) -> list[PendingRequest]:
        requests = [r for r in open_requests if r.state == RequestState.PENDING]
        can_approve = self.access.check(user_id, Permission.APPROVE).allowed
        items: list[PendingRequest] = []
        for req in requests:
            yours = req.requester_id == user_id
            if not (yours or (can_approve and user_id not in req.approvers)):
                continue
            items.append(PendingRequest(req, yours))
            if len(items) >= MAX_PENDING:
                break
        return items

    def _following(self) -> list[Operation]:
        try:
            return list(self.tracking.active(limit=MAX_FOLLOWING))
        except Exception:
            log.exception("could not read tracked operations for the Home tab")
            return []

    def _actions(self, user_id: str) -> list[AuditRecord]:
        if not self.access.check(user_id, Permission.AUDIT_READ).allowed:
            return []
        try:
            records = self.audit.query(actor_id=user_id, limit=60)
        except Exception:
            log.exception("could not read the audit trail for the Home tab")
            return []
        return [r for r in records if r.action not in QUIET_ACTIONS][:RECENT_ACTIONS]

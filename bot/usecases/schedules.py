"""Adding, listing and removing snapshot schedules (`/snapshot schedule`, `schedules`, `unschedule`).

Rules this module keeps:
- Adding or removing a schedule needs the `schedule` permission (operators by default); listing needs `list`.
  Every change, and every refusal, is audited with the Slack user id of who asked.
- Bad input changes nothing and says why (audited as a validation refusal): the `<when>` spelling, a schedule
  running more often than SNAPSHOT_SCHEDULE_MIN_INTERVAL_MINUTES (checked over its next slots, cron included), a
  `keep` that cannot fit next to the server's other snapshots (5 per server on VPS.org).
- Fitting: the server's snapshots that are no schedule's own, plus what the server's other schedules keep, plus
  this one's `keep` must fit in the quota — and with on_full=skip one more, because a new snapshot is taken
  before the oldest is deleted.
- Retention deletes snapshots. While APPROVAL_REQUIRED_FOR includes `delete`, every delete needs a person's
  approval, so schedules (whose deletes would have none) are refused, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.usecases.access import Permission
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import InvalidInput, NotFoundError, Refused
from bot.usecases.guard import Guard
from bot.usecases.retention import Ownership
from bot.usecases.schedule_when import When, parse_when
from bot.usecases.server_groups import server_and_snapshots
from bot.usecases.validation import parse_id
from bot.usecases.wording import Text, code, command, sentence
from bot.vps.client import VpsClient
from bot.vps.models import SNAPSHOTS_PER_SERVER, Snapshot
from storage.audit import Action, AuditLog, Outcome
from storage.schedules import ScheduleRow, Schedules

ON_FULL = ("skip", "rotate")
DELETES_NEED_APPROVAL = Text(
    "Schedules delete their older snapshots on their own, but APPROVAL_REQUIRED_FOR includes {}, so every "
    "delete needs a person's approval. Schedules are off while that is so (ask an admin)."
).format(code("delete"))


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as shown: `next_run` is UTC (None once disabled); the renderer shows it in `zone`."""

    schedule: ScheduleRow
    next_run: datetime | None
    zone: str


@dataclass(frozen=True)
class ScheduleRequest:
    """A validated `/snapshot schedule` (or form) input."""

    server_id: int
    when: When
    keep: int
    on_full: str


class ScheduleService:
    def __init__(
        self,
        *,
        store: Schedules,
        vps: VpsClient,
        audit: AuditLog,
        guard: Guard,
        zone: str,
        min_interval: timedelta,
        deletes_need_approval: bool,
        clock: Callable[[], datetime] = utcnow,
        limit_per_server: int = SNAPSHOTS_PER_SERVER,
    ) -> None:
        self.store = store
        self.vps = vps
        self.audit = audit
        self.guard = guard
        self.zone_name = zone
        self.zone = ZoneInfo(zone)
        self.min_interval = min_interval
        self.deletes_need_approval = deletes_need_approval
        self.clock = clock
        self.limit_per_server = limit_per_server

    # ---- checks without side effects (also for the form's submit) --------------------------------------------
    def validate(
        self, server_id: str | None, when_text: str | None, keep: str | None, on_full: str | None
    ) -> ScheduleRequest:
        sid = parse_id(server_id, "server id")
        when = parse_when(when_text or "")
        count = parse_id(keep, "keep")
        if count > self.limit_per_server:
            raise InvalidInput(
                Text("{} can be at most {}: VPS.org allows {} snapshots per server.").format(
                    code("keep"), self.limit_per_server, self.limit_per_server
                ),
                field="keep",
            )
        mode = (on_full or "skip").strip().lower()
        if mode not in ON_FULL:
            raise InvalidInput(
                Text("{} is {} (the default) or {}.").format(code("on_full"), code("skip"), code("rotate")),
                field="on_full",
            )
        gap = when.min_gap(self.clock(), self.zone, stop_below=self.min_interval)
        if gap < self.min_interval:
            raise InvalidInput(
                Text("{} would run every {}; schedules may run at most every {} ({}).").format(
                    code(when.spec, 80),
                    sentence(_minutes(gap)),
                    sentence(_minutes(self.min_interval)),
                    code("SNAPSHOT_SCHEDULE_MIN_INTERVAL_MINUTES"),
                ),
                field="when",
            )
        return ScheduleRequest(sid, when, count, mode)

    # ---- commands ------------------------------------------------------------------------------------------
    def create(
        self, actor: Actor, server_id: str | None, when_text: str | None, keep: str | None, on_full: str | None
    ) -> ScheduleView:
        try:
            request = self.validate(server_id, when_text, keep, on_full)
        except InvalidInput as error:
            self._refuse_validation(actor, error, error.field)
            raise
        self.guard.require(actor, Permission.SCHEDULE, mutating=True, server_id=request.server_id)
        if self.deletes_need_approval:
            self._refuse_validation(actor, Refused(DELETES_NEED_APPROVAL), "approval", server_id=request.server_id)
            raise Refused(DELETES_NEED_APPROVAL)
        server, snapshots = server_and_snapshots(self.vps, request.server_id)
        server_name = server.name
        try:
            self._check_fits(request, snapshots)
        except InvalidInput as error:
            self._refuse_validation(actor, error, "keep", server_id=request.server_id)
            raise
        now = self.clock()
        row = self.store.add(
            server_id=request.server_id,
            server_name=server_name[:200],
            when_spec=request.when.spec,
            keep=request.keep,
            on_full=request.on_full,
            created_by=actor.user_id,
            channel_id=actor.channel_id,
            created_at=now,
        )
        self.audit.append(
            actor.entry(
                Action.SCHEDULE_CREATED,
                Outcome.OK,
                server_id=row.server_id,
                details={
                    "schedule_id": row.id,
                    "when": row.when_spec,
                    "timezone": self.zone_name,
                    "keep": row.keep,
                    "on_full": row.on_full,
                },
            )
        )
        return self.view(row)

    def overview(self, actor: Actor) -> list[ScheduleView]:
        self.guard.require(actor, Permission.LIST)
        return self.enabled_views()

    def enabled_views(self) -> list[ScheduleView]:
        """Every enabled schedule as shown, for a caller that has checked `list` itself (App Home: no channel)."""
        return [self.view(row) for row in self.store.enabled()]

    def remove(self, actor: Actor, schedule_id: str | None) -> ScheduleView:
        try:
            sid = parse_id(schedule_id, "schedule id")
        except InvalidInput as error:
            self._refuse_validation(actor, error, error.field)
            raise
        self.guard.require(actor, Permission.SCHEDULE, mutating=True)
        row = self.store.get(sid)
        if row is None or not self.store.disable(sid):
            raise NotFoundError(Text("There is no schedule #{}. {} lists them.").format(sid, command("schedules")))
        self.audit.append(
            actor.entry(
                Action.SCHEDULE_REMOVED,
                Outcome.OK,
                server_id=row.server_id,
                details={"schedule_id": row.id, "when": row.when_spec, "created_by": row.created_by},
            )
        )
        return ScheduleView(schedule=row, next_run=None, zone=self.zone_name)

    def view(self, row: ScheduleRow) -> ScheduleView:
        next_run = parse_when(row.when_spec).next_slot(self.clock(), self.zone) if row.enabled else None
        return ScheduleView(schedule=row, next_run=next_run, zone=self.zone_name)

    # ---- helpers -------------------------------------------------------------------------------------------
    def _check_fits(self, request: ScheduleRequest, snapshots: list[Snapshot]) -> None:
        others = self.store.enabled(server_id=request.server_id)
        owned_by_schedules = {
            s.id
            for other in others
            for s in snapshots
            if Ownership(other.id, self.store.own_snapshot_ids(other.id), frozenset()).owns(s)
        }
        unscheduled = len([s for s in snapshots if s.id not in owned_by_schedules])
        reserved = unscheduled + sum(o.keep + (1 if o.on_full == "skip" else 0) for o in others)
        needed = request.keep + (1 if request.on_full == "skip" else 0)
        if reserved + needed <= self.limit_per_server:
            return
        room = self.limit_per_server - reserved
        why = Text("The server has {} no schedule owns").format(sentence(_count(unscheduled, "snapshot")))
        if others:
            why += Text(" and its other schedules reserve {} more").format(reserved - unscheduled)
        left = max(room, 0)
        why += Text(", of the {} VPS.org allows, so {} left. ").format(
            self.limit_per_server, sentence(f"{left} slot is" if left == 1 else f"{left} slots are")
        )
        keep = code(f"keep {request.keep}")
        if request.on_full == "skip":
            need_words = Text(
                "{} with on_full=skip needs {} (the kept ones plus the new one, taken before the oldest is deleted)"
            ).format(keep, needed)
            hint = Text(" Use a smaller {}, or {}, or delete some snapshots first.").format(
                code("keep"), code("on_full=rotate")
            )
        else:
            need_words = Text("{} needs {}").format(keep, needed)
            hint = Text(" Use a smaller {}, or delete some snapshots first.").format(code("keep"))
        raise InvalidInput(why + need_words + Text(".") + hint, field="keep")

    def _refuse_validation(
        self, actor: Actor, error: Exception, field: str | None, *, server_id: int | None = None
    ) -> None:
        self.audit.append(
            actor.entry(
                Action.REFUSED_VALIDATION,
                Outcome.REFUSED,
                server_id=server_id,
                details={"operation": "schedule", "field": field, "error": str(error)[:500]},
            )
        )


def _minutes(gap: timedelta) -> str:
    minutes = int(gap.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return _count(minutes // (24 * 60), "day")
    if minutes % 60 == 0:
        return _count(minutes // 60, "hour")
    return _count(minutes, "minute")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

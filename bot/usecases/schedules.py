"""Adding, listing and removing snapshot schedules (`/snapshot schedule`, `schedules`, `unschedule`).

Rules this module keeps:
- Adding a schedule needs the `schedule` permission (operators by default); listing needs `list`. Changing or
  removing one (or opening its Change form) needs `schedule` AND being its creator, or `schedule.others` (admins):
  an operator may not rewrite or end someone else's backups. Every change, and every refusal, is audited with the
  Slack user id of who asked.
- Bad input changes nothing and says why (audited as a validation refusal): the `<when>` spelling, a schedule
  running more often than SNAPSHOT_SCHEDULE_MIN_INTERVAL_MINUTES (checked over its next slots, cron included), a
  `keep` that cannot fit next to the server's other snapshots (5 per server on VPS.org).
- Fitting: the server's snapshots that are no schedule's own, plus what the server's other schedules keep, plus
  this one's `keep` must fit in the quota — and with on_full=skip one more, because a new snapshot is taken
  before the oldest is deleted.
- Retention deletes snapshots. While APPROVAL_REQUIRED_FOR includes `delete`, every delete needs a person's
  approval: a new schedule, or a change of one, then becomes a `schedule` approval request (the same card flow,
  bot/usecases/schedule_requests.py); the schedule is stored off until approved, a change applies on approval.
  Once approved its automatic deletes need no card each. Without delete approvals a change applies at once.
- A change (`reschedule`) is made in place: the same schedule id, so the snapshots it made stay its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.usecases.access import Permission
from bot.usecases.approval_base import RequestView
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import InvalidInput, NotFoundError, Refused
from bot.usecases.guard import Guard
from bot.usecases.schedule_fit import OnFull, check_fits, count_words
from bot.usecases.schedule_plan import SchedulePlan
from bot.usecases.schedule_requests import AsksForSchedules
from bot.usecases.schedule_when import When, parse_when
from bot.usecases.server_groups import server_and_snapshots
from bot.usecases.validation import parse_id
from bot.usecases.wording import Text, code, command, mention, sentence
from bot.vps.client import VpsClient
from bot.vps.models import SNAPSHOTS_PER_SERVER, Snapshot
from storage.audit import Action, AuditLog, Outcome
from storage.schedules import ScheduleRow, Schedules

ON_FULL = tuple(OnFull)


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as shown: `next_run` is UTC (None once disabled); the renderer shows it in `zone`."""

    schedule: ScheduleRow
    next_run: datetime | None
    zone: str
    # Deletes need approval and this schedule's settings were never approved: its retention deletes nothing.
    deletes_paused: bool = False


@dataclass(frozen=True)
class ScheduleRequest:
    """A validated `/snapshot schedule` (or form) input."""

    server_id: int
    when: When
    keep: int
    on_full: OnFull


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
        approvals: AsksForSchedules | None = None,
        clock: Callable[[], datetime] = utcnow,
        limit_per_server: int = SNAPSHOTS_PER_SERVER,
        reserved_slots: int = 0,
    ) -> None:
        self.reserved_slots = reserved_slots  # the undo slot a schedule must leave free (SNAPSHOT_RESERVE_UNDO_SLOT)
        self.approvals = approvals  # where a schedule goes when deletes need approval
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
    def validate(self, server_id: int, when_text: str | None, keep: str | None, on_full: str | None) -> ScheduleRequest:
        """The settings as typed (`<when>`, `keep`, `on_full`) checked for `server_id` (an id is parsed where it
        comes in: bot/slack/listeners/ids.py)."""
        when = parse_when(when_text or "")
        count = parse_id(keep, "keep")
        if count > self.limit_per_server:
            raise InvalidInput(
                Text("{} can be at most {}: VPS.org allows {} snapshots per server.").format(
                    code("keep"), self.limit_per_server, self.limit_per_server
                ),
                field="keep",
            )
        mode = (on_full or OnFull.SKIP).strip().lower()
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
        return ScheduleRequest(server_id, when, count, OnFull(mode))

    # ---- commands ------------------------------------------------------------------------------------------
    def create(
        self, actor: Actor, server_id: int, when_text: str | None, keep: str | None, on_full: str | None
    ) -> ScheduleView | RequestView:
        """A new schedule; while deletes need approval, a `schedule` request for it instead (the card's to post)."""
        try:
            request = self.validate(server_id, when_text, keep, on_full)
        except InvalidInput as error:
            self._refuse_validation(actor, error, error.field)
            raise
        self.guard.require(actor, Permission.SCHEDULE, mutating=True, server_id=request.server_id)
        server, snapshots = server_and_snapshots(self.vps, request.server_id)
        server_name = server.name
        self._fits_or_refuse(actor, request, snapshots)
        now = self.clock()
        if self.deletes_need_approval:
            plan = self._plan(request, change=False, revision=0)
            return self._approvals().request_schedule(
                actor, server_id=request.server_id, server_name=server_name, plan=plan, schedule_id=None
            )
        row = self.store.add(
            server_id=request.server_id,
            server_name=server_name[:200],
            when_spec=request.when.spec,
            keep=request.keep,
            on_full=request.on_full,
            created_by=actor.user_id,
            channel_id=actor.channel_id,
            created_at=now,
            applied_at=now,
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

    def reschedule(
        self, actor: Actor, schedule_id: int, when_text: str | None, keep: str | None, on_full: str | None
    ) -> ScheduleView | RequestView:
        """New settings for an enabled schedule, in place (same id: its snapshots stay its own). Applied at once, or,
        while deletes need approval, asked for as a `schedule` request (the schedule runs as it was meanwhile)."""
        self.guard.require(actor, Permission.SCHEDULE, mutating=True)
        current = self.store.get(schedule_id)
        if current is not None and current.enabled:
            self._require_owner_or_admin(actor, current, "reschedule")
        if current is not None and current.awaiting_approval:
            raise Refused(
                Text(
                    "Schedule #{} is still waiting for its approval; it can be changed once approved (or cancel its "
                    "request from the card and ask again). Nothing was changed."
                ).format(schedule_id)
            )
        if current is None or not current.enabled:
            raise NotFoundError(
                Text("There is no schedule #{}. {} lists them.").format(schedule_id, command("schedules"))
            )
        try:
            request = self.validate(current.server_id, when_text, keep, on_full)
        except InvalidInput as error:
            self._refuse_validation(actor, error, error.field, operation="reschedule", server_id=current.server_id)
            raise
        _server, snapshots = server_and_snapshots(self.vps, current.server_id)
        self._fits_or_refuse(actor, request, snapshots, changing=current.id)
        before = {"when": current.when_spec, "keep": current.keep, "on_full": current.on_full}
        if self.deletes_need_approval:
            plan = self._plan(request, change=True, revision=current.revision, before=current)
            return self._approvals().request_schedule(
                actor, server_id=current.server_id, server_name=current.server_name, plan=plan, schedule_id=current.id
            )
        changed = self.store.change(
            current.id,
            current.revision,
            when_spec=request.when.spec,
            keep=request.keep,
            on_full=request.on_full,
            applied_at=self.clock(),
            deletes_approved=False,  # settings nobody approved: paused again if delete approvals are turned on
        )
        if changed is None:
            raise Refused(
                Text("Schedule #{} was changed or removed a moment ago; nothing was changed. {} shows it.").format(
                    schedule_id, command("schedules")
                )
            )
        after = {"when": changed.when_spec, "keep": changed.keep, "on_full": changed.on_full}
        self.audit.append(
            actor.entry(
                Action.SCHEDULE_CHANGED,
                Outcome.OK,
                server_id=changed.server_id,
                details={"schedule_id": changed.id, "timezone": self.zone_name, "before": before, "after": after},
            )
        )
        return self.view(changed)

    def overview(self, actor: Actor) -> list[ScheduleView]:
        self.guard.require(actor, Permission.LIST)
        return [self.view(row) for row in self.store.listed()]

    def enabled_views(self) -> list[ScheduleView]:
        """Every enabled schedule as shown, for a caller that has checked `list` itself (App Home: no channel)."""
        return [self.view(row) for row in self.store.enabled()]

    def remove(self, actor: Actor, schedule_id: int) -> ScheduleView:
        self.guard.require(actor, Permission.SCHEDULE, mutating=True)
        row = self.store.get(schedule_id)
        if row is not None and row.enabled:
            self._require_owner_or_admin(actor, row, "unschedule")
        if row is None or not self.store.disable(schedule_id):
            raise NotFoundError(
                Text("There is no schedule #{}. {} lists them.").format(schedule_id, command("schedules"))
            )
        self.audit.append(
            actor.entry(
                Action.SCHEDULE_REMOVED,
                Outcome.OK,
                server_id=row.server_id,
                details={"schedule_id": row.id, "when": row.when_spec, "created_by": row.created_by},
            )
        )
        return ScheduleView(schedule=row, next_run=None, zone=self.zone_name)

    def for_change(self, actor: Actor, schedule_id: int) -> ScheduleView:
        """An enabled schedule, for the Change form (needs the `schedule` permission, as changing it does)."""
        self.guard.require(actor, Permission.SCHEDULE)
        row = self.store.get(schedule_id)
        if row is None or not row.enabled:
            raise NotFoundError(
                Text("There is no schedule #{}. {} lists them.").format(schedule_id, command("schedules"))
            )
        self._require_owner_or_admin(actor, row, "reschedule")
        return self.view(row)

    def view(self, row: ScheduleRow) -> ScheduleView:
        next_run = parse_when(row.when_spec).next_slot(self.clock(), self.zone) if row.enabled else None
        paused = self.deletes_need_approval and row.enabled and not row.deletes_approved
        return ScheduleView(schedule=row, next_run=next_run, zone=self.zone_name, deletes_paused=paused)

    # ---- helpers -------------------------------------------------------------------------------------------
    def _require_owner_or_admin(self, actor: Actor, row: ScheduleRow, operation: str) -> None:
        """Its creator may change or remove a schedule; anyone else needs `schedule.others` (admins). A refusal is
        audited as a permission refusal naming the schedule and its creator."""
        if actor.user_id == row.created_by:
            return
        decision = self.guard.access.check(actor.user_id, Permission.SCHEDULE_OTHERS)
        if decision.allowed:
            return
        self.audit.append(
            actor.entry(
                Action.REFUSED_PERMISSION,
                Outcome.REFUSED,
                server_id=row.server_id,
                details={
                    "permission": str(Permission.SCHEDULE_OTHERS),
                    "operation": operation,
                    "schedule_id": row.id,
                    "created_by": row.created_by,
                    "required_role": "admin",
                    "resolution_error": decision.error,
                },
            )
        )
        raise Refused(
            Text(
                "Schedule #{} was made by {}: only they or an admin can change or remove it. Nothing was changed."
            ).format(row.id, mention(row.created_by))
        )

    def _fits_or_refuse(
        self, actor: Actor, request: ScheduleRequest, snapshots: list[Snapshot], *, changing: int | None = None
    ) -> None:
        try:
            check_fits(
                self.store,
                snapshots,
                server_id=request.server_id,
                keep=request.keep,
                on_full=request.on_full,
                limit=self.limit_per_server,
                changing=changing,
                reserved=self.reserved_slots,
            )
        except InvalidInput as error:
            operation = "reschedule" if changing is not None else "schedule"
            self._refuse_validation(actor, error, "keep", server_id=request.server_id, operation=operation)
            raise

    def _plan(
        self, request: ScheduleRequest, *, change: bool, revision: int, before: ScheduleRow | None = None
    ) -> SchedulePlan:
        return SchedulePlan(
            when=request.when.spec,
            timezone=self.zone_name,
            keep=request.keep,
            on_full=request.on_full,
            next_run=request.when.next_slot(self.clock(), self.zone),
            change=change,
            revision=revision,
            before_when=before.when_spec if before else "",
            before_keep=before.keep if before else 0,
            before_on_full=before.on_full if before else "",
        )

    def _approvals(self) -> AsksForSchedules:
        if self.approvals is None:  # wiring always gives one; a bare service in a test refuses rather than guess
            raise Refused(Text("Deletes need approval here, and approvals are not set up; nothing was scheduled."))
        return self.approvals

    def _refuse_validation(
        self,
        actor: Actor,
        error: Exception,
        field: str | None,
        *,
        server_id: int | None = None,
        operation: str = "schedule",
    ) -> None:
        self.audit.append(
            actor.entry(
                Action.REFUSED_VALIDATION,
                Outcome.REFUSED,
                server_id=server_id,
                details={"operation": operation, "field": field, "error": str(error)[:500]},
            )
        )


def _minutes(gap: timedelta) -> str:
    minutes = int(gap.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return count_words(minutes // (24 * 60), "day")
    if minutes % 60 == 0:
        return count_words(minutes // 60, "hour")
    return count_words(minutes, "minute")

"""Running schedules: on each tick, take a snapshot for every schedule whose slot is due, then apply retention.

Rules this module keeps:
- Exactly one snapshot per (schedule, slot), across replicas and restarts: a slot is run only by whoever inserted
  its claim (storage.schedules: UNIQUE (schedule_id, slot_time)); everyone else does nothing.
- Missed slots (the bot was down): only the newest due slot is claimed, so a late start runs one catch-up, never a
  burst. A schedule never runs a slot from before it was created.
- A run acts as the system on behalf of the schedule's creator: actor `system`, named `schedule #<id>`, with
  `schedule_id`, `on_behalf_of` and `slot` in the details of every audit row (create and delete rows included),
  through the normal audited create and delete paths (intent row, the call once, outcome row).
- Name: `auto-<schedule id>-<UTC yyyymmdd-hhmm of the slot>`.
- A full server: on_full=rotate deletes the schedule's own oldest deletable snapshot first; on_full=skip (or
  nothing of its own to rotate) skips the slot, audited, and reported.
- Retention runs once per slot (a compare-and-set on the slot's state), after its snapshot is `completed`, from
  one filtered listing of the schedule's server (the account-wide listing grows with the account).
- The snapshot id is written to the slot only after VPS.org accepted the create. A crash in between leaves a
  snapshot that is no claim's, which retention then never deletes: the safe side.
- While APPROVAL_REQUIRED_FOR includes `delete`, a schedule whose settings nobody approved (made or changed while
  it was off) deletes nothing: no rotation (the slot is skipped) and no retention (reported). One approved through
  a `schedule` request (`deletes_approved`) deletes without a card each: that approval covered them.
- The undo slot (SNAPSHOT_RESERVE_UNDO_SLOT, `reserved_slots`): a run never takes a server's last free slot, so
  a restore's safety snapshot always fits; on that slot it rotates (on_full=rotate) or skips, as on a full server.
  A schedule that no longer fits beside everything else keeps running and says so in its result and event.
- A delete by retention or rotation leaves what a manual delete leaves (issue 29 §7): the pending requests on the
  deleted snapshot closed as `stale` and, after retention (a slot is free), the server's "Server full" restore cards
  re-checked, through the same ApprovalService calls (`AfterDelete`); the events carry them for the announcer.
  Rotation redraws nothing: its slot is taken again by the slot's snapshot at once.
- Only the injected clock is read. Nothing here knows Slack: `run_due()` returns `ScheduleEvent`s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.usecases.approval_base import DecisionResult, RequestView
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import QuotaReached, UserFacingError
from bot.usecases.retention import Deletion, Ownership, delete_all, name_prefix, rotation_victim, surplus
from bot.usecases.schedule_fit import OnFull, misfit_summary
from bot.usecases.schedule_when import parse_when
from bot.usecases.snapshots import SnapshotService
from bot.usecases.tracking import Tracker
from bot.vps.client import SnapshotList, VpsClient
from bot.vps.errors import VpsError
from bot.vps.models import SNAPSHOTS_PER_SERVER, Snapshot
from storage.audit import Action, AuditLog, Outcome
from storage.schedules import ScheduleRow, Schedules, SlotRow, SlotState

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=24)  # a snapshot not completed by then: the slot's retention is abandoned


class RunKind(StrEnum):
    STARTED = "started"  # the snapshot was asked for (tracking follows it)
    SKIPPED = "skipped"  # the server was full
    FAILED = "failed"  # the create failed or the snapshot never completed
    RETAINED = "retained"  # retention ran after the snapshot completed
    RETENTION_FAILED = "retention_failed"  # some older snapshot could not be deleted


@dataclass(frozen=True)
class ScheduleEvent:
    kind: RunKind
    schedule: ScheduleRow
    slot_time: datetime
    snapshot_name: str
    message: str = ""  # plain words (may quote VPS.org): the renderer escapes it
    deleted: tuple[str, ...] = field(default_factory=tuple)  # names deleted by retention or rotation
    misfit: str = ""  # plain words: the schedule no longer fits on its server (it keeps running)
    closed: tuple[DecisionResult, ...] = ()  # pending requests on a deleted snapshot, closed as `stale`
    redrawn: tuple[RequestView, ...] = ()  # restores whose "Server full" offer changed: a slot is free


class AfterDelete(Protocol):
    """What a manual delete does on the approval side after it (ApprovalService), done for a schedule's too."""

    def close_for_deleted(self, actor: Actor, snapshot_id: int) -> list[DecisionResult]: ...

    def refresh_offers_on_server(self, server_id: int) -> list[RequestView]: ...


@dataclass(frozen=True)
class ScheduleHealth:
    """What operators alert on ("backups stopped"): when the schedule last succeeded, against its rhythm."""

    schedule_id: int
    last_success: datetime  # the newest completed snapshot's slot; none yet: when the settings took effect
    longest_gap: timedelta  # the longest time between two consecutive slots (a weekday schedule: the weekend)


GAP_SAMPLE = 64  # slots looked at for the longest gap: covers a week of hourly slots and any monthly pattern's month


def snapshot_name(schedule_id: int, slot: datetime) -> str:
    return f"{name_prefix(schedule_id)}{slot:%Y%m%d-%H%M}"


class ScheduleRunner:
    def __init__(
        self,
        *,
        store: Schedules,
        snapshots: SnapshotService,
        vps: VpsClient,
        audit: AuditLog,
        tracking: Tracker,
        zone: str,
        owner: str,
        deletes_need_approval: bool = False,
        clock: Callable[[], datetime] = utcnow,
        limit_per_server: int = SNAPSHOTS_PER_SERVER,
        reserved_slots: int = 0,
        after_delete: AfterDelete | None = None,
    ) -> None:
        self.reserved_slots = reserved_slots
        self.after_delete = after_delete
        self.deletes_need_approval = deletes_need_approval
        self.store = store
        self.snapshots = snapshots
        self.vps = vps
        self.audit = audit
        self.tracking = tracking
        self.zone = ZoneInfo(zone)
        self.owner = owner
        self.clock = clock
        self.limit_per_server = limit_per_server

    def run_due(self) -> list[ScheduleEvent]:
        """One round: every due slot run (by whoever claims it), then retention for completed snapshots."""
        events: list[ScheduleEvent] = []
        for schedule in self.store.enabled():
            try:
                event = self._run_if_due(schedule)
            except Exception:  # one schedule's bug must not stop the others
                log.exception("schedule #%s failed to run", schedule.id)
                continue
            if event is not None:
                events.append(event)
        try:
            events.extend(self._retain_completed())
        except Exception:
            log.exception("schedule retention failed")
        return events

    def health(self) -> list[ScheduleHealth]:
        """One `ScheduleHealth` per enabled schedule (read from the database, so every replica reports the same)."""
        now = self.clock()
        successes = self.store.last_successes()
        found: list[ScheduleHealth] = []
        for schedule in self.store.enabled():
            took_effect = max(t for t in (schedule.created_at, schedule.applied_at) if t is not None)
            succeeded = successes.get(schedule.id)
            try:
                gap = longest_gap(schedule.when_spec, now, self.zone)
            except Exception:  # a spec this version cannot read is reported by run_due; no gauge for it
                continue
            found.append(ScheduleHealth(schedule.id, max(succeeded or took_effect, took_effect), gap))
        return found

    # ---- one slot --------------------------------------------------------------------------------------------
    def _run_if_due(self, schedule: ScheduleRow) -> ScheduleEvent | None:
        now = self.clock()
        claimed = self.store.latest_slot_time(schedule.id)
        # No slot from before the schedule was made, nor before its current settings took effect (an approval, a
        # reschedule), nor one already claimed.
        not_before = max(t for t in (schedule.created_at, schedule.applied_at, claimed) if t is not None)
        slot = parse_when(schedule.when_spec).latest_slot(now, self.zone, not_before=not_before)
        if slot is None:
            return None
        claim = self.store.claim(schedule.id, slot, self.owner, now)
        if claim is None:  # another replica (or this one before a restart) has it
            return None
        return self._run(schedule, claim)

    def _run(self, schedule: ScheduleRow, claim: SlotRow) -> ScheduleEvent:
        name = snapshot_name(schedule.id, claim.slot_time)
        actor = _actor(schedule)
        details = _details(schedule, claim)
        try:
            existing = [s for s in self.vps.list_snapshots(schedule.server_id) if s.server.id == schedule.server_id]
        except VpsError as error:
            return self._fail(schedule, claim, name, f"VPS.org could not list the server's snapshots: {error}")
        deleted: tuple[str, ...] = ()
        misfit = self._misfit(schedule, existing)
        full = (
            "the server is full"
            if len(existing) >= self.limit_per_server
            else "the server's last free slot is kept for a restore's safety snapshot (SNAPSHOT_RESERVE_UNDO_SLOT)"
        )
        closed: tuple[DecisionResult, ...] = ()
        if len(existing) >= self.limit_per_server - self.reserved_slots:
            rotate = schedule.on_full == OnFull.ROTATE and not self._deletes_paused(schedule)
            victim = rotation_victim(existing, self._ownership(schedule)) if rotate else None
            if victim is None:
                why = (
                    f"{full} (on_full=skip)"
                    if schedule.on_full != OnFull.ROTATE
                    else f"{full} and its deletes are paused (APPROVAL_REQUIRED_FOR includes delete and "
                    "this schedule was never approved: change it with reschedule to ask for approval), so nothing "
                    "is rotated"
                    if self._deletes_paused(schedule)
                    else f"{full} and none of this schedule's own snapshots can be rotated"
                )
                return self._skip(schedule, claim, name, why, len(existing), misfit)
            outcome = delete_all(self.snapshots, actor, [victim], {**details, "reason": "rotate"})[0]
            if outcome.error:
                return self._fail(schedule, claim, name, f"rotating out {victim.name} failed: {outcome.error}")
            deleted = (victim.name,)
            closed = self._close_requests(actor, [outcome])
        return replace(self._create_slot(schedule, claim, name, deleted, misfit), closed=closed)

    def _create_slot(
        self, schedule: ScheduleRow, claim: SlotRow, name: str, deleted: tuple[str, ...], misfit: str
    ) -> ScheduleEvent:
        actor = _actor(schedule)
        details = _details(schedule, claim)
        try:
            result = self.snapshots.create_checked(
                actor, schedule.server_id, name, f"schedule #{schedule.id}", scheduled=details
            )
        except QuotaReached:
            return self._skip(schedule, claim, name, "the server filled up just before the snapshot", None, misfit)
        except UserFacingError as error:  # create.failed is already audited by the create path
            return self._fail(schedule, claim, name, str(error), audited=True)
        self.store.advance(
            claim.id, SlotState.CLAIMED, SlotState.CREATED, snapshot_id=result.snapshot.id, snapshot_name=name
        )
        self.store.record_result(schedule.id, _with_misfit(f"started {name}", misfit), self.clock())
        # No message to update: tracking tells the notification channel (else the schedule's) when it completes.
        self.tracking.track_create(actor, result, message_channel=None, message_ts=None)
        return ScheduleEvent(RunKind.STARTED, schedule, claim.slot_time, name, deleted=deleted, misfit=misfit)

    def _skip(
        self, schedule: ScheduleRow, claim: SlotRow, name: str, why: str, count: int | None, misfit: str = ""
    ) -> ScheduleEvent:
        self.store.advance(claim.id, SlotState.CLAIMED, SlotState.SKIPPED, message=why)
        self.audit.append(
            _actor(schedule).entry(
                Action.SCHEDULE_SKIPPED,
                Outcome.INFO,
                server_id=schedule.server_id,
                details={**_details(schedule, claim), "name": name, "reason": why, "count": count},
            )
        )
        self.store.record_result(schedule.id, _with_misfit(f"skipped {name}: {why}", misfit), self.clock())
        return ScheduleEvent(RunKind.SKIPPED, schedule, claim.slot_time, name, why, misfit=misfit)

    def _fail(
        self, schedule: ScheduleRow, claim: SlotRow, name: str, why: str, *, audited: bool = False, seen: str = ""
    ) -> ScheduleEvent:
        self.store.advance(claim.id, seen or SlotState.CLAIMED, SlotState.FAILED, message=why[:1000])
        if not audited:
            self.audit.append(
                _actor(schedule).entry(
                    Action.SCHEDULE_FAILED,
                    Outcome.FAILED,
                    server_id=schedule.server_id,
                    details={**_details(schedule, claim), "name": name, "error": why[:500]},
                )
            )
        self.store.record_result(schedule.id, f"failed {name}: {why}", self.clock())
        return ScheduleEvent(RunKind.FAILED, schedule, claim.slot_time, name, why)

    # ---- retention ---------------------------------------------------------------------------------------------
    def _retain_completed(self) -> list[ScheduleEvent]:
        waiting = self.store.in_state(SlotState.CREATED)
        if not waiting:
            return []
        # One filtered listing per server with a slot waiting, never the whole account's (which grows with it).
        listings: dict[int, SnapshotList] = {}
        events: list[ScheduleEvent] = []
        now = self.clock()
        for slot in waiting:
            schedule = self.store.get(slot.schedule_id)
            if schedule is None:
                continue
            if schedule.server_id not in listings:
                listings[schedule.server_id] = self.vps.list_snapshots(schedule.server_id)
            listed = listings[schedule.server_id]
            complete = listed.complete
            snapshot = next((s for s in listed if s.id == slot.snapshot_id), None)
            if snapshot is not None and snapshot.is_completed:
                if not self.store.advance(slot.id, SlotState.CREATED, SlotState.RETAINING):
                    continue  # another replica is on it
                events.append(self._retain(schedule, slot, list(listed)))
            elif (snapshot is None and complete) or now - slot.claimed_at > GIVE_UP_AFTER:
                why = "the snapshot vanished before it completed" if snapshot is None else "it never completed"
                events.append(self._fail(schedule, slot, slot.snapshot_name, why, seen=SlotState.CREATED))
        return events

    def _retain(self, schedule: ScheduleRow, slot: SlotRow, listed: list[Snapshot]) -> ScheduleEvent:
        if not schedule.enabled:  # unscheduled meanwhile: it deletes nothing more
            self.store.advance(slot.id, SlotState.RETAINING, SlotState.KEPT, message="unscheduled")
            return ScheduleEvent(RunKind.RETAINED, schedule, slot.slot_time, slot.snapshot_name)
        on_server = [s for s in listed if s.server.id == schedule.server_id]
        victims = surplus(on_server, self._ownership(schedule), schedule.keep)
        misfit = self._misfit(schedule, on_server)  # kept in the result, which the list and App Home show
        if victims and self._deletes_paused(schedule):
            why = (
                "older snapshots were not deleted: deletes paused (APPROVAL_REQUIRED_FOR includes delete and this "
                "schedule was never approved) — change it with reschedule to ask for approval"
            )
            self.store.advance(slot.id, SlotState.RETAINING, SlotState.KEPT, message=why)
            self.store.record_result(
                schedule.id, _with_misfit(f"completed {slot.snapshot_name}; {why}", misfit), self.clock()
            )
            return ScheduleEvent(RunKind.RETENTION_FAILED, schedule, slot.slot_time, slot.snapshot_name, why)
        actor = _actor(schedule)
        outcomes = delete_all(self.snapshots, actor, victims, {**_details(schedule, slot), "reason": "keep"})
        deleted = tuple(o.snapshot.name for o in outcomes if not o.error)
        closed = self._close_requests(actor, outcomes)
        redrawn = self._redraw_full_cards(schedule.server_id) if deleted else ()
        errors = [f"{o.snapshot.name}: {o.error}" for o in outcomes if o.error]
        self.store.advance(slot.id, SlotState.RETAINING, SlotState.KEPT, message="; ".join(errors)[:1000])
        result = f"completed {slot.snapshot_name}" + (f", deleted {len(deleted)} older" if deleted else "")
        self.store.record_result(schedule.id, _with_misfit(result, misfit), self.clock())
        if errors:
            return ScheduleEvent(
                RunKind.RETENTION_FAILED,
                schedule,
                slot.slot_time,
                slot.snapshot_name,
                "; ".join(errors),
                deleted,
                closed=closed,
                redrawn=redrawn,
            )
        return ScheduleEvent(
            RunKind.RETAINED,
            schedule,
            slot.slot_time,
            slot.snapshot_name,
            deleted=deleted,
            closed=closed,
            redrawn=redrawn,
        )

    def _close_requests(self, actor: Actor, outcomes: list[Deletion]) -> tuple[DecisionResult, ...]:
        """The pending requests on each snapshot deleted, closed as a manual delete closes them (never raises)."""
        if self.after_delete is None:
            return ()
        after = self.after_delete
        return tuple(c for o in outcomes if not o.error for c in after.close_for_deleted(actor, o.snapshot.id))

    def _redraw_full_cards(self, server_id: int) -> tuple[RequestView, ...]:
        """A slot is free: the server's "Server full" restore cards re-checked, as after a manual delete."""
        return tuple(self.after_delete.refresh_offers_on_server(server_id)) if self.after_delete else ()

    def _misfit(self, schedule: ScheduleRow, on_server: list[Snapshot]) -> str:
        return misfit_summary(
            self.store,
            on_server,
            schedule.id,
            server_id=schedule.server_id,
            keep=schedule.keep,
            on_full=schedule.on_full,
            limit=self.limit_per_server,
            reserved=self.reserved_slots,
        )

    def _deletes_paused(self, schedule: ScheduleRow) -> bool:
        """Deletes need approval and nobody approved this schedule's settings: it deletes nothing (an approved one
        deletes without a card each: that approval covered its automatic deletes)."""
        return self.deletes_need_approval and not schedule.deletes_approved

    def _ownership(self, schedule: ScheduleRow) -> Ownership:
        return Ownership(
            schedule_id=schedule.id,
            claimed_ids=self.store.own_snapshot_ids(schedule.id),
            protected_ids=self.store.snapshots_in_open_requests() | self.snapshots.pinned_ids(),
        )


def _with_misfit(result: str, misfit: str) -> str:
    """The misfit first: the list shortens long results, and that note must survive it."""
    return f"{misfit[:1].upper()}{misfit[1:]}. {result}" if misfit else result


def _actor(schedule: ScheduleRow) -> Actor:
    """The system, acting for the schedule (the creator is in every row's details as `on_behalf_of`)."""
    return Actor(user_id="system", name=f"schedule #{schedule.id}", channel_id=schedule.channel_id)


def _details(schedule: ScheduleRow, slot: SlotRow) -> dict[str, object]:
    return {
        "schedule_id": schedule.id,
        "on_behalf_of": schedule.created_by,
        "slot": slot.slot_time.strftime("%Y-%m-%dT%H:%MZ"),
    }


def longest_gap(when_spec: str, after: datetime, zone: ZoneInfo) -> timedelta:
    """The longest time between consecutive slots among the next GAP_SAMPLE."""
    when = parse_when(when_spec)
    if when.every is not None:
        return when.every
    slots = when.slots_after(after, zone)
    previous, longest = next(slots), timedelta(0)
    for _ in range(GAP_SAMPLE):
        current = next(slots)
        longest, previous = max(longest, current - previous), current
    return longest

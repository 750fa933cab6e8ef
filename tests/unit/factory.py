"""The one place the unit tier builds use cases: change a constructor in bot/usecases, update it here only.

`build_core` wires SnapshotService, ApprovalService and Recovery the way bot.runtime does, but with the fakes at
their ports: the in-memory FakeVps instead of the VPS.org client, a settable clock, and a real AuditLog on the
database it is given (a temporary SQLite file in the unit tier's fixtures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.usecases.access import AccessPolicy
from bot.usecases.approvals import ApprovalService
from bot.usecases.context import Actor
from bot.usecases.guard import Guard, count_mutations
from bot.usecases.ratelimit import RateLimiter
from bot.usecases.recovery import Recovery
from bot.usecases.schedule_runner import ScheduleRunner
from bot.usecases.schedules import ScheduleService
from bot.usecases.snapshots import SnapshotService
from bot.usecases.tracking import Tracker
from storage.audit import AuditLog
from storage.db import Database
from storage.schedules import Schedules
from tests.unit.fakes import FakeVps

ALICE = Actor("U0ALICE", "alice", "T0TEAM", "C0OPS")
BOB = Actor("U0BOB", "bob", "T0TEAM", "C0OPS")
CAROL = Actor("U0CAROL", "carol", "T0TEAM", "C0OPS")


@dataclass
class Clock:
    """A wall clock that moves only when a test says so."""

    now: datetime = field(default_factory=lambda: datetime(2026, 2, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Core:
    db: Database
    audit: AuditLog
    vps: FakeVps
    clock: Clock
    snapshots: SnapshotService
    approvals: ApprovalService
    recovery: Recovery

    def actions(self) -> list[str]:
        """Every audit action so far, oldest first."""
        return [record.action for record in reversed(self.audit.query(limit=1000))]


def build_core(
    db: Database,
    vps: FakeVps | None = None,
    *,
    access: AccessPolicy | None = None,
    approvals_required: int = 1,
    required_for: frozenset[str] = frozenset({"restore"}),
    ttl: timedelta = timedelta(minutes=60),
    stale_after: timedelta = timedelta(minutes=5),
    claim_ttl: timedelta = timedelta(seconds=90),
) -> Core:
    vps = vps or FakeVps.seeded()
    clock = Clock()
    audit = AuditLog(db, clock=clock)
    limiter = RateLimiter(None, count_mutations(audit), clock=clock)
    guard = Guard(access or AccessPolicy(), limiter, audit)
    snapshots = SnapshotService(vps=vps, audit=audit, guard=guard, clock=clock)  # type: ignore[arg-type]
    approvals = ApprovalService(
        db=db,
        audit=audit,
        guard=guard,
        snapshots=snapshots,
        vps=vps,  # type: ignore[arg-type]
        ttl=ttl,
        approvals_required=approvals_required,
        required_for=required_for,
        stale_after=stale_after,
        clock=clock,
        claim_ttl=claim_ttl,
    )
    recovery = Recovery(db=db, audit=audit, stale_after=stale_after, clock=clock)
    return Core(db, audit, vps, clock, snapshots, approvals, recovery)


@dataclass
class ScheduleParts:
    """The schedule use cases wired the way bot.wiring does, on a unit Core (its fake VPS.org, its clock)."""

    service: ScheduleService
    runner: ScheduleRunner
    tracking: Tracker
    store: Schedules


def build_schedules(
    core: Core,
    *,
    zone: str = "UTC",
    min_interval: timedelta = timedelta(minutes=60),
    deletes_need_approval: bool = False,
    owner: str = "replica-a",
    db: Database | None = None,
) -> ScheduleParts:
    """`db` (another connection to the same database) stands for a second replica or a restarted process."""
    database = db or core.db
    audit = core.audit if db is None else AuditLog(database, clock=core.clock)
    snapshots = core.snapshots
    if db is not None:
        limiter = RateLimiter(None, count_mutations(audit), clock=core.clock)
        guard = Guard(AccessPolicy(), limiter, audit)
        snapshots = SnapshotService(vps=core.vps, audit=audit, guard=guard, clock=core.clock)  # type: ignore[arg-type]
    store = Schedules(database)
    tracking = Tracker(db=database, audit=audit, vps=core.vps, clock=core.clock, owner=owner)  # type: ignore[arg-type]
    service = ScheduleService(
        store=store,
        vps=core.vps,  # type: ignore[arg-type]
        audit=audit,
        guard=snapshots.guard,
        zone=zone,
        min_interval=min_interval,
        deletes_need_approval=deletes_need_approval,
        clock=core.clock,
    )
    runner = ScheduleRunner(
        store=store,
        snapshots=snapshots,
        vps=core.vps,  # type: ignore[arg-type]
        audit=audit,
        tracking=tracking,
        zone=zone,
        owner=owner,
        deletes_need_approval=deletes_need_approval,
        clock=core.clock,
    )
    return ScheduleParts(service, runner, tracking, store)

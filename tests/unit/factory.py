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
from bot.usecases.snapshots import SnapshotService
from storage.audit import AuditLog
from storage.db import Database
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

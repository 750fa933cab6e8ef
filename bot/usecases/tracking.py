"""Following long VPS.org operations to their end: snapshot creation (3–10 min) and server restores (5–15 min).

Rules that shape this module:
- A poll's cost does not grow with the account: one `list_snapshots(server_id)` (a filtered listing, one page for
  the 5 snapshots a server may hold) per server with a tracked create, and at most one `list_servers()` for every
  tracked restore, however many snapshots the account holds. There is no per-snapshot GET. A server's listing
  that fails or comes back incomplete proves nothing about its snapshots' absence; the others still count.
- Tracked operations live in the database, so a restart resumes them. With several replicas each operation is
  leased to one of them at a time (`lease_owner` until `lease_expires_at`), claimed with
  `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's write transaction is already exclusive); a dead
  replica's lease expires and another takes over.
- An operation ends through a compare-and-set on its state, in the same transaction as its audit row, so two
  replicas can never both announce the same completion.
- This module knows nothing of Slack: `poll_once()` returns plain `TrackingEvent`s for the Slack layer to render.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bot.usecases.context import Actor, utcnow
from bot.vps.client import VpsClient
from bot.vps.errors import VpsError
from bot.vps.models import Server, Snapshot
from storage.audit import Action, AuditLog, Outcome
from storage.db import Database, Transaction
from storage.operations import Operation as Operation  # re-exported: the Slack side renders it
from storage.operations import OperationKind as OperationKind  # re-exported: the Slack side tells them apart
from storage.operations import OperationState, TrackedOperations

if TYPE_CHECKING:
    from bot.usecases.approvals import RequestView
    from bot.usecases.snapshots import CreateResult

log = logging.getLogger(__name__)
T = TypeVar("T", Snapshot, Server)

CREATE = OperationKind.CREATE
RESTORE = OperationKind.RESTORE
TRACKING = OperationState.TRACKING
# A restore is over when the server is back in one of these states (it may have been stopped before).
RESTORED_STATES = frozenset({"active", "stopped"})
MAX_CLAIM = 1000  # operations one replica takes per poll; far above 5 snapshots per server in practice
MAX_BACKOFF_FACTOR = 10  # after API failures the wait grows to at most 10 × the poll interval


def default_owner() -> str:
    """hostname-pid-random: unique per process, and readable when an operator looks at the table."""
    host = socket.gethostname().split(".")[0][:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"[:64]


class EventKind(StrEnum):
    PROGRESS = "progress"  # the status changed but the operation is not over (e.g. an unknown API state)
    COMPLETED = "completed"  # a snapshot is `completed`
    FINISHED = "finished"  # a restored server is active (or stopped) again
    VANISHED = "vanished"  # the snapshot (or server) is no longer in the API's list
    TIMEOUT = "timeout"  # still not done when the deadline passed; the bot stops following it


@dataclass(frozen=True)
class TrackingEvent:
    kind: EventKind
    operation: Operation  # as it is after this event
    status: str  # the API's status for the snapshot/server ("" when it vanished)
    previous_status: str
    size_mb: int | None = None

    @property
    def took(self) -> timedelta:
        end = self.operation.finished_at or self.operation.started_at
        return max(timedelta(0), end - self.operation.started_at)

    @property
    def final(self) -> bool:
        return self.kind is not EventKind.PROGRESS


class Tracker:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        vps: VpsClient,
        poll_seconds: float = 30.0,
        timeout: timedelta = timedelta(minutes=60),
        lease: timedelta | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.operations = TrackedOperations(db)
        self.audit = audit
        self.vps = vps
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        # Long enough to outlast a poll (API retries included) and a few missed ticks, short enough that a dead
        # replica's work is taken over within about a minute.
        self.lease = lease if lease is not None else timedelta(seconds=max(60.0, 3 * poll_seconds))
        self.owner = owner or default_owner()
        self.clock = clock
        self._monotonic = monotonic
        self._next_poll = float("-inf")
        self._failures = 0

    # ---- starting to follow ------------------------------------------------------------------------------
    def track_create(
        self, actor: Actor, result: CreateResult, *, message_channel: str | None, message_ts: str | None
    ) -> Operation:
        """Follow a snapshot just created until it is completed (idempotent per snapshot)."""
        snap = result.snapshot
        return self._insert(
            kind=CREATE,
            server_id=result.server.id,
            server_name=result.server.name or snap.server.name,
            snapshot_id=snap.id,
            snapshot_name=snap.name,
            actor_id=actor.user_id,
            team_id=actor.team_id,
            channel_id=message_channel or actor.channel_id,
            message_ts=message_ts,
            request_id=None,
            last_status=snap.status,
        )

    def track_restore(self, request: RequestView) -> Operation:
        """Follow a started restore (an executed request) until the server is active again."""
        return self._insert(
            kind=RESTORE,
            server_id=request.server_id,
            server_name=request.server_name,
            snapshot_id=request.snapshot_id,
            snapshot_name=request.snapshot_name,
            actor_id=request.requester_id,
            team_id=None,
            channel_id=request.card_channel or request.channel_id,
            message_ts=request.card_ts,
            request_id=request.id,
            # What the restore endpoint answers with; a server still showing this is not done yet.
            last_status="restoring",
        )

    def _insert(self, *, kind: str, **fields: Any) -> Operation:
        now = self.clock()
        # A retried delivery or a double call finds the existing row: each operation is followed once.
        return self.operations.insert_once(kind=kind, now=now, deadline=now + self.timeout, **fields)

    # ---- polling -----------------------------------------------------------------------------------------
    def poll_once(self, *, force: bool = False) -> list[TrackingEvent]:
        """One round: claim due operations, one filtered snapshot listing per server with a tracked create and one
        server listing for the restores, end or update each. Returns what happened.

        Skips the round (returns []) while the poll interval — or, after API failures, the backoff — has not
        passed, unless `force`.
        """
        started = self._monotonic()
        if not force and started < self._next_poll:
            return []
        operations = self._claim()
        if not operations:
            self._schedule(started, failed=False)
            return []
        creates = [op for op in operations if op.kind == CREATE]
        restores = [op for op in operations if op.kind == RESTORE]
        try:
            servers = _by_id(self.vps.list_servers()) if restores else None
            snapshots = self._snapshots_of({op.server_id for op in creates})
        except VpsError as error:
            self._schedule(started, failed=True)
            log.warning("tracking poll: VPS.org failed (%s); next poll in %.0fs", error, self._next_poll - started)
            # Deadlines still apply while VPS.org is down: nobody should wait forever for an answer.
            return self._apply([c for c in (self._timeout_if_due(op) for op in operations) if c is not None])
        self._schedule(started, failed=False)
        changes: list[_Change | None] = []
        for op in creates:
            changes.append(self._check_create(op, snapshots[op.server_id]))
        for op in restores:
            assert servers is not None
            changes.append(self._check_restore(op, servers))
        return self._apply([c for c in changes if c is not None])

    def _snapshots_of(self, server_ids: set[int]) -> dict[int, _Found[Snapshot]]:
        """One filtered listing per server with a tracked create. Any failure is VPS.org's and the whole poll backs
        off (retrying server after server against an API that is down would only make the poll longer)."""
        found: dict[int, _Found[Snapshot]] = {}
        for server_id in sorted(server_ids):
            listed = self.vps.list_snapshots(server_id)
            found[server_id] = _Found({s.id: s for s in listed if s.server.id == server_id}, listed.complete)
        return found

    @property
    def backoff_factor(self) -> int:
        return min(2**self._failures, MAX_BACKOFF_FACTOR) if self._failures else 1

    def _schedule(self, started: float, *, failed: bool) -> None:
        self._failures = self._failures + 1 if failed else 0
        # 5% slack so a ticker firing exactly every poll interval is not skipped by timer jitter.
        self._next_poll = started + self.poll_seconds * self.backoff_factor * 0.95

    def _claim(self) -> list[Operation]:
        rows = self.operations.claim(self.owner, self.clock(), self.lease, MAX_CLAIM)
        return list(rows)

    def _check_create(self, op: Operation, snapshots: _Found[Snapshot]) -> _Change | None:
        snapshot = snapshots.items.get(op.snapshot_id or -1)
        if snapshot is None:
            if snapshots.complete:
                return _Change(op, EventKind.VANISHED, OperationState.FAILED, "")
            return self._timeout_if_due(op)  # a partial list proves nothing about absence
        if snapshot.is_completed:
            return _Change(op, EventKind.COMPLETED, OperationState.DONE, snapshot.status, snapshot.size_mb)
        return self._timeout_if_due(op, status=snapshot.status) or _progress(op, snapshot.status)

    def _check_restore(self, op: Operation, servers: _Found[Server]) -> _Change | None:
        server = servers.items.get(op.server_id)
        if server is None:
            if servers.complete:
                return _Change(op, EventKind.VANISHED, OperationState.FAILED, "")
            return self._timeout_if_due(op)
        if server.status in RESTORED_STATES:
            return _Change(op, EventKind.FINISHED, OperationState.DONE, server.status)
        return self._timeout_if_due(op, status=server.status) or _progress(op, server.status)

    def _timeout_if_due(self, op: Operation, *, status: str | None = None) -> _Change | None:
        if self.clock() < op.deadline:
            return None
        return _Change(op, EventKind.TIMEOUT, OperationState.TIMEOUT, status if status is not None else op.last_status)

    def _apply(self, changes: list[_Change]) -> list[TrackingEvent]:
        """Write every change of this poll in one transaction, each through a compare-and-set.

        An ending moves the state away from `tracking` (and writes its audit row) only if it is still `tracking`;
        a status change only if the status is still the one this replica saw. Whoever loses such a race (another
        replica got there first) emits nothing, so each ending is announced exactly once.
        """
        if not changes:
            return []
        now = self.clock()
        events: list[TrackingEvent] = []
        with self.db.session() as session:
            for change in changes:
                op = change.op
                if change.kind is EventKind.PROGRESS:
                    status = change.status[:32]
                    won = self.operations.update_status(session, op.id, op.last_status, status)
                    after = replace(op, last_status=status)
                else:
                    last_status = (change.status or op.last_status)[:32]
                    won = self.operations.end(session, op.id, change.state, last_status, now)
                    after = replace(
                        op,
                        state=OperationState(change.state),
                        last_status=last_status,
                        finished_at=now,
                        lease_owner=None,
                    )
                if not won:
                    continue
                if change.kind is not EventKind.PROGRESS:
                    self._audit_end(session, after, change.kind, change.status, change.size_mb)
                events.append(TrackingEvent(change.kind, after, change.status, op.last_status, change.size_mb))
        return events

    def _audit_end(
        self, session: Transaction, op: Operation, kind: EventKind, status: str, size_mb: int | None
    ) -> None:
        action, outcome = {
            (CREATE, EventKind.COMPLETED): (Action.CREATE_COMPLETED, Outcome.OK),
            (CREATE, EventKind.VANISHED): (Action.CREATE_VANISHED, Outcome.FAILED),
            (CREATE, EventKind.TIMEOUT): (Action.CREATE_TIMEOUT, Outcome.UNKNOWN),
            (RESTORE, EventKind.FINISHED): (Action.RESTORE_FINISHED, Outcome.OK),
            (RESTORE, EventKind.VANISHED): (Action.RESTORE_VANISHED, Outcome.FAILED),
            (RESTORE, EventKind.TIMEOUT): (Action.RESTORE_TIMEOUT, Outcome.UNKNOWN),
        }[(op.kind, kind)]
        details: dict[str, Any] = {
            "started_by": op.actor_id,
            "name": op.snapshot_name,
            "server_name": op.server_name,
            "status": status,
            "tracked_seconds": round(((op.finished_at or op.started_at) - op.started_at).total_seconds()),
        }
        if size_mb is not None:
            details["size_mb"] = size_mb
        observer = Actor(user_id="system", name="snapshot-bot", team_id=op.team_id, channel_id=op.channel_id)
        self.audit.append(
            observer.entry(
                str(action),
                str(outcome),
                server_id=op.server_id,
                snapshot_id=op.snapshot_id,
                request_id=op.request_id,
                details=details,
            ),
            session=session,
        )

    # ---- reading and shutdown ----------------------------------------------------------------------------
    def active(self, *, actor_id: str | None = None, limit: int = 50) -> list[Operation]:
        """Operations still being followed, newest first (for App Home)."""
        return list(self.operations.active(actor_id=actor_id, limit=limit))

    def restore_of(self, request_id: int) -> Operation | None:
        """The restore followed for an approval request, in whatever state it is now (None: never followed)."""
        return self.operations.of_request(request_id)

    def get(self, operation_id: int) -> Operation | None:
        return self.operations.get(operation_id)

    def release(self) -> int:
        """Give up this replica's leases (graceful shutdown), so another replica or a restart resumes at once."""
        return self.operations.release(self.owner)


@dataclass(frozen=True)
class _Change:
    """What one poll found out about one operation, before it is written."""

    op: Operation
    kind: EventKind
    state: str  # the state it ends in ("" for progress)
    status: str
    size_mb: int | None = None


def _progress(op: Operation, status: str) -> _Change | None:
    return _Change(op, EventKind.PROGRESS, "", status) if status != op.last_status else None


@dataclass(frozen=True)
class _Found(Generic[T]):
    items: dict[int, T]
    complete: bool  # False when VPS.org said there are more than it sent: absence then proves nothing


def _by_id(items: Iterable[T]) -> _Found[T]:
    listed = list(items)
    complete = bool(getattr(items, "complete", True))
    return _Found({item.id: item for item in listed}, complete)

"""The database schema (SQLAlchemy 2 typed declarative). Change it only together with an Alembic migration."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    # Every model here is mapped to a Table (SQLAlchemy types it as any FromClause), which is what Core's
    # insert()/update() take: storage's SQL uses `Model.__table__` directly.
    __table__: ClassVar[Table]


class AuditEvent(Base):
    """One row per event. Append-only: the application never updates or deletes these rows.

    `prev_hash`/`hash` chain every row to the one before it (SHA-256 over a canonical serialisation), so an edit,
    a deletion or a reordering is detectable by `python -m bot audit verify`.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[str] = mapped_column(String(32))  # Slack user id, or "system"
    actor_name: Mapped[str] = mapped_column(String(200), default="")  # display name at that moment, display only
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))  # e.g. "create.requested"; see storage.audit.Action
    outcome: Mapped[str] = mapped_column(String(16))  # see storage.audit.Outcome
    server_id: Mapped[int | None] = mapped_column(BigInteger)
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    request_id: Mapped[int | None] = mapped_column(BigInteger)  # approval request it belongs to
    operation_id: Mapped[str | None] = mapped_column(String(36))  # pairs an intent row with its outcome row
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_server", "server_id", "id"),
        Index("ix_audit_snapshot", "snapshot_id", "id"),
        Index("ix_audit_actor", "actor_id", "id"),
        Index("ix_audit_action", "action", "id"),
        # Pairs of `/snapshot audit` filters (migration 0002): each is a seek, newest first by the trailing id.
        Index("ix_audit_actor_action", "actor_id", "action", "id"),
        Index("ix_audit_actor_server", "actor_id", "server_id", "id"),
        Index("ix_audit_server_action", "server_id", "action", "id"),
        Index("ix_audit_actor_server_action", "actor_id", "server_id", "action", "id"),  # migration 0010
        Index("ix_audit_created", "created_at"),
        Index("ix_audit_operation", "operation_id"),
        Index("ix_audit_request", "request_id"),
    )


class AuditChainHead(Base):
    """A single row (id=1) holding the last hash: locking it serialises appends across threads and processes."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class ApprovalRequest(Base):
    """A destructive action (restore; delete when configured) waiting for other people's approval.

    States: pending → executing (claimed) → sending (the one atomic check-and-mark before the call) → executed |
    failed | needs_check; executing → stale (the snapshot changed) or back to pending (nothing was sent: the
    re-check was too slow or the claim expired); pending → rejected | cancelled | expired; sending whose claim
    expired → needs_check (sent, outcome unknown; never re-sent automatically).

    `claim_token` fences the executor: only the holder of an unexpired claim (`claim_expires_at`, computed with
    the database's clock) may mark the request `sending`. `bound_digest` is the digest of what the card showed.
    """

    __tablename__ = "approval_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "restore" | "delete" | "schedule"
    state: Mapped[str] = mapped_column(String(16), index=True)
    requester_id: Mapped[str] = mapped_column(String(32))
    requester_name: Mapped[str] = mapped_column(String(200), default="")
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))  # where it was asked
    snapshot_id: Mapped[int] = mapped_column(BigInteger)
    snapshot_name: Mapped[str] = mapped_column(String(200))
    snapshot_status: Mapped[str] = mapped_column(String(32))
    snapshot_size_mb: Mapped[int | None] = mapped_column(BigInteger)
    snapshot_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    snapshot_description: Mapped[str] = mapped_column(Text, default="")
    server_id: Mapped[int] = mapped_column(BigInteger)
    server_name: Mapped[str] = mapped_column(String(200), default="")
    approvals_required: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")  # why it was rejected or cancelled
    request_reason: Mapped[str] = mapped_column(Text, default="", server_default="")  # the requester's (an incident)
    result_message: Mapped[str] = mapped_column(Text, default="")
    card_channel: Mapped[str | None] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claim_token: Mapped[str | None] = mapped_column(String(36))  # the executor's fencing token (a uuid)
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # database clock
    bound_digest: Mapped[str | None] = mapped_column(String(64))  # what the approval is bound to
    # The safety snapshot taken before a restore (bot/usecases/approval_safety.py): what the card offered
    # ("" | "free" | "full"), what the approver chose ("" | "snapshot" | "none"), and its step.
    safety_offer: Mapped[str] = mapped_column(String(16), default="", server_default="")
    safety_choice: Mapped[str] = mapped_column(String(16), default="", server_default="")
    safety_snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    safety_state: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # A `schedule` request (bot/usecases/schedule_requests.py) names no snapshot: its snapshot columns are 0 / "",
    # and it carries the schedule it makes or changes and the proposed settings (canonical JSON, migration 0008).
    schedule_id: Mapped[int | None] = mapped_column(BigInteger)
    proposal: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_approval_claim", "state", "claim_expires_at"),)


class ApprovalVote(Base):
    """One approver's approval of one request; the unique key makes a double click count once."""

    __tablename__ = "approval_votes"
    __table_args__ = (UniqueConstraint("request_id", "approver_id", name="uq_vote_request_approver"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    approver_id: Mapped[str] = mapped_column(String(32))
    approver_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # What this approver chose about a restore's safety snapshot ("snapshot" | "none"; "" for other kinds).
    safety_choice: Mapped[str] = mapped_column(String(16), default="", server_default="")


class TrackedOperation(Base):
    """A long VPS.org operation the bot follows to its end (snapshot creation, server restore).

    One replica at a time holds the lease (`lease_owner` until `lease_expires_at`); a dead replica's lease expires
    and another takes over.
    """

    __tablename__ = "tracked_operations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "create" | "restore"
    state: Mapped[str] = mapped_column(String(16), index=True)  # "tracking" | "done" | "failed" | "timeout"
    server_id: Mapped[int] = mapped_column(BigInteger)
    server_name: Mapped[str] = mapped_column(String(200), default="")
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger)
    snapshot_name: Mapped[str] = mapped_column(String(200), default="")
    actor_id: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))  # message to update in place
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    last_status: Mapped[str] = mapped_column(String(32), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProcessedDelivery(Base):
    """Keys of Slack deliveries already handled, so a retried delivery is processed once."""

    __tablename__ = "processed_deliveries"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditCheckpoint(Base):
    """A signed checkpoint of the audit chain (see storage.checkpoints). `seq` is unique, so of several replicas
    reaching the same boundary exactly one inserts it; that one's record is what gets witnessed.

    `record` is the signed JSON line as posted and written to AUDIT_CHECKPOINT_FILE; the other columns repeat
    parts of it for queries. The Slack columns track delivery to AUDIT_CHECKPOINT_CHANNEL (retried until done).
    """

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    chain_length: Mapped[int] = mapped_column(BigInteger)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    record: Mapped[str] = mapped_column(Text)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    slack_retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    slack_attempts: Mapped[int] = mapped_column(Integer, default=0)


class Schedule(Base):
    """A snapshot schedule: `when_spec` (bot/usecases/schedule_when.py) on one server, keeping its newest `keep`.

    Never deleted: `/snapshot unschedule` disables it, so its slot claims still say which snapshots were its own.
    `awaiting_approval`: made while deletes need approval and not approved yet (stored, never run, until then);
    `deletes_approved`: its current settings were approved through a `schedule` request, so its retention deletes
    without a card each; `revision` counts changes (an approval is bound to one); `applied_at`: when the current
    settings took effect (no slot from before it is run).
    """

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(BigInteger, index=True)
    server_name: Mapped[str] = mapped_column(String(200), default="")
    when_spec: Mapped[str] = mapped_column(String(200))
    keep: Mapped[int] = mapped_column(Integer)
    on_full: Mapped[str] = mapped_column(String(16))  # "skip" | "rotate"
    created_by: Mapped[str] = mapped_column(String(32))  # Slack user id
    channel_id: Mapped[str | None] = mapped_column(String(32))  # where it was made: told when no notify channel
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_result: Mapped[str] = mapped_column(Text, default="")
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    awaiting_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    deletes_approved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ScheduleSlot(Base):
    """One claimed (schedule, slot): the unique key lets exactly one replica, once, take a snapshot for a slot.

    `state`: claimed → created (the snapshot was asked for) → kept (retention ran after it completed), or
    claimed → skipped | failed. `snapshot_id` is what makes a snapshot this schedule's own (with its name prefix).
    """

    __tablename__ = "schedule_slots"
    __table_args__ = (UniqueConstraint("schedule_id", "slot_time", name="uq_schedule_slot"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id"), index=True)
    slot_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str] = mapped_column(String(64))  # the replica (hostname-pid-random)
    state: Mapped[str] = mapped_column(String(16), index=True)
    snapshot_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    snapshot_name: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str] = mapped_column(Text, default="")


class ApprovalNudge(Base):
    """One claimed reminder or escalation of a waiting request (issue 28 §1): the unique key lets exactly one
    replica, once, send the `number`-th nudge of its `kind` ("remind" | "escalate") for a request, like a schedule
    slot. A claim is never deleted, so a restart or a second replica never sends it again.
    """

    __tablename__ = "approval_nudges"
    __table_args__ = (UniqueConstraint("request_id", "kind", "number", name="uq_approval_nudge"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str] = mapped_column(String(64))  # the replica (hostname-pid-random)


class MfaEnrolment(Base):
    """One person's authenticator for the TOTP step-up (storage/mfa.py): its secret sealed with a key kept outside
    the database (never in the clear here), how far it got (pending → confirmed → active), the last time step a
    code was accepted for (a replay is refused), and the wrong codes that lock that person's approvals."""

    __tablename__ = "mfa_enrolments"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed_secret: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_step: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SnapshotPin(Base):
    """A snapshot someone protected (storage/pins.py): retention and "Free oldest" skip it, a delete is refused.
    One row per snapshot id; unpinning deletes the row (the audit trail keeps the history)."""

    __tablename__ = "snapshot_pins"

    snapshot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    server_id: Mapped[int] = mapped_column(BigInteger)
    snapshot_name: Mapped[str] = mapped_column(String(128))
    pinned_by: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(400))
    pinned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

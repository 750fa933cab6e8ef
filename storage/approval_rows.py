"""An approval request as storage hands it out: a frozen `RequestRow`, never the live ORM object.

Rules kept here:
- A row is read with its approvers (the votes of the current attempt, oldest first); a list of rows reads all
  their approvers in one query, never one per row.
- A read is fresh: it overwrites whatever the session remembers of the row (`populate_existing`), so a row read
  after a write in the same transaction (the repository's compare-and-sets bypass the session) shows that write.
- Kinds and states come out typed (`RequestKind`, `RequestState`); the safety snapshot's terms stay the stored
  strings (their types belong to the use cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select
from sqlalchemy.orm import Session

from storage.approval_states import RequestKind, RequestState
from storage.approval_votes import ApprovalVotes
from storage.frozen import frozen
from storage.models import ApprovalRequest


@dataclass(frozen=True)
class RequestRow:
    """One approval request as stored (columns: storage.models.ApprovalRequest), with its approvers."""

    id: int
    kind: RequestKind
    state: RequestState
    requester_id: str
    requester_name: str
    team_id: str | None
    channel_id: str | None
    snapshot_id: int
    snapshot_name: str
    snapshot_status: str
    snapshot_size_mb: int | None
    snapshot_created_at: datetime | None
    snapshot_description: str
    server_id: int
    server_name: str
    approvals_required: int
    created_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str
    request_reason: str
    result_message: str
    card_channel: str | None
    card_ts: str | None
    updated_at: datetime
    claim_token: str | None
    claim_expires_at: datetime | None
    bound_digest: str | None
    safety_offer: str  # "" | "free" | "full"
    safety_choice: str  # "" | "snapshot" | "none"
    safety_snapshot_id: int | None
    safety_state: str
    schedule_id: int | None
    proposal: str | None
    approvers: tuple[str, ...] = ()


def read_rows(session: Session, stmt: Select[ApprovalRequest]) -> list[RequestRow]:
    """The requests `stmt` selects, fresh, each with its approvers (one query for all of them)."""
    found = session.scalars(stmt.execution_options(populate_existing=True)).all()
    approvers = ApprovalVotes().approvers_of(session, [row.id for row in found])
    return [frozen(RequestRow, row, approvers=approvers[row.id]) for row in found]


def read_row(session: Session, stmt: Select[ApprovalRequest]) -> RequestRow | None:
    """The first request `stmt` selects, fresh, with its approvers; None when it selects none."""
    rows = read_rows(session, stmt.limit(1))
    return rows[0] if rows else None

"""Reminders and escalation of waiting approval requests (issue 28 §1).

`approval_nudges` holds one claim per (request, kind, number): "remind" 1..APPROVAL_REMIND_MAX and "escalate" 1.
The unique key lets exactly one replica send each one, once, across restarts, as `schedule_slots` does for slots.

Revision ID: 0011_reminders
Revises: 0010_audit
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_reminders"
down_revision: str | None = "0010_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "approval_nudges",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", _ID, sa.ForeignKey("approval_requests.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("request_id", "kind", "number", name="uq_approval_nudge"),
    )
    op.create_index("ix_approval_nudges_request_id", "approval_nudges", ["request_id"])


def downgrade() -> None:
    op.drop_table("approval_nudges")

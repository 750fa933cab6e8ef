"""Schedules whose deletes are approved through the approval card (issue 18 §3).

`approval_requests` gains the schedule a `schedule` request makes or changes and the proposed settings (JSON);
such a request names no snapshot (its snapshot columns are 0 / ""). `schedules` gains `awaiting_approval` (stored,
not run, until approved), `deletes_approved` (its retention deletes without a card each), `revision` (an approval
is bound to one) and `applied_at` (when its current settings took effect).

Revision ID: 0008_schedule_approval
Revises: 0007_schedules
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_schedule_approval"
down_revision: str | None = "0007_schedules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("schedule_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("proposal", sa.Text(), nullable=True))
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("awaiting_approval", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("deletes_approved", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("applied_at")
        batch.drop_column("revision")
        batch.drop_column("deletes_approved")
        batch.drop_column("awaiting_approval")
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("proposal")
        batch.drop_column("schedule_id")

"""Approval votes: each approver's safety-snapshot choice.

With RESTORE_APPROVALS_REQUIRED > 1 the choice that counts is the safe side: a safety snapshot is taken when any
approver of the round asked for one, so every vote keeps what its approver chose ("snapshot", "none"; "" for a
delete or a schedule). Existing votes get "": they were cast before the choice was kept per vote.

Revision ID: 0009_vote_safety_choice
Revises: 0008_schedule_approval
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_vote_safety_choice"
down_revision: str | None = "0008_schedule_approval"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approval_votes") as batch:
        batch.add_column(sa.Column("safety_choice", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("approval_votes") as batch:
        batch.drop_column("safety_choice")

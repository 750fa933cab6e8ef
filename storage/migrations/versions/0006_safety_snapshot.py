"""Approval requests: the safety snapshot taken before a restore (issue 18 §1).

`safety_offer`: what the card offered when the request was made ("" none, "free" a slot was free, "full" the
server was full). `safety_choice`: what the approver chose ("" not decided yet, "snapshot", "none").
`safety_snapshot_id` / `safety_state`: the `pre-restore-<id>` snapshot and where its step is ("" not started,
"creating" (the create may have been sent), "following", "completed", "failed", "unknown", "timeout").
Existing requests get "" / NULL: no safety step, exactly what they were approved with.

Revision ID: 0006_safety_snapshot
Revises: 0005_request_reason
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_safety_snapshot"
down_revision: str | None = "0005_request_reason"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("safety_offer", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("safety_choice", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("safety_snapshot_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("safety_state", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("safety_state")
        batch.drop_column("safety_snapshot_id")
        batch.drop_column("safety_choice")
        batch.drop_column("safety_offer")

"""Approval requests: the executor's claim (fencing token + deadline) and the digest the approval is bound to.

Revision ID: 0002_restore_claim
Revises: 0001_initial
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_restore_claim"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(36), nullable=True))
        batch.add_column(sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bound_digest", sa.String(64), nullable=True))
    op.create_index("ix_approval_claim", "approval_requests", ["state", "claim_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_approval_claim", table_name="approval_requests")
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("bound_digest")
        batch.drop_column("claim_expires_at")
        batch.drop_column("claim_token")

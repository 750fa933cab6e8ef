"""Approval requests: the requester's reason (an incident reference), bound into the approval digest (issue 17 §2).

`reason` already holds why a request was rejected or cancelled; the requester's own reason is `request_reason`.
Existing requests get "" — exactly what their digest was computed with.

Revision ID: 0005_request_reason
Revises: 0004_audit_query_indexes
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_request_reason"
down_revision: str | None = "0004_audit_query_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("request_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("request_reason")

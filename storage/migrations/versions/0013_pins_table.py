"""Pinned snapshots (issue 29 §3): one row per snapshot someone protected from retention and deletes.

Revision ID: 0013_pins
Revises: 0012_stepup
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_pins"
down_revision: str | None = "0012_stepup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "snapshot_pins",
        sa.Column("snapshot_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("server_id", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_name", sa.String(128), nullable=False),
        sa.Column("pinned_by", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(400), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("snapshot_pins")

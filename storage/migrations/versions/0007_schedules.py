"""Snapshot schedules and their slot claims (issue 18 §2, §3).

`schedule_slots` has UNIQUE (schedule_id, slot_time): of several replicas (or a restarted one) reaching the same
slot, exactly one inserts the claim and takes the snapshot.

Revision ID: 0007_schedules
Revises: 0006_safety_snapshot
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_schedules"
down_revision: str | None = "0006_safety_snapshot"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("server_id", sa.BigInteger(), nullable=False),
        sa.Column("server_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("when_spec", sa.String(200), nullable=False),
        sa.Column("keep", sa.Integer(), nullable=False),
        sa.Column("on_full", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("last_result", sa.Text(), nullable=False, server_default=""),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_schedules_server_id", "schedules", ["server_id"])
    op.create_table(
        "schedule_slots",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("schedule_id", _ID, sa.ForeignKey("schedules.id"), nullable=False),
        sa.Column("slot_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("snapshot_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.UniqueConstraint("schedule_id", "slot_time", name="uq_schedule_slot"),
    )
    op.create_index("ix_schedule_slots_schedule_id", "schedule_slots", ["schedule_id"])
    op.create_index("ix_schedule_slots_state", "schedule_slots", ["state"])
    op.create_index("ix_schedule_slots_snapshot_id", "schedule_slots", ["snapshot_id"])


def downgrade() -> None:
    op.drop_table("schedule_slots")
    op.drop_table("schedules")

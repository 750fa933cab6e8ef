"""Composite indexes so every `/snapshot audit` filter combination is an index seek (issue 19 §1).

`/snapshot audit` pages newest first through equality filters on user, server, snapshot and action. Each
single filter already had its `(column, id)` index; these cover the pairs that otherwise read a whole history
(non-admins always filter by their own user, so user + action and user + server are the everyday queries).
Combinations with a snapshot use `ix_audit_snapshot`: one snapshot has a handful of events.

Revision ID: 0004_audit_query_indexes
Revises: 0003_audit_checkpoints
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_audit_query_indexes"
down_revision: str | None = "0003_audit_checkpoints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_audit_actor_action": ["actor_id", "action", "id"],
    "ix_audit_actor_server": ["actor_id", "server_id", "id"],
    "ix_audit_server_action": ["server_id", "action", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "audit_events", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="audit_events")

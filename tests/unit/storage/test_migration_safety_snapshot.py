"""Migration 0006_safety_snapshot: upgrade from 0005 keeps existing requests as they were approved (no safety
step), and downgrade removes the columns again — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from storage.db import Database

COLUMNS = {"safety_offer", "safety_choice", "safety_snapshot_id", "safety_state"}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def columns(db: Database) -> set[str]:
    with db.begin(readonly=True) as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("approval_requests")}


def migrate(db: Database, revision: str, *, down: bool = False) -> None:
    with db.begin() as conn:
        config = db._alembic_config(conn)
        (command.downgrade if down else command.upgrade)(config, revision)


def test_upgrade_from_0005_and_back(database_url: str) -> None:
    db = Database(database_url)
    try:
        migrate(db, "0005_request_reason")
        assert not COLUMNS & columns(db)
        with db.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO approval_requests (kind, state, requester_id, requester_name, snapshot_id, "
                    "snapshot_name, snapshot_status, snapshot_description, server_id, server_name, "
                    "approvals_required, created_at, expires_at, reason, result_message, updated_at) VALUES "
                    "('restore', 'pending', 'U0ALICE', 'alice', 801, 'x', 'completed', '', 12345, 'web', 1, "
                    ":now, :now, '', '', :now)"
                ),
                {"now": NOW},
            )
        migrate(db, "0006_safety_snapshot")
        assert columns(db) >= COLUMNS
        with db.begin(readonly=True) as conn:
            row = conn.execute(
                sa.text("SELECT safety_offer, safety_choice, safety_snapshot_id, safety_state FROM approval_requests")
            ).one()
        assert tuple(row) == ("", "", None, "")  # an old request: no safety step, as it was approved

        migrate(db, "0005_request_reason", down=True)
        assert not COLUMNS & columns(db)
        migrate(db, "head")
        assert columns(db) >= COLUMNS
    finally:
        db.dispose()

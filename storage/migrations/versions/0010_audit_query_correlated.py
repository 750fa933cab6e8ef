"""`/snapshot audit` on correlated data (issue 27 §5): PostgreSQL statistics on the filter pairs, and an index for
user + server + action, so a rare combination of common values is planned as the index seek it is.

The planner multiplies single-column frequencies: for `user:system action:list` (system is 7 % of the rows and
`list` half of them, but system never lists) it expected thousands of matches and read the primary key backwards,
filtering every row of the table (198 ms at 1,000,000 events). Multivariate MCV lists on the pairs the composite
indexes serve tell it which combinations occur and how often; with a target of 1,000 they hold every pair a team
of tens of people, a few hundred servers and the bot's few dozen actions writes (ANALYZE samples 300 rows per unit
of target: 300,000 rows, about a second). SQLite plans these queries by rule (the index with the most equalities)
and needs no statistics.

User + server + action was the one combination without a snapshot that no index served whole: it read one pair's
index and filtered by the third column, which on correlated data (a person's own servers) can be most of their
history. `ix_audit_actor_server_action` makes it a seek too (both databases; built while writes wait, seconds
per million rows, like migration 0004's).

Revision ID: 0010_audit
Revises: 0009_vote_safety_choice
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_audit"
down_revision: str | None = "0009_vote_safety_choice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TARGET = 1000
STATISTICS = {
    "st_audit_actor_action": ("actor_id", "action"),
    "st_audit_actor_server": ("actor_id", "server_id"),
    "st_audit_server_action": ("server_id", "action"),
}


TRIPLE_INDEX = ("ix_audit_actor_server_action", ["actor_id", "server_id", "action", "id"])


def upgrade() -> None:
    op.create_index(TRIPLE_INDEX[0], "audit_events", TRIPLE_INDEX[1])
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, columns in STATISTICS.items():
        op.execute(f"CREATE STATISTICS {name} (mcv, ndistinct) ON {', '.join(columns)} FROM audit_events")
        op.execute(f"ALTER STATISTICS {name} SET STATISTICS {TARGET}")


def downgrade() -> None:
    op.drop_index(TRIPLE_INDEX[0], table_name="audit_events")
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in STATISTICS:
        op.execute(f"DROP STATISTICS IF EXISTS {name}")

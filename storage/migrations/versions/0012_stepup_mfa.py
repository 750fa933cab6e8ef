"""The TOTP step-up before approving (issue 28 §2): one row per person's authenticator.

The secret is stored sealed (AES-GCM with MFA_ENCRYPTION_KEY, kept outside the database, bound to the user id);
`last_step` refuses a replayed code; `failures` and `locked_until` lock a person's approvals after five wrong
codes, for every replica.

Revision ID: 0012_stepup
Revises: 0011_reminders
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_stepup"
down_revision: str | None = "0011_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mfa_enrolments",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(32), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("mfa_enrolments")

"""Who is acting, and where: the only identity the use cases see (never a Slack payload)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage.audit import AuditEntry


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_operation_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Actor:
    """`user_id` is the Slack user id from the signed request; `name` is for display only."""

    user_id: str
    name: str = ""
    team_id: str | None = None
    channel_id: str | None = None

    def entry(self, action: str, outcome: str, **fields: Any) -> AuditEntry:
        """An audit entry by this actor, here."""
        return AuditEntry(
            action=action,
            outcome=outcome,
            actor_id=self.user_id,
            actor_name=self.name,
            team_id=self.team_id,
            channel_id=self.channel_id,
            **fields,
        )


SYSTEM = Actor(user_id="system", name="snapshot-bot")

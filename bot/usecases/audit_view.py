"""Reading the audit trail from Slack: admins see everyone's events, others only their own.

The filters come as `AuditFilters`: their ids (and `limit`) parsed where they came in (bot/slack/listeners/audit.py,
with `AuditFilters.parse`), their words kept as typed for the page's header and its "Older" button.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.usecases.access import Permission
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput, Refused
from bot.usecases.guard import Guard
from bot.usecases.validation import parse_id
from bot.usecases.wording import Text, code, command
from storage.audit import Action, AuditLog, AuditRecord, Outcome

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


KNOWN_ACTIONS = frozenset(action.value for action in Action)


def _refuse_unknown_action(typed: str) -> None:
    """`action:` matched nothing and names no action the bot records: say which ones exist (a typo finds nothing
    silently otherwise). Checked only after an empty answer, so events of an action no longer known still show."""
    if any(known == typed or known.startswith(typed + ".") for known in KNOWN_ACTIONS):
        return
    families = sorted({known.split(".")[0] for known in KNOWN_ACTIONS})
    raise InvalidInput(
        Text("No action is called {}. Use one of {}, or a full name like {}.").format(
            code(typed, 40), Text(", ").join(code(f) for f in families), code("restore.approved")
        ),
        field="action",
    )


@dataclass(frozen=True)
class AuditFilters:
    """`/snapshot audit` filters: `words` as typed (`server`, `snapshot`, `user`, `action`, `limit`, in the order
    given), the numbers among them parsed."""

    words: dict[str, str]
    server_id: int | None = None
    snapshot_id: int | None = None
    limit: int = DEFAULT_LIMIT

    @staticmethod
    def parse(words: dict[str, str]) -> AuditFilters:
        """Raise `InvalidInput` naming the first malformed number (`limit`, then the ids)."""
        limit = min(parse_id(words["limit"], "limit"), MAX_LIMIT) if "limit" in words else DEFAULT_LIMIT
        return AuditFilters(
            dict(words),
            server_id=parse_id(words["server"], "server id") if "server" in words else None,
            snapshot_id=parse_id(words["snapshot"], "snapshot id") if "snapshot" in words else None,
            limit=limit,
        )


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    filters: dict[str, str]
    next_before_id: int | None  # for an "Older" button


class AuditReader:
    def __init__(self, audit: AuditLog, guard: Guard) -> None:
        self.audit = audit
        self.guard = guard

    def recent(self, actor: Actor, asked: AuditFilters, before_id: int | None = None) -> AuditPage:
        self.guard.require(actor, Permission.AUDIT_READ)
        filters = dict(asked.words)
        sees_all = self.guard.access.check(actor.user_id, Permission.AUDIT_READ_ALL).allowed
        if not sees_all:
            if filters.get("user") not in (None, actor.user_id):
                self.audit.append(
                    actor.entry(
                        Action.REFUSED_PERMISSION,
                        Outcome.REFUSED,
                        details={"permission": str(Permission.AUDIT_READ_ALL), "required_role": "admin"},
                    )
                )
                raise Refused(
                    Text("Only admins can read other people's audit events. Try {} for your own.").format(
                        command("audit")
                    )
                )
            filters["user"] = actor.user_id
        limit = asked.limit
        records = self.audit.query(
            server_id=asked.server_id,
            snapshot_id=asked.snapshot_id,
            actor_id=filters.get("user"),
            action=filters.get("action"),
            limit=limit + 1,
            before_id=before_id,
        )
        if not records and before_id is None and "action" in filters:
            _refuse_unknown_action(filters["action"])
        more = len(records) > limit
        records = records[:limit]
        return AuditPage(records, filters, records[-1].id if more and records else None)

"""Recovery after a crash: intents that never got an outcome are closed as `unknown` and shown to humans.

Every mutating VPS.org call is announced by an intent row (committed before the call) and settled by an outcome
row with the same `operation_id`. A process killed between the two (kill -9, OOM, power loss) leaves the intent
open forever, and nobody learns that a create, delete or restore may or may not have happened. The sweep here
finds intents older than `stale_after` with no outcome, writes the missing outcome (`<kind>.needs_check`,
outcome `unknown`) and, for a request still marked `executing`, moves it to `needs_check` — never re-sending
anything: whether VPS.org received the call cannot be known from here, so a human must check.

`stale_after` must outlast any honest call (the client timeout plus waiting for the database lock to write the
outcome), or a slow but live call would be flagged while it is still running. An intent of an approval request
that is held by a claim (`sending` with a claim token) is left to `ApprovalService.flag_stale_executions`, which
acts only once that claim has expired by the database's clock. Sweeps from several processes
serialise on the audit chain head, so each intent is closed once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.usecases.context import Actor, utcnow
from bot.usecases.wording import Text, code, mention, sentence
from storage.approvals import ApprovalRequests
from storage.audit import Action, AuditLog, AuditRecord, Outcome, iso_timestamp
from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database, as_utc

log = logging.getLogger(__name__)

RECOVERED_REASON = "found without outcome after a restart — check before retrying"
REQUEST_MESSAGE = (
    "The bot stopped while this was being carried out; whether VPS.org received it is unknown. "
    "Check the server before doing anything else."
)
# Which intent actions this module settles, and the action of the outcome row it writes for each.
INTENT_KINDS: dict[str, str] = {
    str(Action.CREATE_REQUESTED): "create",
    str(Action.DELETE_REQUESTED): "delete",
    str(Action.RESTORE_EXECUTING): "restore",
}
NEEDS_CHECK_ACTIONS: dict[str, Action] = {
    "create": Action.CREATE_NEEDS_CHECK,
    "delete": Action.DELETE_NEEDS_CHECK,
    "restore": Action.RESTORE_NEEDS_CHECK,
}
MIN_DEFAULT_STALE = timedelta(minutes=2)
SHOW_DAYS = 7


@dataclass(frozen=True)
class Unresolved:
    """An operation whose outcome is unknown because the bot stopped mid-call."""

    intent_id: int
    operation_id: str
    kind: str  # "create" | "delete" | "restore"
    actor_id: str
    channel_id: str | None
    server_id: int | None
    snapshot_id: int | None
    request_id: int | None
    name: str  # the snapshot's name, as the intent recorded it
    intended_at: datetime
    flagged_at: datetime | None = None

    def describe(self) -> Text:
        """Plain words for people and logs: what was being done, for whom, when, and what to do now."""
        name = code(self.name, 64)
        what = {
            "create": Text("creating snapshot {} of server {}").format(name, sentence(str(self.server_id))),
            "delete": Text("deleting snapshot {} (#{})").format(name, sentence(str(self.snapshot_id))),
            "restore": Text("restoring snapshot {} (#{})").format(name, sentence(str(self.snapshot_id))),
        }.get(self.kind, Text("{} {}").format(code(self.kind, 20), name))
        request = Text(" (request #{})").format(self.request_id) if self.request_id is not None else Text()
        who = Text("the bot") if self.actor_id == "system" else mention(self.actor_id)
        return Text("Outcome unknown: {}{} for {}, started {} — {}.").format(
            what, request, who, sentence(iso_timestamp(self.intended_at)), sentence(RECOVERED_REASON)
        )


def stale_after_for(vps_timeout_seconds: float, override_seconds: float | None = None) -> timedelta:
    """How old an open intent must be before it is declared orphaned.

    Default: the longest an honest call can take — the client timeout, then up to the SQLite busy timeout to
    write its outcome — times three, and at least two minutes. `SNAPSHOT_RECOVERY_AFTER_SECONDS` overrides it.
    """
    if override_seconds is not None:
        return timedelta(seconds=max(0.0, override_seconds))
    honest = vps_timeout_seconds + SQLITE_BUSY_TIMEOUT_MS / 1000
    return max(MIN_DEFAULT_STALE, timedelta(seconds=3 * honest))


class Recovery:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        stale_after: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.requests = ApprovalRequests(db)
        self.audit = audit
        self.stale_after = stale_after
        self.clock = clock

    # ---- the sweep (start-up and every tick) ---------------------------------------------------------------
    def sweep(self) -> list[Unresolved]:
        """Close every orphaned intent with an `unknown` outcome row. Returns what was closed just now."""
        candidates = [r for r in self.audit.open_intents(older_than=self.stale_after) if r.action in INTENT_KINDS]
        closed: list[Unresolved] = []
        for intent in candidates:
            try:
                item = self._close(intent)
            except Exception:
                log.exception("could not settle orphaned intent %s", intent.id)
                continue
            if item is not None:
                closed.append(item)
        if closed:
            noun = "operation" if len(closed) == 1 else "operations"
            log.warning("recovery: %d %s found without outcome; flagged for a human", len(closed), noun)
        return closed

    def _close(self, intent: AuditRecord) -> Unresolved | None:
        assert intent.operation_id is not None
        kind = INTENT_KINDS[intent.action]
        now = self.clock()
        with self.db.session() as session:
            # The chain head lock serialises this with every other append (and every other sweeper), so the
            # check below and the outcome row are one step: an intent is never closed twice.
            self.audit.lock_chain(session)
            if self.audit.settled(intent, session=session):
                return None
            if intent.request_id is not None and self.requests.is_claimed(session, intent.request_id):
                return None
            details: dict[str, Any] = {
                "reason": RECOVERED_REASON,
                "recovered": True,
                "intent_id": intent.id,
                "intended_at": iso_timestamp(intent.created_at),
                "name": str(intent.details.get("name") or ""),
            }
            actor = Actor("system", "snapshot-bot", intent.team_id, intent.channel_id)
            self.audit.append(
                actor.entry(
                    NEEDS_CHECK_ACTIONS[kind],
                    Outcome.UNKNOWN,
                    server_id=intent.server_id,
                    snapshot_id=intent.snapshot_id,
                    request_id=intent.request_id,
                    operation_id=intent.operation_id,
                    details={**details, "on_behalf_of": intent.actor_id},
                ),
                session=session,
            )
            if intent.request_id is not None:
                # Same rule as ApprovalService.flag_stale_executions: flagged, never re-sent.
                self.requests.flag_executing(session, intent.request_id, REQUEST_MESSAGE, now)
        return _unresolved(intent, kind, flagged_at=now)

    # ---- reading (for /snapshot pending) -------------------------------------------------------------------
    def unresolved(self, *, days: int = SHOW_DAYS, limit: int = 20) -> list[Unresolved]:
        """Operations the sweep flagged in the last `days` days, newest first (rebuilt from the flag rows)."""
        since = as_utc(self.clock()) - timedelta(days=days)
        kinds = {action: kind for kind, action in NEEDS_CHECK_ACTIONS.items()}
        rows = self.audit.flagged_since(kinds, since, outcome=Outcome.UNKNOWN, marker="recovered", limit=limit)
        items: list[Unresolved] = []
        for row in rows:
            details = row.details
            try:
                intended_at = datetime.fromisoformat(str(details.get("intended_at", "")).replace("Z", "+00:00"))
            except ValueError:
                intended_at = row.created_at
            items.append(
                Unresolved(
                    intent_id=int(details.get("intent_id") or 0),
                    operation_id=str(row.operation_id or ""),
                    kind=kinds[Action(row.action)],
                    actor_id=str(details.get("on_behalf_of") or "system"),
                    channel_id=row.channel_id,
                    server_id=row.server_id,
                    snapshot_id=row.snapshot_id,
                    request_id=row.request_id,
                    name=str(details.get("name") or ""),
                    intended_at=intended_at,
                    flagged_at=row.created_at,
                )
            )
        return items


def _unresolved(intent: AuditRecord, kind: str, *, flagged_at: datetime | None) -> Unresolved:
    assert intent.operation_id is not None
    return Unresolved(
        intent_id=intent.id,
        operation_id=intent.operation_id,
        kind=kind,
        actor_id=intent.actor_id,
        channel_id=intent.channel_id,
        server_id=intent.server_id,
        snapshot_id=intent.snapshot_id,
        request_id=intent.request_id,
        name=str(intent.details.get("name") or ""),
        intended_at=intent.created_at,
        flagged_at=flagged_at,
    )

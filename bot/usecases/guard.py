"""Access, channel and rate-limit checks shared by every use case; every refusal is audited (a request from
another workspace or app, refused by the Slack side, is recorded here too: `record_foreign_origin`).

Rules kept here:
- The channel allow-list applies to everything typed or clicked, except approval decisions (approve/reject) made
  in the approval channel or outside any channel (App Home): those are where the card's buttons live.
- The rate limit is counted and the action recorded in one transaction under a per-user lock
  (`claim_rate`, `record_mutation`), so concurrent requests, from any replica, never get past the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from bot.usecases.access import AccessPolicy, Permission
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput, Refused
from bot.usecases.ratelimit import RateLimiter
from storage.audit import Action, AuditEntry, AuditLog, AuditRecord, Outcome
from storage.db import Transaction, abandon, as_utc
from storage.limits import count_started

# The actions a rate limit counts: the starts of state changes, including deletes sent to approval.
MUTATING_ACTIONS: tuple[str, ...] = (
    Action.CREATE_REQUESTED,
    Action.DELETE_REQUESTED,
    Action.RESTORE_REQUESTED,
    Action.DELETE_APPROVAL_REQUESTED,
)
# A delete carried out after its approval was counted when it was asked for (`delete.approval_requested`).
COUNTED_ONCE_PER_REQUEST: tuple[str, ...] = (Action.DELETE_REQUESTED,)


class Guard:
    def __init__(
        self,
        access: AccessPolicy,
        limiter: RateLimiter,
        audit: AuditLog,
        *,
        extra_channels: Iterable[str | None] = (),
    ) -> None:
        self.access = access
        self.limiter = limiter
        self.audit = audit
        # Where approval decisions are accepted even when not on the allow-list (the approval channel).
        self._decision_channels = {c for c in extra_channels if c}

    def require(
        self,
        actor: Actor,
        permission: Permission,
        *,
        mutating: bool = False,
        server_id: int | None = None,
        snapshot_id: int | None = None,
        request_id: int | None = None,
    ) -> None:
        """Raise `Refused` (after auditing it) unless `actor` may do `permission` here and now."""
        targets = {"server_id": server_id, "snapshot_id": snapshot_id, "request_id": request_id}
        if not self._decision_exempt(actor, permission):
            channel = self.access.check_channel(actor.channel_id)
            if not channel.allowed:
                self.audit.append(
                    actor.entry(
                        Action.REFUSED_CHANNEL,
                        Outcome.REFUSED,
                        details={"permission": str(permission)},
                        **targets,
                    )
                )
                raise Refused(channel.reason)
        decision = self.access.check(actor.user_id, permission)
        if not decision.allowed:
            self.audit.append(
                actor.entry(
                    Action.REFUSED_PERMISSION,
                    Outcome.REFUSED,
                    details={
                        "permission": str(permission),
                        "required_role": decision.required_role.name.lower() if decision.required_role else None,
                        "reason": str(decision.reason),
                        "resolution_error": decision.error,
                    },
                    **targets,
                )
            )
            raise Refused(decision.reason)
        if mutating:
            rate = self.limiter.check(actor.user_id)
            if not rate.allowed:
                self._refuse_rate(actor, str(permission), rate.retry_after_seconds, targets)
                raise Refused(rate.message)

    def record_invalid(self, actor: Actor, operation: str, error: InvalidInput) -> None:
        """Audit input refused before anything was looked up or sent (`refused.validation`): e.g. a malformed id
        typed or clicked, refused where it came in (bot/slack/listeners/ids.py). The refusal itself is the caller's."""
        details = {"operation": operation, "field": error.field, "error": str(error)[:500]}
        self.audit.append(actor.entry(Action.REFUSED_VALIDATION, Outcome.REFUSED, details=details))

    def record_foreign_origin(self, actor: Actor, details: dict[str, str | None]) -> None:
        """Audit a request refused because it came from another workspace, org or app (`refused.team`).

        The refusal itself is the Slack side's (bot/slack/middleware/workspace.py answers before any listener
        runs); this only records it, with what gave the request away in `details`.
        """
        self.audit.append(actor.entry(Action.REFUSED_TEAM, Outcome.REFUSED, details=details))

    def record_mutation(self, actor: Actor, entry: AuditEntry) -> AuditRecord:
        """Append `entry` (the start of a state change, committed) unless it takes `actor` past the rate limit."""
        with self.audit.db.session() as session:
            self.claim_rate(actor, session, entry.action, server_id=entry.server_id, snapshot_id=entry.snapshot_id)
            return self.audit.append(entry, session=session)

    def claim_rate(
        self,
        actor: Actor,
        session: Transaction,
        what: str,
        *,
        server_id: int | None = None,
        snapshot_id: int | None = None,
    ) -> None:
        """The binding rate-limit check, first thing in the transaction that then records the counted action.

        The count runs under the user's lock (see storage.limits), which the transaction keeps until it commits
        the row it counts: `require` alone is only a pre-check, and many requests passing it at once would all
        get through. At the limit, `session` (which must hold nothing else yet) is rolled back, the refusal is
        audited on its own, and `Refused` is raised.
        """
        since = self.limiter.window_start()
        if since is None:
            return
        started = count_started(
            session, actor.user_id, MUTATING_ACTIONS, since, lock=True, once_per_request=COUNTED_ONCE_PER_REQUEST
        )
        if started < self.limiter.limit_count:
            return
        abandon(session)  # lets the lock go before anything slower (the retry-after lookup, the refusal row)
        rate = self.limiter.decide(actor.user_id, started)
        self._refuse_rate(actor, what, rate.retry_after_seconds, {"server_id": server_id, "snapshot_id": snapshot_id})
        raise Refused(rate.message)

    def _decision_exempt(self, actor: Actor, permission: Permission) -> bool:
        """Approve/reject clicks on the card (approval channel) or from App Home (no channel) skip the allow-list;
        commands typed in the approval channel do not."""
        if permission is not Permission.APPROVE:
            return False
        return actor.channel_id is None or actor.channel_id in self._decision_channels

    def _refuse_rate(
        self,
        actor: Actor,
        what: str,
        retry_after: int,
        targets: dict[str, int | None],
    ) -> None:
        self.audit.append(
            actor.entry(
                Action.REFUSED_RATE_LIMITED,
                Outcome.REFUSED,
                details={"permission": what, "retry_after_seconds": retry_after},
                **targets,
            )
        )


def count_mutations(audit: AuditLog):  # type: ignore[no-untyped-def]
    """The rate limiter's counter: mutating actions a user started since a moment, from the audit table."""

    def count_recent(user_id: str, since: datetime) -> int:
        with audit.db.begin(readonly=True) as conn:
            return count_started(
                conn, user_id, MUTATING_ACTIONS, since, lock=False, once_per_request=COUNTED_ONCE_PER_REQUEST
            )

    return count_recent


def oldest_counted_mutation(audit: AuditLog, count: int) -> Callable[[str, datetime], datetime | None]:
    """The rate limiter's `oldest_in_window`: when the action whose leaving the window frees a slot started.

    That is the `count`-th newest mutating action in the window (the oldest one, at the limit; further back
    when concurrent requests pushed the user over it), so "try again in" is neither too short nor too long.
    Only runs when a request is refused, and reads at most `count` rows per action.
    """

    def oldest_in_window(user_id: str, since: datetime) -> datetime | None:
        started = sorted(
            (
                as_utc(record.created_at)
                for action in MUTATING_ACTIONS
                for record in audit.query(actor_id=user_id, action=action, limit=count)
            ),
            reverse=True,
        )
        in_window = [moment for moment in started[:count] if moment >= as_utc(since)]
        return in_window[-1] if in_window else None

    return oldest_in_window

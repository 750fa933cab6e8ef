"""Access, channel and rate-limit checks shared by every use case; every refusal is audited."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from bot.usecases.access import AccessPolicy, Permission
from bot.usecases.context import Actor
from bot.usecases.errors import Refused
from bot.usecases.ratelimit import RateLimiter
from storage.audit import Action, AuditLog, Outcome
from storage.db import as_utc

# The actions a rate limit counts: the starts of state changes.
MUTATING_ACTIONS: tuple[str, ...] = (
    Action.CREATE_REQUESTED,
    Action.DELETE_REQUESTED,
    Action.RESTORE_REQUESTED,
)


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
        self._extra_channels = {c for c in extra_channels if c}

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
        if actor.channel_id not in self._extra_channels:
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
                        "reason": decision.reason,
                        "resolution_error": decision.error,
                    },
                    **targets,
                )
            )
            raise Refused(decision.reason)
        if mutating:
            rate = self.limiter.check(actor.user_id)
            if not rate.allowed:
                self.audit.append(
                    actor.entry(
                        Action.REFUSED_RATE_LIMITED,
                        Outcome.REFUSED,
                        details={
                            "permission": str(permission),
                            "retry_after_seconds": rate.retry_after_seconds,
                        },
                        **targets,
                    )
                )
                raise Refused(rate.message)


def count_mutations(audit: AuditLog):  # type: ignore[no-untyped-def]
    """The rate limiter's counter: mutating actions a user started since a moment, from the audit table."""

    def count_recent(user_id: str, since: datetime) -> int:
        return audit.count_actions(user_id, MUTATING_ACTIONS, since)

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

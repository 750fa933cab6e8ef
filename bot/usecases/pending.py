"""`/snapshot pending` as plain data: the open requests, whether the viewer may approve, and the operations a
crash left with an unknown outcome.

Rules it keeps: the viewer needs the list permission (refused and audited by the Guard otherwise, before anything is
read); the crash-cut operations are shown to everyone who may list, since a human must check them. Wording, buttons
and links to the cards are the Slack renderer's (bot/slack/listeners/approvals.py, bot/slack/blocks/approvals.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.usecases.access import AccessPolicy, Permission
from bot.usecases.approvals import ApprovalService, RequestView
from bot.usecases.context import Actor
from bot.usecases.guard import Guard
from bot.usecases.recovery import Recovery, Unresolved


@dataclass(frozen=True)
class PendingOverview:
    requests: list[RequestView]  # the newest open requests (at most 100)
    viewer_can_approve: bool
    unresolved: list[Unresolved]  # operations cut off by a crash: nothing to approve, but someone must check
    total: int = 0  # how many requests are open in all (more than `requests` holds when there are over 100)
    unresolved_more: bool = False  # more operations with an unknown outcome than `unresolved` holds


UNRESOLVED_READ = 20  # the newest operations with an unknown outcome read for the list (one more tells "more")


class PendingQueries:
    def __init__(self, *, guard: Guard, access: AccessPolicy, approvals: ApprovalService, recovery: Recovery) -> None:
        self.guard = guard
        self.access = access
        self.approvals = approvals
        self.recovery = recovery

    def overview(self, actor: Actor) -> PendingOverview:
        self.guard.require(actor, Permission.LIST)
        requests = list(self.approvals.open_requests())
        total = max(len(requests), sum(self.approvals.open_counts().values()))
        can_approve = self.access.check(actor.user_id, Permission.APPROVE).allowed
        unresolved = list(self.recovery.unresolved(limit=UNRESOLVED_READ + 1))
        return PendingOverview(
            requests,
            can_approve,
            unresolved[:UNRESOLVED_READ],
            total,
            unresolved_more=len(unresolved) > UNRESOLVED_READ,
        )

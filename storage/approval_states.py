"""The vocabulary of approval requests as stored: what a request asks for (`RequestKind`) and where it is
(`RequestState`). Both are `StrEnum`s: a member equals the string in its column, so rows written before the enum
existed read the same. Which states are open (shown as waiting) and which hold an executor's claim are named here.
"""

from __future__ import annotations

from enum import StrEnum


class RequestKind(StrEnum):
    """What a request asks a second person to approve; each has one execution strategy (bot/usecases/approval_*)."""

    RESTORE = "restore"
    DELETE = "delete"
    SCHEDULE = "schedule"  # a schedule made or changed while deletes need approval: it names no snapshot


class RequestState(StrEnum):
    """Where an approval request is. `OPEN` ones are shown as waiting; the rest are final."""

    PENDING = "pending"
    EXECUTING = "executing"  # approved; the executor holds the claim and re-checks the snapshot (nothing sent)
    SENDING = "sending"  # the call may have gone out to VPS.org
    NEEDS_CHECK = "needs_check"  # outcome unknown: a human must check the server; never re-sent
    EXECUTED = "executed"
    FAILED = "failed"
    STALE = "stale"  # the snapshot no longer matched what was approved: nothing sent
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


OPEN_STATES = (RequestState.PENDING, RequestState.EXECUTING, RequestState.SENDING, RequestState.NEEDS_CHECK)
CLAIMED_STATES = (RequestState.EXECUTING, RequestState.SENDING)

"""Which requests a new one would collide with: the one query `ApprovalRequests.in_the_way` runs.

Rules kept here: waiting or claimed requests of the same kind on the same snapshot collide; for a restore also the
waiting or claimed restores of the same server, and its executed restores still being followed (the server is
being restored). `needs_check` never collides: nothing in the bot closes it, so it would block a server for good.
"""

from __future__ import annotations

from sqlalchemy import Select, and_, exists, or_, select

from storage.approval_states import CLAIMED_STATES, RequestKind, RequestState
from storage.models import ApprovalRequest, TrackedOperation
from storage.operations import OperationKind, OperationState


def in_the_way_of(kind: str, server_id: int, snapshot_id: int) -> Select[ApprovalRequest]:
    """The requests a new one of `kind` on this snapshot (and, for a restore, this server) collides with."""
    still_restoring = and_(
        ApprovalRequest.state == RequestState.EXECUTED,
        exists().where(
            TrackedOperation.request_id == ApprovalRequest.id,
            TrackedOperation.kind == OperationKind.RESTORE,
            TrackedOperation.state == OperationState.TRACKING,
        ),
    )
    # `needs_check` is left out: nothing in the bot closes it, so it would block the server for good; a restore
    # it may have started shows as `restoring` in VPS.org's server list instead.
    waiting = (RequestState.PENDING, *CLAIMED_STATES)
    same_snapshot = and_(
        ApprovalRequest.kind == kind,
        ApprovalRequest.snapshot_id == snapshot_id,
        ApprovalRequest.state.in_(waiting),
    )
    matches = [same_snapshot]
    if kind == RequestKind.RESTORE:
        matches.append(
            and_(
                ApprovalRequest.kind == RequestKind.RESTORE,
                ApprovalRequest.server_id == server_id,
                or_(ApprovalRequest.state.in_(waiting), still_restoring),
            )
        )
    return select(ApprovalRequest).where(or_(*matches))

"""Retention inside the quota: which of a schedule's snapshots may go, and deleting them through the audited path.

Rules this module keeps:
- A snapshot is a schedule's own only when BOTH its name starts with `auto-<schedule id>-` AND one of that
  schedule's slot claims recorded its id. A manual snapshot named like ours, another schedule's snapshot, or one
  whose claim is gone is never touched.
- A snapshot named by an open approval request (waiting, executing, needing a check) is never deleted.
- After a new snapshot has completed, the schedule keeps its newest `keep` own snapshots (newest by creation
  time, then id) and deletes the older ones; protected ones count towards `keep` but are never deleted.
- `rotation_victim` picks the schedule's own oldest deletable snapshot, for on_full=rotate on a full server.
- Deletes go through SnapshotService.execute_delete (intent row, the call once, outcome row), as the system on
  behalf of the schedule's creator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.usecases.bot_names import SCHEDULE_PREFIX
from bot.usecases.context import Actor
from bot.usecases.errors import UserFacingError
from bot.usecases.snapshots import SnapshotService
from bot.vps.models import Snapshot

_OLDEST = datetime.min.replace(tzinfo=UTC)


def name_prefix(schedule_id: int) -> str:
    return f"{SCHEDULE_PREFIX}{schedule_id}-"


@dataclass(frozen=True)
class Ownership:
    """What makes a snapshot a schedule's own, and what must never be deleted."""

    schedule_id: int
    claimed_ids: frozenset[int]  # ids recorded by this schedule's slot claims
    protected_ids: frozenset[int]  # named by an open approval request

    def owns(self, snapshot: Snapshot) -> bool:
        return snapshot.id in self.claimed_ids and snapshot.name.startswith(name_prefix(self.schedule_id))


def _newest_first(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    return sorted(snapshots, key=lambda s: (s.created_at or _OLDEST, s.id), reverse=True)


def surplus(snapshots: Iterable[Snapshot], ownership: Ownership, keep: int) -> list[Snapshot]:
    """The schedule's own snapshots beyond its newest `keep`, oldest last; protected ones left out."""
    own = _newest_first(s for s in snapshots if ownership.owns(s))
    return [s for s in own[max(keep, 0) :] if s.id not in ownership.protected_ids]


def rotation_victim(snapshots: Iterable[Snapshot], ownership: Ownership) -> Snapshot | None:
    """The schedule's own oldest snapshot that may be deleted, or None."""
    deletable = [s for s in _newest_first(snapshots) if ownership.owns(s) and s.id not in ownership.protected_ids]
    return deletable[-1] if deletable else None


@dataclass(frozen=True)
class Deletion:
    snapshot: Snapshot
    error: str = ""  # empty when the delete succeeded


def delete_all(
    snapshots_service: SnapshotService, actor: Actor, victims: Iterable[Snapshot], details: dict[str, object]
) -> list[Deletion]:
    """Delete each victim through the audited path; one failing does not stop the others."""
    done: list[Deletion] = []
    for snapshot in victims:
        try:
            snapshots_service.execute_delete(actor, snapshot, scheduled=details)
            done.append(Deletion(snapshot))
        except UserFacingError as error:
            done.append(Deletion(snapshot, str(error)))
    return done

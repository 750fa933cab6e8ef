"""Pinned snapshots: every SQL statement about them.

Rules this repository keeps (bot/usecases/pins.py decides who may pin and what is audited):
- One pin per snapshot id (the primary key): pinning twice keeps the first pin (who and why) and says so.
- Unpinning deletes the row; the audit trail keeps the history.
- A pin names a snapshot id only. One on a snapshot VPS.org no longer lists protects nothing and harms nothing:
  readers show only the pins of snapshots they listed, and it is left in place (`/snapshot unpin` removes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from storage.db import Database, as_utc
from storage.models import SnapshotPin


@dataclass(frozen=True)
class PinRow:
    snapshot_id: int
    server_id: int
    snapshot_name: str
    pinned_by: str
    reason: str
    pinned_at: datetime


class Pins:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, pin: PinRow) -> tuple[PinRow, bool]:
        """Store `pin`; (the stored pin, True) — or (the pin already there, False), which is left as it was."""
        try:
            with self.db.session() as session:
                existing = session.get(SnapshotPin, pin.snapshot_id)
                if existing is not None:
                    return _pin(existing), False
                session.add(SnapshotPin(**pin.__dict__))
        except IntegrityError:  # another replica pinned it between our read and our insert
            held = self.get(pin.snapshot_id)
            if held is None:
                raise
            return held, False
        return pin, True

    def remove(self, snapshot_id: int) -> PinRow | None:
        """Unpin; the pin that was removed, or None when there was none."""
        with self.db.session() as session:
            row = session.get(SnapshotPin, snapshot_id)
            if row is None:
                return None
            removed = _pin(row)
            session.execute(delete(SnapshotPin).where(SnapshotPin.snapshot_id == snapshot_id))
            return removed

    def get(self, snapshot_id: int) -> PinRow | None:
        with self.db.session(readonly=True) as session:
            row = session.get(SnapshotPin, snapshot_id)
            return _pin(row) if row is not None else None

    def all(self) -> dict[int, PinRow]:
        with self.db.session(readonly=True) as session:
            return {r.snapshot_id: _pin(r) for r in session.scalars(select(SnapshotPin)).all()}

    def pinned_ids(self) -> frozenset[int]:
        with self.db.session(readonly=True) as session:
            return frozenset(session.scalars(select(SnapshotPin.snapshot_id)).all())


def _pin(row: SnapshotPin) -> PinRow:
    return PinRow(
        snapshot_id=row.snapshot_id,
        server_id=row.server_id,
        snapshot_name=row.snapshot_name,
        pinned_by=row.pinned_by,
        reason=row.reason,
        pinned_at=as_utc(row.pinned_at),
    )

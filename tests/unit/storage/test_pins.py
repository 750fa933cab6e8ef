"""storage/pins.py on SQLite and PostgreSQL: one pin per snapshot (the first kept), unpin."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.db import Database
from storage.pins import PinRow, Pins

AT = datetime(2026, 12, 8, 5, 0, tzinfo=UTC)


def pin(snapshot_id: int, by: str = "U0ALICE", reason: str = "why", server_id: int = 12345) -> PinRow:
    return PinRow(snapshot_id, server_id, f"snap-{snapshot_id}", by, reason, AT)


def test_one_pin_per_snapshot_the_first_is_kept(database: Database) -> None:
    pins = Pins(database)
    assert pins.add(pin(798)) == (pin(798), True)
    held, created = pins.add(pin(798, by="U0BOB", reason="other"))
    assert not created and held.pinned_by == "U0ALICE" and held.reason == "why" and held.pinned_at == AT
    assert pins.pinned_ids() == frozenset({798})
    assert pins.all() == {798: pin(798)}


def test_unpin_removes_and_says_what_was_there(database: Database) -> None:
    pins = Pins(database)
    pins.add(pin(798, reason="<!channel> *x*"))
    assert pins.remove(798) == pin(798, reason="<!channel> *x*")  # stored as typed; rendering makes it inert
    assert pins.remove(798) is None
    assert pins.get(798) is None and pins.pinned_ids() == frozenset()

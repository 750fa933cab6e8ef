"""`/snapshot pin <id> [reason…]` and `/snapshot unpin <id>`: protect a snapshot from retention and deletes.

Rules this module keeps:
- Pinning and unpinning need the `pin` permission (operators). Identity is the Slack user id.
- A pin is stored only for a snapshot VPS.org lists now (asked, not cached): an unknown id gets a clear answer and
  nothing is stored. A pin that outlives its snapshot is harmless (it names an id nobody will see again).
- The reason is the pinner's text: at most MAX_PIN_REASON characters, stored as typed, shown only quoted.
- Every pin and unpin is audited: the intent before the row changes, the outcome after (`snapshot.pinned`,
  `snapshot.unpinned`), both with the same operation id. Pinning a pinned snapshot changes nothing and says who
  pinned it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.usecases.access import Permission
from bot.usecases.context import Actor, new_operation_id, utcnow
from bot.usecases.errors import InvalidInput, NotFoundError
from bot.usecases.guard import Guard
from bot.usecases.pin_rules import MAX_PIN_REASON
from bot.usecases.snapshots import SnapshotService
from bot.usecases.wording import Text, command
from storage.audit import Action, AuditLog, Outcome, valid_utf8
from storage.pins import PinRow, Pins


@dataclass(frozen=True)
class PinResult:
    pin: PinRow
    created: bool  # False: it was already pinned (the pin shown is the one that was there)


@dataclass
class PinService:
    store: Pins
    snapshots: SnapshotService
    audit: AuditLog
    guard: Guard
    clock: Callable[[], datetime] = utcnow

    def pin(self, actor: Actor, snapshot_id: int, reason: str = "") -> PinResult:
        clean = valid_utf8(reason or "").strip()
        if len(clean) > MAX_PIN_REASON:
            error = InvalidInput(
                f"The reason is too long: {len(clean)} characters, at most {MAX_PIN_REASON}.", field="reason"
            )
            self.guard.record_invalid(actor, "pin", error)
            raise error
        self.guard.require(actor, Permission.PIN, mutating=True, snapshot_id=snapshot_id)
        held = self.store.get(snapshot_id)
        if held is not None:
            return PinResult(held, created=False)
        snapshot = self.snapshots.find_snapshot(snapshot_id)  # NotFoundError / CouldNotConfirm: nothing stored
        operation_id = new_operation_id()
        details = {"name": snapshot.name, "reason": clean}
        targets = {"server_id": snapshot.server.id, "snapshot_id": snapshot.id, "operation_id": operation_id}
        self.guard.record_mutation(
            actor, actor.entry(Action.SNAPSHOT_PINNED, Outcome.INTENT, **targets, details=details)
        )
        pin = PinRow(snapshot.id, snapshot.server.id, snapshot.name, actor.user_id, clean, self.clock())
        try:
            stored, created = self.store.add(pin)
        except Exception as error:
            self.audit.append(
                actor.entry(Action.SNAPSHOT_PINNED, Outcome.FAILED, **targets, details={**details, "error": str(error)})
            )
            raise
        outcome = details if created else {**details, "already_pinned_by": stored.pinned_by}
        self.audit.append(actor.entry(Action.SNAPSHOT_PINNED, Outcome.OK, **targets, details=outcome))
        return PinResult(stored, created)

    def unpin(self, actor: Actor, snapshot_id: int) -> PinRow:
        self.guard.require(actor, Permission.PIN, mutating=True, snapshot_id=snapshot_id)
        held = self.store.get(snapshot_id)
        if held is None:
            raise NotFoundError(
                Text("Snapshot {} is not pinned; nothing was changed. {} shows the pins.").format(
                    snapshot_id, command("list")
                )
            )
        operation_id = new_operation_id()
        targets = {"server_id": held.server_id, "snapshot_id": snapshot_id, "operation_id": operation_id}
        details = {"name": held.snapshot_name, "pinned_by": held.pinned_by, "reason": held.reason}
        self.guard.record_mutation(
            actor, actor.entry(Action.SNAPSHOT_UNPINNED, Outcome.INTENT, **targets, details=details)
        )
        try:
            removed = self.store.remove(snapshot_id)
        except Exception as error:
            self.audit.append(
                actor.entry(
                    Action.SNAPSHOT_UNPINNED, Outcome.FAILED, **targets, details={**details, "error": str(error)}
                )
            )
            raise
        self.audit.append(
            actor.entry(
                Action.SNAPSHOT_UNPINNED, Outcome.OK, **targets, details={**details, "was_pinned": removed is not None}
            )
        )
        return removed or held

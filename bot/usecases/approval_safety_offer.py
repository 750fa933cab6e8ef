"""The safety snapshot as it is offered and chosen: what a restore's card offers, and what an approver's click asks.

Rules kept here:
- `RESTORE_SAFETY_SNAPSHOT=off` offers nothing; `auto` offers one (on by default) when the server has a free slot,
  and a listing that fails or is incomplete counts as free (the approval re-checks before creating anything);
  `always` requires one: an approval asking for none is refused, and a full server blocks the restore.
- A delete that succeeded on a server re-checks the offer of its pending restores whose card said "Server full"
  (`refresh_offers_on_server`), so their cards can be redrawn with the safety snapshot on offer.
- Each part of the approval service takes only what it uses: this one the ledger, the guard, the snapshot service
  (the per-server limit) and the VPS.org client.
- Freeing a slot for it is an approver's choice and only names the snapshot to delete: the oldest, never the one to
  restore nor one named by another open request; the delete itself takes the normal path (its own permission
  check, and approval when deletes need one).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.usecases.access import Permission
from bot.usecases.approval_base import RequestView, log, state_words
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_terms import RequestKind, RequestState, SafetyChoice, SafetyMode, SafetyOffer
from bot.usecases.context import Actor
from bot.usecases.errors import Refused, doing_with, explain_vps_error
from bot.usecases.guard import Guard
from bot.usecases.snapshots import SnapshotService
from bot.vps.client import SnapshotList, VpsClient
from bot.vps.errors import VpsError


@dataclass(frozen=True)
class SlotToFree:
    request_id: int
    id: int  # the snapshot to delete
    name: str


class SafetyOffers:
    def __init__(self, *, ledger: RequestLedger, guard: Guard, snapshots: SnapshotService, vps: VpsClient) -> None:
        self.ledger = ledger
        self.guard = guard
        self.snapshots = snapshots
        self.vps = vps

    @property
    def mode(self) -> SafetyMode:
        return self.ledger.policy.safety_mode

    # ---- asking: what the card offers --------------------------------------------------------------------
    def safety_offer(self, kind: RequestKind, server_id: int, listing: SnapshotList | None = None) -> SafetyOffer:
        """Whether the card offers a safety snapshot: `free` when the server has a slot now, `full` when not.

        `listing`: the account's complete snapshot list, just read (a restore request's look-up), counted instead
        of listing the server's snapshots again. A listing that fails or is incomplete counts as `free`: the
        approval re-checks before creating anything.
        """
        if kind != RequestKind.RESTORE or self.mode == SafetyMode.OFF:
            return SafetyOffer.NONE
        if listing is not None and listing.complete:
            on_server = sum(1 for s in listing if s.server.id == server_id)
            return SafetyOffer.FULL if on_server >= self.snapshots.limit_per_server else SafetyOffer.FREE
        try:
            deadline = self.recheck_deadline()
            existing = self.vps.list_snapshots(server_id, deadline=deadline)
        except VpsError as error:
            log.info("safety offer for server %s: could not list its snapshots (%s)", server_id, error)
            return SafetyOffer.FREE
        if existing.complete and len(existing) >= self.snapshots.limit_per_server:
            return SafetyOffer.FULL
        return SafetyOffer.FREE

    # ---- approving: what the approver chose -------------------------------------------------------------
    def safety_choice(self, kind: RequestKind, offer: SafetyOffer, asked: SafetyChoice) -> SafetyChoice:
        """The recorded choice ("snapshot" | "none") for an approval click asking for `asked` (a SafetyChoice)."""
        if kind != RequestKind.RESTORE or self.mode == SafetyMode.OFF:
            return SafetyChoice.NONE
        if self.mode == SafetyMode.ALWAYS:
            if asked == SafetyChoice.NONE:
                raise Refused(
                    "A safety snapshot is required before every restore here (RESTORE_SAFETY_SNAPSHOT=always); "
                    "nothing was done."
                )
            return SafetyChoice.SNAPSHOT
        if asked in (SafetyChoice.SNAPSHOT, SafetyChoice.NONE):
            return SafetyChoice(asked)
        return SafetyChoice.NONE if offer == SafetyOffer.FULL else SafetyChoice.SNAPSHOT

    # ---- a full server: the approver frees a slot ------------------------------------------------------------
    def oldest_to_free(self, actor: Actor, rid: int) -> SlotToFree:
        """The snapshot to delete so a pending restore's server gets a slot for its safety snapshot: the oldest
        one, never the snapshot to restore nor one named by another open request. Approvers choose; the delete
        itself goes through the normal path (its own permission check, and approval when deletes need one)."""
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        view = self.ledger.get(rid)
        if view.kind != RequestKind.RESTORE or view.state != RequestState.PENDING:
            raise Refused(f"Request #{rid} is already {state_words(view.state)}; nothing was done.")
        try:
            existing = self.vps.list_snapshots(view.server_id, deadline=self.recheck_deadline())
        except VpsError as error:
            raise explain_vps_error(error, doing_with("listing the snapshots of", view.server_name)) from error
        on_server = [s for s in existing if s.server.id == view.server_id]
        if existing.complete and len(on_server) < self.snapshots.limit_per_server:
            self.refresh_safety_offer(rid)
            raise Refused(
                f"The server has a free slot now ({len(on_server)} of {self.snapshots.limit_per_server} snapshots): "
                "nothing was deleted. Approve with a safety snapshot."
            )
        with self.ledger.db.session(readonly=True) as session:
            # Every open request on the server, not a newest page: the 101st would leave its snapshot unprotected.
            protected = self.ledger.requests.snapshots_named_by_open_requests(session, view.server_id) | {
                view.snapshot_id
            }
        protected |= self.snapshots.pinned_ids()  # a pinned snapshot is never offered
        candidates = [s for s in on_server if s.id not in protected]
        if not candidates:
            raise Refused(
                "No snapshot of this server can be freed: each one is the snapshot to restore, pinned, or named by "
                "an open request. Nothing was deleted."
            )
        oldest = min(candidates, key=lambda s: (s.created_at is None, s.created_at or view.created_at, s.id))
        return SlotToFree(rid, oldest.id, oldest.name)

    def refresh_safety_offer(self, request_id: int) -> RequestView | None:
        """Re-check a pending restore's free slot (after a delete) and store what its card offers now."""
        view = self.ledger.get(request_id)
        if view.kind != RequestKind.RESTORE or view.state != RequestState.PENDING:
            return None
        offer = self.safety_offer(view.kind, view.server_id)
        with self.ledger.db.session() as session:
            row = self.ledger.locked(session, request_id)
            if row.state != RequestState.PENDING:
                return None
            return self.ledger.view(self.ledger.requests.record_offer(session, request_id, offer))

    def refresh_offers_on_server(self, server_id: int) -> list[RequestView]:
        """After a delete on `server_id` succeeded: its pending restores whose card said "Server full", their offer
        checked again (one listing of the server) and stored; returned when it changed, for their cards to be
        redrawn. Never raises: the delete stands, and an approval re-checks the slot anyway."""
        try:
            return self._refresh_offers_on_server(server_id)
        except Exception:
            log.exception("server %s: could not re-check the safety offers of its pending restores", server_id)
            return []

    def _refresh_offers_on_server(self, server_id: int) -> list[RequestView]:
        if self.mode == SafetyMode.OFF:
            return []
        with self.ledger.db.session(readonly=True) as session:
            waiting = self.ledger.requests.pending_restores_waiting_for_a_slot(session, server_id)
        if not waiting:
            return []  # nothing to redraw: no listing
        offer = self.safety_offer(RequestKind.RESTORE, server_id)
        if offer == SafetyOffer.FULL:
            return []
        changed: list[RequestView] = []
        for rid in waiting:
            with self.ledger.db.session() as session:
                row = self.ledger.locked(session, rid)
                if row.state != RequestState.PENDING or row.safety_offer == offer:
                    continue
                changed.append(self.ledger.view(self.ledger.requests.record_offer(session, rid, offer)))
        return changed

    def recheck_deadline(self) -> float:
        """When a listing made now must have answered (VPS.org client's clock)."""
        return self.vps.clock() + self.ledger.policy.recheck_deadline.total_seconds()


__all__ = ["SafetyChoice", "SafetyMode", "SafetyOffer", "SafetyOffers", "SlotToFree"]

"""The safety snapshot: an undo for every restore (`RESTORE_SAFETY_SNAPSHOT=auto|always|off`).

Before an approved restore is sent, the bot takes `pre-restore-<request id>` of the server it overwrites and follows
it until VPS.org says it is completed; only then may the restore go on to the one check-and-mark before its call.

Rules kept here:
- The step runs inside the restore's claim: the request stays `executing` and every write matches the fencing
  token and an unexpired claim (database clock), renewed between polls. An executor that lost its claim stops,
  and the restore is never sent by it. Nothing here marks a request `sending`: that stays the one check-and-mark
  in approval_execution, reached only after this step said the safety snapshot is completed.
- Each step is audited under the request's operation id (the claim token): `create.requested` intent (committed
  with the `creating` mark, before the call) → `create.succeeded` / `create.failed` (outcome `unknown` when the
  answer was lost) → `create.completed`, or `create.vanished` / `create.timeout`.
- The safety snapshot failed, its outcome is unknown, it never completed by `RESTORE_SAFETY_TIMEOUT_SECONDS`
  (the injected `monotonic` clock), or the server is full while one is required: the restore is NOT sent and
  the request goes back to `pending` saying why (approve again, or cancel).
- Approving again never makes a second safety snapshot when the first one exists: a `pre-restore-<id>` that this
  request made (its recorded id, or, when the create's answer was lost, one with that name made after the
  request) is adopted and followed instead.
- A crash anywhere in the step leaves the request `executing` under a claim that expires: the flagger puts it
  back to `pending` (the restore was never sent), so the restore is sent at most once and never without the
  safety snapshot the approver chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from bot.usecases.access import Permission
from bot.usecases.approval_base import ApprovalBase, RequestView, log, state_words
from bot.usecases.audited_call import CallResult, audited_call
from bot.usecases.context import Actor
from bot.usecases.errors import Refused, doing_with, explain_vps_error
from bot.usecases.wording import Text, code, command, emphasis, sentence
from bot.vps.errors import DeadlineExceeded, VpsError
from bot.vps.models import CreatedSnapshot, Snapshot
from storage.approvals import RequestState
from storage.audit import Action, Outcome

SAFETY_PREFIX = "pre-restore-"


class SafetyMode(StrEnum):
    AUTO = "auto"  # offered, and on by default, when the server has a free slot
    ALWAYS = "always"  # required: a full server blocks the restore until a slot is free
    OFF = "off"


class SafetyChoice(StrEnum):
    """What an approver's click asks for: the card's default, a safety snapshot first, or none."""

    DEFAULT = "default"
    SNAPSHOT = "snapshot"
    NONE = "none"


class SafetyState(StrEnum):
    NONE = ""
    CREATING = "creating"  # the create may have been sent; its answer is not recorded yet
    FOLLOWING = "following"  # created; waiting for VPS.org to say it is completed
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the create's outcome is unknown
    TIMEOUT = "timeout"


class SafetyOffer(StrEnum):
    NONE = ""  # not offered (off, or not a restore)
    FREE = "free"  # the server had a free slot when the request was made
    FULL = "full"


def safety_name(request_id: int) -> str:
    return f"{SAFETY_PREFIX}{request_id}"


def undo_hint(snapshot_id: int) -> Text:
    return Text("To go back: {} (a restore like any other: it needs an approval).").format(
        command("restore", str(snapshot_id))
    )


@dataclass(frozen=True)
class SafetyOutcome:
    """Whether the restore may go on; when not, why (for the card) and a short reason (for the audit trail)."""

    ready: bool
    message: Text = field(default_factory=Text)
    reason: str = ""
    claim_lost: bool = False


@dataclass(frozen=True)
class SlotToFree:
    request_id: int
    id: int  # the snapshot to delete
    name: str


READY = SafetyOutcome(True)
LOST = SafetyOutcome(False, claim_lost=True)


class SafetyStep(ApprovalBase):
    # ---- asking: what the card offers --------------------------------------------------------------------
    def safety_offer(self, kind: str, server_id: int) -> SafetyOffer:
        """Whether the card offers a safety snapshot: `free` when the server has a slot now, `full` when not.

        A listing that fails or is incomplete counts as `free`: the approval re-checks before creating anything.
        """
        if kind != "restore" or self.safety_mode == SafetyMode.OFF:
            return SafetyOffer.NONE
        try:
            deadline = self.vps.clock() + self.recheck_deadline.total_seconds()
            existing = self.vps.list_snapshots(server_id, deadline=deadline)
        except VpsError as error:
            log.info("safety offer for server %s: could not list its snapshots (%s)", server_id, error)
            return SafetyOffer.FREE
        if existing.complete and len(existing) >= self.snapshots.limit_per_server:
            return SafetyOffer.FULL
        return SafetyOffer.FREE

    # ---- approving: what the approver chose -------------------------------------------------------------
    def safety_choice(self, kind: str, offer: str, asked: str) -> str:
        """The recorded choice ("snapshot" | "none") for an approval click asking for `asked` (a SafetyChoice)."""
        if kind != "restore" or self.safety_mode == SafetyMode.OFF:
            return SafetyChoice.NONE
        if self.safety_mode == SafetyMode.ALWAYS:
            if asked == SafetyChoice.NONE:
                raise Refused(
                    "A safety snapshot is required before every restore here (RESTORE_SAFETY_SNAPSHOT=always); "
                    "nothing was done."
                )
            return SafetyChoice.SNAPSHOT
        if asked in (SafetyChoice.SNAPSHOT, SafetyChoice.NONE):
            return asked
        return SafetyChoice.NONE if offer == SafetyOffer.FULL else SafetyChoice.SNAPSHOT

    # ---- a full server: the approver frees a slot ------------------------------------------------------------
    def oldest_to_free(self, actor: Actor, request_id: str | int) -> SlotToFree:
        """The snapshot to delete so a pending restore's server gets a slot for its safety snapshot: the oldest
        one, never the snapshot to restore nor one named by another open request. Approvers choose; the delete
        itself goes through the normal path (its own permission check, and approval when deletes need one)."""
        rid = self._parse_request_id(request_id)
        self.guard.require(actor, Permission.APPROVE, request_id=rid)
        view = self.get(rid)
        if view.kind != "restore" or view.state != RequestState.PENDING:
            raise Refused(f"Request #{rid} is already {state_words(view.state)}; nothing was done.")
        try:
            existing = self.vps.list_snapshots(view.server_id, deadline=self._recheck_deadline())
        except VpsError as error:
            raise explain_vps_error(error, doing_with("listing the snapshots of", view.server_name)) from error
        on_server = [s for s in existing if s.server.id == view.server_id]
        if existing.complete and len(on_server) < self.snapshots.limit_per_server:
            self.refresh_safety_offer(rid)
            raise Refused(
                f"The server has a free slot now ({len(on_server)} of {self.snapshots.limit_per_server} snapshots): "
                "nothing was deleted. Approve with a safety snapshot."
            )
        with self.db.session(readonly=True) as session:
            protected = {row.snapshot_id for row in self.requests.open(session)} | {view.snapshot_id}
        candidates = [s for s in on_server if s.id not in protected]
        if not candidates:
            raise Refused(
                "No snapshot of this server can be freed: each one is the snapshot to restore or named by an open "
                "request. Nothing was deleted."
            )
        oldest = min(candidates, key=lambda s: (s.created_at is None, s.created_at or view.created_at, s.id))
        return SlotToFree(rid, oldest.id, oldest.name)

    def refresh_safety_offer(self, request_id: int) -> RequestView | None:
        """Re-check a pending restore's free slot (after a delete) and store what its card offers now."""
        view = self.get(request_id)
        if view.kind != "restore" or view.state != RequestState.PENDING:
            return None
        offer = self.safety_offer(view.kind, view.server_id)
        with self.db.session() as session:
            row = self._locked(session, request_id)
            if row.state != RequestState.PENDING:
                return None
            row.safety_offer = offer
            return self._view(session, row)

    # ---- carrying out: take it, follow it, only then go on --------------------------------------------------
    def _take_safety_snapshot(self, actor: Actor, view: RequestView, token: str) -> SafetyOutcome:
        """Make sure `pre-restore-<id>` exists and is completed; READY only then (the claim still ours)."""
        name = safety_name(view.id)
        try:
            existing = self.vps.list_snapshots(view.server_id, deadline=self._recheck_deadline())
        except DeadlineExceeded:
            return self._unsafe(
                "VPS.org was too slow to list the server's snapshots for the safety snapshot.", "safety list slow"
            )
        except VpsError as error:
            failure = explain_vps_error(error, doing_with("listing the snapshots of", view.server_name))
            return self._unsafe(failure.message, "safety list failed")
        if not self.requests.renew(view.id, token, self.claim_ttl):
            return LOST
        adopted = self._ours(view, existing, name)
        if adopted is not None:
            log.info("request #%s: adopting safety snapshot #%s made by an earlier attempt", view.id, adopted.id)
            with self.db.session() as session:
                if not self.requests.set_safety(
                    session,
                    view.id,
                    token,
                    safety_snapshot_id=adopted.id,
                    safety_state=SafetyState.FOLLOWING,
                ):
                    session.rollback()
                    return LOST
            return self._follow(actor, view, token, adopted.id, name)
        if not existing.complete:
            return self._unsafe(
                "VPS.org's snapshot list for the server was incomplete, so the free slot for the safety snapshot "
                "could not be confirmed.",
                "safety list incomplete",
            )
        limit = self.snapshots.limit_per_server
        if len(existing) >= limit:
            fix = Text("free a slot first ({})").format(emphasis("Free oldest snapshot first"))
            if self.safety_mode != SafetyMode.ALWAYS:
                fix += Text(" or approve without a safety snapshot")
            return self._unsafe(
                Text("The server is full ({} of {} snapshots), so no safety snapshot can be taken: {}.").format(
                    len(existing), limit, fix
                ),
                "server full",
            )
        return self._create(actor, view, token, name)

    def _ours(self, view: RequestView, existing: Sequence[Snapshot], name: str) -> Snapshot | None:
        """A `pre-restore-<id>` of this server made by an earlier attempt of this request, if there is one."""
        for snapshot in existing:
            if snapshot.server.id != view.server_id or snapshot.name != name:
                continue
            if view.safety_snapshot_id is not None and snapshot.id == view.safety_snapshot_id:
                return snapshot
            answer_lost = view.safety_state in (SafetyState.CREATING, SafetyState.UNKNOWN)
            # VPS.org gives whole seconds: "made after the request" allows for the request's own second.
            asked = view.created_at.replace(microsecond=0) - timedelta(seconds=1)
            made_after = snapshot.created_at is not None and snapshot.created_at >= asked
            if view.safety_snapshot_id is None and answer_lost and made_after:
                return snapshot
        return None

    def _create(self, actor: Actor, view: RequestView, token: str, name: str) -> SafetyOutcome:
        description = f"Safety snapshot before restore request #{view.id} (snapshot #{view.snapshot_id})"
        details = {"name": name, "purpose": "safety snapshot", "restore_request": view.id}

        def intent() -> bool:
            # The `creating` mark and the intent row commit together, only while the claim is ours.
            with self.db.session() as session:
                if not self.requests.set_safety(session, view.id, token, safety_state=SafetyState.CREATING):
                    session.rollback()
                    return False
                self.audit.append(
                    actor.entry(
                        Action.CREATE_REQUESTED,
                        Outcome.INTENT,
                        server_id=view.server_id,
                        request_id=view.id,
                        operation_id=token,
                        details={**details, "description": description},
                    ),
                    session=session,
                )
            return True

        if not intent():
            return LOST

        def outcome(call: CallResult[CreatedSnapshot]) -> SafetyOutcome:
            if call.error is not None:
                state = SafetyState.UNKNOWN if call.outcome_unknown else SafetyState.FAILED
                with self.db.session() as session:
                    self.requests.record_safety_outcome(session, view.id, token, safety_state=state)
                    self.audit.append(
                        actor.entry(
                            Action.CREATE_FAILED,
                            call.failure_outcome,
                            server_id=view.server_id,
                            request_id=view.id,
                            operation_id=token,
                            details=call.error_details(**details),
                        ),
                        session=session,
                    )
                failure = explain_vps_error(call.error, doing_with("creating the safety snapshot", name))
                if call.outcome_unknown:
                    return self._unsafe(
                        Text("The safety snapshot's outcome is unknown: {}").format(failure.message),
                        "safety create unknown",
                    )
                return self._unsafe(
                    Text("The safety snapshot could not be created: {}").format(failure.message), "safety failed"
                )
            created = call.answer
            assert created is not None
            with self.db.session() as session:
                self.requests.record_safety_outcome(
                    session,
                    view.id,
                    token,
                    safety_state=SafetyState.FOLLOWING,
                    safety_snapshot_id=created.snapshot.id,
                )
                self.audit.append(
                    actor.entry(
                        Action.CREATE_SUCCEEDED,
                        Outcome.OK,
                        server_id=view.server_id,
                        snapshot_id=created.snapshot.id,
                        request_id=view.id,
                        operation_id=token,
                        details={**details, "status": created.snapshot.status, "duration_ms": call.duration_ms},
                    ),
                    session=session,
                )
            return self._follow(actor, view, token, created.snapshot.id, name)

        return audited_call(
            lambda: self.vps.create_snapshot(view.server_id, name, description),
            write_intent=None,  # committed above with the `creating` mark
            write_outcome=outcome,
        )

    def _follow(self, actor: Actor, view: RequestView, token: str, snapshot_id: int, name: str) -> SafetyOutcome:
        """Poll until VPS.org says the safety snapshot is completed, renewing the claim; give up at the deadline."""
        deadline = self.monotonic() + self.safety_timeout.total_seconds()
        # Between two renewals: one bounded listing, or one wait shorter than half the claim.
        wait = max(0.0, min(self.safety_poll_seconds, (self.claim_ttl - self.recheck_deadline).total_seconds() / 2))
        while True:
            if not self.requests.renew(view.id, token, self.claim_ttl):
                return LOST
            status = ""
            try:
                listed = self.vps.list_snapshots(view.server_id, deadline=self._recheck_deadline())
            except VpsError as error:  # a bad moment of VPS.org's is not a verdict: keep polling until the deadline
                log.info("request #%s: polling the safety snapshot failed (%s)", view.id, error)
                listed = None
            if listed is not None:
                found = next((s for s in listed if s.id == snapshot_id), None)
                if found is not None and found.is_completed:
                    return self._safety_completed(actor, view, token, found)
                if found is None and listed.complete:
                    return self._safety_ended(
                        actor,
                        view,
                        token,
                        snapshot_id,
                        SafetyState.FAILED,
                        Action.CREATE_VANISHED,
                        Outcome.FAILED,
                        Text("The safety snapshot {} (#{}) disappeared before it completed.").format(
                            code(name), snapshot_id
                        ),
                        "safety vanished",
                    )
                status = found.status if found is not None else ""
                if found is not None and not found.is_in_progress:
                    return self._safety_ended(
                        actor,
                        view,
                        token,
                        snapshot_id,
                        SafetyState.FAILED,
                        Action.CREATE_VANISHED,
                        Outcome.FAILED,
                        Text("The safety snapshot {} (#{}) ended as {}, not completed.").format(
                            code(name), snapshot_id, code(found.status, 32)
                        ),
                        "safety failed",
                    )
            if self.monotonic() >= deadline:
                minutes = round(self.safety_timeout.total_seconds() / 60, 1)
                return self._safety_ended(
                    actor,
                    view,
                    token,
                    snapshot_id,
                    SafetyState.TIMEOUT,
                    Action.CREATE_TIMEOUT,
                    Outcome.UNKNOWN,
                    Text("The safety snapshot {} (#{}) was not completed after {:g} min{}.").format(
                        code(name),
                        snapshot_id,
                        minutes,
                        Text(" (still {})").format(code(status, 32)) if status else Text(),
                    ),
                    "safety timeout",
                )
            if not self.requests.renew(view.id, token, self.claim_ttl):
                return LOST
            self.sleep(wait)

    def _safety_completed(self, actor: Actor, view: RequestView, token: str, snapshot: Snapshot) -> SafetyOutcome:
        with self.db.session() as session:
            if not self.requests.set_safety(
                session, view.id, token, safety_state=SafetyState.COMPLETED, safety_snapshot_id=snapshot.id
            ):
                session.rollback()
                return LOST
            self.audit.append(
                actor.entry(
                    Action.CREATE_COMPLETED,
                    Outcome.OK,
                    server_id=view.server_id,
                    snapshot_id=snapshot.id,
                    request_id=view.id,
                    operation_id=token,
                    details={"name": snapshot.name, "purpose": "safety snapshot", "size_mb": snapshot.size_mb},
                ),
                session=session,
            )
        return READY

    def _safety_ended(
        self,
        actor: Actor,
        view: RequestView,
        token: str,
        snapshot_id: int,
        state: SafetyState,
        action: Action,
        outcome: Outcome,
        message: Text,
        reason: str,
    ) -> SafetyOutcome:
        with self.db.session() as session:
            self.requests.record_safety_outcome(session, view.id, token, safety_state=state)
            self.audit.append(
                actor.entry(
                    action,
                    outcome,
                    server_id=view.server_id,
                    snapshot_id=snapshot_id,
                    request_id=view.id,
                    operation_id=token,
                    details={"name": safety_name(view.id), "purpose": "safety snapshot", "reason": reason},
                ),
                session=session,
            )
        return self._unsafe(message, reason)

    def _unsafe(self, why: str | Text, reason: str) -> SafetyOutcome:
        said = sentence(why)
        if not str(said).rstrip().endswith((".", "!", "?")):
            said += Text(".")
        return SafetyOutcome(False, said + Text(" The restore was NOT sent. Approve again, or cancel."), reason)

    def _recheck_deadline(self) -> float:
        return self.vps.clock() + self.recheck_deadline.total_seconds()

"""Asking for an approval: recording a request, attaching its card, withdrawing one nobody could act on.

Rules kept here:
- A request is recorded only for a snapshot that exists (and, for a restore, is completed), and only for someone
  allowed to ask; the rate limit is counted and the request recorded under one lock, so concurrent requests
  never get past the limit.
- Checks before asking (bot/usecases/restore_checks.py): no second open request of the same kind on the same
  snapshot, nor a second restore of a server with one open or still running (looked for under the audit chain lock,
  in the transaction that records the request, so two asked at once cannot both get through); no restore of a server
  VPS.org reports suspended or restoring. A server state that could not be read refuses nothing: the request
  carries a note saying so (its `result_message` while pending, shown on the card).
- What the approver will see is bound into the request at once (`bound_digest`).
- A request for a snapshot the bot has recorded as deleted is refused, even when the delete lands while it is
  being recorded (see approval_snapshot_gone).
- A request and its card are one unit: a request whose card could not be posted is withdrawn, never left pending.
"""

from __future__ import annotations

from bot.usecases.access import Permission
from bot.usecases.approval_base import RequestView, action_for, bound_digest
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_safety_offer import SafetyOffers
from bot.usecases.approval_terms import RequestKind, RequestState
from bot.usecases.context import SYSTEM, Actor
from bot.usecases.errors import InvalidInput, NotFoundError, Refused
from bot.usecases.guard import Guard
from bot.usecases.restore_checks import conflict, refusal, unchecked_note
from bot.usecases.server_state import ServerStates
from bot.usecases.snapshots import SnapshotService
from bot.usecases.wording import Text, code, command, plain
from storage.audit import Action, Outcome, valid_utf8
from storage.db import Transaction, abandon

KINDS = (RequestKind.RESTORE, RequestKind.DELETE)  # what a person asks for by snapshot (schedules: schedule_requests)
MAX_REASON = 200  # an incident reference and a few words; the card, the audit row and notifications carry it


class Requesting:
    def __init__(
        self,
        *,
        ledger: RequestLedger,
        guard: Guard,
        snapshots: SnapshotService,
        server_states: ServerStates,
        offers: SafetyOffers,
    ) -> None:
        self.ledger = ledger
        self.requests = ledger.requests
        self.db = ledger.db
        self.audit = ledger.audit
        self.policy = ledger.policy
        self.guard = guard
        self.snapshots = snapshots
        self.server_states = server_states
        self.offers = offers

    def request(
        self, actor: Actor, snapshot_id: int, kind: RequestKind = RequestKind.RESTORE, reason: str = ""
    ) -> RequestView:
        """Record a pending request (after checking the snapshot exists and is completed) and its audit event.

        `reason`: the requester's (an incident reference), shown on the card and bound into the digest;
        mandatory for a restore under RESTORE_REASON_REQUIRED, at most `MAX_REASON` characters.
        """
        if kind not in KINDS:
            raise ValueError(kind)
        kind = RequestKind(kind)
        reason = valid_utf8(reason or "").strip()
        sid = snapshot_id  # parsed where it came in (bot/slack/listeners/ids.py)
        try:
            self._check_reason(kind, reason)
        except InvalidInput as error:
            self.snapshots.record_invalid_command(actor, str(error), operation=kind)
            raise
        permission = Permission.REQUEST_RESTORE if kind == RequestKind.RESTORE else Permission.DELETE
        self.guard.require(actor, permission, mutating=True, snapshot_id=sid)
        snapshot, listing = self.snapshots.find_in_listing(sid)  # the account's list: the safety offer counts it too
        if kind == RequestKind.RESTORE and not snapshot.is_completed:
            self.audit.append(
                actor.entry(
                    Action.REFUSED_VALIDATION,
                    Outcome.REFUSED,
                    server_id=snapshot.server.id,
                    snapshot_id=sid,
                    details={"operation": kind, "error": f"snapshot status is {snapshot.status}"},
                )
            )
            if snapshot.is_in_progress:
                raise InvalidInput(
                    Text(
                        "Snapshot {} (#{}) is still being taken (in progress), not completed: it can be restored "
                        "once it is. Nothing was asked; watch {}."
                    ).format(code(snapshot.name, 64), sid, command("list"))
                )
            raise InvalidInput(
                Text("Snapshot {} (#{}) is {}, not completed: only completed snapshots can be restored.").format(
                    code(snapshot.name, None), sid, plain(snapshot.status.replace("_", " "), 40)
                )
            )
        # Our own records first (cheap, and they name who asked); then what VPS.org says about the server.
        with self.db.session(readonly=True) as session:
            self._refuse_if_in_the_way(session, actor, kind, snapshot.id, snapshot.server.id)
        note = ""
        if kind == RequestKind.RESTORE:
            state = self.server_states.state(snapshot.server.id)
            refused = refusal(state, snapshot.server.name)
            if refused is not None:
                self._refuse_check(actor, kind, snapshot.id, snapshot.server.id, f"server status is {state.status}")
                raise Refused(refused)
            note = unchecked_note(state)
        digest = bound_digest(kind, snapshot.id, snapshot.server.id, snapshot.name, snapshot.created_at, reason)
        offer = self.offers.safety_offer(kind, snapshot.server.id, listing)  # what the card offers (approval_safety)
        with self.db.session() as session:
            # Counted and recorded under one lock: concurrent requests never get past the rate limit.
            self.guard.claim_rate(
                actor, session, action_for(kind, "requested"), server_id=snapshot.server.id, snapshot_id=sid
            )
            # Under the chain lock, so a request asked at the same moment is either seen here or sees this one.
            self.audit.lock_chain(session)
            self._refuse_if_in_the_way(session, actor, kind, snapshot.id, snapshot.server.id)
            now = self.ledger.now()
            row = self.requests.add(
                session,
                kind=kind,
                requester_id=actor.user_id,
                requester_name=valid_utf8(actor.name),
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                snapshot_id=snapshot.id,
                snapshot_name=valid_utf8(snapshot.name),
                snapshot_status=snapshot.status,
                snapshot_size_mb=snapshot.size_mb,
                snapshot_created_at=snapshot.created_at,
                snapshot_description=valid_utf8(snapshot.description),
                server_id=snapshot.server.id,
                server_name=valid_utf8(snapshot.server.name),
                approvals_required=self.policy.approvals_required,
                created_at=now,
                expires_at=now + self.policy.ttl,
                updated_at=now,
                bound_digest=digest,
                request_reason=reason,
                result_message=note,
                safety_offer=offer,
            )
            self.audit.append(
                actor.entry(
                    action_for(kind, "requested"),
                    Outcome.INFO,
                    server_id=snapshot.server.id,
                    snapshot_id=snapshot.id,
                    request_id=row.id,
                    details={
                        "name": snapshot.name,
                        "expires_at": row.expires_at.isoformat(),
                        "digest": digest,
                        **({"reason": reason} if reason else {}),
                        **({"server_check": note} if note else {}),
                    },
                ),
                session=session,
            )
            # Asked after our append took the chain head lock: a delete recorded before it is seen here, one
            # recorded after it commits after us and its closer then finds (and closes) this request.
            deleted = self.audit.snapshot_has(snapshot.id, Action.DELETE_SUCCEEDED, session=session)
            if deleted:
                abandon(session)  # neither the request nor its audit row
        if deleted:
            self.snapshots.record_invalid_command(actor, "snapshot was deleted meanwhile", operation=kind)
            raise NotFoundError(
                Text("Snapshot {} (#{}) was deleted a moment ago; nothing was requested.").format(
                    code(snapshot.name, 64), sid
                )
            )
        return self.ledger.view(row)

    def _refuse_if_in_the_way(
        self, session: Transaction, actor: Actor, kind: RequestKind, snapshot_id: int, server_id: int
    ) -> None:
        """Raise `RequestConflict` (audited, `session` rolled back) when an open or running request is in the way."""
        rows = self.requests.in_the_way(session, kind=kind, server_id=server_id, snapshot_id=snapshot_id)
        if not rows:
            return
        existing = self.ledger.view(rows[0])
        abandon(session)
        self._refuse_check(actor, kind, snapshot_id, server_id, f"request #{existing.id} is {existing.state}")
        raise conflict(existing, kind, snapshot_id, self.ledger.now())

    def _refuse_check(self, actor: Actor, kind: RequestKind, snapshot_id: int, server_id: int, why: str) -> None:
        self.audit.append(
            actor.entry(
                Action.REFUSED_VALIDATION,
                Outcome.REFUSED,
                server_id=server_id,
                snapshot_id=snapshot_id,
                details={"operation": kind, "error": why},
            )
        )

    def check_reason(self, kind: RequestKind, reason: str) -> None:
        """Raise `InvalidInput` when `reason` would be refused (too long, or missing where one is required): for a
        form to say so in place, before anything is asked. Records nothing; `request` checks (and audits) again."""
        self._check_reason(kind, valid_utf8(reason or "").strip())

    def _check_reason(self, kind: RequestKind, reason: str) -> None:
        if len(reason) > MAX_REASON:
            raise InvalidInput(
                f"The reason is too long ({len(reason)} characters; at most {MAX_REASON}). "
                "Give an incident reference and a few words."
            )
        if kind == RequestKind.RESTORE and self.policy.reason_required and not reason:
            raise InvalidInput(
                Text("A restore needs a reason here (an incident reference): {}, e.g. {}.").format(
                    command("restore", "<snapshot_id>", "<reason…>"), command("restore", "801", "INC-1234 db corrupted")
                )
            )

    def attach_card(self, request_id: int, channel: str, ts: str) -> None:
        self.requests.attach_card(request_id, channel, ts)

    def withdraw(self, request_id: int, reason: str) -> RequestView | None:
        """The bot cancels a request nobody could act on (its card could not be posted), audited with `reason`.

        A request and its card are one unit: a request without a card is never left pending. Returns None when
        the request is no longer pending (someone decided it meanwhile), which then stands.
        """
        now = self.ledger.now()
        with self.db.session() as session:
            row = self.ledger.locked(session, request_id)
            if row.state != RequestState.PENDING:
                return None
            return self.ledger.close(session, row, RequestState.CANCELLED, SYSTEM, now, reason=reason[:500])

"""Asking for an approval: recording a request, attaching its card, withdrawing one nobody could act on.

Rules kept here:
- A request is recorded only for a snapshot that exists (and, for a restore, is completed), and only for someone
  allowed to ask; the rate limit is counted and the request recorded under one lock, so concurrent requests
  never get past the limit.
- What the approver will see is bound into the request at once (`bound_digest`).
- A request and its card are one unit: a request whose card could not be posted is withdrawn, never left pending.
"""

from __future__ import annotations

from bot.usecases.access import Permission
from bot.usecases.approval_base import (
    ApprovalBase,
    RequestView,
    action_for,
    bound_digest,
)
from bot.usecases.context import SYSTEM, Actor
from bot.usecases.errors import (
    InvalidInput,
)
from bot.usecases.validation import parse_id
from bot.usecases.wording import Text, code, command, plain
from storage.approvals import RequestState
from storage.audit import Action, Outcome, valid_utf8

KINDS = ("restore", "delete")
MAX_REASON = 200  # an incident reference and a few words; the card, the audit row and notifications carry it


class Requesting(ApprovalBase):
    def request(
        self, actor: Actor, snapshot_id: str | int | None, kind: str = "restore", reason: str = ""
    ) -> RequestView:
        """Record a pending request (after checking the snapshot exists and is completed) and its audit event.

        `reason`: the requester's (an incident reference), shown on the card and bound into the digest;
        mandatory for a restore under RESTORE_REASON_REQUIRED, at most `MAX_REASON` characters.
        """
        if kind not in KINDS:
            raise ValueError(kind)
        reason = valid_utf8(reason or "").strip()
        try:
            sid = parse_id(snapshot_id, "snapshot id")
            self._check_reason(kind, reason)
        except InvalidInput as error:
            self.snapshots.record_invalid_command(actor, str(error), operation=kind)
            raise
        permission = Permission.REQUEST_RESTORE if kind == "restore" else Permission.DELETE
        self.guard.require(actor, permission, mutating=True, snapshot_id=sid)
        snapshot = self.snapshots.find_snapshot(sid)
        if kind == "restore" and not snapshot.is_completed:
            self.audit.append(
                actor.entry(
                    Action.REFUSED_VALIDATION,
                    Outcome.REFUSED,
                    server_id=snapshot.server.id,
                    snapshot_id=sid,
                    details={"operation": kind, "error": f"snapshot status is {snapshot.status}"},
                )
            )
            raise InvalidInput(
                Text("Snapshot {} (#{}) is {}, not completed: only completed snapshots can be restored.").format(
                    code(snapshot.name, None), sid, plain(snapshot.status.replace("_", " "), 40)
                )
            )
        digest = bound_digest(kind, snapshot.id, snapshot.server.id, snapshot.name, snapshot.created_at, reason)
        with self.db.session() as session:
            # Counted and recorded under one lock: concurrent requests never get past the rate limit.
            self.guard.claim_rate(
                actor, session, action_for(kind, "requested"), server_id=snapshot.server.id, snapshot_id=sid
            )
            now = self.clock()
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
                approvals_required=self.approvals_required,
                created_at=now,
                expires_at=now + self.ttl,
                updated_at=now,
                bound_digest=digest,
                request_reason=reason,
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
                    },
                ),
                session=session,
            )
            return self._view(session, row)

    def _check_reason(self, kind: str, reason: str) -> None:
        if len(reason) > MAX_REASON:
            raise InvalidInput(
                f"The reason is too long ({len(reason)} characters; at most {MAX_REASON}). "
                "Give an incident reference and a few words."
            )
        if kind == "restore" and self.reason_required and not reason:
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
        now = self.clock()
        with self.db.session() as session:
            row = self._locked(session, request_id)
            if row.state != RequestState.PENDING:
                return None
            return self._close(session, row, RequestState.CANCELLED, SYSTEM, now, reason=reason[:500])

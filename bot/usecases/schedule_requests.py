"""`schedule` approval requests: making or changing a schedule while APPROVAL_REQUIRED_FOR includes `delete`.

A schedule's retention deletes on its own. When deletes need a second person, that person approves the schedule
once, through the same request, card and state machine as restores and deletes; its automatic deletes then need
no card each. Rules kept here:
- Asking records the request (and, for a new schedule, the schedule itself, stored off: `awaiting_approval`) in one
  transaction with its audit row; one open request per schedule (looked for under the audit chain lock).
- The approval is bound to the plan the card showed (`SchedulePlan.digest`) and to the schedule's `revision`.
  Approving re-checks, under the claim: the stored plan must match its digest, the schedule must be unchanged (a
  change or an unschedule meanwhile closes the request as `stale`, nothing applied) and must still fit on the
  server (else `stale`, saying why). VPS.org unreachable: back to `pending` (approve again); server gone: `failed`.
- Applying is one transaction: a compare-and-set on the schedule's revision (enabled exactly once, or changed in
  place), the request `executed`, and the audit row with before/after. No call to VPS.org is made to apply it.
- A request closed unapproved (rejected, cancelled, expired, stale, failed) leaves a new schedule off for good.
"""

from __future__ import annotations

from typing import Protocol
from zoneinfo import ZoneInfo

from bot.usecases.approval_base import DecisionOutcome, DecisionResult, RequestView, action_for
from bot.usecases.approval_execution import Progress
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_terms import RequestKind, RequestState
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput, NotFoundError, UserFacingError
from bot.usecases.restore_checks import RequestConflict
from bot.usecases.schedule_fit import check_fits
from bot.usecases.schedule_plan import SchedulePlan
from bot.usecases.schedule_when import parse_when
from bot.usecases.server_groups import server_and_snapshots
from bot.usecases.wording import Text, code, plain, sentence
from bot.vps.client import VpsClient
from bot.vps.models import SNAPSHOTS_PER_SERVER
from storage.approvals import RequestRow
from storage.audit import Action, Outcome, valid_utf8
from storage.db import Transaction, abandon
from storage.schedules import ScheduleRow, Schedules

SCHEDULE_REMOVED = "the schedule was removed"  # the close reason the card recognises
TOO_SLOW_TO_CHECK = Text(
    "VPS.org could not be asked whether the schedule still fits; nothing was applied. Approve again when it answers."
)


class AsksForSchedules(Protocol):
    """What the schedule service needs of approvals (the approval service's facade provides it)."""

    def request_schedule(
        self, actor: Actor, *, server_id: int, server_name: str, plan: SchedulePlan, schedule_id: int | None
    ) -> RequestView: ...

    def close_for_removed(self, actor: Actor, schedule_id: int) -> list[DecisionResult]: ...


class ScheduleRequesting:
    """Asking for a `schedule` request, and closing the one a removed schedule leaves behind."""

    def __init__(self, ledger: RequestLedger) -> None:
        self.ledger = ledger
        self.requests = ledger.requests
        self.db = ledger.db
        self.audit = ledger.audit
        self.schedule_store = Schedules(ledger.db)

    def request_schedule(
        self, actor: Actor, *, server_id: int, server_name: str, plan: SchedulePlan, schedule_id: int | None
    ) -> RequestView:
        """Record a pending `schedule` request (a new schedule when `schedule_id` is None) and its audit row."""
        store = self.schedule_store
        with self.db.session() as session:
            self.audit.lock_chain(session)  # a request for the same schedule asked at once is seen, or sees this
            now = self.ledger.now()
            if schedule_id is None:
                made = store.add_in(
                    session,
                    enabled=False,
                    awaiting_approval=True,
                    server_id=server_id,
                    server_name=valid_utf8(server_name)[:200],
                    when_spec=plan.when,
                    keep=plan.keep,
                    on_full=plan.on_full,
                    created_by=actor.user_id,
                    channel_id=actor.channel_id,
                    created_at=now,
                )
                schedule_id = made.id
            else:
                self._refuse_if_schedule_asked(session, actor, schedule_id, server_id)
            digest = plan.digest(schedule_id, server_id)
            row = self.requests.add(
                session,
                kind=RequestKind.SCHEDULE,
                requester_id=actor.user_id,
                requester_name=valid_utf8(actor.name),
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                # A schedule request names no snapshot: 0 and "" (never a snapshot id; retention skips the kind).
                snapshot_id=0,
                snapshot_name="",
                snapshot_status="",
                snapshot_description="",
                server_id=server_id,
                server_name=valid_utf8(server_name),
                approvals_required=self.ledger.policy.approvals_required,
                created_at=now,
                expires_at=now + self.ledger.policy.ttl,
                updated_at=now,
                bound_digest=digest,
                schedule_id=schedule_id,
                proposal=plan.to_json(),
            )
            self.audit.append(
                actor.entry(
                    action_for(RequestKind.SCHEDULE, "requested"),
                    Outcome.INFO,
                    server_id=server_id,
                    request_id=row.id,
                    details={
                        "schedule_id": schedule_id,
                        **plan.settings(),
                        "change": plan.change,
                        **({"before": plan.before()} if plan.change else {}),
                        "expires_at": row.expires_at.isoformat(),
                        "digest": digest,
                    },
                ),
                session=session,
            )
        return self.ledger.view(row)

    def close_for_removed(self, actor: Actor, schedule_id: int) -> list[DecisionResult]:
        """The change request still waiting on a schedule `actor` just removed can never be applied: closed as
        `stale` (audited), so its card stops asking. One already approved is left to its executor, whose re-check
        finds the schedule removed and applies nothing."""
        with self.db.session() as session:
            found = self.requests.open_for_schedule(session, schedule_id)
            if found is None:
                return []
            row = self.ledger.locked(session, found.id)
            if row.state != RequestState.PENDING:
                return []
            view = self.ledger.close(
                session, row, RequestState.STALE, actor, self.ledger.now(), reason=SCHEDULE_REMOVED
            )
        message = Text("Request #{} was closed: schedule #{} was removed. Nothing was applied.").format(
            view.id, schedule_id
        )
        return [DecisionResult(view, DecisionOutcome.SCHEDULE_REMOVED, message)]

    def _refuse_if_schedule_asked(self, session: Transaction, actor: Actor, schedule_id: int, server_id: int) -> None:
        existing = self.requests.open_for_schedule(session, schedule_id)
        if existing is None:
            return
        view = self.ledger.view(existing)
        abandon(session)
        self.audit.append(
            actor.entry(
                Action.REFUSED_VALIDATION,
                Outcome.REFUSED,
                server_id=server_id,
                details={"operation": "reschedule", "error": f"request #{view.id} is {view.state}"},
            )
        )
        raise RequestConflict(
            Text(
                "Schedule #{} already has request #{} waiting; approve, reject or cancel that one first. "
                "Nothing was asked."
            ).format(schedule_id, view.id),
            request=view,
        )


class ScheduleExecution:
    """The strategy for `RequestKind.SCHEDULE`: applying the approved plan under the claim; no call to VPS.org."""

    limit_per_server = SNAPSHOTS_PER_SERVER

    def __init__(self, *, ledger: RequestLedger, vps: VpsClient) -> None:
        self.ledger = ledger
        self.requests = ledger.requests
        self.audit = ledger.audit
        self.vps = vps
        self.schedule_store = Schedules(ledger.db)

    def carry_out(self, actor: Actor, view: RequestView, token: str, progress: Progress | None) -> DecisionResult:
        rid = view.id
        plan = view.proposal
        if plan is None or view.schedule_id is None:
            message = Text("The stored request cannot be read; nothing was applied. Ask again.")
            return self._end_schedule_unapplied(actor, rid, token, RequestState.FAILED, message, {"plan": "unreadable"})
        if view.bound_digest != plan.digest(view.schedule_id, view.server_id):  # edited behind the bot's back
            message = Text("Not applied: the stored request no longer matches what was approved.")
            return self._end_schedule_unapplied(actor, rid, token, RequestState.STALE, message, {"digest": "differs"})
        store = self.schedule_store
        changed = _changed_meanwhile(view.schedule_id, plan, store.get(view.schedule_id))
        if changed is not None:
            return self._end_schedule_unapplied(
                actor, rid, token, RequestState.STALE, changed, {"changed": str(changed)}
            )
        try:
            _server, snapshots = server_and_snapshots(self.vps, view.server_id)
            check_fits(
                store,
                snapshots,
                server_id=view.server_id,
                keep=plan.keep,
                on_full=plan.on_full,
                limit=self.limit_per_server,
                changing=view.schedule_id if plan.change else None,
                reserved=self.ledger.policy.undo_slots_reserved,  # an approved plan must still leave the undo slot
            )
        except InvalidInput as error:
            message = Text("Not applied: the schedule no longer fits on the server. {}").format(error.message)
            return self._end_schedule_unapplied(actor, rid, token, RequestState.STALE, message, {"fits": False})
        except NotFoundError:
            message = Text("Not applied: server {} no longer exists at VPS.org.").format(view.server_id)
            return self._end_schedule_unapplied(actor, rid, token, RequestState.FAILED, message, {"server": "gone"})
        except UserFacingError:  # VPS.org down or too slow: nothing applied, approve again
            return self.ledger.give_up(actor, rid, token, TOO_SLOW_TO_CHECK, "fit re-check failed")
        if not self.ledger.renew(rid, token):
            return self.ledger.claim_lost(rid)
        with self.ledger.held(rid, token) as (session, row):
            if row is None:
                return self.ledger.claim_lost(rid)
            now = self.ledger.now()
            applied = store.apply_approved(
                session,
                view.schedule_id,
                plan.revision,
                new=not plan.change,
                when_spec=plan.when,
                keep=plan.keep,
                on_full=plan.on_full,
                applied_at=now,
            )
            if not applied:  # changed in the moment since the check above: the compare-and-set says so
                message = Text("Not applied: schedule #{} was changed or removed meanwhile.").format(view.schedule_id)
                result = self._unapplied(session, actor, row, RequestState.STALE, message, {"changed": "meanwhile"})
                return result
            next_run = parse_when(plan.when).next_slot(now, ZoneInfo(plan.timezone))
            shown = next_run.astimezone(ZoneInfo(plan.timezone)).strftime("%Y-%m-%d %H:%M %Z")
            verb = "changed" if plan.change else "on"
            # The same shape as the card's and the list's line: when (zone) · keep · on_full.
            message = Text("Schedule #{} is {}: {} ({}) · keep {} · on_full={}; next run {}.").format(
                view.schedule_id,
                sentence(verb),
                code(plan.when, 80),
                plain(plan.timezone, 64),
                plan.keep,
                plain(plan.on_full, 10),
                sentence(shown),
            ) + Text(" Its older snapshots are deleted without a card each.")
            row = self.requests.end_unsent(session, rid, RequestState.EXECUTED, str(message), now)
            self.audit.append(
                actor.entry(
                    action_for(RequestKind.SCHEDULE, "executed"),
                    Outcome.OK,
                    server_id=row.server_id,
                    request_id=rid,
                    operation_id=token,
                    details={
                        "schedule_id": view.schedule_id,
                        "change": plan.change,
                        "after": plan.settings(),
                        **({"before": plan.before()} if plan.change else {}),
                        "requested_by": row.requester_id,
                        "next_run": next_run.isoformat(),
                    },
                ),
                session=session,
            )
        return DecisionResult(self.ledger.view(row), DecisionOutcome.EXECUTED, message)

    def _end_schedule_unapplied(
        self, actor: Actor, rid: int, token: str, state: RequestState, message: Text, details: dict[str, object]
    ) -> DecisionResult:
        with self.ledger.held(rid, token) as (session, row):
            if row is None:
                return self.ledger.claim_lost(rid)
            return self._unapplied(session, actor, row, state, message, details)

    def _unapplied(
        self,
        session: Transaction,
        actor: Actor,
        row: RequestRow,
        state: RequestState,
        message: Text,
        details: dict[str, object],
    ) -> DecisionResult:
        """Closed without applying (`stale` or `failed`): a new schedule stays off for good."""
        row = self.requests.end_unsent(session, row.id, state, str(message), self.ledger.now())
        self.ledger.schedule_closed(session, row)
        self.audit.append(
            actor.entry(
                action_for(RequestKind.SCHEDULE, state),
                Outcome.FAILED,
                server_id=row.server_id,
                request_id=row.id,
                details={**details, "schedule_id": row.schedule_id, "applied": False},
            ),
            session=session,
        )
        return DecisionResult(self.ledger.view(row), DecisionOutcome(state), message)


def _changed_meanwhile(schedule_id: int, plan: SchedulePlan, current: ScheduleRow | None) -> Text | None:
    """Why the approved plan no longer matches the schedule (None: it still does)."""
    if current is None:
        return Text("Not applied: schedule #{} no longer exists.").format(schedule_id)
    if plan.change and not current.enabled:
        return Text("Not applied: schedule #{} was removed (unscheduled) after this was asked.").format(schedule_id)
    if not plan.change and not current.awaiting_approval:
        return Text("Not applied: schedule #{} is no longer waiting for this approval.").format(schedule_id)
    if current.revision != plan.revision:
        return Text("Not applied: schedule #{} was changed after this was asked (it is now {} keep {}).").format(
            schedule_id, code(current.when_spec, 80), current.keep
        )
    return None

"""Reminding the people who can decide a waiting request, and escalating it once (issue 28 §1).

Rules kept here:
- Only a `pending` request is nudged, re-checked under its row lock when the nudge is claimed: never one that was
  decided, cancelled, expired or closed as stale.
- Reminder n (1..`remind_max`) is due `n × remind_every` after the request was made; the escalation (once) is due
  `escalate_after` after it. After downtime only the newest due reminder is sent, not a burst of old ones.
- Each nudge is claimed exactly once across replicas and restarts (storage.approval_reminders: a unique claim per
  request, kind and number), in the transaction that writes its intent audit row; the outcome row follows the
  Slack call (`approval.reminded` / `approval.escalated`, paired by operation id, actor `system`).
- A reminder names the approvers who have not acted: the users and the members of the groups with the approver
  role or higher, never the requester and never someone who already approved. Groups are named member by member
  so the requester, often in the approvers' group, is never pinged. Open mode (no roles) names nobody.
- Escalation grants nothing. A user in `escalate_to` was checked at start-up (bot/config.py); a group's members
  are checked when it is used: one who cannot approve is logged, not named. The requester is never named.
- The names a nudge carries are worked out before the row lock is taken (a group lookup is a Slack call).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.slack_ids import GROUP_ID, USER_ID
from bot.usecases.access import AccessPolicy, GroupResolutionError, Permission, Role
from bot.usecases.approval_base import RequestView, snapshot_of
from bot.usecases.approval_ledger import RequestLedger
from bot.usecases.approval_terms import RequestState
from bot.usecases.context import SYSTEM
from storage.approval_reminders import ApprovalNudges, NudgeKind, WaitingRequest
from storage.audit import Action, Outcome

log = logging.getLogger(__name__)

MAX_NAMED = 30  # people named in one nudge; a larger group is cut here (Slack's 4,000 characters stay far off)
_ACTIONS = {NudgeKind.REMIND: Action.APPROVAL_REMINDED, NudgeKind.ESCALATE: Action.APPROVAL_ESCALATED}

__all__ = ["Nudge", "NudgeDelivery", "NudgeKind", "ReminderPolicy", "Reminders"]


@dataclass(frozen=True)
class ReminderPolicy:
    """APPROVAL_REMIND_SECONDS / _MAX, APPROVAL_ESCALATE_SECONDS / _TO; a zero interval switches that nudge off."""

    remind_every: timedelta = timedelta(seconds=900)
    remind_max: int = 3
    escalate_after: timedelta = timedelta(seconds=1800)
    escalate_to: tuple[str, ...] = ()

    @property
    def reminding(self) -> bool:
        return self.remind_every > timedelta(0) and self.remind_max > 0

    @property
    def escalating(self) -> bool:
        return self.escalate_after > timedelta(0) and bool(self.escalate_to)

    def first_due(self) -> timedelta | None:
        """How old a request must be before any nudge is due (None: both are off)."""
        dues = ([self.remind_every] if self.reminding else []) + ([self.escalate_after] if self.escalating else [])
        return min(dues) if dues else None


@dataclass(frozen=True)
class Nudge:
    """One claimed reminder or escalation, for the Slack side to send."""

    kind: NudgeKind
    number: int  # reminder n of `of`; 1 for the escalation
    of: int
    request: RequestView
    waited: timedelta
    named: tuple[str, ...]  # user ids to mention (and, for an escalation, to tell by direct message)
    unnamed: int  # people left out beyond MAX_NAMED
    operation_id: str


@dataclass(frozen=True)
class NudgeDelivery:
    """What sending a nudge came to: `ok`, or the reason it was not (Slack's error code), for the outcome row."""

    ok: bool
    detail: str = ""
    told: tuple[str, ...] = ()  # escalation: who got the direct message


class Reminders:
    def __init__(
        self, *, ledger: RequestLedger, nudges: ApprovalNudges, access: AccessPolicy, policy: ReminderPolicy, owner: str
    ) -> None:
        self.ledger = ledger
        self.nudges = nudges
        self.access = access
        self.policy = policy
        self.owner = owner  # this replica, recorded with each claim

    def run_due(self, send: Callable[[Nudge], NudgeDelivery]) -> list[tuple[Nudge, NudgeDelivery]]:
        """Claim every nudge due now, send each through `send` (the Slack side), record each outcome."""
        first_due = self.policy.first_due()
        if first_due is None:
            return []
        now = self.ledger.now()
        done: list[tuple[Nudge, NudgeDelivery]] = []
        for waiting in self.nudges.waiting(now - first_due, now):
            for kind, number in self._due(waiting, now - waiting.created_at):
                nudge = self._claim(waiting, kind, number)
                if nudge is None:
                    continue
                try:
                    delivery = send(nudge)
                except Exception as exc:  # the claim stands (never sent twice); the outcome says it failed
                    log.exception("sending the %s of request #%s failed", kind.value, waiting.request_id)
                    delivery = NudgeDelivery(False, type(exc).__name__)
                self._record(nudge, delivery)
                done.append((nudge, delivery))
        return done

    def _due(self, waiting: WaitingRequest, waited: timedelta) -> list[tuple[NudgeKind, int]]:
        due: list[tuple[NudgeKind, int]] = []
        policy = self.policy
        if policy.reminding:
            newest = min(policy.remind_max, int(waited / policy.remind_every))
            if newest > waiting.reminded:
                due.append((NudgeKind.REMIND, newest))
        if policy.escalating and waited >= policy.escalate_after and waiting.escalated == 0:
            due.append((NudgeKind.ESCALATE, 1))
        return due

    def _claim(self, waiting: WaitingRequest, kind: NudgeKind, number: int) -> Nudge | None:
        """The nudge, claimed with its intent row in one transaction; None if it is not ours to send."""
        rid = waiting.request_id
        before = self.ledger.get(rid)
        if before.state != RequestState.PENDING:
            return None
        named, unnamed = self._names(before, kind)
        policy = self.policy
        every = policy.remind_every if kind == NudgeKind.REMIND else policy.escalate_after
        due_at = waiting.created_at + every * number
        operation_id = str(uuid.uuid4())
        now = self.ledger.now()
        with self.ledger.db.session() as session:
            row = self.ledger.locked(session, rid)
            if row.state != RequestState.PENDING:  # decided meanwhile: nobody is nudged
                return None
            if not self.nudges.claim_in(session, rid, kind, number, due_at=due_at, owner=self.owner, now=now):
                return None
            view = self.ledger.view(row)
            acted = {view.requester_id, *view.approvers}
            named = tuple(user for user in named if user not in acted)  # someone may have approved meanwhile
            self.ledger.audit.append(
                replace(SYSTEM, channel_id=view.card_channel).entry(
                    _ACTIONS[kind],
                    Outcome.INTENT,
                    server_id=view.server_id,
                    snapshot_id=snapshot_of(view),
                    request_id=rid,
                    operation_id=operation_id,
                    details={"number": number, "due_at": due_at.isoformat(), "named": list(named)},
                ),
                session=session,
            )
        of = policy.remind_max if kind == NudgeKind.REMIND else 1
        return Nudge(kind, number, of, view, now - view.created_at, named, unnamed, operation_id)

    def _record(self, nudge: Nudge, delivery: NudgeDelivery) -> None:
        details: dict[str, object] = {"number": nudge.number}
        if delivery.detail:
            details["error"] = delivery.detail
        if nudge.kind == NudgeKind.ESCALATE:
            details["told"] = list(delivery.told)
        try:
            self.ledger.audit.append(
                replace(SYSTEM, channel_id=nudge.request.card_channel).entry(
                    _ACTIONS[nudge.kind],
                    Outcome.OK if delivery.ok else Outcome.FAILED,
                    server_id=nudge.request.server_id,
                    snapshot_id=snapshot_of(nudge.request),
                    request_id=nudge.request.id,
                    operation_id=nudge.operation_id,
                    details=details,
                )
            )
        except Exception:  # the nudge went out (or not) either way; the intent row stays open for the reader
            log.exception("could not record the outcome of the %s of request #%s", nudge.kind, nudge.request.id)

    # ---- who is named ------------------------------------------------------------------------------------------
    def _names(self, req: RequestView, kind: NudgeKind) -> tuple[tuple[str, ...], int]:
        acted = {req.requester_id, *req.approvers}
        if kind == NudgeKind.REMIND:
            approvers, groups = self.access.holders(Role.APPROVER)
            people = [*sorted(approvers), *self._group_members(groups, req, check=False)]
        else:
            groups = tuple(e for e in self.policy.escalate_to if GROUP_ID.match(e))
            listed = sorted(e for e in self.policy.escalate_to if USER_ID.match(e))
            # Checked at start-up already (bot/config.py); checked again, as a listed user costs no Slack call.
            users = [u for u in listed if self.access.check(u, Permission.APPROVE).allowed]
            people = [*users, *self._group_members(groups, req, check=True)]
        named = list(dict.fromkeys(p for p in people if p not in acted))
        return tuple(named[:MAX_NAMED]), max(0, len(named) - MAX_NAMED)

    def _group_members(self, groups: Iterable[str], req: RequestView, *, check: bool) -> list[str]:
        found: list[str] = []
        for group in groups:
            try:
                members = sorted(self.access.members(group))
            except GroupResolutionError as exc:
                log.warning("request #%s: could not read user group %s to name its members: %s", req.id, group, exc)
                continue
            for member in members:
                if check and not self.access.check(member, Permission.APPROVE).allowed:
                    # Escalation grants nothing: someone who cannot approve is not asked to.
                    log.warning(
                        "request #%s: %s (escalation group %s) cannot approve, so is not named", req.id, member, group
                    )
                    continue
                found.append(member)
        return found

"""Authenticators for the TOTP step-up: enrol, confirm, approve an enrolment, status, reset, and checking a code.

Rules kept here:
- Enrolment does not rest on the Slack session alone: `enrol` answers only to that person with an otpauth URI
  (issuer snapshot-bot); `confirm` proves they hold it; it becomes active only when an admin who is a different
  person approves it, unless MFA_ENROLMENT_APPROVAL=self. An active enrolment is not replaced by enrolling
  again: an admin resets it first (else whoever holds the session could swap the authenticator).
- The secret is sealed before it is stored (bot/secret_box.py, bound to the user id) and shown once, in the
  enrolment answer; no secret and no code is ever logged, audited, stored in the clear or echoed.
- A code is RFC 6238 (pyotp), six digits, 30-second steps, one step of drift either way. It is accepted once per
  person: a code whose step is not later than the last accepted one is refused, even for another request (audited,
  not counted as a wrong code). Five wrong codes in a row lock that person's approvals for 15 minutes. The
  person's row is locked while a code is checked, so replicas take turns and the count is exact; a wrong code's
  count is committed before the answer.
- Every change is audited in the transaction that makes it (who, whose enrolment, never the secret).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp

from bot.secret_box import SealBroken, SecretBox
from bot.usecases.access import Permission
from bot.usecases.context import Actor, utcnow
from bot.usecases.errors import InvalidInput, NotFoundError, Refused
from bot.usecases.guard import Guard
from bot.usecases.wording import Text, command, mention
from storage.audit import Action, AuditLog, Outcome
from storage.db import Database, Transaction
from storage.mfa import MfaEnrolments, MfaRow, MfaState

__all__ = ["Enrolment", "LockedOut", "MfaService", "MfaState", "MfaStatus", "NotEnrolled", "WrongCode"]

ISSUER = "snapshot-bot"
STEP_SECONDS = 30
DRIFT_STEPS = 1
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
CODE_DIGITS = 6


class NotEnrolled(Refused):
    """An approver without an active authenticator: the message says how to enrol."""


class WrongCode(InvalidInput):
    """A wrong, malformed or replayed code (nothing was recorded); the message is for the form's field."""


class LockedOut(Refused):
    """Too many wrong codes: this person's approvals are locked until `until`."""


@dataclass(frozen=True)
class Enrolment:
    """What `/snapshot mfa enrol` answers, to that person only: the URI holds the secret, shown this once."""

    uri: str
    approval_needed: bool


@dataclass(frozen=True)
class MfaStatus:
    state: MfaState | None
    approved_by: str | None
    locked_until: datetime | None
    waiting: tuple[str, ...]  # for admins: who confirmed and waits for an approval


def normalised_code(typed: str) -> str:
    """Six digits, spaces and dashes between them allowed (apps show `123 456`); anything else is refused."""
    digits = "".join(typed.split()).replace("-", "")
    if len(digits) != CODE_DIGITS or not (digits.isascii() and digits.isdigit()):
        raise WrongCode("That is not a code: type the 6 digits your authenticator app shows.", field="code")
    return digits


class MfaService:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        guard: Guard,
        box: SecretBox | None,
        self_approval: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`box`: None when MFA_ENCRYPTION_KEY is not set (then nothing here works, and says so)."""
        self.db = db
        self.audit = audit
        self.guard = guard
        self.box = box
        self.self_approval = self_approval
        self.clock = clock
        self.enrolments = MfaEnrolments()

    def _require_box(self) -> SecretBox:
        if self.box is None:
            raise Refused("Authenticators are not set up on this bot: an admin sets MFA_ENCRYPTION_KEY first.")
        return self.box

    # ---- enrolment ---------------------------------------------------------------------------------------------
    def enrol(self, actor: Actor) -> Enrolment:
        box = self._require_box()
        self.guard.require(actor, Permission.APPROVE)
        secret = pyotp.random_base32()
        with self.db.session() as session:
            row = self.enrolments.locked(session, actor.user_id)
            if row is not None and row.state == MfaState.ACTIVE:
                raise Refused(
                    Text("You already have an active authenticator. To replace it, ask an admin to run {}.").format(
                        command("mfa", "reset", "@you")
                    )
                )
            self.enrolments.start(session, actor.user_id, box.seal(secret, actor.user_id), self.clock())
            self.audit.append(actor.entry(Action.MFA_ENROL_STARTED, Outcome.OK), session=session)
        uri = pyotp.TOTP(secret).provisioning_uri(name=actor.user_id, issuer_name=ISSUER)
        return Enrolment(uri=uri, approval_needed=not self.self_approval)

    def confirm(self, actor: Actor, typed: str) -> MfaState:
        """The first code proves the person holds the authenticator; it is then spent."""
        self._require_box()
        code = normalised_code(typed)
        now = self.clock()
        with self.db.session() as session:
            row = self.enrolments.locked(session, actor.user_id)
            if row is None:
                raise NotEnrolled(Text("Start with {}.").format(command("mfa", "enrol")))
            if row.state != MfaState.PENDING:
                raise Refused("Your authenticator is already confirmed; nothing was changed.")
            self._refuse_if_locked(row, now)
            step = self._matching_step(row, code, now)
            if step is not None:
                self.enrolments.confirm(session, actor.user_id, step, now)
                self.audit.append(actor.entry(Action.MFA_CONFIRMED, Outcome.OK), session=session)
                if self.self_approval:
                    self.enrolments.activate(session, actor.user_id, actor.user_id, now)
                    self.audit.append(
                        actor.entry(Action.MFA_ACTIVATED, Outcome.OK, details={"approval": "self"}), session=session
                    )
                    return MfaState.ACTIVE
                return MfaState.CONFIRMED
            locked = self._count_failure(session, actor, row, now, details={"during": "confirm"})
        self._raise_wrong(locked)
        raise AssertionError("unreachable")  # pragma: no cover

    def approve(self, actor: Actor, user_id: str) -> None:
        """An admin who is not that person makes a confirmed enrolment active (after checking with them outside
        Slack: docs/approvals.md)."""
        self._require_box()
        self.guard.require(actor, Permission.MFA_ADMIN)
        if user_id == actor.user_id:
            raise Refused("You can't approve your own authenticator: another admin has to.")
        with self.db.session() as session:
            row = self.enrolments.locked(session, user_id)
            if row is None or row.state == MfaState.PENDING:
                raise NotFoundError(
                    Text("{} has no confirmed authenticator to approve: they run {} first.").format(
                        mention(user_id), command("mfa", "confirm", "<code>")
                    )
                )
            if row.state == MfaState.ACTIVE:
                raise Refused(Text("{}'s authenticator is already active.").format(mention(user_id)))
            self.enrolments.activate(session, user_id, actor.user_id, self.clock())
            self.audit.append(
                actor.entry(Action.MFA_ACTIVATED, Outcome.OK, details={"user": user_id, "approval": "admin"}),
                session=session,
            )

    def reset(self, actor: Actor, user_id: str) -> bool:
        """An admin removes someone's authenticator (lost phone, a suspected copy); they enrol again."""
        self.guard.require(actor, Permission.MFA_ADMIN)
        with self.db.session() as session:
            removed = self.enrolments.remove(session, user_id)
            if removed:
                self.audit.append(actor.entry(Action.MFA_RESET, Outcome.OK, details={"user": user_id}), session=session)
        return removed

    def status(self, actor: Actor, *, admin_view: bool) -> MfaStatus:
        with self.db.session(readonly=True) as session:
            row = self.enrolments.read(session, actor.user_id)
            waiting = tuple(r.user_id for r in self.enrolments.waiting_for_approval(session)) if admin_view else ()
        locked = row.locked_until if row is not None and row.locked_until and row.locked_until > self.clock() else None
        return MfaStatus(
            state=row.state if row else None,
            approved_by=row.approved_by if row else None,
            locked_until=locked,
            waiting=waiting,
        )

    def is_admin(self, actor: Actor) -> bool:
        return self.guard.access.check(actor.user_id, Permission.MFA_ADMIN).allowed

    # ---- the step-up's check -------------------------------------------------------------------------------------
    def check_ready(self, actor: Actor) -> None:
        """Before the form opens: an approver without an active authenticator, or locked, is told so now."""
        self._require_box()
        with self.db.session(readonly=True) as session:
            row = self.enrolments.read(session, actor.user_id)
        self._refuse_unless_active(row)
        assert row is not None
        self._refuse_if_locked(row, self.clock())

    def verify(self, actor: Actor, typed: str, *, request_id: int) -> None:
        """A right code, not used before, from an active authenticator; else WrongCode / LockedOut / NotEnrolled."""
        self._require_box()
        code = normalised_code(typed)
        now = self.clock()
        with self.db.session() as session:
            row = self.enrolments.locked(session, actor.user_id)
            self._refuse_unless_active(row)
            assert row is not None
            self._refuse_if_locked(row, now)
            step = self._matching_step(row, code, now)
            if step is not None and step > row.last_step:
                self.enrolments.accept(session, actor.user_id, step)
                return
            if step is not None:  # a right code already spent: refused and audited, not counted as a wrong one
                self.audit.append(
                    actor.entry(
                        Action.STEP_UP_FAILED,
                        Outcome.REFUSED,
                        request_id=request_id,
                        details={"method": "totp", "replayed": True},
                    ),
                    session=session,
                )
                locked = None
            else:
                locked = self._count_failure(
                    session, actor, row, now, details={"method": "totp", "replayed": False}, request_id=request_id
                )
        self._raise_wrong(locked, replayed=step is not None)

    # ---- the parts ---------------------------------------------------------------------------------------------
    def _matching_step(self, row: MfaRow, code: str, now: datetime) -> int | None:
        try:
            secret = self._require_box().open(row.sealed_secret, row.user_id)
        except SealBroken:
            raise Refused(
                "Your authenticator's record does not open with this bot's key (the key changed, or the record "
                "was edited): ask an admin to reset it, then enrol again."
            ) from None
        totp = pyotp.TOTP(secret, digits=CODE_DIGITS, interval=STEP_SECONDS)
        current = totp.timecode(now)
        for step in (current - DRIFT_STEPS + i for i in range(2 * DRIFT_STEPS + 1)):
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None

    def _refuse_unless_active(self, row: MfaRow | None) -> None:
        if row is None or row.state == MfaState.PENDING:
            raise NotEnrolled(
                Text(
                    "Approving needs a code from your authenticator app, and you have not enrolled one yet: run {}, "
                    "add the link it gives you to your app, then {}."
                ).format(command("mfa", "enrol"), command("mfa", "confirm", "<code>"))
            )
        if row.state == MfaState.CONFIRMED:
            raise NotEnrolled(
                Text("Your authenticator is confirmed but not approved yet: an admin runs {}.").format(
                    command("mfa", "approve", "@you")
                )
            )

    def _refuse_if_locked(self, row: MfaRow, now: datetime) -> None:
        if row.locked_until is not None and row.locked_until > now:
            raise LockedOut(_locked_words(row.locked_until, now))

    def _count_failure(
        self,
        session: Transaction,
        actor: Actor,
        row: MfaRow,
        now: datetime,
        *,
        details: dict[str, object],
        request_id: int | None = None,
    ) -> datetime | None:
        failures, locked = self.enrolments.count_failure(
            session,
            row.user_id,
            lock_after=LOCK_AFTER,
            locked_until=now + LOCK_FOR,
        )
        self.audit.append(
            actor.entry(
                Action.STEP_UP_FAILED, Outcome.REFUSED, request_id=request_id, details={**details, "failures": failures}
            ),
            session=session,
        )
        if locked is not None:
            self.audit.append(
                actor.entry(
                    Action.STEP_UP_LOCKED,
                    Outcome.REFUSED,
                    request_id=request_id,
                    details={"until": locked.isoformat(timespec="seconds"), "after": LOCK_AFTER},
                ),
                session=session,
            )
        return locked

    def _raise_wrong(self, locked: datetime | None, *, replayed: bool = False) -> None:
        if locked is not None:
            raise LockedOut(_locked_words(locked, self.clock()))
        if replayed:
            raise WrongCode("That code was already used: wait for the next one.", field="code")
        raise WrongCode("That code is not right: nothing was recorded. Check your app and try again.", field="code")


def _locked_words(until: datetime, now: datetime) -> str:
    minutes = max(1, int((until - now).total_seconds() + 59) // 60)
    return (
        f"Too many wrong codes: your approvals are locked for {minutes} more minute{'s' if minutes != 1 else ''}. "
        "Nothing was recorded."
    )

"""Builds the step-up's parts for the composition root (bot/wiring.py): the authenticators (MfaService, with the
key read from MFA_ENCRYPTION_KEY's file) and the step-up itself. Settings were checked at start-up
(bot/config_step_up.py), so a key that cannot be read here is a file changed since, and stops the start."""

from __future__ import annotations

from bot.config import Settings
from bot.config_step_up import EnrolmentApproval, StepUpMode
from bot.secret_box import SecretBox, read_key_file
from bot.usecases.approval_terms import RequestKind
from bot.usecases.approvals import ApprovalService
from bot.usecases.guard import Guard
from bot.usecases.mfa import MfaService
from bot.usecases.step_up import StepUp
from bot.usecases.step_up_terms import StepUpMethod
from storage.audit import AuditLog
from storage.db import Database


def step_up_kinds(settings: Settings) -> frozenset[RequestKind]:
    """The kinds whose Approve needs the step-up (none when APPROVAL_STEP_UP=off)."""
    if settings.approval_step_up == StepUpMode.OFF:
        return frozenset()
    return frozenset(RequestKind(kind) for kind in settings.approval_step_up_for)


def build_step_up(
    settings: Settings, *, db: Database, audit: AuditLog, guard: Guard, approvals: ApprovalService
) -> tuple[MfaService, StepUp]:
    key = settings.mfa_encryption_key
    box = SecretBox(read_key_file(key.reveal())) if key is not None else None
    mfa = MfaService(
        db=db,
        audit=audit,
        guard=guard,
        box=box,
        self_approval=settings.mfa_enrolment_approval == EnrolmentApproval.SELF,
        clock=lambda: approvals.clock(),  # the approvals' clock, also when a test sets it later
    )
    step_up = StepUp(
        approvals=approvals,
        guard=guard,
        mfa=mfa,
        audit=audit,
        method=StepUpMethod(settings.approval_step_up),
        kinds=step_up_kinds(settings),
    )
    return mfa, step_up

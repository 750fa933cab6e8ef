"""The audit vocabulary: every action name and outcome the bot writes to the audit trail.

Rules this module keeps:
- Callers use members (`Action.CREATE_REQUESTED`, `Outcome.OK`), never string literals.
- Names never change: the export and the filters of `/snapshot audit` show them, and old rows keep them.
- An approval step's action is a lookup in `APPROVAL_ACTIONS`, never a formatted string.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    INTENT = "intent"  # about to call VPS.org; an outcome row with the same operation_id follows
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"
    UNKNOWN = "unknown"  # the call's fate is unknown (timeout, crash): someone must look
    INFO = "info"


class Action(StrEnum):
    """Every audit action name the bot writes: callers use members, never literals (the export and the filters
    of `/snapshot audit` show these names, so they never change)."""

    LIST = "list"
    AUDIT_READ = "audit.read"
    AUDIT_REANCHORED = "audit.reanchored"  # an operator re-anchored the chain head (storage.checkpoints)
    CREATE_REQUESTED = "create.requested"
    CREATE_SUCCEEDED = "create.succeeded"
    CREATE_FAILED = "create.failed"
    CREATE_COMPLETED = "create.completed"
    CREATE_TIMEOUT = "create.timeout"
    CREATE_VANISHED = "create.vanished"
    CREATE_NEEDS_CHECK = "create.needs_check"  # found without outcome after a crash
    DELETE_REQUESTED = "delete.requested"
    DELETE_SUCCEEDED = "delete.succeeded"
    DELETE_FAILED = "delete.failed"
    DELETE_NEEDS_CHECK = "delete.needs_check"
    # A delete under the two-person rule: the request's own steps (the call itself is delete.requested/…).
    DELETE_APPROVAL_REQUESTED = "delete.approval_requested"
    DELETE_APPROVAL_APPROVED = "delete.approval_approved"
    DELETE_APPROVAL_REJECTED = "delete.approval_rejected"
    DELETE_APPROVAL_CANCELLED = "delete.approval_cancelled"
    DELETE_APPROVAL_EXPIRED = "delete.approval_expired"
    DELETE_APPROVAL_NOT_SENT = "delete.approval_not_sent"
    DELETE_APPROVAL_STALE = "delete.approval_stale"
    DELETE_APPROVAL_FAILED = "delete.approval_failed"
    RESTORE_REQUESTED = "restore.requested"
    RESTORE_APPROVED = "restore.approved"
    RESTORE_REJECTED = "restore.rejected"
    RESTORE_CANCELLED = "restore.cancelled"
    RESTORE_EXPIRED = "restore.expired"
    RESTORE_EXECUTING = "restore.executing"
    RESTORE_EXECUTED = "restore.executed"
    RESTORE_FAILED = "restore.failed"
    RESTORE_NEEDS_CHECK = "restore.needs_check"
    RESTORE_NOT_SENT = "restore.not_sent"  # approved, but given up before sending: nothing reached VPS.org
    RESTORE_STALE = "restore.stale"  # approved, but the snapshot no longer matched what the card showed
    RESTORE_FINISHED = "restore.finished"
    RESTORE_TIMEOUT = "restore.timeout"
    RESTORE_VANISHED = "restore.vanished"  # the server disappeared mid-restore
    # Schedules (issue 18): added and removed by a person; each run acts as "system" on behalf of the creator.
    SCHEDULE_CREATED = "schedule.created"
    SCHEDULE_REMOVED = "schedule.removed"
    SCHEDULE_CHANGED = "schedule.changed"  # `/snapshot reschedule` applied at once (deletes need no approval)
    # A schedule made or changed while deletes need approval: its `schedule` request's steps; `executed` is the
    # approved settings taking effect (the schedule enabled, or changed in place; no call to VPS.org).
    SCHEDULE_APPROVAL_REQUESTED = "schedule.approval_requested"
    SCHEDULE_APPROVAL_APPROVED = "schedule.approval_approved"
    SCHEDULE_APPROVAL_REJECTED = "schedule.approval_rejected"
    SCHEDULE_APPROVAL_CANCELLED = "schedule.approval_cancelled"
    SCHEDULE_APPROVAL_EXPIRED = "schedule.approval_expired"
    SCHEDULE_APPROVAL_NOT_SENT = "schedule.approval_not_sent"  # approved, given up before applying: pending again
    SCHEDULE_APPROVAL_STALE = "schedule.approval_stale"  # changed/removed meanwhile, or no longer fits: nothing applied
    SCHEDULE_APPROVAL_FAILED = "schedule.approval_failed"
    SCHEDULE_APPROVAL_EXECUTED = "schedule.approval_executed"
    SCHEDULE_APPROVAL_NEEDS_CHECK = "schedule.approval_needs_check"
    SCHEDULE_SKIPPED = "schedule.skipped"  # a slot not run: the server was full (on_full=skip, or nothing to rotate)
    SCHEDULE_FAILED = "schedule.failed"  # a slot whose snapshot could not be started or never completed
    APPROVAL_REMINDED = "approval.reminded"  # a waiting request's approvers reminded in its thread (intent → outcome)
    APPROVAL_ESCALATED = "approval.escalated"  # APPROVAL_ESCALATE_TO told in the thread and by DM (intent → outcome)
    REFUSED_SELF_APPROVAL = "refused.self_approval"
    REFUSED_PERMISSION = "refused.permission"
    REFUSED_VALIDATION = "refused.validation"
    REFUSED_RATE_LIMITED = "refused.rate_limited"
    REFUSED_CHANNEL = "refused.channel"
    REFUSED_TEAM = "refused.team"
    REFUSED_NOT_PENDING = "refused.not_pending"
    # The step-up before approving (issue 28 §2): no code, secret or typed answer is ever in these rows.
    STEP_UP_FAILED = "step_up.failed"  # a wrong answer in the step-up form; nothing was recorded
    STEP_UP_LOCKED = "step_up.locked"  # five wrong codes: that person's approvals are locked for a while
    MFA_ENROL_STARTED = "mfa.enrol_started"
    MFA_CONFIRMED = "mfa.confirmed"  # the person proved they hold the authenticator (a right code)
    MFA_ACTIVATED = "mfa.activated"  # an admin (or, with MFA_ENROLMENT_APPROVAL=self, the person) made it active
    MFA_RESET = "mfa.reset"
    SNAPSHOT_PINNED = "snapshot.pinned"  # protected from retention, "Free oldest" and deletes (intent → outcome)
    SNAPSHOT_UNPINNED = "snapshot.unpinned"


# The action of each step of an approval request, by (request kind, step). A delete's outcome after the call is
# written by the delete itself (delete.succeeded / delete.failed), so it has no `executed` step here.
APPROVAL_ACTIONS: dict[tuple[str, str], Action] = {
    ("restore", "requested"): Action.RESTORE_REQUESTED,
    ("restore", "approved"): Action.RESTORE_APPROVED,
    ("restore", "rejected"): Action.RESTORE_REJECTED,
    ("restore", "cancelled"): Action.RESTORE_CANCELLED,
    ("restore", "expired"): Action.RESTORE_EXPIRED,
    ("restore", "not_sent"): Action.RESTORE_NOT_SENT,
    ("restore", "stale"): Action.RESTORE_STALE,
    ("restore", "failed"): Action.RESTORE_FAILED,
    ("restore", "executed"): Action.RESTORE_EXECUTED,
    ("restore", "needs_check"): Action.RESTORE_NEEDS_CHECK,
    ("delete", "requested"): Action.DELETE_APPROVAL_REQUESTED,
    ("delete", "approved"): Action.DELETE_APPROVAL_APPROVED,
    ("delete", "rejected"): Action.DELETE_APPROVAL_REJECTED,
    ("delete", "cancelled"): Action.DELETE_APPROVAL_CANCELLED,
    ("delete", "expired"): Action.DELETE_APPROVAL_EXPIRED,
    ("delete", "not_sent"): Action.DELETE_APPROVAL_NOT_SENT,
    ("delete", "stale"): Action.DELETE_APPROVAL_STALE,
    ("delete", "failed"): Action.DELETE_APPROVAL_FAILED,
    ("delete", "needs_check"): Action.DELETE_NEEDS_CHECK,
    ("schedule", "requested"): Action.SCHEDULE_APPROVAL_REQUESTED,
    ("schedule", "approved"): Action.SCHEDULE_APPROVAL_APPROVED,
    ("schedule", "rejected"): Action.SCHEDULE_APPROVAL_REJECTED,
    ("schedule", "cancelled"): Action.SCHEDULE_APPROVAL_CANCELLED,
    ("schedule", "expired"): Action.SCHEDULE_APPROVAL_EXPIRED,
    ("schedule", "not_sent"): Action.SCHEDULE_APPROVAL_NOT_SENT,
    ("schedule", "stale"): Action.SCHEDULE_APPROVAL_STALE,
    ("schedule", "failed"): Action.SCHEDULE_APPROVAL_FAILED,
    ("schedule", "executed"): Action.SCHEDULE_APPROVAL_EXECUTED,
    ("schedule", "needs_check"): Action.SCHEDULE_APPROVAL_NEEDS_CHECK,
}

"""What approving a request does, in the approver's words: said once before the vote is recorded, by the Approve
button's confirm dialog or, when the step-up applies to the request's kind, by the step-up form instead (a second
confirmation in a row would only teach people to click through).

Rules kept here: the wording depends only on the request and on which Approve was pressed (`SafetyChoice`: the
card's default, or none), and a restore's safety snapshot is promised only when the approval would take one (the
same rule as bot/usecases/approval_safety_offer.py: a free slot, or one required everywhere).
"""

from __future__ import annotations

from bot.mrkdwn import Mrkdwn, code
from bot.slack.blocks.common import server_name, snapshot_name
from bot.slack.blocks.schedule_requests import consequence as schedule_consequence
from bot.usecases.approval_base import RequestView
from bot.usecases.approval_safety import safety_name
from bot.usecases.approval_terms import RequestKind, SafetyChoice, SafetyOffer


def takes_safety_snapshot(req: RequestView, safety: SafetyChoice) -> bool:
    """Whether approving a restore with `safety` takes the safety snapshot first."""
    if req.kind != RequestKind.RESTORE or not req.safety_offer or safety == SafetyChoice.NONE:
        return False
    return safety == SafetyChoice.SNAPSHOT or req.safety_offer == SafetyOffer.FREE or req.safety_required


def approve_consequence(req: RequestView, safety: SafetyChoice = SafetyChoice.DEFAULT) -> Mrkdwn:
    """What approving `req` with `safety` does."""
    snapshot = snapshot_name(req.snapshot_name)
    server = server_name(req.server_name, req.server_id)
    if req.kind == RequestKind.SCHEDULE:
        return schedule_consequence(req)
    if req.kind != RequestKind.RESTORE:
        return Mrkdwn("{} (#{}) will be deleted permanently.").format(snapshot, req.snapshot_id)
    if takes_safety_snapshot(req, safety):
        return Mrkdwn(
            "A safety snapshot {} of the server is taken first; once VPS.org says it is completed, {} (#{}) is "
            "restored onto {}, overwriting all current data there. Restoring the safety snapshot undoes it."
        ).format(code(safety_name(req.id)), snapshot, req.snapshot_id, server)
    restored = Mrkdwn(
        "{} (#{}) will be restored onto {}. All current data there is overwritten. This cannot be undone."
    ).format(snapshot, req.snapshot_id, server)
    return restored + Mrkdwn(" No safety snapshot: no undo.") if req.safety_offer else restored

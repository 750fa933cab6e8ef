"""What the safety step answers the restore: go on (`READY`), stop because the claim was lost (`LOST`), or stop
and say why (`unsafe`): the card's words always end with "The restore was NOT sent", and the audit trail gets the
short reason. A new step before the call answers in the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.usecases.wording import Text, sentence


@dataclass(frozen=True)
class SafetyOutcome:
    """Whether the restore may go on; when not, why (for the card) and a short reason (for the audit trail)."""

    ready: bool
    message: Text = field(default_factory=Text)
    reason: str = ""
    claim_lost: bool = False


READY = SafetyOutcome(True)
LOST = SafetyOutcome(False, claim_lost=True)


def unsafe(why: str | Text, reason: str) -> SafetyOutcome:
    """The restore must not go on: `why` for the card (a sentence), `reason` for the audit trail."""
    said = sentence(why)
    if not str(said).rstrip().endswith((".", "!", "?")):
        said += Text(".")
    return SafetyOutcome(False, said + Text(" The restore was NOT sent. Approve again, or cancel."), reason)

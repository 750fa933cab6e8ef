"""The typed vocabulary of approvals, in one place for every part and the Slack side: what a request asks for
(`RequestKind`), where it is (`RequestState`), and the safety snapshot's mode (`RESTORE_SAFETY_SNAPSHOT`), offer,
choice and step. Every one is a `StrEnum`, so a stored string and its member compare equal; parse a string with
the enum itself (`SafetyMode("always")`), never compare a kind or a state with a literal.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from bot.config_values import SafetyMode  # a setting, parsed once where the settings are read
from storage.approval_states import CLAIMED_STATES, OPEN_STATES, RequestKind, RequestState
from storage.operations import OperationState  # an executed restore, followed: its card tells how it ended


class SafetyChoice(StrEnum):
    """What an approver's click asks for: the card's default, a safety snapshot first, or none. A vote and a
    request record `SNAPSHOT` or `NONE` (`Chosen`: "" before anyone chose)."""

    DEFAULT = "default"
    SNAPSHOT = "snapshot"
    NONE = "none"


Chosen = SafetyChoice | Literal[""]


class SafetyOffer(StrEnum):
    """What a restore's card offers about the safety snapshot."""

    NONE = ""  # not offered (off, or not a restore)
    FREE = "free"  # the server had a free slot when the request was made
    FULL = "full"


class SafetyState(StrEnum):
    """The safety snapshot's step, as the executor recorded it under its claim."""

    NONE = ""
    CREATING = "creating"  # the create may have been sent; its answer is not recorded yet
    FOLLOWING = "following"  # created; waiting for VPS.org to say it is completed
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the create's outcome is unknown
    TIMEOUT = "timeout"


def chosen(stored: str | None) -> Chosen:
    """A recorded choice read back from its column ("" when none was recorded)."""
    return SafetyChoice(stored) if stored else ""


__all__ = [
    "CLAIMED_STATES",
    "OPEN_STATES",
    "Chosen",
    "OperationState",
    "RequestKind",
    "RequestState",
    "SafetyChoice",
    "SafetyMode",
    "SafetyOffer",
    "SafetyState",
    "chosen",
]

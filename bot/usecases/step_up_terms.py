"""The step-up's vocabulary, shared by deciding (bot/usecases/approval_deciding.py) and the step-up itself
(bot/usecases/step_up.py) without either importing the other's module: the method, and the proof that a vote
went through it (bound to the digest of the request the form was opened for)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StepUpMethod(StrEnum):
    OFF = "off"
    TYPED = "typed"  # the server's name typed: a deliberate confirmation, not authentication
    TOTP = "totp"  # a code from an enrolled authenticator: authentication


@dataclass(frozen=True)
class StepUpProof:
    """A step-up passed, for one request as its form showed it (`digest`: the request's bound digest then)."""

    method: StepUpMethod
    digest: str | None

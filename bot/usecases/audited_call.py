"""One audited VPS.org call: intent row committed, the call made once, then the outcome handed to its writer.

Every state change on VPS.org (create, delete, restore) goes through `audited_call`, so the rules hold for all:
- The intent row is durable BEFORE the call: if writing it fails, the call is never made. (A restore's intent is
  committed by the caller together with its `sending` mark, and passes `write_intent=None` to say so.)
- The call is made exactly once here: no retry of a POST/DELETE (the client never retries them either).
- Whatever happens — an answer or a `VpsError` — the outcome writer runs with what happened and how long it took,
  so the operation id of the intent is always settled by an outcome row (or, after a crash between the two, by
  the recovery sweep). Any other exception is a bug and propagates unrecorded; the sweep then flags the intent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.vps.errors import Unavailable, VpsError
from storage.audit import Outcome

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class CallResult(Generic[T]):
    """What one call did: its answer, or the error it raised, and its duration."""

    answer: T | None
    error: VpsError | None
    duration_ms: int

    @property
    def outcome_unknown(self) -> bool:
        """The request may have reached VPS.org although no answer came back (a timeout after sending)."""
        return isinstance(self.error, Unavailable) and self.error.outcome_unknown

    @property
    def failure_outcome(self) -> Outcome:
        return Outcome.UNKNOWN if self.outcome_unknown else Outcome.FAILED

    def error_details(self, **extra: object) -> dict[str, object]:
        """The audit details of a failed call (status, VPS.org's message, the error type, the duration)."""
        assert self.error is not None
        return {
            "status_code": self.error.status_code,
            "api_message": self.error.api_message,
            "error": type(self.error).__name__,
            "outcome_unknown": getattr(self.error, "outcome_unknown", False),
            "duration_ms": self.duration_ms,
            **extra,
        }


def audited_call(
    call: Callable[[], T],
    *,
    write_intent: Callable[[], object] | None,
    write_outcome: Callable[[CallResult[T]], R],
    monotonic: Callable[[], float] = time.monotonic,
) -> R:
    """Write the intent (committed), make `call` once, and return what `write_outcome` makes of the result."""
    if write_intent is not None:
        write_intent()
    started = monotonic()
    try:
        answer = call()
    except VpsError as error:
        return write_outcome(CallResult(None, error, _ms(started, monotonic)))
    return write_outcome(CallResult(answer, None, _ms(started, monotonic)))


def _ms(started: float, monotonic: Callable[[], float]) -> int:
    return round((monotonic() - started) * 1000)

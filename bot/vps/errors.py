"""What can go wrong talking to VPS.org, as a hierarchy a caller can act on.

No exception text ever contains the bearer token.
"""

from __future__ import annotations


class VpsError(Exception):
    """Base class. `status_code` is the HTTP status when there was a response; `api_message` the API's words."""

    def __init__(self, message: str, *, status_code: int | None = None, api_message: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.api_message = api_message


class Unauthorized(VpsError):
    """401: the bot's token was rejected."""


class NotFound(VpsError):
    """404: the server or snapshot does not exist."""


class Rejected(VpsError):
    """400: invalid parameters, snapshot limit reached, or server not in a valid state."""

    @property
    def limit_reached(self) -> bool:
        text = (self.api_message or "").lower()
        return "limit" in text or "maximum" in text


class Unavailable(VpsError):
    """5xx, 429, timeouts, connection errors, unreadable answers.

    `outcome_unknown` is True when the request may have reached VPS.org (a POST/DELETE that timed out or lost its
    connection after sending): the caller must say "unknown — check before retrying", never retry blindly.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        api_message: str | None = None,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, api_message=api_message)
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class DeadlineExceeded(Unavailable):
    """A read (with its retries) did not finish within the caller's total deadline; nothing was changed."""

"""Errors a use case raises, each carrying the plain-words message a user should read."""

from __future__ import annotations

from bot.vps.errors import NotFound, Rejected, Unauthorized, Unavailable, VpsError


class UserFacingError(Exception):
    """Something the user should be told. `str(error)` is the message, already in plain words."""

    @property
    def message(self) -> str:
        return str(self)


class InvalidInput(UserFacingError):
    """The request was malformed (bad id, bad name): nothing was sent to VPS.org."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(UserFacingError):
    """The server, snapshot or request does not exist."""


class CouldNotConfirm(UserFacingError):
    """VPS.org's list was incomplete (or too slow), so whether the snapshot exists is not known: nothing was done."""


class Refused(UserFacingError):
    """Access control, rate limit, channel, self-approval, or a request that is no longer pending."""


class QuotaReached(UserFacingError):
    """The server already has the maximum number of snapshots; `oldest_snapshot_id` is offered for deletion."""

    def __init__(self, message: str, *, server_id: int, oldest_snapshot_id: int | None) -> None:
        super().__init__(message)
        self.server_id = server_id
        self.oldest_snapshot_id = oldest_snapshot_id


class ApiFailure(UserFacingError):
    """VPS.org refused or failed. `outcome_unknown` means the change may or may not have happened."""

    def __init__(self, message: str, *, status_code: int | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.outcome_unknown = outcome_unknown


class StorageUnavailable(UserFacingError):
    """The bot's database could not be written: the action was not started (audit first, always)."""


def explain_vps_error(error: VpsError, doing: str) -> ApiFailure:
    """Turn a VPS.org error into plain words. `doing` completes "… while <doing>", e.g. "creating the snapshot"."""
    status = error.status_code
    api_words = f" VPS.org said: “{error.api_message}”" if error.api_message else ""
    code = f" (HTTP {status})" if status else ""
    if isinstance(error, Unauthorized):
        text = "The bot's VPS.org token was rejected — tell an admin. Nothing was changed."
    elif isinstance(error, NotFound):
        text = f"VPS.org could not find it while {doing}{code}.{api_words}"
    elif isinstance(error, Rejected):
        text = f"VPS.org refused {doing}{code}.{api_words}"
    elif isinstance(error, Unavailable) and error.outcome_unknown:
        text = (
            f"VPS.org did not answer while {doing}{code}, so the outcome is *unknown* — "
            "check `/snapshot list` before retrying."
        )
    elif isinstance(error, Unavailable):
        wait = f" Try again in {int(error.retry_after)} s." if error.retry_after else ""
        text = f"VPS.org did not answer while {doing}{code}; nothing was changed.{wait}"
    else:
        text = f"VPS.org failed while {doing}{code}.{api_words}"
    return ApiFailure(
        text,
        status_code=status,
        outcome_unknown=isinstance(error, Unavailable) and error.outcome_unknown,
    )

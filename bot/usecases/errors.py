"""Errors a use case raises, each carrying the plain-words message a user should read.

A message holding text from outside (a name, VPS.org's words) is built as `Text` (bot/usecases/wording.py) with
`code()`/`plain()`; a plain `str` message is taken as a sentence the bot wrote (no markup, no outside values).
The edge renders `error.message` (the Slack side: `bot.slack.wording.render`); `str(error)` is the record form.
"""

from __future__ import annotations

from bot.usecases.wording import Text, code, command, emphasis, quote, sentence
from bot.vps.errors import NotFound, Rejected, Unauthorized, Unavailable, VpsError
from storage.errors import StorageError as StorageError  # re-exported: the one storage failure the Slack side sees


class UserFacingError(Exception):
    """Something the user should be told. `str(error)` is the message, already in plain words."""

    @property
    def message(self) -> Text:
        """The message as use-case wording (see the module docstring)."""
        first = self.args[0] if self.args else ""
        return first if isinstance(first, Text) else sentence(str(self))


class InvalidInput(UserFacingError):
    """The request was malformed (bad id, bad name): nothing was sent to VPS.org."""

    def __init__(self, message: str | Text, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(UserFacingError):
    """The server, snapshot or request does not exist."""


class AlreadyGone(NotFoundError):
    """VPS.org answered 404 to the DELETE itself: the snapshot is gone (authoritative, unlike a listing that merely
    did not contain it), so requests about it can never be carried out."""

    def __init__(self, message: str | Text, *, snapshot_id: int) -> None:
        super().__init__(message)
        self.snapshot_id = snapshot_id


class CouldNotConfirm(UserFacingError):
    """VPS.org's list was incomplete (or too slow), so whether the snapshot exists is not known: nothing was done."""


class Refused(UserFacingError):
    """Access control, rate limit, channel, self-approval, or a request that is no longer pending."""


class QuotaReached(UserFacingError):
    """The server already has the maximum number of snapshots; `oldest_snapshot_id` is offered for deletion."""

    def __init__(self, message: str | Text, *, server_id: int, oldest_snapshot_id: int | None) -> None:
        super().__init__(message)
        self.server_id = server_id
        self.oldest_snapshot_id = oldest_snapshot_id


class ApiFailure(UserFacingError):
    """VPS.org refused or failed. `outcome_unknown` means the change may or may not have happened."""

    def __init__(self, message: str | Text, *, status_code: int | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.outcome_unknown = outcome_unknown


class StorageUnavailable(UserFacingError):
    """The bot's database could not be written: the action was not started (audit first, always)."""


class AuditTrailBroken(Exception):
    """The audit trail refuses new rows (its chain head is missing: evidence of tampering, until an operator
    re-anchors it), so nothing was done. Raised where an append fails (bot/auditing.py), from storage's
    `ChainHeadMissing`.

    Deliberately not a `UserFacingError`: a use case that turns those into a recorded answer ("gave up",
    "failed") must not swallow this one; it reaches the listener, which tells the user what an admin must do.
    """


def doing_with(words: str, name: str) -> Text:
    """`explain_vps_error`'s `doing` for an action on a named thing, e.g. doing_with("creating snapshot", name)."""
    return Text("{} {}").format(sentence(words), code(name, 64))


def explain_vps_error(error: VpsError, doing: Text | str) -> ApiFailure:
    """Turn a VPS.org error into plain words. `doing` completes "… while <doing>", e.g. "creating the snapshot".

    VPS.org's own words are shown as outside text (already redacted by the client; the renderer redacts again)."""
    status = error.status_code
    doing = sentence(doing)
    api_words = Text(" VPS.org said: {}").format(quote(error.api_message, 300)) if error.api_message else Text()
    code_part = Text(" (HTTP {})").format(status) if status else Text()
    if isinstance(error, Unauthorized):
        text = Text("The bot's VPS.org token was rejected — tell an admin. Nothing was changed.")
    elif isinstance(error, NotFound):
        text = Text("VPS.org could not find it while {}{}.{}").format(doing, code_part, api_words)
    elif isinstance(error, Rejected):
        text = Text("VPS.org refused {}{}.{}").format(doing, code_part, api_words)
    elif isinstance(error, Unavailable) and error.outcome_unknown:
        text = Text("VPS.org did not answer while {}{}, so the outcome is {} — check {} before retrying.").format(
            doing, code_part, emphasis("unknown"), command("list")
        )
    elif isinstance(error, Unavailable):
        wait = Text(" Try again in {} s.").format(int(error.retry_after)) if error.retry_after else Text()
        text = Text("VPS.org did not answer while {}{}; nothing was changed.{}").format(doing, code_part, wait)
    else:
        text = Text("VPS.org failed while {}{}.{}").format(doing, code_part, api_words)
    return ApiFailure(
        text,
        status_code=status,
        outcome_unknown=isinstance(error, Unavailable) and error.outcome_unknown,
    )

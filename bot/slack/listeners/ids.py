"""Ids as a command, a click or a form carries them, parsed here, once, before any use case is called: use cases
take `int`s and never see the text.

Rules kept here:
- The answer to a bad id is the one bot/usecases/validation.py words ("The snapshot id must be a whole number,
  like 12345 — got …"); a request id that cannot be one names no request ("That approval request does not
  exist."), as an id that names none. Only ASCII digits make an id: a forged button value, `1e3` or full-width
  digits are refused, never read as some other id.
- A bad snapshot, server or schedule id that someone sent to change something is a validation refusal and is
  audited as one (`refused.validation`, with the operation it was for); then nothing else happens. Reading (the
  Change form, a request id on a button) refuses without a row, as before.
- Call these inside the work after the ack (`run_for_user`): the refusal reaches the user the way every other
  answer to that command or click does.
"""

from __future__ import annotations

from bot.runtime import Core
from bot.usecases.context import Actor
from bot.usecases.errors import InvalidInput
from bot.usecases.validation import parse_id, parse_request_id

__all__ = ["audited_id", "parse_id", "parse_request_id"]


def audited_id(core: Core, actor: Actor, raw: str | None, what: str, *, operation: str) -> int:
    """`raw` as the id named by `what` ("snapshot id", "server id", "schedule id"); a malformed one is audited as
    refused for `operation` (e.g. "delete") and raised as `InvalidInput`."""
    try:
        return parse_id(raw, what)
    except InvalidInput as error:
        core.guard.record_invalid(actor, operation, error)
        raise

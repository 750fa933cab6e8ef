"""Checks before asking someone to approve (issue 17 §1), and their words: a request that collides with an open one,
a server VPS.org reports suspended or already being restored.

Rules kept here:
- A collision names the request in the way (its number, who asked, who approved, how long ago) so the person
  can act on that one instead; `RequestConflict` carries it, and the Slack side adds the link to its card.
- "Being restored" comes from the bot's own records first (an approved restore still being followed, or one
  being sent); VPS.org saying `restoring` without a request of ours is told as such.
- A state that could not be checked never refuses; it becomes a note the requester and the approvers read.
- Pure: no Slack, no SQL, no VPS.org call here (the callers read; this decides and words).
"""

from __future__ import annotations

from datetime import datetime

from bot.usecases.approval_base import RequestView
from bot.usecases.approval_terms import RequestKind, RequestState
from bot.usecases.errors import Refused
from bot.usecases.server_state import ServerState
from bot.usecases.wording import Text, code, emphasis, mention, plain

_APPROVED = (RequestState.EXECUTING, RequestState.SENDING, RequestState.EXECUTED)


class RequestConflict(Refused):
    """A new request would collide with `request` (open, or a restore still running): nothing was asked."""

    def __init__(self, message: Text, *, request: RequestView) -> None:
        super().__init__(message)
        self.request = request


def ago(moment: datetime | None, now: datetime) -> str:
    """ "just now", "3 minutes ago", "2 hours ago": how long ago, in words (no Slack date formatting here)."""
    if moment is None:
        return "some time ago"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    hours = minutes // 60
    return f"{hours} hours ago"


def conflict(existing: RequestView, kind: str, snapshot_id: int, now: datetime) -> RequestConflict:
    """The refusal of a new `kind` request on `snapshot_id`, naming the request in its way."""
    server = code(existing.server_name or f"server {existing.server_id}", 80)
    asked = Text("asked by {} {}").format(mention(existing.requester_id), plain(ago(existing.created_at, now)))
    if existing.decided_by and existing.decided_by != "system" and existing.state in _APPROVED:
        asked = Text("asked by {}, approved by {} {}").format(
            mention(existing.requester_id), mention(existing.decided_by), plain(ago(existing.decided_at, now))
        )
    source = Text("#{} (request #{})").format(existing.snapshot_id, existing.id)
    if existing.kind == RequestKind.RESTORE and existing.state in _APPROVED:
        message = Text("{} is being restored from {}, {}. Nothing was asked: wait until it finishes.").format(
            server, source, asked
        )
    else:
        about = Text("snapshot #{}").format(snapshot_id) if existing.snapshot_id == snapshot_id else server
        message = Text(
            "There is already an open {} request for {}: request #{} ({} from {}), {}, waiting for approval. "
            "Nothing new was asked: approve, reject or cancel that one."
        ).format(
            plain(existing.kind, 20),
            about,
            existing.id,
            plain(existing.kind, 20),
            code(existing.snapshot_name, 64),
            asked,
        )
    return RequestConflict(message, request=existing)


def refusal(state: ServerState, server_name: str) -> Text | None:
    """Why VPS.org's state of the server rules a restore out now; None when it does not (or was not checked)."""
    server = code(state.name or server_name or f"server {state.server_id}", 80)
    if state.suspended:
        return Text(
            "{} (server {}) is {} at VPS.org, so it can't be restored. "
            "Nothing was asked; sort out the suspension with VPS.org first."
        ).format(server, state.server_id, emphasis("suspended"))
    if state.restoring:
        return Text(
            "VPS.org says {} (server {}) is {}, and not through a request of this bot "
            "(perhaps from the VPS.org panel). Nothing was asked; wait until it is active again."
        ).format(server, state.server_id, emphasis("already being restored"))
    return None


def unsendable(state: ServerState, server_name: str) -> str | None:
    """`refusal`, worded for the moment of sending (stored on the request, shown on its card)."""
    server = state.name or server_name or f"server {state.server_id}"
    if state.suspended:
        return f"Not sent: {server} is suspended at VPS.org, so it can't be restored. Nothing was sent to VPS.org."
    if state.restoring:
        return (
            f"Not sent: VPS.org says {server} is already being restored (not by this request). "
            "Nothing was sent to VPS.org; ask again once it is active."
        )
    return None


def unchecked_note(state: ServerState) -> str:
    """The note for the requester and the card when the state could not be checked (or is one the bot doesn't know)."""
    if state.unknown_status:
        return (
            f"VPS.org reports the server as '{state.status}', a state the bot does not know; "
            "VPS.org may refuse the restore."
        )
    if not state.checked:
        return (
            f"The server's state could not be checked ({state.problem}); "
            "VPS.org may still refuse the restore if the server is suspended or busy."
        )
    return ""

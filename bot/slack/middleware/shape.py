"""Shape checks: a signed request is not necessarily a well-formed one, so nothing trusts a field's type unchecked.

Runs right after the signature check, before anything (Bolt included) reads the body; anything odd gets 400.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

log = logging.getLogger(__name__)

MALFORMED = "malformed request\n"
# The interaction types this app can receive; legacy ones (attachments, dialogs) it never asks for are refused.
_INTERACTION_TYPES = frozenset(
    {"block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut", "message_action"}
)
_MAX_TYPED = 1000  # what a person typed into a select to filter it: Slack sends a short query
_EVENT_TYPES = frozenset({"event_callback", "url_verification", "app_rate_limited"})
_MAX_ID = 200  # ids Slack sends are far shorter; longer "ids" are not from Slack
_MAX_ACTIONS = 25  # a block_actions payload carries one action; 25 is Slack's element limit per block


# ---- shape ---------------------------------------------------------------------------------------------
def payload_problem(body: Any) -> str | None:
    """Why `body` is not a payload this app can handle safely, or None when it is."""
    if not isinstance(body, dict):
        return "not a JSON object"
    if "command" in body:
        return _slash_command_problem(body)
    kind = body.get("type")
    if not isinstance(kind, str):
        return "no payload type"
    if kind in _EVENT_TYPES:
        return _event_problem(body) if kind == "event_callback" else None
    if kind not in _INTERACTION_TYPES:
        return f"unknown payload type {kind[:40]!r}"
    user = body.get("user")
    if not isinstance(user, dict) or not _is_id(user.get("id")):
        return "no user"
    for key in ("team", "channel", "container", "message", "enterprise"):
        if body.get(key) is not None and not isinstance(body.get(key), dict):
            return f"{key} is not an object"
    for key in ("trigger_id", "response_url", "api_app_id"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            return f"{key} is not text"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not 0 < len(actions) <= _MAX_ACTIONS:
            return "no actions"
        for action in actions:
            # Bolt's listener matching reads action_id (and block_id when given) without checking.
            if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
                return "malformed action"
            if action.get("block_id") is not None and not isinstance(action.get("block_id"), str):
                return "malformed action"
            if action.get("value") is not None and not isinstance(action.get("value"), str):
                return "action value is not text"
    if kind == "block_suggestion":  # a select asking for its options: Bolt matches action_id (and block_id)
        if not isinstance(body.get("action_id"), str):
            return "suggestion without action_id"
        if body.get("block_id") is not None and not isinstance(body.get("block_id"), str):
            return "malformed suggestion"
        typed = body.get("value")
        if typed is not None and not (isinstance(typed, str) and len(typed) <= _MAX_TYPED):
            return "suggestion value is not short text"
        view = body.get("view")
        if view is not None and not isinstance(view, dict):
            return "view is not an object"
        metadata = view.get("private_metadata") if isinstance(view, dict) else None
        if metadata is not None and not isinstance(metadata, str):
            return "private_metadata is not text"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        # Bolt itself reads view.type and view.callback_id when matching listeners.
        if not isinstance(view, dict) or not all(isinstance(view.get(k), str) for k in ("type", "callback_id")):
            return "no view"
        state = view.get("state")
        if state is not None and not (isinstance(state, dict) and isinstance(state.get("values", {}), dict)):
            return "malformed view state"
        if view.get("private_metadata") is not None and not isinstance(view.get("private_metadata"), str):
            return "private_metadata is not text"
    if kind in ("shortcut", "message_action") and not isinstance(body.get("callback_id"), str):
        return "shortcut without callback_id"
    return None


def _slash_command_problem(body: dict[str, Any]) -> str | None:
    # Form fields always arrive as strings; a JSON body pretending to be a command may not.
    for key in ("command", "user_id", "team_id"):
        if not _is_id(body.get(key)):
            return f"slash command without {key}"
    for key in ("text", "channel_id", "user_name", "trigger_id", "response_url", "api_app_id"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            return f"{key} is not text"
    return None


def _event_problem(body: dict[str, Any]) -> str | None:
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "event callback without an event"
    if body.get("event_id") is not None and not _is_id(body.get("event_id")):
        return "malformed event_id"
    authorizations = body.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        return "malformed authorizations"
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_ID


# Plain `Middleware` classes, not `@app.middleware` functions: Bolt builds a function's keyword arguments from
# the body eagerly (`body["actions"][0]`, …), which raises on exactly the payloads these checks exist to stop.
class WellFormedPayloads(Middleware):
    """Runs right after Bolt's signature check (as `before_authorize`), before anything reads the body."""

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        problem = payload_problem(req.body)
        if problem is not None:
            log.info("refused a malformed request: %s", problem)
            return BoltResponse(status=400, body=MALFORMED)
        return next()

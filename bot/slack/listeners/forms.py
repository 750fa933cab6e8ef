"""Reading a submitted form (a modal's `view`): its fields, and who submitted it from which channel.

Every reader tolerates a form of an older shape or a forged one: a missing field reads as "", a missing channel
as None (the answer then goes by direct message: bot/slack/listeners/answering.py).
"""

from __future__ import annotations

import json
from typing import Any

from bot.slack.blocks import SERVER_PICK
from bot.slack.listeners.common import actor_from_payload
from bot.usecases.context import Actor


def view_value(view: dict[str, Any], block_id: str) -> str:
    """A field's value: a text input's text, or a select's chosen option (the create form's server)."""
    try:
        fields = view["state"]["values"][block_id]
        field = fields.get(SERVER_PICK) or fields["value"]  # a form opened before the select came still submits
        chosen = field.get("selected_option")
        value = chosen.get("value") if isinstance(chosen, dict) else field.get("value")
    except (KeyError, TypeError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def selected(view: dict[str, Any], block_id: str) -> str:
    """A select's chosen option (or a text input's text, for a form of an older shape)."""
    try:
        value = view["state"]["values"][block_id]["value"]
        chosen = value.get("selected_option") or {}
        return str(chosen.get("value") or value.get("value") or "")
    except (KeyError, TypeError, AttributeError):
        return ""


def view_channel(view: dict[str, Any]) -> str | None:
    """The channel the form was opened from (its `private_metadata`), or None (opened from App Home)."""
    try:
        channel = json.loads(view.get("private_metadata") or "{}").get("channel_id")
    except (ValueError, AttributeError):
        return None
    return channel if isinstance(channel, str) and channel else None


def submitter(body: dict[str, Any], view: dict[str, Any]) -> Actor:
    """Who submitted the form, acting in the channel it was opened from."""
    actor = actor_from_payload(body)
    return Actor(actor.user_id, actor.name, actor.team_id, view_channel(view))

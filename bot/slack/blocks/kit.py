"""Block Kit blocks built as plain dicts, for the one message built under load: a `/snapshot list` page.

Why: slack_sdk's `to_dict()` re-discovers and runs every validator of every object on each call; for a list page
(~100 objects) that was 2.3 of the 3.4 ms of CPU its rendering took per command, CPU that a `serve` worker's acks
wait for (issue 27 §6, row 1a). These builders make the same dicts directly.

Rules it keeps: each function returns exactly what `to_dict()` of the slack_sdk model it names returns for the
same arguments (tests/unit/slack/test_kit_blocks.py parses every list page back through slack_sdk's models and
compares); every limit those models validate is enforced here by clipping to the limit common.py takes from the
models themselves, or by refusing a value this module's callers never produce (an action id or value too long).
Text goes through `md` (mrkdwn, `Mrkdwn` only, clipped, verbatim) exactly as the object builders' does.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ContextBlock

from bot.mrkdwn import Mrkdwn
from bot.slack.blocks.common import MAX_BUTTON_TEXT, MAX_CONTEXT_TEXT, MAX_TEXT, clip, md

Block = dict[str, Any]

MAX_ACTION_ID = ButtonElement.action_id_max_length
MAX_BUTTON_VALUE = ButtonElement.value_max_length
MAX_ACTIONS = ActionsBlock.elements_max_length
MAX_CONTEXT_ELEMENTS = ContextBlock.elements_max_length


def mrkdwn(text: Mrkdwn, limit: int = MAX_TEXT) -> Block:
    """`MarkdownTextObject(verbatim=True).to_dict()`, through the same clipping as `common.md`."""
    clipped = md(text, limit)
    return {"type": "mrkdwn", "text": clipped.text, "verbatim": True}


def button(text: str, action_id: str, value: str, *, danger: bool = False) -> Block:
    """`ButtonElement(text=…, action_id=…, value=…, style=…).to_dict()`."""
    if len(action_id) > MAX_ACTION_ID or len(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"button {action_id[:40]!r}: action id or value over Block Kit's limit")
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, MAX_BUTTON_TEXT), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if danger:
        element["style"] = "danger"
    return element


def section(text: Mrkdwn, *, accessory: Block | None = None) -> Block:
    """`SectionBlock(text=md(text), accessory=…).to_dict()`."""
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context(*texts: Mrkdwn) -> Block:
    """`ContextBlock(elements=[context_md(t) …]).to_dict()`."""
    if not 0 < len(texts) <= MAX_CONTEXT_ELEMENTS:
        raise ValueError(f"a context block takes 1 to {MAX_CONTEXT_ELEMENTS} elements, not {len(texts)}")
    return {"type": "context", "elements": [mrkdwn(t, MAX_CONTEXT_TEXT) for t in texts]}


def actions(*buttons: Block) -> Block:
    """`ActionsBlock(elements=[…]).to_dict()`."""
    if not 0 < len(buttons) <= MAX_ACTIONS:
        raise ValueError(f"an actions block takes 1 to {MAX_ACTIONS} elements, not {len(buttons)}")
    return {"type": "actions", "elements": list(buttons)}


def divider() -> Block:
    return {"type": "divider"}

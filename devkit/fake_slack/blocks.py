"""Queries over Block Kit JSON, shared by tests, the Slack driver and the shell: the visible text of blocks, and
the interactive element a user would click, found by its label or action_id. Pure functions of the blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def _walk_elements(blocks: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (block_id, interactive element) for every element in actions blocks and section accessories."""
    for index, block in enumerate(blocks):
        block_id = str(block.get("block_id", f"block-{index}"))
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and "action_id" in element:
                yield block_id, element
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and "action_id" in accessory:
            yield block_id, accessory


def _element_label(element: dict[str, Any]) -> str:
    text = element.get("text")
    if isinstance(text, dict):
        return str(text.get("text", ""))
    return str(text or "")


def find_action(blocks: Iterable[dict[str, Any]], text_or_action_id: str) -> tuple[str, dict[str, Any]]:
    """Find the interactive element whose action_id or visible label equals `text_or_action_id`.

    Returns (block_id, element). Raises AssertionError listing what is there, so a failing test says why.
    """
    blocks = list(blocks)
    found = list(_walk_elements(blocks))
    for block_id, element in found:
        if element.get("action_id") == text_or_action_id or _element_label(element) == text_or_action_id:
            return block_id, element
    available = [f"{_element_label(e)!r} ({e.get('action_id')})" for _, e in found]
    raise AssertionError(f"no element {text_or_action_id!r} in blocks; available: {available or 'none'}")


def find_button(blocks: Iterable[dict[str, Any]], text_or_action_id: str) -> dict[str, Any]:
    """The button (or other element) labelled or identified by `text_or_action_id`."""
    return find_action(blocks, text_or_action_id)[1]


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node["text"]
            return
        for key, value in node.items():
            if key in ("text", "fields", "elements", "accessory", "title", "label", "placeholder", "options"):
                yield from _texts(value)
            elif key == "type" and value == "text" and isinstance(node.get("text"), str):
                yield node["text"]
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def blocks_text(blocks: Iterable[dict[str, Any]]) -> str:
    """All human-visible text in `blocks` (sections, fields, context, buttons, rich text), newline-joined."""
    lines: list[str] = []
    for block in blocks:
        lines.extend(t for t in _texts(block) if t)
    return "\n".join(lines)

"""Block Kit validation: only the limits that real Slack rejects and a bot can plausibly hit (block counts,
duplicate block_ids, id and value lengths, section text, modal title, private_metadata). A violation raises
`ApiError` with Slack's error code, so a bot that would be refused by Slack is refused here too.
"""

from __future__ import annotations

from typing import Any

from devkit.fake_slack.records import ApiError

# Block Kit limits Slack enforces (https://api.slack.com/reference/block-kit).
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100
_MAX_ID_LENGTH = 255
_MAX_BUTTON_VALUE = 2000
_MAX_SECTION_TEXT = 3000
_MAX_MESSAGE_TEXT = 40000
_MAX_MODAL_TITLE = 24
_MAX_PRIVATE_METADATA = 3000


def _validate_blocks(blocks: Any, max_blocks: int) -> None:
    if not isinstance(blocks, list):
        raise ApiError("invalid_blocks", errors=["blocks must be a list"])
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    seen_block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            problems.append(f"block must be an object with a type [json-pointer:/blocks/{index}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen_block_ids:
                problems.append(f"duplicate block_id {block_id!r} [json-pointer:/blocks/{index}/block_id]")
            seen_block_ids.add(block_id)
            if len(str(block_id)) > _MAX_ID_LENGTH:
                problems.append(f"block_id too long [json-pointer:/blocks/{index}/block_id]")
        text = block.get("text")
        if block.get("type") == "section" and isinstance(text, dict) and len(text.get("text", "")) > _MAX_SECTION_TEXT:
            problems.append(f"must be less than {_MAX_SECTION_TEXT} characters [json-pointer:/blocks/{index}/text]")
        action_ids: set[str] = set()
        for element in block.get("elements", []) or []:
            if not isinstance(element, dict) or "action_id" not in element:
                continue
            action_id = str(element["action_id"])
            if action_id in action_ids:
                problems.append(f"duplicate action_id {action_id!r} [json-pointer:/blocks/{index}]")
            action_ids.add(action_id)
            if len(action_id) > _MAX_ID_LENGTH:
                problems.append(f"action_id too long [json-pointer:/blocks/{index}]")
            if len(str(element.get("value", ""))) > _MAX_BUTTON_VALUE:
                problems.append(f"value too long [json-pointer:/blocks/{index}]")
    if problems:
        raise ApiError("invalid_blocks", errors=problems)


def validate_view(view: Any) -> dict[str, Any]:
    if not isinstance(view, dict) or "type" not in view:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required view"]})
    messages: list[str] = []
    title = view.get("title")
    if view["type"] == "modal":
        if not isinstance(title, dict) or not title.get("text"):
            messages.append("[ERROR] missing required field: title [json-pointer:/view/title]")
        elif len(title["text"]) > _MAX_MODAL_TITLE:
            messages.append(
                f"[ERROR] must be less than {_MAX_MODAL_TITLE + 1} characters [json-pointer:/view/title/text]"
            )
    if len(str(view.get("private_metadata", ""))) > _MAX_PRIVATE_METADATA:
        messages.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > _MAX_ID_LENGTH:
        messages.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    if messages:
        raise ApiError("invalid_arguments", response_metadata={"messages": messages})
    _validate_blocks(view.get("blocks", []), _MAX_VIEW_BLOCKS)
    return view


def message_content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = args.get("text")
    blocks = args.get("blocks")
    if blocks is not None:
        _validate_blocks(blocks, _MAX_MESSAGE_BLOCKS)
    if text is not None and len(str(text)) > _MAX_MESSAGE_TEXT:
        raise ApiError("msg_too_long")
    return (str(text) if text is not None else ""), (blocks or [])

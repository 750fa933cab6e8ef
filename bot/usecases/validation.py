"""Input rules checked before anything reaches VPS.org. Messages say exactly what is wrong.

Ids are parsed where they come in (the Slack listeners: bot/slack/listeners/ids.py), with `parse_id` and
`parse_request_id`; use cases take `int`s. Only ASCII digits make an id (an optional leading `#` aside): no
full-width or other scripts' digits, no `1e3`, no sign.
"""

from __future__ import annotations

import re

from bot.usecases.bot_names import reserved_prefix
from bot.usecases.errors import InvalidInput, NotFoundError
from bot.usecases.wording import Text, code, sentence

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
NAME_MAX = 64
DESCRIPTION_MAX = 500
MAX_ID = 2**53  # larger than any id VPS.org hands out; keeps ids exact in JSON everywhere


def parse_id(raw: str | int | None, what: str) -> int:
    """A positive integer id; `what` is e.g. "server id" or "snapshot id"."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        text = (raw if isinstance(raw, str) else "").strip().lstrip("#")
        if not text:
            raise InvalidInput(f"The {what} is missing.", field=what)
        if not text.isascii() or not text.isdigit():
            raise InvalidInput(
                Text("The {} must be a whole number, like 12345 — got {}.").format(sentence(what), code(text, 41)),
                field=what,
            )
        value = int(text)
    if not 1 <= value <= MAX_ID:
        raise InvalidInput(f"The {what} must be a positive whole number.", field=what)
    return value


def parse_request_id(raw: str | int | None) -> int:
    """A request id as a click or a form carries it; one that cannot be an id names no request."""
    try:
        return parse_id(raw, "request id")
    except InvalidInput:
        raise NotFoundError("That approval request does not exist.") from None


def validate_name(raw: str | None) -> str:
    name = (raw or "").strip()
    if not name:
        raise InvalidInput("The snapshot name is missing.", field="name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"The snapshot name is too long: {len(name)} characters, at most {NAME_MAX}.", field="name")
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            Text("The snapshot name may contain only letters, digits, hyphens and underscores (e.g. {}).").format(
                code("before-update_2025")
            ),
            field="name",
        )
    taken = reserved_prefix(name)
    if taken is not None:
        raise InvalidInput(
            Text(
                "Snapshot names starting with {} are the bot's own (restore undos and schedules use them), so a "
                "snapshot made by hand cannot look like one. Choose another name."
            ).format(code(taken)),
            field="name",
        )
    return name


def validate_description(raw: str | None) -> str:
    description = (raw or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"The description is too long: {len(description)} characters, at most {DESCRIPTION_MAX}.",
            field="description",
        )
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in description):
        raise InvalidInput("The description contains control characters.", field="description")
    return description

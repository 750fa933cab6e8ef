"""Slack's encoding of slash-command text, undone exactly once, here at the edge.

Slack sends `&`, `<` and `>` typed by the user as `&amp;`, `&lt;` and `&gt;`, and (with `should_escape: true`
in the manifest) what the user's client turned into mentions and links as `<…>` sequences. The rules this
module keeps:

- It decodes once: `&amp;lt;` becomes the text `&lt;`, never `<`. Only these three entities exist; anything
  else that looks like an entity (`&quot;`) is left as typed.
- Every `<…>` sequence becomes what the user typed, so a command gives the same text as the create form
  (whose fields arrive as plain text):

  `<@U123|bob>` → `@bob`, `<@U123>` → `@U123` (with `mentions="ids"`: `@U123` for both);
  `<#C123|ops>` → `#ops`, `<#C123>` → `#C123`; `<!subteam^S123|@sre>` → `@sre`, `<!subteam^S123>` → `@S123`;
  `<!here>`, `<!channel>`, `<!everyone>` → `@here`, `@channel`, `@everyone`; `<!date^…|fallback>` → `fallback`;
  `<https://x.example>` → `https://x.example`; `<http://x.example|x.example>` → `x.example` (the label is what
  was typed); `<https://x.example|click here>` → `click here (https://x.example)` (no hidden target).

- The result is plain text. Nothing decoded here pings anyone or links anywhere when shown again: outgoing
  text is escaped by the message builders.
"""

from __future__ import annotations

import re
from typing import Literal

_TOKEN = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_SPECIAL = {"here": "@here", "channel": "@channel", "group": "@channel", "everyone": "@everyone"}
_SCHEME = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)

MentionStyle = Literal["names", "ids"]


def unescape(text: str) -> str:
    """`&amp;`, `&lt;`, `&gt;` → `&`, `<`, `>`, in one pass (so `&amp;lt;` → `&lt;`)."""
    return re.sub(r"&(amp|lt|gt);", lambda m: _ENTITIES[m.group(1)], text)


def decode_command_text(text: str, *, mentions: MentionStyle = "names") -> str:
    """Slash-command text as Slack sends it → the plain text the user typed (see the module docstring).

    `mentions="ids"` turns user mentions into `@U123` whatever their label, for commands that need the id
    (`audit user:@someone`).
    """

    def replace(match: re.Match[str]) -> str:
        entity = match.group(2)
        if entity is not None:
            return _ENTITIES[entity]
        return _sequence(match.group(1), mentions)

    return _TOKEN.sub(replace, text)


def _sequence(inner: str, mentions: MentionStyle) -> str:
    target, _, label = inner.partition("|")
    target, label = unescape(target), unescape(label)
    if target.startswith("@"):  # a user
        if mentions == "ids" or not label:
            return target
        return "@" + label.lstrip("@")
    if target.startswith("#"):  # a channel
        return "#" + label.lstrip("#") if label else target
    if target.startswith("!"):
        keyword = target[1:]
        if keyword.startswith("subteam^"):
            return "@" + label.lstrip("@") if label else "@" + keyword.removeprefix("subteam^")
        if keyword.split("^", 1)[0] in _SPECIAL:
            return _SPECIAL[keyword.split("^", 1)[0]]
        return label or keyword  # <!date^…|fallback> and anything newer: its readable text
    if not label:
        return target  # a link, or something unknown: its text
    if label.rstrip("/") in (target.rstrip("/"), _SCHEME.sub("", target).rstrip("/")):
        return label  # what the user typed, which Slack turned into this link
    return f"{label} ({target})"

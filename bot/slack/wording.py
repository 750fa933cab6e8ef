"""The one place use-case wording (`bot.usecases.wording.Text`) becomes Slack mrkdwn.

Rules this module keeps:
- Every part is escaped by `bot.mrkdwn`, as what it is: the bot's own words by `sentence` (`&`, `<`, `>`
  escaped, redacted), a name by `code`, outside words by `plain`, a user by `mention`, a channel by
  `channel_link`; so the renderer is the only code that decides how a use case's message looks in Slack.
- A command hint is written with the slash command this app registers (`SLASH_COMMAND`), in a code span.
"""

from __future__ import annotations

from bot.mrkdwn import Mrkdwn, channel_link, code, mention, plain, sentence
from bot.usecases.wording import Kind, Part, Text

SLASH_COMMAND = "/snapshot"
_COMMAND_LIMIT = 200


def render(text: Text) -> Mrkdwn:
    """`text` as safe mrkdwn."""
    return Mrkdwn("").join(_part(part) for part in text.parts)


def _part(part: Part) -> Mrkdwn:
    if part.kind == Kind.WORDS:
        return sentence(part.value)
    if part.kind == Kind.NAME:
        return code(part.value, part.limit)
    if part.kind == Kind.UNTRUSTED:
        return plain(part.value, part.limit)
    if part.kind == Kind.MENTION:
        return mention(part.value)
    if part.kind == Kind.CHANNEL:
        return channel_link(part.value)
    if part.kind == Kind.COMMAND:
        return code(" ".join((SLASH_COMMAND, *part.args)), _COMMAND_LIMIT)
    if part.kind == Kind.EMPHASIS:
        return Mrkdwn("*") + render(part.inner or Text()) + Mrkdwn("*")
    if part.kind == Kind.ALARM:
        return Mrkdwn(":rotating_light:")
    raise ValueError(f"unknown part {part.kind!r}")  # a new kind must be given a look here first

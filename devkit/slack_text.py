"""What Slack does to the text a user types before it sends a slash command (`should_escape: true`).

`encode_typed_text` is the inverse of `bot.slack.incoming_text.decode_command_text`; the driver and the shell
send every command through it, so no test or demo can feed the bot text Slack would never send. It follows
Slack's formatting reference:

- `&`, `<`, `>` become `&amp;`, `&lt;`, `&gt;`.
- `@name` of a user the directory knows becomes `<@U…|name>`; of a user group, `<!subteam^S…|@handle>`;
  `@here`, `@channel`, `@everyone` become `<!here>`, `<!channel>`, `<!everyone>`. An unknown `@name` stays text,
  as in Slack.
- `#name` of a channel the directory knows becomes `<#C…|name>`; an unknown one stays text (so `#798` does).
- `http(s)://…` becomes `<http(s)://…>` and an e-mail address `<mailto:a@b.example|a@b.example>`; trailing
  punctuation is not part of a link. Bare domains (`wiki.example`) stay text here, where Slack would send
  `<http://wiki.example|wiki.example>`: both decode to the same text, and tests send that form with `raw_text`.
"""

from __future__ import annotations

import re
from typing import Protocol

_TYPED = re.compile(
    r"(?P<url>https?://[^\s<>|\"]+)"
    r"|(?<![\w.+-])(?P<email>[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
    r"|(?<![\w@#])@(?P<user>[A-Za-z0-9][\w.-]*)"
    r"|(?<![\w@#&])#(?P<channel>[\w-]+)"
)
_LINK_TAIL = ".,;:!?)]}'\""
_NAME_TAIL = "._-"
_SPECIAL = frozenset({"here", "channel", "everyone"})


class SlackDirectory(Protocol):
    """Who and what exists in the workspace, by the name a user types (case-insensitive)."""

    def user_id(self, name: str) -> str | None: ...

    def channel_id(self, name: str) -> str | None: ...

    def usergroup_id(self, handle: str) -> str | None: ...


def escape(text: str) -> str:
    """Slack's three control characters as entities; nothing else changes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def encode_typed_text(text: str, directory: SlackDirectory | None = None) -> str:
    """`text` as typed in Slack's message box → the slash command's `text` field as Slack sends it."""
    out: list[str] = []
    position = 0
    for match in _TYPED.finditer(text):
        if match.start() < position:
            continue
        encoded, used = _encode_match(match, directory)
        if encoded is None:
            continue
        out.append(escape(text[position : match.start()]))
        out.append(encoded)
        position = match.start() + used
    out.append(escape(text[position:]))
    return "".join(out)


def _encode_match(match: re.Match[str], directory: SlackDirectory | None) -> tuple[str | None, int]:
    """The sequence Slack sends for this match and how many typed characters it covers; None: plain text."""
    if match.group("url"):
        url = match.group("url").rstrip(_LINK_TAIL)
        return (f"<{escape(url)}>" if len(url) > len("https://") else None), len(url)
    if match.group("email"):
        address = match.group("email").rstrip(_LINK_TAIL)
        return f"<mailto:{escape(address)}|{escape(address)}>", len(address)
    if match.group("user") is not None:
        name = match.group("user")
        for candidate in (name, name.rstrip(_NAME_TAIL)):
            sequence = _mention(candidate, directory)
            if sequence is not None:
                return sequence, 1 + len(candidate)
        return None, 0
    name = match.group("channel")
    for candidate in (name, name.rstrip(_NAME_TAIL)):
        channel = directory.channel_id(candidate) if directory is not None and candidate else None
        if channel is not None:
            return f"<#{channel}|{escape(candidate)}>", 1 + len(candidate)
    return None, 0


def _mention(name: str, directory: SlackDirectory | None) -> str | None:
    if not name:
        return None
    if name in _SPECIAL:
        return f"<!{name}>"
    if directory is None:
        return None
    user = directory.user_id(name)
    if user is not None:
        return f"<@{user}|{escape(name)}>"
    group = directory.usergroup_id(name)
    if group is not None:
        return f"<!subteam^{group}|@{escape(name)}>"
    return None

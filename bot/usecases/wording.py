"""Use-case wording: what the bot tells a person, as tagged parts, in no chat format at all.

A use case says *what* a message is made of — its own sentence, a name, someone else's words, a person, a channel,
a command to try, a stressed word — and a renderer at the edge decides how each part looks (the Slack side's is
`bot.slack.wording.render`, which escapes through `bot.mrkdwn`). Nothing here knows Slack's markup.

Rules this module keeps:
- `Text` is an immutable sequence of parts. Only these make one: a string literal the developer wrote
  (`Text("Server {} does not exist.")`: the bot's own words, written without markup), the part makers below
  (`code`, `plain`, `quote`, `sentence`, `mention`, `channel_link`, `command`, `emphasis`, `alarm`), and combining
  `Text` values (`+`, `format`, `join`). Combining with a plain `str` is refused (TypeError), so untrusted text
  always arrives tagged as what it is.
- The API mirrors `bot.mrkdwn` for what use cases need: code written against `Mrkdwn` converts by importing these
  names instead and writing `Text(...)` for `Mrkdwn(...)`.
- `str(text)` is the record form: plain text for rows, audit details and logs (names in backticks, stressed words
  in asterisks, a command as /snapshot verb args). It is not escaped for any chat; render `Text` for people.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# How a command hint is written in the record form (stored rows, logs); renderers write their own.
RECORD_COMMAND = "/snapshot"
ELLIPSIS = "…"


class Kind(StrEnum):
    WORDS = "words"  # the bot's own sentence, no markup
    NAME = "name"  # a name or code (server, snapshot, status): untrusted, shown exactly, length-capped
    UNTRUSTED = "untrusted"  # free text from outside (a description, VPS.org's words, a reason): length-capped
    MENTION = "mention"  # a Slack user id
    CHANNEL = "channel"  # a Slack channel id
    COMMAND = "command"  # a command to try: its words without the slash command, e.g. ("restore", "801")
    EMPHASIS = "emphasis"  # stressed words (`inner`)
    ALARM = "alarm"  # the "this needs a human now" sign at the start of a loud message


@dataclass(frozen=True)
class Part:
    kind: Kind
    value: str = ""
    limit: int | None = None
    args: tuple[str, ...] = ()  # COMMAND: the verb and its arguments
    inner: Text | None = None  # EMPHASIS: what is stressed


class Text:
    """What the bot says, as parts (see the module docstring for how one is made)."""

    __slots__ = ("parts",)
    parts: tuple[Part, ...]

    def __init__(self, literal: str = "", *, _parts: tuple[Part, ...] | None = None) -> None:
        if _parts is not None:
            object.__setattr__(self, "parts", _merged(_parts))
        elif isinstance(literal, str):
            object.__setattr__(self, "parts", (Part(Kind.WORDS, literal),) if literal else ())
        else:
            raise TypeError(f"Text() takes the bot's own words as a str, not {type(literal).__name__}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Text is immutable")

    def __add__(self, other: object) -> Text:
        if not isinstance(other, Text):
            return NotImplemented
        return Text(_parts=self.parts + other.parts)

    def __radd__(self, other: object) -> Text:
        return NotImplemented  # str + Text: the plain string would arrive untagged

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def __repr__(self) -> str:
        return f"Text({str(self)!r})"

    def __str__(self) -> str:
        return "".join(_record(part) for part in self.parts)

    def format(self, *args: Any, **kwargs: Any) -> Text:
        """`str.format` on a literal: each `{}` becomes the `Text` (or number) given for it, as its own parts."""
        if len(self.parts) > 1 or (self.parts and self.parts[0].kind != Kind.WORDS):
            raise TypeError("format() works on a literal Text only")
        template = self.parts[0].value if self.parts else ""
        out: list[Part] = []
        auto = 0
        for literal, field, spec, conversion in string.Formatter().parse(template):
            if literal:
                out.append(Part(Kind.WORDS, literal))
            if field is None:
                continue
            if conversion:
                raise TypeError("format() conversions (!r, !s) are not allowed in a Text")
            if field == "":
                value, auto = args[auto], auto + 1
            elif field.isdigit():
                value = args[int(field)]
            else:
                value = kwargs[field]
            out.extend(_as_parts(value, spec or ""))
        return Text(_parts=tuple(out))

    def join(self, items: Iterable[Text]) -> Text:
        out: list[Part] = []
        for index, item in enumerate(items):
            if index:
                out.extend(self.parts)
            out.extend(_as_parts(item, ""))
        return Text(_parts=tuple(out))


def _merged(parts: Iterable[Part]) -> tuple[Part, ...]:
    """Adjacent words joined and empty words dropped, so equal messages have equal parts."""
    out: list[Part] = []
    for part in parts:
        if part.kind == Kind.WORDS:
            if not part.value:
                continue
            if out and out[-1].kind == Kind.WORDS:
                out[-1] = Part(Kind.WORDS, out[-1].value + part.value)
                continue
        out.append(part)
    return tuple(out)


def _as_parts(value: Any, spec: str) -> tuple[Part, ...]:
    if isinstance(value, Text):
        if spec:
            raise TypeError("a format spec applies to numbers only")
        return value.parts
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (Part(Kind.WORDS, format(value, spec)),)
    raise TypeError(f"untrusted {type(value).__name__} in a message: tag it with code() or plain() first")


def _clipped(value: str, limit: int | None) -> str:
    text = " ".join(value.split())
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + ELLIPSIS
    return text


def _record(part: Part) -> str:
    if part.kind == Kind.WORDS:
        return part.value
    if part.kind == Kind.NAME:
        return "`" + (_clipped(part.value, part.limit).replace("`", "ˋ") or "-") + "`"
    if part.kind == Kind.UNTRUSTED:
        return _clipped(part.value, part.limit)
    if part.kind in (Kind.MENTION, Kind.CHANNEL):
        return part.value
    if part.kind == Kind.COMMAND:
        # Bare: a stored result is shown as outside text, where backticks would turn into quotes.
        return " ".join((RECORD_COMMAND, *part.args))
    if part.kind == Kind.EMPHASIS:
        return f"*{part.inner}*"
    return "🚨"  # ALARM


def code(value: object, limit: int | None = 100) -> Text:
    """A name (server, snapshot, status): shown exactly, formatted never, at most `limit` characters."""
    return Text(_parts=(Part(Kind.NAME, "" if value is None else str(value), limit),))


def plain(value: object, limit: int | None = 300) -> Text:
    """Free text from outside (a description, VPS.org's words, a reason). A `Text` is kept as it is."""
    if isinstance(value, Text):
        return value
    return Text(_parts=(Part(Kind.UNTRUSTED, "" if value is None else str(value), limit),))


def quote(value: object, limit: int | None = 300) -> Text:
    """Free text in quotation marks, so where it starts and ends is visible."""
    return Text("“") + plain(value, limit) + Text("”")


def sentence(text: str | Text) -> Text:
    """A sentence the bot itself wrote as a plain `str` (no markup, no untrusted values in it)."""
    return text if isinstance(text, Text) else Text(str(text))


def mention(user_id: str) -> Text:
    return Text(_parts=(Part(Kind.MENTION, user_id or ""),))


def channel_link(channel_id: str) -> Text:
    return Text(_parts=(Part(Kind.CHANNEL, channel_id or ""),))


def command(verb: str, *args: str) -> Text:
    """A command to try, e.g. command("restore", "801"): the renderer adds the slash command."""
    return Text(_parts=(Part(Kind.COMMAND, args=(verb, *args)),))


def emphasis(text: str | Text) -> Text:
    """Stressed words the bot wrote (`Text`, or a `str` of its own words)."""
    return Text(_parts=(Part(Kind.EMPHASIS, inner=sentence(text)),))


def alarm() -> Text:
    """The sign that opens a message a human must act on now."""
    return Text(_parts=(Part(Kind.ALARM),))

"""Safe mrkdwn: the one way untrusted text (names, descriptions, VPS.org's words, typed reasons) enters a message.

Rules this module keeps:
- `Mrkdwn` is text that is safe to send to Slack as mrkdwn. Only three things make one: a string literal the
  developer wrote (`Mrkdwn("*Server:* ")`, checked by tests/scenario/test_message_safety.py to be a literal), the
  renderers below (`code`, `plain`, `mention`, `channel_link`), and combining `Mrkdwn` values (`+`, `format`,
  `join`). Combining with a plain `str` is refused (TypeError), and the Block Kit builders accept only `Mrkdwn`,
  so a message cannot forget to escape.
- Every renderer first passes the value through `bot.redaction.redact` (secrets never reach Slack), drops control
  and bidirectional-override characters (right-to-left text still shows, but cannot reorder the card around
  it), collapses newlines into spaces (untrusted text can never start a line of its own, so it cannot forge one
  of a card's field lines), clips it, and escapes `&`, `<`, `>` as Slack's formatting reference asks (so
  `<!channel>` or `<https://…|click>` stay text: no ping, no link).
- `code` shows a name in a code span, where Slack applies no bold/italic/strike/emoji/link; a backtick inside
  becomes `ˋ` so it cannot close the span. `plain` shows free text inline with mrkdwn's control characters
  replaced by look-alikes (`*` `_` `~` `` ` `` and `:`/`@` where they could start an emoji code, a URL or a
  mention), so it reads the same but formats nothing.
- `clip` never cuts inside a code span, an entity or a `<…>` sequence, so clipping cannot undo the escaping.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any, SupportsIndex

from bot.redaction import redact

ELLIPSIS = "…"

# Look-alikes for mrkdwn's control characters in free text: the text reads the same, Slack formats nothing.
# A backtick becomes an apostrophe: messages stored as text ("Snapshot `x` deleted.") still read naturally.
_LOOKALIKES = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "'"})
# Bidirectional embeddings, overrides and isolates: they could reorder the text around the value.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# `:smile:` emoji codes, `https://` links and `@channel`-style words: break the trigger, keep the look.
_COLON_TRIGGER = re.compile(r":(?=\S)")
_AT_TRIGGER = re.compile(r"@(?=\w)")


class Mrkdwn(str):
    """Text already safe to send as mrkdwn. See the module docstring for how one is made."""

    __slots__ = ()

    def __add__(self, other: str) -> Mrkdwn:
        if not isinstance(other, Mrkdwn):
            return NotImplemented
        return Mrkdwn(str.__add__(self, other))

    def __radd__(self, other: str) -> Mrkdwn:
        if not isinstance(other, Mrkdwn):
            return NotImplemented  # str + Mrkdwn is a plain str, which the builders refuse
        return Mrkdwn(str.__add__(other, self))

    def format(self, *args: Any, **kwargs: Any) -> Mrkdwn:
        """`str.format` whose arguments must be `Mrkdwn` or numbers: a plain string needs `code()` or `plain()`."""
        for value in (*args, *kwargs.values()):
            _require_safe(value)
        return Mrkdwn(str.format(self, *args, **kwargs))

    def join(self, parts: Iterable[str]) -> Mrkdwn:
        items = list(parts)
        for item in items:
            _require_safe(item)
        return Mrkdwn(str.join(self, items))

    def clip(self, limit: SupportsIndex) -> Mrkdwn:
        return clip(self, int(limit))


def _require_safe(value: Any) -> None:
    if isinstance(value, Mrkdwn) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return
    raise TypeError(f"untrusted {type(value).__name__} in a message: render it with code() or plain() first")


def _clean(value: object, limit: int | None) -> str:
    """Redacted, without control/bidi characters, on one line, at most `limit` characters (before escaping)."""
    text = redact(str(value) if value is not None else "")
    kept = []
    for char in text:
        if char in _BIDI_CONTROLS:
            continue
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            kept.append(" ")  # newlines, tabs and other controls: a space, so words stay apart
            continue
        if unicodedata.category(char) == "Cs":  # a lone surrogate cannot be encoded for Slack
            kept.append("\ufffd")
            continue
        kept.append(char)
    text = " ".join("".join(kept).split())
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + ELLIPSIS
    return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value: object, limit: int | None = 100) -> Mrkdwn:
    """A name (server, snapshot, status) in a code span: shown exactly, formatted never."""
    text = _clean(value, limit).replace("`", "ˋ")
    if not text:
        return Mrkdwn("`-`")
    return Mrkdwn("`" + _escape(text) + "`")


def plain(value: object, limit: int | None = 300) -> Mrkdwn:
    """Free text (a description, VPS.org's words, a reason) inline: reads the same, formats nothing.

    A value that is already `Mrkdwn` (a message the bot built) is kept as it is, only clipped."""
    if isinstance(value, Mrkdwn):
        return clip(value, limit) if limit is not None else value
    text = _clean(value, limit).translate(_LOOKALIKES)
    text = _COLON_TRIGGER.sub("∶", text)
    text = _AT_TRIGGER.sub("＠", text)
    if text.startswith(">"):
        text = "›" + text[1:]  # a line starting with `>` would be a quote
    return Mrkdwn(_escape(text))


def quote(value: object, limit: int | None = 300) -> Mrkdwn:
    """Free text in quotation marks, so where it starts and ends is visible."""
    return Mrkdwn("“") + plain(value, limit) + Mrkdwn("”")


def label(value: object, limit: int) -> str:
    """Untrusted text for a `plain_text` object (a select option's label): redacted, on one line, without control
    or bidirectional characters, at most `limit` characters. Slack formats nothing in plain_text (no mention, no
    link), so nothing is escaped; this is the one way a name reaches a label."""
    return _clean(value, limit) or "-"


def sentence(text: str) -> Mrkdwn:
    """A sentence the bot itself wrote as a plain `str` (an error message, a stored result): redacted and with
    `&`, `<`, `>` escaped, so nothing interpolated into it can ping, link or fake a date; its own `*bold*` and
    `code` stay. Prefer building such messages as `Mrkdwn` with `code()`/`plain()` for the values."""
    if isinstance(text, Mrkdwn):
        return text
    return Mrkdwn(_escape(redact(str(text))))


def redacted(text: Mrkdwn) -> Mrkdwn:
    """`text` with anything secret masked: the last check before a message leaves (the mask has no markup)."""
    return Mrkdwn(redact(require(text)))


def mention(user_id: str) -> Mrkdwn:
    """`<@U…>` for a Slack user id; anything that is not one is shown as a name instead."""
    if re.fullmatch(r"[UW][A-Z0-9]{1,20}", user_id or ""):
        return Mrkdwn(f"<@{user_id}>")
    return code(user_id or "someone", 40)


def channel_link(channel_id: str) -> Mrkdwn:
    if re.fullmatch(r"[CGD][A-Z0-9]{1,20}", channel_id or ""):
        return Mrkdwn(f"<#{channel_id}>")
    return code(channel_id or "a channel", 40)


def link(url: str, label: Mrkdwn) -> Mrkdwn:
    """A link the bot made itself (a Slack permalink): the URL may not contain `|`, `<`, `>` or whitespace."""
    if not re.fullmatch(r"https?://[^\s|<>]+", url or ""):
        return label
    return Mrkdwn(f"<{url}|") + label + Mrkdwn(">")


def slack_date(timestamp: int, fallback: str) -> Mrkdwn:
    """`<!date^…>`: Slack shows the time in each reader's zone; `fallback` (made by the bot) elsewhere."""
    return Mrkdwn(f"<!date^{int(timestamp)}^{{date_short_pretty}} {{time}}|{_escape(fallback).replace('|', '/')}>")


def clip(text: Mrkdwn, limit: int) -> Mrkdwn:
    """`text` cut to at most `limit` characters without cutting a code span, an entity or a `<…>` sequence."""
    if len(text) <= limit:
        return text
    cut = str(text)[: max(0, limit - 1)]
    # Back off out of an unfinished `<…>`, `&…;` or code span, in that order (a span may hold entities).
    open_angle = cut.rfind("<")
    if open_angle > cut.rfind(">"):
        cut = cut[:open_angle]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    fence = cut.count("```")
    if fence % 2:
        cut = cut[: cut.rfind("```")]
    if cut.replace("```", "").count("`") % 2:
        cut = cut[: cut.rfind("`")]
    return Mrkdwn(cut.rstrip() + ELLIPSIS)


def require(value: object) -> Mrkdwn:
    """The builders' gate: anything but `Mrkdwn` is a programming error."""
    if not isinstance(value, Mrkdwn):
        raise TypeError(f"message text must be Mrkdwn, not {type(value).__name__}: render untrusted text first")
    return value

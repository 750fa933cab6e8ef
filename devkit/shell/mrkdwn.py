"""Slack mrkdwn → terminal text, for the local shell. Pure: no I/O, no clock, no Slack calls.

Rules this module keeps:
- Emphasis follows Slack's own rule (a non-word character or the edge outside the markers, no space inside), so
  `snake_case_name` and `2 * 3 * 4` stay as typed; code spans are left alone.
- `<@U…>`, `<#C…>` and links become names and labels; unknown emoji stay as `:name:`.
- Colours (ANSI) only when the `Style` asks for them, so piped output and test transcripts read cleanly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Emoji names the bot uses (and a few common ones). Anything else stays as `:name:`, which is still readable.
EMOJI = {
    "white_check_mark": "✅",
    "hourglass_flowing_sand": "⏳",
    "grey_question": "❔",
    "warning": "⚠️",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "wastebasket": "🗑️",
    "x": "❌",
    "rotating_light": "🚨",
    "bell": "🔔",
    "leftwards_arrow_with_hook": "↩️",
    "alarm_clock": "⏰",
    "inbox_tray": "📥",
    "ballot_box_with_check": "☑️",
    "relieved": "😌",
    "tada": "🎉",
    "lock": "🔒",
    "information_source": "ℹ️",
    "camera": "📷",
    "arrows_counterclockwise": "🔄",
    "heavy_check_mark": "✔️",
    "shield": "🛡️",
    "calendar": "📆",
    "double_vertical_bar": "⏸️",
}

_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_CODE = re.compile(r"```(.+?)```|`([^`\n]+)`", re.DOTALL)
_CONTROL = re.compile(r"<([^<>\n]+)>")
# Slack's emphasis needs a non-word character (or the edge) outside the markers and no space inside them,
# so `snake_case_name` and `2 * 3 * 4` stay as typed.
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")


@dataclass(frozen=True)
class Style:
    """How to emphasise: ANSI escapes when `color`, nothing otherwise (the words alone carry the meaning)."""

    color: bool = False
    emoji: bool = True

    def _wrap(self, text: str, start: str, end: str) -> str:
        return f"\x1b[{start}m{text}\x1b[{end}m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._wrap(text, "1", "22")

    def italic(self, text: str) -> str:
        return self._wrap(text, "3", "23")

    def strike(self, text: str) -> str:
        return self._wrap(text, "9", "29")

    def code(self, text: str) -> str:
        return self._wrap(text, "36", "39")

    def dim(self, text: str) -> str:
        return self._wrap(text, "2", "22")

    def red(self, text: str) -> str:
        return self._wrap(text, "31", "39")

    def green(self, text: str) -> str:
        return self._wrap(text, "32", "39")

    def yellow(self, text: str) -> str:
        return self._wrap(text, "33", "39")

    def loud(self, text: str) -> str:
        """For warnings that must not be missed (the real-account banner): bold white on red."""
        return self._wrap(text, "1;97;41", "0")


@dataclass(frozen=True)
class Names:
    """Display names for Slack ids, so `<@U0ALICE>` reads as `@alice`."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)

    def user(self, user_id: str) -> str:
        return self.users.get(user_id, user_id)

    def channel(self, channel_id: str) -> str:
        return self.channels.get(channel_id, channel_id)


# ---- mrkdwn ----------------------------------------------------------------------------------------------
def unescape(text: str) -> str:
    """Slack's three HTML entities back to characters (`&amp;` last, so `&amp;lt;` stays `&lt;`)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def emojize(text: str, style: Style) -> str:
    if not style.emoji:
        return text
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def _control(inner: str, names: Names) -> str:
    """One `<…>` control sequence as a reader sees it."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return "@" + (label or names.user(target[1:]))
    if target.startswith("#"):
        return "#" + (label or names.channel(target[1:]))
    if target.startswith("!"):
        command = target[1:].split("^", 1)[0]
        if label:  # dates, subteams: the fallback/label is what Slack shows when it can't render its own
            return label
        return "@" + command  # <!here>, <!channel>, <!everyone>
    if label:
        return f"{label} ({target})"
    return target


def _emphasis(text: str, style: Style) -> str:
    text = _BOLD.sub(lambda m: style.bold(m.group(1)), text)
    text = _ITALIC.sub(lambda m: style.italic(m.group(1)), text)
    return _STRIKE.sub(lambda m: style.strike(m.group(1)), text)


def _prose(text: str, style: Style, names: Names) -> str:
    # Controls first: a URL or id inside `<…>` must not be read as emphasis. Entities last: `&lt;!channel&gt;`
    # is escaped user text and must show as the literal characters, not act as a control.
    parts: list[str] = []
    last = 0
    for match in _CONTROL.finditer(text):
        parts.append(_emphasis(emojize(text[last : match.start()], style), style))
        parts.append(_control(match.group(1), names))
        last = match.end()
    parts.append(_emphasis(emojize(text[last:], style), style))
    return unescape("".join(parts))


def mrkdwn(text: str, style: Style = Style(), names: Names = Names()) -> str:
    """Slack mrkdwn as terminal text: *bold*, _italic_, ~strike~, `code`, mentions, links, dates, entities."""
    out: list[str] = []
    last = 0
    for match in _CODE.finditer(text):
        out.append(_prose(text[last : match.start()], style, names))
        code = match.group(1) if match.group(1) is not None else match.group(2)
        out.append(style.code(unescape(code.strip("\n"))))  # nothing is interpreted inside code
        last = match.end()
    out.append(_prose(text[last:], style, names))
    return "".join(out)


def text_object(obj: Any, style: Style = Style(), names: Names = Names()) -> str:
    """A Block Kit text object (plain_text or mrkdwn), or a bare string, as terminal text."""
    if isinstance(obj, str):
        return mrkdwn(obj, style, names)
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text") or "")
    if obj.get("type") == "plain_text":
        return emojize(text, style) if obj.get("emoji", True) else text
    return mrkdwn(text, style, names)

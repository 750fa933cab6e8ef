"""The API's own words: a short, token-free human message from whatever error body VPS.org sends.

Rules this module keeps:
- JSON in its usual shapes, HTML and plain text are all understood; anything else yields nothing, never an error.
- The caller's `scrub` (which masks the token) runs on the whole body and again on the extracted words, always
  before the words are clipped to `MAX_MESSAGE_CHARS`: a token cut in half would no longer be recognisable.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

MAX_MESSAGE_CHARS = 300

_PREFERRED_KEYS = ("detail", "error", "message", "error_description", "errors", "non_field_errors")
_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_DROP_BLOCKS = re.compile(r"<(script|style|head)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)


def _extract_message(
    body: bytes, content_type: str = "", scrub: Callable[[str], str] = lambda text: text
) -> str | None:
    """A short human message from an error body: JSON in its usual shapes, HTML, plain text, or nothing.

    `scrub` runs on the whole body and again on the extracted words (JSON or HTML escapes can hide a token from
    the first pass), always before `_shorten`: a token cut in half by the clip would no longer be recognisable.
    """
    text = scrub(body.decode("utf-8", errors="replace")).strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    else:
        message = _flatten(data)
        return _shorten(scrub(message)) if message else None
    if "html" in content_type.lower() or re.match(r"<(!doctype|html|head|body)\b", text, re.IGNORECASE):
        return _shorten(scrub(_from_html(text)))
    return _shorten(text)


def _flatten(data: Any, prefix: str = "") -> str:
    """{"detail": "x"} → "x"; {"name": ["Invalid name"]} → "name: Invalid name"; nesting joined with "; "."""
    if data is None:
        return ""
    if isinstance(data, str):
        return f"{prefix}{data.strip()}" if data.strip() else ""
    if isinstance(data, int | float | bool):
        return f"{prefix}{data}"
    if isinstance(data, list):
        parts = [_flatten(item) for item in data]
        joined = "; ".join(p for p in parts if p)
        return f"{prefix}{joined}" if joined else ""
    if isinstance(data, dict):
        for key in _PREFERRED_KEYS:
            if key in data:
                found = _flatten(data[key])
                if found:
                    return f"{prefix}{found}"
        parts = []
        for key, value in data.items():
            if key in ("status", "code", "status_code"):
                continue  # bookkeeping, not words meant for people
            found = _flatten(value, f"{key}: ")
            if found:
                parts.append(found)
        joined = "; ".join(parts)
        return f"{prefix}{joined}" if joined else ""
    return ""


def _from_html(text: str) -> str:
    title = _TITLE.search(text)
    body = _DROP_BLOCKS.sub(" ", text)
    words = " ".join(html.unescape(_TAG.sub(" ", body)).split())
    title_text = " ".join(html.unescape(_TAG.sub(" ", title.group(1))).split()) if title else ""
    if title_text and title_text not in words:
        return f"{title_text}: {words}" if words else title_text
    return words or title_text or "an HTML error page"


def _shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

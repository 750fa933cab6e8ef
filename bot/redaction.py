"""Mask credentials in text before it reaches a log line, a Slack message, an error message or an audit row.

This runs on every log line: a substring pre-check, then one precompiled regular expression in one pass.
It errs on the side of masking too much: a mangled identifier in a log is harmless, a leaked token is not.

Two kinds of credential are masked: anything shaped like one (the patterns below), and the configured secrets
themselves (`remember_secret`, called for every `bot.config.Secret`). Of a configured secret, any run of 8 or more
of its leading characters counts as the secret: text cut off in the middle of a token (an error message clipped
to 300 characters) must not leak the part that survived.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections import Counter, deque
from typing import Any

MASK = "[redacted]"
# A configured secret's first 8 characters (or all of a shorter one, of at least MIN_SECRET_LENGTH) are enough to
# recognise it; fewer would start masking ordinary words.
SECRET_PREFIX = 8
MIN_SECRET_LENGTH = 6

_secrets_lock = threading.Lock()
_secret_counts: Counter[str] = Counter()
_known_secrets: tuple[str, ...] = ()  # rebuilt under the lock, read without it (a tuple swap is atomic)
# A finalizer only queues the secret it forgets: the garbage collector may run it on a thread that already holds
# the lock (an allocation inside `remember_secret`), where taking it again would hang that thread for good.
_forgotten: deque[str] = deque()


def remember_secret(value: str, owner: object | None = None) -> None:
    """Mask `value` (and any 8+ character prefix of it) in everything `redact` sees from now on.

    With `owner`, the secret is forgotten when `owner` is garbage-collected (a `Secret` owns its value); until
    the lock is free it stays masked (masking too much is harmless).
    """
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        _secret_counts[value] += 1
        _rebuild_locked()
    if owner is not None:
        weakref.finalize(owner, _forget_secret, value)
    _drain_forgotten()


def _forget_secret(value: str) -> None:
    _forgotten.append(value)
    _drain_forgotten()


def _drain_forgotten() -> None:
    """Apply queued forgets if the lock is free; never waits for it (see `_forgotten`)."""
    while _forgotten and _secrets_lock.acquire(blocking=False):
        try:
            _rebuild_locked()
        finally:
            _secrets_lock.release()


def _rebuild_locked() -> None:
    global _known_secrets
    while _forgotten:
        value = _forgotten.popleft()
        _secret_counts[value] -= 1
        if _secret_counts[value] <= 0:
            del _secret_counts[value]
    _known_secrets = tuple(sorted(_secret_counts, key=len, reverse=True))


def _mask_known_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """Every occurrence of a secret's head, extended as far as the text keeps matching the secret, is masked."""
    for secret in secrets:
        head = secret[:SECRET_PREFIX]
        start = text.find(head)
        while start != -1:
            end = start + len(head)
            while end - start < len(secret) and end < len(text) and text[end] == secret[end - start]:
                end += 1
            text = text[:start] + MASK + text[end:]
            start = text.find(head, start + len(MASK))
    return text


# Characters a credential may be made of: letters, digits and what base64, base64url, JWTs and
# URL-encoding use. Whitespace, quotes, brackets, commas, colons and `&` end a token, so the text
# around it survives.
_TOKEN_CHARS = r"[A-Za-z0-9_\-.~+/=%]"

_PATTERN = re.compile(
    # `Authorization: Bearer abc`, `'Authorization': 'Basic abc'`, `authorization=abc`: the whole value,
    # optional scheme word included, because the scheme alone says nothing and the rest is the secret.
    rf"(?P<auth>\b(?i:authorization)['\"]?[ \t]*[:=][ \t]*['\"]?)(?:[A-Za-z]+[ \t]+)?{_TOKEN_CHARS}+"
    # `Bearer abc` anywhere else (e.g. a header printed as a bytes tuple).
    rf"|(?P<bearer>\b(?i:bearer)[ \t]+){_TOKEN_CHARS}+"
    # Slack tokens: bot, user, legacy workspace, refresh/rotating, legacy, and app-level tokens.
    rf"|(?P<slack>xox[bpaesr]-|xapp-){_TOKEN_CHARS}+"
    # VPS.org API tokens (`vps_abc123...`). Needs 8+ characters so words like `vps_ab` or `vps_api_url` stay.
    rf"|(?P<vps>vps_){_TOKEN_CHARS}{{8,}}",
    # ASCII: case-insensitivity and `\b` stay plain ASCII, which the fast path in `redact` relies on.
    re.ASCII,
)


def _mask(match: re.Match[str]) -> str:
    kind = match.lastgroup
    prefix = match.group(kind) if kind else ""
    secret = match.group(0)[len(prefix) :]
    # A sentence ending right after a token ("... was xoxb-123.") keeps its full stop; no token ends in one.
    trailing = secret[len(secret.rstrip(".")) :]
    return f"{prefix}{MASK}{trailing}"


def redact(text: str) -> str:
    """Return `text` with every token-shaped substring and every Authorization/Bearer value masked.

    The kind prefix (`xoxb-`, `vps_`, `Bearer `, `Authorization: `) is kept so a reader can tell which
    credential was involved; everything after it is replaced by `[redacted]`.
    """
    secrets = _known_secrets
    if secrets and any(secret[:SECRET_PREFIX] in text for secret in secrets):
        text = _mask_known_secrets(text, secrets)
    # Fast path: most log lines hold none of the markers, and five substring checks cost far less than
    # a regex scan. Every pattern above contains one of these markers (case-folded where it is insensitive).
    if "xox" not in text and "xapp-" not in text and "vps_" not in text:
        lowered = text.lower()
        if "bearer" not in lowered and "authorization" not in lowered:
            return text
    return _PATTERN.sub(_mask, text)


# Characters json.dumps(ensure_ascii=False) writes as an escape: a configured secret holding one would not appear
# verbatim in a dump, so `redact_message` cannot use its whole-message pre-check while such a secret is known.
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def redact_message(obj: Any) -> Any:
    """`redact_value` for a message about to leave the bot (Block Kit blocks: dicts, lists, strings, numbers).

    Most messages hold nothing to mask, and walking ~500 strings one by one cost ~1 ms per list answer (issue 19
    §3). One pre-check of the whole message as JSON answers for all of them: every string, dict key included,
    appears in the dump verbatim apart from escaped quotes, backslashes and control characters, none of which
    is part of a marker or, by the check below, of a configured secret's head; so when the dump holds no marker,
    no string does and `redact_value` would return an equal copy. Then `obj` itself is returned; otherwise (or
    for anything JSON cannot dump) the full walk runs.
    """
    secrets = _known_secrets
    heads = [secret[:SECRET_PREFIX] for secret in secrets]
    if any(_JSON_ESCAPED.search(head) for head in heads):
        return redact_value(obj)
    try:
        dump = json.dumps(obj, ensure_ascii=False, check_circular=False)
    except (TypeError, ValueError, RecursionError):
        return redact_value(obj)
    if any(head in dump for head in heads) or "xox" in dump or "xapp-" in dump or "vps_" in dump:
        return redact_value(obj)
    lowered = dump.lower()
    if "bearer" in lowered or "authorization" in lowered:
        return redact_value(obj)
    return obj


def redact_value(obj: Any) -> Any:
    """Return a copy of `obj` with every string inside (dict keys included) passed through `redact`.

    Walks dicts, lists, tuples (named tuples keep their type), sets and frozensets; other values are
    returned unchanged. Used on audit details before they are stored.
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_value(key): redact_value(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [redact_value(item) for item in obj]
    if isinstance(obj, tuple):
        items = [redact_value(item) for item in obj]
        if hasattr(obj, "_fields"):  # a named tuple: rebuild it by position
            return type(obj)(*items)
        return tuple(items)
    if isinstance(obj, frozenset):
        return frozenset(redact_value(item) for item in obj)
    if isinstance(obj, set):
        return {redact_value(item) for item in obj}
    return obj


# An authenticator's secret in an otpauth:// URI (the TOTP step-up's enrolment answer). Its owner must see it once,
# so messages to Slack keep it; logs never do (bot/logging_setup.py masks every line with `redact_for_logs`).
_ONE_TIME_SECRET = re.compile(r"(?P<head>[?&](?i:secret)=)[A-Za-z0-9%=]+", re.ASCII)


def redact_for_logs(text: str) -> str:
    """`redact`, and the one-time secrets only a person may see (an otpauth URI's `secret=`) masked too."""
    text = redact(text)
    if "secret=" not in text.lower():
        return text
    return _ONE_TIME_SECRET.sub(lambda match: match.group("head") + MASK, text)

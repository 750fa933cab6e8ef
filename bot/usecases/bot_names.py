"""The names the bot gives its own snapshots, in one place: the code that names them and the check that refuses
them to people both read these prefixes.

Rules this module keeps:
- A snapshot whose name starts with a reserved prefix looks like the bot's (a restore's undo, a schedule's slot),
  so a person may not create one by hand: someone restoring "the undo" or a schedule's retention must never be
  fooled by a look-alike.
- The comparison ignores case: VPS.org keeps names as given, but `Auto-3-…` and `PRE-RESTORE-9` read to a person
  exactly like the bot's, so they are refused too. Names are compared after the trimming the name validation does.
"""

from __future__ import annotations

SAFETY_PREFIX = "pre-restore-"  # `pre-restore-<request id>`: the safety snapshot taken before a restore
SCHEDULE_PREFIX = "auto-"  # `auto-<schedule id>-<yyyymmdd-hhmm>`: a schedule's slot

RESERVED_PREFIXES: tuple[str, ...] = (SAFETY_PREFIX, SCHEDULE_PREFIX)


def reserved_prefix(name: str) -> str | None:
    """The bot's prefix `name` starts with (any case), or None when the name is free for people to use."""
    folded = name.strip().casefold()
    return next((prefix for prefix in RESERVED_PREFIXES if folded.startswith(prefix)), None)

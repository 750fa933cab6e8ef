"""`/snapshot …` text → a command, or a usage error. Pure and total: any text gives one or the other.

The text is taken exactly as Slack sends it (`&amp;`, `<@U123|bob>`, …) and decoded here, once, before anything
else looks at it (`incoming_text`): every argument, and every length limit, is about what the user typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.slack.incoming_text import decode_command_text
from bot.slack_ids import TYPED_USER_ID, USER_MENTION

MAX_COMMAND_TEXT = 2000  # Slack allows more; nothing we accept needs it, and oversized input never reaches the API

USAGE = {
    "help": "`/snapshot help` — this help",
    "list": "`/snapshot list [server_id]` — snapshots of one server, or of all servers",
    "create": "`/snapshot create <server_id> <name> [description…]` — take a snapshot (no arguments: a form)",
    "delete": "`/snapshot delete <snapshot_id>` — delete a snapshot (asks you to confirm)",
    "restore": "`/snapshot restore <snapshot_id> [reason…]` — ask for a restore (reason: e.g. an incident "
    "reference); a second person must approve it",
    "pending": "`/snapshot pending` — requests waiting for approval (restores, deletes, schedules)",
    "schedule": "`/snapshot schedule <server_id> <when> keep <n> [on_full=skip|rotate]` — snapshots at set "
    "times (`<when>`: `hourly`, `daily HH:MM`, `weekly mon HH:MM`, `every 6h`, `cron <5 fields>`), keeping the "
    "newest n; no arguments: a form",
    "schedules": "`/snapshot schedules` — the schedules, their next run and last result",
    "reschedule": "`/snapshot reschedule <schedule_id> <when> keep <n> [on_full=skip|rotate]` — change a schedule "
    "in place (same id; its snapshots stay its own)",
    "unschedule": "`/snapshot unschedule <schedule_id>` — stop a schedule (its snapshots stay)",
    "pin": '`/snapshot pin <snapshot_id> [reason…]` — protect a snapshot: schedules and "Free oldest" never '
    "delete it, and deleting it by hand asks to unpin first",
    "unpin": "`/snapshot unpin <snapshot_id>` — remove a pin",
    "mfa": "`/snapshot mfa enrol | confirm <code> | status` — your authenticator for approving; admins: "
    "`mfa approve @someone`, `mfa reset @someone`",
    "audit": "`/snapshot audit [server:<id>] [snapshot:<id>] [user:@someone] [action:<name>] [limit:<n>]` — "
    "who did what",
}
AUDIT_KEYS = ("server", "snapshot", "user", "action", "limit")


class UsageError(Exception):
    """What the user typed can't be understood; the message says why and shows the right usage."""


@dataclass(frozen=True)
class Command:
    name: str  # help | list | create | delete | restore | pending | audit | schedule | schedules | reschedule | …
    args: dict[str, str] = field(default_factory=dict)


def usage_for(name: str) -> str:
    return "Usage: " + USAGE[name]


def parse_command(text: str | None) -> Command:
    """`text` is the slash command's `text` field as Slack sent it (still escaped)."""
    raw_head, _, raw_rest = (text or "").strip().partition(" ")
    head = decode_command_text(raw_head)
    name = head.lower()
    # `audit user:@someone` needs the mentioned user's id, not the name shown after it.
    rest = decode_command_text(raw_rest, mentions="ids" if name in ("audit", "mfa") else "names").strip()
    length = len(head) + (len(rest) + 1 if rest else 0)
    if length > MAX_COMMAND_TEXT:
        raise UsageError(
            f"That command is too long: {length:,} characters, at most {MAX_COMMAND_TEXT:,}. " + usage_for("help")
        )
    if not head:
        return Command("help")
    words = rest.split()
    if name in ("help", "?"):
        return Command("help")
    if name in ("list", "ls"):
        if len(words) > 1:
            raise UsageError("`list` takes at most one server id. " + usage_for("list"))
        if words:
            _require_id(words[0], "server id", "list")
        return Command("list", {"server_id": words[0]} if words else {})
    if name == "create":
        if not words:
            return Command("create")  # no arguments: the form
        if len(words) < 2:
            raise UsageError("`create` needs a server id and a name. " + usage_for("create"))
        _require_id(words[0], "server id", "create")
        description = rest.split(None, 2)[2] if len(words) > 2 else ""
        return Command("create", {"server_id": words[0], "name": words[1], "description": description})
    if name == "restore":
        if not words:
            raise UsageError("`restore` needs a snapshot id. " + usage_for("restore"))
        _require_id(words[0], "snapshot id", "restore")
        reason = rest.split(None, 1)[1].strip() if len(words) > 1 else ""
        return Command("restore", {"snapshot_id": words[0], "reason": reason})
    if name == "pin":
        if not words:
            raise UsageError("`pin` needs a snapshot id. " + usage_for("pin"))
        _require_id(words[0], "snapshot id", "pin")
        reason = rest.split(None, 1)[1].strip() if len(words) > 1 else ""
        return Command("pin", {"snapshot_id": words[0], "reason": reason})
    if name == "unpin":
        if len(words) != 1:
            raise UsageError("`unpin` needs exactly one snapshot id. " + usage_for("unpin"))
        _require_id(words[0], "snapshot id", "unpin")
        return Command("unpin", {"snapshot_id": words[0]})
    if name == "delete":
        if len(words) != 1:
            raise UsageError(f"`{name}` needs exactly one snapshot id. " + usage_for(name))
        _require_id(words[0], "snapshot id", name)
        return Command(name, {"snapshot_id": words[0]})
    if name == "pending":
        if words:
            raise UsageError("`pending` takes no arguments. " + usage_for("pending"))
        return Command("pending")
    if name == "audit":
        return Command("audit", _audit_filters(words))
    if name == "mfa":
        return Command("mfa", _mfa_args(words))
    if name == "schedule":
        return Command("schedule", _schedule_args(words))
    if name == "schedules":
        if words:
            raise UsageError("`schedules` takes no arguments. " + usage_for("schedules"))
        return Command("schedules")
    if name == "reschedule":
        if not words:
            raise UsageError("`reschedule` needs a schedule id, a time and `keep <n>`. " + usage_for("reschedule"))
        args = _schedule_args(words, command="reschedule", what="schedule id")
        return Command("reschedule", {"schedule_id": args.pop("server_id"), **args})
    if name == "unschedule":
        if len(words) != 1:
            raise UsageError("`unschedule` needs exactly one schedule id. " + usage_for("unschedule"))
        _require_id(words[0], "schedule id", "unschedule")
        return Command("unschedule", {"schedule_id": words[0]})
    shown = head if len(head) <= 30 else head[:30] + "…"
    raise UsageError(f"I don't know `{shown}`. Commands:\n" + "\n".join(USAGE.values()))


def _require_id(word: str, what: str, command: str) -> None:
    text = word.lstrip("#")
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= 2**53):
        shown = word if len(word) <= 30 else word[:30] + "…"
        raise UsageError(f"The {what} must be a whole number, like 12345 — got `{shown}`. " + usage_for(command))


def _audit_filters(words: list[str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition(":")
        key = key.lower()
        if not sep or key not in AUDIT_KEYS or not value:
            raise UsageError(f"I don't understand the filter `{word[:40]}`. " + usage_for("audit"))
        if key in filters:
            raise UsageError(f"The filter `{key}:` is given twice. " + usage_for("audit"))
        if key in ("server", "snapshot", "limit"):
            _require_id(value, f"{key} in `{key}:`", "audit")
        if key == "user":
            match = USER_MENTION.match(value) or TYPED_USER_ID.match(value)
            if not match:
                raise UsageError(
                    "`user:` takes a mention like `user:@alice` (or a user id like `user:U0123ABC`). "
                    + usage_for("audit")
                )
            value = match.group(1)
        filters[key] = value
    return filters


def _mfa_args(words: list[str]) -> dict[str, str]:
    """`enrol`, `confirm <code>`, `status`, `approve @user`, `reset @user` (a code is never shown back)."""
    action = words[0].lower() if words else "status"
    action = "enrol" if action == "enroll" else action
    if action in ("enrol", "status") and len(words) <= 1:
        return {"action": action}
    if action == "confirm":
        if len(words) < 2 or len(words) > 3:
            raise UsageError("`mfa confirm` needs the 6-digit code your app shows. " + usage_for("mfa"))
        return {"action": action, "code": " ".join(words[1:])}
    if action in ("approve", "reset") and len(words) == 2:
        match = USER_MENTION.match(words[1]) or TYPED_USER_ID.match(words[1])
        if match:
            return {"action": action, "user": match.group(1)}
        raise UsageError(f"`mfa {action}` takes a mention like `@alice`. " + usage_for("mfa"))
    raise UsageError("I don't understand that `mfa` command. " + usage_for("mfa"))


def _schedule_args(words: list[str], *, command: str = "schedule", what: str = "server id") -> dict[str, str]:
    """`<server_id> <when…> keep <n> [on_full=skip|rotate]` (for `reschedule`, a schedule id first); the use case
    checks `<when>` and the numbers. The id comes back as `server_id` either way."""
    if not words:
        return {}  # no arguments: the form
    lowered = [w.lower() for w in words]
    if "keep" not in lowered or len(words) < 4:
        raise UsageError(f"`{command}` needs a {what}, a time and `keep <n>`. " + usage_for(command))
    _require_id(words[0], what, command)
    at = len(lowered) - 1 - lowered[::-1].index("keep")
    tail = words[at + 1 :]
    if not 1 <= len(tail) <= 2 or at < 2:
        raise UsageError("`keep <n>` comes after the time, then optionally `on_full=…`. " + usage_for(command))
    _require_id(tail[0], "number after `keep`", command)
    args = {"server_id": words[0], "when": " ".join(words[1:at]), "keep": tail[0]}
    if len(tail) == 2:
        key, sep, value = tail[1].partition("=")
        if key.lower() != "on_full" or not sep or value.lower() not in ("skip", "rotate"):
            raise UsageError(f"I don't understand `{tail[1][:40]}`: use `on_full=skip` or `on_full=rotate`. ")
        args["on_full"] = value.lower()
    return args

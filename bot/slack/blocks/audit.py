"""`/snapshot audit`: a page of audit events, newest first, with an "Older" button."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    SectionBlock,
)

from bot.mrkdwn import Mrkdwn, code, mention, plain
from bot.slack.blocks.common import (
    AUDIT_MORE,
    MAX_BLOCKS,
    as_dicts,
    context_md,
    format_time,
    md,
    notice,
)


# ---- audit -----------------------------------------------------------------------------------------------
def audit_targets(record: Any) -> list[str]:
    """What an audit event was about, in words: "server 12345", "snapshot 801", "request #3"."""
    target = []
    if record.server_id is not None:
        target.append(f"server {record.server_id}")
    if record.snapshot_id is not None:
        target.append(f"snapshot {record.snapshot_id}")
    if record.request_id is not None:
        target.append(f"request #{record.request_id}")
    return target


def audit_message(
    records: Sequence[Any], filters: dict[str, str], now: datetime, more_value: str | None
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    shown = code(" ".join(f"{k}:{v}" for k, v in filters.items()), 200) if filters else Mrkdwn("all events")
    if not records:
        return Mrkdwn("No matching audit events."), notice(Mrkdwn("No audit events match {}.").format(shown))
    lines = []
    for rec in records:
        target = audit_targets(rec)
        detail = rec.details.get("error") or rec.details.get("api_message") or rec.details.get("reason") or ""
        who = mention(rec.actor_id) if rec.actor_id != "system" else Mrkdwn("bot")
        line = Mrkdwn("`{}` {} {} {} {}").format(
            rec.id, format_time(rec.created_at), who, code(rec.action, 60), plain(rec.outcome, 30)
        )
        if target:
            line += Mrkdwn(" · ") + plain(", ".join(target), 200)
        if detail:
            line += Mrkdwn(" · ") + plain(str(detail), 120)
        lines.append(line)
    blocks: list[Block] = [ContextBlock(elements=[context_md(Mrkdwn("Audit — {}, newest first").format(shown))])]
    chunk: list[Mrkdwn] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > 2800:
            blocks.append(SectionBlock(text=md(Mrkdwn("\n").join(chunk))))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(SectionBlock(text=md(Mrkdwn("\n").join(chunk))))
    if more_value:
        blocks.append(ActionsBlock(elements=[ButtonElement(text="Older", action_id=AUDIT_MORE, value=more_value)]))
    return Mrkdwn("{} audit events").format(len(records)), as_dicts(blocks[:MAX_BLOCKS])

"""Block Kit builders: pure functions from data to Slack message/view dicts (no I/O, no clock reads).

Built with `slack_sdk.models.blocks`, whose validation enforces Block Kit's limits when `.to_dict()` runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.slack.parsing import USAGE
from bot.usecases.snapshots import CreateResult, Overview, ServerGroup
from bot.vps.models import SNAPSHOTS_PER_SERVER, Snapshot

MAX_BLOCKS = 50
MAX_TEXT = 3000

# action ids: the contract between these builders and the listeners
LIST_MORE = "list_more"
OPEN_CREATE = "snapshot_create_open"
ASK_DELETE = "snapshot_delete"
CONFIRM_DELETE = "snapshot_delete_confirm"
DISMISS = "dismiss"
ASK_RESTORE = "snapshot_restore"
APPROVE = "approval_approve"
REJECT = "approval_reject"
CANCEL = "approval_cancel"
CREATE_VIEW = "create_snapshot"
REJECT_VIEW = "reject_request"


# ---- text helpers ----------------------------------------------------------------------------------------
def escape(text: str | None) -> str:
    """Neutralise Slack's control sequences in user text: `<!channel>` or `<@U…>` must not ping anyone."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str | None) -> str:
    """Inline code for names: no mrkdwn styling applies inside, and backticks can't break out."""
    return "`" + escape(text).replace("`", "ˋ") + "`"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_size(size_mb: int | None) -> str:
    if size_mb is None:
        return "size pending"
    if size_mb >= 1024:
        return f"{size_mb / 1024:.1f} GB"
    return f"{size_mb} MB"


def format_age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "unknown age"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def format_time(moment: datetime | None) -> str:
    """Slack renders <!date…> in each reader's own time zone; the fallback text is UTC."""
    if moment is None:
        return "unknown time"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def status_label(status: str) -> str:
    if status == "completed":
        return ":white_check_mark: completed"
    if status == "in_progress":
        return ":hourglass_flowing_sand: in progress"
    return f":grey_question: {escape(status) or 'unknown'}"


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, MAX_TEXT))


def _dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


# ---- help ------------------------------------------------------------------------------------------------
def help_blocks(access_line: str, approvals_required: int, admin_notice: str | None = None) -> list[dict[str, Any]]:
    people = "a second person" if approvals_required == 1 else f"{approvals_required} other people"
    lines = "\n".join("• " + u for u in USAGE.values())
    blocks: list[Block] = [
        SectionBlock(text=_md("*Snapshot bot* — VPS.org snapshots from Slack\n" + lines)),
        ContextBlock(
            elements=[
                _md(
                    f"Restores overwrite the whole server and need approval from {people}. "
                    "Every action is recorded in the audit trail."
                ),
                _md(access_line),
            ]
        ),
    ]
    if admin_notice:  # set-up problems only admins can fix
        blocks.append(ContextBlock(elements=[_md(admin_notice)]))
    return _dicts(blocks)


# ---- list ------------------------------------------------------------------------------------------------
def _server_blocks(group: ServerGroup, now: datetime) -> list[Block]:
    server = group.server
    state = f" · server {escape(group.status)}" if group.status else ""
    quota = f"{group.quota_used} of {SNAPSHOTS_PER_SERVER} snapshots"
    if group.at_limit:
        quota += " — limit reached"
    blocks: list[Block] = [
        SectionBlock(
            text=_md(f"*{escape(server.name) or 'server'}* (id {server.id}){state}\n{quota}"),
            accessory=ButtonElement(
                text="Create snapshot",
                action_id=OPEN_CREATE,
                value=str(server.id),
            ),
        )
    ]
    if not group.snapshots:
        blocks.append(ContextBlock(elements=[_md("No snapshots yet.")]))
    for snap in group.snapshots:
        blocks.extend(_snapshot_blocks(snap, now))
    blocks.append(DividerBlock())
    return blocks


def _snapshot_blocks(snap: Snapshot, now: datetime) -> list[Block]:
    line = (
        f"{code(snap.name)} · #{snap.id} · {status_label(snap.status)} · {format_size(snap.size_mb)} · "
        f"{format_age(snap.created_at, now)}"
    )
    if snap.description:
        line += "\n" + escape(clip(snap.description, 300))
    blocks: list[Block] = [SectionBlock(text=_md(line))]
    if snap.is_completed:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(text="Restore", action_id=ASK_RESTORE, value=str(snap.id)),
                    ButtonElement(text="Delete", action_id=ASK_DELETE, value=str(snap.id), style="danger"),
                ]
            )
        )
    return blocks


def _server_block_count(group: ServerGroup) -> int:
    """How many blocks `_server_blocks(group)` makes, without making them (keep the two in step)."""
    return 2 + sum(2 if snap.is_completed else 1 for snap in group.snapshots) + (0 if group.snapshots else 1)


def _page_plan(overview: Overview, max_blocks: int = MAX_BLOCKS) -> list[list[tuple[int, int, int]]]:
    """Split the list into messages of at most `max_blocks` blocks, keeping each server's blocks together.

    Pages come back as (group index, first block, end block) slices, so only the page shown is ever rendered:
    building Block Kit objects for every snapshot of a large account cost ~50 ms per answer (issue 9).
    Two blocks per page are kept for the heading and the "Show more" button.
    """
    budget = max_blocks - 2
    pages: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    used = 0
    for index, group in enumerate(overview.groups):
        size, start = _server_block_count(group), 0
        while size - start > budget:  # a single server larger than a page (only with a very odd API)
            if current:
                pages.append(current)
                current, used = [], 0
            pages.append([(index, start, start + budget)])
            start += budget
        if used + size - start > budget:
            pages.append(current)
            current, used = [], 0
        current.append((index, start, size))
        used += size - start
    if current or not pages:
        pages.append(current)
    return pages


def _render_page(overview: Overview, now: datetime, plan: list[tuple[int, int, int]]) -> list[Block]:
    blocks: list[Block] = []
    for index, start, end in plan:
        blocks.extend(_server_blocks(overview.groups[index], now)[start:end])
    return blocks


def list_pages(overview: Overview, now: datetime, *, max_blocks: int = MAX_BLOCKS) -> list[list[Block]]:
    """Every page of the list, rendered (list_message renders only the one it shows)."""
    return [_render_page(overview, now, plan) for plan in _page_plan(overview, max_blocks)]


def list_message(overview: Overview, now: datetime, page: int = 0) -> tuple[str, list[dict[str, Any]]]:
    """One page of the list as (fallback text, blocks), with a "Show more" button when pages remain."""
    plans = _page_plan(overview)
    page = max(0, min(page, len(plans) - 1))
    scope = f"server {overview.server_id}" if overview.server_id is not None else f"{len(overview.groups)} servers"
    summary = f"{overview.snapshot_count} snapshots on {scope}"
    if overview.api_total is not None:
        summary += f" (VPS.org reports {overview.api_total}; some could not be fetched)"
    if len(plans) > 1:
        summary += f" — page {page + 1} of {len(plans)}"
    blocks: list[Block] = [ContextBlock(elements=[_md(summary)]), *_render_page(overview, now, plans[page])]
    if not overview.groups:
        blocks.append(SectionBlock(text=_md("No servers found.")))
    if page + 1 < len(plans):
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text=f"Show more ({page + 2} of {len(plans)})",
                        action_id=LIST_MORE,
                        value=json.dumps({"server_id": overview.server_id, "page": page + 1}),
                    )
                ]
            )
        )
    return summary, _dicts(blocks)


# ---- create ----------------------------------------------------------------------------------------------
RUNNING_SERVER_WARNING = (
    ":warning: Snapshotting a *running* server can leave the filesystem inconsistent. "
    "For critical snapshots, stop the server first."
)


def create_modal(
    *, channel_id: str, server_id: int | None = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    view = View(
        type="modal",
        callback_id=CREATE_VIEW,
        title=PlainTextObject(text="Create snapshot"),
        submit=PlainTextObject(text="Create"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"channel_id": channel_id}),
        blocks=[
            InputBlock(
                block_id="server",
                label="Server id",
                element=PlainTextInputElement(
                    action_id="value",
                    initial_value=str(server_id) if server_id is not None else None,
                    placeholder="e.g. 12345",
                ),
            ),
            InputBlock(
                block_id="name",
                label="Snapshot name",
                hint="Letters, digits, hyphens and underscores, up to 64 characters.",
                element=PlainTextInputElement(action_id="value", placeholder="before-update", max_length=64),
            ),
            InputBlock(
                block_id="description",
                label="Description",
                optional=True,
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=500),
            ),
            ContextBlock(elements=[_md(RUNNING_SERVER_WARNING)]),
        ],
    )
    return view.to_dict()


def create_started(result: CreateResult, actor_id: str) -> tuple[str, list[dict[str, Any]]]:
    snap = result.snapshot
    text = (
        f"{mention(actor_id)} started snapshot {code(snap.name)} (#{snap.id}) of *{escape(result.server.name)}* "
        f"(id {result.server.id})."
    )
    blocks: list[Block] = [SectionBlock(text=_md(text + f"\nStatus: {status_label(snap.status)}"))]
    context = [escape(result.api_message)] if result.api_message else []
    if snap.description:
        context.insert(0, "“" + escape(clip(snap.description, 300)) + "”")
    if context:
        blocks.append(ContextBlock(elements=[_md(c) for c in context]))
    return text, _dicts(blocks)


def quota_reached(message: str, oldest_snapshot_id: int | None) -> list[dict[str, Any]]:
    blocks: list[Block] = [SectionBlock(text=_md(":no_entry: " + message))]
    if oldest_snapshot_id is not None:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Delete the oldest…",
                        action_id=ASK_DELETE,
                        value=str(oldest_snapshot_id),
                        style="danger",
                    )
                ]
            )
        )
    return _dicts(blocks)


# ---- delete ----------------------------------------------------------------------------------------------
def delete_confirmation(snap: Snapshot, now: datetime) -> tuple[str, list[dict[str, Any]]]:
    text = f"Delete snapshot {code(snap.name)} (#{snap.id}) of *{escape(snap.server.name)}*?"
    details = (
        f"{status_label(snap.status)} · {format_size(snap.size_mb)} · taken {format_age(snap.created_at, now)}"
        + (f"\n“{escape(clip(snap.description, 300))}”" if snap.description else "")
    )
    blocks: list[Block] = [
        SectionBlock(text=_md(":wastebasket: " + text + "\n" + details)),
        ContextBlock(elements=[_md("Deleting is permanent: the snapshot cannot be recovered.")]),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Delete",
                    action_id=CONFIRM_DELETE,
                    value=str(snap.id),
                    style="danger",
                    confirm=ConfirmObject(
                        title="Delete this snapshot?",
                        text=f"{snap.name} (#{snap.id}) on {snap.server.name} will be deleted permanently.",
                        confirm="Delete",
                        deny="Keep it",
                        style="danger",
                    ),
                ),
                ButtonElement(text="Cancel", action_id=DISMISS, value="delete"),
            ]
        ),
    ]
    return text, _dicts(blocks)


def deleted_announcement(snap: Snapshot, actor_id: str) -> str:
    return (
        f":wastebasket: {mention(actor_id)} deleted snapshot {code(snap.name)} (#{snap.id}) "
        f"of *{escape(snap.server.name)}*."
    )


def notice(text: str) -> list[dict[str, Any]]:
    return _dicts([SectionBlock(text=_md(text))])


# ---- approvals -------------------------------------------------------------------------------------------
_KIND_TITLE = {"restore": "Restore", "delete": "Delete"}
_STATE_LINE = {
    "executed": ":white_check_mark: Approved by {who} {when} — carried out.",
    "failed": ":x: Approved by {who} {when} — *failed*.",
    "needs_check": ":warning: Approved by {who} {when} — *outcome unknown*: check the server before anything else.",
    "executing": ":hourglass_flowing_sand: Approved by {who} {when} — being carried out…",
    "rejected": ":no_entry_sign: Rejected by {who} {when}.",
    "cancelled": ":leftwards_arrow_with_hook: Cancelled by {who} {when}.",
    "expired": ":alarm_clock: Expired {when} without enough approvals.",
}


def approval_card(req: Any, now: datetime) -> tuple[str, list[dict[str, Any]]]:
    """The card approvers see. `req` is a RequestView. Buttons only while the request is pending."""
    title = _KIND_TITLE.get(req.kind, req.kind.title())
    text = (
        f"{title} requested by {mention(req.requester_id)}: snapshot {code(req.snapshot_name)} "
        f"(#{req.snapshot_id}) → *{escape(req.server_name)}* (id {req.server_id})"
    )
    facts = (
        f"*Server:* {escape(req.server_name)} (id {req.server_id})\n"
        f"*Snapshot:* {code(req.snapshot_name)} · #{req.snapshot_id} · taken "
        f"{format_age(req.snapshot_created_at, now)} · {format_size(req.snapshot_size_mb)}\n"
        + (f"*Description:* {escape(clip(req.snapshot_description, 300))}\n" if req.snapshot_description else "")
        + f"*Asked by:* {mention(req.requester_id)} {format_time(req.created_at)}\n"
        f"*Expires:* {format_time(req.expires_at)}"
    )
    if req.kind == "restore":
        warning = (
            ":rotating_light: *This overwrites ALL current data on the server.* The server is stopped first, "
            "and the restore *cannot be undone*."
        )
    else:
        warning = ":rotating_light: Deleting a snapshot is permanent."
    blocks: list[Block] = [
        HeaderBlock(text=f"{title} request #{req.id}"),
        SectionBlock(text=_md(facts)),
        SectionBlock(text=_md(warning)),
    ]
    if req.approvals_required > 1 or req.approvers:
        who = ", ".join(mention(a) for a in req.approvers) or "nobody yet"
        blocks.append(
            ContextBlock(elements=[_md(f"Approvals: {len(req.approvers)} of {req.approvals_required} ({who})")])
        )
    if req.state == "pending":
        blocks.append(
            ActionsBlock(
                block_id=f"approval:{req.id}",
                elements=[
                    ButtonElement(
                        text="Approve",
                        action_id=APPROVE,
                        value=str(req.id),
                        style="primary",
                        confirm=ConfirmObject(
                            title=f"Approve this {req.kind}?",
                            text=(
                                f"{req.snapshot_name} (#{req.snapshot_id}) will be restored onto {req.server_name}. "
                                "All current data there is overwritten. This cannot be undone."
                                if req.kind == "restore"
                                else f"{req.snapshot_name} (#{req.snapshot_id}) will be deleted permanently."
                            ),
                            confirm="Approve",
                            deny="Not yet",
                            style="danger",
                        ),
                    ),
                    ButtonElement(text="Reject", action_id=REJECT, value=str(req.id), style="danger"),
                    ButtonElement(text="Cancel (requester)", action_id=CANCEL, value=str(req.id)),
                ],
            )
        )
    else:
        who = mention(req.decided_by) if req.decided_by and req.decided_by != "system" else "the bot"
        line = _STATE_LINE.get(req.state, f"State: {escape(req.state)}").format(
            who=who, when=format_time(req.decided_at)
        )
        if req.reason and req.state in ("rejected", "cancelled"):
            line += f"\nReason: “{escape(clip(req.reason, 500))}”"
        if req.result_message:
            line += f"\n{escape(clip(req.result_message, 1500))}"
        blocks.append(SectionBlock(text=_md(line)))
    return text, _dicts(blocks)


def reject_modal(request_id: int, card_channel: str | None, card_ts: str | None) -> dict[str, Any]:
    view = View(
        type="modal",
        callback_id=REJECT_VIEW,
        title=PlainTextObject(text=f"Reject request #{request_id}"),
        submit=PlainTextObject(text="Reject"),
        close=PlainTextObject(text="Back"),
        private_metadata=json.dumps({"request_id": request_id, "channel": card_channel, "ts": card_ts}),
        blocks=[
            InputBlock(
                block_id="reason",
                label="Reason (optional)",
                optional=True,
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=500),
            )
        ],
    )
    return view.to_dict()


def pending_list(requests: Sequence[Any], links: dict[int, str], now: datetime) -> tuple[str, list[dict[str, Any]]]:
    if not requests:
        return "No open requests.", _dicts([SectionBlock(text=_md("No open requests. :relieved:"))])
    blocks: list[Block] = [ContextBlock(elements=[_md(f"{len(requests)} open request(s)")])]
    for req in requests[:40]:
        link = links.get(req.id)
        label = f"<{link}|#{req.id}>" if link else f"#{req.id}"
        state = {
            "pending": f"waiting for approval ({len(req.approvers)} of {req.approvals_required}), "
            f"expires {format_time(req.expires_at)}",
            "executing": "being carried out",
            "needs_check": ":warning: *needs a human check* — the bot stopped mid-way; outcome unknown",
        }.get(req.state, req.state)
        blocks.append(
            SectionBlock(
                text=_md(
                    f"{label} {req.kind} of {code(req.snapshot_name)} (#{req.snapshot_id}) → "
                    f"*{escape(req.server_name)}* — asked by {mention(req.requester_id)} "
                    f"{format_age(req.created_at, now)}\n{state}"
                )
            )
        )
    if len(requests) > 40:
        blocks.append(ContextBlock(elements=[_md(f"…and {len(requests) - 40} more.")]))
    return f"{len(requests)} open request(s)", _dicts(blocks)


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
) -> tuple[str, list[dict[str, Any]]]:
    shown = " ".join(f"{k}:{v}" for k, v in filters.items()) or "all events"
    if not records:
        return "No matching audit events.", notice(f"No audit events match _{escape(shown)}_.")
    lines = []
    for rec in records:
        target = audit_targets(rec)
        detail = rec.details.get("error") or rec.details.get("api_message") or rec.details.get("reason") or ""
        line = (
            f"`{rec.id}` {format_time(rec.created_at)} {mention(rec.actor_id) if rec.actor_id != 'system' else 'bot'} "
            f"*{escape(rec.action)}* {escape(rec.outcome)}"
            + (f" · {', '.join(target)}" if target else "")
            + (f" · {escape(clip(str(detail), 120))}" if detail else "")
        )
        lines.append(line)
    blocks: list[Block] = [ContextBlock(elements=[_md(f"Audit — {escape(shown)}, newest first")])]
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > 2800:
            blocks.append(SectionBlock(text=_md("\n".join(chunk))))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(SectionBlock(text=_md("\n".join(chunk))))
    if more_value:
        blocks.append(ActionsBlock(elements=[ButtonElement(text="Older", action_id=AUDIT_MORE, value=more_value)]))
    return f"{len(records)} audit events", _dicts(blocks[:MAX_BLOCKS])


AUDIT_MORE = "audit_more"

"""Block Kit builders: pure functions from data to Slack message/view dicts (no I/O, no clock reads).

Built with `slack_sdk.models.blocks`, whose validation enforces Block Kit's limits when `.to_dict()` runs.

Rules these builders keep:
- Every mrkdwn text is `Mrkdwn` (bot/mrkdwn.py): `_md` refuses anything else, so untrusted text (names,
  descriptions, VPS.org's words, reasons) can only get in through `code()`/`plain()`, which redact secrets, keep
  it on one line and escape it. Fallback texts are `Mrkdwn` built the same way.
- Every text is clipped to its Block Kit limit before building, taking the limits from slack_sdk's own models
  (`SectionBlock.text_max_length`, `ConfirmObject.text_max_length`, ...), so no input can make a builder raise.
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

from bot.mrkdwn import Mrkdwn, code, mention, plain, quote, require, sentence, slack_date
from bot.mrkdwn import clip as clip_mrkdwn
from bot.mrkdwn import link as link_to
from bot.slack.parsing import USAGE
from bot.usecases.snapshots import CreateResult, Overview, ServerGroup
from bot.vps.models import SNAPSHOTS_PER_SERVER, Snapshot

__all__ = ["Mrkdwn", "code", "mention", "plain", "quote", "sentence"]

# Limits: slack_sdk's own where its models have them; the rest from Block Kit's reference.
MAX_BLOCKS = 50  # per message
MAX_VIEW_BLOCKS = View.blocks_max_length
MAX_TEXT = SectionBlock.text_max_length
MAX_CONTEXT_TEXT = 2000  # one context element's text
MAX_HEADER = HeaderBlock.text_max_length
MAX_BUTTON_TEXT = ButtonElement.text_max_length
MAX_CONFIRM_TEXT = ConfirmObject.text_max_length
MAX_CONFIRM_TITLE = ConfirmObject.title_max_length
MAX_MODAL_TITLE = View.title_max_length
MAX_FALLBACK_TEXT = 3000  # a message's `text`: Slack truncates far later, but a notification needs no more
NAME_LIMIT = 64  # snapshot names (VPS.org's limit, also the create form's)
SERVER_LIMIT = 80  # server names as shown; VPS.org sets no documented limit
DESCRIPTION_LIMIT = 500  # the create form's limit

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
def clip(text: str, limit: int) -> str:
    """Plain text (plain_text objects) cut to `limit`; mrkdwn is cut with `bot.mrkdwn.clip` instead."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def server_name(name: str | None, server_id: int | None = None) -> Mrkdwn:
    """A server's name as shown everywhere: a code span (never bold with the name inside it)."""
    if not name:
        return Mrkdwn("server {}").format(server_id) if server_id is not None else Mrkdwn("server")
    return code(name, SERVER_LIMIT)


def snapshot_name(name: str | None) -> Mrkdwn:
    return code(name, NAME_LIMIT)


def format_size(size_mb: int | None) -> Mrkdwn:
    if size_mb is None:
        return Mrkdwn("size pending")
    if size_mb >= 1024:
        return Mrkdwn("{:.1f} GB").format(size_mb / 1024)
    return Mrkdwn("{} MB").format(int(size_mb))


_AGE_UNITS = (
    (Mrkdwn("day"), Mrkdwn("days"), 86400),
    (Mrkdwn("hour"), Mrkdwn("hours"), 3600),
    (Mrkdwn("minute"), Mrkdwn("minutes"), 60),
)


def format_age(then: datetime | None, now: datetime) -> Mrkdwn:
    if then is None:
        return Mrkdwn("unknown age")
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return Mrkdwn("just now")
    for one, many, size in _AGE_UNITS:
        if seconds >= size:
            n = seconds // size
            return Mrkdwn("{} {} ago").format(n, one if n == 1 else many)
    return Mrkdwn("just now")


def format_time(moment: datetime | None) -> Mrkdwn:
    """Slack renders <!date…> in each reader's own time zone; the fallback text is UTC."""
    if moment is None:
        return Mrkdwn("unknown time")
    return slack_date(int(moment.timestamp()), moment.strftime("%Y-%m-%d %H:%M UTC"))


def status_label(status: str) -> Mrkdwn:
    if status == "completed":
        return Mrkdwn(":white_check_mark: completed")
    if status == "in_progress":
        return Mrkdwn(":hourglass_flowing_sand: in progress")
    return Mrkdwn(":grey_question: ") + (code(status, 40) if status else Mrkdwn("unknown"))


def _md(text: Mrkdwn, limit: int = MAX_TEXT) -> MarkdownTextObject:
    # verbatim: Slack adds no links or mentions of its own to the text (bare URLs, channel names stay text).
    # Slack refuses an empty text: a value that cleaned down to nothing still shows as a dash.
    return MarkdownTextObject(text=clip_mrkdwn(require(text), limit) or "-", verbatim=True)


def _context_md(text: Mrkdwn) -> MarkdownTextObject:
    return _md(text, MAX_CONTEXT_TEXT)


def _fallback(text: Mrkdwn) -> Mrkdwn:
    return clip_mrkdwn(require(text), MAX_FALLBACK_TEXT)


def _dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


# ---- help ------------------------------------------------------------------------------------------------
def help_blocks(
    access_line: Mrkdwn | str, approvals_required: int, admin_notice: Mrkdwn | str | None = None
) -> list[dict[str, Any]]:
    people = (
        Mrkdwn("a second person") if approvals_required == 1 else Mrkdwn("{} other people").format(approvals_required)
    )
    lines = Mrkdwn("\n").join(Mrkdwn("• ") + sentence(u) for u in USAGE.values())
    blocks: list[Block] = [
        SectionBlock(text=_md(Mrkdwn("*Snapshot bot* — VPS.org snapshots from Slack\n") + lines)),
        ContextBlock(
            elements=[
                _context_md(
                    Mrkdwn(
                        "Restores overwrite the whole server and need approval from {}. "
                        "Every action is recorded in the audit trail."
                    ).format(people)
                ),
                _context_md(sentence(access_line)),
            ]
        ),
    ]
    if admin_notice:  # set-up problems only admins can fix
        blocks.append(ContextBlock(elements=[_context_md(sentence(admin_notice))]))
    return _dicts(blocks)


# ---- list ------------------------------------------------------------------------------------------------
def _server_blocks(group: ServerGroup, now: datetime) -> list[Block]:
    server = group.server
    state = Mrkdwn(" · server {}").format(plain(group.status, 40)) if group.status else Mrkdwn("")
    quota = Mrkdwn("{} of {} snapshots").format(group.quota_used, SNAPSHOTS_PER_SERVER)
    if group.at_limit:
        quota += Mrkdwn(" — limit reached")
    blocks: list[Block] = [
        SectionBlock(
            text=_md(Mrkdwn("{} (id {}){}\n{}").format(server_name(server.name), server.id, state, quota)),
            accessory=ButtonElement(
                text="Create snapshot",
                action_id=OPEN_CREATE,
                value=str(server.id),
            ),
        )
    ]
    if not group.snapshots:
        blocks.append(ContextBlock(elements=[_context_md(Mrkdwn("No snapshots yet."))]))
    for snap in group.snapshots:
        blocks.extend(_snapshot_blocks(snap, now))
    blocks.append(DividerBlock())
    return blocks


def _snapshot_blocks(snap: Snapshot, now: datetime) -> list[Block]:
    line = Mrkdwn("{} · #{} · {} · {} · {}").format(
        snapshot_name(snap.name),
        snap.id,
        status_label(snap.status),
        format_size(snap.size_mb),
        format_age(snap.created_at, now),
    )
    if snap.description:
        line += Mrkdwn("\n") + quote(snap.description, 300)
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


def list_message(overview: Overview, now: datetime, page: int = 0) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """One page of the list as (fallback text, blocks), with a "Show more" button when pages remain."""
    plans = _page_plan(overview)
    page = max(0, min(page, len(plans) - 1))
    scope = (
        Mrkdwn("server {}").format(overview.server_id)
        if overview.server_id is not None
        else Mrkdwn("{} servers").format(len(overview.groups))
    )
    summary = Mrkdwn("{} snapshots on {}").format(overview.snapshot_count, scope)
    if overview.api_total is not None:
        summary += Mrkdwn(" (VPS.org reports {}; some could not be fetched)").format(overview.api_total)
    if len(plans) > 1:
        summary += Mrkdwn(" — page {} of {}").format(page + 1, len(plans))
    blocks: list[Block] = [ContextBlock(elements=[_context_md(summary)]), *_render_page(overview, now, plans[page])]
    if not overview.groups:
        blocks.append(SectionBlock(text=_md(Mrkdwn("No servers found."))))
    if page + 1 < len(plans):
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text=clip(f"Show more ({page + 2} of {len(plans)})", MAX_BUTTON_TEXT),
                        action_id=LIST_MORE,
                        value=json.dumps({"server_id": overview.server_id, "page": page + 1}),
                    )
                ]
            )
        )
    return _fallback(summary), _dicts(blocks)


# ---- create ----------------------------------------------------------------------------------------------
RUNNING_SERVER_WARNING = Mrkdwn(
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
            ContextBlock(elements=[_context_md(RUNNING_SERVER_WARNING)]),
        ],
    )
    return view.to_dict()


def create_started(result: CreateResult, actor_id: str) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    snap = result.snapshot
    text = Mrkdwn("{} started snapshot {} (#{}) of {} (id {}).").format(
        mention(actor_id), snapshot_name(snap.name), snap.id, server_name(result.server.name), result.server.id
    )
    blocks: list[Block] = [SectionBlock(text=_md(text + Mrkdwn("\nStatus: ") + status_label(snap.status)))]
    words = plain(result.api_message, 500)
    context = [words] if words else []
    if snap.description:
        context.insert(0, quote(snap.description, 300))
    if context:
        blocks.append(ContextBlock(elements=[_context_md(c) for c in context]))
    return _fallback(text), _dicts(blocks)


def quota_reached(message: Mrkdwn, oldest_snapshot_id: int | None) -> list[dict[str, Any]]:
    blocks: list[Block] = [SectionBlock(text=_md(Mrkdwn(":no_entry: ") + message))]
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


def _confirm(title: str, text: Mrkdwn, confirm: str, deny: str) -> ConfirmObject:
    """A confirm dialog whose text (mrkdwn, slack_sdk's default) is clipped to ConfirmObject's own limit."""
    return ConfirmObject(
        title=clip(title, MAX_CONFIRM_TITLE),
        text=_md(text, MAX_CONFIRM_TEXT),
        confirm=confirm,
        deny=deny,
        style="danger",
    )


# ---- delete ----------------------------------------------------------------------------------------------
def delete_confirmation(snap: Snapshot, now: datetime) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    text = Mrkdwn("Delete snapshot {} (#{}) of {}?").format(
        snapshot_name(snap.name), snap.id, server_name(snap.server.name, snap.server.id)
    )
    details = Mrkdwn("{} · {} · taken {}").format(
        status_label(snap.status), format_size(snap.size_mb), format_age(snap.created_at, now)
    )
    if snap.description:
        details += Mrkdwn("\n") + quote(snap.description, 300)
    blocks: list[Block] = [
        SectionBlock(text=_md(Mrkdwn(":wastebasket: ") + text + Mrkdwn("\n") + details)),
        ContextBlock(elements=[_context_md(Mrkdwn("Deleting is permanent: the snapshot cannot be recovered."))]),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Delete",
                    action_id=CONFIRM_DELETE,
                    value=str(snap.id),
                    style="danger",
                    confirm=_confirm(
                        "Delete this snapshot?",
                        Mrkdwn("{} (#{}) on {} will be deleted permanently.").format(
                            snapshot_name(snap.name), snap.id, server_name(snap.server.name, snap.server.id)
                        ),
                        "Delete",
                        "Keep it",
                    ),
                ),
                ButtonElement(text="Cancel", action_id=DISMISS, value="delete"),
            ]
        ),
    ]
    return _fallback(text), _dicts(blocks)


def deleted_announcement(snap: Snapshot, actor_id: str) -> Mrkdwn:
    return Mrkdwn(":wastebasket: {} deleted snapshot {} (#{}) of {}.").format(
        mention(actor_id), snapshot_name(snap.name), snap.id, server_name(snap.server.name, snap.server.id)
    )


def notice(text: Mrkdwn) -> list[dict[str, Any]]:
    return _dicts([SectionBlock(text=_md(text))])


# ---- approvals -------------------------------------------------------------------------------------------
_KIND_TITLE = {"restore": "Restore", "delete": "Delete"}
_KIND_WORD = {"restore": Mrkdwn("Restore"), "delete": Mrkdwn("Delete")}
_STATE_LINE = {
    "executed": Mrkdwn(":white_check_mark: Approved by {who} {when} — carried out."),
    "failed": Mrkdwn(":x: Approved by {who} {when} — *failed*."),
    "needs_check": Mrkdwn(
        ":warning: Approved by {who} {when} — *outcome unknown*: check the server before anything else."
    ),
    "executing": Mrkdwn(
        ":hourglass_flowing_sand: Approved by {who} {when} — re-checking the snapshot; nothing sent yet…"
    ),
    "sending": Mrkdwn(":hourglass_flowing_sand: Approved by {who} {when} — sent to VPS.org, waiting for its answer…"),
    "stale": Mrkdwn(":no_entry: Approved by {who} {when} — *not sent*: the snapshot changed since it was requested."),
    "rejected": Mrkdwn(":no_entry_sign: Rejected by {who} {when}."),
    "cancelled": Mrkdwn(":leftwards_arrow_with_hook: Cancelled by {who} {when}."),
    "expired": Mrkdwn(":alarm_clock: Expired {when} without enough approvals."),
}


def _kind_title(kind: str) -> str:
    return _KIND_TITLE.get(kind, kind.title()[:20])


def approval_card(req: Any, now: datetime) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """The card approvers see. `req` is a RequestView. Buttons only while the request is pending.

    Every line of the facts section starts with one of the card's own labels: the values are code spans or
    quoted plain text on the same line, so a description or a name cannot add or imitate a line.
    """
    title = _kind_title(req.kind)
    snapshot = snapshot_name(req.snapshot_name)
    server = server_name(req.server_name, req.server_id)
    text = Mrkdwn("{} requested by {}: snapshot {} (#{}) → {} (id {})").format(
        _KIND_WORD.get(req.kind) or plain(title, 20),
        mention(req.requester_id),
        snapshot,
        req.snapshot_id,
        server,
        req.server_id,
    )
    facts = Mrkdwn("*Server:* {} (id {})\n*Snapshot:* {} · #{} · taken {} · {}\n").format(
        server,
        req.server_id,
        snapshot,
        req.snapshot_id,
        format_age(req.snapshot_created_at, now),
        format_size(req.snapshot_size_mb),
    )
    if req.snapshot_description:
        facts += Mrkdwn("*Description:* ") + quote(req.snapshot_description, DESCRIPTION_LIMIT) + Mrkdwn("\n")
    facts += Mrkdwn("*Asked by:* {} {}\n*Expires:* {}").format(
        mention(req.requester_id), format_time(req.created_at), format_time(req.expires_at)
    )
    if req.kind == "restore":
        warning = Mrkdwn(
            ":rotating_light: *This overwrites ALL current data on the server.* The server is stopped first, "
            "and the restore *cannot be undone*."
        )
    else:
        warning = Mrkdwn(":rotating_light: Deleting a snapshot is permanent.")
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"{title} request #{req.id}", MAX_HEADER)),
        SectionBlock(text=_md(facts)),
        SectionBlock(text=_md(warning)),
    ]
    if req.approvals_required > 1 or req.approvers:
        who = Mrkdwn(", ").join(mention(a) for a in req.approvers) or Mrkdwn("nobody yet")
        blocks.append(
            ContextBlock(
                elements=[
                    _context_md(
                        Mrkdwn("Approvals: {} of {} ({})").format(len(req.approvers), req.approvals_required, who)
                    )
                ]
            )
        )
    if req.state == "pending":
        note = getattr(req, "result_message", "")  # an earlier approval that sent nothing (VPS.org too slow, …)
        if note:
            blocks.append(SectionBlock(text=_md(Mrkdwn(":warning: ") + plain(note, 1500))))
        blocks.append(decision_actions(req, f"approval:{req.id}", approve=True, cancel=True))
    else:
        who = mention(req.decided_by) if req.decided_by and req.decided_by != "system" else Mrkdwn("the bot")
        template = _STATE_LINE.get(req.state)
        if template is None:
            line = Mrkdwn("State: {}").format(code(req.state, 40))
        else:
            line = template.format(who=who, when=format_time(req.decided_at))
        if req.reason and req.state in ("rejected", "cancelled"):
            line += Mrkdwn("\nReason: ") + quote(req.reason, 500)
        if req.result_message:
            line += Mrkdwn("\nResult: ") + plain(req.result_message, 1500)
        blocks.append(SectionBlock(text=_md(line)))
    return _fallback(text), _dicts(blocks)


def decision_actions(req: Any, block_id: str, *, approve: bool, cancel: bool) -> ActionsBlock:
    """The buttons that decide a pending request, wherever it is shown (card, `/snapshot pending`, App Home).

    Same action ids everywhere, so every click goes through the same listeners and the same exactly-once rules.
    `approve`: Approve and Reject; `cancel`: Cancel (the requester's). The card shows all three to everyone.
    """
    elements: list[ButtonElement] = []
    if approve:
        snapshot = snapshot_name(req.snapshot_name)
        if req.kind == "restore":
            consequence = Mrkdwn(
                "{} (#{}) will be restored onto {}. All current data there is overwritten. This cannot be undone."
            ).format(snapshot, req.snapshot_id, server_name(req.server_name, req.server_id))
        else:
            consequence = Mrkdwn("{} (#{}) will be deleted permanently.").format(snapshot, req.snapshot_id)
        title = _kind_title(req.kind)
        elements += [
            ButtonElement(
                text="Approve",
                action_id=APPROVE,
                value=str(req.id),
                style="primary",
                confirm=_confirm(f"Approve this {title.lower()}?", consequence, "Approve", "Not yet"),
            ),
            ButtonElement(text="Reject", action_id=REJECT, value=str(req.id), style="danger"),
        ]
    if cancel:
        elements.append(
            ButtonElement(text="Cancel (requester)" if approve else "Cancel", action_id=CANCEL, value=str(req.id))
        )
    return ActionsBlock(block_id=block_id, elements=elements)


def reject_modal(request_id: int, card_channel: str | None, card_ts: str | None) -> dict[str, Any]:
    view = View(
        type="modal",
        callback_id=REJECT_VIEW,
        title=PlainTextObject(text=clip(f"Reject request #{request_id}", MAX_MODAL_TITLE)),
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


def pending_list(
    requests: Sequence[Any],
    links: dict[int, str],
    now: datetime,
    *,
    viewer: str | None = None,
    viewer_can_approve: bool = False,
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """Open requests, each pending one with the buttons `viewer` may press: Approve/Reject for an approver who
    is not the requester and has not approved it yet, Cancel for the requester."""
    if not requests:
        return Mrkdwn("No open requests."), _dicts([SectionBlock(text=_md(Mrkdwn("No open requests. :relieved:")))])
    count = Mrkdwn("{} open request(s)").format(len(requests))
    blocks: list[Block] = [ContextBlock(elements=[_context_md(count)])]
    shown = 0
    for req in requests:
        if shown >= 40 or len(blocks) >= MAX_BLOCKS - 3:
            break
        shown += 1
        number = Mrkdwn("#{}").format(req.id)
        link = links.get(req.id)
        label = link_to(link, number) if link else number
        states = {
            "pending": Mrkdwn("waiting for approval ({} of {}), expires {}").format(
                len(req.approvers), req.approvals_required, format_time(req.expires_at)
            ),
            "executing": Mrkdwn("approved; re-checking before sending"),
            "sending": Mrkdwn("sent to VPS.org; waiting for its answer"),
            "needs_check": Mrkdwn(":warning: *needs a human check* — outcome unknown; check the server"),
        }
        state = states.get(req.state) or code(req.state, 40)
        blocks.append(
            SectionBlock(
                text=_md(
                    Mrkdwn("{} {} of {} (#{}) → {} — asked by {} {}\n{}").format(
                        label,
                        plain(req.kind, 20),
                        snapshot_name(req.snapshot_name),
                        req.snapshot_id,
                        server_name(req.server_name, req.server_id),
                        mention(req.requester_id),
                        format_age(req.created_at, now),
                        state,
                    )
                )
            )
        )
        if req.state == "pending" and viewer is not None:
            yours = req.requester_id == viewer
            approve = viewer_can_approve and not yours and viewer not in req.approvers
            if approve or yours:
                blocks.append(decision_actions(req, f"pending:{req.id}", approve=approve, cancel=yours))
    if len(requests) > shown:
        blocks.append(ContextBlock(elements=[_context_md(Mrkdwn("…and {} more.").format(len(requests) - shown))]))
    return count, _dicts(blocks)


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
    shown = plain(" ".join(f"{k}:{v}" for k, v in filters.items()) or "all events", 200)
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
    blocks: list[Block] = [ContextBlock(elements=[_context_md(Mrkdwn("Audit — {}, newest first").format(shown))])]
    chunk: list[Mrkdwn] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > 2800:
            blocks.append(SectionBlock(text=_md(Mrkdwn("\n").join(chunk))))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(SectionBlock(text=_md(Mrkdwn("\n").join(chunk))))
    if more_value:
        blocks.append(ActionsBlock(elements=[ButtonElement(text="Older", action_id=AUDIT_MORE, value=more_value)]))
    return Mrkdwn("{} audit events").format(len(records)), _dicts(blocks[:MAX_BLOCKS])


AUDIT_MORE = "audit_more"

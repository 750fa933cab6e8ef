"""Approval requests: the card and its buttons (the same wherever a request is shown), the reject form and
`/snapshot pending`.
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
    ContextBlock,
    HeaderBlock,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn, code, mention, plain, quote
from bot.mrkdwn import link as link_to
from bot.slack.blocks.common import (
    APPROVE,
    CANCEL,
    DESCRIPTION_LIMIT,
    MAX_BLOCKS,
    MAX_HEADER,
    MAX_MODAL_TITLE,
    REJECT,
    REJECT_VIEW,
    as_dicts,
    clip,
    confirm_dialog,
    context_md,
    fallback_text,
    format_age,
    format_size,
    format_time,
    md,
    server_name,
    snapshot_name,
)

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
    request_reason = getattr(req, "request_reason", "")
    if request_reason:
        facts += Mrkdwn("*Reason:* ") + quote(request_reason, 200) + Mrkdwn("\n")
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
        SectionBlock(text=md(facts)),
        SectionBlock(text=md(warning)),
    ]
    if req.approvals_required > 1 or req.approvers:
        who = Mrkdwn(", ").join(mention(a) for a in req.approvers) or Mrkdwn("nobody yet")
        blocks.append(
            ContextBlock(
                elements=[
                    context_md(
                        Mrkdwn("Approvals: {} of {} ({})").format(len(req.approvers), req.approvals_required, who)
                    )
                ]
            )
        )
    if req.state == "pending":
        note = getattr(req, "result_message", "")  # an earlier approval that sent nothing (VPS.org too slow, …)
        if note:
            blocks.append(SectionBlock(text=md(Mrkdwn(":warning: ") + plain(note, 1500))))
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
        blocks.append(SectionBlock(text=md(line)))
    return fallback_text(text), as_dicts(blocks)


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
                confirm=confirm_dialog(f"Approve this {title.lower()}?", consequence, "Approve", "Not yet"),
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
                label="Reason",  # Slack adds "(optional)" to an optional input's label itself
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
        return Mrkdwn("No open requests."), as_dicts([SectionBlock(text=md(Mrkdwn("No open requests. :relieved:")))])
    count = Mrkdwn("1 open request") if len(requests) == 1 else Mrkdwn("{} open requests").format(len(requests))
    blocks: list[Block] = [ContextBlock(elements=[context_md(count)])]
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
                text=md(
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
        blocks.append(ContextBlock(elements=[context_md(Mrkdwn("…and {} more.").format(len(requests) - shown))]))
    return count, as_dicts(blocks)

"""Creating and deleting a snapshot: the create form, the announcement, the quota message, the delete
confirmation.
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
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn, mention, plain, quote
from bot.slack.blocks.common import (
    ASK_DELETE,
    CONFIRM_DELETE,
    CREATE_VIEW,
    DISMISS,
    as_dicts,
    confirm_dialog,
    context_md,
    fallback_text,
    format_age,
    format_size,
    md,
    server_name,
    snapshot_name,
    status_label,
)
from bot.usecases.approval_base import RequestView
from bot.usecases.snapshots import CreateResult
from bot.vps.models import Snapshot

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
            ContextBlock(elements=[context_md(RUNNING_SERVER_WARNING)]),
        ],
    )
    return view.to_dict()


def create_started(result: CreateResult, actor_id: str) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    snap = result.snapshot
    text = Mrkdwn("{} started snapshot {} (#{}) of {} (id {}).").format(
        mention(actor_id), snapshot_name(snap.name), snap.id, server_name(result.server.name), result.server.id
    )
    blocks: list[Block] = [SectionBlock(text=md(text + Mrkdwn("\nStatus: ") + status_label(snap.status)))]
    words = plain(result.api_message, 500)
    context = [words] if words else []
    if snap.description:
        context.insert(0, quote(snap.description, 300))
    if context:
        blocks.append(ContextBlock(elements=[context_md(c) for c in context]))
    return fallback_text(text), as_dicts(blocks)


def quota_reached(message: Mrkdwn, oldest_snapshot_id: int | None) -> list[dict[str, Any]]:
    blocks: list[Block] = [SectionBlock(text=md(Mrkdwn(":no_entry: ") + message))]
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
    return as_dicts(blocks)


# ---- delete ----------------------------------------------------------------------------------------------
def delete_confirmation(
    snap: Snapshot, now: datetime, open_requests: Sequence[RequestView] = ()
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """`open_requests`: the snapshot's open approval requests, named (with who asked) in a warning."""
    text = Mrkdwn("Delete snapshot {} (#{}) of {}?").format(
        snapshot_name(snap.name), snap.id, server_name(snap.server.name, snap.server.id)
    )
    details = Mrkdwn("{} · {} · taken {}").format(
        status_label(snap.status), format_size(snap.size_mb), format_age(snap.created_at, now)
    )
    if snap.description:
        details += Mrkdwn("\n") + quote(snap.description, 300)
    blocks: list[Block] = [
        SectionBlock(text=md(Mrkdwn(":wastebasket: ") + text + Mrkdwn("\n") + details)),
    ]
    if open_requests:
        blocks.append(SectionBlock(text=md(open_requests_warning(open_requests, now))))
    blocks += [
        ContextBlock(elements=[context_md(Mrkdwn("Deleting is permanent: the snapshot cannot be recovered."))]),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Delete",
                    action_id=CONFIRM_DELETE,
                    value=str(snap.id),
                    style="danger",
                    confirm=confirm_dialog(
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
    return fallback_text(text), as_dicts(blocks)


def open_requests_warning(requests: Sequence[RequestView], now: datetime) -> Mrkdwn:
    """One line per open request about the snapshot: which, who asked, when, and what deleting does to it."""
    lines = [
        Mrkdwn("• {} request #{}, asked by {} {}: {}").format(
            plain(req.kind.title(), 20),
            req.id,
            mention(req.requester_id),
            format_age(req.created_at, now),
            Mrkdwn("waiting for approval — deleting closes it")
            if req.state == "pending"
            else Mrkdwn("already approved and being carried out"),
        )
        for req in requests[:10]
    ]
    more = len(requests) - len(lines)
    if more > 0:
        lines.append(Mrkdwn("• and {} more").format(more))
    head = Mrkdwn(":warning: *This snapshot has {} open {}:*\n").format(
        len(requests), Mrkdwn("request") if len(requests) == 1 else Mrkdwn("requests")
    )
    return head + Mrkdwn("\n").join(lines)


def deleted_announcement(snap: Snapshot, actor_id: str) -> Mrkdwn:
    return Mrkdwn(":wastebasket: {} deleted snapshot {} (#{}) of {}.").format(
        mention(actor_id), snapshot_name(snap.name), snap.id, server_name(snap.server.name, snap.server.id)
    )

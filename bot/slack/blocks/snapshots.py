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
    ExternalDataSelectElement,
    InputBlock,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn, label, mention, plain, quote
from bot.slack.blocks.common import (
    ASK_DELETE,
    CONFIRM_DELETE,
    CREATE_VIEW,
    DISMISS,
    SERVER_PICK,
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
from bot.usecases.approval_terms import RequestState
from bot.usecases.create_help import ServerChoices
from bot.usecases.snapshots import CreateResult
from bot.vps.models import Server, Snapshot

# ---- create ----------------------------------------------------------------------------------------------
RUNNING_SERVER_WARNING = Mrkdwn(
    ":warning: Snapshotting a *running* server can leave the filesystem inconsistent. "
    "For critical snapshots, stop the server first."
)
MAX_OPTION_TEXT = Option.label_max_length  # 75: an option's label (and an option group's)
MAX_OPTION_VALUE = Option.value_max_length


def server_pick(server_id: int | None = None, server_label: str = "") -> InputBlock:
    """A form's server field (block `server`): picked from `GET /servers/` by an external select, whose options come
    from the `block_suggestion` listener filtered by what is typed; `server_id` pre-selects one (`server_label`:
    how to show it, e.g. its name)."""
    initial = (
        Option(value=str(server_id), label=label(server_label or f"server {server_id}", MAX_OPTION_TEXT))
        if server_id is not None
        else None
    )
    return InputBlock(
        block_id="server",
        label="Server",
        hint="Type part of a name or an id to narrow the list.",
        element=ExternalDataSelectElement(
            action_id=SERVER_PICK, placeholder="Pick a server", min_query_length=0, initial_option=initial
        ),
    )


def create_modal(
    *, channel_id: str, server_id: int | None = None, server_label: str = "", errors: dict[str, str] | None = None
) -> dict[str, Any]:
    """The create form. The server is picked from `GET /servers/` (an external select: its options come from
    the `block_suggestion` listener, filtered by what is typed); `server_id` pre-selects one (`server_label`: how
    to show it, e.g. its name)."""
    view = View(
        type="modal",
        callback_id=CREATE_VIEW,
        title=PlainTextObject(text="Create snapshot"),
        submit=PlainTextObject(text="Create"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"channel_id": channel_id}),
        blocks=[
            server_pick(server_id, server_label),
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


def server_option(server: Server) -> Option:
    """`web-server-01 (id 12345) · active`: the name clipped so the id and the status always show."""
    tail = f" (id {server.id}) · {label(server.status or 'status unknown', 20)}"
    name = label(server.name or f"server {server.id}", max(8, MAX_OPTION_TEXT - len(tail)))
    return Option(value=str(server.id), label=(name + tail)[:MAX_OPTION_TEXT])


def server_options(choices: ServerChoices) -> dict[str, Any]:
    """The answer to the create form's `block_suggestion`: at most 100 options (Block Kit's limit)."""
    options = [server_option(server) for server in choices.servers]
    if choices.typed_id is not None:
        where = "VPS.org did not answer" if choices.unavailable else "not in VPS.org's list"
        options.insert(
            0, Option(value=str(choices.typed_id), label=f"Server id {choices.typed_id} as typed ({where})"[:75])
        )
    shown = len(choices.servers)
    if choices.total > shown:  # a group's label is the only place to say the list goes on
        heading = f"{shown} of {choices.total} servers: type to narrow"
        group = OptionGroup(label=heading[:MAX_OPTION_TEXT], options=options[:100])
        return {"option_groups": [group.to_dict()]}
    return {"options": [option.to_dict() for option in options[:100]]}


def create_started(result: CreateResult, actor_id: str) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """The announcement: what was taken as name and description (a typed command splits them at the first space
    after the name), and VPS.org's warning when the server was running."""
    snap = result.snapshot
    text = Mrkdwn("{} started snapshot {} (#{}) of {} (id {}).").format(
        mention(actor_id), snapshot_name(snap.name), snap.id, server_name(result.server.name), result.server.id
    )
    taken = Mrkdwn("*Name:* {} · *Description:* {}").format(
        snapshot_name(snap.name), quote(snap.description, 300) if snap.description else Mrkdwn("none")
    )
    blocks: list[Block] = [
        SectionBlock(text=md(text + Mrkdwn("\n") + taken + Mrkdwn("\nStatus: ") + status_label(snap.status)))
    ]
    if result.server_status == "active":
        blocks.append(
            SectionBlock(
                text=md(
                    Mrkdwn(
                        ":warning: {} is *running*. VPS.org warns that a snapshot of a running server may leave "
                        "filesystem inconsistencies; for a consistent one, stop the server first and snapshot again."
                    ).format(server_name(result.server.name, result.server.id))
                )
            )
        )
    if result.took_last_slot:
        blocks.append(
            SectionBlock(
                text=md(
                    Mrkdwn(
                        ":warning: This takes the last free snapshot slot of {}: the next restore of it will have "
                        "to free one first, for its safety snapshot (the undo). Schedules leave that slot free."
                    ).format(server_name(result.server.name, result.server.id))
                )
            )
        )
    words = plain(result.api_message, 500)
    if words:
        blocks.append(ContextBlock(elements=[context_md(words)]))
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
            if req.state == RequestState.PENDING
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

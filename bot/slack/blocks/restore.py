"""Asking for a restore from a button: the confirmation form with the "Reason" field (issue 17 §2).

The same request as `/snapshot restore <id> [reason…]`: the form only collects the reason, the submission goes
through the same flow (and the same checks) as the command.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, PlainTextObject, SectionBlock
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn
from bot.slack.blocks.common import MAX_MODAL_TITLE, RESTORE_VIEW, clip, md

REASON_LIMIT = 200  # the same limit as a typed reason (bot.usecases.approval_requesting.MAX_REASON)


def restore_modal(snapshot_id: int, channel_id: str, *, reason_required: bool) -> dict[str, Any]:
    """The form a Restore button opens: what a restore does, and the reason (required under RESTORE_REASON_REQUIRED)."""
    warning = Mrkdwn(
        ":rotating_light: Restoring snapshot #{} overwrites *ALL* current data on its server; the server is stopped "
        "first, and the restore *cannot be undone*.\nThis asks someone else to approve it; nothing happens before."
    ).format(int(snapshot_id))
    view = View(
        type="modal",
        callback_id=RESTORE_VIEW,
        title=PlainTextObject(text=clip(f"Restore #{snapshot_id}", MAX_MODAL_TITLE)),
        submit=PlainTextObject(text="Ask for approval"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"snapshot_id": int(snapshot_id), "channel_id": channel_id}),
        blocks=[
            SectionBlock(text=md(warning)),
            InputBlock(
                block_id="reason",
                label="Reason",  # Slack adds "(optional)" itself when the field is optional
                optional=not reason_required,
                hint=f"An incident reference and a few words, e.g. INC-1234 db corrupted (at most {REASON_LIMIT}).",
                element=PlainTextInputElement(action_id="value", max_length=REASON_LIMIT),
            ),
        ],
    )
    return view.to_dict()

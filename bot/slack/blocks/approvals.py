"""Approval requests: the card and its buttons (the same wherever a request is shown) and the reject form.
`/snapshot pending` lists requests with the same buttons (bot/slack/blocks/pending.py)."""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn, code, mention, plain, quote
from bot.slack.blocks.common import (
    APPROVE,
    APPROVE_NO_SAFETY,
    CANCEL,
    DESCRIPTION_LIMIT,
    FREE_OLDEST,
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
    format_took,
    md,
    server_name,
    snapshot_name,
)
from bot.slack.blocks.consequences import approve_consequence
from bot.slack.blocks.schedule_requests import schedule_card
from bot.usecases.approval_base import RequestView
from bot.usecases.approval_safety import safety_name
from bot.usecases.approval_snapshot_gone import SNAPSHOT_DELETED, SNAPSHOT_GONE_AT_DELETE
from bot.usecases.approval_terms import (
    OperationState,
    RequestKind,
    RequestState,
    SafetyChoice,
    SafetyOffer,
    SafetyState,
)
from bot.usecases.tracking import Operation

# ---- approvals -------------------------------------------------------------------------------------------
_KIND_TITLE = {RequestKind.RESTORE: "Restore", RequestKind.DELETE: "Delete", RequestKind.SCHEDULE: "Schedule"}
_KIND_WORD = {RequestKind.RESTORE: Mrkdwn("Restore"), RequestKind.DELETE: Mrkdwn("Delete")}
_STATE_LINE = {
    RequestState.EXECUTED: Mrkdwn(":white_check_mark: Approved by {who} {when} — carried out."),
    RequestState.FAILED: Mrkdwn(
        ":x: Approved by {who} {when} — *failed*; nothing was changed. Ask again once the cause is fixed."
    ),
    RequestState.NEEDS_CHECK: Mrkdwn(
        ":warning: Approved by {who} {when} — *outcome unknown*: check the server (VPS.org panel, `/snapshot list`) "
        "before anything else, and don't ask again until you know."
    ),
    RequestState.EXECUTING: Mrkdwn(
        ":hourglass_flowing_sand: Approved by {who} {when} — re-checking the snapshot; nothing sent yet…"
    ),
    RequestState.SENDING: Mrkdwn(
        ":hourglass_flowing_sand: Approved by {who} {when} — sent to VPS.org, waiting for its answer…"
    ),
    RequestState.STALE: Mrkdwn(
        ":no_entry: Approved by {who} {when} — *not sent*: the snapshot changed since it was requested."
    ),
    RequestState.REJECTED: Mrkdwn(":no_entry_sign: Rejected by {who} {when}."),
    RequestState.CANCELLED: Mrkdwn(":leftwards_arrow_with_hook: Cancelled by {who} {when}."),
    RequestState.EXPIRED: Mrkdwn(":alarm_clock: Expired {when} without enough approvals."),
}

_SNAPSHOT_DELETED_LINE = Mrkdwn(
    ":wastebasket: Closed {when}: the snapshot was deleted by {who}. Nothing was sent to VPS.org."
)
# VPS.org answered 404 to the bot's DELETE: gone already, not deleted by whoever pressed the button.
_SNAPSHOT_GONE_LINE = Mrkdwn(
    ":wastebasket: Closed {when}: VPS.org reported the snapshot gone when {who} tried to delete it. "
    "Nothing was sent to VPS.org."
)


# An executed restore, as its tracked operation stands (bot.usecases.tracking.Operation `state`).
_RESTORE_LINE = {
    OperationState.TRACKING: Mrkdwn(
        ":hourglass_flowing_sand: Approved by {who} {when} — *being restored* for {took} (VPS.org: {status}). "
        "This card updates until it is over."
    ),
    OperationState.DONE: Mrkdwn(
        ":white_check_mark: Approved by {who} {when} — *restore finished* in {took}; the server is {status} again. "
        "Next: check that its services are back."
    ),
    OperationState.FAILED: Mrkdwn(
        ":warning: Approved by {who} {when} — after {took} VPS.org *no longer lists the server*: outcome unknown. "
        "Next: check the server in the VPS.org panel before anything else."
    ),
    OperationState.TIMEOUT: Mrkdwn(
        ":alarm_clock: Approved by {who} {when} — *timed out*: still {status} after {took}, and the bot stopped "
        "following it. Next: check the server at VPS.org; if it stays like this, contact VPS.org support."
    ),
}


def _restore_line(restore: Operation | None, who: Mrkdwn, when: Mrkdwn, now: datetime) -> Mrkdwn | None:
    """The line of an executed restore from its tracked operation (None when it was never followed)."""
    template = _RESTORE_LINE.get(restore.state) if restore is not None else None
    if restore is None or template is None:
        return None
    end = restore.finished_at or now
    status = plain((restore.last_status or "restoring").replace("_", " "), 40)
    return template.format(who=who, when=when, took=format_took(end - restore.started_at), status=status)


def _kind_title(kind: RequestKind) -> str:
    return _KIND_TITLE.get(kind, kind.title()[:20])


def approval_card(
    req: RequestView,
    now: datetime,
    restore: Operation | None = None,
    *,
    step_up_kinds: AbstractSet[RequestKind] = frozenset(),
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """The card approvers see. Buttons only while the request is pending.

    `restore`: the tracked operation (bot.usecases.tracking.Operation) of an executed restore, so the card tells
    the end of the story: being restored (for how long), finished, server gone, timed out. `step_up_kinds`: the
    kinds whose Approve opens the step-up form (see `decision_actions`).

    Every line of the facts section starts with one of the card's own labels: the values are code spans or
    quoted plain text on the same line, so a description or a name cannot add or imitate a line.
    """
    if req.kind == RequestKind.SCHEDULE:
        actions = decision_actions(req, f"approval:{req.id}", approve=True, cancel=True, step_up_kinds=step_up_kinds)
        text, schedule_blocks = schedule_card(req, now, actions if req.state == RequestState.PENDING else None)
        approvals = _approvals_line(req)
        if approvals is not None:
            schedule_blocks.insert(3, approvals)
        return fallback_text(text), as_dicts(schedule_blocks)
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
    if req.request_reason:
        facts += Mrkdwn("*Reason:* ") + quote(req.request_reason, 200) + Mrkdwn("\n")
    facts += Mrkdwn("*Asked by:* {} {}\n*Expires:* {}").format(
        mention(req.requester_id), format_time(req.created_at), format_time(req.expires_at)
    )
    offer = req.safety_offer
    if req.kind == RequestKind.RESTORE and offer:
        warning = Mrkdwn(
            ":rotating_light: *This overwrites ALL current data on the server.* The server is stopped first."
        )
    elif req.kind == RequestKind.RESTORE:
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
    safety = safety_line(req) if req.kind == RequestKind.RESTORE and offer else None
    if safety is not None:
        blocks.append(SectionBlock(text=md(safety)))
    approvals = _approvals_line(req)
    if approvals is not None:
        blocks.append(approvals)
    if req.state == RequestState.PENDING:
        note = req.result_message  # an earlier approval that sent nothing (VPS.org too slow, …)
        if note:
            blocks.append(SectionBlock(text=md(Mrkdwn(":warning: ") + plain(note, 1500))))
        blocks.append(
            decision_actions(req, f"approval:{req.id}", approve=True, cancel=True, step_up_kinds=step_up_kinds)
        )
    else:
        who = mention(req.decided_by) if req.decided_by and req.decided_by != "system" else Mrkdwn("the bot")
        template = _STATE_LINE.get(req.state)
        if req.state == RequestState.STALE and req.reason == SNAPSHOT_DELETED:  # closed by a delete, never approved
            template = _SNAPSHOT_DELETED_LINE
        if req.state == RequestState.STALE and req.reason == SNAPSHOT_GONE_AT_DELETE:  # the delete found it gone (404)
            template = _SNAPSHOT_GONE_LINE
        if (
            req.state == RequestState.EXECUTING
            and req.safety_choice == SafetyChoice.SNAPSHOT
            and req.safety_state != SafetyState.COMPLETED
        ):
            template = Mrkdwn(
                ":hourglass_flowing_sand: Approved by {who} {when} — taking the safety snapshot first; "
                "the restore is not sent yet…"
            )
        executed = req.state == RequestState.EXECUTED
        followed = _restore_line(restore, who, format_time(req.decided_at), now) if executed else None
        if followed is not None:
            line = followed
        elif template is None:
            line = Mrkdwn("State: {}").format(code(req.state, 40))
        else:
            line = template.format(who=who, when=format_time(req.decided_at))
        if req.reason and req.state in (RequestState.REJECTED, RequestState.CANCELLED):
            line += Mrkdwn("\nReason: ") + quote(req.reason, 500)
        if req.result_message:
            # Once the restore is followed, VPS.org's answer is only how it began, not the result.
            label = Mrkdwn("\nVPS.org's answer when it was sent: ") if followed is not None else Mrkdwn("\nResult: ")
            line += label + plain(req.result_message, 1500)
        blocks.append(SectionBlock(text=md(line)))
    return fallback_text(text), as_dicts(blocks)


def _approvals_line(req: RequestView) -> ContextBlock | None:
    if not (req.approvals_required > 1 or req.approvers):
        return None
    who = Mrkdwn(", ").join(mention(a) for a in req.approvers) or Mrkdwn("nobody yet")
    line = Mrkdwn("Approvals: {} of {} ({})").format(len(req.approvers), req.approvals_required, who)
    return ContextBlock(elements=[context_md(line)])


def reason_line(req: RequestView) -> Mrkdwn:
    """The requester's reason as its own labelled line ("" when none), for lists of requests."""
    return Mrkdwn("\n*Reason:* ") + quote(req.request_reason, 200) if req.request_reason else Mrkdwn("")


def safety_line(req: RequestView) -> Mrkdwn | None:
    """What the card says about the safety snapshot (`pre-restore-<id>`), the undo of the restore."""
    name = code(safety_name(req.id))
    decided = req.state != RequestState.PENDING
    if decided and req.safety_choice == SafetyChoice.NONE:
        return Mrkdwn(
            ":warning: *No safety snapshot* was taken (the approver's choice): this restore cannot be undone."
        )
    if decided and req.safety_choice != SafetyChoice.SNAPSHOT:
        return None  # rejected, cancelled or expired before anyone chose
    if decided and req.safety_choice == SafetyChoice.SNAPSHOT:
        snapshot_id = req.safety_snapshot_id
        state = req.safety_state or "being taken"
        line = Mrkdwn(":shield: *Safety snapshot:* {}{} — {}.").format(
            name, Mrkdwn(" (#{})").format(snapshot_id) if snapshot_id else Mrkdwn(""), plain(state, 20)
        )
        if req.safety_state == SafetyState.COMPLETED and snapshot_id:
            line += Mrkdwn(" To go back: {} (it needs an approval, like any restore).").format(
                code(f"/snapshot restore {snapshot_id}")
            )
        return line
    if req.safety_offer == SafetyOffer.FULL:
        if req.safety_required:
            return Mrkdwn(
                ":warning: *Server full* — no free snapshot slot, and a safety snapshot is required before every "
                "restore here: the restore is blocked until a slot is free. *Free oldest snapshot first* deletes "
                "the server's oldest snapshot (through the normal delete path)."
            )
        return Mrkdwn(
            ":warning: *Server full* — no free snapshot slot, so no safety snapshot can be taken and this restore "
            "*cannot be undone*. Approve without one, or *Free oldest snapshot first* (a normal delete)."
        )
    line = Mrkdwn(
        ":shield: *Safety snapshot:* {} of the server's current state is taken first, so the restore can be undone{}."
    ).format(name, Mrkdwn("") if req.safety_required else Mrkdwn(" (on by default)"))
    if req.approvals_required > 1 and not req.safety_required:  # the safe side wins, whoever clicks last
        line += Mrkdwn(" With {} approvals needed, it is taken if any approver chooses it.").format(
            req.approvals_required
        )
    return line


def decision_actions(
    req: RequestView,
    block_id: str,
    *,
    approve: bool,
    cancel: bool,
    step_up_kinds: AbstractSet[RequestKind] = frozenset(),
) -> ActionsBlock:
    """The buttons that decide a pending request, wherever it is shown (card, `/snapshot pending`, App Home).

    Same action ids everywhere, so every click goes through the same listeners and the same exactly-once rules.
    `approve`: Approve and Reject; `cancel`: Cancel (the requester's). The card shows all three to everyone.
    `step_up_kinds`: the kinds whose Approve opens the step-up form (APPROVAL_STEP_UP_FOR, none when it is off):
    that form says what approving does, so their Approve buttons carry no confirm dialog as well.
    """
    elements: list[ButtonElement] = []
    if approve:
        elements += _approve_buttons(req, confirm=req.kind not in step_up_kinds)
        elements.append(ButtonElement(text="Reject", action_id=REJECT, value=str(req.id), style="danger"))
    if cancel:
        elements.append(
            ButtonElement(text="Cancel (requester)" if approve else "Cancel", action_id=CANCEL, value=str(req.id))
        )
    return ActionsBlock(block_id=block_id, elements=elements)


def _approve_buttons(req: RequestView, *, confirm: bool) -> list[ButtonElement]:
    """Approve, in the variants the safety snapshot offers (one action id each: Slack wants them unique), each
    with a confirm dialog saying what it does unless `confirm` is off (the step-up form says it instead)."""
    offer = req.safety_offer if req.kind == RequestKind.RESTORE else SafetyOffer.NONE
    question = f"Approve this {_kind_title(req.kind).lower()}?"

    def dialog(safety: SafetyChoice) -> ConfirmObject | None:
        return confirm_dialog(question, approve_consequence(req, safety), "Approve", "Not yet") if confirm else None

    if not offer:
        return [
            ButtonElement(
                text="Approve",
                action_id=APPROVE,
                value=str(req.id),
                style="primary",
                confirm=dialog(SafetyChoice.DEFAULT),
            )
        ]
    # The card's default (APPROVE) takes the safety snapshot on a free slot, or on a full one when it is required.
    safe = ButtonElement(
        text="Approve (safety snapshot first)",
        action_id=APPROVE,
        value=str(req.id),
        style="primary",
        confirm=dialog(SafetyChoice.DEFAULT),
    )
    unsafe = ButtonElement(
        text="Approve without safety snapshot",
        action_id=APPROVE_NO_SAFETY if offer == SafetyOffer.FREE else APPROVE,
        value=str(req.id),
        confirm=dialog(SafetyChoice.NONE if offer == SafetyOffer.FREE else SafetyChoice.DEFAULT),
    )
    free = ButtonElement(  # not an approval: it deletes a snapshot, so it keeps its dialog
        text="Free oldest snapshot first",
        action_id=FREE_OLDEST,
        value=str(req.id),
        confirm=confirm_dialog(
            "Delete the server's oldest snapshot?",
            Mrkdwn(
                "Its oldest snapshot (never the one to restore) is deleted, through the normal delete path, "
                "to make room for the safety snapshot."
            ),
            "Delete it",
            "Not yet",
        ),
    )
    if offer == SafetyOffer.FREE:
        return [safe] if req.safety_required else [safe, unsafe]
    return [safe, free] if req.safety_required else [unsafe, free]


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

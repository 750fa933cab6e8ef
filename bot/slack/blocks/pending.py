"""`/snapshot pending`: the open requests, each with the buttons its viewer may press (the card's own), then the
operations whose outcome is unknown.

Rules kept here: one message, never more than Slack's 50 blocks whatever the mix; the first line counts every open
request, and what does not fit is counted in a last line saying where to see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ContextBlock, SectionBlock

from bot.mrkdwn import Mrkdwn, channel_link, code, mention, plain
from bot.mrkdwn import link as link_to
from bot.slack.blocks.approvals import decision_actions, reason_line
from bot.slack.blocks.common import (
    MAX_BLOCKS,
    as_dicts,
    context_md,
    format_age,
    format_time,
    md,
    server_name,
    snapshot_name,
)
from bot.slack.blocks.schedule_requests import request_subject
from bot.usecases.approval_base import RequestView
from bot.usecases.approval_terms import RequestKind, RequestState, SafetyChoice, SafetyState

MAX_PENDING_SHOWN = 40  # requests listed in one `/snapshot pending` answer, whatever room is left
MAX_UNKNOWN_SHOWN = 8  # operations with an unknown outcome listed in it (one section of at most 3000 characters)


def pending_list(
    requests: Sequence[RequestView],
    links: dict[int, str],
    now: datetime,
    *,
    viewer: str | None = None,
    viewer_can_approve: bool = False,
    total: int | None = None,
    unknown: Sequence[Mrkdwn] = (),
    unknown_more: bool = False,
    approvals_channel: str | None = None,
    step_up_kinds: AbstractSet[RequestKind] = frozenset(),
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """Open requests, each pending one with the buttons `viewer` may press: Approve/Reject for an approver who
    is not the requester and has not approved it yet, Cancel for the requester.

    `total`: how many requests are open (`requests` may be only the newest of them); `unknown`: one line per
    operation whose outcome is unknown, shown after them (`unknown_more`: there are older ones than these). Never
    more than Slack's 50 blocks a message, whatever
    the mix: the requests that do not fit are counted in a last line saying where to see them. `step_up_kinds`:
    the kinds whose Approve opens the step-up form (no confirm dialog on it; see `decision_actions`).
    """
    total = max(total if total is not None else len(requests), len(requests))
    if not requests and not unknown:
        return Mrkdwn("No open requests."), as_dicts([SectionBlock(text=md(Mrkdwn("No open requests. :relieved:")))])
    count = (
        Mrkdwn("No open requests")
        if total == 0
        else Mrkdwn("1 open request")
        if total == 1
        else Mrkdwn("{} open requests").format(total)
    )
    blocks: list[Block] = [ContextBlock(elements=[context_md(count)])] if requests else []
    tail = 1 + (1 if unknown else 0)  # room kept for the "…and N more" line and the unknown-outcome notice
    shown = 0
    for req in requests:
        actions = _pending_actions(req, viewer, viewer_can_approve, step_up_kinds)
        if shown >= MAX_PENDING_SHOWN or len(blocks) + 1 + (actions is not None) + tail > MAX_BLOCKS:
            break
        shown += 1
        blocks.append(_pending_entry(req, links, now))
        if actions is not None:
            blocks.append(actions)
    if total > shown:
        where = channel_link(approvals_channel) if approvals_channel else Mrkdwn("the approvals channel")
        more = Mrkdwn("…and {} more not shown here — see the App Home tab, or their cards in {}.").format(
            total - shown, where
        )
        blocks.append(ContextBlock(elements=[context_md(more)]))
    if unknown:  # operations cut off by a crash: no request to approve, but a human must check them
        listed = Mrkdwn("\n").join(Mrkdwn(":warning: ") + line for line in unknown[:MAX_UNKNOWN_SHOWN])
        if unknown_more:  # only the newest were read: say so rather than count short
            listed += Mrkdwn(
                "\n…and {} more shown here, and older ones: an admin's `/snapshot audit action:restore.needs_check` "
                "(or `create.needs_check`, `delete.needs_check`) lists them all."
            ).format(max(len(unknown) - MAX_UNKNOWN_SHOWN, 0))
        elif len(unknown) > MAX_UNKNOWN_SHOWN:
            listed += Mrkdwn("\n…and {} more.").format(len(unknown) - MAX_UNKNOWN_SHOWN)
        blocks.append(SectionBlock(text=md(Mrkdwn("*Outcome unknown — check*\n") + listed)))
        count += (
            Mrkdwn("; more than {} operations with unknown outcome").format(len(unknown))
            if unknown_more
            else Mrkdwn("; 1 operation with unknown outcome")
            if len(unknown) == 1
            else Mrkdwn("; {} operations with unknown outcome").format(len(unknown))
        )
    return count, as_dicts(blocks)


def _pending_entry(req: RequestView, links: dict[int, str], now: datetime) -> SectionBlock:
    number = Mrkdwn("#{}").format(req.id)
    link = links.get(req.id)
    label = link_to(link, number) if link else number
    states = {
        RequestState.PENDING: Mrkdwn("waiting for approval ({} of {}), expires {}").format(
            len(req.approvers), req.approvals_required, format_time(req.expires_at)
        ),
        # The card's words for the same moment: a restore taking its safety snapshot is not re-checking yet.
        RequestState.EXECUTING: Mrkdwn("approved; taking the safety snapshot first, the restore is not sent yet")
        if req.safety_choice == SafetyChoice.SNAPSHOT and req.safety_state != SafetyState.COMPLETED
        else Mrkdwn("approved; re-checking before sending"),
        RequestState.SENDING: Mrkdwn("sent to VPS.org; waiting for its answer"),
        RequestState.NEEDS_CHECK: Mrkdwn(":warning: *needs a human check* — outcome unknown; check the server"),
    }
    state = states.get(req.state) or code(req.state, 40)
    return SectionBlock(
        text=md(
            Mrkdwn("{} {} → {} — asked by {} {}\n{}").format(
                label,
                request_subject(req)
                if req.kind == RequestKind.SCHEDULE
                else Mrkdwn("{} of {} (#{})").format(
                    plain(req.kind, 20), snapshot_name(req.snapshot_name), req.snapshot_id
                ),
                server_name(req.server_name, req.server_id),
                mention(req.requester_id),
                format_age(req.created_at, now),
                state,
            )
            + reason_line(req)
        )
    )


def _pending_actions(
    req: RequestView, viewer: str | None, viewer_can_approve: bool, step_up_kinds: AbstractSet[RequestKind]
) -> ActionsBlock | None:
    """The buttons `viewer` may press on a pending request in the list, or None."""
    if req.state != RequestState.PENDING or viewer is None:
        return None
    yours = req.requester_id == viewer
    approve = viewer_can_approve and not yours and viewer not in req.approvers
    if not (approve or yours):
        return None
    return decision_actions(req, f"pending:{req.id}", approve=approve, cancel=yours, step_up_kinds=step_up_kinds)

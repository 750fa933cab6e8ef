"""A `schedule` approval request in Slack: its card, and the words lists (pending, App Home, notifications) use.

Rules it keeps: the same card shape and buttons as restore and delete requests (bot/slack/blocks/approvals.py
adds the buttons); every outside value (server name, the `<when>` text) goes in through `code()`/`plain()`; the
card says plainly that, once approved, the schedule deletes its own older snapshots without a card per delete.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, HeaderBlock, SectionBlock

from bot.mrkdwn import Mrkdwn, code, mention, plain, quote
from bot.slack.blocks.common import MAX_HEADER, clip, format_time, md, server_name, snapshot_name
from bot.slack.blocks.schedules import local_time
from bot.usecases.approval_base import RequestView
from bot.usecases.approval_terms import RequestKind, RequestState
from bot.usecases.schedule_requests import SCHEDULE_REMOVED
from bot.usecases.schedule_when import parse_when


def plan_words(plan: Any) -> Mrkdwn:
    """`daily 02:30` (Europe/Berlin) · keep 3 · on_full=skip"""
    if plan is None:
        return Mrkdwn("(unreadable)")
    return Mrkdwn("{} ({}) · keep {} · on_full={}").format(
        code(plan.when, 80), plain(plan.timezone, 40), plan.keep, plain(plan.on_full, 10)
    )


def request_subject(req: RequestView) -> Mrkdwn:
    """What a request is about, after "requested": "a restore of `name` (#801)", "a new schedule #3 (…)"."""
    if req.kind != RequestKind.SCHEDULE:
        return Mrkdwn("a {} of {} (#{})").format(plain(req.kind, 20), snapshot_name(req.snapshot_name), req.snapshot_id)
    plan = req.proposal
    what = Mrkdwn("a change of schedule") if plan is not None and plan.change else Mrkdwn("a new schedule")
    return Mrkdwn("{} #{} ({})").format(what, req.schedule_id, plan_words(plan))


def consequence(req: RequestView) -> Mrkdwn:
    """What the Approve button's confirm dialog says."""
    plan = req.proposal
    keep = plan.keep if plan is not None else "n"
    done = (
        Mrkdwn("Schedule #{} gets the new settings").format(req.schedule_id)
        if plan is not None and plan.change
        else Mrkdwn("Schedule #{} is turned on").format(req.schedule_id)
    )
    return Mrkdwn(
        "{} on {}. From then on it deletes its own older snapshots (keeping the newest {}) without a card per delete."
    ).format(done, server_name(req.server_name, req.server_id), keep)


_DONE = {
    RequestState.EXECUTED: Mrkdwn(":white_check_mark: Approved by {who} {when} — applied."),  # + what it is now
    RequestState.EXECUTING: Mrkdwn(
        ":hourglass_flowing_sand: Approved by {who} {when} — checking it still fits; not applied yet…"
    ),
    RequestState.STALE: Mrkdwn(":no_entry: Approved by {who} {when} — *not applied*."),
    RequestState.FAILED: Mrkdwn(":x: Approved by {who} {when} — *not applied*."),
    RequestState.REJECTED: Mrkdwn(":no_entry_sign: Rejected by {who} {when}."),
    RequestState.CANCELLED: Mrkdwn(":leftwards_arrow_with_hook: Cancelled by {who} {when}."),
    RequestState.EXPIRED: Mrkdwn(":alarm_clock: Expired {when} without enough approvals."),
}
_UNAPPLIED = (
    RequestState.STALE,
    RequestState.FAILED,
    RequestState.REJECTED,
    RequestState.CANCELLED,
    RequestState.EXPIRED,
)


def schedule_card(req: RequestView, now: datetime, buttons: Block | None) -> tuple[Mrkdwn, list[Block]]:
    """The card approvers see; `buttons` (the shared decision buttons) while it is pending."""
    plan = req.proposal
    change = plan is not None and plan.change
    server = server_name(req.server_name, req.server_id)
    title = "Schedule change" if change else "Schedule"
    text = Mrkdwn("{} request by {}: {} on {} (id {})").format(
        plain(title, 20), mention(req.requester_id), request_subject(req), server, req.server_id
    )
    facts = Mrkdwn("*Server:* {} (id {})\n*Schedule:* #{} — {}\n").format(
        server, req.server_id, req.schedule_id, Mrkdwn("a change, in place") if change else Mrkdwn("new")
    )
    if plan is not None:
        facts += Mrkdwn("*When:* {} ({}) · next run {}\n*Keep:* the newest {} · *on_full:* {}\n").format(
            code(plan.when, 80),
            plain(plan.timezone, 40),
            local_time(plan.next_run, plan.timezone),
            plan.keep,
            plain(plan.on_full, 10),
        )
        if change:
            facts += Mrkdwn("*Now:* {} · keep {} · on_full={} (it runs like this until approved)\n").format(
                code(plan.before_when, 80), plan.before_keep, plain(plan.before_on_full, 10)
            )
    facts += Mrkdwn("*Asked by:* {} {}\n*Expires:* {}").format(
        mention(req.requester_id), format_time(req.created_at), format_time(req.expires_at)
    )
    warning = Mrkdwn(
        ":wastebasket: Once approved, this schedule *deletes its own older snapshots* (keeping the newest {}) "
        "*without a card per delete*. It never deletes a manual snapshot, another schedule's, or one an open "
        "request names."
    ).format(plan.keep if plan is not None else "n")
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"{title} request #{req.id}", MAX_HEADER)),
        SectionBlock(text=md(facts)),
        SectionBlock(text=md(warning)),
    ]
    if req.state == RequestState.PENDING:
        if req.result_message:  # an earlier approval that applied nothing (VPS.org could not be asked)
            blocks.append(SectionBlock(text=md(Mrkdwn(":warning: ") + plain(req.result_message, 1500))))
        if buttons is not None:
            blocks.append(buttons)
        return text, blocks
    who = mention(req.decided_by) if req.decided_by and req.decided_by != "system" else Mrkdwn("the bot")
    template = _DONE.get(req.state) or Mrkdwn("State: {}").format(code(req.state, 40))
    if req.state == RequestState.STALE and req.reason == SCHEDULE_REMOVED:  # closed by an unschedule, never approved
        template = Mrkdwn(":wastebasket: Closed {when}: the schedule was removed by {who}. Nothing was applied.")
    line = template.format(who=who, when=format_time(req.decided_at))
    if req.reason and req.state in (RequestState.REJECTED, RequestState.CANCELLED):
        line += Mrkdwn("\nReason: ") + quote(req.reason, 500)
    if (
        req.state == RequestState.EXECUTED and plan is not None
    ):  # its first run from the approval on, in the plan's zone
        first = parse_when(plan.when).next_slot(req.decided_at or now, ZoneInfo(plan.timezone))
        line += Mrkdwn(
            " Schedule #{} is {}: {}; next run {}. It deletes its older snapshots without a card each."
        ).format(
            req.schedule_id,
            Mrkdwn("changed") if change else Mrkdwn("on"),
            plan_words(plan),
            local_time(first, plan.timezone),
        )
    elif req.result_message:
        line += Mrkdwn("\n") + plain(req.result_message, 1500)
    if req.state in _UNAPPLIED and req.reason != SCHEDULE_REMOVED:
        line += (
            Mrkdwn("\nThe schedule keeps its settings.") if change else Mrkdwn("\nThe schedule was never turned on.")
        )
    blocks.append(SectionBlock(text=md(line)))
    return text, blocks

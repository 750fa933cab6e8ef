"""Schedules in Slack: the answer to `/snapshot schedule`, the list, the form, and the notification lines.

Rules it keeps: every value that came from outside (server names, VPS.org's words, the `<when>` text) goes in
through `code()` or `plain()`; times are shown in SNAPSHOT_TIMEZONE (the zone the schedule is written in).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.blocks.basic_components import Option
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn, code, mention, plain, sentence
from bot.slack.blocks.common import MAX_BLOCKS, as_dicts, md, server_name, snapshot_name
from bot.slack.blocks.snapshots import server_pick
from bot.usecases.retention import name_prefix
from bot.usecases.schedule_fit import OnFull
from bot.usecases.schedule_runner import RunKind, ScheduleEvent
from bot.usecases.schedules import ScheduleView

SCHEDULE_VIEW = "create_schedule"
RESCHEDULE_VIEW = "change_schedule"  # the same form, prefilled; its submit goes to `reschedule`
OPEN_CHANGE = "schedule_change"  # the Change button of a schedule in `/snapshot schedules`


def local_time(moment: datetime | None, zone: str) -> Mrkdwn:
    if moment is None:
        return Mrkdwn("—")
    # The bot's own words (digits and the zone's abbreviation from tzdata): a sentence, so the colon stays a colon.
    return sentence(moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z"))


def _describe(view: ScheduleView) -> Mrkdwn:
    s = view.schedule
    return Mrkdwn("#{} · {} (id {}) · {} ({}) · keep {} · on_full={}").format(
        s.id,
        server_name(s.server_name, s.server_id),
        s.server_id,
        code(s.when_spec, 80),
        plain(view.zone, 40),
        s.keep,
        plain(s.on_full, 10),
    )


def schedule_created(view: ScheduleView) -> Mrkdwn:
    return Mrkdwn(":calendar: Schedule {}\nNext run: {}. Snapshots are named {} (UTC); by {}.").format(
        _describe(view),
        local_time(view.next_run, view.zone),
        code(f"{name_prefix(view.schedule.id)}yyyymmdd-hhmm", 60),
        mention(view.schedule.created_by),
    )


def schedule_changed(view: ScheduleView, user_id: str) -> Mrkdwn:
    return Mrkdwn(
        ":calendar: {} changed schedule {}\nNext run: {}. Same schedule id: its snapshots stay its own."
    ).format(mention(user_id), _describe(view), local_time(view.next_run, view.zone))


def unscheduled(view: ScheduleView, user_id: str) -> Mrkdwn:
    return Mrkdwn(":calendar: {} removed schedule {}. Its snapshots stay until someone deletes them.").format(
        mention(user_id), _describe(view)
    )


def schedule_entry(view: ScheduleView) -> Mrkdwn:
    """One schedule as listed (`/snapshot schedules`, App Home): what, when next, how it last went, by whom; a
    schedule waiting for its approval, or whose deletes are paused, says so."""
    s = view.schedule
    last = plain(s.last_result, 300) if s.last_result else Mrkdwn("not run yet")
    if s.awaiting_approval:
        line = Mrkdwn(
            "{}\n:hourglass_flowing_sand: Waiting for approval (see `/snapshot pending`); not run until "
            "approved · by {}"
        ).format(_describe(view), mention(s.created_by))
    else:
        line = Mrkdwn("{}\nNext run: {} · last: {} · by {}").format(
            _describe(view), local_time(view.next_run, view.zone), last, mention(s.created_by)
        )
    if view.deletes_paused:
        line += Mrkdwn(
            "\n:double_vertical_bar: Deletes paused (APPROVAL_REQUIRED_FOR includes delete and nobody approved "
            "this schedule) — change it with `/snapshot reschedule {} …` to ask for approval."
        ).format(s.id)
    return line


def schedules_list(views: list[ScheduleView]) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    if not views:
        text = Mrkdwn("No schedules. `/snapshot schedule &lt;server_id&gt; daily 02:00 keep 3` adds one.")
        return text, as_dicts([SectionBlock(text=md(text))])
    blocks = []
    for view in views[: MAX_BLOCKS - 1]:
        change = (
            None
            if view.schedule.awaiting_approval
            else ButtonElement(text="Change", action_id=OPEN_CHANGE, value=str(view.schedule.id))  # the form, prefilled
        )
        blocks.append(SectionBlock(text=md(schedule_entry(view)), accessory=change))
    if len(views) > MAX_BLOCKS - 1:
        blocks.append(SectionBlock(text=md(Mrkdwn("… and {} more.").format(len(views) - (MAX_BLOCKS - 1)))))
    count = Mrkdwn("1 schedule") if len(views) == 1 else Mrkdwn("{} schedules").format(len(views))
    return count, as_dicts(blocks)


def event_line(event: ScheduleEvent) -> Mrkdwn | None:
    """The notification line for what a schedule did, or None when nothing needs saying."""
    s = event.schedule
    who = Mrkdwn("Schedule #{} ({}, on behalf of {})").format(
        s.id, server_name(s.server_name, s.server_id), mention(s.created_by)
    )
    deleted = (
        Mrkdwn(" Deleted: {}.").format(Mrkdwn(", ").join(snapshot_name(n) for n in event.deleted[:10]))
        if event.deleted
        else Mrkdwn("")
    )
    misfit = Mrkdwn(" :warning: This schedule {}.").format(plain(event.misfit, 400)) if event.misfit else Mrkdwn("")
    if event.kind is RunKind.SKIPPED:
        return Mrkdwn(":double_vertical_bar: {} skipped {}: {}.{}").format(
            who, snapshot_name(event.snapshot_name), plain(event.message, 300), misfit
        )
    if event.kind is RunKind.STARTED and event.misfit:
        return Mrkdwn(":warning: {} started {}. This schedule {}.").format(
            who, snapshot_name(event.snapshot_name), plain(event.misfit, 400)
        )
    if event.kind is RunKind.FAILED:
        return Mrkdwn(":x: {} could not take {}: {}").format(
            who, snapshot_name(event.snapshot_name), plain(event.message, 600)
        )
    if event.kind is RunKind.RETENTION_FAILED:
        return Mrkdwn(":warning: {} kept {} but could not delete an older snapshot: {}{}").format(
            who, snapshot_name(event.snapshot_name), plain(event.message, 600), deleted
        )
    if event.deleted:  # a retention or rotation that deleted something: deletes are always told
        return Mrkdwn(":wastebasket: {} kept its newest {} after {}.{}").format(
            who, s.keep, snapshot_name(event.snapshot_name), deleted
        )
    return None


def schedule_modal(*, channel_id: str, change: ScheduleView | None = None) -> dict[str, Any]:
    """The schedule form; with `change`, prefilled with that schedule's settings, submitted as a `reschedule`."""
    on_full = [
        Option(value=OnFull.SKIP, text="Skip the slot and say so"),
        Option(value=OnFull.ROTATE, text="Delete this schedule's oldest first"),
    ]
    s = change.schedule if change is not None else None
    chosen = on_full[1] if s is not None and s.on_full == OnFull.ROTATE else on_full[0]
    first: Block = (
        SectionBlock(text=md(Mrkdwn("Schedule {}").format(_describe(change))))
        if change is not None
        else server_pick()  # the create form's select: the servers, not a raw id
    )
    meta: dict[str, Any] = {"channel_id": channel_id}
    if s is not None:
        meta |= {"schedule_id": s.id, "server_id": s.server_id}
    view = View(
        type="modal",
        callback_id=RESCHEDULE_VIEW if s is not None else SCHEDULE_VIEW,
        title=PlainTextObject(text=f"Change schedule #{s.id}"[:24] if s is not None else "Schedule snapshots"),
        submit=PlainTextObject(text="Change" if s is not None else "Schedule"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps(meta),
        blocks=[
            first,
            InputBlock(
                block_id="when",
                label="When",
                hint="hourly · daily 02:30 · weekly mon 03:00 · every 6h · cron 0 3 * * 1-5",
                element=PlainTextInputElement(
                    action_id="value",
                    placeholder="daily 02:30",
                    max_length=120,
                    initial_value=s.when_spec if s is not None else None,
                ),
            ),
            InputBlock(
                block_id="keep",
                label="Keep the newest",
                element=PlainTextInputElement(
                    action_id="value", placeholder="3", max_length=2, initial_value=str(s.keep) if s else None
                ),
            ),
            InputBlock(
                block_id="on_full",
                label="When the server is full",
                element=StaticSelectElement(action_id="value", options=on_full, initial_option=chosen),
            ),
        ],
    )
    return view.to_dict()

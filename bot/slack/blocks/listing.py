"""`/snapshot help` and `/snapshot list` (paged to Block Kit's block limit, with its buttons).

The list's pages are built as plain dicts (`bot.slack.blocks.kit`): a list is what commands under load render,
and slack_sdk's objects cost most of its CPU (issue 27 §6). `help` keeps the objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, SectionBlock

import bot.slack.blocks.kit as kit
from bot.mrkdwn import Mrkdwn, plain, quote, sentence
from bot.slack.blocks.common import (
    ASK_DELETE,
    ASK_RESTORE,
    LIST_MORE,
    MAX_BLOCKS,
    OPEN_CREATE,
    as_dicts,
    context_md,
    fallback_text,
    format_age,
    format_size,
    md,
    pin_note,
    server_name,
    snapshot_name,
    status_label,
)
from bot.slack.parsing import USAGE
from bot.usecases.pin_rules import PinRow
from bot.usecases.server_groups import ServerGroup
from bot.usecases.snapshots import Overview
from bot.vps.models import SNAPSHOTS_PER_SERVER, Snapshot


# ---- help ------------------------------------------------------------------------------------------------
def help_blocks(
    access_line: Mrkdwn | str, approvals_required: int, admin_notice: Mrkdwn | str | None = None
) -> list[dict[str, Any]]:
    people = (
        Mrkdwn("a second person") if approvals_required == 1 else Mrkdwn("{} other people").format(approvals_required)
    )
    lines = Mrkdwn("\n").join(Mrkdwn("• ") + sentence(u) for u in USAGE.values())
    blocks: list[Block] = [
        SectionBlock(text=md(Mrkdwn("*Snapshot bot* — VPS.org snapshots from Slack\n") + lines)),
        ContextBlock(
            elements=[
                context_md(
                    Mrkdwn(
                        "Restores overwrite the whole server and need approval from {}. "
                        "Every action is recorded in the audit trail."
                    ).format(people)
                ),
                context_md(sentence(access_line)),
            ]
        ),
    ]
    if admin_notice:  # set-up problems only admins can fix
        blocks.append(ContextBlock(elements=[context_md(sentence(admin_notice))]))
    return as_dicts(blocks)


# ---- list ------------------------------------------------------------------------------------------------
def _server_blocks(
    group: ServerGroup, now: datetime, complete: bool = True, pins: Mapping[int, PinRow] | None = None
) -> list[kit.Block]:
    """A server's heading and its snapshots. From an incomplete listing no per-server claim is drawn: neither
    "N of 5" nor "No snapshots yet" (its snapshots may be on the pages VPS.org did not send)."""
    pins = pins or {}
    server = group.server
    state = Mrkdwn(" · server {}").format(plain(group.status, 40)) if group.status else Mrkdwn("")
    if complete:
        quota = Mrkdwn("{} of {} snapshots").format(group.quota_used, SNAPSHOTS_PER_SERVER)
    else:
        quota = Mrkdwn("{} shown — VPS.org's list was incomplete, so it may have more").format(group.quota_used)
    if group.at_limit:
        quota += Mrkdwn(" — limit reached")
    blocks = [
        kit.section(
            Mrkdwn("{} (id {}){}\n{}").format(server_name(server.name), server.id, state, quota),
            accessory=kit.button("Create snapshot", OPEN_CREATE, str(server.id)),
        )
    ]
    if not group.snapshots:
        none = Mrkdwn("No snapshots yet.") if complete else Mrkdwn("None of its snapshots were in what VPS.org sent.")
        blocks.append(kit.context(none))
    for snap in group.snapshots:
        blocks.extend(_snapshot_blocks(snap, now, pins.get(snap.id)))
    blocks.append(kit.divider())
    return blocks


def _snapshot_blocks(snap: Snapshot, now: datetime, pin: PinRow | None = None) -> list[kit.Block]:
    """A snapshot's line; a pinned one says who pinned it and why, and offers no Delete button."""
    line = Mrkdwn("{} · #{} · {} · {} · {}").format(
        snapshot_name(snap.name),
        snap.id,
        status_label(snap.status),
        format_size(snap.size_mb),
        format_age(snap.created_at, now),
    )
    if snap.description:
        line += Mrkdwn("\n") + quote(snap.description, 300)
    if pin is not None:
        line += Mrkdwn("\n") + pin_note(pin.pinned_by, pin.reason)
    blocks = [kit.section(line)]
    if snap.is_completed:
        restore = kit.button("Restore", ASK_RESTORE, str(snap.id))
        delete = kit.button("Delete", ASK_DELETE, str(snap.id), danger=True)
        blocks.append(kit.actions(restore) if pin is not None else kit.actions(restore, delete))
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


def _render_page(overview: Overview, now: datetime, plan: list[tuple[int, int, int]]) -> list[kit.Block]:
    blocks: list[kit.Block] = []
    for index, start, end in plan:
        blocks.extend(_server_blocks(overview.groups[index], now, overview.complete, overview.pins)[start:end])
    return blocks


def list_pages(overview: Overview, now: datetime, *, max_blocks: int = MAX_BLOCKS) -> list[list[kit.Block]]:
    """Every page of the list, rendered (list_message renders only the one it shows)."""
    return [_render_page(overview, now, plan) for plan in _page_plan(overview, max_blocks)]


def list_message(overview: Overview, now: datetime, page: int = 0) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """One page of the list as (fallback text, blocks), with a "Show more" button when pages remain."""
    plans = _page_plan(overview)
    page = max(0, min(page, len(plans) - 1))
    scope = (
        Mrkdwn("server {}").format(overview.server_id)
        if overview.server_id is not None
        else _counted(len(overview.groups), Mrkdwn("server"), Mrkdwn("servers"))
    )
    summary = Mrkdwn("{} on {}").format(
        _counted(overview.snapshot_count, Mrkdwn("snapshot"), Mrkdwn("snapshots")), scope
    )
    if overview.api_total is not None:
        summary += Mrkdwn(" (VPS.org reports {}; some could not be fetched)").format(overview.api_total)
    if not overview.fresh:
        summary += Mrkdwn(
            " — listed {} ago: you have asked VPS.org as often as SNAPSHOT_READ_LIMIT allows, so this is the last "
            "listing"
        ).format(_age(overview.age_seconds))
    elif overview.age_seconds >= SHOW_AGE_AFTER_SECONDS:
        summary += Mrkdwn(" — listed {} ago").format(_age(overview.age_seconds))
    if len(plans) > 1:
        summary += Mrkdwn(" — page {} of {}").format(page + 1, len(plans))
    blocks = [kit.context(summary), *_render_page(overview, now, plans[page])]
    if not overview.groups:
        blocks.append(kit.section(Mrkdwn("No servers found.")))
    if page + 1 < len(plans):
        more = json.dumps({"server_id": overview.server_id, "page": page + 1, "session": overview.session})
        blocks.append(kit.actions(kit.button(f"Show more ({page + 2} of {len(plans)})", LIST_MORE, more)))
    return fallback_text(summary), blocks


SHOW_AGE_AFTER_SECONDS = 5.0  # a listing from the cache older than this says how old it is


def _age(seconds: float) -> Mrkdwn:
    if seconds < 90:
        return Mrkdwn("{} s").format(max(1, round(seconds)))
    return Mrkdwn("{} min").format(round(seconds / 60))


def _counted(n: int, one: Mrkdwn, many: Mrkdwn) -> Mrkdwn:
    """ "1 server", "2 servers": a count with its noun (in Slack's own words, never "server(s)")."""
    return Mrkdwn("{} {}").format(n, one if n == 1 else many)

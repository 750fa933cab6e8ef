"""The App Home tab, for the person looking: servers with their snapshot counts, recent snapshots, schedules,
restore requests they can act on, what the bot is following (a restore taking its safety snapshot included), and
their own recent actions. Refreshed when opened, from the workspace's listing cache (it says how old the listing is
when that is more than a few seconds).

The data comes from the use case (bot/usecases/home.py: two VPS.org listings, usually cached, and a few database
reads); `AppHome`
adds links to the approval cards and `home_view` is a pure function from that data to the view. `AppHome` is
`SlackSide.home`; the `app_home_opened` listener calls `publish`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.mrkdwn import Mrkdwn, code, mention, plain
from bot.redaction import redact_message
from bot.slack.blocks import (
    MAX_VIEW_BLOCKS,
    as_dicts,
    context,
    decision_actions,
    format_age,
    format_size,
    format_time,
    format_took,
    header,
    reason_line,
    request_subject,
    section,
    server_name,
    snapshot_name,
    status_label,
)
from bot.slack.blocks.common import pin_note
from bot.slack.blocks.schedules import schedule_entry
from bot.slack.wording import render
from bot.usecases.approval_safety import safety_name
from bot.usecases.approval_terms import RequestKind
from bot.usecases.home import HomeOverview, HomeQueries, PendingRequest
from bot.usecases.tracking import OperationKind
from bot.vps.models import SNAPSHOTS_PER_SERVER, Server, Snapshot

if TYPE_CHECKING:
    from bot.usecases.approvals import RequestView
    from bot.usecases.home import AuditRecord
    from bot.usecases.tracking import Operation

log = logging.getLogger(__name__)

HOME_REFRESH = "home_refresh"
HOME_OPEN_CARD = "home_open_card"
MAX_SECTION_CHARS = 2900
MAX_HOME_BLOCKS = MAX_VIEW_BLOCKS


# ---- pure view builder -----------------------------------------------------------------------------------
def _chunked(lines: list[Mrkdwn]) -> list[Block]:
    """Lines packed into as few sections as Slack's per-section text limit allows."""
    blocks: list[Block] = []
    current: list[Mrkdwn] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > MAX_SECTION_CHARS:
            blocks.append(section(Mrkdwn("\n").join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        blocks.append(section(Mrkdwn("\n").join(current)))
    return blocks


SHOW_AGE_AFTER_SECONDS = 5.0  # a cached listing older than this says how old it is


def _server_line(server: Server, count: int, complete: bool = True) -> Mrkdwn:
    # From an incomplete listing only what was seen is said: never "0 of 5" for a server whose page was missing.
    if complete:
        quota = Mrkdwn("{} of {} snapshots").format(count, SNAPSHOTS_PER_SERVER)
    else:
        quota = Mrkdwn("{} listed, maybe more").format(count)
    if count >= SNAPSHOTS_PER_SERVER:
        quota += Mrkdwn(" — limit reached")
    status = Mrkdwn(" · {}").format(plain(server.status, 40)) if server.status else Mrkdwn("")
    return Mrkdwn("• {} (id {}){} — {}").format(server_name(server.name), server.id, status, quota)


def _snapshot_line(snap: Snapshot, now: datetime, pinned: bool = False) -> Mrkdwn:
    return Mrkdwn("• {}{} · #{} · {} · {} · {} · {}").format(
        Mrkdwn(":pushpin: ") if pinned else Mrkdwn(""),
        snapshot_name(snap.name),
        snap.id,
        server_name(snap.server.name, snap.server.id),
        status_label(snap.status),
        format_size(snap.size_mb),
        format_age(snap.created_at, now),
    )


def _pinned_line(snap: Snapshot, data: HomeOverview) -> Mrkdwn:
    """A pinned snapshot: which, where, who pinned it and why (the reason quoted, inert)."""
    pin = data.pins[snap.id]
    return Mrkdwn("• {} · #{} · {} — {}").format(
        snapshot_name(snap.name),
        snap.id,
        server_name(snap.server.name, snap.server.id),
        pin_note(pin.pinned_by, pin.reason),
    )


def _pending_blocks(
    item: PendingRequest, link: str | None, now: datetime, step_up_kinds: AbstractSet[RequestKind]
) -> list[Block]:
    """The request, and the buttons the viewer may press on it: the same ones, and listeners, as on its card."""
    req = item.request
    what = Mrkdwn("*{} #{}*: {} → {} · asked by {} · waiting {} · expires {}").format(
        plain(req.kind.title(), 20),
        req.id,
        request_subject(req) if req.kind == RequestKind.SCHEDULE else snapshot_name(req.snapshot_name),
        server_name(req.server_name, req.server_id),
        mention(req.requester_id),
        format_took(now - req.created_at),  # how long it has waited for a decision (issue 28 §1)
        format_time(req.expires_at),
    )
    hint = (
        Mrkdwn("Your request — someone else has to approve it; you can cancel it here or on the card.")
        if item.yours
        else Mrkdwn("Approve or reject it here or on the card.")
    )
    open_card = ButtonElement(text="Open card", action_id=HOME_OPEN_CARD, url=link, value=str(req.id)) if link else None
    buttons = decision_actions(
        req, f"home:{req.id}", approve=not item.yours, cancel=item.yours, step_up_kinds=step_up_kinds
    )
    return [section(what + reason_line(req) + Mrkdwn("\n") + hint, accessory=open_card), buttons]


def _following_line(op: Operation) -> Mrkdwn:
    if op.kind == OperationKind.CREATE:
        what = Mrkdwn("snapshot {} of {}").format(snapshot_name(op.snapshot_name), server_name(op.server_name))
    else:
        what = Mrkdwn("restore of {} from {}").format(server_name(op.server_name), snapshot_name(op.snapshot_name))
    status = plain(op.last_status.replace("_", " "), 40) or Mrkdwn("started")
    return Mrkdwn("• {} — {}, since {} (by {})").format(what, status, format_time(op.started_at), mention(op.actor_id))


def _safety_line(req: RequestView) -> Mrkdwn:
    """A restore whose safety snapshot is being taken: not in the Tracker's table, but in progress all the same."""
    safety = snapshot_name(safety_name(req.id))
    if req.safety_snapshot_id is not None:
        safety += Mrkdwn(" (#{})").format(req.safety_snapshot_id)
    return Mrkdwn("• restore #{} of {} on {}: taking the safety snapshot {} (since {})").format(
        req.id,
        snapshot_name(req.snapshot_name),
        server_name(req.server_name, req.server_id),
        safety,
        format_time(req.decided_at),
    )


def _schedule_blocks(data: HomeOverview) -> list[Block]:
    """Each schedule as `/snapshot schedules` shows it (one renderer), bounded; the rest counted."""
    blocks: list[Block] = [header("Schedules")]
    if not data.schedules:
        blocks.append(section(Mrkdwn("No schedules. `/snapshot schedule` adds one.")))
        return blocks
    blocks.extend(section(schedule_entry(view)) for view in data.schedules)
    if data.more_schedules:
        blocks.append(
            context(Mrkdwn("…and {} more — `/snapshot schedules` lists them all.").format(data.more_schedules))
        )
    return blocks


def _action_line(record: AuditRecord) -> Mrkdwn:
    target = []
    if record.snapshot_id is not None:
        target.append(f"snapshot #{record.snapshot_id}")
    if record.server_id is not None:
        target.append(f"server {record.server_id}")
    if record.request_id is not None:
        target.append(f"request #{record.request_id}")
    where = Mrkdwn(" · ") + plain(", ".join(target), 200) if target else Mrkdwn("")
    return Mrkdwn("• {} · {}{} · {}").format(
        code(record.action, 60), plain(record.outcome, 30), where, format_time(record.created_at)
    )


def _age(data: HomeOverview) -> Mrkdwn:
    """How old the VPS.org listing shown is, when it came from the cache a while ago or stands in for a read
    the viewer's limit did not allow."""
    if data.vps_error is not None or data.listed_at is None:
        return Mrkdwn("")
    if not data.fresh:
        return Mrkdwn(" · servers and snapshots as VPS.org listed them {} earlier (you reached the read limit)").format(
            _seconds(data.listing_age)
        )
    if data.listing_age >= SHOW_AGE_AFTER_SECONDS:
        return Mrkdwn(" · servers and snapshots as VPS.org listed them {} earlier").format(_seconds(data.listing_age))
    return Mrkdwn("")


def _seconds(seconds: float) -> Mrkdwn:
    if seconds < 90:
        return Mrkdwn("{} s").format(max(1, round(seconds)))
    return Mrkdwn("{} min").format(round(seconds / 60))


def home_view(
    data: HomeOverview,
    links: Mapping[int, str] | None = None,
    *,
    step_up_kinds: AbstractSet[RequestKind] = frozenset(),
) -> dict[str, Any]:
    """The Home tab as a `views.publish` view (type "home"); `links`: request id → permalink of its card;
    `step_up_kinds`: the kinds whose Approve opens the step-up form (no confirm dialog on it)."""
    blocks: list[Block] = [
        header("Snapshots"),
        ActionsBlock(elements=[ButtonElement(text="Refresh", action_id=HOME_REFRESH, value="refresh")]),
        context(Mrkdwn("As of {}{} · `/snapshot help` lists every command.").format(format_time(data.now), _age(data))),
    ]
    if data.refusal is not None:
        blocks.append(section(Mrkdwn(":lock: ") + render(data.refusal)))
        return _view(blocks)

    blocks.append(header("Servers"))
    if data.vps_error is not None:
        blocks.append(section(Mrkdwn(":warning: ") + render(data.vps_error)))
    elif not data.servers:
        blocks.append(section(Mrkdwn("No servers found.")))
    else:
        if not data.complete:
            blocks.append(
                section(
                    Mrkdwn(
                        ":warning: VPS.org counts {} snapshots but did not send them all, so a server's count here "
                        "may be short. `/snapshot list` with a server id lists that server in full."
                    ).format(data.snapshot_total)
                )
            )
        blocks.extend(_chunked([_server_line(s, data.counts.get(s.id, 0), data.complete) for s in data.servers]))

    if data.vps_error is None:
        blocks.append(header("Recent snapshots"))
        if data.recent:
            blocks.extend(_chunked([_snapshot_line(s, data.now, s.id in data.pins) for s in data.recent]))
        else:
            blocks.append(section(Mrkdwn("No snapshots yet.")))
        if data.pinned:
            blocks.append(header("Pinned snapshots"))
            blocks.extend(_chunked([_pinned_line(s, data) for s in data.pinned]))
    blocks.extend(_schedule_blocks(data))  # from the bot's database: shown whether VPS.org answered or not

    tail: list[Block] = []
    if data.following or data.safety_steps:
        tail.append(header("In progress"))
        lines = [_safety_line(req) for req in data.safety_steps] + [_following_line(op) for op in data.following]
        tail.extend(_chunked(lines))
    tail.append(header("Your recent actions"))
    if data.actions:
        tail.extend(_chunked([_action_line(r) for r in data.actions]))
    else:
        tail.append(section(Mrkdwn("You haven't done anything with the bot yet.")))

    blocks.append(header("Requests you can act on"))
    if data.pending:
        # Every request shown keeps its buttons: only whole requests fit, the rest are counted, never cut in two.
        room = max(0, (MAX_HOME_BLOCKS - len(blocks) - len(tail) - 1) // 2)
        for item in data.pending[:room]:
            blocks.extend(_pending_blocks(item, (links or {}).get(item.request.id), data.now, step_up_kinds))
        if len(data.pending) > room:
            blocks.append(
                context(
                    Mrkdwn("…and {} more: `/snapshot pending` lists every open request.").format(
                        len(data.pending) - room
                    )
                )
            )
    else:
        blocks.append(section(Mrkdwn("Nothing is waiting for you.")))
    return _view((blocks + tail)[:MAX_HOME_BLOCKS])


def _view(blocks: list[Block]) -> dict[str, Any]:
    return {"type": "home", "blocks": as_dicts(blocks)}


# ---- gathering and publishing ----------------------------------------------------------------------------
class AppHome:
    """Publishes the Home tab: the overview from the use case, links to the approval cards, the view."""

    def __init__(self, queries: HomeQueries, *, step_up_kinds: AbstractSet[RequestKind] = frozenset()) -> None:
        self.queries = queries
        self.step_up_kinds = step_up_kinds  # APPROVAL_STEP_UP_FOR when the step-up is on

    def gather(
        self, client: WebClient, user_id: str, team_id: str | None = None
    ) -> tuple[HomeOverview, dict[int, str]]:
        """The use case's overview, and the permalink of each pending request's card (a Slack-side detail)."""
        overview = self.queries.overview(user_id, team_id)
        links = {p.request.id: link for p in overview.pending if (link := _permalink(client, p.request))}
        return overview, links

    def publish(self, client: WebClient, user_id: str, team_id: str | None = None) -> None:
        if not user_id:
            return
        overview, links = self.gather(client, user_id, team_id)
        view = redact_message(home_view(overview, links, step_up_kinds=self.step_up_kinds))
        try:
            client.views_publish(user_id=user_id, view=view)
        except SlackApiError as error:
            log.warning("views.publish for %s failed: %s", user_id, error.response.get("error"))


def _permalink(client: WebClient, req: RequestView) -> str | None:
    if not (req.card_channel and req.card_ts):
        return None
    try:
        return str(client.chat_getPermalink(channel=req.card_channel, message_ts=req.card_ts)["permalink"])
    except (SlackApiError, KeyError):
        return None

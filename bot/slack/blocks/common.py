"""What every builder shares: Block Kit's limits, the action ids, text helpers and the mrkdwn text objects.

Rules it keeps: `md` refuses anything but `Mrkdwn` and clips to the limit it is given; every limit is taken from
slack_sdk's own models where they have one; the action ids are the contract between builders and listeners.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    BlockElement,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn, code, mention, quote, require, slack_date
from bot.mrkdwn import clip as clip_mrkdwn

# Limits: slack_sdk's own where its models have them; the rest from Block Kit's reference.
MAX_BLOCKS = 50  # per message
MAX_VIEW_BLOCKS = View.blocks_max_length
MAX_TEXT = SectionBlock.text_max_length
MAX_CONTEXT_TEXT = 2000  # one context element's text
MAX_HEADER = HeaderBlock.text_max_length
MAX_BUTTON_TEXT = ButtonElement.text_max_length
MAX_CONFIRM_TEXT = ConfirmObject.text_max_length
MAX_CONFIRM_TITLE = ConfirmObject.title_max_length
MAX_MODAL_TITLE = View.title_max_length
MAX_FALLBACK_TEXT = 3000  # a message's `text`: Slack truncates far later, but a notification needs no more
NAME_LIMIT = 64  # snapshot names (VPS.org's limit, also the create form's)
SERVER_LIMIT = 80  # server names as shown; VPS.org sets no documented limit
DESCRIPTION_LIMIT = 500  # the create form's limit

# action ids: the contract between these builders and the listeners
LIST_MORE = "list_more"
OPEN_CREATE = "snapshot_create_open"
ASK_DELETE = "snapshot_delete"
CONFIRM_DELETE = "snapshot_delete_confirm"
DISMISS = "dismiss"
ASK_RESTORE = "snapshot_restore"
APPROVE = "approval_approve"  # with the card's default safety-snapshot choice
APPROVE_NO_SAFETY = "approval_approve_no_safety"  # approve, explicitly without a safety snapshot
FREE_OLDEST = "approval_free_oldest"  # a full server: delete its oldest snapshot (the normal delete path)
REJECT = "approval_reject"
CANCEL = "approval_cancel"
CREATE_VIEW = "create_snapshot"
SERVER_PICK = "create_server"  # the create form's server select; its options come from a block_suggestion
REJECT_VIEW = "reject_request"
RESTORE_VIEW = "restore_request"
AUDIT_MORE = "audit_more"


# ---- text helpers ----------------------------------------------------------------------------------------
def clip(text: str, limit: int) -> str:
    """Plain text (plain_text objects) cut to `limit`; mrkdwn is cut with `bot.mrkdwn.clip` instead."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_CODE_SPAN = re.compile(r"`([^`\n]*)`")


def plain_text_error(message: str) -> str:
    """A use case's message as a modal field's error, which Slack shows as plain text: a `code` span would show
    its backticks, so it is quoted instead (“code”)."""
    return clip(_CODE_SPAN.sub(r"“\1”", message), MAX_TEXT)


def server_name(name: str | None, server_id: int | None = None) -> Mrkdwn:
    """A server's name as shown everywhere: a code span (never bold with the name inside it)."""
    if not name:
        return Mrkdwn("server {}").format(server_id) if server_id is not None else Mrkdwn("server")
    return code(name, SERVER_LIMIT)


def snapshot_name(name: str | None) -> Mrkdwn:
    return code(name, NAME_LIMIT)


PIN_REASON_LIMIT = 200  # as bot/usecases/pin_rules.MAX_PIN_REASON: the stored reason is never longer


def pin_note(pinned_by: str, reason: str) -> Mrkdwn:
    """ ":pushpin: pinned by @x: “why”": the reason is the pinner's text, quoted and escaped (inert)."""
    note = Mrkdwn(":pushpin: pinned by {}").format(mention(pinned_by))
    return note + Mrkdwn(": {}").format(quote(reason, PIN_REASON_LIMIT)) if reason else note


def format_size(size_mb: int | None) -> Mrkdwn:
    if size_mb is None:
        return Mrkdwn("size pending")
    if size_mb >= 1024:
        return Mrkdwn("{:.1f} GB").format(size_mb / 1024)
    return Mrkdwn("{} MB").format(int(size_mb))


_AGE_UNITS = (
    (Mrkdwn("day"), Mrkdwn("days"), 86400),
    (Mrkdwn("hour"), Mrkdwn("hours"), 3600),
    (Mrkdwn("minute"), Mrkdwn("minutes"), 60),
)


def format_age(then: datetime | None, now: datetime) -> Mrkdwn:
    if then is None:
        return Mrkdwn("unknown age")
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return Mrkdwn("just now")
    for one, many, size in _AGE_UNITS:
        if seconds >= size:
            n = seconds // size
            return Mrkdwn("{} {} ago").format(n, one if n == 1 else many)
    return Mrkdwn("just now")


def format_took(took: timedelta) -> Mrkdwn:
    """How long something took (or has been running): "under a minute", "4 min", "1 h 5 min"."""
    seconds = int(took.total_seconds())
    if seconds < 60:
        return Mrkdwn("under a minute")
    minutes = round(seconds / 60)
    if minutes < 60:
        return Mrkdwn("{} min").format(minutes)
    return Mrkdwn("{} h {} min").format(minutes // 60, minutes % 60)


def format_time(moment: datetime | None) -> Mrkdwn:
    """Slack renders <!date…> in each reader's own time zone; the fallback text is UTC."""
    if moment is None:
        return Mrkdwn("unknown time")
    return slack_date(int(moment.timestamp()), moment.strftime("%Y-%m-%d %H:%M UTC"))


def status_label(status: str) -> Mrkdwn:
    if status == "completed":
        return Mrkdwn(":white_check_mark: completed")
    if status == "in_progress":
        return Mrkdwn(":hourglass_flowing_sand: in progress")
    return Mrkdwn(":grey_question: ") + (code(status, 40) if status else Mrkdwn("unknown"))


def md(text: Mrkdwn, limit: int = MAX_TEXT) -> MarkdownTextObject:
    # verbatim: Slack adds no links or mentions of its own to the text (bare URLs, channel names stay text).
    # Slack refuses an empty text: a value that cleaned down to nothing still shows as a dash.
    return MarkdownTextObject(text=clip_mrkdwn(require(text), limit) or "-", verbatim=True)


def context_md(text: Mrkdwn) -> MarkdownTextObject:
    return md(text, MAX_CONTEXT_TEXT)


def fallback_text(text: Mrkdwn) -> Mrkdwn:
    return clip_mrkdwn(require(text), MAX_FALLBACK_TEXT)


def as_dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


def confirm_dialog(title: str, text: Mrkdwn, confirm: str, deny: str) -> ConfirmObject:
    """A confirm dialog whose text (mrkdwn, slack_sdk's default) is clipped to ConfirmObject's own limit."""
    return ConfirmObject(
        title=clip(title, MAX_CONFIRM_TITLE),
        text=md(text, MAX_CONFIRM_TEXT),
        confirm=confirm,
        deny=deny,
        style="danger",
    )


def section(text: Mrkdwn, *, accessory: BlockElement | None = None) -> SectionBlock:
    return SectionBlock(text=md(text), accessory=accessory)


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, MAX_HEADER)))


def context(text: Mrkdwn) -> ContextBlock:
    return ContextBlock(elements=[context_md(text)])


def notice(text: Mrkdwn) -> list[dict[str, Any]]:
    return as_dicts([SectionBlock(text=md(text))])

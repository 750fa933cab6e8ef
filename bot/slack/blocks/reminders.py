"""What a reminder and an escalation of a waiting request say (issue 28 §1): pure functions from a `Nudge` to Mrkdwn.

Rules kept here: only the user ids the use case chose are mentioned (never the requester: the use case leaves
them out, and the request's subject names the requester as plain words, not a mention); every outside text
(names, the reason) enters through `code()`/`plain()`; the permalink is the one Slack gave (`link()` checks it).
"""

from __future__ import annotations

from bot.mrkdwn import Mrkdwn, link, mention, plain
from bot.slack.blocks.common import format_time, format_took, server_name
from bot.slack.blocks.schedule_requests import request_subject
from bot.usecases.approval_reminders import Nudge

NO_ONE_TO_NAME = Mrkdwn("(No approver to name: access control is off, or every approver has acted.)")


def _names(nudge: Nudge) -> Mrkdwn:
    names = Mrkdwn(" ").join(mention(user) for user in nudge.named)
    if nudge.unnamed:
        names += Mrkdwn(" and {} more").format(nudge.unnamed)
    return names


def _subject(nudge: Nudge) -> Mrkdwn:
    req = nudge.request
    return Mrkdwn("{} request #{} ({} on {})").format(
        plain(req.kind.title(), 20), req.id, request_subject(req), server_name(req.server_name, req.server_id)
    )


def reminder_text(nudge: Nudge) -> Mrkdwn:
    """The thread reply: ":bell: Reminder 2 of 3: Restore request #7 (…) has waited 30 min for a decision. @bob …"""
    req = nudge.request
    head = Mrkdwn(":bell: Reminder {} of {}: {} has waited {} for a decision; it expires {}.").format(
        nudge.number, nudge.of, _subject(nudge), format_took(nudge.waited), format_time(req.expires_at)
    )
    if not nudge.named:
        return head + Mrkdwn(" ") + NO_ONE_TO_NAME
    return head + Mrkdwn("\n{}: please approve or reject it on this card.").format(_names(nudge))


def escalation_text(nudge: Nudge) -> Mrkdwn:
    """The thread reply of the escalation."""
    head = Mrkdwn(":rotating_light: Escalated: {} has waited {} with no decision.").format(
        _subject(nudge), format_took(nudge.waited)
    )
    if not nudge.named:
        return head + Mrkdwn(" (Nobody in APPROVAL_ESCALATE_TO could be named: see the bot's log.)")
    return head + Mrkdwn("\n{}: please look at it. Escalation grants nothing: only approvers can approve.").format(
        _names(nudge)
    )


def escalation_dm(nudge: Nudge, permalink: str | None) -> Mrkdwn:
    """The direct message to each person the request is escalated to, with the card's link."""
    where = link(permalink, Mrkdwn("open its card")) if permalink else Mrkdwn("its card is in the approval channel")
    return Mrkdwn(
        ":rotating_light: {} has waited {} with no decision and was escalated to you: {}. "
        "Approve or reject it there if you can (escalation grants nothing: only approvers can approve)."
    ).format(_subject(nudge), format_took(nudge.waited), where)

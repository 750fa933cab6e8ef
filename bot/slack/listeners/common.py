"""What every listener needs: who is acting, and running the slow part after ack with honest error replies."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack

from bot.mrkdwn import Mrkdwn, code
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.context import Actor
from bot.usecases.errors import AuditTrailBroken, QuotaReached, StorageError, StorageUnavailable, UserFacingError

log = logging.getLogger(__name__)

# The work behind a `/snapshot` sub-command, run after the ack; a button doing the same thing calls the same one.
Handler = Callable[[Core, SlackSide, Reply, Actor, dict[str, str]], None]

AUDIT_HEAD_MISSING = Mrkdwn(
    ":no_entry: Nothing was done: the audit trail's chain head is missing, so no action can be recorded. "
    "An admin must check the trail (`python -m bot audit verify --checkpoints FILE`) and re-anchor it."
)
DATABASE_DOWN = Mrkdwn(
    ":x: The bot's database is unavailable, so nothing was done (every action is recorded before it happens). "
    "Try again in a minute; if it persists, tell an admin."
)


BUSY = Mrkdwn(
    ":hourglass: The bot is busy right now and did not take this request: nothing was done. Try again in a minute."
)
SHUT_DOWN_FIRST = Mrkdwn(
    ":arrows_counterclockwise: The bot was restarting and did not get to this request: nothing was done. "
    "Try again in a minute."
)


def actor_from_command(body: dict[str, Any]) -> Actor:
    return Actor(
        user_id=str(body.get("user_id") or ""),
        name=str(body.get("user_name") or ""),
        team_id=body.get("team_id") or None,
        channel_id=body.get("channel_id") or None,
    )


def actor_from_payload(body: dict[str, Any]) -> Actor:
    user = body.get("user") or {}
    team = body.get("team") or {}
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    return Actor(
        user_id=str(user.get("id") or ""),
        name=str(user.get("username") or user.get("name") or ""),
        team_id=team.get("id") or user.get("team_id") or None,
        channel_id=channel.get("id") or container.get("channel_id") or None,
    )


def first_action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    return actions[0] if isinstance(actions[0], dict) else {}


def run_for_user(core: Core, reply: Reply, job: Callable[[], None], ack: Ack | None = None) -> None:
    """Run `job` in the background; whatever goes wrong, the user gets a plain answer and the process stays up.

    With `ack`, Slack is acknowledged right after the job is queued (so anyone waiting for "work done" once the
    HTTP answer arrives finds the job already queued).
    """

    def guarded() -> None:
        try:
            job()
        except QuotaReached as error:
            message = render(error.message)
            reply.ephemeral(message, ui.quota_reached(message, error.oldest_snapshot_id))
        except UserFacingError as error:
            reply.ephemeral(Mrkdwn(":warning: ") + render(error.message))
        except (StorageError, StorageUnavailable):
            log.exception("database error while handling a request")
            reply.ephemeral(DATABASE_DOWN)
        except AuditTrailBroken:
            log.error("AUDIT CHAIN HEAD IS MISSING: request refused (see `python -m bot audit reanchor`)")
            reply.ephemeral(AUDIT_HEAD_MISSING)
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("unexpected error (ref %s)", reference)
            reply.ephemeral(
                Mrkdwn(
                    ":x: Something went wrong on the bot's side (ref {}). "
                    "Check `/snapshot audit` before retrying anything."
                ).format(code(reference))
            )

    if not core.work.offer(guarded, on_abandoned=lambda: reply.ephemeral(SHUT_DOWN_FIRST)):
        # Overloaded: say so at once rather than queue without bound; the job never started, nothing changed.
        log.warning("post-ack work queue full (%d waiting): turned a request away", core.work.backlog())
        if ack is not None:
            ack(BUSY)
        else:
            reply.ephemeral(BUSY)
        return
    if ack is not None:
        ack()

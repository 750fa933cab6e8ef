"""Where the answer to a command, a click or a form goes: chosen here, once, for every listener.

- A command, or a click on a message, is answered through its `response_url`, falling back to
  `chat.postEphemeral` in its channel (`Reply`).
- A click in App Home has neither a channel nor a `response_url`: the answer is a direct message
  (`DirectReply`); a listener whose work changes what the tab shows redraws it afterwards (`refresh_home`).
- A form's submission is answered in the channel the form was opened from (the listener reads it from the form),
  or by direct message when it was opened from App Home (no channel).
- A change everyone should know of is announced where it was made; `notify_elsewhere` adds the one line for
  SNAPSHOT_NOTIFY_CHANNEL when that is another channel.
"""

from __future__ import annotations

import contextlib
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.mrkdwn import Mrkdwn
from bot.runtime import Core
from bot.slack.listeners.common import actor_from_payload
from bot.slack.replies import DirectReply, Reply
from bot.slack.side import SlackSide
from bot.usecases.context import Actor


def from_app_home(body: dict[str, Any]) -> bool:
    view = body.get("view")
    return isinstance(view, dict) and view.get("type") == "home"


def reply_to_click(body: dict[str, Any], respond: Respond, client: WebClient) -> Reply:
    """The clicker's answer: through the message's `response_url`, or a direct message for a click in App Home."""
    actor = actor_from_payload(body)
    if from_app_home(body):
        return DirectReply(client=client, user_id=actor.user_id, channel_id=None)
    return Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id, respond=respond)


def reply_to_submission(actor: Actor, client: WebClient) -> Reply:
    """The submitter's answer, in the channel the form was opened from (`actor.channel_id`), else by direct
    message (a form opened from App Home)."""
    if actor.channel_id:
        return Reply(client=client, user_id=actor.user_id, channel_id=actor.channel_id)
    return DirectReply(client=client, user_id=actor.user_id, channel_id=None)


def refresh_home(slack: SlackSide, client: WebClient, user_id: str, team_id: str | None = None) -> None:
    with contextlib.suppress(Exception):
        slack.home.publish(client, user_id, team_id)


def notify_elsewhere(core: Core, slack: SlackSide, actor: Actor, line: Mrkdwn) -> None:
    """One line to SNAPSHOT_NOTIFY_CHANNEL when it is another channel than the action's, which already got the
    announcement; without a notification channel the announcement is the notification."""
    channel = core.settings.notify_channel
    if not channel or channel == actor.channel_id:
        return
    slack.notifier.line(line, fallback_channel=None)

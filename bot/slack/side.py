"""The Slack side of one process: everything that talks to Slack on the bot's own initiative, as typed fields.

Built once by the composition root (bot/wiring.py) on top of the Core and handed to the listeners with it.
One instance of each, so per-channel pacing (the notifier) covers every message the bot posts by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.slack.announcer import SlackAnnouncer
from bot.slack.home import AppHome
from bot.slack.notify import Notifier
from bot.slack.progress import ProgressTracker


@dataclass
class SlackSide:
    client: WebClient  # the Web API client (with the retry policy of bot/slack/retry.py)
    notifier: Notifier  # notification lines and progress posts, paced per channel
    cards: ProgressTracker  # the card presenter: renders tracking events into the messages people see
    home: AppHome  # the App Home tab
    announcer: SlackAnnouncer  # outcomes the background ticker found (bot.background.Announcer)

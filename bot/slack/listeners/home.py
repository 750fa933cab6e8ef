"""App Home: the tab published whenever it is opened (Events API) and its own buttons (Refresh, Open card).

The buttons of the requests it shows are the cards' (bot/slack/listeners/approvals.py), answered by direct message
(bot/slack/listeners/answering.py)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.runtime import Core
from bot.slack.home import HOME_OPEN_CARD, HOME_REFRESH
from bot.slack.side import SlackSide

log = logging.getLogger(__name__)


def register(app: App, core: Core, slack: SlackSide) -> None:
    def publish_later(client: WebClient, user_id: str, team_id: str | None) -> None:
        if not user_id:
            return
        # Two VPS.org listings (usually cached, per workspace) and a few reads: never inside the acknowledgement.
        core.work.submit(slack.home.publish, client, user_id, team_id)

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        # The Messages tab opens the same event; only the Home tab has anything to show.
        if event.get("tab") not in (None, "home"):
            return
        publish_later(client, str(event.get("user") or ""), context.team_id)

    @app.action(HOME_REFRESH)
    def home_refresh(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        ack()
        publish_later(client, str((body.get("user") or {}).get("id") or ""), context.team_id)

    @app.action(HOME_OPEN_CARD)
    def home_open_card(ack: Ack) -> None:
        # A link button: Slack opens the URL itself but still sends the click, which must be acknowledged.
        ack()

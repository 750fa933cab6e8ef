"""Events API: App Home."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.runtime import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        home = services.extras.get("home")
        if home is None or event.get("tab") not in (None, "home"):
            return
        services.work.submit(home.publish, client, str(event.get("user") or ""))

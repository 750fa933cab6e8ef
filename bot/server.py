"""Production serving: gunicorn (threads) in HTTP mode; the background ticker in every process."""

from __future__ import annotations

import logging
import os
from typing import Any

from bot.config import Settings
from bot.wiring import Bot, build_bot

log = logging.getLogger(__name__)


def start_bot(settings: Settings) -> Bot:
    """Build the bot, apply pending migrations, warn loudly in open mode, and start background work."""
    bot = build_bot(settings)
    if bot.services.access.open_mode:
        log.warning(
            "ACCESS CONTROL IS OFF: no SNAPSHOT_VIEWERS/OPERATORS/APPROVERS/ADMINS configured, so everyone in the "
            "workspace can create, delete and request restores (approving one's own restore is still refused)."
        )
    from bot.background import start_background

    start_background(bot)
    return bot


def serve(settings: Settings, *, workers: int | None = None, threads: int | None = None) -> int:
    from gunicorn.app.base import BaseApplication

    class SnapshotBotServer(BaseApplication):  # type: ignore[misc]
        def __init__(self) -> None:
            self.bot: Bot | None = None
            super().__init__()

        def load_config(self) -> None:
            cfg = {
                "bind": f"0.0.0.0:{settings.port}",
                "workers": workers or int(os.environ.get("WEB_CONCURRENCY", "2")),
                "worker_class": "gthread",
                "threads": threads or 16,
                "timeout": 60,
                "graceful_timeout": 30,
                "keepalive": 5,
                "accesslog": None,
                "loglevel": settings.log_level.lower(),
            }
            for key, value in cfg.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # Each worker builds its own bot (connections and threads don't survive fork).
            self.bot = start_bot(settings)
            return self.bot.wsgi

    # Migrations once, before workers start, so they don't race each other.
    from storage.db import Database

    database = Database(settings.database_url)
    if database.needs_upgrade():
        database.upgrade()
    database.dispose()
    SnapshotBotServer().run()
    return 0

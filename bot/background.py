"""The ticker: expires old approval requests, flags crashed executions, and drives tracking."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.wiring import Bot

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, bot: Bot, interval: float) -> None:
        self.bot = bot
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def tick(self) -> None:
        """One round of housekeeping; each part fails on its own without stopping the others."""
        from bot.slack.listeners.approvals import publish_outcome
        from bot.usecases.approvals import DecisionResult

        services = self.bot.services
        try:  # before the approvals' own check, so a request flagged here keeps its operation id
            from bot.slack.listeners.approvals import announce_recovered
            from bot.usecases.recovery import recovery_for

            announce_recovered(services, self.bot.client, recovery_for(services).sweep())
        except Exception:
            log.exception("recovery sweep failed")
        approvals = services.extras.get("approvals")
        if approvals is not None:
            try:
                for view in approvals.expire_due():
                    publish_outcome(services, self.bot.client, DecisionResult(view, "expired", "expired"))
                for result in approvals.flag_stale_executions():  # claims expired: card, thread and channel told
                    publish_outcome(services, self.bot.client, result)
            except Exception:
                log.exception("approval housekeeping failed")
        tracker = services.extras.get("tracker")
        if tracker is not None:
            try:
                tracker.poll_once()
            except Exception:
                log.exception("tracking poll failed")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()


def start_background(bot: Bot) -> Ticker:
    interval = min(bot.settings.poll_seconds, 30.0)
    ticker = Ticker(bot, interval)
    bot.services.extras["background"] = ticker
    # A request left `executing` by a crash before this start is flagged on the first tick.
    ticker.start()
    witness = bot.services.extras.get("witness")
    if witness is not None:  # its own thread: signing and delivering checkpoints never waits on the ticker
        witness.start()
    return ticker

"""The ticker: expires old approval requests, flags crashed executions, reminds and escalates waiting ones, runs due
schedules, and drives tracking.

It works on the Core's use cases and reports what it found through an `Announcer`, injected by the composition
root (the Slack side implements it: bot/slack/announcer.py), so nothing here imports Slack or the listeners; the
composition root (bot/wiring.py: `ticker_for`, `start_background`) builds and starts it, and this module knows
nothing of the `Bot` it runs in.
Each part of a tick fails on its own without stopping the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from bot.usecases.approvals import DecisionOutcome, DecisionResult
from bot.usecases.wording import Text
from storage.approvals import RequestState

if TYPE_CHECKING:
    from bot.metrics import Metrics
    from bot.runtime import Core
    from bot.usecases.approval_reminders import Nudge, NudgeDelivery
    from bot.usecases.recovery import Unresolved
    from bot.usecases.schedule_runner import ScheduleEvent
    from bot.usecases.tracking import TrackingEvent

log = logging.getLogger(__name__)


class Announcer(Protocol):
    """Where the ticker's findings go: the people who asked, the request's card, the notification channel."""

    def decided(self, result: DecisionResult) -> None:
        """A request settled (expired, or flagged after its executor's claim ran out)."""

    def recovered(self, items: Sequence[Unresolved]) -> None:
        """Operations the recovery sweep found cut off by a crash, outcome unknown."""

    def tracked(self, events: list[TrackingEvent]) -> None:
        """Progress of the operations being followed."""

    def scheduled(self, events: list[ScheduleEvent]) -> None:
        """What the schedules did this tick (a snapshot started, a slot skipped or failed, retention)."""

    def nudge(self, nudge: Nudge) -> NudgeDelivery:
        """Send one claimed reminder or escalation of a waiting request (its thread; an escalation's DMs too)."""
        ...


class Ticker:
    def __init__(self, core: Core, announcer: Announcer, interval: float, metrics: Metrics | None = None) -> None:
        self.core = core
        self.announcer = announcer
        self.interval = interval
        self.metrics = metrics  # times the tracking poll and refreshes the request gauges each round
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def tick(self, *, poll_now: bool = False) -> None:
        """One round of housekeeping; each part fails on its own without stopping the others.

        `poll_now` polls the tracked operations even if the poll interval has not passed (the shell's `/wait`)."""
        core = self.core
        try:  # before the approvals' own check, so a request flagged here keeps its operation id
            self.announcer.recovered(core.recovery.sweep())
        except Exception:
            log.exception("recovery sweep failed")
        try:
            for view in core.approvals.expire_due():
                self.announcer.decided(DecisionResult(view, DecisionOutcome.EXPIRED, Text("expired")))
            for result in core.approvals.flag_stale_executions():  # claims expired: card, thread and channel told
                self.announcer.decided(result)
        except Exception:
            log.exception("approval housekeeping failed")
        try:  # after expiry, so a request that just expired is not reminded
            for nudge, delivery in core.reminders.run_due(self.announcer.nudge):
                if self.metrics is not None:
                    self.metrics.nudged(nudge.kind.value, delivery.ok)
        except Exception:
            log.exception("approval reminders failed")
        try:  # before the tracking poll, so a snapshot started now is followed from this tick on
            events = core.schedule_runner.run_due()
            if self.metrics is not None:
                for event in events:
                    self.metrics.schedule_ran(event.schedule.id, event.kind.value)
            self.announcer.scheduled(events)
        except Exception:
            log.exception("schedules failed")
        started = time.perf_counter()
        try:
            self.announcer.tracked(core.tracking.poll_once(force=poll_now))
        except Exception:
            log.exception("tracking poll failed")
        if self.metrics is not None:
            self.metrics.tracking_polled(time.perf_counter() - started)
            self.metrics.work_backlog(core.work.backlog())
            try:
                self.metrics.open_requests(core.approvals.open_counts(), RequestState.NEEDS_CHECK)
            except Exception:
                log.exception("counting open requests for the metrics failed")
            try:
                self.metrics.schedules(
                    (h.schedule_id, h.last_success, h.longest_gap) for h in core.schedule_runner.health()
                )
            except Exception:
                log.exception("reading the schedules' health for the metrics failed")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

"""The whole bot, driven the way Slack drives it: signed HTTP requests to the real WSGI app on loopback, Slack's
Web API answered by FakeSlack, VPS.org answered by the simulator (in-process transport)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import load_settings
from bot.wiring import Bot, build_bot
from devkit.fake_slack import FakeEphemeral, FakeMessage, FakeSlack
from devkit.local import LOCAL_SIGNING_SECRET, local_env
from devkit.simulator import RecordedRequest, VpsSimulator
from devkit.slack_driver import DriverResponse, SlackDriver, http_sender
from devkit.wsgi_server import RunningServer, start_wsgi_in_thread
from storage.audit import AuditRecord
from tests.db_fixtures import start_from_migrated

SIGNING_SECRET = LOCAL_SIGNING_SECRET
ALICE = "U0ALICE"
BOB = "U0BOB"
CAROL = "U0CAROL"
OPS = "C0OPS"
APPROVALS = "C0APPROVE"  # the approval channel the approval tests configure (APPROVAL_CHANNEL)


@dataclass
class Harness:
    bot: Bot
    slack: FakeSlack
    sim: VpsSimulator
    driver: SlackDriver
    server: RunningServer
    closers: list[Callable[[], None]] = field(default_factory=list)

    # -- acting ----------------------------------------------------------------------------------------------
    def command(self, text: str, user: str = ALICE, channel: str = OPS, **kwargs: Any) -> DriverResponse:
        return self.driver.command(text, user_id=user, user_name=user[2:].lower(), channel_id=channel, **kwargs)

    def click(self, message: Any, label: str, user: str = ALICE) -> DriverResponse:
        return self.driver.click(message, label, user_id=user, user_name=user[2:].lower())

    def settle(self, timeout: float = 15.0) -> None:
        """Wait (with a deadline) until the bot's background work is done."""
        assert self.bot.core.wait_idle(timeout), "listeners and background work did not finish in time"
        # Notification lines a busy channel made wait are sent by its own thread, after the work that wrote them.
        assert self.bot.slack.notifier.wait_idle(timeout), "notification lines were not all posted in time"

    def run(self, text: str, user: str = ALICE, channel: str = OPS) -> DriverResponse:
        response = self.command(text, user=user, channel=channel)
        assert response.status == 200, response.body
        self.settle()
        return response

    # -- seeing ----------------------------------------------------------------------------------------------
    def ephemerals(self, user: str = ALICE) -> list[FakeEphemeral]:
        return self.slack.ephemerals_for(user)

    def last_ephemeral(self, user: str = ALICE) -> FakeEphemeral:
        items = self.ephemerals(user)
        assert items, f"{user} has seen no ephemeral message"
        return items[-1]

    def channel(self, channel: str = OPS) -> list[FakeMessage]:
        return self.slack.messages(channel)

    def audit(self, **filters: Any) -> list[AuditRecord]:
        return self.bot.core.audit.query(limit=1000, **filters)

    def actions(self, **filters: Any) -> list[str]:
        return [r.action for r in reversed(self.audit(**filters))]

    def api_calls(self, method: str | None = None, path_prefix: str | None = None) -> list[Any]:
        return self.sim.calls(method, path_prefix)

    def mutating_calls(self) -> list[Any]:
        return [r for r in self.sim.requests if r.method in ("POST", "DELETE")]

    def restore_posts(self) -> list[RecordedRequest]:
        """Every restore VPS.org received (whatever its answer), oldest first."""
        return [r for r in self.sim.requests if r.method == "POST" and r.path.endswith("/restore/")]

    def restore_calls(self) -> list[str]:
        """The paths of the restores VPS.org received, e.g. `["/api/v1/snapshots/801/restore/"]`."""
        return [r.path for r in self.restore_posts()]

    def card(self, channel: str = APPROVALS) -> FakeMessage:
        """The newest approval card in `channel`, as it looks now (updates applied).

        A card is a top-level message naming a request; thread replies about its outcome name it too, so they
        are skipped.
        """
        cards = [m for m in self.channel(channel) if "request #" in m.visible_text and m.thread_ts in (None, m.ts)]
        assert cards, f"no approval card in {channel}"
        return self.slack.message(channel, cards[-1].ts)


class SkippingClock:
    """A monotonic clock whose sleeps return at once and move it on instead.

    The bot's Notifier paces by it in scenario tests: slots, their order and 429 push-backs are decided exactly as
    in production, but a second of pacing costs no real second (tests/scenario/test_notify.py and
    test_approval_not_paced.py keep the real pacing and check it).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skipped = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return time.monotonic() + self._skipped

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._skipped += max(0.0, seconds)
            self.slept.append(seconds)


@pytest.fixture
def make_harness(
    tmp_path: Path, fake_slack: FakeSlack, migrated_sqlite: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Harness]]:
    harnesses: list[Harness] = []

    def factory(
        *,
        database_url: str | None = None,
        sim: VpsSimulator | None = None,
        vps_transport: httpx.BaseTransport | None = None,
        real_pacing: bool = False,
        **env: str,
    ) -> Harness:
        """`real_pacing`: the Notifier waits real seconds between posts to a channel (else a SkippingClock)."""
        simulator = sim or VpsSimulator(completion_delay=0)
        # The safety snapshot (issue 18 §1) has its own tests (tests/scenario/test_safety_snapshot.py); the others
        # keep the restore path they were written for unless they ask for it.
        env.setdefault("RESTORE_SAFETY_SNAPSHOT", "off")
        url = database_url or f"sqlite:///{tmp_path / 'bot.db'}"
        start_from_migrated(url, migrated_sqlite, request)
        settings = load_settings(local_env(fake_slack, simulator, url, **env), dotenv_path=None)
        bot = build_bot(settings, vps_transport=vps_transport or simulator.transport())
        if not real_pacing:
            clock = SkippingClock()
            bot.slack.notifier.use_clock(clock, clock.sleep)
        server = start_wsgi_in_thread(bot.wsgi)
        # The workspace's directory: typed `@bob`/`#ops` reach the bot as the mentions Slack would send.
        for user_id in (ALICE, BOB, CAROL):
            fake_slack.users.setdefault(user_id, {"name": user_id[2:].lower()})
        fake_slack.channels.setdefault(OPS, {"name": "ops"})
        driver = SlackDriver(
            http_sender(server.url),
            SIGNING_SECRET,
            team_id=fake_slack.team_id,
            api_app_id=fake_slack.api_app_id,
            response_url_factory=fake_slack.new_response_url,
            directory=fake_slack,
        )
        harness = Harness(bot=bot, slack=fake_slack, sim=simulator, driver=driver, server=server)
        harnesses.append(harness)
        return harness

    yield factory
    for harness in harnesses:
        harness.server.stop()
        harness.bot.core.wait_idle(5)
        harness.bot.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


class SettableClock:
    """A wall clock for the bot's use cases that moves only when a test sets `now` (schedules' slots)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

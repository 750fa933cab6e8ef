"""Benchmark 7: an approval while the approvals channel is busy (issue 27 §3).

Slack takes about one post per second per channel, so the bot paces what it posts by itself. A busy approvals
channel must not hold up a restore somebody just approved: the click's work sends the restore at once, and the
card and the notification lines follow at the channel's pace.

In-process, like row 2: the bot's WSGI app on a loopback server with the default SNAPSHOT_WORKER_THREADS, VPS.org
as the simulator (in-process transport), Slack as FakeSlack, the approvals channel also the notification channel.
The time measured is from the signed Approve click leaving the bench to the restore POST arriving at the simulator
(its `received_at`). Baseline: the same clicks with the channel idle (no line waiting for its slot). Busy: a load
thread sends `/snapshot create` on many servers at three per second, each create ending with a line to the
approvals channel, so lines queue up faster than one per second; clicks start once that queue is deeper than the
bot has worker threads (where, before issue 27 §3, every approval waited for a line's slot: 690–750 ms).
Phases alternate idle, busy (twice in the full run); a request is asked fresh for every click.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.scale import Scale
from bench.table import Row, error_row, ms, percentile, ratio, verdict
from bot.config import load_settings
from bot.usecases.errors import NotFoundError
from bot.wiring import Bot, build_bot
from devkit.fake_slack import FakeSlack
from devkit.local import local_env
from devkit.simulator import VpsSimulator
from devkit.slack_driver import SlackDriver, http_sender
from devkit.wsgi_server import start_wsgi_in_thread

log = logging.getLogger("bench")

WHAT = "7. click → restore POST, approvals channel busy"
SIGNING_SECRET = "bench-signing-secret-0123456789"
REQUESTER, APPROVER, BUSY_USER = "U0BENCHREQ", "U0BENCHAPP", "U0BENCHBUSY"
OPS, APPROVALS = "C0BENCHOPS", "C0BENCHAPPROVE"
TARGET_P99 = 0.100
CREATES_PER_SECOND = 3.0
FIRST_SERVER = 30_000
TIMEOUT = 30.0


def _wait(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


class _Setup:
    def __init__(self, fake: FakeSlack, tmp: str, clicks: int) -> None:
        self.sim = VpsSimulator(completion_delay=0, restore_delay=3600)
        for n in range(2 * clicks):  # one server (and snapshot) per click: one open restore per server
            self.sim.add_server(FIRST_SERVER + n, f"restore-me-{n:03d}")
            self.sim.add_snapshot(FIRST_SERVER + n, f"nightly-{n:03d}", snapshot_id=FIRST_SERVER + n)
        self.busy_servers = [FIRST_SERVER + 1000 + n for n in range(30)]
        for server_id in self.busy_servers:
            self.sim.add_server(server_id, f"busy-{server_id}")
        self.fake = fake
        env = local_env(
            fake,
            self.sim,
            f"sqlite:///{Path(tmp) / 'bot.db'}",
            signing_secret=SIGNING_SECRET,
            LOG_LEVEL="WARNING",
            SNAPSHOT_APPROVAL_CHANNEL=APPROVALS,
            SNAPSHOT_NOTIFY_CHANNEL=APPROVALS,
            RESTORE_SAFETY_SNAPSHOT="off",
        )
        self.bot: Bot = build_bot(load_settings(env, dotenv_path=None), vps_transport=self.sim.transport())
        self.server = start_wsgi_in_thread(self.bot.wsgi)
        self.sender = http_sender(self.server.url)
        self.driver = SlackDriver(self.sender, SIGNING_SECRET, team_id=fake.team_id, api_app_id=fake.api_app_id)
        self.next_snapshot = FIRST_SERVER
        self.creates_sent = 0
        self.requests_made = 0

    def close(self) -> None:
        self.sender.close()  # type: ignore[attr-defined]
        self.server.stop()
        self.bot.core.wait_idle(10)
        self.bot.close()

    def busy_lines(self) -> int:
        posts = self.fake.calls_to("chat.postMessage")
        return len([c for c in posts if c.args.get("channel") == APPROVALS and "busy-" in str(c.args.get("text"))])

    def click_to_post(self) -> float:
        """Ask a restore, wait for its card, click Approve as someone else: seconds until VPS.org had the POST."""
        snapshot_id, self.next_snapshot = self.next_snapshot, self.next_snapshot + 1
        asked = self.driver.command(f"restore {snapshot_id}", user_id=REQUESTER, channel_id=OPS)
        if asked.status != 200:
            raise RuntimeError(f"the restore request was answered HTTP {asked.status}")
        self.requests_made += 1
        request_id = self.requests_made  # a fresh database: the restore requests are numbered from 1
        found: list[str] = []

        def card_posted() -> bool:
            try:
                card_ts = self.bot.core.approvals.get(request_id).card_ts
            except NotFoundError:  # the command was acknowledged; its work has not stored the request yet
                return False
            found[:] = [card_ts] if card_ts else []
            return bool(found)

        _wait(card_posted, f"the card of the restore of {snapshot_id}")
        card = self.fake.message(APPROVALS, found[0])
        path = f"/snapshots/{snapshot_id}/restore/"
        clicked = time.monotonic()
        if self.driver.click(card, "Approve", user_id=APPROVER).status != 200:
            raise RuntimeError("the click was not acknowledged")
        posts: list[float] = []

        def posted() -> bool:
            posts[:] = [r.received_at for r in self.sim.requests if r.method == "POST" and r.path.endswith(path)]
            return bool(posts)

        _wait(posted, f"the restore POST of {snapshot_id}")
        return posts[0] - clicked


def _busy_load(setup: _Setup, stop: threading.Event) -> None:
    """`/snapshot create` on the busy servers, round robin, CREATES_PER_SECOND: a line each to the channel."""
    sent = 0
    started = time.monotonic()
    while not stop.is_set():
        server_id = setup.busy_servers[sent % len(setup.busy_servers)]
        setup.driver.command(f"create {server_id} busy-{sent}", user_id=BUSY_USER, channel_id=OPS)
        sent += 1
        setup.creates_sent = sent
        stop.wait(max(0.0, started + sent / CREATES_PER_SECOND - time.monotonic()))


def measure(clicks: int, pairs: int, beyond_threads: int) -> tuple[list[float], list[float]]:
    """(idle click → POST times, busy ones): `pairs` × (idle phase, busy phase) of `clicks` each; busy clicks
    start once more lines wait for the channel than the bot has worker threads, plus `beyond_threads`."""
    idle: list[float] = []
    busy: list[float] = []
    with FakeSlack() as fake, tempfile.TemporaryDirectory(prefix="bench-approval-") as tmp:
        setup = _Setup(fake, tmp, clicks * pairs)
        queue_depth = setup.bot.settings.worker_threads + beyond_threads
        try:
            for _ in range(pairs):
                _wait(lambda: setup.bot.slack.notifier.wait_idle(0), "the channel to be idle", timeout=300)
                for _ in range(clicks):
                    idle.append(setup.click_to_post())
                    _wait(lambda: setup.bot.slack.notifier.wait_idle(0), "the click's lines to be posted")
                stop = threading.Event()
                load = threading.Thread(target=_busy_load, args=(setup, stop), name="bench-busy", daemon=True)
                load.start()
                try:
                    _wait(
                        lambda: setup.creates_sent - setup.busy_lines() >= queue_depth,
                        f"{queue_depth} lines waiting for the approvals channel",
                        timeout=120,
                    )
                    busy.extend(setup.click_to_post() for _ in range(clicks))
                finally:
                    stop.set()
                    load.join(10)
        finally:
            setup.close()
    return idle, busy


def run(scale: Scale) -> list[Row]:
    clicks = max(2, scale.answer_iterations)
    pairs = 2 if scale.name == "full" else 1
    beyond = 4 if scale.name != "smoke" else -12  # smoke: 4 lines waiting is enough to show it runs
    load = (
        f"{clicks * pairs} clicks per side, safety snapshot off, default worker threads; busy: "
        f"{CREATES_PER_SECOND:g} creates/s each posting a line there, clicks once lines waiting > threads"
        f"{beyond:+d}{scale.label}"
    )
    try:
        idle, busy = measure(clicks, pairs, beyond)
    except Exception as error:
        log.exception("%s failed", WHAT)
        return [error_row(WHAT, load, error)]
    p99_busy, p99_idle = percentile(busy, 99), percentile(idle, 99)
    return [
        Row(
            WHAT,
            load,
            f"p50 {ms(percentile(busy, 50))} · p99 {ms(p99_busy)} · max {ms(max(busy))}",
            f"channel idle: p50 {ms(percentile(idle, 50))} · p99 {ms(p99_idle)}",
            ratio(p99_busy, p99_idle),
            f"p99 < {TARGET_P99 * 1000:.0f} ms whatever the channel's traffic",
            verdict(p99_busy < TARGET_P99),
        )
    ]

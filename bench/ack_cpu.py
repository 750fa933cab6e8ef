"""What an acknowledgement and its post-ack work cost in CPU, in-process: `python -m bench.ack_cpu [N]`.

Latency on a shared machine moves with everyone else's load; CPU time hardly does. This drives N signed
`/snapshot list` commands straight into the WSGI app (devkit.senders.wsgi_sender: no sockets, one request at a
time) and reads the process's CPU clock, three ways:

- **ack path**: the bot with its background pool swallowed (nothing queued runs), against the bare Bolt app
  (bench/bare_bolt.py). Both include the driver's own signing and request building, which is the same for both.
- **with the answer**: the bot as it runs, until every command has been answered on its response_url; minus the
  ack path, that is the post-ack work (VPS.org calls through the in-process simulator, the audit row, rendering,
  redaction, the post to Slack) that competes with new acknowledgements for the interpreter.
- **garbage collector**: CPU spent in collections, by generation, while the answers were made (gc.callbacks,
  thread CPU clock), before and after `bot.server.settle_heap()` froze the start-up heap.

Not part of the table (`python -m bench`): it is the tool the ack row's "what costs" was found with (issue 19 §3).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from bench.procs import wait_until
from devkit.fake_slack import FakeSlack
from devkit.local import local_env
from devkit.simulator import VpsSimulator
from devkit.slack_driver import SlackDriver, wsgi_sender

SIGNING_SECRET = "bench-signing-secret-0123456789"
CHANNEL = "C0BENCH"
WARMUP = 10


class GcMeter:
    """CPU seconds and count of the cyclic collector's runs, by generation, while installed."""

    def __init__(self) -> None:
        self.runs = [0, 0, 0]
        self.cpu = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()  # a collection runs in the thread that triggered it
        else:
            generation = info["generation"]
            self.runs[generation] += 1
            self.cpu[generation] += time.thread_time() - self._started

    def __enter__(self) -> GcMeter:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> str:
        return ", ".join(f"gen{g}: {self.runs[g]} runs {self.cpu[g] * 1000:.0f} ms" for g in range(3))


def _swallow(_fn: Callable[..., Any], /, *_args: Any, **_kwargs: Any) -> Future[Any]:
    done: Future[Any] = Future()
    done.set_result(None)
    return done


def _drive(app: Any, fake: FakeSlack, count: int, answered: Callable[[], int] | None) -> float:
    """CPU seconds of this process per command, for `count` commands (and their answers, if `answered`)."""
    driver = SlackDriver(wsgi_sender(app), SIGNING_SECRET, team_id=fake.team_id, api_app_id=fake.api_app_id)
    users = [f"U0LOAD{n:03d}" for n in range(50)]

    def send(n: int) -> None:
        user = users[n % len(users)]
        response_url = fake.new_response_url(channel=CHANNEL, user_id=user)
        driver.command("list", user_id=user, channel_id=CHANNEL, response_url=response_url)

    before = answered() if answered is not None else 0
    for n in range(WARMUP):
        send(n)
    if answered is not None:
        wait_until(lambda: answered() >= before + WARMUP, 60, "warm-up answers")
        before += WARMUP
    started = time.process_time()
    for n in range(count):
        send(n)
    if answered is not None:
        wait_until(lambda: answered() >= before + count, 120, f"{count} answers", interval=0.01)
    return (time.process_time() - started) / count


def measure(count: int) -> list[str]:
    from bot.config import load_settings
    from bot.server import settle_heap
    from bot.wiring import build_bot

    lines = []
    with FakeSlack() as fake, tempfile.TemporaryDirectory(prefix="bench-ack-cpu-") as tmp:
        os.environ.update(
            {"SLACK_BOT_TOKEN": fake.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url}
        )
        from bench.bare_bolt import create_wsgi_app

        bare = _drive(create_wsgi_app(), fake, count, None)

        def answers() -> int:
            return len(fake.calls_to("response_url"))

        sim = VpsSimulator(completion_delay=0)
        env = local_env(
            fake, sim, f"sqlite:///{Path(tmp) / 'bot.db'}", signing_secret=SIGNING_SECRET, LOG_LEVEL="WARNING"
        )
        bot = build_bot(load_settings(env, dotenv_path=None), vps_transport=sim.transport())
        if bot.core.db.needs_upgrade():
            bot.core.db.upgrade()
        try:
            real_submit = bot.core.work.submit
            bot.core.work.submit = _swallow  # type: ignore[method-assign]
            ack_only = _drive(bot.wsgi, fake, count, None)
            bot.core.work.submit = real_submit  # type: ignore[method-assign]
            gc.collect()
            with GcMeter() as unfrozen:
                answered = _drive(bot.wsgi, fake, count, answers)
            settle_heap()
            with GcMeter() as frozen:
                answered_frozen = _drive(bot.wsgi, fake, count, answers)
            gc.unfreeze()
        finally:
            bot.core.wait_idle(30)
            bot.close()
    lines.append(f"ack path, CPU per command: bot {ack_only * 1000:.2f} ms, bare Bolt {bare * 1000:.2f} ms")
    lines.append(
        f"with the answer: {answered * 1000:.2f} ms per command (post-ack work {(answered - ack_only) * 1000:.2f} ms)"
    )
    lines.append(f"garbage collector over {count} answered commands: {unfrozen.summary()}")
    lines.append(
        f"… after settle_heap() froze the start-up heap: {frozen.summary()} "
        f"({answered_frozen * 1000:.2f} ms per command with the answer)"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ack_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=300, help="commands per measurement (300)")
    args = parser.parse_args()
    for line in measure(args.count):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

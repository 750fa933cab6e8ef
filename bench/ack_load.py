"""Benchmarks 1 and 5: acknowledgement under load, and the serve workers' memory around it.

The real `python -m bot serve` (gunicorn, gthread) runs as a subprocess on loopback, with Slack's Web API played
by FakeSlack and VPS.org by the simulator, both served over HTTP from this process. Many clients fire signed
`/snapshot list` commands at once while every VPS.org call takes seconds; the acknowledgement must not wait
for any of it. The baseline is a bare Bolt app that only acks (bench/bare_bolt.py) on the same gunicorn
settings, loaded the same way.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import ServerProcess, child_env, free_port, python, wait_until
from bench.scale import Scale
from bench.table import Row, error_row, mb, ms, percentile, ratio, verdict
from bot.devtools.fake_slack import FakeSlack
from bot.devtools.local import local_env
from bot.devtools.slack_driver import SlackDriver, http_sender
from bot.vps import simulator

log = logging.getLogger("bench")

SIGNING_SECRET = "bench-signing-secret-0123456789"
CHANNEL = "C0BENCH"
ACK_MAX_SECONDS = 1.0
ACK_P99_FACTOR = 1.5
RSS_LIMIT_KB = 150 * 1024
RSS_GROWTH_LIMIT = 0.10
WARMUP_HELP = 20
WARMUP_LIST = 4


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds to an HTTP 200, one per 200 answer
    statuses: Counter[str] = field(default_factory=Counter)  # everything that was not a 200
    wall: float = 0.0

    @property
    def non_200(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        if not self.latencies:
            return "no 200 answers"
        return (
            f"p50 {ms(percentile(self.latencies, 50))} · p99 {ms(percentile(self.latencies, 99))} · "
            f"max {ms(max(self.latencies))}"
        )


@dataclass
class ServerRun:
    load: LoadResult
    fresh_rss_kb: dict[int, int]
    idle_rss_kb: dict[int, int]
    after_rss_kb: dict[int, int]
    answered: int = 0
    answer_wall: float = 0.0


def fire(driver: SlackDriver, total: int, clients: int, text: str) -> LoadResult:
    """`total` commands from `clients` concurrent threads; time each until its HTTP answer."""
    result = LoadResult()
    lock = threading.Lock()
    users = [f"U0LOAD{n:03d}" for n in range(clients)]

    def one(n: int) -> None:
        try:
            response = driver.command(text, user_id=users[n % clients], channel_id=CHANNEL)
        except Exception as error:  # a timeout or reset is a failed acknowledgement, not a bench crash
            with lock:
                result.statuses[type(error).__name__] += 1
            return
        with lock:
            if response.status == 200:
                result.latencies.append(response.elapsed)
            else:
                result.statuses[str(response.status)] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="client") as pool:
        list(pool.map(one, range(total)))
    result.wall = time.perf_counter() - started
    return result


def _answers(fake: FakeSlack) -> int:
    return len(fake.calls_to("response_url"))


def _run_server(
    argv: list[str],
    env: dict[str, str],
    workdir: Path,
    name: str,
    fake: FakeSlack,
    scale: Scale,
    *,
    before_load: Callable[[], None] = lambda: None,
    expect_answers: bool,
) -> ServerRun:
    port = free_port()
    env = child_env({**env, "PORT": str(port)})
    auth_calls = len(fake.calls_to("auth.test"))
    with ServerProcess(argv, env, workdir, workdir / f"{name}.log", port) as server:
        server.wait_healthy(timeout=90)
        # Each worker builds its Bolt app after the fork, and the app checks its token (auth.test) as it
        # does: once every worker has, every worker is ready to take requests.
        wait_until(
            lambda: len(fake.calls_to("auth.test")) >= auth_calls + scale.workers,
            60,
            f"{scale.workers} {name} workers checking their Slack token",
        )
        wait_until(lambda: len(server.workers()) == scale.workers, 30, f"{scale.workers} {name} workers")
        fresh = server.worker_rss_kb()
        sender = http_sender(server.url, timeout=30.0)
        driver = SlackDriver(
            sender,
            SIGNING_SECRET,
            team_id=fake.team_id,
            api_app_id=fake.api_app_id,
            response_url_factory=fake.new_response_url,
        )
        try:
            # Warm-up: first requests import and compile lazily (Bolt's parsers, SQL statement cache, HTTP
            # pools); "idle" below is a worker that has served a few requests and has nothing to do.
            fire(driver, WARMUP_HELP, 10, "help")
            answered_before = _answers(fake)
            if expect_answers:
                fire(driver, WARMUP_LIST, WARMUP_LIST, "list")
                wait_until(lambda: _answers(fake) >= answered_before + WARMUP_LIST, 60, f"{name} warm-up answers")
            idle = server.worker_rss_kb()

            before_load()
            answered_before = _answers(fake)
            load = fire(driver, scale.ack_requests, scale.ack_clients, "list")
            run = ServerRun(load=load, fresh_rss_kb=fresh, idle_rss_kb=idle, after_rss_kb={})
            if expect_answers:
                # Every acknowledged command still owes its user an answer: wait for all of them (the
                # simulator is slow on purpose), so "after the load" means after all of its work.
                calls_per_list = 2
                capacity = scale.workers * 16  # SNAPSHOT_WORKER_THREADS default: background threads per worker
                estimate = scale.ack_requests * calls_per_list * scale.ack_vps_latency / capacity
                started = time.perf_counter()
                try:
                    wait_until(
                        lambda: _answers(fake) >= answered_before + len(load.latencies),
                        estimate * 3 + 60,
                        f"{name}: answers to {len(load.latencies)} acknowledged commands",
                        interval=0.2,
                    )
                except TimeoutError:
                    log.warning("%s: not every command was answered; see %s", name, server.log_path)
                run.answered = _answers(fake) - answered_before
                run.answer_wall = time.perf_counter() - started + load.wall
            run.after_rss_kb = server.worker_rss_kb()
        finally:
            sender.close()  # type: ignore[attr-defined]
    return run


def _env(fake: FakeSlack, sim: simulator.VpsSimulator, vps_url: str, workdir: Path, scale: Scale) -> dict[str, str]:
    return {
        **local_env(fake, sim, f"sqlite:///{workdir / 'bot.db'}", vps_url=vps_url, signing_secret=SIGNING_SECRET),
        "VPS_TIMEOUT_SECONDS": str(max(10.0, scale.ack_vps_latency * 3)),
        "WEB_CONCURRENCY": str(scale.workers),
        "BENCH_THREADS": str(scale.threads),
        "LOG_LEVEL": "WARNING",
    }


def run(scale: Scale) -> list[Row]:
    load_text = (
        f"{scale.ack_requests} × /snapshot list, {scale.ack_clients} clients, "
        f"VPS.org {scale.ack_vps_latency:g} s/call, {scale.workers}×{scale.threads} gthread{scale.label}"
    )
    try:
        baseline, bot = _measure(scale)
    except Exception as error:
        log.exception("acknowledgement benchmark failed")
        return [error_row("1. ack under load", load_text, error)]
    rows = [_ack_row(load_text, baseline, bot), _answered_row(scale, bot)]
    rows += _footprint_rows(scale, baseline, bot)
    return rows


def _measure(scale: Scale) -> tuple[ServerRun, ServerRun]:
    sim = simulator.VpsSimulator(completion_delay=5.0)
    vps_url, stop_sim = simulator.start_in_thread(sim)
    try:
        with FakeSlack() as fake, tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
            workdir = Path(tmp)
            env = _env(fake, sim, vps_url, workdir, scale)
            log.info("ack: baseline (bare Bolt app)")
            baseline = _run_server(
                [python(), "-m", "bench.bare_bolt"], env, workdir, "bare-bolt", fake, scale, expect_answers=False
            )
            log.info("ack: the bot (python -m bot serve)")

            def slow_vps() -> None:
                sim.faults.latency = scale.ack_vps_latency

            bot = _run_server(
                [python(), "-m", "bot", "serve", "--workers", str(scale.workers), "--threads", str(scale.threads)],
                env,
                workdir,
                "bot-serve",
                fake,
                scale,
                before_load=slow_vps,
                expect_answers=True,
            )
            return baseline, bot
    finally:
        sim.faults.latency = 0
        stop_sim()


def _ack_row(load_text: str, baseline: ServerRun, bot: ServerRun) -> Row:
    lat, base = bot.load.latencies, baseline.load.latencies
    if not lat or not base:
        return Row("1. ack under load", load_text, bot.load.summary(), baseline.load.summary(), "-", "-", "FAIL")
    p99, base_p99 = percentile(lat, 99), percentile(base, 99)
    failures = f"non-200: {bot.load.non_200}" + (f" {dict(bot.load.statuses)}" if bot.load.non_200 else "")
    ok = p99 <= ACK_P99_FACTOR * base_p99 and max(lat) < ACK_MAX_SECONDS and bot.load.non_200 == 0
    return Row(
        "1. ack under load (time to HTTP 200)",
        load_text,
        f"{bot.load.summary()}; {failures}",
        f"bare Bolt: {baseline.load.summary()}; non-200: {baseline.load.non_200}",
        ratio(p99, base_p99) + " (p99)",
        f"p99 ≤ {ACK_P99_FACTOR}× baseline, max < {ACK_MAX_SECONDS:g} s, 0 non-200",
        verdict(ok),
    )


def _answered_row(scale: Scale, bot: ServerRun) -> Row:
    acked = len(bot.load.latencies)
    return Row(
        "1b. answers after the load",
        f"the {acked} acknowledged lists, 2 VPS.org calls each at {scale.ack_vps_latency:g} s",
        f"{bot.answered}/{acked} answered, last after {bot.answer_wall:.0f} s",
        "-",
        "-",
        "every acknowledged command answered",
        verdict(bot.answered >= acked > 0),
    )


def _footprint_rows(scale: Scale, baseline: ServerRun, bot: ServerRun) -> list[Row]:
    fresh, idle, after = max(bot.fresh_rss_kb.values()), max(bot.idle_rss_kb.values()), max(bot.after_rss_kb.values())
    base_idle = max(baseline.idle_rss_kb.values())
    growth = max(bot.after_rss_kb[pid] / bot.idle_rss_kb[pid] - 1 for pid in bot.after_rss_kb if pid in bot.idle_rss_kb)
    return [
        Row(
            "5a. serve worker RSS, idle",
            f"{scale.workers} workers, max shown; idle after {WARMUP_HELP} help + {WARMUP_LIST} list",
            f"{mb(idle)} (fresh from start: {mb(fresh)})",
            f"bare Bolt worker {mb(base_idle)}",
            ratio(idle, base_idle),
            "< 150 MB",
            verdict(idle < RSS_LIMIT_KB),
        ),
        Row(
            "5b. serve worker RSS, after the load",
            f"after {scale.ack_requests} lists answered{scale.label}",
            f"{mb(after)} (growth {growth * 100:+.1f}% on the worst worker)",
            f"idle {mb(idle)}",
            ratio(after, idle),
            "< 150 MB, growth < 10%",
            verdict(after < RSS_LIMIT_KB and growth < RSS_GROWTH_LIMIT),
        ),
    ]

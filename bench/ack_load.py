"""Benchmarks 1 and 5: acknowledgement under load, and the serve workers' memory around it.

The real `python -m bot serve` (gunicorn, gthread) runs as a subprocess on loopback, with Slack's Web API played
by FakeSlack (served over HTTP from this process) and VPS.org by the simulator. Many clients fire signed
`/snapshot list` commands at once while every VPS.org call takes seconds; the acknowledgement must not wait
for any of it. The baseline is a bare Bolt app that only acks (bench/bare_bolt.py) on the same gunicorn
settings and the same listener executor, loaded the same way.

VPS.org is simulated in a process of its own (bench/vps_process.py), so the process timing the acks does no
work for the bot's background threads while it times. Both servers run side by side for the whole benchmark and
take the load in turns, several rounds, the order swapped every round (bare, bot, bot, bare, …), so drift in the
shared machine's load falls on both alike. Each bot round waits for all of its answers before the next round
starts. The verdict is on the median of the per-round p99 ratios; their range is reported with it, since one
round on a shared machine is noise. Workers' CPU time per command is reported too: it hardly moves with the
machine's other load.

The bot's workers' RSS is read after each round's answers; growth (row 5b) is judged from the end of round 1,
the worker's first burst and one-time warm-up, to the end of the last round.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.footprint import WARMUP_HELP, WARMUP_LIST, footprint_rows, worst_growth
from bench.load_gen import fire_from_process
from bench.procs import ServerProcess, child_env, free_port, python, wait_until
from bench.scale import Scale
from bench.table import Row, error_row, ms, percentile, verdict
from bench.vps_process import VpsProcess
from devkit.fake_slack import FakeSlack
from devkit.local import local_env
from devkit.slack_driver import SlackDriver, http_sender

log = logging.getLogger("bench")

SIGNING_SECRET = "bench-signing-secret-0123456789"
VPS_TOKEN = "vps_bench_token_0123456789"
CHANNEL = "C0BENCH"
ACK_MAX_SECONDS = 1.0
ACK_P99_FACTOR = 1.5
FAST_VPS_SECONDS = 0.05
# Regression line beside the loose goal: the workers' CPU time per command, from its request until its answer is
# posted (the path a request takes, ack and post-ack work), hardly moves with the shared machine's load (unlike a
# latency), so a real slowdown crosses it where a p99 would not. Recorded with `--only ack --quick` after the list
# pages became plain dicts (issue 27 §6): 6.8–8.7 ms in three runs, 11.0 ms with a test suite beside it
# (before: 9.9–14.8 ms).
RECORDED_ACK_CPU_SECONDS = 0.008
RECORDED_ON = "on 8 Dec 2026"
ACK_CPU_REGRESSION = 2.0


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds to an HTTP 200, one per 200 answer
    statuses: Counter[str] = field(default_factory=Counter)  # everything that was not a 200
    acked_urls: set[str] = field(default_factory=set)  # response_urls of the commands answered 200
    wall: float = 0.0
    cpu: float = 0.0  # CPU seconds the server's workers used while the load ran
    cpu_answered: float = 0.0  # … from the load's start until every acknowledged command was answered (bot)

    @property
    def non_200(self) -> int:
        return sum(self.statuses.values())

    def add(self, other: LoadResult) -> None:
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.acked_urls |= other.acked_urls
        self.wall += other.wall
        self.cpu += other.cpu
        self.cpu_answered += other.cpu_answered

    def cpu_per_request(self, *, answered: bool = False) -> float:
        sent = len(self.latencies) + self.non_200
        return (self.cpu_answered if answered else self.cpu) / sent if sent else 0.0

    def summary(self) -> str:
        if not self.latencies:
            return "no 200 answers"
        return (
            f"p50 {ms(percentile(self.latencies, 50))} · p99 {ms(percentile(self.latencies, 99))} · "
            f"max {ms(max(self.latencies))}"
        )


@dataclass
class ServerRun:
    load: LoadResult  # every round's requests together
    rounds: list[LoadResult]
    fresh_rss_kb: dict[int, int]
    idle_rss_kb: dict[int, int]
    after_rss_kb: dict[int, int]
    answered: int = 0  # acknowledged commands whose answer arrived
    answer_wall: float = 0.0  # the slowest round, from its first command to its last answer
    round_rss_kb: list[dict[int, int]] = field(default_factory=list)  # after each round's answers (bot)


def fire(driver: SlackDriver, total: int, clients: int, text: str, fake: FakeSlack | None = None) -> LoadResult:
    """`total` commands from `clients` concurrent threads; time each until its HTTP answer."""
    result = LoadResult()
    lock = threading.Lock()
    users = [f"U0LOAD{n:03d}" for n in range(clients)]

    def one(n: int) -> None:
        user = users[n % clients]
        url = fake.new_response_url(channel=CHANNEL, user_id=user) if fake is not None else None
        try:
            response = driver.command(text, user_id=user, channel_id=CHANNEL, response_url=url)
        except Exception as error:  # a timeout or reset is a failed acknowledgement, not a bench crash
            with lock:
                result.statuses[type(error).__name__] += 1
            return
        with lock:
            if response.status == 200:
                result.latencies.append(response.elapsed)
                if url is not None:
                    result.acked_urls.add(url)
            else:
                result.statuses[str(response.status)] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="client") as pool:
        list(pool.map(one, range(total)))
    result.wall = time.perf_counter() - started
    return result


def _answers(fake: FakeSlack) -> int:
    return len(fake.calls_to("response_url"))


def _answered(fake: FakeSlack, urls: set[str]) -> int:
    """How many of `urls` have been posted to: answers to those commands, and to no others."""
    return len(urls & {str(call.args.get("_url")) for call in fake.calls_to("response_url")})


@dataclass
class _Served:
    name: str
    server: ServerProcess
    driver: SlackDriver
    fresh_rss_kb: dict[int, int]
    idle_rss_kb: dict[int, int] = field(default_factory=dict)
    rounds: list[LoadResult] = field(default_factory=list)
    round_rss_kb: list[dict[int, int]] = field(default_factory=list)
    answered: int = 0
    answer_wall: float = 0.0


def _start(
    stack: contextlib.ExitStack,
    argv: list[str],
    env: dict[str, str],
    workdir: Path,
    name: str,
    fake: FakeSlack,
    scale: Scale,
) -> _Served:
    port = free_port()
    auth_calls = len(fake.calls_to("auth.test"))
    server = stack.enter_context(
        ServerProcess(argv, child_env({**env, "PORT": str(port)}), workdir, workdir / f"{name}.log", port)
    )
    server.wait_healthy(timeout=90)
    # Each worker builds its Bolt app after the fork, and the app checks its token (auth.test) as it does:
    # once every worker has, every worker is ready to take requests.
    wait_until(
        lambda: len(fake.calls_to("auth.test")) >= auth_calls + scale.workers,
        60,
        f"{scale.workers} {name} workers checking their Slack token",
    )
    wait_until(lambda: len(server.workers()) == scale.workers, 30, f"{scale.workers} {name} workers")
    fresh = server.worker_rss_kb()
    sender = http_sender(server.url, timeout=30.0)
    stack.callback(sender.close)  # type: ignore[attr-defined]
    driver = SlackDriver(
        sender,
        SIGNING_SECRET,
        team_id=fake.team_id,
        api_app_id=fake.api_app_id,
        response_url_factory=fake.new_response_url,
    )
    return _Served(name, server, driver, fresh)


def _warm_up(served: _Served, fake: FakeSlack, *, expect_answers: bool) -> None:
    """First requests import and compile lazily (Bolt's parsers, SQL statement cache, HTTP pools); "idle" is
    a worker that has served a few requests and has nothing to do."""
    fire(served.driver, WARMUP_HELP, 10, "help")
    if expect_answers:
        answered_before = _answers(fake)
        fire(served.driver, WARMUP_LIST, WARMUP_LIST, "list")
        wait_until(lambda: _answers(fake) >= answered_before + WARMUP_LIST, 60, f"{served.name} warm-up answers")
    served.idle_rss_kb = served.server.worker_rss_kb()


def fire_from_own_process(served: _Served, fake: FakeSlack, total: int, clients: int, workdir: Path) -> LoadResult:
    """`total` signed `/snapshot list` from `clients` threads of a separate process (bench/load_gen.py)."""
    users = [f"U0LOAD{n:03d}" for n in range(clients)]
    requests = [
        {"user": users[n % clients], "response_url": fake.new_response_url(channel=CHANNEL, user_id=users[n % clients])}
        for n in range(total)
    ]
    job = {
        "url": served.server.url,
        "signing_secret": SIGNING_SECRET,
        "team_id": fake.team_id,
        "api_app_id": fake.api_app_id,
        "clients": clients,
        "text": "list",
        "channel": CHANNEL,
        "requests": requests,
    }
    answer = fire_from_process(job, workdir)
    return LoadResult(
        latencies=list(answer["latencies"]),
        statuses=Counter(answer["statuses"]),
        acked_urls=set(answer["acked_urls"]),
        wall=float(answer["wall"]),
    )


def _load_round(
    served: _Served, fake: FakeSlack, scale: Scale, workdir: Path, *, expect_answers: bool, vps_latency: float
) -> LoadResult:
    cpu_before = served.server.worker_cpu_seconds()
    load = fire_from_own_process(served, fake, scale.ack_requests, scale.ack_clients, workdir)
    load.cpu = served.server.worker_cpu_seconds() - cpu_before
    served.rounds.append(load)
    if not expect_answers:
        return load
    # Every acknowledged command still owes its user an answer: wait for all of them (the simulator is slow
    # on purpose) before the next round, so no round runs while another's work is still in flight.
    calls_per_list = 2
    capacity = scale.workers * 16  # SNAPSHOT_WORKER_THREADS default: background threads per worker
    estimate = len(load.acked_urls) * calls_per_list * vps_latency / capacity
    started = time.perf_counter()
    try:
        wait_until(
            lambda: _answered(fake, load.acked_urls) >= len(load.acked_urls),
            estimate * 3 + 60,
            f"{served.name}: answers to {len(load.acked_urls)} acknowledged commands",
            interval=0.2,
        )
    except TimeoutError:
        log.warning("%s: not every command was answered; see %s", served.name, served.server.log_path)
    served.answered += _answered(fake, load.acked_urls)
    load.cpu_answered = served.server.worker_cpu_seconds() - cpu_before
    served.answer_wall = max(served.answer_wall, time.perf_counter() - started + load.wall)
    served.round_rss_kb.append(served.server.worker_rss_kb())
    return load


def _result(served: _Served, rounds: list[LoadResult] | None = None) -> ServerRun:
    """The run over `rounds` (default: every round), with the server's memory readings."""
    rounds = served.rounds if rounds is None else rounds
    total = LoadResult()
    for load in rounds:
        total.add(load)
    run = ServerRun(total, rounds, served.fresh_rss_kb, served.idle_rss_kb, served.server.worker_rss_kb())
    run.answered, run.answer_wall = served.answered, served.answer_wall
    run.round_rss_kb = served.round_rss_kb
    return run


def _env(fake: FakeSlack, vps: VpsProcess, workdir: Path, scale: Scale) -> dict[str, str]:
    return {
        **local_env(fake, vps, f"sqlite:///{workdir / 'bot.db'}", vps_url=vps.url, signing_secret=SIGNING_SECRET),
        "VPS_TIMEOUT_SECONDS": str(max(10.0, scale.ack_vps_latency * 3)),
        "WEB_CONCURRENCY": str(scale.workers),
        "BENCH_THREADS": str(scale.threads),
        "LOG_LEVEL": "WARNING",
    }


def load_text(scale: Scale, vps_latency: float) -> str:
    return (
        f"{scale.ack_rounds} interleaved rounds × {scale.ack_requests} × /snapshot list, {scale.ack_clients} "
        f"clients in a process of their own, VPS.org {ms(vps_latency) if vps_latency < 1 else f'{vps_latency:g} s'}"
        f"/call, {scale.workers}×{scale.threads} gthread{scale.label}"
    )


def vps_latencies(scale: Scale) -> tuple[float, ...]:
    """Row 1 with VPS.org slow (the acks must not wait for it) and fast (its post-ack work then runs among them)."""
    return (scale.ack_vps_latency, FAST_VPS_SECONDS)


def run(scale: Scale) -> list[Row]:
    try:
        runs = _measure(scale)
    except Exception as error:
        log.exception("acknowledgement benchmark failed")
        return [error_row("1. ack under load", load_text(scale, scale.ack_vps_latency), error)]
    rows = []
    for n, latency in enumerate(vps_latencies(scale)):
        baseline, bot = runs[latency]
        what = "1. ack under load (time to HTTP 200)" if n == 0 else f"1a. ack under load, VPS.org {ms(latency)}"
        rows.append(_ack_row(what, load_text(scale, latency), baseline, bot))
    everything = runs[ALL_ROUNDS]
    rows.append(_answered_row(scale, everything[1]))
    rows += footprint_rows(scale, *everything)
    return rows


ALL_ROUNDS = -1.0  # the key of `_measure`'s result that holds every round of every latency


def _measure(scale: Scale) -> dict[float, tuple[ServerRun, ServerRun]]:
    """Per VPS.org latency, (bare, bot) over that latency's rounds; under ALL_ROUNDS, every round (memory rows)."""
    with (
        VpsProcess(VPS_TOKEN, completion_delay=5.0) as vps,
        FakeSlack() as fake,
        tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        env = _env(fake, vps, workdir, scale)
        log.info("ack: starting the bare Bolt app and the bot side by side")
        bare = _start(stack, [python(), "-m", "bench.bare_bolt"], env, workdir, "bare-bolt", fake, scale)
        serve = ["serve", "--workers", str(scale.workers), "--threads", str(scale.threads)]
        bot = _start(stack, [python(), "-m", "bot", *serve], env, workdir, "bot-serve", fake, scale)
        _warm_up(bare, fake, expect_answers=False)
        _warm_up(bot, fake, expect_answers=True)
        runs: dict[float, tuple[ServerRun, ServerRun]] = {}
        for latency in vps_latencies(scale):
            vps.set_latency(latency)
            rounds: dict[str, list[LoadResult]] = {bare.name: [], bot.name: []}
            for round_no in range(scale.ack_rounds):
                order = (bare, bot) if round_no % 2 == 0 else (bot, bare)
                for served in order:
                    log.info("ack: VPS.org %g s, round %d, %s", latency, round_no + 1, served.name)
                    load = _load_round(served, fake, scale, workdir, expect_answers=served is bot, vps_latency=latency)
                    rounds[served.name].append(load)
            runs[latency] = (_result(bare, rounds[bare.name]), _result(bot, rounds[bot.name]))
        runs[ALL_ROUNDS] = (_result(bare), _result(bot))
        return runs


def round_ratios(baseline: ServerRun, bot: ServerRun) -> list[float]:
    """Bot p99 ÷ bare p99, round by round (the two rounds of one round number ran back to back)."""
    return [
        percentile(mine.latencies, 99) / percentile(theirs.latencies, 99)
        for mine, theirs in zip(bot.rounds, baseline.rounds, strict=True)
        if mine.latencies and theirs.latencies
    ]


def _ack_row(what: str, load_text: str, baseline: ServerRun, bot: ServerRun) -> Row:
    lat = bot.load.latencies
    ratios = round_ratios(baseline, bot)
    if not lat or not ratios:
        return Row(what, load_text, bot.load.summary(), baseline.load.summary(), "-", "-", "FAIL")
    median_ratio = statistics.median(ratios)
    failures = f"non-200: {bot.load.non_200}" + (f" {dict(bot.load.statuses)}" if bot.load.non_200 else "")
    cpu = bot.load.cpu_per_request(answered=True)
    ok = (
        median_ratio <= ACK_P99_FACTOR
        and max(lat) < ACK_MAX_SECONDS
        and bot.load.non_200 == 0
        and cpu <= ACK_CPU_REGRESSION * RECORDED_ACK_CPU_SECONDS
    )
    return Row(
        what,
        load_text,
        f"all rounds: {bot.load.summary()}; {failures}; workers' CPU per command "
        f"{ms(bot.load.cpu_per_request())} during the load, {ms(bot.load.cpu_per_request(answered=True))} "
        "until answered",
        f"bare Bolt, all rounds: {baseline.load.summary()}; non-200: {baseline.load.non_200}; workers' CPU per "
        f"command {ms(baseline.load.cpu_per_request())}",
        f"{median_ratio:.2f}× median p99 ratio (rounds: {', '.join(f'{r:.2f}' for r in ratios)})",
        f"median p99 ratio ≤ {ACK_P99_FACTOR}×, max < {ACK_MAX_SECONDS:g} s, 0 non-200; regression line: workers' "
        f"CPU per command until answered ≤ {ms(ACK_CPU_REGRESSION * RECORDED_ACK_CPU_SECONDS)} "
        f"({ACK_CPU_REGRESSION:g}× the {ms(RECORDED_ACK_CPU_SECONDS)} recorded {RECORDED_ON})",
        verdict(ok),
    )


def _answered_row(scale: Scale, bot: ServerRun) -> Row:
    acked = len(bot.load.acked_urls)
    return Row(
        "1b. answers after the load",
        f"the {acked} acknowledged lists of {len(bot.rounds)} rounds, 2 VPS.org calls each at "
        f"{scale.ack_vps_latency:g} s",
        f"{bot.answered}/{acked} answered (answers to acknowledged commands only), "
        f"slowest round's last after {bot.answer_wall:.0f} s",
        "-",
        "-",
        "every acknowledged command answered",
        verdict(bot.answered >= acked > 0),
    )


__all__ = ["LoadResult", "ServerRun", "footprint_rows", "round_ratios", "run", "worst_growth"]

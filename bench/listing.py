"""Benchmark 7: a complete listing of a large account, and what the bot adds to the API's own page times.

VPS.org documents only `count`, `results` and `next`, so a listing is read one page after another. The API (a
process of its own, bench/listing_api.py: 100 snapshots a page, each page after a fixed latency, data shaped like
a real account) serves 10,000 and 50,000 snapshots. The bot's client (`VpsClient.list_snapshots()`: every page,
parsed into snapshots, the runaway bound checked) is timed against the bare fetch of the same pages (an httpx GET
per page, its JSON read only to find `next`) in interleaved rounds, each round timing both back to back (in
alternating order, so drift in the machine's load falls on both); the ratio is the median of the rounds' ratios.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time

import httpx

from bench.procs import stop_piped
from bench.scale import Scale
from bench.table import Row, error_row, verdict
from bot.vps.client import VpsClient

log = logging.getLogger("bench")

PAGE_SIZE = 100
PAGE_LATENCY = 0.02  # seconds per page: a quick API, so the bot's own share shows (at 100 ms it would be smaller)
TARGET = 1.10  # the bot adds < 10 % to the API's own page times
TOKEN = "vps_bench_listing_token"


class ListingApi:
    def __init__(self, snapshots: int, latency: float) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.listing_api", str(snapshots), str(PAGE_SIZE), str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        word, _, self.url = self._proc.stdout.readline().strip().partition(" ")
        if word != "ready":
            self.stop()
            raise RuntimeError(f"the listing API did not start (exit {self._proc.poll()})")

    def stop(self) -> None:
        stop_piped(self._proc)


def bare_fetch(url: str) -> tuple[float, int]:
    """(seconds, items): every page fetched one after another, reading only what finds the next one."""
    items = 0
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        started = time.perf_counter()
        next_url: str | None = url + "snapshots/"
        while next_url:
            page = client.get(next_url).json()
            items += len(page["results"])
            next_url = page["next"]
    return time.perf_counter() - started, items


def bot_fetch(url: str) -> tuple[float, int, bool]:
    """(seconds, snapshots, complete) for the bot's own client."""
    with VpsClient(url, TOKEN) as client:
        started = time.perf_counter()
        listed = client.list_snapshots()
        return time.perf_counter() - started, len(listed), listed.complete


def measure(snapshots: int, rounds: int) -> tuple[list[float], list[float], bool]:
    api = ListingApi(snapshots, PAGE_LATENCY)
    try:
        bare_fetch(api.url)  # warm both sides (imports, connection) before timing
        bare, bot, whole = [], [], True
        for round_number in range(rounds):
            for side in ("bare", "bot") if round_number % 2 == 0 else ("bot", "bare"):
                if side == "bare":
                    seconds, items = bare_fetch(api.url)
                    bare.append(seconds)
                    whole &= items == snapshots
                else:
                    seconds, count, complete = bot_fetch(api.url)
                    bot.append(seconds)
                    whole &= complete and count == snapshots
    finally:
        api.stop()
    return bot, bare, whole


def run(scale: Scale) -> list[Row]:
    rows = []
    for snapshots in scale.listing_sizes:
        pages = -(-snapshots // PAGE_SIZE)
        what = f"8. complete listing, {snapshots:,} snapshots"
        load = (
            f"{snapshots:,} snapshots on {snapshots // 5:,} servers, {pages} pages of {PAGE_SIZE}, API "
            f"{PAGE_LATENCY * 1000:.0f} ms a page (own process), {scale.listing_rounds} interleaved rounds"
            f"{scale.label}"
        )
        try:
            bot, bare, whole = measure(snapshots, scale.listing_rounds)
        except Exception as error:
            log.exception("listing benchmark failed")
            rows.append(error_row(what, load, error))
            continue
        bot_median, bare_median = statistics.median(bot), statistics.median(bare)
        ratios = [b / a for b, a in zip(bot, bare, strict=True)]
        median_ratio = statistics.median(ratios)
        rounds = ", ".join(f"{r:.3f}" for r in ratios)
        rows.append(
            Row(
                what,
                load,
                f"bot's client: {bot_median:.2f} s (median; per-round ratios {rounds}); "
                f"{'every snapshot listed' if whole else 'INCOMPLETE'}",
                f"bare page fetch: {bare_median:.2f} s ({bare_median / pages * 1000:.1f} ms a page)",
                f"{median_ratio:.2f}×",
                f"complete, and < {TARGET:.2f}× the API's own page times (median of the rounds' ratios)",
                verdict(whole and median_ratio < TARGET),
            )
        )
    return rows

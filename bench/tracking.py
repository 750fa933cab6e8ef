"""Benchmark 4: what following snapshots in progress costs VPS.org, per poll interval.

The number of snapshots being created and tracked grows (every server at its 5-snapshot limit, so 5 tracked
snapshots share a server); a poll should cost one filtered listing per server with tracked work (issue 27 §1),
whether it follows one snapshot or five on that server, and the same on an account ten times larger. The baseline
is one plain listing of the account's snapshots (all pages), what a poll cost before.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

from bench.scale import Scale
from bench.table import Row, error_row, ms, ratio, verdict
from bot.config import load_settings
from bot.usecases.context import Actor
from bot.vps.client import VpsClient
from bot.vps.models import SNAPSHOTS_PER_SERVER, ServerRef
from bot.wiring import build_bot
from devkit.fake_slack import FakeSlack
from devkit.local import local_env
from devkit.simulator import VpsSimulator

log = logging.getLogger("bench")

SIGNING_SECRET = "bench-signing-secret-0123456789"
CHANNEL = "C0BENCH"
POLLS = 3
ACTOR = Actor("U0BENCH01", "bench", "T0SNAPBOT", CHANNEL)


def account(total: int, in_progress: int) -> VpsSimulator:
    """`total` snapshots on servers at their limit; the first `in_progress` of them still being created."""
    sim = VpsSimulator(seed=False, completion_delay=3600)
    servers = -(-total // SNAPSHOTS_PER_SERVER)
    n = 0
    for s in range(servers):
        sim.add_server(20_000 + s, f"server-{s:03d}")
        for k in range(SNAPSHOTS_PER_SERVER):
            status = "in_progress" if n < in_progress else "completed"
            sim.add_snapshot(20_000 + s, f"snap-{s:03d}-{k}", status=status)
            n += 1
    return sim


def measure(total: int, in_progress: int) -> tuple[list[int], list[float], int]:
    """(API requests per poll, seconds per poll, requests for one plain listing)."""
    sim = account(total, in_progress)
    with FakeSlack() as fake, tempfile.TemporaryDirectory(prefix="bench-track-") as tmp:
        env = local_env(
            fake, sim, f"sqlite:///{Path(tmp) / 'bot.db'}", signing_secret=SIGNING_SECRET, LOG_LEVEL="WARNING"
        )
        bot = build_bot(load_settings(env, dotenv_path=None), vps_transport=sim.transport())
        try:
            tracker = bot.slack.cards
            from bot.usecases.snapshots import CreateResult

            with VpsClient(env["VPS_API_URL"], sim.token, transport=sim.transport()) as client:
                before = len(sim.requests)
                snapshots = client.list_snapshots()
                listing_requests = len(sim.requests) - before
            for snap in snapshots:
                if snap.status == "in_progress":
                    result = CreateResult(snap, ServerRef(snap.server.id, snap.server.name), "", f"op-{snap.id}")
                    tracker.track_create(ACTOR, result, message_channel=CHANNEL, message_ts=None)
            requests, seconds = [], []
            for _ in range(POLLS):
                before = len(sim.requests)
                started = time.perf_counter()
                tracker.poll_once(force=True)
                seconds.append(time.perf_counter() - started)
                requests.append(len(sim.requests) - before)
        finally:
            bot.core.wait_idle(10)
            bot.close()
    return requests, seconds, listing_requests


def run(scale: Scale) -> list[Row]:
    sizes = scale.tracking_sizes
    total = max(sizes)
    larger = 10 * total
    load = (
        f"{' / '.join(map(str, sizes))} snapshots in progress; account of {total} snapshots on "
        f"{-(-total // SNAPSHOTS_PER_SERVER)} servers, then of {larger}; API page size 100{scale.label}"
    )
    what = "4. tracking cost (VPS.org requests per poll)"
    try:
        results = [measure(total, k) for k in sizes]
        at_larger = measure(larger, total)
    except Exception as error:
        log.exception("tracking benchmark failed")
        return [error_row(what, load, error)]
    per_poll = [max(requests) for requests, _, _ in results]
    poll_time = [statistics.median(seconds) for _, seconds, _ in results]
    servers_with_work = [-(-k // SNAPSHOTS_PER_SERVER) for k in sizes]
    listing, larger_listing = results[-1][2], at_larger[2]
    as_designed = per_poll == servers_with_work and all(len(set(r)) == 1 for r, _, _ in results)
    unchanged = max(at_larger[0]) == per_poll[-1]
    return [
        Row(
            what,
            load,
            f"requests per poll {' / '.join(map(str, per_poll))} (servers with tracked work "
            f"{' / '.join(map(str, servers_with_work))}); {max(at_larger[0])} on the {larger}-snapshot account; "
            f"poll took {' / '.join(ms(t) for t in poll_time)}",
            f"one listing of all snapshots: {listing} requests ({larger_listing} on the larger account)",
            ratio(max(at_larger[0]), larger_listing),
            "one filtered listing per server with tracked work; unchanged on a 10× account",
            verdict(as_designed and unchanged),
        )
    ]

"""`python -m bench.soak [--minutes N] [--database-url URL]`: mixed traffic with random faults against `serve`.

Several users list, create, delete, request and approve restores through signed Slack requests to the real
server (gunicorn, two workers, PostgreSQL in a fresh schema), while VPS.org (the simulator) and Slack (FakeSlack)
fail at random: 5xx, 429, dropped connections after the change, HTML answers, calls slower than the client
timeout; Slack posts and updates answering 500/429/invalid_auth, expired response_urls. Everything on loopback.

At the end the report shows: requests sent, acknowledged within 3 s, crashes (non-200 answers, dead or restarted
workers), whether the audit chain verifies, how many mutating VPS.org calls are matched by an intent row and an
outcome row, duplicate destructive calls, and worker memory growth. Not part of `make test`: `make soak`.

Every count is defined in the report and the parts add up: "requests" are signed HTTP requests to the bot (a
delete is two: the command and the confirm click); "audit rows" are rows of the audit table, broken down by outcome
and by action (listing writes no row; a refused create writes one `refused` row and calls nothing); "VPS.org calls"
are the mutating requests the simulator received (POST create/restore, DELETE), reads not counted.

All along, a separate process holds `--slow-connections` (default 500) half-sent requests open against the
server, reopening each the bot drops (issue 24 §1).

Workers are never recycled here (GUNICORN_MAX_REQUESTS=0) so growth shows. `--tracemalloc-dir DIR` turns on the
in-worker `tracemalloc` reports (bot/memwatch.py) every `--tracemalloc-seconds`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from bench.procs import ServerProcess, child_env, free_port, python, wait_until
from bench.slow_connections import SlowClients
from bot.auditing import audit_log
from devkit.fake_slack import FakeSlack
from devkit.local import local_env
from devkit.simulator import VpsSimulator, start_in_thread
from devkit.slack_driver import SlackDriver, http_sender
from storage.audit import AuditLog
from storage.db import Database, normalize_url, safe_url

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SIGNING_SECRET = "soak-signing-secret-0123456789"
CHANNEL = "C0SOAK"
APPROVALS = "C0SOAKAPPR"
ACK_LIMIT = 3.0
SERVERS = (12345, 12346, 12347, 12348)
INTENTS = {"create.requested": "create", "delete.requested": "delete", "restore.executing": "restore"}
BUSY_WORDS = "busy right now"  # the ack of a request turned away (bot/slack/listeners/common.py BUSY)
_SNAPSHOT_ID = re.compile(r"#(\d{3,})")


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    acked_in_time: int = 0
    non_200: int = 0
    transport_errors: int = 0
    slowest_ack: float = 0.0
    by_kind: Counter[str] = field(default_factory=Counter)
    busy: Counter[str] = field(default_factory=Counter)  # acked "busy, nothing was done" (post-ack queue full)
    faults: Counter[str] = field(default_factory=Counter)

    def record(self, kind: str, seconds: float, status: int | None, busy: bool = False) -> None:
        with self.lock:
            self.sent += 1
            self.by_kind[kind] += 1
            if busy:
                self.busy[kind] += 1
            self.slowest_ack = max(self.slowest_ack, seconds)
            if status is None:
                self.transport_errors += 1
            elif status != 200:
                self.non_200 += 1
            elif seconds <= ACK_LIMIT:
                self.acked_in_time += 1


class User(threading.Thread):
    """One person clicking around: mostly reading, sometimes changing things, approving other people's asks."""

    def __init__(
        self,
        user_id: str,
        driver: SlackDriver,
        fake: FakeSlack,
        sim: VpsSimulator,
        stats: Stats,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=f"user-{user_id}", daemon=True)
        self.user_id = user_id
        self.driver = driver
        self.fake = fake
        self.sim = sim
        self.stats = stats
        self._halt = stop
        self.rng = random.Random(seed)
        self.index, self.users = 0, 1

    def run(self) -> None:
        actions = [
            (self.list, 35),
            (self.create, 15),
            (self.delete, 12),
            (self.restore, 8),
            (self.approve, 12),
            (self.pending, 10),
            (self.audit, 5),
            (self.home, 3),
        ]
        funcs, weights = zip(*actions, strict=True)
        while not self._halt.is_set():
            self.rng.choices(funcs, weights)[0]()
            self._halt.wait(self.rng.uniform(0.05, 0.4))

    def _send(self, kind: str, send: object) -> None:
        started = time.monotonic()
        busy = False
        try:
            response = send()  # type: ignore[operator]
            status: int | None = response.status
            busy = BUSY_WORDS in str(response.body)
        except Exception:
            status = None
        self.stats.record(kind, time.monotonic() - started, status, busy)

    def _command(self, kind: str, text: str) -> None:
        self._send(
            kind,
            lambda: self.driver.command(text, user_id=self.user_id, user_name=self.user_id.lower(), channel_id=CHANNEL),
        )

    def list(self) -> None:
        server = self.rng.choice((*SERVERS, None))
        self._command("list", f"list {server}" if server else "list")

    def create(self) -> None:
        self._command("create", f"create {self.rng.choice(SERVERS)} soak-{uuid.uuid4().hex[:10]}")

    def delete(self) -> None:
        # Only the soak's own snapshots, and each user its share, so users rarely race for the same one.
        ids = [i for i in self.sim.snapshot_ids() if i >= 900 and i % self.users == self.index]
        if not ids:
            return self.list()
        snapshot = str(self.rng.choice(ids))
        self._command("delete", f"delete {snapshot}")
        self._send(
            "delete-confirm",
            lambda: self.driver.block_action(
                "snapshot_delete_confirm", snapshot, user_id=self.user_id, channel_id=CHANNEL
            ),
        )

    def restore(self) -> None:
        self._command("restore", f"restore {self.rng.choice((801, 798, 805, 806, 807))}")

    def approve(self) -> None:
        cards = [
            m
            for m in self.fake.messages(APPROVALS)
            if m.thread_ts is None and "approval_approve" in str(m.blocks) and self.user_id not in m.text
        ]
        if not cards:
            return self.pending()
        card = self.rng.choice(cards)
        self._send(
            "approve",
            # By action id: with the safety snapshot on (the default) the button reads "Approve (safety snapshot
            # first)", and a click by the label "Approve" never left the driver (counted as "no answer").
            lambda: self.driver.click(card, "approval_approve", user_id=self.user_id, user_name=self.user_id.lower()),
        )

    def pending(self) -> None:
        self._command("pending", "pending")

    def audit(self) -> None:
        self._command("audit", "audit limit:10")

    def home(self) -> None:
        self._send("home", lambda: self.driver.app_home_opened(self.user_id))


class FaultInjector(threading.Thread):
    """Every couple of seconds, one random fault on VPS.org or Slack."""

    def __init__(
        self, sim: VpsSimulator, fake: FakeSlack, stats: Stats, stop: threading.Event, seed: int, vps_timeout: float
    ) -> None:
        super().__init__(name="faults", daemon=True)
        self.sim, self.fake, self.stats, self._halt = sim, fake, stats, stop
        self.rng = random.Random(seed)
        self.vps_timeout = vps_timeout

    def run(self) -> None:
        faults = [
            ("vps 5xx", lambda: self.sim.faults.fail_next(self.rng.choice((500, 502, 503)), times=2)),
            ("vps 5xx on POST/DELETE", lambda: self.sim.faults.fail_next(503, methods={"POST", "DELETE"})),
            ("vps 429", lambda: self.sim.faults.fail_next(429, retry_after=1, times=2)),
            ("vps reset after apply", lambda: self.sim.faults.drop_next(after_apply=True, methods={"POST", "DELETE"})),
            ("vps reset", lambda: self.sim.faults.drop_next()),
            ("vps non-JSON", lambda: self.sim.faults.non_json_next()),
            ("vps slower than timeout", self._slow),
            ("slack postMessage 500", lambda: self.fake.fail_next("chat.postMessage", status=500)),
            ("slack postMessage 429", lambda: self.fake.fail_next("chat.postMessage", status=429, retry_after=1)),
            ("slack invalid_auth", lambda: self.fake.fail_next("chat.postMessage", error="invalid_auth")),
            ("slack update 500", lambda: self.fake.fail_next("chat.update", status=500, times=2)),
            ("response_url expired", lambda: self.fake.fail_next("response_url", status=404, error="expired_url")),
        ]
        while not self._halt.wait(self.rng.uniform(1.0, 3.0)):
            name, inject = self.rng.choice(faults)
            inject()
            with self.stats.lock:
                self.stats.faults[name] += 1

    def _slow(self) -> None:
        self.sim.faults.latency = self.vps_timeout + 0.5
        self._halt.wait(self.rng.uniform(0.5, 1.5))
        self.sim.faults.latency = 0.0


# ---- the run ---------------------------------------------------------------------------------------------------
def fresh_schema(base_url: str) -> tuple[str, sa.Engine, str]:
    base = normalize_url(base_url)
    schema = f"soak_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    return url, admin, schema


def restarts(log_text: str) -> int:
    """Workers booted beyond the first ones: each one replaced a worker that died or was killed for hanging."""
    return max(0, log_text.count("Booting worker") - 2)


RSS_SAMPLES = 12  # worker RSS readings spread over the run, to tell steady growth from a one-off step


def run(
    minutes: float,
    database_url: str,
    users: int,
    seed: int,
    keep: bool,
    tracemalloc_dir: Path | None = None,
    tracemalloc_seconds: float = 300.0,
    slow_connections: int = 500,
) -> str:
    stats = Stats()
    url, admin, schema = fresh_schema(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    sim = VpsSimulator(completion_delay=3.0, restore_delay=5.0)
    vps_url, stop_vps = start_in_thread(sim)
    vps_timeout = 2.0
    try:
        with FakeSlack() as fake:
            port = free_port()
            env = child_env(
                {
                    **local_env(fake, sim, url, vps_url=vps_url, signing_secret=SIGNING_SECRET),
                    "VPS_TIMEOUT_SECONDS": str(vps_timeout),
                    "PORT": str(port),
                    "SNAPSHOT_APPROVAL_CHANNEL": APPROVALS,
                    "SNAPSHOT_POLL_SECONDS": "2",
                    "LOG_LEVEL": "WARNING",
                    "WEB_CONCURRENCY": "2",
                    "GUNICORN_MAX_REQUESTS": "0",  # never recycle: the point is to see whether a worker grows
                    **(
                        {
                            "SNAPSHOT_TRACEMALLOC_DIR": str(tracemalloc_dir),
                            "SNAPSHOT_TRACEMALLOC_SECONDS": str(tracemalloc_seconds),
                        }
                        if tracemalloc_dir
                        else {}
                    ),
                }
            )
            argv = [python(), "-m", "bot", "serve", "--workers", "2"]
            server = ServerProcess(argv, env, workdir, workdir / "serve.log", port)
            slow: SlowClients | None = None
            try:
                server.wait_healthy(60)
                wait_until(lambda: len(server.workers()) == 2, 30, "two workers")
                driver = SlackDriver(
                    http_sender(server.url),
                    SIGNING_SECRET,
                    team_id=fake.team_id,
                    api_app_id=fake.api_app_id,
                    response_url_factory=fake.new_response_url,
                )
                stop = threading.Event()
                threads: list[User | FaultInjector] = []
                for i in range(users):
                    user = User(f"U0SOAK{i}", driver, fake, sim, stats, stop, seed + i)
                    user.index, user.users = i, users
                    threads.append(user)
                # Memory is compared from after a short warm-up, so imports and first-use caches don't count.
                for thread in threads:
                    thread.start()
                stop.wait(min(20.0, minutes * 60 / 6))
                rss_start = server.worker_rss_kb()
                injector = FaultInjector(sim, fake, stats, stop, seed, vps_timeout)
                injector.start()
                if slow_connections:  # half-sent requests held open all along, by a process of their own
                    slow = SlowClients(port, slow_connections, workdir)
                started = time.monotonic()
                deadline = started + minutes * 60
                every = minutes * 60 / RSS_SAMPLES
                samples: list[tuple[float, dict[int, int]]] = [(0.0, rss_start)]
                while time.monotonic() < deadline and server.proc.poll() is None:
                    stop.wait(1.0)
                    if time.monotonic() - started >= every * len(samples):
                        with contextlib.suppress(OSError, KeyError):
                            samples.append((time.monotonic() - started, server.worker_rss_kb()))
                stop.set()
                if slow is not None:
                    slow.stop()
                for thread in [*threads, injector]:
                    thread.join(timeout=30)
                sim.faults.clear()
                rss_end = server.worker_rss_kb()
                alive = server.proc.poll() is None
                # Let queued work finish: every intent settled, then stop gracefully (SIGTERM drains the rest).
                db = Database(url)
                audit = audit_log(db)
                with contextlib.suppress(TimeoutError):  # reported below as unmatched calls
                    wait_until(lambda: not audit.open_intents(), 60, "every intent to get its outcome")
                # And the queued work to run (each list taken writes one row); what is left is reported below.
                taken = stats.by_kind["list"] - stats.busy["list"]
                with contextlib.suppress(TimeoutError):
                    wait_until(lambda: _list_rows(db) >= taken, 120, "every list taken to run", interval=1.0)
            finally:
                if slow is not None:
                    slow.stop()
                server.stop(timeout=40)
            log_text = server.log_path.read_text(errors="replace")
            report = _report(stats, sim, audit, minutes, users, rss_start, rss_end, alive, log_text, url)
            report += (
                f"\nAll along, {slow_connections} half-sent connections (headers and 1 of 1000 body bytes, reopened "
                "when the bot dropped them at its read deadline) were held open by a separate process.\n"
                if slow_connections
                else ""
            )
            report += "\n" + _rss_trajectory(samples, rss_end, minutes)
            db.dispose()
            return report
    finally:
        stop_vps()
        if not keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _report(
    stats: Stats,
    sim: VpsSimulator,
    audit: AuditLog,
    minutes: float,
    users: int,
    rss_start: dict[int, int],
    rss_end: dict[int, int],
    alive: bool,
    log_text: str,
    url: str,
) -> str:
    verify = audit.verify()
    records = _all_records(audit)
    by_outcome = Counter(r.outcome for r in records)
    by_action = Counter(r.action for r in records)
    outcomes: dict[str, list[str]] = {}
    intents: list[tuple[str, str, int | None]] = []
    for r in records:
        if not r.operation_id:
            continue
        if r.outcome == "intent" and r.action in INTENTS:
            intents.append((r.operation_id, INTENTS[r.action], r.request_id))
        elif r.outcome != "intent":
            outcomes.setdefault(r.operation_id, []).append(r.outcome)
    calls = Counter()
    deleted_applied: set[str] = set()
    duplicate_deletes = 0
    for req in sim.requests:
        if req.method == "POST" and req.path.endswith("/restore/"):
            calls["restore"] += 1
        elif req.method == "POST":
            calls["create"] += 1
        elif req.method == "DELETE":
            calls["delete"] += 1
            if req.path in deleted_applied:
                duplicate_deletes += 1
            if req.applied:
                deleted_applied.add(req.path)
    intent_count = Counter(kind for _, kind, _ in intents)
    matched = sum(1 for op, _, _ in intents if len(outcomes.get(op, [])) == 1)
    mutating = sum(calls.values())
    per_request = Counter(rid for _, kind, rid in intents if kind == "restore" and rid is not None)
    duplicate_restores = sum(n - 1 for n in per_request.values() if n > 1)
    resent = sum(max(0, calls[kind] - intent_count[kind]) for kind in ("create", "delete", "restore"))
    unknown = sum(1 for op, _, _ in intents if outcomes.get(op) == ["unknown"])
    crashes = stats.non_200 + stats.transport_errors + restarts(log_text) + (0 if alive else 1)
    growth = {pid: rss_end.get(pid, 0) - kb for pid, kb in rss_start.items()}
    pct = 100.0 * stats.acked_in_time / stats.sent if stats.sent else 0.0
    match_pct = 100.0 * matched / mutating if mutating else 100.0
    lines = [
        f"Soak: {minutes:g} min, {users} users, `serve` with 2 workers on {safe_url(url).split('?')[0]} "
        f"(fresh schema), faults every 1–3 s",
        "",
        "| Measure | Result | Target |",
        "|---|---|---|",
        f"| Signed requests sent to the bot (a delete is two: command + confirm click) | {stats.sent} = "
        + " + ".join(f"{k} {v}" for k, v in sorted(stats.by_kind.items()))
        + " | |",
        f'| Turned away at the ack: "busy, nothing was done" (post-ack queue full) | {sum(stats.busy.values())}'
        + (" = " + " + ".join(f"{k} {v}" for k, v in sorted(stats.busy.items())) if stats.busy else "")
        + " | |",
        f"| List commands whose work ran (one `list` audit row each) | {by_action['list']} of "
        f"{stats.by_kind['list'] - stats.busy['list']} taken (lists sent {stats.by_kind['list']}, turned away "
        f"{stats.busy['list']}) | all |",
        f"| Acknowledged within {ACK_LIMIT:g} s | {stats.acked_in_time} ({pct:.2f} %); "
        f"slowest {stats.slowest_ack:.2f} s | 100 % |",
        f"| Crashes (non-200 {stats.non_200}, no answer {stats.transport_errors}, worker restarts "
        f"{restarts(log_text)}, server {'up' if alive else 'DOWN'}) | {crashes} | 0 |",
        f"| Audit chain verify (walks every row of the audit table) | {'intact' if verify.ok else 'BROKEN'}: "
        f"{verify.reason} | intact |",
        f"| Audit rows by outcome | {len(records)} = "
        + " + ".join(f"{k} {v}" for k, v in by_outcome.most_common())
        + " | |",
        f"| Audit rows by action | {len(records)} = "
        + " + ".join(f"{k} {v}" for k, v in sorted(by_action.items()))
        + " | |",
        f"| Mutating VPS.org calls matched by intent + outcome rows | {matched} of {mutating} ({match_pct:.1f} %); "
        f"calls create {calls['create']} / delete {calls['delete']} / restore {calls['restore']}, intents create "
        f"{intent_count['create']} / delete {intent_count['delete']} / restore {intent_count['restore']}; "
        f"{unknown} outcome(s) honestly `unknown` | 100 % |",
        f"| Duplicate destructive calls | {resent + duplicate_restores} (calls beyond one per intent: {resent}; "
        f"restores sent twice for one request: {duplicate_restores}) | 0 |",
        f"| Deletes racing another user's delete of the same snapshot (VPS.org answered 404) | {duplicate_deletes} "
        "| (informational) |",
        "| Worker memory (RSS) after warm-up → end | "
        + "; ".join(
            f"{rss_start[p] / 1024:.1f} → {rss_end.get(p, 0) / 1024:.1f} MiB ({growth[p] / 1024:+.1f})"
            for p in rss_start
        )
        + " | flat |",
        f"| Faults injected | {sum(stats.faults.values())}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats.faults.items()))
        + " | |",
    ]
    return "\n".join(lines)


def _list_rows(db: Database) -> int:
    with db.begin(readonly=True) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM audit_events WHERE action = 'list'")).scalar_one())


def _rss_trajectory(samples: list[tuple[float, dict[int, int]]], rss_end: dict[int, int], minutes: float) -> str:
    """One line per worker: its RSS in MiB at each sample, so a steady climb and a one-off step look different."""
    lines = ["", "Worker RSS (MiB) over the run, from the end of warm-up:", ""]
    points = [*samples, (minutes * 60, rss_end)]
    lines.append("| Worker | " + " | ".join(f"{t / 60:.1f} min" for t, _ in points) + " |")
    lines.append("|---|" + "---|" * len(points))
    for pid in samples[0][1]:
        lines.append(f"| {pid} | " + " | ".join(f"{r.get(pid, 0) / 1024:.1f}" for _, r in points) + " |")
    return "\n".join(lines)


def _all_records(audit: AuditLog) -> list:  # type: ignore[type-arg]
    """Every audit row, oldest first (paging through `query`, which caps one page)."""
    out = []
    before: int | None = None
    while True:
        page = audit.query(limit=1000, before_id=before)
        if not page:
            break
        out.extend(page)
        before = page[-1].id
    return list(reversed(out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards (for a look at the rows)")
    parser.add_argument("--tracemalloc-dir", type=Path, help="trace allocations in each worker; reports go here")
    parser.add_argument("--tracemalloc-seconds", type=float, default=300.0, help="seconds between reports")
    parser.add_argument(
        "--slow-connections", type=int, default=500, help="half-sent connections held open all along (0: none)"
    )
    args = parser.parse_args(argv)
    print(f"soak: {args.minutes:g} min against {safe_url(args.database_url)}…", file=sys.stderr)
    print(
        run(
            args.minutes,
            args.database_url,
            args.users,
            args.seed,
            args.keep,
            args.tracemalloc_dir.resolve() if args.tracemalloc_dir else None,
            args.tracemalloc_seconds,
            args.slow_connections,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

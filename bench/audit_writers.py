"""Benchmark 3c: audit appends as requests make them (one append, one commit), from 1, 2 and 4 processes.

Side by side in the same run, in schemas of their own: the bot's append (PostgreSQL: an unsealed row committed
without waiting for other writers, chained by the sealer moments later; storage.audit_seal) and the append it
replaced, which held the chain head row lock through its commit (`storage.audit_chain.chain_rows`, as SQLite
still appends). Each writer is a process of its own (the load is not generated beside what it measures), keeps
its connection between rounds, and appends entries shaped like real ones for a fixed time; rounds interleave
the two paths and alternate which goes first, and each figure is the median of the rounds.

While the 4-writer rounds run, the parent samples `pg_stat_activity` for the writers' wait events (what a
bigger machine would remove shows up here), the unsealed backlog, and counts the WAL flushes of the round
(`pg_stat_wal.wal_sync`, cluster-wide: other databases' commits count too) per append: about 1 means every
append paid a flush of its own, well under 1 that commits shared flushes (group commit). After the rounds each
chain is sealed and verified: every appended row must be in it.

PostgreSQL only (TEST_DATABASE_URL); SQLite has one writer at a time by design.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bench.procs import child_env, python
from bench.scale import Scale
from bench.table import NOT_AVAILABLE, Row, error_row, ms, percentile, verdict
from devkit.pg_schemas import temporary_schemas
from storage.db import Database

log = logging.getLogger("bench")

APPLICATION = "bench-audit-writer"
SCALE_TARGET = 2.0  # 4 writers vs the head-locked path's single writer (issue 27 §4)
P99_LIMIT = 0.020
SINGLE_FLOOR = 0.9  # one writer: the new path no slower than the old, within noise


@dataclass
class Tally:
    rates: list[float] = field(default_factory=list)  # events/s per round
    latencies: list[float] = field(default_factory=list)  # every append of every round


@contextmanager
def _writers(url: str, mode: str, count: int) -> Iterator[list[subprocess.Popen[str]]]:
    url = _with_application_name(url)
    procs = [
        subprocess.Popen(
            [python(), "-m", "bench.audit_writers", url, mode, str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env({"LOG_LEVEL": "WARNING"}),
        )
        for seed in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"an audit writer ({mode}) did not start")
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _with_application_name(url: str) -> str:
    return sa.make_url(url).update_query_dict({"application_name": APPLICATION}).render_as_string(hide_password=False)


def _round(procs: list[subprocess.Popen[str]], seconds: float) -> tuple[float, list[float]]:
    """Run the writers at once for `seconds`; (events/s over all of them, every append's latency)."""
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"run {seconds}\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        assert proc.stdout is not None
        results.append(json.loads(proc.stdout.readline()))
    latencies = [value for result in results for value in result["latencies"]]
    span = max(result["seconds"] for result in results)
    return len(latencies) / span, latencies


class Sampler:
    """pg_stat_activity of the writers' connections and the unsealed backlog, every 10 ms, in a thread."""

    def __init__(self, base_url: str, sealed_url: str | None) -> None:
        self.db = Database(base_url)
        self.sealed = Database(sealed_url) if sealed_url else None
        self.waits: Counter[str] = Counter()
        self.samples = 0
        self.backlog = 0
        self.wal_syncs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _wal_syncs(self) -> int:
        with self.db.begin(readonly=True) as conn:
            return int(conn.execute(sa.text("SELECT wal_sync FROM pg_stat_wal")).scalar() or 0)

    def __enter__(self) -> Sampler:
        self.wal_syncs = -self._wal_syncs()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.wal_syncs += self._wal_syncs()
        self.db.dispose()
        if self.sealed is not None:
            self.sealed.dispose()

    def _run(self) -> None:
        activity = sa.text(
            "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU or network') FROM pg_stat_activity "
            "WHERE application_name = :app AND state = 'active'"
        )
        backlog = sa.text(
            "SELECT count(*) FROM audit_events WHERE hash = '' AND id > (SELECT last_id FROM audit_chain_head)"
        )
        while not self._stop.wait(0.01):
            with self.db.begin(readonly=True) as conn:
                self.waits.update(conn.execute(activity, {"app": APPLICATION}).scalars())
            self.samples += 1
            if self.samples % 5 == 0 and self.sealed is not None:
                with self.sealed.begin(readonly=True) as conn:
                    self.backlog = max(self.backlog, int(conn.execute(backlog).scalar() or 0))

    def summary(self, appends: int) -> str:
        total = sum(self.waits.values()) or 1
        top = ", ".join(f"{name} {count / total:.0%}" for name, count in self.waits.most_common(4))
        backlog = f"; unsealed backlog at most {self.backlog} rows" if self.backlog else ""
        flushes = f"; WAL flushes per append {self.wal_syncs / appends:.2f} (cluster-wide)" if appends else ""
        return f"writers' waits in pg_stat_activity: {top or 'none seen'}{backlog}{flushes}"


def _verify(url: str, appended: int) -> str:
    from bot.auditing import audit_log

    db = Database(url)
    try:
        audit = audit_log(db)
        audit.seal()
        result = audit.verify()
    finally:
        db.dispose()
    if not result.ok or result.count != appended:
        raise RuntimeError(f"after the rounds: {result.reason} (appended {appended})")
    return result.reason


MODES = ("sealed", "locked", "plain")


def measure(base_url: str, scale: Scale) -> list[Row]:
    seconds, rounds, writers = scale.audit_writer_seconds, scale.audit_writer_rounds, scale.audit_writers
    tallies = {(mode, n): Tally() for mode in MODES for n in writers}
    states: dict[str, str] = {}
    with temporary_schemas(base_url, count=len(MODES), prefix="benchw") as schemas:
        urls = {mode: schema.url for mode, schema in zip(MODES, schemas, strict=True)}
        for url in urls.values():
            db = Database(url)
            db.upgrade()
            db.dispose()
        with contextlib.ExitStack() as stack:
            pools = {mode: stack.enter_context(_writers(urls[mode], mode, max(writers))) for mode in MODES}
            for number in range(rounds):
                for n in writers:
                    shift = number % len(MODES)  # who goes first rotates from round to round
                    for mode in MODES[shift:] + MODES[:shift]:
                        if n == max(writers) and number == rounds - 1:
                            with Sampler(base_url, urls[mode] if mode == "sealed" else None) as sampler:
                                rate, latencies = _round(pools[mode][:n], seconds)
                            states[mode] = sampler.summary(len(latencies))
                        else:
                            rate, latencies = _round(pools[mode][:n], seconds)
                        tallies[mode, n].rates.append(rate)
                        tallies[mode, n].latencies += latencies
                log.info("audit writers: round %d of %d done", number + 1, rounds)
        for mode in ("sealed", "locked"):  # every writer's warm-up appends are in the chain too
            appended = sum(len(tallies[mode, n].latencies) for n in writers) + max(writers) * WARM_UP
            log.info("audit writers, %s: %s", mode, _verify(urls[mode], appended))
    baseline_single = statistics.median(tallies["locked", 1].rates)
    rows = []
    for n in writers:
        new, old, plain = (tallies[mode, n] for mode in MODES)
        new_rate, old_rate = statistics.median(new.rates), statistics.median(old.rates)
        plain_rate = statistics.median(plain.rates)
        new_p99 = percentile(new.latencies, 99)
        rounds_text = ", ".join(f"{rate:,.0f}" for rate in new.rates)
        value = (
            f"{new_rate:,.0f} events/s (rounds {rounds_text}); append p50 {ms(percentile(new.latencies, 50))} · "
            f"p99 {ms(new_p99)}"
        )
        baseline = (
            f"head lock held through commit (the old append): {old_rate:,.0f} events/s, "
            f"p99 {ms(percentile(old.latencies, 99))}; the floor, a plain insert + commit of the same row: "
            f"{plain_rate:,.0f} rows/s, p99 {ms(percentile(plain.latencies, 99))}"
        )
        if n == max(writers):
            scaled = new_rate / baseline_single
            value += f"; {scaled:.2f}× the old 1-writer rate; {states['sealed']}"
            baseline += f"; old path's {states['locked']}; floor's {states['plain']}"
            goal = f"≥ {SCALE_TARGET:.0f}× old 1-writer rate ({baseline_single:,.0f}/s), p99 < 20 ms"
            ok = scaled >= SCALE_TARGET and new_p99 < P99_LIMIT
        elif n == 1:
            goal = f"≥ {SINGLE_FLOOR}× the old path"
            ok = new_rate >= SINGLE_FLOOR * old_rate
        else:
            goal = "≥ the 1-writer rate (throughput does not fall as writers are added)"
            ok = new_rate >= statistics.median(tallies["sealed", 1].rates)
        rows.append(
            Row(
                f"3c. audit append per request, {n} writer process{'es' if n > 1 else ''} (PostgreSQL)",
                f"{n} × one append + commit in a loop{scale.label}, {seconds:g} s × {rounds} rounds interleaved "
                "with the old path and the floor",
                value,
                baseline,
                f"{new_rate / old_rate:.2f}× old, {new_rate / plain_rate:.2f}× floor",
                goal,
                verdict(ok),
            )
        )
    return rows


def run(scale: Scale) -> list[Row]:
    base = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not base:  # said in the table, not left out: a run without PostgreSQL shows what it did not measure
        return [
            Row(
                "3c. audit append per request (PostgreSQL)",
                f"1, 2, 4 writer processes{scale.label}",
                "not measured: set TEST_DATABASE_URL to a PostgreSQL database",
                "-",
                "-",
                f"≥ {SCALE_TARGET:.0f}× the old 1-writer rate, p99 < 20 ms",
                NOT_AVAILABLE,
            )
        ]
    try:
        return measure(base, scale)
    except Exception as error:
        log.exception("audit writers benchmark failed")
        return [error_row("3c. audit append per request (PostgreSQL)", "1, 2, 4 writers", error)]


# ---- the writer process ----------------------------------------------------------------------------------
WARM_UP = 20


def _writer(url: str, mode: str, seed: int) -> None:
    from bench.audit_scale import make_entries
    from bot.auditing import AUDIT_REDACTOR, BotAuditLog
    from storage.audit_chain import chain_rows
    from storage.audit_rows import events
    from storage.db import utcnow

    class HeadLockedAuditLog(BotAuditLog):
        """The append before issue 27 §4: ids, hashes and the head move under the head row lock, held to commit."""

        def _chain(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
            chain_rows(conn, rows, self.clock)

    class PlainInsert(BotAuditLog):
        """The floor: the same row inserted and committed, no chain, no lock (what any durable append costs)."""

        def _chain(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
            for row in rows:
                row.update(created_at=utcnow(), prev_hash="", hash="")
                row["id"] = conn.execute(sa.insert(events).returning(events.c.id), row).scalar_one()

    db = Database(url)
    kind = {"sealed": BotAuditLog, "locked": HeadLockedAuditLog, "plain": PlainInsert}[mode]
    audit = kind(db, redactor=AUDIT_REDACTOR)
    entries = list(make_entries(5000, seed=1000 + seed))
    for entry in entries[:WARM_UP]:
        audit.append(entry)
    print("ready", flush=True)
    n = WARM_UP
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        seconds = float(command[1])
        latencies = []
        started = time.perf_counter()
        deadline = started + seconds
        while True:
            begun = time.perf_counter()
            if begun >= deadline:
                break
            audit.append(entries[n % len(entries)])
            latencies.append(time.perf_counter() - begun)
            n += 1
        print(json.dumps({"latencies": latencies, "seconds": time.perf_counter() - started}), flush=True)
    audit.seal()
    db.dispose()


if __name__ == "__main__":
    _writer(sys.argv[1], sys.argv[2], int(sys.argv[3]))

"""Benchmark 3: the audit trail after a year of events — append, query, export and verify at scale.

- Append: `AuditLog.append_many` (redaction, canonical JSON, the SHA-256 chain, the chain-head lock) against a
  plain SQLAlchemy Core insert of the same rows into a second, identical database (same schema and indexes),
  in the same batches, without hashing.
- Queries: `AuditLog.query(…)` as `/snapshot audit` runs it (newest 21 rows) for every combination of the
  filters it accepts (server, snapshot, user, action), with random values; actions drawn from the shapes an
  admin types (a common name, a rare one, a prefix of many, a name never written).
- Export: the real `python -m bot audit export` to /dev/null in a subprocess; its own peak RSS (VmHWM, polled
  from /proc while it runs) compared with the same command exporting nothing, so the difference is what the
  rows cost. Not `ru_maxrss` from wait4: on Linux a child inherits its parent's high-water mark across fork
  and exec, so under a big bench process it reads the parent's peak.
- Verify: `AuditLog.verify()` over the whole chain, against a plain streamed read of the same rows.

SQLite always; PostgreSQL as well when TEST_DATABASE_URL is set (in fresh schemas, dropped afterwards).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench import audit_correlated
from bench.audit_mix import ACTION_MIX
from bench.procs import child_env, python, run_with_peak_rss
from bench.scale import Scale, warm_up_queries
from bench.table import Row, error_row, ms, percentile, ratio, verdict
from bot.auditing import audit_log
from devkit.pg_schemas import temporary_schemas
from storage.audit import AuditEntry, AuditLog
from storage.db import Database

log = logging.getLogger("bench")

APPEND_RATIO_TARGET = 0.5
QUERY_P99_LIMIT = 0.020
# Near what is measured (about 2× the slowest combination's p99 in the recorded run), so a slowdown fails a row.
QUERY_REGRESSION_LINE = {"SQLite": 0.0025, "PostgreSQL": 0.005}
CORRELATED_REGRESSION_LINE = {"SQLite": 0.0025, "PostgreSQL": 0.005}
EXPORT_GROWTH_LIMIT_KB = 50 * 1024
VERIFY_LIMIT_SECONDS = 60.0
CHUNK = 20_000  # entries generated at a time, so a million never sit in memory at once
BATCH = 1000  # append_many's default batch, and the baseline's
USERS = 200
SERVERS = 2000
QUERY_LIMIT = 21  # what `/snapshot audit` asks for: a page of 20 and one more to know if there is an "Older"


def make_entries(count: int, seed: int, users: int = USERS, servers: int = SERVERS) -> Iterator[AuditEntry]:
    """`count` plausible events: 200 people, 2000 servers, mostly lists, details like the bot writes."""
    rng = random.Random(seed)
    actions = [(a, o) for a, o, w in ACTION_MIX for _ in range(w)]
    for n in range(count):
        action, outcome = rng.choice(actions)
        actor = "system" if action == "create.completed" else f"U0USER{rng.randrange(users):03d}"
        server = 10_000 + rng.randrange(servers)
        snapshot = None if action in ("list", "audit.read") else 500_000 + n
        if action == "list":
            details: dict[str, object] = {"servers": rng.randrange(1, 50), "snapshots": rng.randrange(200)}
            details["duration_ms"] = rng.randrange(40, 900)
        elif action.startswith(("create", "delete")):
            details = {"name": f"nightly-{server}-{n}", "status_code": 201, "duration_ms": rng.randrange(100, 3000)}
        else:
            details = {"reason": "not an operator" if outcome == "refused" else "", "request": n % 997}
        yield AuditEntry(
            action=action,
            outcome=outcome,
            actor_id=actor,
            actor_name=actor.lower(),
            team_id="T0SNAPBOT",
            channel_id="C0OPS",
            server_id=None if action in ("list", "audit.read") and n % 3 else server,
            snapshot_id=snapshot,
            operation_id=str(uuid.UUID(int=rng.getrandbits(128))) if outcome == "intent" else None,
            details=details,
        )


class YearClock:
    """Timestamps spread evenly over the last year, one step per call: a year of events, written today."""

    def __init__(self, count: int) -> None:
        self.now = datetime.now(UTC) - timedelta(days=365)
        self.step = timedelta(days=365) / max(1, count)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def plain_rows(entries: list[AuditEntry], clock: YearClock) -> list[dict[str, object]]:
    """The same rows as the bot writes, built the obvious way: no redaction, no canonical form, no hashes."""
    import json

    return [
        {
            "created_at": clock(),
            "actor_id": e.actor_id,
            "actor_name": e.actor_name,
            "team_id": e.team_id,
            "channel_id": e.channel_id,
            "action": e.action,
            "outcome": e.outcome,
            "server_id": e.server_id,
            "snapshot_id": e.snapshot_id,
            "request_id": e.request_id,
            "operation_id": e.operation_id,
            "details": json.dumps(e.details, sort_keys=True),
            "prev_hash": "",
            "hash": "",
        }
        for e in entries
    ]


# ---- databases ---------------------------------------------------------------------------------------------
@dataclass
class Backend:
    name: str  # "SQLite" or "PostgreSQL"
    bot_url: str  # where the bot's AuditLog writes
    plain_url: str  # the baseline's identical database
    bot_table: str  # the bot's audit_events as the baseline's connection names it (for copying rows across)
    attach: str | None = None  # SQLite: the bot's database file, attached to the baseline's connection
    correlated_url: str = ""  # row 3b's correlated data (bench.audit_correlated)


_COPY_COLUMNS = ", ".join(
    name for name in ("created_at", "actor_id", "actor_name", "team_id", "channel_id", "action", "outcome",
                      "server_id", "snapshot_id", "request_id", "operation_id", "details", "prev_hash", "hash")
)  # fmt: skip


def copy_rows(backend: Backend, plain_db: Database, after_id: int, last_id: int) -> None:
    """Copy the bot's rows (after_id, last_id] into the baseline database in SQL: keeps both tables (and their
    indexes) the same size for the chunks whose plain insert is not timed."""
    statement = (
        f"INSERT INTO audit_events ({_COPY_COLUMNS}) SELECT {_COPY_COLUMNS} FROM {backend.bot_table} "
        f"WHERE id > {int(after_id)} AND id <= {int(last_id)}"
    )
    if backend.attach is None:
        with plain_db.begin() as conn:
            conn.exec_driver_sql(statement)
        return
    # ATTACH is refused inside a transaction, and Database.begin() opens one: use the driver directly.
    import sqlite3

    path = plain_db.engine.url.database
    raw = sqlite3.connect(str(path), isolation_level=None)
    try:
        raw.execute("ATTACH DATABASE ? AS src", (backend.attach,))
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(statement)
        raw.execute("COMMIT")
    finally:
        raw.close()


@contextlib.contextmanager
def backends(workdir: Path) -> Iterator[list[Backend]]:
    found = [
        Backend(
            "SQLite",
            f"sqlite:///{workdir / 'audit.db'}",
            f"sqlite:///{workdir / 'plain.db'}",
            bot_table="src.audit_events",
            attach=str(workdir / "audit.db"),
            correlated_url=f"sqlite:///{workdir / 'correlated.db'}",
        )
    ]
    base = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not base:
        yield found
        return
    with temporary_schemas(base, count=3, prefix="bench") as (bot, plain, correlated):
        found.append(
            Backend("PostgreSQL", bot.url, plain.url, f'"{bot.name}".audit_events', correlated_url=correlated.url)
        )
        yield found


# ---- measurements ------------------------------------------------------------------------------------------
@dataclass
class AppendResult:
    rows: int
    bot_seconds: float  # all rows
    matched_rows: int  # rows of the chunks both paths were timed on
    matched_bot_seconds: float
    matched_plain_seconds: float


def _max_id(db: Database) -> int:
    with db.begin(readonly=True) as conn:
        return int(conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM audit_events").scalar() or 0)


def append(backend: Backend, bot_db: Database, plain_db: Database, rows: int, every: int) -> AppendResult:
    """Append `rows` through the bot, chunk by chunk; time the plain insert of the same rows on every
    `every`-th chunk (copying the others across untimed), so both tables grow alike and the comparison at
    each size is like for like."""
    audit = audit_log(bot_db, clock=YearClock(rows))
    plain_clock = YearClock(rows)
    table = sa.Table("audit_events", sa.MetaData(), autoload_with=plain_db.engine)
    result = AppendResult(0, 0.0, 0, 0.0, 0.0)
    chunks = -(-rows // CHUNK)
    for chunk_no, start in enumerate(range(0, rows, CHUNK)):
        entries = list(make_entries(min(CHUNK, rows - start), seed=chunk_no))
        first_id = _max_id(bot_db)
        started = time.perf_counter()
        audit.append_many(entries, batch_size=BATCH)
        bot_seconds = time.perf_counter() - started
        result.bot_seconds += bot_seconds
        result.rows += len(entries)

        if chunk_no % every == every - 1 or chunk_no == chunks - 1:
            started = time.perf_counter()
            for offset in range(0, len(entries), BATCH):
                batch = plain_rows(entries[offset : offset + BATCH], plain_clock)
                with plain_db.begin() as conn:
                    conn.execute(sa.insert(table), batch)
            result.matched_plain_seconds += time.perf_counter() - started
            result.matched_bot_seconds += bot_seconds
            result.matched_rows += len(entries)
        else:
            copy_rows(backend, plain_db, first_id, first_id + len(entries))
            for _ in entries:
                plain_clock()  # keep the baseline's timestamps in step with the bot's
        if chunk_no % 10 == 9:
            log.info("audit: %d rows appended", result.rows)
    return result


FILTERS = ("server", "snapshot", "user", "action")
# What admins type after `action:`: the common name, a rare one, prefixes of several names, one never written.
ACTION_SHAPES = ("list", "refused.validation", "create", "restore", "refused", "delete.failed")


def combinations() -> list[tuple[str, ...]]:
    """Every subset of the filters, fewest first: each is one row of the table."""
    return [combo for size in range(len(FILTERS) + 1) for combo in itertools.combinations(FILTERS, size)]


def combination_flags(combo: tuple[str, ...]) -> str:
    return " ".join(f"{name}:<{'name' if name == 'action' else 'id'}>" for name in combo) or "(no filter)"


def query_times(audit: AuditLog, queries: int, combo: tuple[str, ...], rows: int) -> list[float]:
    rng = random.Random(7)
    times = []
    for _ in range(queries):
        filters: dict[str, object] = {}
        if "server" in combo:
            filters["server_id"] = 10_000 + rng.randrange(SERVERS)
        if "snapshot" in combo:
            filters["snapshot_id"] = 500_000 + rng.randrange(min(rows, CHUNK))  # see make_entries
        if "user" in combo:
            filters["actor_id"] = f"U0USER{rng.randrange(USERS):03d}"
        if "action" in combo:
            filters["action"] = rng.choice(ACTION_SHAPES)
        started = time.perf_counter()
        audit.query(limit=QUERY_LIMIT, **filters)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    return times


def plain_read_seconds(db: Database) -> float:
    """Stream every row once with no work on it: the floor for export and verify."""
    table = sa.Table("audit_events", sa.MetaData(), autoload_with=db.engine)
    started = time.perf_counter()
    with db.begin(readonly=True) as conn:
        for _ in conn.execution_options(yield_per=10_000).execute(sa.select(table).order_by(table.c.id)):
            pass
    return time.perf_counter() - started


def export_run(url: str, workdir: Path, *, empty: bool) -> tuple[float, int]:
    """(seconds, peak RSS in kB) of `python -m bot audit export` to /dev/null; `empty` exports nothing."""
    argv = [python(), "-m", "bot", "audit", "export", "--format", "jsonl"]
    if empty:
        argv += ["--since", "2999-01-01"]
    env = child_env({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    with open(os.devnull, "wb") as sink, open(workdir / "export.log", "ab") as errors:
        seconds, returncode, peak_kb = run_with_peak_rss(argv, env=env, cwd=workdir, stdout=sink, stderr=errors)
    if returncode != 0:
        tail = (workdir / "export.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"audit export exited with {returncode}: {' / '.join(tail)}")
    return seconds, peak_kb


def export_runs(url: str, workdir: Path, *, together: bool) -> tuple[tuple[float, int], tuple[float, int]]:
    """The empty export, then the full one; `together` runs both at once (smoke: only that they run counts, and
    each is mostly interpreter start-up), which skews their times against each other, so never when measuring."""
    if not together:
        return export_run(url, workdir, empty=True), export_run(url, workdir, empty=False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        empty, full = (pool.submit(export_run, url, workdir, empty=empty) for empty in (True, False))
        return empty.result(), full.result()


# ---- the rows ----------------------------------------------------------------------------------------------
def measure(backend: Backend, scale: Scale, workdir: Path) -> list[Row]:
    n = scale.audit_rows
    load = f"{n:,} events{scale.label}, {backend.name}"
    rows: list[Row] = []
    bot_db, plain_db = Database(backend.bot_url), Database(backend.plain_url)
    try:
        bot_db.upgrade()
        plain_db.upgrade()
        result = append(backend, bot_db, plain_db, n, scale.audit_baseline_every)
        bot_rate = result.rows / result.bot_seconds
        matched_bot = result.matched_rows / result.matched_bot_seconds
        matched_plain = result.matched_rows / result.matched_plain_seconds
        sampled = (
            f" (timed on {result.matched_rows:,} of the rows, every {scale.audit_baseline_every}th chunk; "
            "the rest copied in untimed so both tables grow alike)"
            if result.matched_rows < result.rows
            else ""
        )
        rows.append(
            Row(
                f"3a. audit append ({backend.name})",
                load + ", batches of 1000",
                f"{bot_rate:,.0f} events/s ({result.bot_seconds:.0f} s for all); "
                f"{matched_bot:,.0f} events/s on the baseline's chunks",
                f"plain Core insert, no hashing: {matched_plain:,.0f} rows/s{sampled}",
                ratio(matched_bot, matched_plain),
                f"≥ {APPEND_RATIO_TARGET}× baseline throughput",
                verdict(matched_bot / matched_plain >= APPEND_RATIO_TARGET),
            )
        )
        audit = audit_log(bot_db)
        if bot_db.engine.dialect.name == "postgresql":
            # Statistics as autovacuum keeps them; right after a bulk load it may not have caught up yet.
            with bot_db.begin() as conn:
                conn.exec_driver_sql("ANALYZE audit_events")
        regression_line = QUERY_REGRESSION_LINE[backend.name]
        for combo in combinations():
            query_times(audit, warm_up_queries(scale.audit_queries), combo, n)  # warm the pool, statement cache, index
            times = query_times(audit, scale.audit_queries, combo, n)
            p99 = percentile(times, 99)
            rows.append(
                Row(
                    f"3b. /snapshot audit {combination_flags(combo)} ({backend.name})",
                    f"{load}, {scale.audit_queries} random values, newest {QUERY_LIMIT}",
                    f"p50 {ms(percentile(times, 50))} · p99 {ms(p99)} · max {ms(max(times))}",
                    "-",
                    "-",
                    f"p99 < {QUERY_P99_LIMIT * 1000:.0f} ms; regression line p99 < {ms(regression_line)}",
                    verdict(p99 < QUERY_P99_LIMIT and p99 < regression_line),
                )
            )
        correlated_db = Database(backend.correlated_url)
        try:
            correlated_db.upgrade()
            rows += audit_correlated.rows_for(
                correlated_db,
                backend.name,
                n,
                scale.audit_queries,
                combinations(),
                {combo: combination_flags(combo) for combo in combinations()},
                QUERY_LIMIT,
                QUERY_P99_LIMIT,
                CORRELATED_REGRESSION_LINE[backend.name],
                scale.label,
            )
        finally:
            correlated_db.dispose()
        read_seconds = plain_read_seconds(bot_db)
        (empty_seconds, empty_peak), (export_seconds, export_peak) = export_runs(
            backend.bot_url, workdir, together=scale.name == "smoke"
        )
        growth = export_peak - empty_peak
        net_seconds = max(export_seconds - empty_seconds, 1e-6)  # without interpreter start-up and connect
        rows.append(
            Row(
                f"3d. audit export ({backend.name})",
                f"{load}, `python -m bot audit export` (jsonl) > /dev/null",
                f"peak RSS growth {growth / 1024:.1f} MB; {net_seconds:.1f} s (+{empty_seconds:.1f} s start-up)",
                f"same command exporting 0 rows: peak {empty_peak / 1024:.1f} MB; "
                f"plain streamed read {read_seconds:.1f} s",
                ratio(net_seconds, read_seconds) + " (time vs plain read)",
                "peak RSS growth < 50 MB",
                verdict(growth < EXPORT_GROWTH_LIMIT_KB),
            )
        )
        started = time.perf_counter()
        verified = audit.verify()
        verify_seconds = time.perf_counter() - started
        ok = verified.ok and verified.count == n and verify_seconds < VERIFY_LIMIT_SECONDS
        rows.append(
            Row(
                f"3e. audit verify ({backend.name})",
                load,
                f"{verify_seconds:.1f} s, {verified.reason}",
                f"plain streamed read {read_seconds:.1f} s",
                ratio(verify_seconds, read_seconds),
                f"< {VERIFY_LIMIT_SECONDS:.0f} s, chain intact",
                verdict(ok),
            )
        )
    finally:
        bot_db.dispose()
        plain_db.dispose()
    return rows


def run(scale: Scale) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        workdir = Path(tmp)
        try:
            with backends(workdir) as found:
                for backend in found:
                    log.info("audit: %s, %d rows", backend.name, scale.audit_rows)
                    try:
                        rows += measure(backend, scale, workdir)
                    except Exception as error:
                        log.exception("audit benchmark on %s failed", backend.name)
                        rows.append(error_row(f"3. audit at scale ({backend.name})", f"{scale.audit_rows:,}", error))
        except Exception as error:  # PostgreSQL schemas could not be made or dropped
            log.exception("audit benchmark setup failed")
            rows.append(error_row("3. audit at scale", f"{scale.audit_rows:,}", error))
    return rows

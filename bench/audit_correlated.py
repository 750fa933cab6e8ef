"""Benchmark 3b on correlated data: `/snapshot audit` when users, servers and actions depend on each other.

Row 3b's main data is uniform and independent (200 users, 2,000 servers, random actions), where a planner that
multiplies single-column frequencies is never wrong. A real team's trail is not: here 10 people each work mostly
on their own two of 20 servers, and `system` is the only writer of `create.completed` (and writes nothing else),
so `user:system action:list` matches nothing although both values are common (issue 27 §5). Queries draw
their values from the same people (and `system`), servers and action shapes, so rare and empty combinations of
common values come up as often as they would when an admin looks around.

The rows are inserted directly (no hashing: the chain plays no part in a query's plan) into a database of their
own, as many as row 3b's main data; PostgreSQL's statistics are brought up to date as autovacuum would.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

from bench.audit_mix import ACTION_MIX
from bench.scale import warm_up_queries
from bench.table import Row, ms, percentile, verdict
from storage.audit import AuditEntry, AuditLog
from storage.db import Database

USERS = 10
SERVERS = 20
OWN_SERVER_SHARE = 0.9  # of a person's events, on one of their own two servers
CHUNK = 20_000
SNAPSHOT_BASE = 500_000

# What admins type after `action:`: common, rare, system's own, prefixes of several names, one never written.
ACTION_SHAPES = ("list", "refused.validation", "create.completed", "create", "restore", "refused", "delete.failed")
ACTORS = (*(f"U0USER{n:03d}" for n in range(USERS)), "system")


def make_correlated_entries(count: int, seed: int, first: int = 0) -> Iterator[AuditEntry]:
    rng = random.Random(seed)
    actions = [(a, o) for a, o, w in ACTION_MIX for _ in range(w)]
    for n in range(first, first + count):
        action, outcome = rng.choice(actions)
        if action == "create.completed":
            actor, server = "system", 10_000 + rng.randrange(SERVERS)
        else:
            person = rng.randrange(USERS)
            actor = f"U0USER{person:03d}"
            own = rng.random() < OWN_SERVER_SHARE
            server = 10_000 + (2 * person + rng.randrange(2) if own else rng.randrange(SERVERS))
        yield AuditEntry(
            action=action,
            outcome=outcome,
            actor_id=actor,
            actor_name=actor.lower(),
            team_id="T0SNAPBOT",
            channel_id="C0OPS",
            server_id=None if action in ("list", "audit.read") and n % 3 else server,
            snapshot_id=None if action in ("list", "audit.read") else SNAPSHOT_BASE + n,
            operation_id=str(uuid.UUID(int=rng.getrandbits(128))) if outcome == "intent" else None,
            details={"duration_ms": rng.randrange(40, 3000)},
        )


def build(db: Database, rows: int) -> float:
    """Fill `db` (migrated, empty) with `rows` correlated events; returns the seconds it took."""
    from bench.audit_scale import YearClock, plain_rows  # the same row shape as the main data's baseline

    started = time.perf_counter()
    clock = YearClock(rows)
    table = sa.Table("audit_events", sa.MetaData(), autoload_with=db.engine)
    for number, start in enumerate(range(0, rows, CHUNK)):
        entries = list(make_correlated_entries(min(CHUNK, rows - start), seed=number, first=start))
        with db.begin() as conn:
            conn.execute(sa.insert(table), plain_rows(entries, clock))
    if db.engine.dialect.name == "postgresql":
        with db.begin() as conn:
            conn.exec_driver_sql("ANALYZE audit_events")
    return time.perf_counter() - started


def query_times(audit: AuditLog, queries: int, combo: tuple[str, ...], rows: int, limit: int) -> list[float]:
    rng = random.Random(11)
    times = []
    for _ in range(queries):
        filters: dict[str, object] = {}
        if "server" in combo:
            filters["server_id"] = 10_000 + rng.randrange(SERVERS)
        if "snapshot" in combo:
            filters["snapshot_id"] = SNAPSHOT_BASE + rng.randrange(rows)
        if "user" in combo:
            filters["actor_id"] = rng.choice(ACTORS)
        if "action" in combo:
            filters["action"] = rng.choice(ACTION_SHAPES)
        started = time.perf_counter()
        audit.query(limit=limit, **filters)  # type: ignore[arg-type]
        times.append(time.perf_counter() - started)
    return times


def rows_for(
    db: Database,
    backend: str,
    rows: int,
    queries: int,
    combos: list[tuple[str, ...]],
    flags: dict[tuple[str, ...], str],
    limit: int,
    p99_goal: float,
    regression_line: float,
    label: str = "",
) -> list[Row]:
    """One row per filter combination, each held to the goal and to the regression line near today's figure.
    `label` names a reduced scale (" (smoke)"), as every other row's load column does."""
    seconds = build(db, rows)
    audit = AuditLog(db)
    found = []
    for combo in combos:
        query_times(audit, warm_up_queries(queries), combo, rows, limit)  # warm the pool, statement cache, index
        times = query_times(audit, queries, combo, rows, limit)
        p99 = percentile(times, 99)
        found.append(
            Row(
                f"3b. /snapshot audit {flags[combo]} ({backend}, correlated)",
                f"{rows:,} events{label} (built in {seconds:.0f} s): {USERS} people mostly on their own 2 of {SERVERS} "
                f"servers, `system` the only writer of create.completed; {queries} random values, newest {limit}",
                f"p50 {ms(percentile(times, 50))} · p99 {ms(p99)} · max {ms(max(times))}",
                "-",
                "-",
                f"p99 < {p99_goal * 1000:.0f} ms; regression line p99 < {ms(regression_line)}",
                verdict(p99 < p99_goal and p99 < regression_line),
            )
        )
    return found

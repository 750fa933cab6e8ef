"""Benchmark 6: what signed audit checkpoints cost, and verify with checkpoints at a million events.

- Cost: the bot's audit appends (`AuditLog.append`, one committed transaction per event, as commands write
  them) into two identical databases side by side in the same run: one plain, one with the real witness
  thread running (`bot.audit_witness.Witness`: every 100 events a checkpoint is checked, signed, stored and
  appended to a JSON Lines file with fsync). The appends take turns between the databases in blocks of 10
  (who goes first alternating), so each block pair sees one moment's load on a shared machine. The row reports
  the ratio of the totals over all rounds (with / without) and its 90 % bootstrap interval over the block pairs:
  a short round's own ratio wanders by ±5 % on a busy machine (it is listed too), the interval says how well the
  whole run pins the cost. The witness thread's own busy time is reported too, as a share of the appending time.
- Verify: a 1,000,000-event trail built with `append_many`, checkpointed every 100 events (10,000 signed
  checkpoints), then `python -m bot audit verify --checkpoints FILE --public-key …` in a subprocess (wall
  time, interpreter start-up included); baseline the plain hash-chain `AuditLog.verify()`.

SQLite always; PostgreSQL as well when TEST_DATABASE_URL is set (fresh schemas, dropped afterwards).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.audit_scale import YearClock, make_entries
from bench.procs import child_env, python
from bench.scale import Scale
from bench.table import Row, error_row, ratio, verdict
from bot.audit_witness import Witness
from bot.auditing import audit_log
from bot.config import load_settings
from devkit.pg_schemas import temporary_schemas
from storage.audit import AuditLog
from storage.checkpoints import CheckpointStore
from storage.db import Database
from storage.signing import Signer, generate_key_file, public_text

log = logging.getLogger("bench")

COST_RATIO_TARGET = 0.95  # checkpointing may cost at most 5 % of append throughput
VERIFY_LIMIT_SECONDS = 60.0
EVERY = 100


class TimedWitness(Witness):
    """The real witness, adding up the time its rounds take."""

    busy_seconds = 0.0

    def run_once(self, *, final: bool = False) -> list:  # type: ignore[type-arg]
        started = time.perf_counter()
        try:
            return super().run_once(final=final)
        finally:
            self.busy_seconds += time.perf_counter() - started


@contextlib.contextmanager
def databases(workdir: Path) -> Iterator[list[tuple[str, list[str]]]]:
    """(backend name, three empty database URLs) for SQLite and, when configured, PostgreSQL."""
    found = [("SQLite", [f"sqlite:///{workdir / f'{name}.db'}" for name in ("plain", "witnessed", "million")])]
    base = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not base:
        yield found
        return
    with temporary_schemas(base, count=3, prefix="bench_cp") as schemas:
        found.append(("PostgreSQL", [schema.url for schema in schemas]))
        yield found


BLOCK = 10  # appends per database per turn: short turns, so both databases see the same moment's load
BOOTSTRAP = 2000  # resamples of the block pairs for the interval of the overall ratio


def _append_round(plain: AuditLog, witnessed: AuditLog, count: int, seed: int, first: int) -> list[tuple[float, float]]:
    """`count` single appends into each database, taking turns in blocks of BLOCK (`first` says which goes first,
    alternating every block), so both see the same machine load; returns each block pair's (plain, witnessed)
    seconds."""
    entries = list(make_entries(count, seed=seed))
    logs = [plain, witnessed]
    pairs = []
    for number, start in enumerate(range(0, count, BLOCK)):
        block = entries[start : start + BLOCK]
        spent = [0.0, 0.0]
        lead = (first + number) % 2
        for side in (lead, 1 - lead):
            began = time.perf_counter()
            for entry in block:
                logs[side].append(entry)
            spent[side] = time.perf_counter() - began
        pairs.append((spent[0], spent[1]))
    return pairs


def overall_ratio(pairs: list[tuple[float, float]]) -> float:
    """Witnessed throughput over plain throughput: the plain side's total time over the witnessed side's."""
    return sum(p for p, _ in pairs) / sum(w for _, w in pairs)


def interval(pairs: list[tuple[float, float]], seed: int = 5) -> tuple[float, float]:
    """The 90 % bootstrap interval of `overall_ratio` over the block pairs: how sure the headline figure is.

    Each block pair saw one moment's machine load on both sides, so resampling pairs keeps that pairing; the
    witness's cost falls on the few blocks a checkpoint round overlaps, and the ratio of totals keeps it."""
    rng = random.Random(seed)
    ratios = sorted(overall_ratio(rng.choices(pairs, k=len(pairs))) for _ in range(BOOTSTRAP))
    return ratios[int(0.05 * BOOTSTRAP)], ratios[int(0.95 * BOOTSTRAP) - 1]


def cost_row(name: str, urls: list[str], key: Signer, key_path: Path, workdir: Path, scale: Scale) -> Row:
    per_round = max(100, min(2000, scale.audit_rows // 20))
    rounds = 9 if scale.audit_rows >= 1_000_000 else 2 if scale.audit_rows >= 10_000 else 1  # smoke: one round
    plain_db, witnessed_db = Database(urls[0]), Database(urls[1])
    witness: TimedWitness | None = None
    try:
        plain_db.upgrade()
        witnessed_db.upgrade()
        settings = load_settings(
            {
                "AUDIT_SIGNING_KEY": str(key_path),
                "AUDIT_CHECKPOINT_EVERY": str(EVERY),
                "AUDIT_CHECKPOINT_FILE": str(workdir / f"cost-{name}.jsonl"),
            },
            dotenv_path=None,
        )
        witness = TimedWitness(witnessed_db, settings, key, None)
        witness.start()
        plain, witnessed = audit_log(plain_db), audit_log(witnessed_db)
        pairs: list[tuple[float, float]] = []
        ratios = []
        for round_no in range(rounds):
            added = _append_round(plain, witnessed, per_round, seed=round_no, first=round_no % 2)
            pairs += added
            ratios.append(overall_ratio(added))
            log.info("checkpoint cost round %d (%s): ratio %.3f", round_no + 1, name, ratios[-1])
        witness.stop(final=False)
        witnessed_seconds = sum(w for _, w in pairs)
        busy_share = witness.busy_seconds / witnessed_seconds
        made = len(CheckpointStore(witnessed_db).after(0, limit=1_000_000))
    finally:
        if witness is not None:
            witness.stop(final=False)
        plain_db.dispose()
        witnessed_db.dispose()
    # The verdict is on the ratio of the totals (all appends' time, per database); the interval says how sure it is.
    overall = overall_ratio(pairs)
    low, high = interval(pairs)
    total = rounds * per_round
    return Row(
        f"6a. audit checkpointing cost ({name})",
        f"{rounds} rounds × {per_round:,} single appends per database, taking turns in blocks of {BLOCK}; checkpoint "
        f"every {EVERY} events, witness file with fsync{scale.label}",
        f"with checkpoints: {total / witnessed_seconds:,.0f} events/s; {made} checkpoints signed; "
        f"witness thread busy {busy_share:.1%} of the appending time",
        f"same appends, no checkpoints: {total / sum(p for p, _ in pairs):,.0f} events/s",
        f"{overall:.3f}× overall (90 % interval {low:.3f}–{high:.3f} over {len(pairs):,} block pairs; rounds "
        f"{', '.join(f'{r:.3f}' for r in ratios)})",
        f"≥ {COST_RATIO_TARGET}× (under 5 % cost)",
        verdict(overall >= COST_RATIO_TARGET),
    )


def verify_row(name: str, url: str, key: Signer, workdir: Path, scale: Scale) -> Row:
    n = scale.audit_rows
    db = Database(url)
    try:
        db.upgrade()
        audit = audit_log(db, clock=YearClock(n))
        built = time.perf_counter()
        for start in range(0, n, 20_000):
            audit.append_many(make_entries(min(20_000, n - start), seed=start), batch_size=5000)
        built = time.perf_counter() - built
        store = CheckpointStore(db)
        signing = time.perf_counter()
        while store.create_due(key, every=EVERY, minutes=None, limit=1000):
            pass
        signing = time.perf_counter() - signing
        checkpoints = store.after(0, limit=10_000_000)
        path = workdir / f"million-{name}.jsonl"
        path.write_text("".join(c.to_json() + "\n" for c in checkpoints))
        started = time.perf_counter()
        plain = audit.verify()
        plain_seconds = time.perf_counter() - started
    finally:
        db.dispose()
    argv = [python(), "-m", "bot", "audit", "verify", "--checkpoints", str(path)]
    argv += ["--public-key", public_text(key.public)]
    env = child_env({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    answer = (done.stdout.strip().splitlines() or [done.stderr.strip()])[-1]
    ok = done.returncode == 0 and seconds < VERIFY_LIMIT_SECONDS and plain.ok
    return Row(
        f"6b. audit verify --checkpoints ({name})",
        f"{n:,} events{scale.label} (built in {built:.0f} s), {len(checkpoints):,} checkpoints "
        f"(signed in {signing:.0f} s)",
        f"{seconds:.1f} s, {answer}",
        f"plain hash-chain verify {plain_seconds:.1f} s",
        ratio(seconds, plain_seconds),
        f"< {VERIFY_LIMIT_SECONDS:.0f} s, intact",
        verdict(ok),
    )


def run(scale: Scale) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-checkpoints-") as tmp:
        workdir = Path(tmp)
        key_path = workdir / "signing.pem"
        key = generate_key_file(key_path)
        try:
            with databases(workdir) as found:
                for name, urls in found:
                    try:
                        rows.append(cost_row(name, urls, key, key_path, workdir, scale))
                    except Exception as error:
                        log.exception("checkpoint cost benchmark on %s failed", name)
                        rows.append(error_row(f"6a. audit checkpointing cost ({name})", scale.name, error))
                    try:
                        rows.append(verify_row(name, urls[2], key, workdir, scale))
                    except Exception as error:
                        log.exception("verify with checkpoints benchmark on %s failed", name)
                        rows.append(error_row(f"6b. audit verify --checkpoints ({name})", scale.name, error))
        except Exception as error:
            log.exception("checkpoint benchmark setup failed")
            rows.append(error_row("6. audit checkpoints", scale.name, error))
    return rows

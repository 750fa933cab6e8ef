"""Benchmark 6: what signed audit checkpoints cost, and verify with checkpoints at a million events.

- Cost: the bot's audit appends (`AuditLog.append`, one committed transaction per event, as commands write
  them) into two identical databases side by side in the same run: one plain, one with the real witness
  thread running (`bot.audit_witness.Witness`: every 100 events a checkpoint is checked, signed, stored and
  appended to a JSON Lines file with fsync). The appends alternate between the databases in blocks of 50, so
  both see the same load on a shared machine. Several rounds; each gives a throughput ratio (with / without),
  and the row reports the ratio of the totals and every round's ratio. The witness
  thread's own busy time is reported too, as a share of the appending time.
- Verify: a 1,000,000-event trail built with `append_many`, checkpointed every 100 events (10,000 signed
  checkpoints), then `python -m bot audit verify --checkpoints FILE --public-key …` in a subprocess (wall
  time, interpreter start-up included); baseline the plain hash-chain `AuditLog.verify()`.

SQLite always; PostgreSQL as well when TEST_DATABASE_URL is set (fresh schemas, dropped afterwards).
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
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


def _append_round(plain: AuditLog, witnessed: AuditLog, count: int, seed: int, first: int) -> tuple[float, float]:
    """`count` single appends into each database, in interleaved blocks of 50 (`first` says which goes first in
    each block), so both see the same machine load; returns (plain, witnessed) events per second."""
    entries = list(make_entries(count, seed=seed))
    spent = [0.0, 0.0]
    logs = [plain, witnessed]
    for start in range(0, count, 50):
        block = entries[start : start + 50]
        for side in (first, 1 - first):
            began = time.perf_counter()
            for entry in block:
                logs[side].append(entry)
            spent[side] += time.perf_counter() - began
    return count / spent[0], count / spent[1]


def cost_row(name: str, urls: list[str], key: Signer, key_path: Path, workdir: Path, scale: Scale) -> Row:
    per_round = max(100, min(2000, scale.audit_rows // 20))
    rounds = 5 if scale.audit_rows >= 1_000_000 else 2
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
        ratios, plain_rates, witnessed_rates, witnessed_seconds = [], [], [], 0.0
        for round_no in range(rounds):
            plain_rate, witnessed_rate = _append_round(plain, witnessed, per_round, seed=round_no, first=round_no % 2)
            plain_rates.append(plain_rate)
            witnessed_rates.append(witnessed_rate)
            witnessed_seconds += per_round / witnessed_rate
            ratios.append(witnessed_rate / plain_rate)
            log.info("checkpoint cost round %d (%s): ratio %.3f", round_no + 1, name, ratios[-1])
        witness.stop(final=False)
        busy_share = witness.busy_seconds / witnessed_seconds
        made = len(CheckpointStore(witnessed_db).after(0, limit=1_000_000))
    finally:
        if witness is not None:
            witness.stop(final=False)
        plain_db.dispose()
        witnessed_db.dispose()
    # The headline is the ratio of the totals (all rounds' events over all rounds' time, per database); each
    # round's ratio is listed to show the spread a shared machine adds.
    overall = (rounds * per_round / sum(per_round / r for r in witnessed_rates)) / (
        rounds * per_round / sum(per_round / r for r in plain_rates)
    )
    return Row(
        f"6a. audit checkpointing cost ({name})",
        f"{rounds} rounds × {per_round:,} single appends per database, interleaved in blocks of 50; checkpoint every "
        f"{EVERY} events, witness file with fsync{scale.label}",
        f"with checkpoints: median {statistics.median(witnessed_rates):,.0f} events/s; {made} checkpoints signed; "
        f"witness thread busy {busy_share:.1%} of the appending time",
        f"same appends, no checkpoints: median {statistics.median(plain_rates):,.0f} events/s",
        f"{overall:.3f}× overall (rounds {', '.join(f'{r:.3f}' for r in ratios)})",
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

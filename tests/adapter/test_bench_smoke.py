"""The benchmarks still run: `python -m bench --smoke` (every benchmark at tiny sizes) prints its whole table.

Runs in `make test` (no marker keeps it out). It checks that each benchmark produced its row and none crashed;
it never judges speed — smoke-size numbers mean nothing, and `--smoke` does not fail on missed targets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import _selected
from bench.procs import run_with_peak_rss
from bench.table import Row, TablePrinter, percentile

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["what", "load", "result", "baseline", "ratio", "target", "verdict"]
EXPECTED_ROWS = (
    "1. ack under load",
    "1b. answers after the load",
    "5a. serve worker RSS, idle",
    "5b. serve worker RSS, after the load",
    "2a. time to answer, small account",
    "2b. time to answer, large account",
    "3a. audit append (SQLite)",
    "3b. /snapshot audit server:<id> (SQLite)",
    "3b. /snapshot audit user:<id> (SQLite)",
    "3b. /snapshot audit action:<name> (SQLite)",
    "3b. /snapshot audit server:<id> snapshot:<id> user:<id> action:<name> (SQLite)",
    "3d. audit export (SQLite)",
    "3e. audit verify (SQLite)",
    "4. tracking cost",
    "6a. audit checkpointing cost (SQLite)",
    "6b. audit verify --checkpoints (SQLite)",
)


def _table(stdout: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert lines, f"no table in the output:\n{stdout}"
    split = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return split[0], split[1:]


# Generous: the smoke run is CPU-bound and shares two cores with the rest of the suite (78–105 s seen under load);
# the limit is there to catch a hang, not to time it.
@pytest.mark.timeout(300)
def test_smoke_bench_prints_a_row_for_every_benchmark() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert "## snapshot-bot benchmarks (smoke)" in proc.stdout
    assert "- cores: " in proc.stdout and "- python: " in proc.stdout  # the machine facts head the table

    header, rows = _table(proc.stdout)
    assert header == COLUMNS
    for row in rows:
        assert len(row) == len(COLUMNS), row
        assert row[-1] in ("pass", "FAIL", "n/a"), f"benchmark did not run: {row}"
    names = [row[0] for row in rows]
    for expected in EXPECTED_ROWS:
        assert any(name.startswith(expected) for name in names), f"no row {expected!r} in {names}"
    if os.environ.get("TEST_DATABASE_URL"):
        assert any(name.startswith("3a. audit append (PostgreSQL)") for name in names), names
    # Smoke sizes are named in the load column, so nobody mistakes these numbers for the real ones.
    assert all("(smoke)" in row[1] for row in rows if not row[0].startswith(("1b.", "5a.", "3e.")))


def test_only_selects_benchmarks_by_name_alias_or_number() -> None:
    assert _selected(None) == ["ack", "answer", "audit", "writers", "tracking", "checkpoints"]
    assert _selected("6") == ["checkpoints"]
    assert _selected("audit,footprint") == ["ack", "audit"]  # run order, not argument order
    assert _selected("4,2") == ["answer", "tracking"]
    with pytest.raises(SystemExit, match="unknown benchmark 'speed'"):
        _selected("speed")


def test_percentile_is_a_real_sample_by_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 301)]
    assert percentile(samples, 50) == 150.0
    assert percentile(samples, 99) == 297.0
    assert percentile([0.5], 99) == 0.5
    with pytest.raises(ValueError):
        percentile([], 50)


def test_table_rows_escape_pipes_and_count_failures(capsys: pytest.CaptureFixture[str]) -> None:
    printer = TablePrinter()
    printer.add(Row("a|b", "load", "1 ms", "-", "-", "< 2 ms", "pass"))
    printer.add(Row("c", "load", "3 ms", "-", "-", "< 2 ms", "FAIL"))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| what | load | result | baseline | ratio | target | verdict |"
    assert out[2] == "| a\\|b | load | 1 ms | - | - | < 2 ms | pass |"
    assert [row.what for row in printer.failed] == ["c"] and printer.errors == []


def test_peak_rss_is_the_childs_own_not_the_parents(tmp_path: Path) -> None:
    """Under a big parent a small child reads small, and a child that grows reads its growth (issue 19 §2).

    `ru_maxrss` from wait4 fails the first half on Linux: a forked child inherits the parent's high-water mark
    across exec, so every export looked as big as the bench process and growth read 0.
    """
    ballast = b"\x01" * (300 << 20)  # the parent now holds 300 MB, touched
    env = dict(os.environ)
    small, grown = (
        run_with_peak_rss(
            [sys.executable, "-c", f"import time; x = b'\\x01' * ({megabytes} << 20); time.sleep(0.3)"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for megabytes in (0, 100)
    )
    assert len(ballast) == 300 << 20
    assert small[1] == 0 and grown[1] == 0
    assert 0 < small[2] < 100 * 1024, small  # kB: an interpreter, not the 300 MB parent
    assert grown[2] - small[2] > 90 * 1024, (small, grown)

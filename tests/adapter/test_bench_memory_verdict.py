"""Row 5b's verdict can fail: a worker that keeps growing after round 1's warm-up misses, one that steps once passes.

Round 1 is a worker's first burst (its thread pools grow to size, first-use caches fill): growth is judged from the
end of round 1 to the end of the last round, and the absolute limit on every reading stays. These feed
`_footprint_rows` made-up readings (MB per worker after each round) in the shape the measurements had.
"""

from __future__ import annotations

import pytest

from bench.ack_load import LoadResult, ServerRun
from bench.footprint import footprint_rows, worst_growth
from bench.scale import FULL

MB = 1024


def _bot(idle: dict[int, float], rounds: list[dict[int, float]]) -> ServerRun:
    readings = [{pid: int(value * MB) for pid, value in reading.items()} for reading in rounds]
    idle_kb = {pid: int(value * MB) for pid, value in idle.items()}
    run = ServerRun(
        LoadResult(), [LoadResult() for _ in rounds], idle_kb, idle_kb, readings[-1] if readings else idle_kb
    )
    run.round_rss_kb = readings
    return run


def _row_5b(bot: ServerRun) -> tuple[str, str]:
    bare = ServerRun(LoadResult(), [], {9: 27 * MB}, {9: 27 * MB}, {9: 27 * MB})
    row = footprint_rows(FULL, bare, bot)[1]
    assert row.what.startswith("5b.")
    return row.verdict, row.result


def test_a_warm_up_step_that_then_stays_flat_passes() -> None:
    # What was measured: +8–9 % in round 1 (threads 10 → 40), then +1–2 % a round.
    verdict, result = _row_5b(_bot({1: 75.7, 2: 75.9}, [{1: 81.9, 2: 82.7}, {1: 83.6, 2: 84.2}, {1: 84.5, 2: 84.9}]))
    assert verdict == "pass"
    assert "growth after warm-up +3.2% on the worst worker" in result
    assert "warm-up step from idle +9.0%" in result


def test_steady_growth_after_the_warm_up_fails() -> None:
    # A leak of ~15 kB per list: 4.5 MB a round of 300 after the same warm-up step.
    verdict, result = _row_5b(_bot({1: 75.7}, [{1: 82.0}, {1: 86.5}, {1: 91.0}]))
    assert verdict == "FAIL"
    assert "growth after warm-up +11.0% on the worst worker" in result


def test_the_worst_worker_decides() -> None:
    flat, leaking = {1: 82.0}, {2: 82.0}
    rounds = [{**flat, **leaking}, {1: 82.5, 2: 87.0}, {1: 82.8, 2: 92.0}]
    assert _row_5b(_bot({1: 75.0, 2: 75.0}, rounds))[0] == "FAIL"


def test_the_absolute_limit_still_applies_without_growth() -> None:
    assert _row_5b(_bot({1: 140.0}, [{1: 151.0}, {1: 151.0}, {1: 151.0}]))[0] == "FAIL"


def test_growth_cannot_be_judged_from_one_round_or_a_replaced_worker() -> None:
    assert _row_5b(_bot({1: 75.0}, [{1: 80.0}]))[0] == "FAIL"
    assert _row_5b(_bot({1: 75.0}, [{1: 80.0}, {2: 80.0}]))[0] == "FAIL"  # worker 1 gone, 2 never read after round 1


def test_worst_growth_compares_only_workers_read_both_times() -> None:
    assert worst_growth({1: 100, 2: 100}, {1: 105, 2: 120, 3: 500}) == pytest.approx(0.2)
    assert worst_growth({1: 100}, {2: 100}) is None

"""The ack benchmark's verdict can fail: it judges the median of per-round p99 ratios, the maximum and non-200s.

A benchmark whose target cannot be missed measures nothing (issue 19 §2). These feed `_ack_row` made-up rounds
and check that a bot slower than 1.5× bare Bolt in most rounds fails, one slow round alone does not, and a slow
maximum or a single non-200 fails whatever the ratio.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench.ack_load import (
    ACK_CPU_REGRESSION,
    RECORDED_ACK_CPU_SECONDS,
    LoadResult,
    ServerRun,
    _ack_row,
    round_ratios,
)


def _round(
    p99_ms: float, *, slowest_ms: float | None = None, failed: int = 0, cpu_per_command_ms: float = 8.0
) -> LoadResult:
    """100 acks: 97 at 50 ms, then three at `p99_ms` (the nearest-rank p99 of 100 is the 99th sample)."""
    latencies = [0.050] * 97 + [p99_ms / 1000] * 2 + [(slowest_ms or p99_ms) / 1000]
    statuses = Counter({"503": failed} if failed else {})
    cpu = cpu_per_command_ms / 1000 * (100 + failed)
    return LoadResult(latencies=latencies, statuses=statuses, cpu=cpu, cpu_answered=cpu)


def _run(rounds: list[LoadResult]) -> ServerRun:
    total = LoadResult()
    for load in rounds:
        total.add(load)
    return ServerRun(total, rounds, {1: 1}, {1: 1}, {1: 1})


def _verdict(bot_p99s: list[float], **bot_extra: float) -> tuple[str, str]:
    bare = _run([_round(100) for _ in bot_p99s])
    bot = _run([_round(p99, **bot_extra) for p99 in bot_p99s])  # type: ignore[arg-type]
    row = _ack_row("1. ack", "load", bare, bot)
    return row.verdict, row.ratio


def test_ratios_pair_each_bot_round_with_the_bare_round_of_the_same_number() -> None:
    bare = _run([_round(100), _round(200), _round(50)])
    bot = _run([_round(150), _round(200), _round(100)])
    assert round_ratios(bare, bot) == pytest.approx([1.5, 1.0, 2.0])


def test_a_bot_slower_than_the_factor_in_most_rounds_fails() -> None:
    verdict, ratio = _verdict([160, 170, 120])
    assert verdict == "FAIL"
    assert ratio.startswith("1.60× median p99 ratio") and "1.60, 1.70, 1.20" in ratio


def test_one_slow_round_of_three_does_not_decide_alone() -> None:
    assert _verdict([300, 110, 120])[0] == "pass"


def test_a_slow_maximum_or_any_non_200_fails_whatever_the_ratio() -> None:
    assert _verdict([100, 100, 100], slowest_ms=1000)[0] == "FAIL"
    assert _verdict([100, 100, 100], failed=1)[0] == "FAIL"
    assert _verdict([100, 100, 100])[0] == "pass"


def test_workers_cpu_per_command_past_the_regression_line_fails_even_when_the_ratio_holds() -> None:
    """The regression line: 2× the workers' CPU per command until answered, as recorded."""
    line_ms = ACK_CPU_REGRESSION * RECORDED_ACK_CPU_SECONDS * 1000
    assert _verdict([100, 100, 100], cpu_per_command_ms=line_ms - 1)[0] == "pass"
    assert _verdict([100, 100, 100], cpu_per_command_ms=line_ms + 1)[0] == "FAIL"

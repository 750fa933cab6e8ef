"""Rows 5a and 5b: the serve workers' memory, idle and after the ack load (measured by bench/ack_load.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.scale import Scale
from bench.table import Row, mb, ratio, verdict

if TYPE_CHECKING:
    from bench.ack_load import ServerRun

RSS_LIMIT_KB = 150 * 1024
RSS_GROWTH_LIMIT = 0.10
WARMUP_HELP = 20  # what bench/ack_load.py's warm-up sends before "idle" is read
WARMUP_LIST = 4


def worst_growth(before: dict[int, int], after: dict[int, int]) -> float | None:
    """The largest RSS growth (after ÷ before − 1) of any worker read both times; None if none was."""
    common = [pid for pid in after if pid in before and before[pid] > 0]
    return max((after[pid] / before[pid] - 1 for pid in common), default=None)


def footprint_rows(scale: Scale, baseline: ServerRun, bot: ServerRun) -> list[Row]:
    fresh, idle, after = max(bot.fresh_rss_kb.values()), max(bot.idle_rss_kb.values()), max(bot.after_rss_kb.values())
    base_idle = max(baseline.idle_rss_kb.values())
    return [
        Row(
            "5a. serve worker RSS, idle",
            f"{scale.workers} workers, max shown; idle after {WARMUP_HELP} help + {WARMUP_LIST} list",
            f"{mb(idle)} (fresh from start: {mb(fresh)})",
            f"bare Bolt worker {mb(base_idle)}",
            ratio(idle, base_idle),
            "< 150 MB",
            verdict(idle < RSS_LIMIT_KB),
        ),
        _growth_row(scale, bot, after),
    ]


def _growth_row(scale: Scale, bot: ServerRun, after: int) -> Row:
    """Row 5b: absolute RSS after every round, and growth from the end of round 1 to the end of the last.

    Round 1 is the warm-up of a worker's first burst: its thread pools grow to their full size (gthread's, Bolt's
    listener executor, the post-ack pool; each new thread brings its stack, its interpreter state and a glibc
    arena) and first-use caches fill. That step is paid once per worker and is reported, not judged; a leak is
    what keeps growing after it, over the rounds that follow.
    """
    what = "5b. serve worker RSS, after the load"
    load = f"after {scale.ack_rounds} × {scale.ack_requests} lists answered{scale.label}"
    target = f"< 150 MB, growth after round 1 < {RSS_GROWTH_LIMIT:.0%}"
    if len(bot.round_rss_kb) < 2:
        return Row(what, load, f"{mb(after)}; growth needs ≥ 2 rounds", "-", "-", target, verdict(False))
    warm = bot.round_rss_kb[0]
    growth = worst_growth(warm, bot.after_rss_kb)
    step = worst_growth(bot.idle_rss_kb, warm)
    if growth is None:
        return Row(what, load, f"{mb(after)}; no worker lived through every round", "-", "-", target, verdict(False))
    step_text = f"{step * 100:+.1f}%" if step is not None else "-"
    return Row(
        what,
        load + f"; growth over rounds 2–{len(bot.round_rss_kb)}, after round 1's warm-up",
        f"{mb(after)} (growth after warm-up {growth * 100:+.1f}% on the worst worker; round 1's warm-up step from "
        f"idle {step_text})",
        f"after round 1 {mb(max(warm.values()))}",
        ratio(after, max(warm.values())),
        target,
        verdict(after < RSS_LIMIT_KB and growth < RSS_GROWTH_LIMIT),
    )

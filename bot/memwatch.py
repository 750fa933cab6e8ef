"""A diagnostic switch: trace this process's Python allocations and write what grew to a file, periodically.

Off unless SNAPSHOT_TRACEMALLOC_DIR is set (tracing costs CPU and memory; it is for soak runs, not production).
When on, each serving process starts `tracemalloc` before the bot is built, takes a baseline snapshot, and every
SNAPSHOT_TRACEMALLOC_SECONDS appends a report to `<dir>/tracemalloc-<pid>.txt`: RSS, Python's traced total, live
thread count and the allocation sites that grew most since the baseline. RSS growing while the traced total stays
flat points at native memory (threads' stacks, C libraries, the allocator); the traced sites name Python growth.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from pathlib import Path

# Frames kept per allocation: enough to see who called into a library, cheap enough for an hour of traffic.
TRACE_FRAMES = 8
TOP_SITES = 25
TOP_TRACEBACKS = 5
# The tracer's own bookkeeping and the import machinery are not what a soak is looking for.
_NOT_OURS = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
)


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class MemoryWatch:
    """Appends growth reports for this process to one file until `stop()`; the first report is the baseline."""

    def __init__(self, directory: Path, interval: float) -> None:
        self.path = directory / f"tracemalloc-{os.getpid()}.txt"
        self.interval = interval
        self._stop = threading.Event()
        self._started = time.monotonic()
        if not tracemalloc.is_tracing():
            tracemalloc.start(TRACE_FRAMES)
        self._baseline: tracemalloc.Snapshot | None = None
        self._thread = threading.Thread(target=self._loop, name="memwatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._baseline is not None:
            self.report()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.report()

    def report(self) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            )
        )
        traced, peak = tracemalloc.get_traced_memory()
        lines = [
            f"== t={time.monotonic() - self._started:.0f}s pid={os.getpid()} rss={_rss_kb() / 1024:.1f} MiB "
            f"traced={traced / 1048576:.1f} MiB (peak {peak / 1048576:.1f}) threads={threading.active_count()}"
        ]
        if self._baseline is None:
            self._baseline = snapshot
            lines.append("baseline taken")
        else:
            by_line = snapshot.compare_to(self._baseline, "lineno")
            lines.append(f"top {TOP_SITES} growth by line since baseline:")
            lines += [f"  {stat}" for stat in by_line[:TOP_SITES]]
            by_trace = snapshot.compare_to(self._baseline, "traceback")
            for stat in by_trace[:TOP_TRACEBACKS]:
                lines.append(f"traceback {stat.size_diff / 1024:+.1f} KiB in {stat.count_diff:+d} blocks:")
                lines += [f"    {line}" for line in stat.traceback.format(limit=TRACE_FRAMES)]
        with self.path.open("a") as out:
            out.write("\n".join(lines) + "\n")


def watch_from_settings(directory: str | None, interval: float) -> MemoryWatch | None:
    """Start a `MemoryWatch` when SNAPSHOT_TRACEMALLOC_DIR is set (`directory`; read, like every setting, by
    bot.config, so `.env` counts too); None (and nothing traced) otherwise."""
    if not directory:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    watch = MemoryWatch(Path(directory), max(1.0, interval))
    watch.start()  # the first report, one interval in (after warm-up), is the baseline
    return watch
